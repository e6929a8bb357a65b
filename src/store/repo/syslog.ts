// Installer log lines per build on either store, bounded three ways (see src/ops/syslog-store.ts): a ring per
// build, a cap on all lines, an age. Lines are queued and written in batches; append() never waits.
import type {
  NewSyslogLine,
  SyslogLimits,
  SyslogLine,
  SyslogRow,
  SyslogSearch,
  SyslogStoreStats,
} from '../../ops/syslog-store.ts';
import { DEFAULT_SYSLOG_MAX_AGE_MS, formatLine, syslogFromRow } from '../../ops/syslog-store.ts';
import type { Param, Sql } from '../sql.ts';

export class SyslogRepo {
  private queue: NewSyslogLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  readonly stats: SyslogStoreStats = { queued: 0, written: 0, evicted: 0, droppedQueueFull: 0 };

  constructor(
    private readonly sql: Sql,
    readonly limits: SyslogLimits,
    private readonly flushEveryMs = 200,
  ) {}

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
        () => void this.flush().catch(() => {}),
        this.queue.length >= this.limits.maxQueued / 2 ? 0 : this.flushEveryMs,
      );
    return true;
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.flushing) await this.flushing;
    if (!this.queue.length) return;
    const rows = this.queue;
    this.queue = [];
    this.stats.queued = 0;
    this.flushing = this.write(rows);
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  private async write(rows: NewSyslogLine[]): Promise<void> {
    const evicted = await this.sql.tx(async (sql) => {
      const builds = new Set<number>();
      for (const l of rows) {
        await sql.run(
          'INSERT INTO syslog (build_id, mac, at, client_ip, facility, severity, host, app, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
          [l.buildId, l.mac, l.at, l.clientIp ?? null, l.facility, l.severity, l.host ?? null, l.app ?? null, l.text],
        );
        builds.add(l.buildId);
      }
      let n = 0;
      for (const b of builds)
        n += await sql.run(
          'DELETE FROM syslog WHERE build_id = ? AND id < (SELECT id FROM syslog WHERE build_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)',
          [b, b, this.limits.ringLines - 1],
        );
      // ids only grow, so this keeps at most maxTotalLines rows, whatever the gaps.
      n += await sql.run('DELETE FROM syslog WHERE id <= (SELECT MAX(id) FROM syslog) - ?', [
        this.limits.maxTotalLines,
      ]);
      return n;
    });
    this.stats.evicted += evicted;
    this.stats.written += rows.length;
  }

  /** Oldest first: the newest `limit` lines of a build that match. `q` is a case-insensitive substring. */
  async search(s: SyslogSearch): Promise<SyslogLine[]> {
    await this.flush();
    const where = ['build_id = ?'];
    const args: Param[] = [s.buildId];
    if (s.q) {
      // SQLite's LIKE ignores ASCII case; PostgreSQL's does not, ILIKE does.
      where.push(`text ${this.sql.dialect === 'postgres' ? 'ILIKE' : 'LIKE'} ? ESCAPE '\\'`);
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
    args.push(Math.max(1, Math.min(s.limit ?? 500, 5000)));
    // After an id: the oldest lines past it (following a log); otherwise the newest that match.
    const rows = await this.sql.all<SyslogRow>(
      `SELECT * FROM syslog WHERE ${where.join(' AND ')} ORDER BY id ${s.afterId === undefined ? 'DESC' : 'ASC'} LIMIT ?`,
      args,
    );
    const lines = rows.map(syslogFromRow);
    return s.afterId === undefined ? lines.reverse() : lines;
  }

  async prune(now = Date.now()): Promise<number> {
    await this.flush();
    const n = await this.sql.run('DELETE FROM syslog WHERE at < ?', [
      now - (this.limits.maxAgeMs ?? DEFAULT_SYSLOG_MAX_AGE_MS),
    ]);
    this.stats.evicted += n;
    return n;
  }

  /** The last `n` lines of a build, as text lines, for the failed event. */
  async tail(buildId: number, n: number): Promise<string[]> {
    return (await this.search({ buildId, limit: n })).map(formatLine);
  }

  async count(buildId: number): Promise<number> {
    await this.flush();
    return (await this.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM syslog WHERE build_id = ?', [buildId]))!.n;
  }
}
