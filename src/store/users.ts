// Web UI users and their sessions. Passwords are scrypt hashes (node:crypto); a session id reaches
// only the browser's cookie: the table keeps its SHA-256, so a copy of the database opens no session.
import {
  createHash,
  randomBytes,
  scrypt as scryptCb,
  scryptSync,
  timingSafeEqual,
  type ScryptOptions,
} from 'node:crypto';
import type { Db } from './db.ts';

export type Role = 'admin' | 'tech';
export const ROLES: readonly Role[] = ['admin', 'tech'];

export interface User {
  id: number;
  name: string;
  role: Role;
  disabled: boolean;
  createdAt: number;
}

interface UserRow {
  id: number;
  name: string;
  role: Role;
  password_hash: string;
  disabled: number;
  created_at: number;
}

const fromRow = (r: UserRow): User => ({
  id: r.id,
  name: r.name,
  role: r.role,
  disabled: r.disabled !== 0,
  createdAt: r.created_at,
});

// OWASP's scrypt floor is N=2^17 with r=8; 2^15 keeps a login near 50 ms on a small appliance while
// costing an attacker 32 MiB per guess. The parameters are stored in each hash, so raising them later
// only affects new hashes.
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 };
const MAXMEM = 128 * SCRYPT.N * SCRYPT.r * 2;

export const PASSWORD_MIN = 10;
export const USER_NAME = /^[a-z][a-z0-9._-]{0,31}$/;

/** Problems with a new password, or undefined when it will do. */
export function checkPassword(password: string, name?: string): string | undefined {
  if (password.length < PASSWORD_MIN) return `the password must have at least ${PASSWORD_MIN} characters`;
  if (password.length > 1024) return 'the password must have at most 1024 characters';
  if (name && password.toLowerCase().includes(name.toLowerCase())) return 'the password must not contain the user name';
  return undefined;
}

export function checkUserName(name: string): string | undefined {
  return USER_NAME.test(name)
    ? undefined
    : `user name "${name}" must be 1-32 lower-case letters, digits, ".", "_" or "-", starting with a letter`;
}

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** "scrypt$N$r$p$salt$hash" (base64url): self-describing, so the cost can change without a migration. */
export async function hashUserPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password.normalize('NFC'), salt, SCRYPT.keylen, {
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    maxmem: MAXMEM,
  });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export function hashUserPasswordSync(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password.normalize('NFC'), salt, SCRYPT.keylen, {
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    maxmem: MAXMEM,
  });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyUserPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0) || N > 2 ** 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4], 'base64url');
  const want = Buffer.from(parts[5], 'base64url');
  if (want.length < 16) return false;
  const got = await scryptAsync(password.normalize('NFC'), salt, want.length, { N, r, p, maxmem: 128 * N * r * 2 });
  return timingSafeEqual(got, want);
}

/** A hash of a random password: verifying against it costs what a real check costs, so a missing user is not told apart by time. */
let dummyHash: string | undefined;
function dummy(): string {
  return (dummyHash ??= hashUserPasswordSync(randomBytes(18).toString('base64')));
}

export class UserStore {
  private readonly byNameStmt;
  private readonly byIdStmt;
  private readonly listStmt;
  private readonly insertStmt;
  private readonly countAdminsStmt;
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.byNameStmt = db.prepare<[string], UserRow>('SELECT * FROM users WHERE name = ?');
    this.byIdStmt = db.prepare<[number], UserRow>('SELECT * FROM users WHERE id = ?');
    this.listStmt = db.prepare<[], UserRow>('SELECT * FROM users ORDER BY name');
    this.insertStmt = db.prepare(
      'INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?, ?, ?, 0, ?)',
    );
    this.countAdminsStmt = db.prepare<[], { n: number }>(
      "SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled = 0",
    );
  }

  get(name: string): User | undefined {
    const r = this.byNameStmt.get(name);
    return r && fromRow(r);
  }
  byId(id: number): User | undefined {
    const r = this.byIdStmt.get(id);
    return r && fromRow(r);
  }
  list(): User[] {
    return this.listStmt.all().map(fromRow);
  }
  count(): number {
    return this.listStmt.all().length;
  }
  activeAdmins(): number {
    return this.countAdminsStmt.get()!.n;
  }

  /** passwordHash comes from hashUserPassword(). */
  add(name: string, role: Role, passwordHash: string): User {
    this.insertStmt.run(name, role, passwordHash, this.now());
    return this.get(name)!;
  }

  setRole(name: string, role: Role): void {
    this.db.prepare('UPDATE users SET role = ? WHERE name = ?').run(role, name);
  }

  /** Disabling also ends every session of the user. */
  setDisabled(name: string, disabled: boolean): boolean {
    return this.db.transaction(() => {
      const r = this.db.prepare('UPDATE users SET disabled = ? WHERE name = ?').run(disabled ? 1 : 0, name);
      if (disabled)
        this.db.prepare('DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)').run(name);
      return r.changes > 0;
    })();
  }

  /** A new password ends the user's other sessions. */
  setPasswordHash(name: string, passwordHash: string): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE users SET password_hash = ? WHERE name = ?').run(passwordHash, name);
      this.db.prepare('DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)').run(name);
    })();
  }

  /** The user if the name exists, is enabled and the password matches. Takes the same time either way. */
  async authenticate(name: string, password: string): Promise<User | undefined> {
    const row = this.byNameStmt.get(name);
    const ok = await verifyUserPassword(password, row?.password_hash ?? dummy());
    if (!row || !ok || row.disabled) return undefined;
    return fromRow(row);
  }
}

export interface Session {
  user: User;
  csrf: string;
  idHash: string;
  expiresAt: number;
}

export interface SessionPolicy {
  /** Ends a session this long after its last request. */
  idleMs: number;
  /** Ends a session this long after login, however busy. */
  absoluteMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleMs: 4 * 3600e3, absoluteMs: 12 * 3600e3 };

interface SessionRow {
  id_hash: string;
  user_id: number;
  csrf: string;
  created_at: number;
  expires_at: number;
  last_seen: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export class SessionStore {
  private readonly getStmt;
  private readonly touchStmt;
  private readonly insertStmt;
  private readonly deleteStmt;
  private readonly purgeStmt;
  constructor(
    db: Db,
    private readonly users: UserStore,
    private readonly policy: SessionPolicy = DEFAULT_SESSION_POLICY,
    private readonly now: () => number = Date.now,
  ) {
    this.getStmt = db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id_hash = ?');
    this.touchStmt = db.prepare('UPDATE sessions SET last_seen = ?, expires_at = ? WHERE id_hash = ?');
    this.insertStmt = db.prepare(
      'INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.deleteStmt = db.prepare('DELETE FROM sessions WHERE id_hash = ?');
    this.purgeStmt = db.prepare('DELETE FROM sessions WHERE expires_at <= ?');
  }

  /** A new session: the id goes in the cookie, only its hash is stored. */
  create(user: User): { id: string; session: Session } {
    const now = this.now();
    this.purgeStmt.run(now);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const expiresAt = Math.min(now + this.policy.idleMs, now + this.policy.absoluteMs);
    this.insertStmt.run(sha256(id), user.id, csrf, now, expiresAt, now);
    return { id, session: { user, csrf, idHash: sha256(id), expiresAt } };
  }

  /** The live session for a cookie value; slides the idle expiry (at most once a minute, to spare writes). */
  lookup(id: string | undefined): Session | undefined {
    if (!id || id.length > 100) return undefined;
    const idHash = sha256(id);
    const row = this.getStmt.get(idHash);
    if (!row) return undefined;
    const now = this.now();
    if (row.expires_at <= now) {
      this.deleteStmt.run(idHash);
      return undefined;
    }
    const user = this.users.byId(row.user_id);
    if (!user || user.disabled) {
      this.deleteStmt.run(idHash);
      return undefined;
    }
    let expiresAt = row.expires_at;
    if (now - row.last_seen > 60_000) {
      expiresAt = Math.min(now + this.policy.idleMs, row.created_at + this.policy.absoluteMs);
      this.touchStmt.run(now, expiresAt, idHash);
    }
    return { user, csrf: row.csrf, idHash, expiresAt };
  }

  destroy(idHash: string): void {
    this.deleteStmt.run(idHash);
  }
}

export interface ApiToken {
  id: number;
  userName: string;
  prefix: string;
  createdAt: number;
  lastUsedAt?: number;
}
interface ApiTokenRow {
  id: number;
  user_id: number;
  prefix: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
}

/** What a per-user token looks like: "rbt_" and 43 base64url characters; the first 8 after rbt_ are its visible prefix. */
export const API_TOKEN_PATTERN = /^rbt_[A-Za-z0-9_-]{43}$/;
export const MAX_TOKENS_PER_USER = 20;

/**
 * Per-user API tokens: each acts with its user's role, and the audit names the user. A token is 32 random
 * bytes, so a plain SHA-256 at rest is enough (nothing to brute-force); it is shown once, at creation.
 */
export class ApiTokenStore {
  private readonly byHashStmt;
  private readonly listStmt;
  private readonly touchStmt;
  constructor(
    private readonly db: Db,
    private readonly users: UserStore,
    private readonly now: () => number = Date.now,
  ) {
    this.byHashStmt = db.prepare<[string], ApiTokenRow>('SELECT * FROM api_tokens WHERE token_hash = ?');
    this.listStmt = db.prepare<[number], ApiTokenRow>('SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id');
    this.touchStmt = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
  }

  /** A new token for the user: the text is returned once and never stored. */
  create(user: User): { token: string; info: ApiToken } | { error: string } {
    if (this.listStmt.all(user.id).length >= MAX_TOKENS_PER_USER)
      return { error: `${user.name} has ${MAX_TOKENS_PER_USER} tokens already: revoke one first` };
    const token = `rbt_${randomBytes(32).toString('base64url')}`;
    const prefix = token.slice(4, 12);
    const r = this.db
      .prepare('INSERT INTO api_tokens (user_id, prefix, token_hash, created_at) VALUES (?, ?, ?, ?)')
      .run(user.id, prefix, sha256(token), this.now());
    return { token, info: { id: Number(r.lastInsertRowid), userName: user.name, prefix, createdAt: this.now() } };
  }

  list(user: User): ApiToken[] {
    return this.listStmt.all(user.id).map((r) => ({
      id: r.id,
      userName: user.name,
      prefix: r.prefix,
      createdAt: r.created_at,
      lastUsedAt: r.last_used_at ?? undefined,
    }));
  }

  /** Revokes the user's token with this prefix (or id); false when there is none. */
  revoke(user: User, prefixOrId: string): boolean {
    const row = this.listStmt.all(user.id).find((t) => t.prefix === prefixOrId || String(t.id) === prefixOrId);
    if (!row) return false;
    this.db.prepare('DELETE FROM api_tokens WHERE id = ?').run(row.id);
    return true;
  }

  /** The enabled user a bearer token belongs to; records its use (at most once a minute, to spare writes). */
  authenticate(token: string): User | undefined {
    if (!API_TOKEN_PATTERN.test(token)) return undefined;
    const row = this.byHashStmt.get(sha256(token));
    if (!row) return undefined;
    const user = this.users.byId(row.user_id);
    if (!user || user.disabled) return undefined;
    const now = this.now();
    if (row.last_used_at === null || now - row.last_used_at > 60_000) this.touchStmt.run(now, row.id);
    return user;
  }
}
