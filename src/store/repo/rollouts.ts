// Rollouts on either store (src/store/rollouts.ts has the shapes; src/rollout carries them out).
import type { Mac } from '../../net/mac.ts';
import type { Sql } from '../sql.ts';
import {
  ROLLOUTS_KEPT,
  rolloutFromRow,
  rolloutHostFromRow,
  type NewRollout,
  type Rollout,
  type RolloutHost,
  type RolloutHostRow,
  type RolloutRow,
  type RolloutStep,
  type RolloutStore,
} from '../rollouts.ts';

// Within a wave, hosts come in MAC order: PostgreSQL has no insertion order (no rowid), and a restored backup
// (keyed by rollout_id, mac) would not keep one either. A wave's hosts start together, so nothing depends on it.
const HOSTS =
  'SELECT mac, wave, step, reason, build_id, updated_at FROM rollout_hosts WHERE rollout_id = ? ORDER BY wave, mac';

export class RolloutRepo implements RolloutStore {
  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
  ) {}

  async create(r: NewRollout): Promise<Rollout> {
    const now = this.now();
    return this.sql.tx(async (sql) => {
      const row = await sql.get<RolloutRow>(
        `INSERT INTO rollouts (created_at, actor, scope, power, wave_size, wave_interval_ms, status, next_wave, next_wave_at)
         VALUES (?, ?, ?, ?, ?, ?, 'running', 0, ?) RETURNING *`,
        [now, r.actor, r.scope, r.power ? 1 : 0, r.waveSize, r.waveIntervalMs, now],
      );
      const id = Number(row!.id);
      for (let i = 0; i < r.macs.length; i++) {
        await sql.run(
          "INSERT INTO rollout_hosts (rollout_id, mac, wave, step, updated_at) VALUES (?, ?, ?, 'queued', ?)",
          [id, r.macs[i]!, Math.floor(i / r.waveSize), now],
        );
      }
      await sql.run(
        `DELETE FROM rollouts WHERE status != 'running' AND id NOT IN (SELECT id FROM rollouts ORDER BY id DESC LIMIT ${ROLLOUTS_KEPT})`,
      );
      return rolloutFromRow(row!);
    });
  }
  async get(id: number): Promise<Rollout | undefined> {
    const r = await this.sql.get<RolloutRow>('SELECT * FROM rollouts WHERE id = ?', [id]);
    return r && rolloutFromRow(r);
  }
  async hosts(id: number): Promise<RolloutHost[]> {
    return (await this.sql.all<RolloutHostRow>(HOSTS, [id])).map(rolloutHostFromRow);
  }
  async list(limit: number, beforeId = Number.MAX_SAFE_INTEGER): Promise<Rollout[]> {
    const rows = await this.sql.all<RolloutRow>('SELECT * FROM rollouts WHERE id < ? ORDER BY id DESC LIMIT ?', [
      beforeId,
      limit,
    ]);
    return rows.map(rolloutFromRow);
  }
  async running(): Promise<Rollout[]> {
    return (await this.sql.all<RolloutRow>("SELECT * FROM rollouts WHERE status = 'running' ORDER BY id")).map(
      rolloutFromRow,
    );
  }
  async setStep(id: number, mac: Mac, step: RolloutStep, reason?: string, buildId?: number): Promise<void> {
    await this.sql.run(
      `UPDATE rollout_hosts SET step = ?, reason = ?, build_id = COALESCE(?, build_id), updated_at = ?
       WHERE rollout_id = ? AND mac = ?`,
      [step, reason ?? null, buildId ?? null, this.now(), id, mac],
    );
  }
  async advance(id: number, wave: number, at: number): Promise<void> {
    await this.sql.run("UPDATE rollouts SET next_wave = ?, next_wave_at = ? WHERE id = ? AND status = 'running'", [
      wave,
      at,
      id,
    ]);
  }
  async finish(id: number, status: 'done' | 'cancelled'): Promise<boolean> {
    const now = this.now();
    return this.sql.tx(async (sql) => {
      const n = await sql.run("UPDATE rollouts SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'", [
        status,
        now,
        id,
      ]);
      if (n && status === 'cancelled')
        await sql.run(
          "UPDATE rollout_hosts SET step = 'cancelled', reason = 'rollout cancelled before this host started', updated_at = ? WHERE rollout_id = ? AND step = 'queued'",
          [now, id],
        );
      return n > 0;
    });
  }
  /** One read of the running rollouts' hosts, matched here: a list of MACs needs no placeholder per MAC. */
  async runningWith(macs: readonly Mac[]): Promise<Rollout[]> {
    const want = new Set<string>(macs);
    const running = await this.running();
    if (!running.length || !want.size) return [];
    const held = await this.sql.all<{ rollout_id: number; mac: string }>(
      "SELECT h.rollout_id, h.mac FROM rollout_hosts h JOIN rollouts r ON r.id = h.rollout_id WHERE r.status = 'running'",
    );
    const ids = new Set(held.filter((h) => want.has(h.mac)).map((h) => Number(h.rollout_id)));
    return running.filter((r) => ids.has(r.id));
  }
}
