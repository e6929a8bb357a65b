// Rollouts: builds of many hosts in waves (src/rollout). Storage only; the serving process carries them out.
// The interface is Promise-returning so a PostgreSQL store can stand in; the SQLite one works synchronously inside.
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
