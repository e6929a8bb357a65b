// Installer log lines per build, on the store. Bounded three times: a ring per build (the newest
// `ringLines` lines stay), a cap on all lines together (the oldest go first) and an age (prune()), so
// neither a chatty installer nor months of rollouts can fill the disk. Writes are batched (one transaction
// per flush, like the timeline); a line lost to kill -9 is a log line, never a build record.
import type { Db } from '../store/db.ts';
import type { Mac } from '../net/mac.ts';
import { SEVERITY_NAMES } from './syslog-parse.ts';

export interface SyslogLine {
  id: number;
  buildId: number;
  mac: Mac;
  at: number;
  clientIp?: string;
  facility: number;
  severity: number;
  host?: string;
  app?: string;
  text: string;
}

export type NewSyslogLine = Omit<SyslogLine, 'id'>;

export interface SyslogLimits {
  /** Lines kept per build (the newest). */
  ringLines: number;
  /** Lines kept over all builds (the oldest builds' lines go first). */
  maxTotalLines: number;
  /** Lines waiting for the next write; more are dropped (counted), so memory stays bounded. */
  maxQueued: number;
  /** Lines older than this are deleted by prune() (default 30 days). */
  maxAgeMs?: number;
}

export const DEFAULT_SYSLOG_MAX_AGE_MS = 30 * 86_400_000;

export interface SyslogSearch {
  buildId: number;
  q?: string;
  maxSeverity?: number;
  limit?: number;
  beforeId?: number;
  /** Only lines newer than this id, oldest first (a follower or a live view asking for what came since its last line). */
  afterId?: number;
}

export interface SyslogRow {
  id: number;
  build_id: number;
  mac: string;
  at: number;
  client_ip: string | null;
  facility: number;
  severity: number;
  host: string | null;
  app: string | null;
  text: string;
}

export function syslogFromRow(r: SyslogRow): SyslogLine {
  const l: SyslogLine = {
    id: r.id,
    buildId: r.build_id,
    mac: r.mac as Mac,
    at: r.at,
    facility: r.facility,
    severity: r.severity,
    text: r.text,
  };
  if (r.client_ip !== null) l.clientIp = r.client_ip;
  if (r.host !== null) l.host = r.host;
  if (r.app !== null) l.app = r.app;
  return l;
}

export interface SyslogStoreStats {
  queued: number;
  written: number;
  evicted: number;
  droppedQueueFull: number;
}

export class SyslogStore {
  private queue: NewSyslogLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly insert;
  private readonly trimRing;
  private readonly trimTotal;
  private readonly writeBatch;
  readonly stats: SyslogStoreStats = { queued: 0, written: 0, evicted: 0, droppedQueueFull: 0 };

  constructor(
    private readonly db: Db,
    readonly limits: SyslogLimits,
    private readonly flushEveryMs = 200,
  ) {
    this.insert = db.prepare(
      'INSERT INTO syslog (build_id, mac, at, client_ip, facility, severity, host, app, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    // Everything older than the ringLines-th newest line of the build.
    this.trimRing = db.prepare(
      'DELETE FROM syslog WHERE build_id = ? AND id < (SELECT id FROM syslog WHERE build_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)',
    );
    // ids only grow (AUTOINCREMENT), so this keeps at most maxTotalLines rows, whatever the gaps.
    this.trimTotal = db.prepare('DELETE FROM syslog WHERE id <= (SELECT MAX(id) FROM syslog) - ?');
    this.writeBatch = db.transaction((rows: NewSyslogLine[]) => {
      const builds = new Set<number>();
      for (const l of rows) {
        this.insert.run(
          l.buildId,
          l.mac,
          l.at,
          l.clientIp ?? null,
          l.facility,
          l.severity,
          l.host ?? null,
          l.app ?? null,
          l.text,
        );
        builds.add(l.buildId);
      }
      let evicted = 0;
      for (const b of builds) evicted += this.trimRing.run(b, b, this.limits.ringLines - 1).changes;
      evicted += this.trimTotal.run(this.limits.maxTotalLines).changes;
      return evicted;
    });
  }

  /** Queues a line; false when the queue is full (the line is dropped and counted). */
  append(line: NewSyslogLine): boolean {
    if (this.queue.length >= this.limits.maxQueued) {
      this.stats.droppedQueueFull++;
      return false;
    }
    this.queue.push(line);
    this.stats.queued = this.queue.length;
    if (!this.timer)
      this.timer = setTimeout(
        () => this.flush(),
        this.queue.length >= this.limits.maxQueued / 2 ? 0 : this.flushEveryMs,
      );
    return true;
  }

  /** Writes queued lines now (reads and shutdown call it). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.queue.length || !this.db.open) return;
    const rows = this.queue;
    this.queue = [];
    this.stats.queued = 0;
    this.stats.evicted += this.writeBatch(rows);
    this.stats.written += rows.length;
  }

  /** Oldest first: the newest `limit` lines of a build that match. `q` is a case-insensitive substring. */
  search(s: SyslogSearch): SyslogLine[] {
    this.flush();
    const where = ['build_id = ?'];
    const args: (string | number)[] = [s.buildId];
    if (s.q) {
      where.push("text LIKE ? ESCAPE '\\'");
      args.push(`%${s.q.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
    }
    if (s.maxSeverity !== undefined) {
      where.push('severity <= ?');
      args.push(s.maxSeverity);
    }
    if (s.beforeId !== undefined) {
      where.push('id < ?');
      args.push(s.beforeId);
    }
    if (s.afterId !== undefined) {
      where.push('id > ?');
      args.push(s.afterId);
    }
    const limit = Math.max(1, Math.min(s.limit ?? 500, 5000));
    // After an id: the oldest lines past it (following a log); otherwise the newest that match.
    const rows = this.db
      .prepare<(string | number)[], SyslogRow>(
        `SELECT * FROM syslog WHERE ${where.join(' AND ')} ORDER BY id ${s.afterId === undefined ? 'DESC' : 'ASC'} LIMIT ${limit}`,
      )
      .all(...args);
    const lines = rows.map(syslogFromRow);
    return s.afterId === undefined ? lines.reverse() : lines;
  }

  /** The age retention (syslog_at index: costs the rows deleted); serve runs it at start and every few minutes. */
  prune(now = Date.now()): number {
    this.flush();
    if (!this.db.open) return 0;
    const n = this.db
      .prepare('DELETE FROM syslog WHERE at < ?')
      .run(now - (this.limits.maxAgeMs ?? DEFAULT_SYSLOG_MAX_AGE_MS)).changes;
    this.stats.evicted += n;
    return n;
  }

  /** The last `n` lines of a build, as text lines, for the failed event. */
  tail(buildId: number, n: number): string[] {
    return this.search({ buildId, limit: n }).map(formatLine);
  }

  count(buildId: number): number {
    this.flush();
    return this.db.prepare<[number], { n: number }>('SELECT COUNT(*) n FROM syslog WHERE build_id = ?').get(buildId)!.n;
  }

  close(): void {
    this.flush();
  }
}

/** "2024-05-01T10:00:00.000Z err anaconda: text": one line as people read it. */
export function formatLine(l: Pick<SyslogLine, 'at' | 'severity' | 'app' | 'text'>): string {
  return `${new Date(l.at).toISOString()} ${SEVERITY_NAMES[l.severity] ?? l.severity}${l.app ? ` ${l.app}:` : ''} ${l.text}`;
}
