// Your account: change your password, create and revoke your own API tokens.
import express, { type Response } from 'express';
import { checkPassword, hashUserPassword } from '../../store/users.ts';
import { cookieOptions, SESSION_COOKIE } from '../auth.ts';
import { Refused, str, type WebContext } from './context.ts';

export function accountPages(c: WebContext): express.Router {
  const { d, users, apiTokens, tech, form, sessionOf, actor } = c;
  const r = express.Router();
  const accountPage = async (res: Response, status: number, extra: Record<string, unknown> = {}) =>
    c.page(res, status, 'account', {
      title: 'Your account',
      tokens: await apiTokens.list(sessionOf(res).user),
      ...extra,
    });

  r.get('/account', tech, (_req, res) => accountPage(res, 200));
  // The token is shown in this one response only (no redirect: a flash would keep it in memory).
  r.post('/account/tokens', form, tech, async (_req, res) => {
    const me = sessionOf(res).user;
    const made = await apiTokens.create(me);
    if ('error' in made) return accountPage(res, 409, { tokenError: made.error });
    await d.audit.record(actor(res), 'user.token.create', me.name, { prefix: made.info.prefix });
    await accountPage(res, 201, { newToken: made.token });
  });
  r.post('/account/tokens/:prefix/revoke', form, tech, async (req, res) => {
    const me = sessionOf(res).user;
    const prefix = String(req.params.prefix);
    if (!(await apiTokens.revoke(me, prefix))) throw new Refused(404, `You have no API token ${prefix.slice(0, 16)}….`);
    await d.audit.record(actor(res), 'user.token.revoke', me.name, { prefix });
    c.flash(res, { kind: 'ok', text: `API token ${prefix}… revoked: it no longer works.` });
    res.redirect(303, '/account');
  });
  r.post('/account', form, tech, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const me = sessionOf(res).user;
    const ok = await users.authenticate(me.name, str(body.current));
    const password = str(body.password);
    const bad = !ok
      ? 'the current password is wrong'
      : password !== str(body.password2)
        ? 'the two new passwords differ'
        : checkPassword(password, me.name);
    if (bad) return accountPage(res, 422, { error: bad });
    await users.setPasswordHash(me.name, await hashUserPassword(password));
    await d.audit.record(actor(res), 'user.password', me.name);
    // Every session of the user ended with the change, this one too: sign in again with the new password.
    res.clearCookie(SESSION_COOKIE, cookieOptions(c.secure));
    res.redirect(303, '/login');
  });
  return r;
}
