// Per-host rate limit on the request-driven part of the timeline (boot-path fetches, DHCP packets, installer
// progress). A host in a boot loop, a script re-fetching a kickstart, or someone on the provisioning network
// sending as a host's MAC would otherwise write an event per request: 500 hosts fetched 37,000 kickstarts a
// second in the nodes benchmark, and the ~275,000 queued rows were still being written to PostgreSQL through
// the next measure, slowing every lease commit behind them. A token bucket per host keeps the first `burst` events (a whole
// install is far fewer) and then `ratePerSec`; what it drops is counted and written as one summary event a
// second per host. State changes (build.*, bmc.*, webhook.*, stuck) always pass and cost no token: they are what the board
// and the webhooks are made of.
// An event identical to the host's last written one of its type (same build, address, status, bytes and detail)
// within `repeatWindowMs` is a repeat: counted, not written, and costing no token, the way syslog says "last
// message repeated N times" (refusals and errors excepted: each is an attempt or a fault). A script re-fetching a kickstart 12 times a second wrote 12 rows a second per host,
// and writing them was half the CPU of each fetch (test/bench/http.sh).

export interface ThrottleLimits {
  /** Sustained request-driven events a second per host. */
  ratePerSec: number;
  /** Events a host may write at once before the rate applies. */
  burst: number;
  /** An identical event within this long of the last written one is a repeat (0: none are). */
  repeatWindowMs?: number;
}

/** Events that record a decision or a state change rather than a request: never dropped. */
export function isStateEvent(type: string): boolean {
  return (
    type.startsWith('build.') ||
    type.startsWith('bmc.') ||
    type.startsWith('webhook.') ||
    type === 'stuck' ||
    type === 'events.suppressed'
  );
}

/**
 * Whether an event may be counted as a repeat: not state events, and not refusals or errors, each of which is
 * someone's attempt or a fault to see on its own (they are still bounded by the rate).
 */
export function isRepeatable(type: string): boolean {
  return !isStateEvent(type) && !type.endsWith('.refused') && !type.endsWith('.error');
}

interface Bucket {
  tokens: number;
  at: number;
  /** Dropped since the last summary, by event type (repeats included). */
  dropped: Map<string, number>;
  /** Of those, the repeats. */
  repeats: number;
  /** The last written event of each type: its fingerprint (a number, however long the event) and when. */
  last: Map<string, { print: number; at: number }>;
}

/** Hosts tracked at most; past it, hosts whose bucket is full again (the same as untracked) are forgotten. */
const MAX_TRACKED = 65_536;

export interface Suppressed {
  mac: string;
  count: number;
  byType: Record<string, number>;
  /** How many of `count` were repeats (the rest were over the rate). */
  repeats: number;
}

/**
 * FNV-1a of the key and its length, as one number: what a bucket keeps of its last event, so a host's memory does
 * not grow with its events' detail (up to 4 KB each). A collision only counts an event as a repeat.
 */
export function fingerprint(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) + key.length * 2 ** 32;
}

export class EventThrottle {
  private readonly buckets = new Map<string, Bucket>();
  /** Events dropped since start. */
  dropped = 0;

  constructor(readonly limits: ThrottleLimits) {}

  /**
   * Whether this event is written; a dropped one is counted for the host's next summary. `key` says what the
   * event is (without its time): the same key again within the repeat window is a repeat.
   */
  admit(mac: string, type: string, now: number, key?: string): boolean {
    if (isStateEvent(type)) return true;
    let b = this.buckets.get(mac);
    if (!b) {
      if (this.buckets.size >= MAX_TRACKED) this.forgetFull(now);
      b = { tokens: this.limits.burst, at: now, dropped: new Map(), repeats: 0, last: new Map() };
      this.buckets.set(mac, b);
    } else {
      b.tokens = Math.min(this.limits.burst, b.tokens + ((now - b.at) / 1000) * this.limits.ratePerSec);
      b.at = now;
    }
    const print = key === undefined || !this.limits.repeatWindowMs ? undefined : fingerprint(key);
    const last = print === undefined ? undefined : b.last.get(type);
    if (last && last.print === print && now >= last.at && now - last.at < this.limits.repeatWindowMs!) {
      b.repeats++;
      return this.drop(b, type);
    }
    if (b.tokens < 1) return this.drop(b, type);
    b.tokens -= 1;
    if (print !== undefined) b.last.set(type, { print, at: now });
    return true;
  }

  private drop(b: Bucket, type: string): false {
    b.dropped.set(type, (b.dropped.get(type) ?? 0) + 1);
    this.dropped++;
    return false;
  }

  /** The hosts that had events dropped since the last call, and how many of each type (then forgotten). */
  takeSuppressed(): Suppressed[] {
    const out: Suppressed[] = [];
    for (const [mac, b] of this.buckets) {
      if (!b.dropped.size) continue;
      let count = 0;
      const byType: Record<string, number> = {};
      for (const [t, n] of b.dropped) {
        byType[t] = n;
        count += n;
      }
      out.push({ mac, count, byType, repeats: b.repeats });
      b.dropped.clear();
      b.repeats = 0;
    }
    return out;
  }

  private forgetFull(now: number): void {
    for (const [mac, b] of this.buckets)
      if (!b.dropped.size && b.tokens + ((now - b.at) / 1000) * this.limits.ratePerSec >= this.limits.burst)
        this.buckets.delete(mac);
    // Still full of hosts mid-burst: the oldest go (a forgotten host starts again with a full bucket).
    for (const mac of this.buckets.keys()) {
      if (this.buckets.size < MAX_TRACKED) break;
      this.buckets.delete(mac);
    }
  }
}
