// The HTTP side: kickstarts, callbacks, boot scripts and configs, static tftpboot/ and images/, the API.
// createApp() never listens, so tests drive it with supertest and main.ts binds it.
import express, { type NextFunction, type Request, type Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import type { Provisioner } from '../provision.ts';
import type { HostStore } from '../store/hosts.ts';
import type { AuditLog } from '../store/audit.ts';
import type { ProfileSnapshot } from '../profiles/catalog.ts';
import { formatProfileError } from '../profiles/load.ts';
import { parseConfigPath } from '../boot/paths.ts';
import { resolveInRoot } from '../tftp/jail.ts';
import { streamFile } from './files.ts';
import { checkHostInput, hostRecord, HOST_FIELDS, type HostInput } from '../hosts/input.ts';
import { checkRackCsv } from '../hosts/csv.ts';
import type { Db } from '../store/db.ts';
import { DiscoveredStore } from '../store/discovered.ts';
import { imageEfiLoaders, type ImageStore } from '../images/store.ts';
import type { Role } from '../store/users.ts';
import type { SettingsStore } from '../store/settings.ts';
import {
  checkTechParamList,
  guardHostParams,
  hostSecretValues,
  maskDeep,
  maskText,
  TECH_NEVER,
} from '../hosts/policy.ts';
import { surfaceGuard, type SurfaceOptions } from './surface.ts';

export interface AppDeps {
  provisioner: Provisioner;
  hosts: HostStore;
  audit: AuditLog;
  db: Db;
  profiles: () => ProfileSnapshot;
  tftpRoot: string;
  imagesDir: string;
  /** Imported RHVH images (src/images): GET /api/images. */
  images?: Pick<ImageStore, 'list'>;
  /** SHA-256 (hex) of the API bearer token. */
  adminTokenHash: string;
  log: Logger;
  /** Extra routers mounted before the 404 handler: the web UI (src/web), ... */
  routers?: express.Router[];
  /** Run before every route (metrics). */
  middleware?: express.RequestHandler[];
  /** Extra API routers, mounted under /api after the token check (installer logs, ...); res.locals.caller says who. */
  apiRouters?: express.Router[];
  /** Per-user API tokens (src/store/users.ts ApiTokenStore.authenticate): the token's user, acting with its role. */
  userToken?: (token: string) => { name: string; role: Role } | undefined;
  /** Admin-kept settings: the host parameters techs may set. Without it, techs may set none. */
  settings?: Pick<SettingsStore, 'techParams' | 'setTechParams'>;
  /** Host names the UI/API answer for, HTTPS redirect and HSTS (src/http/surface.ts). */
  surface?: SurfaceOptions;
}

/** Who is calling the API: the shared admin token ("api"), or a user's own token ("api:<name>"). */
export interface ApiCaller {
  actor: string;
  role: Role;
  user?: string;
}
export const callerOf = (res: Response): ApiCaller => res.locals.caller as ApiCaller;

export const FAILED_LOG_BODY_LIMIT = '1mb';

export function clientIp(req: Request): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function macParam(req: Request): Mac {
  const raw = String(req.params.mac ?? '');
  const mac = parseMac(raw);
  if (!mac) throw new HttpError(400, `"${raw}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`);
  return mac;
}

function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function createApp(d: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(surfaceGuard(d.surface ?? {}));
  for (const m of d.middleware ?? []) app.use(m);
  const p = d.provisioner;
  const discovered = new DiscoveredStore(d.db);
  const text = (res: Response, status: number, body: string) =>
    res
      .status(status)
      .type('text/plain; charset=utf-8')
      .send(body.endsWith('\n') ? body : body + '\n');

  // --- What installing hosts call -------------------------------------------------------------
  app.get('/ks/:token', (req, res) => {
    serveKickstart(p, req.params.token, clientIp(req), req.headers, res);
  });

  const built = (req: Request, res: Response) => {
    const r = p.callback(String(req.params.token), 'built', clientIp(req));
    text(res, r.ok ? 200 : r.status, r.ok ? `built: ${r.value.mac}` : r.message);
  };
  app.get('/built/:token', built);
  app.post('/built/:token', built);

  app.post('/failed/:token', express.text({ type: () => true, limit: FAILED_LOG_BODY_LIMIT }), (req, res) => {
    const body = typeof req.body === 'string' ? req.body : '';
    const r = p.callback(String(req.params.token), 'failed', clientIp(req), body.replace(/\0/g, ''));
    text(res, r.ok ? 200 : r.status, r.ok ? `failed recorded: ${r.value.mac}` : r.message);
  });

  app.post('/events/:token', express.text({ type: () => true, limit: '16kb' }), (req, res) => {
    const step = progressStep(typeof req.body === 'string' ? req.body : '', req.query.step);
    if (!step)
      throw new HttpError(
        400,
        'send a step: JSON {"step":"name"}, a form step=name, or ?step=name (letters, digits, . _ -, up to 64)',
      );
    const r = p.progress(String(req.params.token), step, clientIp(req));
    text(res, r.ok ? 200 : r.status, r.ok ? 'ok' : r.message);
  });

  // --- Boot scripts and configs over HTTP (iPXE, UEFI HTTP boot, GRUB over HTTP) -------------
  const ipxe = (req: Request, res: Response) => {
    const raw = req.params.mac ?? req.query.mac;
    // No MAC at all: the script of the host this address resolves to. A MAC that does not parse is a client bug.
    if (raw !== undefined && typeof raw !== 'string')
      throw new HttpError(400, 'mac: give one MAC address (/boot/ipxe/aa:bb:cc:dd:ee:ff or ?mac=)');
    const mac = raw === undefined ? undefined : parseMac(raw);
    if (raw !== undefined && !mac)
      throw new HttpError(
        400,
        `mac: "${raw.slice(0, 64)}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`,
      );
    res.set('Cache-Control', 'no-store');
    text(res, 200, p.ipxeScript(mac, clientIp(req), req.path));
  };
  app.get('/boot/ipxe/:mac', ipxe);
  app.get('/boot/ipxe', ipxe);

  // tftpboot/ over HTTP: generated per-host configs first (same names as over TFTP), then files.
  app.get(/^\/tftp\/(.+)$/, async (req, res, next) => {
    const path = normalise((req.params as unknown as string[])[0]);
    const cfg = parseConfigPath(path);
    if (cfg) {
      const body = p.configFile(cfg, clientIp(req), 'http');
      if (body !== undefined) {
        res.set('Cache-Control', 'no-store');
        return text(res, 200, body);
      }
    }
    await sendJailed(req, res, next, d.tftpRoot, path, 'http.tftpfile');
  });
  app.get(/^\/images\/(.+)$/, async (req, res, next) => {
    await sendJailed(req, res, next, d.imagesDir, normalise((req.params as unknown as string[])[0]), 'http.image');
  });

  async function sendJailed(
    req: Request,
    res: Response,
    next: NextFunction,
    root: string,
    path: string,
    eventType: string,
  ) {
    const r = await resolveInRoot(root, path);
    if (!r.ok) {
      const status = r.reason.startsWith('not found') ? 404 : 403;
      d.log.debug({ path, reason: r.reason, clientIp: clientIp(req) }, 'static file refused');
      return text(res, status, status === 404 ? `not found: ${path}` : `refused: ${path} (${r.reason})`);
    }
    const mac = p.macForIp(clientIp(req));
    if (mac) {
      res.on('finish', () => {
        const bytes = req.method === 'HEAD' ? 0 : Number(res.getHeader('content-length') ?? 0);
        p.event({
          mac,
          type: eventType,
          clientIp: clientIp(req),
          status: String(res.statusCode),
          bytes,
          detail: { path, method: req.method, range: req.headers.range },
        });
      });
    }
    try {
      await streamFile(req, res, r.realPath);
    } catch (err) {
      if (!res.headersSent) return next(err);
      res.destroy();
      d.log.info({ path, clientIp: clientIp(req), err: (err as Error).message }, 'file transfer cut off');
    }
  }

  // --- The API (bearer token) ------------------------------------------------------------------
  const api = express.Router();
  api.use((req, res, next) => {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const token = m?.[1].trim() ?? '';
    if (token && safeEqual(createHash('sha256').update(token).digest('hex'), d.adminTokenHash)) {
      res.locals.caller = { actor: 'api', role: 'admin' } satisfies ApiCaller;
      return next();
    }
    const user = token ? d.userToken?.(token) : undefined;
    if (!user)
      throw new HttpError(
        401,
        'send Authorization: Bearer <token>: your own (rackboot users token NAME, or Your account in the UI), or the shared admin token (RACKBOOT_ADMIN_TOKEN, or the one printed at first start)',
      );
    res.locals.caller = { actor: `api:${user.name}`, role: user.role, user: user.name } satisfies ApiCaller;
    next();
  });
  api.use(express.json({ limit: '256kb' }));
  const actor = (res: Response) => callerOf(res).actor;
  const isTech = (res: Response) => callerOf(res).role !== 'admin';
  const adminOnly = (_req: Request, res: Response, next: NextFunction) => {
    const c = callerOf(res);
    if (c.role !== 'admin')
      throw new HttpError(
        403,
        `this needs the admin role; the token of ${c.user ?? c.actor} has the ${c.role} role. Nothing was changed.`,
      );
    next();
  };
  const profileExists = (n: string) => d.profiles().profiles.has(n);
  const guardFor = (res: Response) => ({
    role: callerOf(res).role,
    allowed: d.settings?.techParams() ?? [],
    profile: (n: string) => d.profiles().profiles.get(n),
  });
  const guard = (
    res: Response,
    before: Record<string, string>,
    host: { profile: string; params: Record<string, string> },
  ) => {
    const refused = guardHostParams(guardFor(res), before, host);
    if (refused) throw new HttpError(refused.status, refused.errors.join('; '));
  };
  /** What a tech's token sees of a host: secret parameters masked, and the host's secret values masked in free text. */
  // Hosts of one profile mostly share their parameters: one schema pass per (profile, parameters) per snapshot.
  const secretCache = new WeakMap<ProfileSnapshot, Map<string, Set<string>>>();
  const secretsOf = (host: { profile: string; params: Record<string, string> }): Set<string> => {
    const snap = d.profiles();
    let bySnap = secretCache.get(snap);
    if (!bySnap) {
      bySnap = new Map();
      secretCache.set(snap, bySnap);
    }
    const key = `${host.profile}\0${JSON.stringify(host.params)}`;
    let found = bySnap.get(key);
    if (!found) {
      found = hostSecretValues(snap.profiles.get(host.profile), host.params);
      if (bySnap.size > 10_000) bySnap.clear();
      bySnap.set(key, found);
    }
    return found;
  };
  const forCaller = <T>(res: Response, host: { profile: string; params: Record<string, string> }, value: T): T => {
    if (!isTech(res)) return value;
    const secrets = secretsOf(host);
    return maskDeep(
      JSON.parse(
        maskText(
          JSON.stringify(value),
          [...secrets].map((s) => JSON.stringify(s).slice(1, -1)),
        ),
      ) as T,
    );
  };
  // Mounted routers (installer logs) mask the same way for a tech's token.
  api.use((_req, res, next) => {
    res.locals.maskForCaller = forCaller;
    next();
  });
  api.get('/hosts', (_req, res) => {
    res.json(d.hosts.list().map((h) => forCaller(res, h, { ...h, state: p.state(h.mac) })));
  });
  api.post('/hosts', (req, res) => {
    const r = checkHostInput(bodyObject(req), profileExists);
    if (!r.ok) throw new HttpError(422, r.errors.join('; '));
    guard(res, {}, r.host);
    conflicts(r.host.mac, r.host, true);
    d.hosts.insert(r.host);
    d.audit.recordChange(actor(res), 'host.create', r.host.mac, undefined, r.host);
    res.status(201).json(forCaller(res, r.host, p.view(r.host.mac)));
  });
  api.get('/hosts/:mac', (req, res) => {
    const mac = macParam(req);
    const v = p.view(mac);
    const h = d.hosts.get(mac);
    if (!v || !h) throw new HttpError(404, `no host with MAC ${req.params.mac}`);
    res.json(forCaller(res, h, v));
  });
  api.put('/hosts/:mac', (req, res) => {
    const mac = macParam(req);
    const old = d.hosts.get(mac);
    if (!old) throw new HttpError(404, `no host with MAC ${mac}`);
    const body = bodyObject(req);
    if (body.mac !== undefined && parseMac(String(body.mac)) !== mac)
      throw new HttpError(422, 'mac: cannot be changed; delete the host and add it again');
    const merged: HostInput = { ...old, ...body, mac };
    const r = checkHostInput(merged, profileExists);
    if (!r.ok) throw new HttpError(422, r.errors.join('; '));
    // Another profile is another install (STIG, Satellite, image): a tech picks one only when adding a host.
    if (isTech(res) && r.host.profile !== old.profile)
      throw new HttpError(
        403,
        `profile: the tech role may not move ${old.hostname} from profile ${old.profile} to ${r.host.profile}; ask an admin. Nothing was changed.`,
      );
    guard(res, old.params, r.host);
    conflicts(mac, r.host, false);
    d.hosts.update(r.host);
    d.audit.recordChange(actor(res), 'host.update', mac, hostRecord(old), hostRecord(r.host));
    res.json(forCaller(res, r.host, p.view(mac)));
  });
  api.delete('/hosts/:mac', adminOnly, (req, res) => {
    const mac = macParam(req);
    const old = d.hosts.get(mac);
    if (!old || !d.hosts.delete(mac)) throw new HttpError(404, `no host with MAC ${mac}`);
    d.audit.recordChange(actor(res), 'host.delete', mac, hostRecord(old), undefined);
    res.status(204).end();
  });
  api.post('/hosts/:mac/build', (req, res) => {
    const r = p.startBuild(macParam(req), actor(res));
    if (!r.ok) throw new HttpError(r.status, r.message);
    const { buildId: _id, eventsUrl: _e, ...contract } = r.value;
    res.status(201).json({ ...contract, buildId: r.value.buildId, eventsUrl: r.value.eventsUrl });
  });
  api.delete('/hosts/:mac/build', (req, res) => {
    const r = p.cancelBuild(macParam(req), actor(res));
    if (!r.ok) throw new HttpError(r.status, r.message);
    res.json({ mac: r.value.mac, buildId: r.value.id, status: r.value.status });
  });
  api.get('/hosts/:mac/render/:kind', (req, res) => {
    const kind = String(req.params.kind);
    if (!['kickstart', 'pxelinux', 'grub', 'ipxe'].includes(kind))
      throw new HttpError(400, 'kind must be kickstart, pxelinux, grub or ipxe');
    const mac = macParam(req);
    const r = p.preview(mac, kind as 'kickstart', { maskSecrets: true });
    if (!r.ok) throw new HttpError(r.status, r.message);
    // Also every secret value of the host, however the template quotes it.
    const host = d.hosts.get(mac);
    text(res, 200, host ? maskText(r.value, secretsOf(host)) : r.value);
  });
  api.post('/hosts/import', express.text({ type: () => true, limit: '2mb' }), (req, res) => {
    const csv = typeof req.body === 'string' ? req.body : '';
    const dryRun = req.query.dryRun === '1' || req.query.dryRun === 'true';
    const g = guardFor(res);
    const r = checkRackCsv(csv, {
      profileExists,
      macTaken: (m) => d.hosts.get(m as Mac) !== undefined,
      ipTaken: (ip) => d.hosts.getByIp(ip) !== undefined,
      hostnameTaken: (n) => d.hosts.getByHostname(n) !== undefined,
      hostProblems: (h) => guardHostParams(g, {}, h),
    });
    if (!r.ok)
      return res
        .status(r.status)
        .json({
          error: `the import was refused: ${r.problems.length} problem(s); nothing was written`,
          problems: r.problems,
        });
    if (!dryRun) {
      d.hosts.insertMany(r.hosts);
      d.audit.recordChange(actor(res), 'host.import', `${r.hosts.length} hosts`, undefined, r.hosts.map(hostRecord));
    }
    res
      .status(dryRun ? 200 : 201)
      .json({ dryRun, imported: dryRun ? 0 : r.hosts.length, hosts: r.hosts.map((h) => forCaller(res, h, h)) });
  });
  api.get('/settings/tech-params', (_req, res) => {
    res.json({ techParams: d.settings?.techParams() ?? [], neverForTechs: TECH_NEVER });
  });
  api.put('/settings/tech-params', adminOnly, (req, res) => {
    if (!d.settings) throw new HttpError(404, 'settings are not kept by this server');
    const body = req.body as unknown;
    const list = Array.isArray(body) ? body : (body as { techParams?: unknown } | null)?.techParams;
    const r = checkTechParamList(list);
    if (!r.ok) throw new HttpError(400, r.errors.join('; '));
    const before = d.settings.techParams();
    d.settings.setTechParams(r.list);
    d.audit.recordChange(
      actor(res),
      'settings.tech-params',
      'techParams',
      { techParams: before },
      { techParams: r.list },
    );
    res.json({ techParams: r.list, neverForTechs: TECH_NEVER });
  });
  api.get('/profiles', (_req, res) => {
    const s = d.profiles();
    res.json({
      loadedAt: new Date(s.loadedAt).toISOString(),
      profiles: [...s.profiles.values()].map((lp) => ({
        name: lp.name,
        file: lp.file,
        extends: lp.extends,
        description: lp.profile.description,
        stale: s.stale.includes(lp.name),
      })),
      errors: s.errors.map((e) => ({ ...e, text: formatProfileError(e) })),
    });
  });
  api.get('/images', (_req, res) => {
    const profiles = [...d.profiles().profiles.values()];
    res.json(
      (d.images?.list() ?? []).map((i) => ({
        name: i.name,
        version: i.version,
        sourceSha256: i.sourceSha256,
        importedAt: new Date(i.importedAt).toISOString(),
        kernel: i.kernel,
        initrd: i.initrd,
        stage2: i.stage2,
        liveimg: i.liveimg,
        usedBy: profiles
          .filter((lp) => lp.profile.image === i.name)
          .map((lp) => lp.name)
          .sort(),
        efiLoaders: imageEfiLoaders(i) ?? null,
        files: i.files,
      })),
    );
  });
  api.get('/discovered', (_req, res) => {
    res.json(discovered.list());
  });
  for (const r of d.apiRouters ?? []) api.use(r);
  app.use('/api', api);

  function conflicts(mac: Mac, h: { hostname: string; ip?: string }, isNew: boolean) {
    if (isNew && d.hosts.get(mac))
      throw new HttpError(409, `a host with MAC ${mac} already exists (PUT /api/hosts/${mac} to change it)`);
    const byName = d.hosts.getByHostname(h.hostname);
    if (byName && byName.mac !== mac)
      throw new HttpError(409, `hostname ${h.hostname} already belongs to ${byName.mac}`);
    const byIp = h.ip ? d.hosts.getByIp(h.ip) : undefined;
    if (byIp && byIp.mac !== mac)
      throw new HttpError(409, `IP ${h.ip} already belongs to ${byIp.hostname} (${byIp.mac})`);
  }

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  for (const r of d.routers ?? []) app.use(r);

  // GRUB loaded by UEFI HTTP boot has the root device (http,server): it asks its prefix config and the kernel
  // at tftp-root paths without /tftp/ (/EFI/BOOT/grub.cfg, /rhvh-4.3.8/vmlinuz). Answered here, after every
  // other route (none is shadowed), from the same jail and with the same per-host configs as /tftp/.
  app.get(/^\/(.+)$/, async (req, res, next) => {
    const path = normalise((req.params as unknown as string[])[0]);
    const cfg = parseConfigPath(path);
    if (cfg) {
      const body = p.configFile(cfg, clientIp(req), 'http');
      if (body !== undefined) {
        res.set('Cache-Control', 'no-store');
        return text(res, 200, body);
      }
    }
    if (!(await resolveInRoot(d.tftpRoot, path)).ok) return next();
    await sendJailed(req, res, next, d.tftpRoot, path, 'http.tftpfile');
  });

  app.use((req, res) => {
    throw new HttpError(404, `no route for ${req.method} ${req.path}`);
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
    const status = err instanceof HttpError ? err.status : (e.status ?? e.statusCode ?? 500);
    let message = err instanceof HttpError ? err.message : (e.message ?? 'internal error');
    if (e.type === 'entity.parse.failed') message = `the body is not valid JSON: ${message}`;
    if (e.type === 'entity.too.large') message = 'the body is too large';
    if (status >= 500) d.log.error({ err: (err as Error).stack, path: req.path }, 'request failed');
    if (res.headersSent) return;
    if (req.path.startsWith('/api')) res.status(status).json({ error: message });
    else text(res, status, message);
  });
  return app;
}

function bodyObject(req: Request): HostInput {
  const b = req.body as unknown;
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw new HttpError(400, 'send a JSON object with Content-Type: application/json');
  const unknown = Object.keys(b).filter((k) => !(HOST_FIELDS as readonly string[]).includes(k));
  if (unknown.length)
    throw new HttpError(422, `unknown field(s) ${unknown.join(', ')}; known: ${HOST_FIELDS.join(', ')}`);
  return b as HostInput;
}

function serveKickstart(
  p: Provisioner,
  token: string,
  ip: string,
  headers: IncomingHttpHeaders,
  res: ServerResponse,
): number {
  const r = p.kickstart(token, ip, sendmacHeaders(headers));
  const body = Buffer.from(r.ok ? r.value : `# rackboot: ${r.message}\n`);
  const status = r.ok ? 200 : r.status;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
  });
  res.end(body);
  return status;
}

/** How many X-RHN-Provisioning-MAC-n headers are read: a host has a few NICs, a forged request may send thousands. */
export const SENDMAC_HEADER_LIMIT = 32;

/**
 * The MACs of Anaconda's inst.ks.sendmac headers, "X-RHN-Provisioning-MAC-0: eth0 52:54:00:12:34:56" (one per
 * NIC, numbered from 0). Values that are not "<ifname> <mac>" are ignored: the address check still applies.
 */
export function sendmacHeaders(headers: IncomingHttpHeaders): Mac[] {
  const out: Mac[] = [];
  let seen = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (!/^x-rhn-provisioning-mac-\d{1,3}$/.test(name)) continue;
    for (const v of Array.isArray(value) ? value : [value ?? '']) {
      if (++seen > SENDMAC_HEADER_LIMIT) return out;
      // Node has already dropped the spaces around a header value; nothing else is trimmed (no U+2028, no CR).
      const m = /^[!-~]{1,64}[ \t]+([0-9A-Fa-f:-]{12,17})$/.exec(v);
      const mac = m ? parseMac(m[1]) : undefined;
      if (mac && !out.includes(mac)) out.push(mac);
    }
  }
  return out;
}

/**
 * GET /ks/<token> ahead of express: when a rack powers on it is the hottest route, and express's
 * router and middleware cost more than the kickstart itself (test/bench/http.sh). Anything unusual
 * (a query string, escapes) falls through to the express route, which answers the same.
 */
export function kickstartFastPath(p: Provisioner, count?: (route: string, method: string, status: number) => void) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' || !req.url || !req.url.startsWith('/ks/')) return false;
    const token = req.url.slice(4);
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(token)) return false;
    const status = serveKickstart(p, token, (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''), req.headers, res);
    count?.('/ks/:token', 'GET', status);
    return true;
  };
}

/** "/a//b\\c" -> "a/b/c": the same normalisation TFTP clients get. */
export function normalise(path: string): string {
  return path
    .replace(/\\/g, '/')
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

function progressStep(body: string, query: unknown): string | undefined {
  let step: unknown = query;
  const t = body.trim();
  if (!step && t.startsWith('{')) {
    try {
      step = (JSON.parse(t) as { step?: unknown }).step;
    } catch {
      return undefined;
    }
  } else if (!step && t.startsWith('step=')) step = new URLSearchParams(t).get('step');
  else if (!step && t) step = t;
  return typeof step === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(step) ? step : undefined;
}
