// The host timeline on either store. Events are queued and written together, at most WRITE_EVERY_MS after the
// first of them (a rack booting makes thousands a second); append() never waits, flush() does.
import type { Mac } from '../../net/mac.ts';
import type { EventLimits, EventRow, HostEvent, NewEvent } from '../events.ts';
import { boundEvent, DEFAULT_EVENT_LIMITS, eventFromRow, PRUNE_EVERY } from '../events.ts';
import type { Sql } from '../sql.ts';
import { EventThrottle, isRepeatable } from '../event-throttle.ts';

type Queued = ReturnType<typeof boundEvent>;

/** Rows per INSERT (8 parameters each: far under both dialects' limits). */
const INSERT_ROWS = 100;
/** Events per write transaction (see writeInSlices); a queue this long is written at once. */
const WRITE_SLICE = 500;
/**
 * How long an event waits for others to share its transaction. One a turn of the event loop wrote ~270
 * transactions a second under 8,000 kickstart fetches/s, each rewriting the same few table and index pages
 * in the WAL: a third of the server's CPU and most of its disk writes (test/bench/http.sh).
 */
const WRITE_EVERY_MS = 50;

const PRUNE_HOST =
  'DELETE FROM events WHERE mac = ? AND id <= (SELECT id FROM events WHERE mac = ? ORDER BY id DESC LIMIT 1 OFFSET ?)';

/** What makes two events the same but for their time (a repeat, see event-throttle.ts). */
const repeatKey = (r: Queued) => `${r.type}|${r.buildId}|${r.clientIp}|${r.status}|${r.bytes}|${r.detail}`;

/** "3 more events over 2/s and 40 repeats not recorded". */
function suppressedText(overRate: number, repeats: number, ratePerSec: number): string {
  const parts = [
    ...(overRate ? [`${overRate} more events over ${ratePerSec}/s`] : []),
    ...(repeats ? [`${repeats} repeats`] : []),
  ];
  return `${parts.join(' and ')} not recorded`;
}

export class EventRepo {
  private readonly listeners = new Set<(e: HostEvent) => void>();
  private queue: Queued[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  private readonly sincePrune = new Map<string, number>();
  private prunedAll = false;
  readonly limits: EventLimits;
  /** Events deleted by the retention since start. */
  pruned = 0;
  readonly throttle: EventThrottle;
  private summaryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
    limits: Partial<EventLimits> = {},
    /** This node's id, written on every event it appends. */
    private readonly node?: string,
  ) {
    this.limits = { ...DEFAULT_EVENT_LIMITS, ...limits };
    this.throttle = new EventThrottle({
      ratePerSec: this.limits.ratePerHost,
      burst: this.limits.burstPerHost,
      repeatWindowMs: this.limits.repeatWindowMs,
    });
  }

  /** Queues an event; one over its host's rate (see event-throttle.ts) is only counted. Undefined then. */
  append(e: NewEvent): HostEvent | undefined {
    const at = e.at ?? this.now();
    const row = boundEvent(e, at, this.limits.maxDetailBytes, this.node);
    const key = isRepeatable(e.type) ? repeatKey(row) : undefined;
    if (!this.throttle.admit(e.mac, e.type, at, key)) {
      this.summaryTimer ??= setTimeout(() => this.summarize(), 1000).unref();
      return undefined;
    }
    this.queue.push(row);
    if (this.queue.length >= WRITE_SLICE) this.soon ??= setImmediate(this.writeQueued);
    else this.timer ??= setTimeout(this.writeQueued, WRITE_EVERY_MS);
    const saved: HostEvent = { ...e, id: 0, at, ...(this.node !== undefined ? { node: this.node } : {}) };
    for (const l of this.listeners) l(saved);
    return saved;
  }

  /** One event per host that had events dropped in the last second: how many, of which types. */
  private summarize(): void {
    this.summaryTimer = undefined;
    for (const s of this.throttle.takeSuppressed())
      this.append({
        mac: s.mac as Mac,
        type: 'events.suppressed',
        status: suppressedText(s.count - s.repeats, s.repeats, this.throttle.limits.ratePerSec),
        detail: { count: s.count, byType: s.byType, ...(s.repeats ? { repeats: s.repeats } : {}) },
      });
  }

  private readonly writeQueued = () => void this.flush().catch(() => {});

  /** Writes queued events now; resolves when everything appended before the call is stored. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    clearImmediate(this.soon);
    this.timer = this.soon = undefined;
    while (this.flushing) await this.flushing;
    if (!this.queue.length) return;
    const rows = this.queue;
    this.queue = [];
    this.flushing = this.writeInSlices(rows);
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  /**
   * At most WRITE_SLICE events per transaction, with a turn of the event loop between: SQLite writes on this
   * thread, and one transaction of a busy second's 15,000 events held every kickstart behind it (p99 19 ms).
   */
  private async writeInSlices(rows: Queued[]): Promise<void> {
    for (let i = 0; i < rows.length; i += WRITE_SLICE) {
      if (i > 0) await new Promise<void>((r) => setImmediate(r));
      await this.write(rows.slice(i, i + WRITE_SLICE));
    }
  }

  private async write(rows: Queued[]): Promise<void> {
    await this.sql.tx(async (sql) => {
      // Multi-row INSERTs: one round trip per INSERT_ROWS events on PostgreSQL, not one per event.
      for (let i = 0; i < rows.length; i += INSERT_ROWS) {
        const chunk = rows.slice(i, i + INSERT_ROWS);
        await sql.run(
          `INSERT INTO events (mac, build_id, at, type, client_ip, status, bytes, detail, node) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flatMap((r) => [r.mac, r.buildId, r.at, r.type, r.clientIp, r.status, r.bytes, r.detail, r.node]),
        );
      }
      for (const r of rows) {
        const n = (this.sincePrune.get(r.mac) ?? 0) + 1;
        if (n < PRUNE_EVERY) {
          if (this.sincePrune.size < 65536) this.sincePrune.set(r.mac, n);
          continue;
        }
        this.sincePrune.delete(r.mac);
        this.pruned += await sql.run(PRUNE_HOST, [r.mac, r.mac, this.limits.maxPerHost]);
      }
    });
  }

  /** Retention: by age, and per host all but the newest maxPerHost (see src/store/events.ts prune()). */
  async prune(macs?: Iterable<string>): Promise<number> {
    await this.flush();
    let n = await this.sql.run('DELETE FROM events WHERE at < ?', [this.now() - this.limits.maxAgeMs]);
    const hosts = macs
      ? [...macs]
      : this.prunedAll
        ? [...this.sincePrune.keys()]
        : (await this.sql.all<{ mac: string }>('SELECT DISTINCT mac FROM events')).map((r) => r.mac);
    if (!macs) this.prunedAll = true;
    n += await this.sql.tx(async (sql) => {
      let k = 0;
      for (const mac of hosts) k += await sql.run(PRUNE_HOST, [mac, mac, this.limits.maxPerHost]);
      return k;
    });
    for (const mac of hosts) this.sincePrune.delete(mac);
    this.pruned += n;
    return n;
  }

  /** Oldest first, the most recent `limit` events. */
  async timeline(mac: Mac, limit = 500): Promise<HostEvent[]> {
    await this.flush();
    const rows = await this.sql.all<EventRow>('SELECT * FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?', [
      mac,
      limit,
    ]);
    return rows.map(eventFromRow).reverse();
  }

  /** Oldest first, up to `limit` events with an id above `afterId` (0: from the first): the API's pages. */
  async after(mac: Mac, afterId: number, limit: number): Promise<HostEvent[]> {
    await this.flush();
    const rows = await this.sql.all<EventRow>('SELECT * FROM events WHERE mac = ? AND id > ? ORDER BY id LIMIT ?', [
      mac,
      afterId,
      limit,
    ]);
    return rows.map(eventFromRow);
  }

  subscribe(listener: (e: HostEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
