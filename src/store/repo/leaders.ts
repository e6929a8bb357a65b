// Which node carries out a duty that must run once per database (the rollout runner, stuck detection): a lease
// per role in the `leaders` table, renewed by its holder and taken over by another node once it ran out. A row
// lease rather than a PostgreSQL advisory lock so that SQLite (two processes on one file) and PostgreSQL behave
// alike, and so that a node cut off from the database stops acting when its lease ends, not when TCP notices.
import type { Sql } from '../sql.ts';

export class LeaderRepo {
  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes or renews `role` for `node` for `ttlMs`; true while `node` holds it. */
  async claim(role: string, node: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    await this.sql.run(
      `INSERT INTO leaders (role, node, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (role) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at
       WHERE leaders.node = excluded.node OR leaders.expires_at < ?`,
      [role, node, now + ttlMs, now],
    );
    const r = await this.sql.get<{ node: string }>('SELECT node FROM leaders WHERE role = ?', [role]);
    return r?.node === node;
  }

  /** Gives `role` up at once (a clean stop), so another node need not wait for the lease to run out. */
  async release(role: string, node: string): Promise<void> {
    await this.sql.run('DELETE FROM leaders WHERE role = ? AND node = ?', [role, node]);
  }

  async holder(role: string): Promise<{ node: string; expiresAt: number } | undefined> {
    const r = await this.sql.get<{ node: string; expires_at: number }>(
      'SELECT node, expires_at FROM leaders WHERE role = ?',
      [role],
    );
    return r && { node: r.node, expiresAt: Number(r.expires_at) };
  }
}
