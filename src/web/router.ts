// The web UI: server-rendered pages and plain forms over the core (provisioner, stores, profiles).
// Every page works without JavaScript; JS adds only live updates (SSE) and small conveniences.
// Roles: a tech views everything (secrets masked), starts/cancels builds and imports racks, setting
// only the host parameters an admin opened (Settings); an admin also edits profiles, hosts, users and
// settings. Every POST carries the session's CSRF token or changes nothing.
import express, { type NextFunction, type Request, type Response } from 'express';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { Provisioner } from '../provision.ts';
import type { HostStore, Host, HostFields } from '../store/hosts.ts';
import type { BuildStore } from '../store/builds.ts';
import type { EventLog, HostEvent } from '../store/events.ts';
import type { AuditLog } from '../store/audit.ts';
import type { Db } from '../store/db.ts';
import type { ProfileSnapshot } from '../profiles/catalog.ts';
import { formatProfileError, PROFILE_NAME, type ProfileError } from '../profiles/load.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import { checkHostInput, hostRecord, HOST_FIELDS, type HostInput } from '../hosts/input.ts';
import { checkRackCsv, parseCsv } from '../hosts/csv.ts';
import { SettingsStore } from '../store/settings.ts';
import {
  checkTechParamList,
  guardHostParams,
  hostSecretValues,
  maskDeep,
  maskText,
  maskYamlPair,
  maskYamlText,
  TECH_NEVER,
  type ParamGuard,
} from '../hosts/policy.ts';
import {
  ApiTokenStore,
  UserStore,
  SessionStore,
  ROLES,
  checkPassword,
  checkUserName,
  hashUserPassword,
  type Role,
  type Session,
  type SessionPolicy,
} from '../store/users.ts';
import { buildBoard, chipOf, formatDuration, STAGE_LABELS, STATES, type Chip } from './board.ts';
import { diffHunks, unifiedDiff } from './diff.ts';
import { checkProfileEdit, normaliseText, readProfileText, saveProfileAtomic } from './profile-edit.ts';
import {
  cookieOf,
  cookieOptions,
  LOGIN_COOKIE,
  LoginThrottle,
  newToken,
  safeNext,
  SESSION_COOKIE,
  tokensEqual,
} from './auth.ts';
import { createViews } from './views.ts';
import { LiveBoard } from './live.ts';

export interface WebDeps {
  provisioner: Provisioner;
  hosts: HostStore;
  builds: BuildStore;
  events: EventLog;
  audit: AuditLog;
  db: Db;
  catalog: { readonly snapshot: ProfileSnapshot; reload(): ProfileSnapshot };
  profilesDir: string;
  templatesDir: string;
  /** The public base URL: https there makes the cookies Secure. */
  publicUrl: string;
  /** Secure cookies (TLS on for the UI); default: when the public URL is https. */
  secureCookies?: boolean;
  log: Logger;
  now?: () => number;
  sessionPolicy?: SessionPolicy;
  /** How often the live board sends changed chips (ms). */
  liveIntervalMs?: number;
}

export type WebRouter = express.Router & { close(): void };

type Flash = { kind: 'ok' | 'error'; text: string };
const STATIC_TYPES: Record<string, string> = {
  'app.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
};

// Script and style only from this origin, no inline script at all: even if an escape were missed,
// an injected <script> or onerror= would not run.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createWebRouter(d: WebDeps): WebRouter {
  const now = d.now ?? Date.now;
  const p = d.provisioner;
  const users = new UserStore(d.db, now);
  const sessions = new SessionStore(d.db, users, d.sessionPolicy, now);
  const views = createViews(join(d.templatesDir, 'web'));
  const secure = d.secureCookies ?? d.publicUrl.startsWith('https:');
  const throttle = new LoginThrottle(10, 10 * 60_000, now);
  const settings = new SettingsStore(d.db);
  const apiTokens = new ApiTokenStore(d.db, users, now);
  const flashes = new Map<string, Flash>();
  const staticFiles = new Map(
    Object.keys(STATIC_TYPES).map((f) => [f, readFileSync(join(d.templatesDir, 'web', 'static', f))]),
  );
  const form = express.urlencoded({ extended: false, limit: '2mb', parameterLimit: 200 });
  const r = express.Router() as WebRouter;

  const chipFor = (host: Host): Chip => {
    const build = d.builds.latest(host.mac);
    const state = p.state(host.mac);
    const events = build && state === 'build' ? d.events.timeline(host.mac, 300) : [];
    return chipOf(host, build, state, events, now());
  };
  const live = new LiveBoard({
    subscribe: (l) => d.events.subscribe(l),
    chip: (mac) => {
      const h = d.hosts.get(mac as Mac);
      return h && chipFor(h);
    },
    intervalMs: d.liveIntervalMs,
    onError: (err) => d.log.error({ err: (err as Error).message }, 'live board update failed'),
  });

  // --- helpers ---------------------------------------------------------------------------------
  const sessionOf = (res: Response): Session => res.locals.session as Session;
  const actor = (res: Response) => `web:${sessionOf(res).user.name}`;
  const isTech = (res: Response) => sessionOf(res).user.role !== 'admin';
  const guardOf = (res: Response): ParamGuard => ({
    role: sessionOf(res).user.role,
    allowed: settings.techParams(),
    profile: (n) => d.catalog.snapshot.profiles.get(n),
  });
  const secretsOf = (host: Host) => hostSecretValues(d.catalog.snapshot.profiles.get(host.profile), host.params);
  const flash = (res: Response, f: Flash) => {
    if (flashes.size > 5000) flashes.clear();
    flashes.set(sessionOf(res).idHash, f);
  };

  function page(res: Response, status: number, view: string, data: Record<string, unknown>) {
    const s = res.locals.session as Session | undefined;
    let f: Flash | undefined;
    if (s) {
      f = flashes.get(s.idHash);
      flashes.delete(s.idHash);
    }
    const html = views.render(view, {
      user: s?.user,
      csrf: s?.csrf,
      flash: f,
      path: res.req.path,
      fmtTime,
      fmtDuration: formatDuration,
      now: now(),
      ...data,
    });
    res
      .status(status)
      .set({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Content-Security-Policy': CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'same-origin',
        'X-Frame-Options': 'DENY',
      })
      .send(html);
  }
  const problem = (res: Response, status: number, title: string, message: string) =>
    page(res, status, 'error', { title, message });

  /** The gate of every page: a live session, the role if one is needed, and the CSRF token on every POST. */
  const need = (role?: Role) => (req: Request, res: Response, next: NextFunction) => {
    const s = sessions.lookup(cookieOf(req, SESSION_COOKIE));
    if (!s) {
      if (req.method === 'GET' && !req.path.endsWith('/stream'))
        return res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
      return problem(
        res,
        401,
        'Signed out',
        'Your session has ended (or you were never signed in). Nothing was changed. Sign in and try again.',
      );
    }
    res.locals.session = s;
    if (req.method === 'POST' && !tokensEqual((req.body as Record<string, unknown> | undefined)?._csrf, s.csrf)) {
      d.log.warn({ user: s.user.name, path: req.path }, 'web: POST without a valid CSRF token refused');
      return problem(
        res,
        403,
        'Refused',
        'This form did not carry a valid CSRF token (it is stale, or it came from another site). Nothing was changed. Reload the page and try again.',
      );
    }
    if (role === 'admin' && s.user.role !== 'admin')
      return problem(
        res,
        403,
        'Not allowed',
        `This needs the admin role; you are signed in as ${s.user.name} (${s.user.role}). Nothing was changed.`,
      );
    next();
  };
  const tech = need();
  const admin = need('admin');

  const macOf = (req: Request): Mac => {
    const mac = parseMac(String(req.params.mac ?? ''));
    if (!mac) throw new Refused(404, `"${String(req.params.mac)}" is not a MAC address`);
    return mac;
  };
  const hostOf = (req: Request): Host => {
    const mac = macOf(req);
    const h = d.hosts.get(mac);
    if (!h) throw new Refused(404, `There is no host with MAC ${mac}.`);
    return h;
  };
  const str = (v: unknown) => (typeof v === 'string' ? v : '');

  // --- static files and sign-in ------------------------------------------------------------------
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

  r.get('/login', (req, res) => {
    if (sessions.lookup(cookieOf(req, SESSION_COOKIE))) return res.redirect(303, safeNext(req.query.next));
    loginPage(req, res, 200);
  });
  function loginPage(req: Request, res: Response, status: number, error?: string, name = '') {
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
      noUsers: users.count() === 0,
    });
  }

  r.post('/login', form, async (req, res) => {
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
    const { id, session } = sessions.create(user);
    res.cookie(SESSION_COOKIE, id, cookieOptions(secure, session.expiresAt - now()));
    res.clearCookie(LOGIN_COOKIE, cookieOptions(secure));
    d.log.info({ user: user.name }, 'web: signed in');
    res.redirect(303, safeNext(body.next));
  });

  r.post('/logout', form, tech, (_req, res) => {
    sessions.destroy(sessionOf(res).idHash);
    live.endSession(sessionOf(res).idHash);
    res.clearCookie(SESSION_COOKIE, cookieOptions(secure));
    res.redirect(303, '/login');
  });

  // --- the rollout board ------------------------------------------------------------------------
  r.get('/', tech, (req, res) => {
    const filter = {
      rack: str(req.query.rack) || undefined,
      profile: str(req.query.profile) || undefined,
      state: str(req.query.state) || undefined,
    };
    const board = buildBoard(d.hosts.list().map(chipFor), filter);
    page(res, 200, 'board', { title: 'Rollout board', board, filter, states: STATES, live: true });
  });

  r.get('/board/stream', tech, (req, res) => {
    const cookie = cookieOf(req, SESSION_COOKIE);
    live.open(res, () => sessions.lookup(cookie) !== undefined, sessionOf(res).idHash);
  });

  // --- hosts ------------------------------------------------------------------------------------
  r.get('/hosts', tech, (_req, res) => {
    const list = d.hosts.list().map((h) => ({ host: h, chip: chipFor(h) }));
    page(res, 200, 'hosts', { title: 'Hosts', list });
  });

  r.get('/hosts/new', admin, (_req, res) => hostForm(res, 200, undefined, emptyForm(), []));
  r.post('/hosts', form, admin, (req, res) => {
    const values = formValues(req.body);
    const checked = checkForm(res, values, undefined);
    if (!checked.ok) return hostForm(res, checked.status, undefined, values, checked.errors);
    d.hosts.insert(checked.host);
    d.audit.recordChange(actor(res), 'host.create', checked.host.mac, undefined, checked.host);
    flash(res, { kind: 'ok', text: `Host ${checked.host.hostname} added.` });
    res.redirect(303, `/hosts/${checked.host.mac}`);
  });

  r.get('/hosts/import', tech, (_req, res) =>
    page(res, 200, 'import', { title: 'Import a rack', csv: '', preview: undefined }),
  );
  r.post('/hosts/import', form, tech, (req, res) => {
    const body = req.body as Record<string, unknown>;
    const csv = normaliseText(str(body.csv));
    const preview = importPreview(res, csv);
    if (body.action === 'import' && preview.ok) {
      const r2 = checkRackCsv(csv, lookups(res));
      if (r2.ok) {
        d.hosts.insertMany(r2.hosts);
        d.audit.recordChange(actor(res), 'host.import', `${r2.hosts.length} hosts`, undefined, r2.hosts);
        flash(res, { kind: 'ok', text: `Imported ${r2.hosts.length} host(s).` });
        return res.redirect(303, '/');
      }
    }
    page(res, preview.ok ? 200 : preview.status, 'import', { title: 'Import a rack', csv, preview });
  });

  r.get('/hosts/:mac', tech, (req, res) => {
    const host = hostOf(req);
    page(res, 200, 'host', hostPageData(host, isTech(res)));
  });

  r.get('/hosts/:mac/edit', admin, (req, res) => {
    const host = hostOf(req);
    hostForm(res, 200, host, toForm(host), []);
  });
  r.post('/hosts/:mac', form, admin, (req, res) => {
    const old = hostOf(req);
    const values = { ...formValues(req.body), mac: old.mac };
    const checked = checkForm(res, values, old.mac, old.params);
    if (!checked.ok) return hostForm(res, checked.status, old, values, checked.errors);
    d.hosts.update(checked.host);
    d.audit.recordChange(actor(res), 'host.update', old.mac, hostRecord(old), hostRecord(checked.host));
    flash(res, { kind: 'ok', text: `Host ${checked.host.hostname} saved.` });
    res.redirect(303, `/hosts/${old.mac}`);
  });

  r.get('/hosts/:mac/delete', admin, (req, res) => {
    const host = hostOf(req);
    page(res, 200, 'confirm-delete', { title: `Delete ${host.hostname}`, host, state: p.state(host.mac) });
  });
  r.post('/hosts/:mac/delete', form, admin, (req, res) => {
    const host = hostOf(req);
    if (p.state(host.mac) === 'build') p.cancelBuild(host.mac, actor(res));
    d.hosts.delete(host.mac);
    d.audit.recordChange(actor(res), 'host.delete', host.mac, hostRecord(host), undefined);
    flash(res, { kind: 'ok', text: `Host ${host.hostname} (${host.mac}) deleted.` });
    res.redirect(303, '/hosts');
  });

  r.post('/hosts/:mac/build', form, tech, (req, res) => {
    const host = hostOf(req);
    const started = p.startBuild(host.mac, actor(res));
    if (!started.ok)
      flash(res, { kind: 'error', text: `Could not start a build for ${host.hostname}: ${started.message}` });
    else
      flash(res, {
        kind: 'ok',
        text: `Build ${started.value.buildId} started for ${host.hostname}; its token expires ${fmtTime(Date.parse(started.value.expiresAt))}. Power-cycle the machine to PXE boot.`,
      });
    res.redirect(303, backTo(req, `/hosts/${host.mac}`));
  });
  r.post('/hosts/:mac/cancel', form, tech, (req, res) => {
    const host = hostOf(req);
    const c = p.cancelBuild(host.mac, actor(res));
    flash(
      res,
      c.ok
        ? { kind: 'ok', text: `Build ${c.value.id} of ${host.hostname} cancelled: it boots its local disk.` }
        : { kind: 'error', text: c.message },
    );
    res.redirect(303, backTo(req, `/hosts/${host.mac}`));
  });

  // --- profiles ---------------------------------------------------------------------------------
  r.get('/profiles', tech, (_req, res) => {
    const snap = d.catalog.snapshot;
    page(res, 200, 'profiles', { title: 'Profiles', rows: profileRows(snap), orphanErrors: orphanErrors(snap) });
  });
  r.get('/profiles/new', admin, (_req, res) => {
    page(res, 200, 'profile-edit', editorData(undefined, '', 'extends: rhvh-base\ndescription: \n', { mode: 'new' }));
  });
  r.post('/profiles', form, admin, (req, res) => {
    const body = req.body as Record<string, unknown>;
    const name = str(body.name).trim();
    const text = normaliseText(str(body.text));
    if (readProfileText(d.profilesDir, name) !== undefined) {
      return page(
        res,
        409,
        'profile-edit',
        editorData(undefined, name, text, {
          mode: 'new',
          errors: [
            {
              profile: name,
              file: `${name}.yaml`,
              field: 'name',
              message: `a profile named ${name} exists already: edit it instead`,
            },
          ],
        }),
      );
    }
    saveOrShow(req, res, name, text, '', 'new');
  });
  r.get('/profiles/:name', tech, (req, res) => {
    const name = String(req.params.name);
    const text = readProfileText(d.profilesDir, name);
    const snap = d.catalog.snapshot;
    const loaded = snap.profiles.get(name);
    if (text === undefined && !loaded) throw new Refused(404, `There is no profile named ${name}.`);
    const row = profileRows(snap).find((x) => x.name === name);
    const shown = isTech(res) ? maskYamlText(text ?? '', loaded?.merged ?? {}) : (text ?? '');
    page(res, 200, 'profile', {
      title: `Profile ${name}`,
      name,
      text: shown,
      row,
      hostsUsing: d.hosts.list().filter((h) => h.profile === name),
    });
  });
  r.get('/profiles/:name/edit', admin, (req, res) => {
    const name = String(req.params.name);
    const text = readProfileText(d.profilesDir, name);
    if (text === undefined) throw new Refused(404, `There is no profile file for ${name}.`);
    const diskErrors = d.catalog.snapshot.errors.filter((e) => e.profile === name);
    page(
      res,
      200,
      'profile-edit',
      editorData(name, name, text, { mode: 'edit', base: text, errors: diskErrors, onDisk: diskErrors.length > 0 }),
    );
  });
  r.post('/profiles/:name', form, admin, (req, res) => {
    const name = String(req.params.name);
    const body = req.body as Record<string, unknown>;
    const current = readProfileText(d.profilesDir, name);
    if (current === undefined) throw new Refused(404, `There is no profile file for ${name}.`);
    saveOrShow(req, res, name, normaliseText(str(body.text)), current, 'edit');
  });

  function saveOrShow(req: Request, res: Response, name: string, text: string, current: string, mode: 'new' | 'edit') {
    const body = req.body as Record<string, unknown>;
    const base = mode === 'edit' ? normaliseText(str(body.base)) : '';
    const check = checkProfileEdit(d.profilesDir, name, text);
    const errors = [...check.errors, ...check.breaks];
    const changedOnDisk = mode === 'edit' && base !== current;
    if (body.action !== 'save' || errors.length || changedOnDisk) {
      const status = body.action === 'save' ? (changedOnDisk ? 409 : errors.length ? 422 : 200) : 200;
      return page(
        res,
        status,
        'profile-edit',
        editorData(mode === 'edit' ? name : undefined, name, text, {
          mode,
          base: current,
          errors,
          checked: true,
          changedOnDisk,
          refused: body.action === 'save' && status !== 200,
        }),
      );
    }
    if (text === current) {
      flash(res, { kind: 'ok', text: `No changes to ${name}.` });
      return res.redirect(303, `/profiles/${name}`);
    }
    saveProfileAtomic(d.profilesDir, name, text);
    d.catalog.reload();
    // Both sides masked (the audit log is shown to techs); a secret whose value changed reads "(changed)".
    const [before, after] = maskYamlPair(current, text);
    d.audit.record(actor(res), mode === 'new' ? 'profile.create' : 'profile.update', name, {
      unified: unifiedDiff(before, after, `${name}.yaml (before)`, `${name}.yaml (after)`),
    });
    flash(res, { kind: 'ok', text: `Profile ${name} saved; it is serving now.` });
    res.redirect(303, `/profiles/${name}`);
  }

  // --- audit log and users ------------------------------------------------------------------------
  r.get('/audit', tech, (req, res) => {
    const q = str(req.query.q).trim().toLowerCase();
    const entries = d.audit
      .recent(500)
      .filter((e) => !q || `${e.actor} ${e.action} ${e.target}`.toLowerCase().includes(q))
      .map((e) => ({ ...e, view: auditView(e.diff) }));
    page(res, 200, 'audit', { title: 'Audit log', entries, q });
  });

  r.get('/users', admin, (_req, res) => usersPage(res, 200));
  r.post('/users', form, admin, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const name = str(body.name).trim().toLowerCase();
    const role = str(body.role) as Role;
    const password = str(body.password);
    const problemText =
      checkUserName(name) ??
      (ROLES.includes(role) ? undefined : 'choose a role: admin or tech') ??
      (users.get(name) ? `user ${name} exists already` : undefined) ??
      (password !== str(body.password2) ? 'the two passwords differ' : checkPassword(password, name));
    if (problemText) return usersPage(res, 422, problemText, { name, role });
    users.add(name, role, await hashUserPassword(password));
    d.audit.record(actor(res), 'user.create', name, { role });
    flash(res, { kind: 'ok', text: `User ${name} (${role}) added.` });
    res.redirect(303, '/users');
  });
  r.post('/users/:name', form, admin, async (req, res) => {
    const name = String(req.params.name);
    const body = req.body as Record<string, unknown>;
    const target = users.get(name);
    if (!target) throw new Refused(404, `There is no user named ${name}.`);
    const me = sessionOf(res).user;
    const action = str(body.action);
    const lastAdmin = target.role === 'admin' && !target.disabled && users.activeAdmins() <= 1;
    if (action === 'disable' || action === 'enable') {
      if (action === 'disable' && target.id === me.id) return usersPage(res, 422, 'You cannot disable yourself.');
      if (action === 'disable' && lastAdmin)
        return usersPage(res, 422, `${name} is the last admin; add another admin first.`);
      users.setDisabled(name, action === 'disable');
      d.audit.record(actor(res), `user.${action}`, name);
      flash(res, { kind: 'ok', text: `User ${name} ${action}d.` });
    } else if (action === 'role') {
      const role = str(body.role) as Role;
      if (!ROLES.includes(role)) return usersPage(res, 422, 'choose a role: admin or tech');
      if (role !== 'admin' && lastAdmin)
        return usersPage(res, 422, `${name} is the last admin; add another admin first.`);
      users.setRole(name, role);
      d.audit.record(actor(res), 'user.role', name, { role: { from: target.role, to: role } });
      flash(res, { kind: 'ok', text: `User ${name} is now ${role}.` });
    } else if (action === 'password') {
      const password = str(body.password);
      const bad = password !== str(body.password2) ? 'the two passwords differ' : checkPassword(password, name);
      if (bad) return usersPage(res, 422, `${name}: ${bad}`);
      users.setPasswordHash(name, await hashUserPassword(password));
      d.audit.record(actor(res), 'user.password', name);
      flash(res, { kind: 'ok', text: `Password of ${name} changed; their sessions were ended.` });
      if (target.id === me.id) {
        res.clearCookie(SESSION_COOKIE, cookieOptions(secure));
        return res.redirect(303, '/login');
      }
    } else if (action === 'revoke-tokens') {
      const list = apiTokens.list(target);
      for (const t of list) apiTokens.revoke(target, t.prefix);
      d.audit.record(actor(res), 'user.token.revoke', name, { prefixes: list.map((t) => t.prefix) });
      flash(res, { kind: 'ok', text: `${list.length} API token(s) of ${name} revoked.` });
    } else return usersPage(res, 400, `unknown action "${action}"`);
    res.redirect(303, '/users');
  });
  // --- settings (admin): the host parameters techs may set ------------------------------------------
  const settingsPage = (res: Response, status: number, text: string, error?: string) =>
    page(res, status, 'settings', { title: 'Settings', techParamsText: text, never: TECH_NEVER, error });
  r.get('/settings', admin, (_req, res) => settingsPage(res, 200, settings.techParams().join('\n')));
  r.post('/settings', form, admin, (req, res) => {
    const text = str((req.body as Record<string, unknown>).techParams);
    // Only spaces, tabs and the CR of CRLF are trimmed: any other control or separator character is refused.
    const list = text
      .split(/\r?\n|,/)
      .map((x) => x.replace(/^[ \t]+|[ \t]+$/g, ''))
      .filter(Boolean);
    const checked = checkTechParamList(list);
    if (!checked.ok) return settingsPage(res, 400, text, checked.errors.join('; '));
    const before = settings.techParams();
    settings.setTechParams(checked.list);
    d.audit.recordChange(
      actor(res),
      'settings.tech-params',
      'techParams',
      { techParams: before },
      { techParams: checked.list },
    );
    flash(res, {
      kind: 'ok',
      text: checked.list.length
        ? `Techs may now set: ${checked.list.join(', ')}.`
        : 'Techs may set no host parameters now.',
    });
    res.redirect(303, '/settings');
  });

  // --- your account: password and API tokens ----------------------------------------------------------
  const accountPage = (res: Response, status: number, extra: Record<string, unknown> = {}) =>
    page(res, status, 'account', { title: 'Your account', tokens: apiTokens.list(sessionOf(res).user), ...extra });
  r.get('/account', tech, (_req, res) => accountPage(res, 200));
  // The token is shown in this one response only (no redirect: a flash would keep it in memory).
  r.post('/account/tokens', form, tech, (_req, res) => {
    const me = sessionOf(res).user;
    const made = apiTokens.create(me);
    if ('error' in made) return accountPage(res, 409, { tokenError: made.error });
    d.audit.record(actor(res), 'user.token.create', me.name, { prefix: made.info.prefix });
    accountPage(res, 201, { newToken: made.token });
  });
  r.post('/account/tokens/:prefix/revoke', form, tech, (req, res) => {
    const me = sessionOf(res).user;
    const prefix = String(req.params.prefix);
    if (!apiTokens.revoke(me, prefix)) throw new Refused(404, `You have no API token ${prefix.slice(0, 16)}….`);
    d.audit.record(actor(res), 'user.token.revoke', me.name, { prefix });
    flash(res, { kind: 'ok', text: `API token ${prefix}… revoked: it no longer works.` });
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
    users.setPasswordHash(me.name, await hashUserPassword(password));
    d.audit.record(actor(res), 'user.password', me.name);
    // Every session of the user ended with the change, this one too: sign in again with the new password.
    res.clearCookie(SESSION_COOKIE, cookieOptions(secure));
    res.redirect(303, '/login');
  });

  function usersPage(res: Response, status: number, error?: string, values: Record<string, string> = {}) {
    const list = users.list().map((u) => ({ ...u, tokens: apiTokens.list(u) }));
    page(res, status, 'users', { title: 'Users', users: list, error, values, roles: ROLES });
  }

  // Refusals thrown above become pages; anything else goes on to the app's error handler.
  r.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (err instanceof Refused)
      return problem(res, err.status, err.status === 404 ? 'Not found' : 'Refused', err.message);
    next(err);
  });

  // --- page data ----------------------------------------------------------------------------------
  function hostPageData(host: Host, masked: boolean) {
    const view = p.view(host.mac)!;
    // A tech sees secret parameters masked, and the host's secret values masked in the failure log and the timeline.
    const secrets = masked ? secretsOf(host) : new Set<string>();
    if (masked && view.build?.failureLog) view.build.failureLog = maskText(view.build.failureLog, secrets);
    const chip = chipFor(host);
    const previews = (['kickstart', 'pxelinux', 'grub', 'ipxe'] as const).map((kind) => {
      const pr = p.preview(host.mac, kind, { maskSecrets: true });
      return {
        kind,
        ok: pr.ok,
        text: masked ? maskText(pr.ok ? pr.value : pr.message, secrets) : pr.ok ? pr.value : pr.message,
      };
    });
    const events = view.events
      .slice()
      .reverse()
      .map((e) => eventRow(e as unknown as HostEvent & { at: string }))
      .map((e) => (masked ? { ...e, detail: maskText(e.detail, secrets) } : e));
    const params = Object.entries(masked ? maskDeep(host.params) : host.params);
    return { title: host.hostname, host, view, chip, previews, events, params, live: true };
  }

  function hostForm(
    res: Response,
    status: number,
    host: Host | undefined,
    values: Record<string, string>,
    errors: string[],
  ) {
    const profiles = [...d.catalog.snapshot.profiles.keys()].sort();
    page(res, status, 'host-form', {
      title: host ? `Edit ${host.hostname}` : 'Add a host',
      host,
      values,
      errors,
      profiles,
    });
  }

  function lookups(res: Response) {
    const g = guardOf(res);
    return {
      profileExists: (n: string) => d.catalog.snapshot.profiles.has(n),
      macTaken: (m: string) => d.hosts.get(m as Mac) !== undefined,
      ipTaken: (ip: string) => d.hosts.getByIp(ip) !== undefined,
      hostnameTaken: (n: string) => d.hosts.getByHostname(n) !== undefined,
      hostProblems: (h: HostFields) => guardHostParams(g, {}, h),
    };
  }

  function importPreview(res: Response, csv: string) {
    const parsed = parseCsv(csv.replace(/^\uFEFF/, ''));
    const check = checkRackCsv(csv, lookups(res));
    const problems = check.ok ? [] : check.problems;
    const byLine = new Map<number, string[]>();
    const general: string[] = [];
    for (const pr of problems) {
      const m = /^line (\d+): (.*)$/s.exec(pr);
      if (m) byLine.set(Number(m[1]), [...(byLine.get(Number(m[1])) ?? []), m[2]]);
      else general.push(pr);
    }
    const [header, ...rows] = parsed.rows;
    const headerErrors = header ? (byLine.get(header.line) ?? []) : [];
    return {
      ok: check.ok,
      status: check.ok ? 200 : check.status,
      count: check.ok ? check.hosts.length : 0,
      columns: header?.cells.map((c) => c.trim()) ?? [],
      headerErrors,
      rows: rows.map((row) => ({ line: row.line, cells: row.cells, errors: byLine.get(row.line) ?? [] })),
      general: parsed.error ? [parsed.error] : general,
      problems: problems.length,
    };
  }

  function checkForm(
    res: Response,
    values: Record<string, string>,
    existing: Mac | undefined,
    beforeParams: Record<string, string> = {},
  ): { ok: true; host: HostFields } | { ok: false; status: number; errors: string[] } {
    const params: Record<string, string> = {};
    const errors: string[] = [];
    values.params.split('\n').forEach((line, i) => {
      const t = line.trim();
      if (!t || t.startsWith('#')) return;
      const eq = t.indexOf('=');
      if (eq <= 0) {
        errors.push(`params line ${i + 1}: write field.path = value (e.g. boot.kernelArgs = console=ttyS0)`);
        return;
      }
      params[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
    });
    const input: HostInput = {
      ...Object.fromEntries(HOST_FIELDS.filter((f) => f !== 'params').map((f) => [f, values[f]])),
      params,
    };
    const r2 = checkHostInput(input, (n) => d.catalog.snapshot.profiles.has(n));
    if (!r2.ok) return { ok: false, status: 422, errors: [...r2.errors, ...errors] };
    if (errors.length) return { ok: false, status: 422, errors };
    const h = r2.host;
    const refused = guardHostParams(guardOf(res), beforeParams, h);
    if (refused) return { ok: false, status: refused.status, errors: refused.errors };
    if (!existing && d.hosts.get(h.mac)) errors.push(`mac: a host with MAC ${h.mac} exists already`);
    const byName = d.hosts.getByHostname(h.hostname);
    if (byName && byName.mac !== h.mac) errors.push(`hostname: ${h.hostname} already belongs to ${byName.mac}`);
    const byIp = h.ip ? d.hosts.getByIp(h.ip) : undefined;
    if (byIp && byIp.mac !== h.mac) errors.push(`ip: ${h.ip} already belongs to ${byIp.hostname} (${byIp.mac})`);
    return errors.length ? { ok: false, status: 422, errors } : { ok: true, host: h };
  }

  function editorData(
    name: string | undefined,
    nameValue: string,
    text: string,
    o: {
      mode: 'new' | 'edit';
      base?: string;
      errors?: ProfileError[];
      checked?: boolean;
      changedOnDisk?: boolean;
      refused?: boolean;
      onDisk?: boolean;
    },
  ) {
    // A parent's error repeats once per child that inherits it: show it once, naming the children.
    const grouped = new Map<string, { line?: number; text: string; profiles: string[] }>();
    for (const e of o.errors ?? []) {
      const text = formatProfileError({ ...e, file: e.file.split('/').pop() ?? e.file });
      const g = grouped.get(text) ?? { line: e.line, text, profiles: [] };
      g.profiles.push(e.profile);
      grouped.set(text, g);
    }
    const errors = [...grouped.values()].map((g) => {
      const others = g.profiles.filter((x) => x !== nameValue);
      const mine = g.profiles.includes(nameValue);
      const suffix = others.length
        ? ` (${mine ? 'also breaks' : 'breaks'} ${others.join(', ')}, which extend${others.length === 1 ? 's' : ''} it)`
        : '';
      return { line: mine ? g.line : undefined, text: g.text + suffix };
    });
    const errorLines = new Set(errors.filter((e) => e.line).map((e) => e.line!));
    const diff = o.checked ? diffHunks(o.base ?? '', text) : [];
    const lines =
      o.checked && errors.length
        ? text
            .replace(/\n$/, '')
            .split('\n')
            .map((t, i) => ({ no: i + 1, text: t, bad: errorLines.has(i + 1) }))
        : [];
    return {
      title: name ? `Edit profile ${name}` : 'New profile',
      name,
      nameValue,
      text,
      base: o.base ?? '',
      mode: o.mode,
      errors,
      diff,
      lines,
      checked: Boolean(o.checked),
      changedOnDisk: Boolean(o.changedOnDisk),
      refused: Boolean(o.refused),
      onDisk: Boolean(o.onDisk),
      serving: name ? d.catalog.snapshot.profiles.has(name) : false,
    };
  }

  function profileRows(snap: ProfileSnapshot) {
    const names = new Set<string>([...snap.profiles.keys(), ...snap.errors.map((e) => e.profile)]);
    return [...names]
      .filter((n) => PROFILE_NAME.test(n))
      .sort()
      .map((name) => {
        const lp = snap.profiles.get(name);
        const errors = snap.errors
          .filter((e) => e.profile === name)
          .map((e) => formatProfileError({ ...e, file: e.file.split('/').pop() ?? e.file }));
        const status = !errors.length ? 'ok' : lp ? 'stale' : 'broken';
        return { name, extends: lp?.extends, description: lp?.profile.description ?? '', errors, status, hosts: 0 };
      });
  }
  function orphanErrors(snap: ProfileSnapshot) {
    return snap.errors
      .filter((e) => !PROFILE_NAME.test(e.profile))
      .map((e) => formatProfileError({ ...e, file: e.file.split('/').pop() ?? e.file }));
  }

  r.close = () => live.close();
  return r;
}

// --- pure helpers --------------------------------------------------------------------------------
function fmtTime(ms: number | string | undefined): string {
  if (ms === undefined) return '';
  const t = typeof ms === 'string' ? Date.parse(ms) : ms;
  if (!Number.isFinite(t)) return '';
  return new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function backTo(req: Request, fallback: string): string {
  const b = (req.body as Record<string, unknown>).back;
  return b === '/' ? '/' : fallback;
}

function emptyForm(): Record<string, string> {
  return Object.fromEntries(HOST_FIELDS.map((f) => [f, '']));
}

function formValues(body: unknown): Record<string, string> {
  const b = (body ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    HOST_FIELDS.map((f) => [f, typeof b[f] === 'string' ? (b[f] as string).replace(/\r\n?/g, '\n') : '']),
  );
}

function toForm(h: Host): Record<string, string> {
  return {
    mac: h.mac,
    hostname: h.hostname,
    profile: h.profile,
    ip: h.ip ?? '',
    netmask: h.netmask ?? '',
    gateway: h.gateway ?? '',
    nameservers: h.nameservers.join(', '),
    domain: h.domain ?? '',
    rack: h.rack ?? '',
    position: h.position ?? '',
    uuid: h.uuid ?? '',
    params: Object.entries(h.params)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n'),
  };
}

type AuditView =
  | { kind: 'none' }
  | { kind: 'inline'; text: string }
  | { kind: 'unified'; lines: { cls: string; text: string }[] }
  | { kind: 'fields'; rows: { field: string; from: string; to: string }[]; full?: string }
  | { kind: 'json'; text: string };

/** A record's fields one level deep, parameters as params.<key>: what a before/after table compares. */
function flatRecord(r: unknown): Record<string, unknown> {
  if (!r || typeof r !== 'object' || Array.isArray(r)) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r as Record<string, unknown>)) {
    if (k === 'params' && v && typeof v === 'object' && !Array.isArray(v))
      for (const [pk, pv] of Object.entries(v)) out[`params.${pk}`] = pv;
    else out[k] = v;
  }
  return out;
}

/**
 * How an audit entry's diff is shown: a unified text diff, field from -> to (with the whole records
 * before and after), or the JSON as recorded. Secrets are masked again here, for entries recorded
 * before AuditLog masked them.
 */
export function auditView(diff: string | null | undefined): AuditView {
  if (!diff) return { kind: 'none' };
  let v: unknown;
  try {
    v = maskDeep(JSON.parse(diff) as unknown);
  } catch {
    return { kind: 'json', text: maskYamlText(diff, {}) };
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (
      keys.length &&
      keys.every((k) => k === 'before' || k === 'after') &&
      !Array.isArray(o.before ?? {}) &&
      !Array.isArray(o.after ?? {})
    ) {
      const [b, a] = [flatRecord(o.before), flatRecord(o.after)];
      const show = (x: unknown) => (x === undefined ? '(none)' : typeof x === 'string' ? x : JSON.stringify(x));
      const changed = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter(
        (k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]),
      );
      return {
        kind: 'fields',
        rows: changed.map((field) => ({ field, from: show(b[field]), to: show(a[field]) })),
        full: JSON.stringify(o, null, 2),
      };
    }
    if (typeof o.unified === 'string') {
      // A diff line is a marker then YAML: mask the YAML part.
      return {
        kind: 'unified',
        lines: o.unified
          .split('\n')
          .filter((l) => l !== '')
          .map((l) =>
            l.startsWith('@@') || l.startsWith('---') || l.startsWith('+++')
              ? l
              : l.slice(0, 1) + maskYamlText(l.slice(1), {}),
          )
          .map((text) => ({
            text,
            cls:
              text.startsWith('+++') || text.startsWith('---')
                ? 'hdr'
                : text.startsWith('+')
                  ? 'add'
                  : text.startsWith('-')
                    ? 'del'
                    : text.startsWith('@@')
                      ? 'skip'
                      : 'same',
          })),
      };
    }
    const entries = Object.entries(o);
    // {field: {from, to}}; JSON drops an undefined side, so one of the two may be missing.
    const isChange = (x: unknown) =>
      !!x &&
      typeof x === 'object' &&
      !Array.isArray(x) &&
      Object.keys(x).length > 0 &&
      Object.keys(x).every((k) => k === 'from' || k === 'to');
    if (entries.length && entries.every(([, x]) => isChange(x))) {
      const show = (x: unknown) => (x === undefined ? '(none)' : typeof x === 'string' ? x : JSON.stringify(x));
      return {
        kind: 'fields',
        rows: entries.map(([field, x]) => ({
          field,
          from: show((x as { from: unknown }).from),
          to: show((x as { to: unknown }).to),
        })),
      };
    }
  }
  // Small records of plain values (a build's id and profile) read better on one line.
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    const line = entries.map(([k, x]) => `${k}: ${typeof x === 'string' ? x : JSON.stringify(x)}`).join(', ');
    if (entries.every(([, x]) => x === null || typeof x !== 'object') && line.length <= 120)
      return { kind: 'inline', text: line };
  }
  return { kind: 'json', text: JSON.stringify(v, null, 2) };
}

function eventRow(e: {
  id: number;
  at: string;
  type: string;
  clientIp?: string;
  status?: string;
  bytes?: number;
  buildId?: number;
  detail?: Record<string, unknown>;
}) {
  const detail = e.detail
    ? Object.entries(e.detail)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ')
    : '';
  return {
    at: e.at,
    type: e.type,
    clientIp: e.clientIp ?? '',
    status: e.status ?? '',
    bytes: e.bytes,
    buildId: e.buildId,
    detail: detail.length > 300 ? detail.slice(0, 300) + '…' : detail,
    cls:
      e.type.endsWith('failed') || e.type.endsWith('refused') || e.status === 'error'
        ? 'bad'
        : e.type === 'build.built'
          ? 'good'
          : '',
  };
}

export { STAGE_LABELS };
