// One row per install attempt. The token (256 bits) is never stored: the row keeps its SHA-256 for
// look-ups and a random nonce; the token is HMAC(server secret, nonce), so boot configs rendered later
// can carry it. The secret is the database's own (src/store/build-secret.ts), so every node sharing the
// database derives the same tokens: a copy of the database is as secret as the tokens it can mint.
import { createHash } from 'node:crypto';
import type { Mac } from '../net/mac.ts';

export type BuildStatus = 'pending' | 'built' | 'failed' | 'cancelled' | 'superseded';
/** What a person sees: derived from the latest build, never stored twice. */
export type HostState = 'idle' | 'build' | 'built' | 'failed' | 'expired';

export interface Build {
  id: number;
  mac: Mac;
  tokenPrefix: string;
  status: BuildStatus;
  createdAt: number;
  expiresAt: number;
  ksFetchedAt?: number;
  ksFetchedFrom?: string;
  finishedAt?: number;
  failureLog?: string;
}

export interface BuildRow {
  id: number;
  mac: string;
  token_prefix: string;
  nonce: string;
  status: BuildStatus;
  created_at: number;
  expires_at: number;
  ks_fetched_at: number | null;
  ks_fetched_from: string | null;
  finished_at: number | null;
  failure_log: string | null;
}

export function buildFromRow(r: BuildRow): Build {
  const b: Build = {
    id: r.id,
    mac: r.mac as Mac,
    tokenPrefix: r.token_prefix,
    status: r.status,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
  if (r.ks_fetched_at !== null) b.ksFetchedAt = r.ks_fetched_at;
  if (r.ks_fetched_from !== null) b.ksFetchedFrom = r.ks_fetched_from;
  if (r.finished_at !== null) b.finishedAt = r.finished_at;
  if (r.failure_log !== null) b.failureLog = r.failure_log;
  return b;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function stateOf(build: Build | undefined, now: number): HostState {
  if (!build || build.status === 'cancelled' || build.status === 'superseded') return 'idle';
  if (build.status === 'pending') return build.expiresAt <= now ? 'expired' : 'build';
  return build.status;
}

export type CloseResult =
  | { ok: true; build: Build; changed: boolean }
  | { ok: false; code: 'unknown' | 'expired' | 'not-current' | 'finished'; build?: Build; message: string };

export const FAILURE_LOG_MAX = 64 * 1024;

/** How long after its token expired a build whose kickstart was fetched still takes built/failed/progress. */
export const DEFAULT_CALLBACK_GRACE_MS = 24 * 3600_000;

/**
 * Whether a pending build still takes callbacks at `now`. Anaconda may still be copying the image when
 * the token lifetime ends; a 410 on the built callback then fails %post under --erroronfail and stops a
 * fully installed host on an error screen (Foreman: "built" must work after the token expired mid-install).
 * So a build whose kickstart was fetched gets a grace period; one that never fetched it does not.
 */
export function takesCallbacks(b: Build, now: number, graceMs: number): boolean {
  if (b.status !== 'pending') return false;
  if (b.expiresAt > now) return true;
  return b.ksFetchedAt !== undefined && b.expiresAt + graceMs > now;
}

export function expiredMessage(b: Build, graceMs: number): string {
  const at = new Date(b.expiresAt).toISOString();
  if (b.ksFetchedAt === undefined) return `build ${b.id} token expired at ${at} and its kickstart was never fetched`;
  return `build ${b.id} token expired at ${at}; its callback grace period (${Math.round(graceMs / 60_000)} min, --token-grace) ended at ${new Date(b.expiresAt + graceMs).toISOString()}`;
}
