// Cookies, CSRF tokens and login throttling for the web UI. Session rows live in src/store/users.ts.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CookieOptions, Request } from 'express';

export const SESSION_COOKIE = 'rackboot_session';
/** Before login there is no session: the login form's CSRF token is a double-submit cookie. */
export const LOGIN_COOKIE = 'rackboot_login';

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    let v = part.slice(i + 1).trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    try { v = decodeURIComponent(v); } catch { /* keep it raw */ }
    if (!out.has(k)) out.set(k, v);
  }
  return out;
}

export function cookieOf(req: Request, name: string): string | undefined {
  return parseCookies(req.headers.cookie).get(name);
}

/** HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Secure when served over https. */
export function cookieOptions(secure: boolean, maxAgeMs?: number): CookieOptions {
  return { httpOnly: true, sameSite: 'strict', secure, path: '/', ...(maxAgeMs !== undefined ? { maxAge: maxAgeMs } : {}) };
}

/** Constant-time comparison of two tokens of any length. */
export function tokensEqual(a: unknown, b: string | undefined): boolean {
  if (typeof a !== 'string' || !a || !b) return false;
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function newToken(): string { return randomBytes(32).toString('base64url'); }

/** A "next" URL after login: a path on this site only, never //other.host or a scheme. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\r\n]/.test(next)) return '/';
  return next.length > 500 ? '/' : next;
}

/**
 * Failed logins per client address: after `max` failures within `windowMs`, further tries are refused
 * until the window passes. Scrypt already costs each guess; this stops a patient script.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly max = 10, private readonly windowMs = 10 * 60_000, private readonly now: () => number = Date.now) {}

  blocked(key: string): boolean {
    return this.recent(key).length >= this.max;
  }
  fail(key: string): void {
    if (this.failures.size > 10_000) this.failures.clear();
    this.failures.set(key, [...this.recent(key), this.now()]);
  }
  succeed(key: string): void { this.failures.delete(key); }
  private recent(key: string): number[] {
    const t = this.now() - this.windowMs;
    return (this.failures.get(key) ?? []).filter((x) => x > t);
  }
}
