// Cookies, CSRF tokens and login throttling for the web UI. Session rows live in src/store/users.ts.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CookieOptions, Request } from 'express';
import { parseCookies } from './cookies.ts';

export { parseCookies };

export const SESSION_COOKIE = 'rackboot_session';
/** Before login there is no session: the login form's CSRF token is a double-submit cookie. */
export const LOGIN_COOKIE = 'rackboot_login';

export function cookieOf(req: Request, name: string): string | undefined {
  return parseCookies(req.headers.cookie).get(name);
}

/** HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Secure when served over https. */
export function cookieOptions(secure: boolean, maxAgeMs?: number): CookieOptions {
  return {
    httpOnly: true,
    sameSite: 'strict',
    secure,
    path: '/',
    ...(maxAgeMs !== undefined ? { maxAge: maxAgeMs } : {}),
  };
}

/** Constant-time comparison of two tokens of any length. */
export function tokensEqual(a: unknown, b: string | undefined): boolean {
  if (typeof a !== 'string' || !a || !b) return false;
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A "next" URL after login: a path on this site only, never //other.host or a scheme. */
export function safeNext(next: unknown): string {
  if (
    typeof next !== 'string' ||
    !next.startsWith('/') ||
    next.startsWith('//') ||
    next.startsWith('/\\') ||
    /[\r\n]/.test(next)
  )
    return '/';
  return next.length > 500 ? '/' : next;
}

/** A reserved sign-in attempt: settle it once the password has been checked. */
export interface LoginAttempt {
  fail(): void;
  succeed(): void;
}

interface ThrottleEntry {
  failures: number[];
  inFlight: number;
}

/**
 * Sign-in attempts per key (the client address, and the user name tried): after `max` failures within
 * `windowMs`, further tries are refused until the window passes. An attempt is reserved before its
 * password is checked and counts while in flight, so 200 guesses sent at once get `max` checks, not
 * 200 (scrypt takes ~50 ms: a burst would otherwise all pass the gate before the first one fails).
 * The table is bounded: past `maxKeys` the least recently used key goes, but a key that is blocked
 * now goes only when every key is blocked, so failures from many addresses cannot unblock one.
 */
export class LoginThrottle {
  private readonly entries = new Map<string, ThrottleEntry>();
  constructor(
    private readonly max = 10,
    private readonly windowMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {}

  /** Reserves one attempt under every key, or undefined (nothing reserved) when any key is at its limit. */
  reserve(keys: readonly string[]): LoginAttempt | undefined {
    const uniq = [...new Set(keys)];
    if (uniq.some((k) => this.blocked(k))) return undefined;
    for (const k of uniq) {
      const e = this.touch(k);
      e.inFlight++;
    }
    let settled = false;
    const settle = (failed: boolean) => {
      if (settled) return;
      settled = true;
      for (const k of uniq) {
        const e = this.touch(k);
        e.inFlight = Math.max(0, e.inFlight - 1);
        if (failed) e.failures.push(this.now());
      }
      this.evict();
    };
    return {
      fail: () => settle(true),
      // A success clears the user's failures only: the address may be a NAT shared with a guesser.
      succeed: () => {
        settle(false);
        const user = uniq.find((k) => k.startsWith('user:'));
        if (user) this.entries.get(user)!.failures = [];
      },
    };
  }

  blocked(key: string): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    return this.recent(e) + e.inFlight >= this.max;
  }

  get size(): number {
    return this.entries.size;
  }

  private recent(e: ThrottleEntry): number {
    const t = this.now() - this.windowMs;
    while (e.failures.length && e.failures[0] <= t) e.failures.shift();
    return e.failures.length;
  }

  private touch(key: string): ThrottleEntry {
    const e = this.entries.get(key) ?? { failures: [], inFlight: 0 };
    // Map order is insertion order: re-inserting makes this key the most recently used.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e;
  }

  private evict(): void {
    if (this.entries.size <= this.maxKeys) return;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxKeys) return;
      if (e.inFlight === 0 && this.recent(e) < this.max) this.entries.delete(k);
    }
    // Every key left is blocked or in flight: drop the oldest idle ones rather than grow without bound.
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxKeys) return;
      if (e.inFlight === 0) this.entries.delete(k);
    }
  }
}
