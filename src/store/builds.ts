// One row per install attempt. The token (256 bits) is never stored: the row keeps its SHA-256 for
// look-ups and a random nonce; the token is HMAC(server secret, nonce), so boot configs rendered later
// can carry it while a stolen database alone yields no working token.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Db } from './db.ts';
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

interface BuildRow {
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

function fromRow(r: BuildRow): Build {
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

export class BuildStore {
  private readonly latestStmt;
  private readonly byHashStmt;
  private readonly byIdStmt;
  private readonly supersedeStmt;
  private readonly insertStmt;
  private readonly setStatusStmt;
  private readonly fetchedStmt;
  private readonly historyStmt;
  private readonly latestAllStmt;
  private readonly nonceStmt;

  /**
   * `timelineDb` (optional) takes the bookkeeping writes that need not be fsynced one by one (kickstart fetched at).
   * `callbackGraceMs`: see takesCallbacks.
   */
  constructor(
    private readonly db: Db,
    private readonly secret: Buffer,
    private readonly now: () => number = Date.now,
    timelineDb: Db = db,
    readonly callbackGraceMs: number = DEFAULT_CALLBACK_GRACE_MS,
  ) {
    // A cancelled build is as if it never started: the host is back where it was (a cancelled rebuild leaves it built).
    this.latestStmt = db.prepare<[string], BuildRow>(
      "SELECT * FROM builds WHERE mac = ? AND status != 'cancelled' ORDER BY id DESC LIMIT 1",
    );
    this.byHashStmt = db.prepare<[string], BuildRow>('SELECT * FROM builds WHERE token_hash = ?');
    this.byIdStmt = db.prepare<[number], BuildRow>('SELECT * FROM builds WHERE id = ?');
    this.supersedeStmt = db.prepare(
      "UPDATE builds SET status = 'superseded', finished_at = ? WHERE mac = ? AND status = 'pending'",
    );
    this.insertStmt = db.prepare(
      `INSERT INTO builds (mac, token_hash, token_prefix, nonce, status, created_at, expires_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
    );
    this.nonceStmt = db.prepare<[number], { nonce: string }>('SELECT nonce FROM builds WHERE id = ?');
    this.setStatusStmt = db.prepare('UPDATE builds SET status = ?, finished_at = ?, failure_log = ? WHERE id = ?');
    this.fetchedStmt = timelineDb.prepare(
      'UPDATE builds SET ks_fetched_at = ?, ks_fetched_from = ? WHERE id = ? AND ks_fetched_at IS NULL',
    );
    this.historyStmt = db.prepare<[string], BuildRow>('SELECT * FROM builds WHERE mac = ? ORDER BY id DESC LIMIT 50');
    this.latestAllStmt = db.prepare<[], BuildRow>(
      "SELECT b.* FROM builds b JOIN (SELECT mac, MAX(id) id FROM builds WHERE status != 'cancelled' GROUP BY mac) l ON b.id = l.id",
    );
  }

  latest(mac: Mac): Build | undefined {
    const r = this.latestStmt.get(mac);
    return r && fromRow(r);
  }
  history(mac: Mac): Build[] {
    return this.historyStmt.all(mac).map(fromRow);
  }
  byId(id: number): Build | undefined {
    const r = this.byIdStmt.get(id);
    return r && fromRow(r);
  }
  byToken(token: string): Build | undefined {
    const r = this.byHashStmt.get(hashToken(token));
    return r && fromRow(r);
  }
  latestForAll(): Map<string, Build> {
    return new Map(this.latestAllStmt.all().map((r) => [r.mac, fromRow(r)]));
  }

  state(mac: Mac): HostState {
    return stateOf(this.latest(mac), this.now());
  }

  /** Opens a new build; any pending one for the host is superseded, so its token stops working. */
  start(mac: Mac, ttlMs: number): { build: Build; token: string } {
    const nonce = randomBytes(16).toString('base64url');
    const token = this.deriveToken(nonce);
    const now = this.now();
    const id = this.db.transaction(() => {
      this.supersedeStmt.run(now, mac);
      return Number(
        this.insertStmt.run(mac, hashToken(token), token.slice(0, 6), nonce, now, now + ttlMs).lastInsertRowid,
      );
    })();
    return { build: this.byId(id)!, token };
  }

  /** The token of a build, for rendering its boot config and kickstart. */
  tokenOf(build: Build): string {
    return this.deriveToken(this.nonceStmt.get(build.id)!.nonce);
  }

  private deriveToken(nonce: string): string {
    return createHmac('sha256', this.secret).update(`rackboot-build-token:${nonce}`).digest('base64url');
  }

  cancel(mac: Mac): Build | undefined {
    const b = this.latest(mac);
    if (!b || b.status !== 'pending') return undefined;
    this.setStatusStmt.run('cancelled', this.now(), null, b.id);
    return this.byId(b.id);
  }

  markKickstartFetched(id: number, from: string): void {
    this.fetchedStmt.run(this.now(), from, id);
  }

  /** Checks a token for a kickstart fetch or a progress event: it must be the host's live build. */
  checkLive(token: string): CloseResult {
    const b = this.byToken(token);
    if (!b) return { ok: false, code: 'unknown', message: 'no build has this token' };
    if (b.status !== 'pending')
      return { ok: false, code: 'finished', build: b, message: `build ${b.id} is ${b.status}` };
    if (b.expiresAt <= this.now())
      return {
        ok: false,
        code: 'expired',
        build: b,
        message: `build ${b.id} token expired at ${new Date(b.expiresAt).toISOString()}`,
      };
    return { ok: true, build: b, changed: false };
  }

  /** Checks a token for a progress event: the live build, or one in its callback grace period (takesCallbacks). */
  checkCallback(token: string): CloseResult {
    const b = this.byToken(token);
    if (!b) return { ok: false, code: 'unknown', message: 'no build has this token' };
    if (b.status !== 'pending')
      return { ok: false, code: 'finished', build: b, message: `build ${b.id} is ${b.status}` };
    if (!takesCallbacks(b, this.now(), this.callbackGraceMs))
      return { ok: false, code: 'expired', build: b, message: expiredMessage(b, this.callbackGraceMs) };
    return { ok: true, build: b, changed: false };
  }

  /** Whether lines and events from the installer still belong to this build (syslog receiver). */
  inProgress(b: Build): boolean {
    return takesCallbacks(b, this.now(), this.callbackGraceMs);
  }

  /** built/failed callback. Repeating the same outcome succeeds and changes nothing (curl retries). */
  close(token: string, outcome: 'built' | 'failed', log?: string): CloseResult {
    return this.db.transaction((): CloseResult => {
      const b = this.byToken(token);
      if (!b) return { ok: false, code: 'unknown', message: 'no build has this token' };
      if (b.status === outcome) return { ok: true, build: b, changed: false };
      if (b.status !== 'pending')
        return {
          ok: false,
          code: b.status === 'superseded' || b.status === 'cancelled' ? 'not-current' : 'finished',
          build: b,
          message: `build ${b.id} is already ${b.status}`,
        };
      if (!takesCallbacks(b, this.now(), this.callbackGraceMs))
        return { ok: false, code: 'expired', build: b, message: expiredMessage(b, this.callbackGraceMs) };
      const boundedLog = log === undefined ? null : log.length > FAILURE_LOG_MAX ? log.slice(-FAILURE_LOG_MAX) : log;
      this.setStatusStmt.run(outcome, this.now(), boundedLog, b.id);
      return { ok: true, build: this.byId(b.id)!, changed: true };
    })();
  }
}

function expiredMessage(b: Build, graceMs: number): string {
  const at = new Date(b.expiresAt).toISOString();
  if (b.ksFetchedAt === undefined) return `build ${b.id} token expired at ${at} and its kickstart was never fetched`;
  return `build ${b.id} token expired at ${at}; its callback grace period (${Math.round(graceMs / 60_000)} min, --token-grace) ended at ${new Date(b.expiresAt + graceMs).toISOString()}`;
}
