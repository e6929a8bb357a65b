// Build lifecycle on either store. Token rules and states are those of src/store/builds.ts (pure helpers shared).
import { createHmac, randomBytes } from 'node:crypto';
import type { Mac } from '../../net/mac.ts';
import type { Build, BuildRow, CloseResult, HostState } from '../builds.ts';
import {
  buildFromRow,
  DEFAULT_CALLBACK_GRACE_MS,
  expiredMessage,
  FAILURE_LOG_MAX,
  hashToken,
  stateOf,
  takesCallbacks,
} from '../builds.ts';
import type { Sql } from '../sql.ts';
import type { ChangeFeed } from '../changes-feed.ts';

export class BuildRepo {
  /** `timeline` takes the bookkeeping writes that need not be fsynced one by one (kickstart fetched at). */
  constructor(
    private readonly sql: Sql,
    private readonly feed: ChangeFeed,
    private readonly secret: Buffer,
    private readonly now: () => number = Date.now,
    private readonly timeline: Sql = sql,
    readonly callbackGraceMs: number = DEFAULT_CALLBACK_GRACE_MS,
  ) {}

  /** A cancelled build is as if it never started: the host is back where it was (a cancelled rebuild stays built). */
  async latest(mac: Mac, sql = this.sql): Promise<Build | undefined> {
    const r = await sql.get<BuildRow>(
      "SELECT * FROM builds WHERE mac = ? AND status != 'cancelled' ORDER BY id DESC LIMIT 1",
      [mac],
    );
    return r && buildFromRow(r);
  }
  async history(mac: Mac): Promise<Build[]> {
    return (await this.sql.all<BuildRow>('SELECT * FROM builds WHERE mac = ? ORDER BY id DESC LIMIT 50', [mac])).map(
      buildFromRow,
    );
  }
  async byId(id: number, sql = this.sql): Promise<Build | undefined> {
    const r = await sql.get<BuildRow>('SELECT * FROM builds WHERE id = ?', [id]);
    return r && buildFromRow(r);
  }
  async byToken(token: string, sql = this.sql): Promise<Build | undefined> {
    const r = await sql.get<BuildRow>('SELECT * FROM builds WHERE token_hash = ?', [hashToken(token)]);
    return r && buildFromRow(r);
  }
  async latestForAll(): Promise<Map<string, Build>> {
    const rows = await this.sql.all<BuildRow>(
      "SELECT b.* FROM builds b JOIN (SELECT mac, MAX(id) id FROM builds WHERE status != 'cancelled' GROUP BY mac) l ON b.id = l.id",
    );
    return new Map(rows.map((r) => [r.mac, buildFromRow(r)]));
  }
  async state(mac: Mac): Promise<HostState> {
    return stateOf(await this.latest(mac), this.now());
  }

  /** Opens a new build; any pending one for the host is superseded. Serialised per host across nodes (lockKey). */
  async start(mac: Mac, ttlMs: number): Promise<{ build: Build; token: string }> {
    const nonce = randomBytes(16).toString('base64url');
    const token = this.deriveToken(nonce);
    const now = this.now();
    const build = await this.sql.tx(async (sql) => {
      await sql.lockKey(`build:${mac}`);
      await sql.run("UPDATE builds SET status = 'superseded', finished_at = ? WHERE mac = ? AND status = 'pending'", [
        now,
        mac,
      ]);
      const r = await sql.get<BuildRow>(
        `INSERT INTO builds (mac, token_hash, token_prefix, nonce, status, created_at, expires_at)
         VALUES (?, ?, ?, ?, 'pending', ?, ?) RETURNING *`,
        [mac, hashToken(token), token.slice(0, 6), nonce, now, now + ttlMs],
      );
      return buildFromRow(r!);
    });
    await this.feed.publish({ kind: 'build', mac });
    return { build, token };
  }

  /** The token of a build, for rendering its boot config and kickstart. */
  async tokenOf(build: Build): Promise<string> {
    const r = await this.sql.get<{ nonce: string }>('SELECT nonce FROM builds WHERE id = ?', [build.id]);
    return this.deriveToken(r!.nonce);
  }

  /** The tokens of every pending build, by build id: the in-memory view renders boot configs without a query. */
  async pendingTokens(): Promise<Map<number, string>> {
    const rows = await this.sql.all<{ id: number; nonce: string }>(
      "SELECT id, nonce FROM builds WHERE status = 'pending'",
    );
    return new Map(rows.map((r) => [Number(r.id), this.deriveToken(r.nonce)]));
  }

  private deriveToken(nonce: string): string {
    return createHmac('sha256', this.secret).update(`rackboot-build-token:${nonce}`).digest('base64url');
  }

  async cancel(mac: Mac): Promise<Build | undefined> {
    const b = await this.latest(mac);
    if (!b || b.status !== 'pending') return undefined;
    // AND status = 'pending': a built callback landing between the read and this write wins.
    const n = await this.sql.run(
      "UPDATE builds SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'pending'",
      [this.now(), b.id],
    );
    if (!n) return undefined;
    await this.feed.publish({ kind: 'build', mac });
    return this.byId(b.id);
  }

  /** The first fetch ties the build to an address: the views must hear of it (only that address may speak for it). */
  async markKickstartFetched(id: number, from: string, mac?: Mac): Promise<void> {
    const n = await this.timeline.run(
      'UPDATE builds SET ks_fetched_at = ?, ks_fetched_from = ? WHERE id = ? AND ks_fetched_at IS NULL',
      [this.now(), from, id],
    );
    if (n && mac) await this.feed.publish({ kind: 'build', mac });
  }

  /** Checks a token for a kickstart fetch: it must be the host's live build. */
  async checkLive(token: string): Promise<CloseResult> {
    const b = await this.byToken(token);
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

  /** Checks a token for a progress event: the live build, or one in its callback grace period. */
  async checkCallback(token: string): Promise<CloseResult> {
    const b = await this.byToken(token);
    if (!b) return { ok: false, code: 'unknown', message: 'no build has this token' };
    if (b.status !== 'pending')
      return { ok: false, code: 'finished', build: b, message: `build ${b.id} is ${b.status}` };
    if (!takesCallbacks(b, this.now(), this.callbackGraceMs))
      return { ok: false, code: 'expired', build: b, message: expiredMessage(b, this.callbackGraceMs) };
    return { ok: true, build: b, changed: false };
  }

  inProgress(b: Build): boolean {
    return takesCallbacks(b, this.now(), this.callbackGraceMs);
  }

  /** built/failed callback. Repeating the same outcome succeeds and changes nothing (curl retries). */
  async close(token: string, outcome: 'built' | 'failed', log?: string): Promise<CloseResult> {
    const result = await this.sql.tx(async (sql): Promise<CloseResult> => {
      const found = await this.byToken(token, sql);
      if (found) await sql.lockKey(`build:${found.mac}`);
      // Re-read under the lock: another node may have closed it meanwhile.
      const b = found && (await this.byId(found.id, sql));
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
      const bounded = log === undefined ? null : log.length > FAILURE_LOG_MAX ? log.slice(-FAILURE_LOG_MAX) : log;
      await sql.run('UPDATE builds SET status = ?, finished_at = ?, failure_log = ? WHERE id = ?', [
        outcome,
        this.now(),
        bounded,
        b.id,
      ]);
      return { ok: true, build: (await this.byId(b.id, sql))!, changed: true };
    });
    if (result.ok && result.changed) await this.feed.publish({ kind: 'build', mac: result.build.mac });
    return result;
  }
}
