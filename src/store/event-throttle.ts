// Per-host rate limit on the request-driven part of the timeline (boot-path fetches, DHCP packets, installer
// progress). A host in a boot loop, a script re-fetching a kickstart, or someone on the provisioning network
// sending as a host's MAC would otherwise write an event per request: 500 hosts fetched 37,000 kickstarts a
// second in the nodes benchmark, and the ~275,000 queued rows were still being written to PostgreSQL through
// the next measure, slowing every lease commit behind them. A token bucket per host keeps the first `burst` events (a whole
// install is far fewer) and then `ratePerSec`; what it drops is counted and written as one summary event a
// second per host. State changes (build.*, bmc.*, webhook.*, stuck) always pass and cost no token: they are what the board
// and the webhooks are made of.

export interface ThrottleLimits {
  /** Sustained request-driven events a second per host. */
  ratePerSec: number;
  /** Events a host may write at once before the rate applies. */
  burst: number;
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

interface Bucket {
  tokens: number;
  at: number;
  /** Dropped since the last summary, by event type. */
  dropped: Map<string, number>;
}

/** Hosts tracked at most; past it, hosts whose bucket is full again (the same as untracked) are forgotten. */
const MAX_TRACKED = 65_536;

export interface Suppressed {
  mac: string;
  count: number;
  byType: Record<string, number>;
}

export class EventThrottle {
  private readonly buckets = new Map<string, Bucket>();
  /** Events dropped since start. */
  dropped = 0;

  constructor(readonly limits: ThrottleLimits) {}

  /** Whether this event is written; a dropped one is counted for the host's next summary. */
  admit(mac: string, type: string, now: number): boolean {
    if (isStateEvent(type)) return true;
    let b = this.buckets.get(mac);
    if (!b) {
      if (this.buckets.size >= MAX_TRACKED) this.forgetFull(now);
      b = { tokens: this.limits.burst, at: now, dropped: new Map() };
      this.buckets.set(mac, b);
    } else {
      b.tokens = Math.min(this.limits.burst, b.tokens + ((now - b.at) / 1000) * this.limits.ratePerSec);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
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
      b.dropped.clear();
      out.push({ mac, count, byType });
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
