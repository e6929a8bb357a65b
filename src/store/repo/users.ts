// Users, sessions and API tokens on either store. Password hashing and the rules are in src/store/users.ts.
import { randomBytes } from 'node:crypto';
import type { ApiToken, ApiTokenRow, Role, Session, SessionPolicy, SessionRow, User, UserRow } from '../users.ts';
import {
  API_TOKEN_PATTERN,
  DEFAULT_SESSION_POLICY,
  dummy,
  MAX_TOKENS_PER_USER,
  sha256,
  userFromRow,
  verifyUserPassword,
} from '../users.ts';
import type { Sql } from '../sql.ts';

export class UserRepo {
  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
  ) {}

  async get(name: string): Promise<User | undefined> {
    const r = await this.sql.get<UserRow>('SELECT * FROM users WHERE name = ?', [name]);
    return r && userFromRow(r);
  }
  async byId(id: number): Promise<User | undefined> {
    const r = await this.sql.get<UserRow>('SELECT * FROM users WHERE id = ?', [id]);
    return r && userFromRow(r);
  }
  async list(): Promise<User[]> {
    return (await this.sql.all<UserRow>('SELECT * FROM users ORDER BY name')).map(userFromRow);
  }
  async count(): Promise<number> {
    return (await this.sql.get<{ n: number }>('SELECT count(*) AS n FROM users'))!.n;
  }
  async activeAdmins(): Promise<number> {
    return (await this.sql.get<{ n: number }>("SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled = 0"))!
      .n;
  }
  /** passwordHash comes from hashUserPassword(). */
  async add(name: string, role: Role, passwordHash: string): Promise<User> {
    await this.sql.run('INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?, ?, ?, 0, ?)', [
      name,
      role,
      passwordHash,
      this.now(),
    ]);
    return (await this.get(name))!;
  }
  async setRole(name: string, role: Role): Promise<void> {
    await this.sql.run('UPDATE users SET role = ? WHERE name = ?', [role, name]);
  }
  /** Disabling also ends every session of the user. */
  setDisabled(name: string, disabled: boolean): Promise<boolean> {
    return this.sql.tx(async (sql) => {
      const n = await sql.run('UPDATE users SET disabled = ? WHERE name = ?', [disabled ? 1 : 0, name]);
      if (disabled) await sql.run('DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)', [name]);
      return n > 0;
    });
  }
  /** A new password ends the user's sessions. */
  async setPasswordHash(name: string, passwordHash: string): Promise<void> {
    await this.sql.tx(async (sql) => {
      await sql.run('UPDATE users SET password_hash = ? WHERE name = ?', [passwordHash, name]);
      await sql.run('DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)', [name]);
    });
  }
  /** The user if the name exists, is enabled and the password matches. Takes the same time either way. */
  async authenticate(name: string, password: string): Promise<User | undefined> {
    const row = await this.sql.get<UserRow>('SELECT * FROM users WHERE name = ?', [name]);
    const ok = await verifyUserPassword(password, row?.password_hash ?? dummy());
    if (!row || !ok || row.disabled) return undefined;
    return userFromRow(row);
  }
}

export class SessionRepo {
  constructor(
    private readonly sql: Sql,
    private readonly users: UserRepo,
    private readonly policy: SessionPolicy = DEFAULT_SESSION_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session: the id goes in the cookie, only its hash is stored. */
  async create(user: User): Promise<{ id: string; session: Session }> {
    const now = this.now();
    await this.sql.run('DELETE FROM sessions WHERE expires_at <= ?', [now]);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const expiresAt = Math.min(now + this.policy.idleMs, now + this.policy.absoluteMs);
    await this.sql.run(
      'INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)',
      [sha256(id), user.id, csrf, now, expiresAt, now],
    );
    return { id, session: { user, csrf, idHash: sha256(id), expiresAt } };
  }

  /** The live session for a cookie value; slides the idle expiry (at most once a minute, to spare writes). */
  async lookup(id: string | undefined): Promise<Session | undefined> {
    if (!id || id.length > 100) return undefined;
    const idHash = sha256(id);
    const row = await this.sql.get<SessionRow>('SELECT * FROM sessions WHERE id_hash = ?', [idHash]);
    if (!row) return undefined;
    const now = this.now();
    const user = row.expires_at > now ? await this.users.byId(row.user_id) : undefined;
    if (!user || user.disabled) {
      await this.destroy(idHash);
      return undefined;
    }
    let expiresAt = row.expires_at;
    if (now - row.last_seen > 60_000) {
      expiresAt = Math.min(now + this.policy.idleMs, row.created_at + this.policy.absoluteMs);
      await this.sql.run('UPDATE sessions SET last_seen = ?, expires_at = ? WHERE id_hash = ?', [
        now,
        expiresAt,
        idHash,
      ]);
    }
    return { user, csrf: row.csrf, idHash, expiresAt };
  }

  async destroy(idHash: string): Promise<void> {
    await this.sql.run('DELETE FROM sessions WHERE id_hash = ?', [idHash]);
  }
}

/** Per-user API tokens (see ApiTokenStore in src/store/users.ts): only a SHA-256 of each is kept. */
export class ApiTokenRepo {
  constructor(
    private readonly sql: Sql,
    private readonly users: UserRepo,
    private readonly now: () => number = Date.now,
  ) {}

  private rows(user: User): Promise<ApiTokenRow[]> {
    return this.sql.all<ApiTokenRow>('SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id', [user.id]);
  }

  /** A new token for the user: the text is returned once and never stored. */
  async create(user: User): Promise<{ token: string; info: ApiToken } | { error: string }> {
    if ((await this.rows(user)).length >= MAX_TOKENS_PER_USER)
      return { error: `${user.name} has ${MAX_TOKENS_PER_USER} tokens already: revoke one first` };
    const token = `rbt_${randomBytes(32).toString('base64url')}`;
    const prefix = token.slice(4, 12);
    const now = this.now();
    const r = await this.sql.get<{ id: number }>(
      'INSERT INTO api_tokens (user_id, prefix, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id',
      [user.id, prefix, sha256(token), now],
    );
    return { token, info: { id: r!.id, userName: user.name, prefix, createdAt: now } };
  }

  async list(user: User): Promise<ApiToken[]> {
    return (await this.rows(user)).map((r) => ({
      id: r.id,
      userName: user.name,
      prefix: r.prefix,
      createdAt: r.created_at,
      lastUsedAt: r.last_used_at ?? undefined,
    }));
  }

  /** Revokes the user's token with this prefix (or id); false when there is none. */
  async revoke(user: User, prefixOrId: string): Promise<boolean> {
    const row = (await this.rows(user)).find((t) => t.prefix === prefixOrId || String(t.id) === prefixOrId);
    if (!row) return false;
    await this.sql.run('DELETE FROM api_tokens WHERE id = ?', [row.id]);
    return true;
  }

  /** The enabled user a bearer token belongs to; records its use (at most once a minute). */
  async authenticate(token: string): Promise<User | undefined> {
    if (!API_TOKEN_PATTERN.test(token)) return undefined;
    const row = await this.sql.get<ApiTokenRow>('SELECT * FROM api_tokens WHERE token_hash = ?', [sha256(token)]);
    if (!row) return undefined;
    const user = await this.users.byId(row.user_id);
    if (!user || user.disabled) return undefined;
    const now = this.now();
    if (row.last_used_at === null || now - row.last_used_at > 60_000)
      await this.sql.run('UPDATE api_tokens SET last_used_at = ? WHERE id = ?', [now, row.id]);
    return user;
  }
}
