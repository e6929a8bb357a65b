// The change feed: what changed about which host, whichever process changed it. The CLI writes the same
// SQLite file as `serve`, so an in-process subscription alone would leave open boards stale. Triggers
// (migration 6) append a row to `changes` on every host and build write; this polls it, which costs one
// primary-key range read per poll. Token expiry writes nothing, so the feed also watches the next
// expires_at of the pending builds. TableChangeFeed (src/store/repo/changes.ts) is the same feed over Sql, on either
// store; this synchronous SQLite one goes once serve.ts uses that.
import type { Db } from './db.ts';

export type ChangeKind =
  /** A host was added or its record changed. */
  | 'host'
  | 'host.deleted'
  /** A build started, finished, was cancelled or superseded. */
  | 'build'
  /** A pending build's token passed its expires_at. */
  | 'expired'
  /** A timeline event of this process (a boot step: DHCP, loader, kickstart, progress). */
  | 'event'
  /** Changes were missed (more than the table keeps arrived between two polls): look at every host again. */
  | 'resync';

export interface Change {
  kind: ChangeKind;
  /** Empty for 'resync'. */
  mac: string;
}

export interface ChangeFeed {
  /** Changes made by this process and by others alike; returns the unsubscribe. */
  subscribe(listener: (c: Change) => void): () => void;
  close(): void;
}

export interface SqliteChangeFeedOptions {
  /** How often the table is read (ms); boards must hear of a change within a second. */
  pollMs?: number;
  now?: () => number;
  /** In-process events that reach listeners at once (the EventLog), before any poll. */
  local?: { subscribe(listener: (e: { mac: string }) => void): () => void };
  onError?(err: unknown): void;
}

/** Rows read per query; a bigger backlog is read in several. */
const PAGE = 1000;

export class SqliteChangeFeed implements ChangeFeed {
  private readonly listeners = new Set<(c: Change) => void>();
  private readonly sinceStmt;
  private readonly minIdStmt;
  private readonly maxIdStmt;
  private readonly nextExpiryStmt;
  private readonly expiredStmt;
  private readonly now: () => number;
  private readonly pollMs: number;
  private cursor = 0;
  /** Expiries up to this time have been announced. */
  private expiryCheckedAt = 0;
  private nextExpiry: number | undefined;
  private timer?: NodeJS.Timeout;
  private unsubscribeLocal?: () => void;

  constructor(
    private readonly db: Db,
    private readonly opts: SqliteChangeFeedOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.pollMs = opts.pollMs ?? 250;
    this.sinceStmt = db.prepare<[number, number], { id: number; kind: string; mac: string }>(
      'SELECT id, kind, mac FROM changes WHERE id > ? ORDER BY id LIMIT ?',
    );
    this.minIdStmt = db.prepare<[], { id: number | null }>('SELECT MIN(id) AS id FROM changes');
    this.maxIdStmt = db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM changes');
    this.nextExpiryStmt = db.prepare<[number], { at: number | null }>(
      "SELECT MIN(expires_at) AS at FROM builds WHERE status = 'pending' AND expires_at > ?",
    );
    this.expiredStmt = db.prepare<[number, number], { mac: string }>(
      "SELECT DISTINCT mac FROM builds WHERE status = 'pending' AND expires_at > ? AND expires_at <= ?",
    );
  }

  subscribe(listener: (c: Change) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  private start(): void {
    // Only what changes from now on: a board that subscribes has just read the current state.
    this.cursor = this.maxIdStmt.get()?.id ?? 0;
    this.expiryCheckedAt = this.now();
    this.nextExpiry = this.readNextExpiry();
    this.unsubscribeLocal = this.opts.local?.subscribe((e) => this.emit({ kind: 'event', mac: e.mac }));
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribeLocal?.();
    this.unsubscribeLocal = undefined;
  }

  close(): void {
    this.listeners.clear();
    this.stop();
  }

  /** One read of the table and the expiry clock (the timer calls it; tests may call it to skip the wait). */
  poll(): void {
    if (!this.db.open) return;
    try {
      let buildsChanged = false;
      for (;;) {
        const rows = this.sinceStmt.all(this.cursor, PAGE);
        if (!rows.length) break;
        if (rows[0]!.id > this.cursor + 1 && (this.minIdStmt.get()?.id ?? 0) > this.cursor + 1) {
          // The bound trigger deleted rows nobody read: whatever they said, every host may have changed.
          this.cursor = this.maxIdStmt.get()?.id ?? this.cursor;
          this.emit({ kind: 'resync', mac: '' });
          buildsChanged = true;
          break;
        }
        this.cursor = rows[rows.length - 1]!.id;
        for (const r of rows) {
          if (r.kind === 'build') buildsChanged = true;
          this.emit({ kind: r.kind as ChangeKind, mac: r.mac });
        }
        if (rows.length < PAGE) break;
      }
      const now = this.now();
      if (this.nextExpiry !== undefined && this.nextExpiry <= now) {
        for (const r of this.expiredStmt.all(this.expiryCheckedAt, now)) this.emit({ kind: 'expired', mac: r.mac });
        this.expiryCheckedAt = now;
        buildsChanged = true;
      }
      if (buildsChanged) this.nextExpiry = this.readNextExpiry();
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  private readNextExpiry(): number | undefined {
    return this.nextExpiryStmt.get(this.expiryCheckedAt)?.at ?? undefined;
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
