// HTTP for operations: /metrics (a bearer token when --metrics-token is set: it shows login failure
// counts and the size of every rollout) and /readyz (no token: load balancers), and under the
// API (bearer token): a host's installer logs, searchable, and a build's failure log beside them.
import express, { type Request, type Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseMac, type Mac } from '../net/mac.ts';
import type { BuildStore } from '../store/builds.ts';
import type { HostStore } from '../store/hosts.ts';
import type { Metrics } from './metrics.ts';
import { formatLine, type SyslogStore } from './syslog-store.ts';
import { SEVERITY_NAMES } from './syslog-parse.ts';

export interface Readiness {
  ok: boolean;
  checks: Record<string, string>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** metricsToken: when set, GET /metrics needs `Authorization: Bearer <it>` (Prometheus: authorization.credentials). */
export function createOpsRouter(d: {
  metrics?: Metrics;
  ready: () => Readiness;
  metricsToken?: string;
}): express.Router {
  const r = express.Router();
  const want = d.metricsToken ? sha256(d.metricsToken) : undefined;
  r.get('/metrics', async (req, res) => {
    if (!d.metrics) {
      res.status(404).type('text/plain').send('metrics are off\n');
      return;
    }
    if (want) {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      if (!m || !timingSafeEqual(sha256(m[1].trim()), want)) {
        res
          .status(401)
          .set('WWW-Authenticate', 'Bearer realm="rackboot metrics"')
          .type('text/plain')
          .send(
            'send Authorization: Bearer <metrics token> (the --metrics-token / RACKBOOT_METRICS_TOKEN this server was started with)\n',
          );
        return;
      }
    }
    res
      .set('Content-Type', d.metrics.contentType)
      .set('Cache-Control', 'no-store')
      .send(await d.metrics.text());
  });
  r.get('/readyz', (_req, res) => {
    const state = d.ready();
    res
      .status(state.ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json(state);
  });
  return r;
}

class BadRequest extends Error {
  status = 400;
}
class NotFound extends Error {
  status = 404;
}

function intQuery(req: Request, name: string, max: number): number | undefined {
  const v = req.query[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !/^\d{1,12}$/.test(v) || Number(v) > max)
    throw new BadRequest(`${name} must be a whole number up to ${max}`);
  return Number(v);
}

export interface LogsApiDeps {
  hosts: Pick<HostStore, 'get'>;
  builds: Pick<BuildStore, 'latest' | 'byId'>;
  syslog: SyslogStore;
}

/** Mounted under /api (after the token check). */
export function createLogsApi(d: LogsApiDeps): express.Router {
  const r = express.Router();
  const hostOf = (req: Request): Mac => {
    const raw = String(req.params.mac ?? '');
    const mac = parseMac(raw);
    if (!mac)
      throw new BadRequest(`"${raw.slice(0, 64)}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`);
    if (!d.hosts.get(mac)) throw new NotFound(`no host with MAC ${mac}`);
    return mac;
  };
  // A tech's token sees the host's secrets masked in what the installer logged (src/http/app.ts sets this).
  const masked = <T>(res: Response, mac: Mac, value: T): T => {
    const mask = res.locals.maskForCaller as
      (<V>(res: Response, host: { profile: string; params: Record<string, string> }, v: V) => V) | undefined;
    const host = d.hosts.get(mac);
    return mask && host ? mask(res, host, value) : value;
  };
  const buildOf = (mac: Mac, id: number | undefined) => {
    const b = id === undefined ? d.builds.latest(mac) : d.builds.byId(id);
    if (!b || b.mac !== mac)
      throw new NotFound(id === undefined ? `host ${mac} has no build yet` : `host ${mac} has no build ${id}`);
    return b;
  };
  const severityQuery = (req: Request): number | undefined => {
    const v = req.query.severity;
    if (v === undefined || v === '') return undefined;
    if (typeof v === 'string' && /^[0-7]$/.test(v)) return Number(v);
    const n = typeof v === 'string' ? (SEVERITY_NAMES as readonly string[]).indexOf(v) : -1;
    if (n < 0)
      throw new BadRequest(`severity must be 0-7 or one of ${SEVERITY_NAMES.join(', ')} (that level and worse)`);
    return n;
  };
  const lines = (req: Request, buildId: number) => {
    const q = req.query.q;
    if (q !== undefined && (typeof q !== 'string' || q.length > 256))
      throw new BadRequest('q must be one text of up to 256 characters');
    return d.syslog
      .search({
        buildId,
        q: q || undefined,
        maxSeverity: severityQuery(req),
        limit: intQuery(req, 'limit', 5000),
        beforeId: intQuery(req, 'before', Number.MAX_SAFE_INTEGER),
      })
      .map((l) => ({
        id: l.id,
        at: new Date(l.at).toISOString(),
        severity: SEVERITY_NAMES[l.severity],
        facility: l.facility,
        host: l.host,
        app: l.app,
        clientIp: l.clientIp,
        text: l.text,
      }));
  };
  const send = (
    req: Request,
    res: Response,
    body: { lines: { at: string; severity: string; app?: string; text: string }[] } & Record<string, unknown>,
  ) => {
    if (req.query.format === 'text') {
      res.type('text/plain; charset=utf-8').send(
        body.lines
          .map((l) =>
            formatLine({
              at: Date.parse(l.at),
              severity: SEVERITY_NAMES.indexOf(l.severity as never),
              app: l.app,
              text: l.text,
            }),
          )
          .join('\n') + '\n',
      );
    } else res.json(body);
  };

  /** ?build=ID (default: the latest), q= (substring, any case), severity= (err: err and worse), limit=, before= (id, for paging back). */
  r.get('/hosts/:mac/logs', (req, res) => {
    const mac = hostOf(req);
    const build = buildOf(mac, intQuery(req, 'build', Number.MAX_SAFE_INTEGER));
    send(
      req,
      res,
      masked(res, mac, { mac, buildId: build.id, ringLines: d.syslog.limits.ringLines, lines: lines(req, build.id) }),
    );
  });
  /** One build: its status, the log the failed callback posted, and the installer's syslog, side by side. */
  r.get('/hosts/:mac/builds/:id/logs', (req, res) => {
    const mac = hostOf(req);
    const idText = String(req.params.id);
    if (!/^\d{1,15}$/.test(idText)) throw new BadRequest('the build id must be a number');
    const b = buildOf(mac, Number(idText));
    res.json(
      masked(res, mac, {
        mac,
        buildId: b.id,
        status: b.status,
        createdAt: new Date(b.createdAt).toISOString(),
        finishedAt: b.finishedAt === undefined ? undefined : new Date(b.finishedAt).toISOString(),
        failureLog: b.failureLog ?? null,
        syslog: lines(req, b.id),
        ringLines: d.syslog.limits.ringLines,
      }),
    );
  });
  r.use((err: unknown, req: Request, res: Response, next: express.NextFunction) => {
    if (err instanceof BadRequest || err instanceof NotFound) {
      res.status(err.status).json({ error: err.message });
      return;
    }
    next(err);
  });
  return r;
}
