// The HTTP side: kickstarts, callbacks, boot scripts and configs, static tftpboot/ and images/, the API.
// createApp() never listens, so tests drive it with supertest and main.ts binds it.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import type { Provisioner } from '../provision.ts';
import type { HostRepo } from '../store/repo/hosts.ts';
import type { AuditRepo, ImageRepo, SettingsRepo } from '../store/repo/small.ts';
import type { Store } from '../store/index.ts';
import type { StoreView } from '../store/view.ts';
import type { ProfileSnapshot } from '../profiles/catalog.ts';
import { parseConfigPath } from '../boot/paths.ts';
import { resolveInRoot } from '../tftp/jail.ts';
import { streamFile } from './files.ts';
import type { Role } from '../store/users.ts';
import { surfaceGuard, type SurfaceOptions } from './surface.ts';
import { HttpError, sendText } from './reply.ts';
import { errorBody } from './errors.ts';
import { createApiRouters, type ApiRouterFactory } from './api/index.ts';
import type { BmcStore } from '../store/bmc.ts';

export interface AppDeps {
  provisioner: Provisioner;
  /** Host records: the API's writes and the checks before them (the database, not the view, says what is taken). */
  hosts: Pick<HostRepo, 'get' | 'list' | 'getByIp' | 'getByHostname' | 'insert' | 'insertMany' | 'update' | 'delete'>;
  audit: Pick<AuditRepo, 'record' | 'recordChange'>;
  /** The tables the API reads beyond hosts: discovered machines. */
  store: Pick<Store, 'discovered'>;
  /** Hosts and latest builds in memory: lists read these, never a query per host. */
  view: Pick<StoreView, 'host' | 'hostList' | 'state'>;
  profiles: () => ProfileSnapshot;
  tftpRoot: string;
  imagesDir: string;
  /** Imported RHVH images (src/images): GET /api/images. */
  images?: Pick<ImageRepo, 'list'>;
  /** SHA-256 (hex) of the API bearer token. */
  adminTokenHash: string;
  log: Logger;
  /** Extra routers mounted before the 404 handler: the web UI (src/web), ... */
  routers?: express.Router[];
  /** Run before every route (metrics). */
  middleware?: express.RequestHandler[];
  /**
   * Extra API routers, mounted under /api after the token check (installer logs, ...); res.locals.caller says who.
   * A factory gets the API's docs, so its routes (apiRoute) appear in /api/openapi.json.
   */
  apiRouters?: (express.Router | ApiRouterFactory)[];
  /** Per-user API tokens (store.apiTokens.authenticate): the token's user, acting with its role. */
  userToken?: (token: string) => Promise<{ name: string; role: Role } | undefined>;
  /** Admin-kept settings: the host parameters techs may set. Without it, techs may set none. */
  settings?: Pick<SettingsRepo, 'techParams' | 'setTechParams'>;
  /** Host names the UI/API answer for, HTTPS redirect and HSTS (src/http/surface.ts). */
  surface?: SurfaceOptions;
  /** Each host's BMC (src/store/bmc.ts): the `bmc` field of POST/PUT /api/hosts, shown (without password) in GETs. */
  bmc?: BmcStore;
}

export { callerOf, type ApiCaller } from './api/index.ts';

export const FAILED_LOG_BODY_LIMIT = '1mb';

export function clientIp(req: Request): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

export function createApp(d: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(surfaceGuard(d.surface ?? {}));
  for (const m of d.middleware ?? []) app.use(m);
  const p = d.provisioner;

  // --- What installing hosts call -------------------------------------------------------------
  app.get('/ks/:token', async (req, res) => {
    await serveKickstart(p, req.params.token, clientIp(req), req.headers, res);
  });

  const built = async (req: Request, res: Response) => {
    const r = await p.callback(String(req.params.token), 'built', clientIp(req));
    sendText(res, r.ok ? 200 : r.status, r.ok ? `built: ${r.value.mac}` : r.message);
  };
  app.get('/built/:token', built);
  app.post('/built/:token', built);

  app.post('/failed/:token', express.text({ type: () => true, limit: FAILED_LOG_BODY_LIMIT }), async (req, res) => {
    const body = typeof req.body === 'string' ? req.body : '';
    const r = await p.callback(String(req.params.token), 'failed', clientIp(req), body.replace(/\0/g, ''));
    sendText(res, r.ok ? 200 : r.status, r.ok ? `failed recorded: ${r.value.mac}` : r.message);
  });

  app.post('/events/:token', express.text({ type: () => true, limit: '16kb' }), async (req, res) => {
    const step = progressStep(typeof req.body === 'string' ? req.body : '', req.query.step);
    if (!step)
      throw new HttpError(
        400,
        'send a step: JSON {"step":"name"}, a form step=name, or ?step=name (letters, digits, . _ -, up to 64)',
      );
    const r = await p.progress(String(req.params.token), step, clientIp(req));
    sendText(res, r.ok ? 200 : r.status, r.ok ? 'ok' : r.message);
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
    sendText(res, 200, p.ipxeScript(mac, clientIp(req), req.path));
  };
  app.get('/boot/ipxe/:mac', ipxe);
  app.get('/boot/ipxe', ipxe);

  // tftpboot/ over HTTP: generated per-host configs first (same names as over TFTP), then files.
  app.get(/^\/tftp\/(.+)$/, async (req, res, next) => {
    const path = normalise((req.params as unknown as string[])[0]);
    if (sendConfig(req, res, path)) return;
    await sendJailed(req, res, next, d.tftpRoot, path, 'http.tftpfile');
  });
  app.get(/^\/images\/(.+)$/, async (req, res, next) => {
    await sendJailed(req, res, next, d.imagesDir, normalise((req.params as unknown as string[])[0]), 'http.image');
  });

  /** A per-host boot config by its TFTP name (same names as over TFTP): true when it is one and was sent. */
  function sendConfig(req: Request, res: Response, path: string): boolean {
    const cfg = parseConfigPath(path);
    const body = cfg && p.configFile(cfg, clientIp(req), 'http');
    if (body === undefined) return false;
    res.set('Cache-Control', 'no-store');
    sendText(res, 200, body);
    return true;
  }

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
      return sendText(res, status, status === 404 ? `not found: ${path}` : `refused: ${path} (${r.reason})`);
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

  // --- The API (bearer token): src/http/api/ ---------------------------------------------------
  const apiRouters = createApiRouters(d);
  app.use('/api', apiRouters.open, apiRouters.api);
  // The "every route is described" test walks these.
  app.locals.apiDocs = apiRouters.docs;
  app.locals.apiRouters = [apiRouters.open, apiRouters.api];

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  for (const r of d.routers ?? []) app.use(r);

  // GRUB loaded by UEFI HTTP boot has the root device (http,server): it asks its prefix config and the kernel
  // at tftp-root paths without /tftp/ (/EFI/BOOT/grub.cfg, /rhvh-4.3.8/vmlinuz). Answered here, after every
  // other route (none is shadowed), from the same jail and with the same per-host configs as /tftp/.
  app.get(/^\/(.+)$/, async (req, res, next) => {
    const path = normalise((req.params as unknown as string[])[0]);
    if (sendConfig(req, res, path)) return;
    if (!(await resolveInRoot(d.tftpRoot, path)).ok) return next();
    await sendJailed(req, res, next, d.tftpRoot, path, 'http.tftpfile');
  });

  app.use((req, _res) => {
    throw new HttpError(404, `no route for ${req.method} ${req.path}`);
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; statusCode?: number; type?: string; message?: string; limit?: number };
    let status = err instanceof HttpError ? err.status : (e.status ?? e.statusCode ?? 500);
    if (!Number.isInteger(status) || status < 400 || status > 599) status = 500;
    let message = err instanceof HttpError ? err.message : (e.message ?? 'internal error');
    if (e.type === 'entity.parse.failed') message = `the body is not valid JSON: ${message}`;
    if (e.type === 'entity.too.large') message = `the body is too large${e.limit ? ` (at most ${e.limit} bytes)` : ''}`;
    if (status >= 500) {
      d.log.error({ err: (err as Error).stack, path: req.path }, 'request failed');
      // What broke inside is for the log, not for whoever asked.
      if (!(err instanceof HttpError)) message = 'internal error (the server log has the details)';
    }
    if (res.headersSent) return;
    if (req.path === '/api' || req.path.startsWith('/api/')) {
      const h = err instanceof HttpError ? err : undefined;
      res.status(status).json(errorBody(status, message, h?.field, h?.extra));
    } else sendText(res, status, message);
  });
  return app;
}

async function serveKickstart(
  p: Provisioner,
  token: string,
  ip: string,
  headers: IncomingHttpHeaders,
  res: ServerResponse,
): Promise<number> {
  const r = await p.kickstart(token, ip, sendmacHeaders(headers));
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
 * (a query string, escapes) falls through to the express route, which answers the same. The request is
 * claimed at once (true); the answer follows when the build's token is checked in the store.
 */
export function kickstartFastPath(
  p: Provisioner,
  count?: (route: string, method: string, status: number) => void,
  log?: Logger,
) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' || !req.url || !req.url.startsWith('/ks/')) return false;
    const token = req.url.slice(4);
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(token)) return false;
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    serveKickstart(p, token, ip, req.headers, res).then(
      (status) => count?.('/ks/:token', 'GET', status),
      (err: Error) => {
        // The store away (or a bug): the same 500 the express route's error handler gives, details in the log only.
        log?.error({ err: err.stack, path: '/ks/:token', clientIp: ip }, 'request failed');
        if (!res.headersSent) {
          const body = Buffer.from('# rackboot: internal error (the server log has the details)\n');
          res.writeHead(500, {
            'Content-Type': 'text/plain; charset=utf-8',
            'Content-Length': body.length,
            'Cache-Control': 'no-store',
          });
          res.end(body);
        } else res.destroy();
        count?.('/ks/:token', 'GET', 500);
      },
    );
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
