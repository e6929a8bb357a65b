// HTTP for operations: /metrics (a bearer token when --metrics-token is set: it shows login failure
// counts and the size of every rollout) and /readyz (no token: load balancers), and under the
// API (bearer token): a host's installer logs, searchable, and a build's failure log beside them.
import express, { type Request, type Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseMac, type Mac } from '../net/mac.ts';
import type { BuildRepo } from '../store/repo/builds.ts';
import type { HostRepo } from '../store/repo/hosts.ts';
import type { SyslogRepo } from '../store/repo/syslog.ts';
import type { Metrics } from './metrics.ts';
import { formatLine } from './syslog-store.ts';
import { SEVERITY_NAMES } from './syslog-parse.ts';
import { HttpError } from '../http/reply.ts';
import { apiRoute, type ApiDocs } from '../http/openapi.ts';
import { CursorError, decodeCursor, encodeCursor } from '../http/paging.ts';
import { BuildLogParams, BuildLogs, BuildLogsQuery, HostLogs, LogsQuery, MacParams } from '../http/api-schemas.ts';

export interface Readiness {
  ok: boolean;
  checks: Record<string, string>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** metricsToken: when set, GET /metrics needs `Authorization: Bearer <it>` (Prometheus: authorization.credentials). */
export function createOpsRouter(d: {
  metrics?: Metrics;
  /** What /readyz answers; it asks the store, so it is async. */
  ready: () => Promise<Readiness>;
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
  r.get('/readyz', async (_req, res) => {
    const state = await d.ready();
    res
      .status(state.ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json(state);
  });
  return r;
}

export interface LogsApiDeps {
  hosts: Pick<HostRepo, 'get'>;
  builds: Pick<BuildRepo, 'history' | 'byId'>;
  syslog: Pick<SyslogRepo, 'search' | 'limits'>;
  /** The API's docs: these routes describe themselves in /api/openapi.json. */
  docs: ApiDocs;
}

const LOG_LIMIT_MAX = 5000;

/** Mounted under /api (after the token check). */
export function createLogsApi(d: LogsApiDeps): express.Router {
  const r = express.Router();
  /** The host of the route's MAC (404 when there is none), read once per request. */
  const hostOf = async (req: Request) => {
    const raw = String(req.params.mac ?? '');
    const mac = parseMac(raw);
    if (!mac)
      throw new HttpError(
        400,
        `mac: "${raw.slice(0, 64)}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`,
        'mac',
      );
    const host = await d.hosts.get(mac);
    if (!host) throw new HttpError(404, `no host with MAC ${mac}`);
    return { mac, host };
  };
  // A tech's token sees the host's secrets masked in what the installer logged (src/http/api/index.ts sets this).
  type HostLike = { profile: string; params: Record<string, string> };
  const masked = <T>(res: Response, host: HostLike, value: T): T => {
    const mask = res.locals.maskForCaller as (<V>(res: Response, host: HostLike, v: V) => V) | undefined;
    return mask ? mask(res, host, value) : value;
  };
  const buildOf = async (mac: Mac, id: number | undefined) => {
    // The newest build whatever its status: a cancelled build's installer log is still its log.
    const b = id === undefined ? (await d.builds.history(mac))[0] : await d.builds.byId(id);
    if (!b || b.mac !== mac)
      throw new HttpError(404, id === undefined ? `host ${mac} has no build yet` : `host ${mac} has no build ${id}`);
    return b;
  };
  const severityOf = (v: string | undefined): number | undefined => {
    if (v === undefined || v === '') return undefined;
    if (/^[0-7]$/.test(v)) return Number(v);
    const n = (SEVERITY_NAMES as readonly string[]).indexOf(v);
    if (n < 0)
      throw new HttpError(
        400,
        `severity: 0-7 or one of ${SEVERITY_NAMES.join(', ')} (that level and worse)`,
        'severity',
      );
    return n;
  };
  const limitOf = (v: string | undefined) => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (n < 1 || n > LOG_LIMIT_MAX) throw new HttpError(400, `limit: from 1 to ${LOG_LIMIT_MAX}`, 'limit');
    return n;
  };
  const cursorList = (buildId: number) => `logs:${buildId}`;
  const lines = async (
    q: { q?: string; severity?: string; limit?: string; before?: string; cursor?: string },
    buildId: number,
  ) => {
    let afterId: number | undefined;
    if (q.cursor !== undefined) {
      const key = decodeCursor(cursorList(buildId), q.cursor, 1)[0];
      if (typeof key !== 'number' || !Number.isSafeInteger(key) || key < 0)
        throw new CursorError('cursor: not a cursor this server gave; start again without a cursor');
      afterId = key;
    }
    if (afterId !== undefined && q.before !== undefined)
      throw new HttpError(400, 'before: give before (paging back) or cursor (newer lines), not both', 'before');
    const found = await d.syslog.search({
      buildId,
      q: q.q || undefined,
      maxSeverity: severityOf(q.severity),
      limit: limitOf(q.limit),
      beforeId: q.before === undefined ? undefined : Number(q.before),
      afterId,
    });
    const last = found.length ? found[found.length - 1]!.id : (afterId ?? 0);
    return {
      nextCursor: encodeCursor(cursorList(buildId), [last]),
      lines: found.map((l) => ({
        id: l.id,
        at: new Date(l.at).toISOString(),
        severity: SEVERITY_NAMES[l.severity],
        facility: l.facility,
        host: l.host,
        app: l.app,
        clientIp: l.clientIp,
        text: l.text,
      })),
    };
  };

  apiRoute(
    r,
    d.docs,
    {
      method: 'get',
      path: '/hosts/:mac/logs',
      summary:
        "the installer's log (syslog) of the latest build (?build=ID another); ?cursor= (nextCursor) gives only newer lines: poll it to follow",
      tags: ['logs'],
      params: MacParams,
      query: LogsQuery,
      responses: {
        200: [HostLogs, { contentType: 'text/plain', description: '?format=text: one line per log line' }],
        404: 'no such host, or no build',
      },
    },
    async (req, res, { query }) => {
      const { mac, host } = await hostOf(req);
      const build = await buildOf(mac, query.build === undefined ? undefined : Number(query.build));
      const found = await lines(query, build.id);
      const body = masked(res, host, {
        mac,
        buildId: build.id,
        ringLines: d.syslog.limits.ringLines,
        lines: found.lines,
        nextCursor: found.nextCursor,
      });
      if (query.format === 'text')
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
      else res.json(body);
    },
  );
  apiRoute(
    r,
    d.docs,
    {
      method: 'get',
      path: '/hosts/:mac/builds/:id/logs',
      summary: 'one build: its status, the log the failed callback posted, and the installer syslog, side by side',
      tags: ['logs'],
      params: BuildLogParams,
      query: BuildLogsQuery,
      responses: { 200: BuildLogs, 404: 'no such host or build' },
    },
    async (req, res, { params, query }) => {
      const { mac, host } = await hostOf(req);
      const b = await buildOf(mac, Number(params.id));
      const syslog = (await lines(query, b.id)).lines;
      res.json(
        masked(res, host, {
          mac,
          buildId: b.id,
          status: b.status,
          createdAt: new Date(b.createdAt).toISOString(),
          finishedAt: b.finishedAt === undefined ? undefined : new Date(b.finishedAt).toISOString(),
          failureLog: b.failureLog ?? null,
          syslog,
          ringLines: d.syslog.limits.ringLines,
        }),
      );
    },
  );
  return r;
}
