// What every page group shares: the deps, the stores built over them once, the page renderer and the gate
// (session, role, CSRF). createWebContext() runs once per web router; the page modules only add routes.
import type { RolloutService } from '../../rollout/service.ts';
import type { NodeRegistry } from '../../store/nodes.ts';
import express, { type NextFunction, type Request, type Response } from 'express';
import { join } from 'node:path';
import type { Logger } from '../../log.ts';
import type { Provisioner } from '../../provision.ts';
import type { Host } from '../../store/hosts.ts';
import type { HostRepo } from '../../store/repo/hosts.ts';
import type { BuildRepo } from '../../store/repo/builds.ts';
import type { EventRepo } from '../../store/repo/events.ts';
import type { AuditRepo } from '../../store/repo/small.ts';
import { ApiTokenRepo, SessionRepo, UserRepo } from '../../store/repo/users.ts';
import type { SyslogRepo } from '../../store/repo/syslog.ts';
import type { Store } from '../../store/index.ts';
import type { StoreView } from '../../store/view.ts';
import type { ProfileSnapshot } from '../../profiles/catalog.ts';
import { parseMac, type Mac } from '../../net/mac.ts';
import { hostSecretValues, type ParamGuard } from '../../hosts/policy.ts';
import type { Role, Session, SessionPolicy } from '../../store/users.ts';
import { chipOf, formatDuration, type Chip, type Stuck } from '../board.ts';
import { currentStuck } from '../../rollout/stuck.ts';
import type { HostEvent } from '../../store/events.ts';
import { stateOf, type Build } from '../../store/builds.ts';
import { cookieOf, LoginThrottle, SESSION_COOKIE, tokensEqual } from '../auth.ts';
import { createViews } from '../views.ts';
import { LiveBoard } from '../live.ts';
import { InstallerLogStreams } from '../log-stream.ts';
import type { ChangeFeed } from '../../store/changes.ts';
import type { TemplateLibrary } from '../../render/templates.ts';
import type { WebhookDeliveryStore } from '../../store/webhooks.ts';
import type { BmcStore } from '../../store/bmc.ts';
import type { PowerService } from '../../bmc/power.ts';

export interface WebDeps {
  provisioner: Provisioner;
  /** Host writes, and the reads that must see the database itself (the live board's chips). */
  hosts: HostRepo;
  builds: BuildRepo;
  events: EventRepo;
  audit: AuditRepo;
  /** Users, sessions, API tokens, settings and discovered machines; `sql` only with a clock or policy of the web's own. */
  store: Pick<Store, 'sql' | 'users' | 'sessions' | 'apiTokens' | 'settings' | 'discovered'>;
  /** Hosts and their latest builds in memory: what pages listing many hosts read (no query per host). */
  view: StoreView;
  catalog: { readonly snapshot: ProfileSnapshot; reload(): ProfileSnapshot };
  profilesDir: string;
  templatesDir: string;
  /** The public base URL: https there makes the cookies Secure. */
  publicUrl: string;
  /** Secure cookies (TLS on for the UI); default: when the public URL is https. */
  secureCookies?: boolean;
  log: Logger;
  /** A clock, or a session policy, of the web's own (tests): users and sessions are then built over store.sql. */
  now?: () => number;
  sessionPolicy?: SessionPolicy;
  /** How often the live board sends changed chips (ms). */
  liveIntervalMs?: number;
  /** Changes from this process and others (the CLI): the live board listens; without it, this process's events only. */
  changes?: ChangeFeed;
  /** The installer's log lines (the host page shows them live); without it the host page has no log section. */
  syslog?: Pick<SyslogRepo, 'search'>;
  /** The live template library (the templates page); without it the page says so. */
  templates?: () => TemplateLibrary;
  /** The webhook delivery log (the webhooks page). */
  webhookDeliveries?: Pick<WebhookDeliveryStore, 'list'>;
  /** Rack builds in waves (src/rollout): the pages of ./rollouts.ts. */
  rollouts?: RolloutService;
  /** Hosts' BMCs and power actions (src/bmc): the host page's power buttons, the BMC fields of the form. */
  bmc?: BmcStore;
  power?: PowerService;
  /** The nodes sharing the database (the Nodes page), and which one this is. */
  nodes?: Pick<NodeRegistry, 'list'>;
  nodeId?: string;
}

export type Flash = { kind: 'ok' | 'error'; text: string };

// Script and style only from this origin, no inline script at all: even if an escape were missed,
// an injected <script> or onerror= would not run.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Thrown by a page handler: the router's error handler shows it as an error page. */
export class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type WebContext = ReturnType<typeof createWebContext>;

export function createWebContext(d: WebDeps) {
  const now = d.now ?? Date.now;
  const p = d.provisioner;
  // The store's users and sessions run on its clock and session policy; a web given its own (tests) builds its own.
  const own = d.now !== undefined || d.sessionPolicy !== undefined;
  const users = own ? new UserRepo(d.store.sql, now) : d.store.users;
  const sessions = own ? new SessionRepo(d.store.sql, users, d.sessionPolicy, now) : d.store.sessions;
  const apiTokens = own ? new ApiTokenRepo(d.store.sql, users, now) : d.store.apiTokens;
  const views = createViews(join(d.templatesDir, 'web'));
  const secure = d.secureCookies ?? d.publicUrl.startsWith('https:');
  const settings = d.store.settings;
  const flashes = new Map<string, Flash>();
  const form = express.urlencoded({ extended: false, limit: '2mb', parameterLimit: 200 });

  /** A host's chip; its latest build from the view unless given (the live board passes the database's). */
  const chipFor = async (host: Host, build = d.view.latestBuild(host.mac)): Promise<Chip> => {
    const state = stateOf(build, now());
    // Failed: its events say the last step it reported, for the one-line reason.
    const events = build && (state === 'build' || state === 'failed') ? await d.events.timeline(host.mac, 300) : [];
    return chipOf(host, build, state, events, now(), build && state === 'build' ? stuckOf(events, build) : undefined);
  };
  /** The chips of many hosts at once (the board, the hosts list): queries only for hosts in build or failed. */
  const chipsFor = (hosts: readonly Host[]): Promise<Chip[]> => Promise.all(hosts.map((h) => chipFor(h)));
  /** The rollout's stuck mark (src/rollout/stuck.ts: its watcher puts a `stuck` event on the timeline), as the chip shows it. */
  const stuckOf = (events: readonly HostEvent[], build: Build): Stuck | undefined => {
    const v = currentStuck(
      events.filter((e) => e.at >= build.createdAt),
      now(),
    );
    if (!v) return undefined;
    const seen = v.lastSeen;
    return {
      stage: v.stage,
      since: Date.parse(v.since),
      lastSeen: seen ? `${seen.type}${seen.status ? ` ${seen.status}` : ''} at ${fmtTime(seen.at)}` : undefined,
    };
  };
  const live = new LiveBoard({
    subscribe: (l) => (d.changes ?? d.events).subscribe(l),
    // From the database, not the view: a change another process made reaches the view by another path, maybe later.
    chip: async (mac) => {
      const [h, build] = await Promise.all([d.hosts.get(mac as Mac), d.builds.latest(mac as Mac)]);
      return h && chipFor(h, build);
    },
    intervalMs: d.liveIntervalMs,
    onError: (err) => d.log.error({ err: (err as Error).message }, 'live board update failed'),
  });

  const syslog = d.syslog;
  const logs =
    syslog &&
    new InstallerLogStreams({
      search: (q) => syslog.search(q),
      onError: (err) => d.log.error({ err: (err as Error).message }, 'installer log stream failed'),
    });

  const sessionOf = (res: Response): Session => res.locals.session as Session;
  const actor = (res: Response) => `web:${sessionOf(res).user.name}`;
  const isTech = (res: Response) => sessionOf(res).user.role !== 'admin';
  const guardOf = async (res: Response): Promise<ParamGuard> => ({
    role: sessionOf(res).user.role,
    allowed: await settings.techParams(),
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
  const need = (role?: Role) => async (req: Request, res: Response, next: NextFunction) => {
    const s = await sessions.lookup(cookieOf(req, SESSION_COOKIE));
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

  const macOf = (req: Request): Mac => {
    const mac = parseMac(String(req.params.mac ?? ''));
    if (!mac) throw new Refused(404, `"${String(req.params.mac)}" is not a MAC address`);
    return mac;
  };
  /** The host of /hosts/:mac, from the view (what the provisioner's pages and previews read too). */
  const hostOf = (req: Request): Host => {
    const mac = macOf(req);
    const h = d.view.host(mac);
    if (!h) throw new Refused(404, `There is no host with MAC ${mac}.`);
    return h;
  };

  return {
    d,
    p,
    now,
    users,
    sessions,
    secure,
    throttle: new LoginThrottle(10, 10 * 60_000, now),
    settings,
    apiTokens,
    form,
    live,
    logs,
    chipFor,
    chipsFor,
    sessionOf,
    actor,
    isTech,
    guardOf,
    secretsOf,
    flash,
    page,
    problem,
    tech: need(),
    admin: need('admin'),
    hostOf,
  };
}

export const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** Hosts in the hosts table's order (rack, position, hostname): the view keeps them unordered. */
export function sortedHosts(hosts: Host[]): Host[] {
  const key = (h: Host) => [h.rack ?? '', h.position ?? '', h.hostname];
  return hosts.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
    return 0;
  });
}

export function fmtTime(ms: number | string | undefined): string {
  if (ms === undefined) return '';
  const t = typeof ms === 'string' ? Date.parse(ms) : ms;
  if (!Number.isFinite(t)) return '';
  return new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}
