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

export type Role = 'admin' | 'tech';
export const ROLES: readonly Role[] = ['admin', 'tech'];

export interface User {
  id: number;
  name: string;
  role: Role;
  disabled: boolean;
  createdAt: number;
}

export interface UserRow {
  id: number;
  name: string;
  role: Role;
  password_hash: string;
  disabled: number;
  created_at: number;
}

export const userFromRow = (r: UserRow): User => ({
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
export function dummy(): string {
  return (dummyHash ??= hashUserPasswordSync(randomBytes(18).toString('base64')));
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

export interface SessionRow {
  id_hash: string;
  user_id: number;
  csrf: string;
  created_at: number;
  expires_at: number;
  last_seen: number;
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface ApiToken {
  id: number;
  userName: string;
  prefix: string;
  createdAt: number;
  lastUsedAt?: number;
}
export interface ApiTokenRow {
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
