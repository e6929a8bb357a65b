// Rollouts: builds of many hosts in waves (src/rollout). Storage only; the serving process carries them out.
// The interface is Promise-returning so a PostgreSQL store can stand in; the SQLite one works synchronously inside.
import type { Db } from './db.ts';
import type { Mac } from '../net/mac.ts';

export type RolloutStatus = 'running' | 'done' | 'cancelled';
/** Where one host is in its rollout. build-started is final for a host without a BMC (or with power off). */
export type RolloutStep = 'queued' | 'build-started' | 'boot-set' | 'powered' | 'failed' | 'cancelled';

export interface Rollout {
  id: number;
  createdAt: number;
  actor: string;
  /** What was asked: "rack R1" or "hosts". */
  scope: string;
  power: boolean;
  waveSize: number;
  waveIntervalMs: number;
  status: RolloutStatus;
  /** The wave the runner does next; waves before it are finished. */
  nextWave: number;
  nextWaveAt: number;
  finishedAt?: number;
}

export interface RolloutHost {
  mac: Mac;
  wave: number;
  step: RolloutStep;
  reason?: string;
  buildId?: number;
  updatedAt: number;
}

export interface NewRollout {
  actor: string;
  scope: string;
  power: boolean;
  waveSize: number;
  waveIntervalMs: number;
  /** In wave order: host i goes in wave floor(i / waveSize). */
  macs: readonly Mac[];
}

export interface RolloutStore {
  create(r: NewRollout): Promise<Rollout>;
  get(id: number): Promise<Rollout | undefined>;
  hosts(id: number): Promise<RolloutHost[]>;
  /** Newest first, at most `limit`; with `beforeId` only those older than that rollout (the next page). */
  list(limit: number, beforeId?: number): Promise<Rollout[]>;
  running(): Promise<Rollout[]>;
  setStep(id: number, mac: Mac, step: RolloutStep, reason?: string, buildId?: number): Promise<void>;
  /** The wave after `wave` is due at `at`; only while the rollout runs. */
  advance(id: number, wave: number, at: number): Promise<void>;
  /** Ends a running rollout; false when it was not running (cancelled meanwhile). */
  finish(id: number, status: 'done' | 'cancelled'): Promise<boolean>;
  /** Running rollouts that hold any of these hosts. */
  runningWith(macs: readonly Mac[]): Promise<Rollout[]>;
}

/** Finished rollouts kept (the newest); a running one is never pruned. */
export const ROLLOUTS_KEPT = 1000;

export interface RolloutRow {
  id: number;
  created_at: number;
  actor: string;
  scope: string;
  power: number;
  wave_size: number;
  wave_interval_ms: number;
  status: RolloutStatus;
  next_wave: number;
  next_wave_at: number;
  finished_at: number | null;
}

export interface RolloutHostRow {
  mac: string;
  wave: number;
  step: RolloutStep;
  reason: string | null;
  build_id: number | null;
  updated_at: number;
}

export function rolloutFromRow(r: RolloutRow): Rollout {
  const out: Rollout = {
    id: r.id,
    createdAt: r.created_at,
    actor: r.actor,
    scope: r.scope,
    power: r.power === 1,
    waveSize: r.wave_size,
    waveIntervalMs: r.wave_interval_ms,
    status: r.status,
    nextWave: r.next_wave,
    nextWaveAt: r.next_wave_at,
  };
  if (r.finished_at !== null) out.finishedAt = r.finished_at;
  return out;
}

export function rolloutHostFromRow(r: RolloutHostRow): RolloutHost {
  const h: RolloutHost = { mac: r.mac as Mac, wave: r.wave, step: r.step, updatedAt: r.updated_at };
  if (r.reason !== null) h.reason = r.reason;
  if (r.build_id !== null) h.buildId = r.build_id;
  return h;
}

export class SqliteRolloutStore implements RolloutStore {
  private readonly insertStmt;
  private readonly insertHostStmt;
  private readonly byIdStmt;
  private readonly hostsStmt;
  private readonly listStmt;
  private readonly runningStmt;
  private readonly stepStmt;
  private readonly advanceStmt;
  private readonly finishStmt;
  private readonly cancelQueuedStmt;
  private readonly pruneStmt;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.insertStmt = db.prepare(
      `INSERT INTO rollouts (created_at, actor, scope, power, wave_size, wave_interval_ms, status, next_wave, next_wave_at)
       VALUES (?, ?, ?, ?, ?, ?, 'running', 0, ?)`,
    );
    this.insertHostStmt = db.prepare(
      `INSERT INTO rollout_hosts (rollout_id, mac, wave, step, updated_at) VALUES (?, ?, ?, 'queued', ?)`,
    );
    this.byIdStmt = db.prepare<[number], RolloutRow>('SELECT * FROM rollouts WHERE id = ?');
    this.hostsStmt = db.prepare<[number], RolloutHostRow>(
      'SELECT mac, wave, step, reason, build_id, updated_at FROM rollout_hosts WHERE rollout_id = ? ORDER BY wave, rowid',
    );
    this.listStmt = db.prepare<[number, number], RolloutRow>(
      'SELECT * FROM rollouts WHERE id < ? ORDER BY id DESC LIMIT ?',
    );
    this.runningStmt = db.prepare<[], RolloutRow>("SELECT * FROM rollouts WHERE status = 'running' ORDER BY id");
    this.stepStmt = db.prepare(
      `UPDATE rollout_hosts SET step = ?, reason = ?, build_id = COALESCE(?, build_id), updated_at = ?
       WHERE rollout_id = ? AND mac = ?`,
    );
    this.advanceStmt = db.prepare(
      "UPDATE rollouts SET next_wave = ?, next_wave_at = ? WHERE id = ? AND status = 'running'",
    );
    this.finishStmt = db.prepare("UPDATE rollouts SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'");
    this.cancelQueuedStmt = db.prepare(
      "UPDATE rollout_hosts SET step = 'cancelled', reason = 'rollout cancelled before this host started', updated_at = ? WHERE rollout_id = ? AND step = 'queued'",
    );
    this.pruneStmt = db.prepare(
      `DELETE FROM rollouts WHERE status != 'running' AND id NOT IN (SELECT id FROM rollouts ORDER BY id DESC LIMIT ${ROLLOUTS_KEPT})`,
    );
  }

  create(r: NewRollout): Promise<Rollout> {
    const now = this.now();
    const id = this.db.transaction(() => {
      const rid = Number(
        this.insertStmt.run(now, r.actor, r.scope, r.power ? 1 : 0, r.waveSize, r.waveIntervalMs, now).lastInsertRowid,
      );
      r.macs.forEach((mac, i) => this.insertHostStmt.run(rid, mac, Math.floor(i / r.waveSize), now));
      this.pruneStmt.run();
      return rid;
    })();
    return Promise.resolve(rolloutFromRow(this.byIdStmt.get(id)!));
  }
  get(id: number): Promise<Rollout | undefined> {
    const r = this.byIdStmt.get(id);
    return Promise.resolve(r && rolloutFromRow(r));
  }
  hosts(id: number): Promise<RolloutHost[]> {
    return Promise.resolve(this.hostsStmt.all(id).map(rolloutHostFromRow));
  }
  list(limit: number, beforeId = Number.MAX_SAFE_INTEGER): Promise<Rollout[]> {
    return Promise.resolve(this.listStmt.all(beforeId, limit).map(rolloutFromRow));
  }
  running(): Promise<Rollout[]> {
    return Promise.resolve(this.runningStmt.all().map(rolloutFromRow));
  }
  setStep(id: number, mac: Mac, step: RolloutStep, reason?: string, buildId?: number): Promise<void> {
    this.stepStmt.run(step, reason ?? null, buildId ?? null, this.now(), id, mac);
    return Promise.resolve();
  }
  advance(id: number, wave: number, at: number): Promise<void> {
    this.advanceStmt.run(wave, at, id);
    return Promise.resolve();
  }
  finish(id: number, status: 'done' | 'cancelled'): Promise<boolean> {
    const now = this.now();
    const changed = this.db.transaction(() => {
      const n = this.finishStmt.run(status, now, id).changes;
      if (n && status === 'cancelled') this.cancelQueuedStmt.run(now, id);
      return n > 0;
    })();
    return Promise.resolve(changed);
  }
  runningWith(macs: readonly Mac[]): Promise<Rollout[]> {
    const want = new Set<string>(macs);
    const out = this.runningStmt
      .all()
      .map(rolloutFromRow)
      .filter((r) => this.hostsStmt.all(r.id).some((h) => want.has(h.mac)));
    return Promise.resolve(out);
  }
}
