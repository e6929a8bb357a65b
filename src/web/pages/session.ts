// The static files of the UI, sign-in and sign-out.
import express, { type Request, type Response } from 'express';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cookieOf, cookieOptions, LOGIN_COOKIE, newToken, safeNext, SESSION_COOKIE, tokensEqual } from '../auth.ts';
import { str, type WebContext } from './context.ts';

const STATIC_TYPES: Record<string, string> = {
  'app.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
};

export function sessionPages(c: WebContext): express.Router {
  const { d, users, sessions, secure, throttle, page } = c;
  const staticFiles = new Map(
    Object.keys(STATIC_TYPES).map((f) => [f, readFileSync(join(d.templatesDir, 'web', 'static', f))]),
  );
  const r = express.Router();

  r.get('/static/:file', (req, res, next) => {
    const f = staticFiles.get(req.params.file);
    if (!f) return next();
    res
      .set({
        'Content-Type': STATIC_TYPES[req.params.file],
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
      })
      .send(f);
  });

  r.get('/login', async (req, res) => {
    if (await sessions.lookup(cookieOf(req, SESSION_COOKIE))) return res.redirect(303, safeNext(req.query.next));
    await loginPage(req, res, 200);
  });
  async function loginPage(req: Request, res: Response, status: number, error?: string, name = '') {
    let token = cookieOf(req, LOGIN_COOKIE);
    if (!token || token.length !== 43) {
      token = newToken();
      res.cookie(LOGIN_COOKIE, token, cookieOptions(secure, 3600e3));
    }
    page(res, status, 'login', {
      title: 'Sign in',
      loginCsrf: token,
      next: safeNext(req.query.next ?? (req.body as Record<string, unknown> | undefined)?.next),
      error,
      name,
      noUsers: (await users.count()) === 0,
    });
  }

  r.post('/login', c.form, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    if (!tokensEqual(body._csrf, cookieOf(req, LOGIN_COOKIE)))
      return loginPage(req, res, 403, 'The sign-in form expired or did not come from this site. Try again.');
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const name = str(body.name).trim().toLowerCase().slice(0, 64);
    // Reserved before the password is checked: guesses in flight count (LoginThrottle).
    const attempt = throttle.reserve([`ip:${ip}`, `user:${name}`]);
    if (!attempt) {
      d.log.warn({ user: name.slice(0, 40), ip }, 'web: sign-in refused: too many attempts');
      return loginPage(
        req,
        res,
        429,
        'Too many failed sign-ins from this address or for this user. Wait ten minutes and try again.',
        name,
      );
    }
    let user;
    try {
      user = await users.authenticate(name, str(body.password));
    } catch (err) {
      attempt.fail();
      throw err;
    }
    if (!user) {
      attempt.fail();
      d.log.warn({ user: name.slice(0, 40), ip }, 'web: sign-in failed');
      return loginPage(req, res, 401, 'Wrong user name or password (or the user is disabled).', name);
    }
    attempt.succeed();
    const { id, session } = await sessions.create(user);
    res.cookie(SESSION_COOKIE, id, cookieOptions(secure, session.expiresAt - c.now()));
    res.clearCookie(LOGIN_COOKIE, cookieOptions(secure));
    d.log.info({ user: user.name }, 'web: signed in');
    res.redirect(303, safeNext(body.next));
  });

  r.post('/logout', c.form, c.tech, async (_req, res) => {
    await sessions.destroy(c.sessionOf(res).idHash);
    c.live.endSession(c.sessionOf(res).idHash);
    c.logs?.endSession(c.sessionOf(res).idHash);
    res.clearCookie(SESSION_COOKIE, cookieOptions(secure));
    res.redirect(303, '/login');
  });
  return r;
}
