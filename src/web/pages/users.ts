// Users (admin): add, disable/enable, change role or password, revoke API tokens; never the last admin away.
import express, { type Response } from 'express';
import { ROLES, checkPassword, checkUserName, hashUserPassword, type Role } from '../../store/users.ts';
import { cookieOptions, SESSION_COOKIE } from '../auth.ts';
import { Refused, str, type WebContext } from './context.ts';

export function userPages(c: WebContext): express.Router {
  const { d, users, apiTokens, admin, form, flash, actor } = c;
  const r = express.Router();

  r.get('/users', admin, (_req, res) => usersPage(res, 200));
  r.post('/users', form, admin, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const name = str(body.name).trim().toLowerCase();
    const role = str(body.role) as Role;
    const password = str(body.password);
    const problemText =
      checkUserName(name) ??
      (ROLES.includes(role) ? undefined : 'choose a role: admin or tech') ??
      ((await users.get(name)) ? `user ${name} exists already` : undefined) ??
      (password !== str(body.password2) ? 'the two passwords differ' : checkPassword(password, name));
    if (problemText) return usersPage(res, 422, problemText, { name, role });
    await users.add(name, role, await hashUserPassword(password));
    await d.audit.record(actor(res), 'user.create', name, { role });
    flash(res, { kind: 'ok', text: `User ${name} (${role}) added.` });
    res.redirect(303, '/users');
  });
  r.post('/users/:name', form, admin, async (req, res) => {
    const name = String(req.params.name);
    const body = req.body as Record<string, unknown>;
    const target = await users.get(name);
    if (!target) throw new Refused(404, `There is no user named ${name}.`);
    const me = c.sessionOf(res).user;
    const action = str(body.action);
    const lastAdmin = target.role === 'admin' && !target.disabled && (await users.activeAdmins()) <= 1;
    if (action === 'disable' || action === 'enable') {
      if (action === 'disable' && target.id === me.id) return usersPage(res, 422, 'You cannot disable yourself.');
      if (action === 'disable' && lastAdmin)
        return usersPage(res, 422, `${name} is the last admin; add another admin first.`);
      await users.setDisabled(name, action === 'disable');
      await d.audit.record(actor(res), `user.${action}`, name);
      flash(res, { kind: 'ok', text: `User ${name} ${action}d.` });
    } else if (action === 'role') {
      const role = str(body.role) as Role;
      if (!ROLES.includes(role)) return usersPage(res, 422, 'choose a role: admin or tech');
      if (role !== 'admin' && lastAdmin)
        return usersPage(res, 422, `${name} is the last admin; add another admin first.`);
      await users.setRole(name, role);
      await d.audit.record(actor(res), 'user.role', name, { role: { from: target.role, to: role } });
      flash(res, { kind: 'ok', text: `User ${name} is now ${role}.` });
    } else if (action === 'password') {
      const password = str(body.password);
      const bad = password !== str(body.password2) ? 'the two passwords differ' : checkPassword(password, name);
      if (bad) return usersPage(res, 422, `${name}: ${bad}`);
      await users.setPasswordHash(name, await hashUserPassword(password));
      await d.audit.record(actor(res), 'user.password', name);
      flash(res, { kind: 'ok', text: `Password of ${name} changed; their sessions were ended.` });
      if (target.id === me.id) {
        res.clearCookie(SESSION_COOKIE, cookieOptions(c.secure));
        return res.redirect(303, '/login');
      }
    } else if (action === 'revoke-tokens') {
      const list = await apiTokens.list(target);
      for (const t of list) await apiTokens.revoke(target, t.prefix);
      await d.audit.record(actor(res), 'user.token.revoke', name, { prefixes: list.map((t) => t.prefix) });
      flash(res, { kind: 'ok', text: `${list.length} API token(s) of ${name} revoked.` });
    } else return usersPage(res, 400, `unknown action "${action}"`);
    res.redirect(303, '/users');
  });

  async function usersPage(res: Response, status: number, error?: string, values: Record<string, string> = {}) {
    const list = await Promise.all((await users.list()).map(async (u) => ({ ...u, tokens: await apiTokens.list(u) })));
    c.page(res, status, 'users', { title: 'Users', users: list, error, values, roles: ROLES });
  }

  return r;
}
