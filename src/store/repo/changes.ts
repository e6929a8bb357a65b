// The change feed (src/store/changes.ts has the interface and the kinds) on either store: polls the `changes`
// table that triggers fill (migration 11), so writes by other processes (the CLI) and other nodes reach open
// boards, plus the expiry watch (token expiry writes nothing). Async: each poll awaits its reads, and the next is
// scheduled only when it ended, so polls never overlap; a failed poll is reported and the next one retries.
//
// PostgreSQL hands out ids when a row is inserted, not when it commits: a transaction holding id 7 may commit after
// the one holding id 8 was read. So an id skipped in a read is a gap, re-read for a while (GAP_WAIT_MS) before it
// is taken for a rolled-back insert. SQLite commits one writer at a time, so it has no gaps and the rule costs nothing.
import type { Sql } from '../sql.ts';
import type { Change, ChangeFeed, ChangeFeedOptions, ChangeKind } from '../changes.ts';

export type TableChangeFeedOptions = ChangeFeedOptions;

/** Rows read per query; a bigger backlog is read in several. */
const PAGE = 1000;
/** How long a skipped id is waited for (an open transaction on another node). */
const GAP_WAIT_MS = 10_000;
/** Skipped ids tracked at most; a bigger jump (a sequence advanced after a crash) is not waited for. */
const GAPS_MAX = 1000;

interface Row {
  id: number;
  kind: string;
  mac: string;
}

export class TableChangeFeed implements ChangeFeed {
  private readonly listeners = new Set<(c: Change) => void>();
  private readonly now: () => number;
  private readonly pollMs: number;
  /** The highest id delivered. */
  private cursor = 0;
  /** Ids below the cursor not seen yet, with the time (monotonic ms) they were first missed. */
  private readonly gaps = new Map<number, number>();
  /** Expiries up to this time have been announced. */
  private expiryCheckedAt = 0;
  private nextExpiry: number | undefined;
  private timer?: NodeJS.Timeout;
  private unsubscribeLocal?: () => void;
  /** Bumped by start/stop: a poll of an earlier subscription does not schedule another. */
  private generation = 0;
  private started: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly sql: Sql,
    private readonly opts: TableChangeFeedOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.pollMs = opts.pollMs ?? 250;
  }

  subscribe(listener: (c: Change) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      if (!this.listeners.delete(listener)) return;
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Resolves once the feed has read where "from now on" starts (changes after that are delivered). */
  ready(): Promise<void> {
    return this.started ?? Promise.resolve();
  }

  private start(): void {
    const gen = ++this.generation;
    this.unsubscribeLocal = this.opts.local?.subscribe((e) => this.emit({ kind: 'event', mac: e.mac }));
    // Only what changes from now on: a board that subscribes has just read the current state.
    this.expiryCheckedAt = this.now();
    this.started = this.serial(async () => {
      for (;;) {
        try {
          const r = await this.sql.get<{ id: number | null }>('SELECT MAX(id) AS id FROM changes');
          this.cursor = Number(r?.id ?? 0);
          this.gaps.clear();
          this.nextExpiry = await this.readNextExpiry();
          return;
        } catch (err) {
          this.opts.onError?.(err);
          if (gen !== this.generation) return;
          await new Promise((r) => setTimeout(r, this.pollMs).unref());
          if (gen !== this.generation) return;
        }
      }
    });
    void this.started.then(() => this.schedule(gen));
  }

  private schedule(gen: number): void {
    if (gen !== this.generation) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll().then(() => this.schedule(gen));
    }, this.pollMs);
    this.timer.unref();
  }

  private stop(): void {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribeLocal?.();
    this.unsubscribeLocal = undefined;
  }

  close(): void {
    this.listeners.clear();
    this.stop();
  }

  /** Polls run one after another, whoever asks (the timer, a test skipping the wait). */
  private serial(fn: () => Promise<void>): Promise<void> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => {});
    return p;
  }

  /** One read of the table and the expiry clock; never throws (a failure goes to onError, the next poll retries). */
  poll(): Promise<void> {
    return this.serial(async () => {
      if (!this.listeners.size) return;
      try {
        await this.pollOnce();
      } catch (err) {
        this.opts.onError?.(err);
      }
    });
  }

  private async pollOnce(): Promise<void> {
    let buildsChanged = false;
    const mono = performance.now();
    for (const [id, since] of this.gaps) if (mono - since > GAP_WAIT_MS) this.gaps.delete(id);
    // Read from the oldest gap (rows after it already delivered are skipped), page by page.
    let after = this.gaps.size ? Math.min(...this.gaps.keys()) - 1 : this.cursor;
    let checked = false;
    for (;;) {
      const rows = (
        await this.sql.all<Row>('SELECT id, kind, mac FROM changes WHERE id > ? ORDER BY id LIMIT ?', [after, PAGE])
      ).map((r) => ({ ...r, id: Number(r.id) }));
      if (!rows.length) break;
      const first = rows.find((r) => r.id > this.cursor);
      // A jump past the cursor: either ids not used (a rolled-back insert) or rows the bound trigger deleted before
      // anyone read them. Only the second lowers MIN(id) past the cursor; then every host may have changed.
      // (Cursor 0: the table was empty at start, and a first id above 1 is a rolled-back insert.)
      const jumped = !checked && first !== undefined && first.id > this.cursor + 1 && this.cursor > 0;
      if (first) checked = true;
      if (jumped && (await this.minId()) > this.cursor + 1) {
        const max = await this.sql.get<{ id: number | null }>('SELECT MAX(id) AS id FROM changes');
        this.cursor = Number(max?.id ?? this.cursor);
        this.gaps.clear();
        this.emit({ kind: 'resync', mac: '' });
        buildsChanged = true;
        break;
      }
      for (const r of rows) {
        if (r.id <= this.cursor) {
          if (!this.gaps.delete(r.id)) continue; // delivered before
        } else {
          // Ids skipped since the cursor may still commit (see the top of the file).
          if (r.id - this.cursor - 1 <= GAPS_MAX - this.gaps.size)
            for (let id = this.cursor + 1; id < r.id; id++) this.gaps.set(id, mono);
          this.cursor = r.id;
        }
        if (r.kind === 'build') buildsChanged = true;
        this.emit({ kind: r.kind as ChangeKind, mac: r.mac });
      }
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.id;
    }
    const now = this.now();
    if (this.nextExpiry !== undefined && this.nextExpiry <= now) {
      const expired = await this.sql.all<{ mac: string }>(
        "SELECT DISTINCT mac FROM builds WHERE status = 'pending' AND expires_at > ? AND expires_at <= ?",
        [this.expiryCheckedAt, now],
      );
      for (const r of expired) this.emit({ kind: 'expired', mac: r.mac });
      this.expiryCheckedAt = now;
      buildsChanged = true;
    }
    if (buildsChanged) this.nextExpiry = await this.readNextExpiry();
  }

  private async minId(): Promise<number> {
    return Number((await this.sql.get<{ id: number | null }>('SELECT MIN(id) AS id FROM changes'))?.id ?? 0);
  }

  private async readNextExpiry(): Promise<number | undefined> {
    const r = await this.sql.get<{ at: number | null }>(
      "SELECT MIN(expires_at) AS at FROM builds WHERE status = 'pending' AND expires_at > ?",
      [this.expiryCheckedAt],
    );
    return r?.at == null ? undefined : Number(r.at);
  }

  private emit(c: Change): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
  }
}
