// GET /api/templates (which profile uses which template), GET /api/profiles/:name/effective[?mac=] (each value and
// where it comes from), GET /api/webhooks/deliveries (the delivery log). Mounted under /api after the token check.
import express, { type Request, type Response } from 'express';
import { parseMac, type Mac } from '../../net/mac.ts';
import type { ProfileSnapshot } from '../../profiles/catalog.ts';
import { applyHostParams } from '../../profiles/load.ts';
import { effectiveProfile } from '../../profiles/effective.ts';
import type { Host } from '../../store/hosts.ts';
import type { DeliveryStatus, WebhookDeliveryStore } from '../../store/webhooks.ts';
import { templateReport } from '../../render/usage.ts';
import type { TemplateLibrary } from '../../render/templates.ts';
import { formatTemplateError } from '../../render/template-catalog.ts';
import { webhookTarget } from '../../webhooks/payload.ts';

export interface TemplatesApiDeps {
  templates: () => TemplateLibrary;
  profiles: () => ProfileSnapshot;
  hosts: { get(mac: Mac): Host | undefined };
  deliveries: Pick<WebhookDeliveryStore, 'list'>;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed', 'dropped'];

function macQuery(req: Request): Mac | undefined {
  const v = req.query.mac;
  if (v === undefined || v === '') return undefined;
  const mac = typeof v === 'string' ? parseMac(v) : undefined;
  if (!mac) throw new ApiError(400, `mac: "${String(v).slice(0, 64)}" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return mac;
}

export function createTemplatesApi(d: TemplatesApiDeps): express.Router {
  const r = express.Router();
  r.get('/templates', (_req, res) => {
    const report = templateReport(d.templates(), d.profiles().profiles.values());
    res.json({ ...report, errors: report.errors.map((e) => ({ ...e, text: formatTemplateError(e) })) });
  });

  r.get('/profiles/:name/effective', (req, res) => {
    const name = String(req.params.name);
    const loaded = d.profiles().profiles.get(name);
    if (!loaded) throw new ApiError(404, `no profile named "${name.slice(0, 64)}" is loaded (GET /api/profiles)`);
    const mac = macQuery(req);
    let host: Host | undefined;
    if (mac) {
      host = d.hosts.get(mac);
      if (!host) throw new ApiError(404, `mac: no host with MAC ${mac}`);
      if (host.profile !== name)
        throw new ApiError(409, `host ${host.hostname} uses profile ${host.profile}, not ${name}`);
    }
    const params = host?.params ?? {};
    const applied = applyHostParams(loaded, params, host?.hostname ?? name);
    if (!applied.ok) throw new ApiError(409, applied.errors.join('; '));
    const values = effectiveProfile(loaded, applied.profile, params, host?.hostname);
    // A tech's token sees host secrets masked, as everywhere else in the API (src/http/app.ts sets maskForCaller).
    const mask = res.locals.maskForCaller as
      (<V>(res: Response, host: { profile: string; params: Record<string, string> }, v: V) => V) | undefined;
    res.json({
      profile: name,
      file: loaded.file,
      extends: loaded.extends,
      host: host && { mac: host.mac, hostname: host.hostname },
      values: mask ? mask(res, host ?? { profile: name, params: {} }, values) : values,
    });
  });

  r.get('/webhooks/deliveries', async (req, res) => {
    const status = req.query.status;
    if (status !== undefined && !STATUSES.includes(status as DeliveryStatus))
      throw new ApiError(400, `status must be one of ${STATUSES.join(', ')}`);
    const limitRaw = req.query.limit;
    if (
      limitRaw !== undefined &&
      (typeof limitRaw !== 'string' || !/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > 1000)
    )
      throw new ApiError(400, 'limit must be a whole number from 1 to 1000');
    const rows = await d.deliveries.list({
      mac: macQuery(req),
      status: status as DeliveryStatus | undefined,
      limit: limitRaw === undefined ? 100 : Number(limitRaw),
    });
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    res.json(
      rows.map((x) => ({
        id: x.uid,
        event: x.event,
        // The URL's origin only: paths and queries of webhook URLs often hold tokens.
        target: webhookTarget(x.url),
        mac: x.mac,
        buildId: x.buildId,
        status: x.status,
        attempts: x.attempts,
        createdAt: iso(x.createdAt),
        lastAttemptAt: iso(x.lastAt),
        nextAttemptAt: x.status === 'pending' ? iso(x.nextAt) : undefined,
        httpStatus: x.lastStatus,
        error: x.lastError,
        ms: x.lastMs,
      })),
    );
  });

  r.use((err: unknown, _req: Request, res: Response, next: (e?: unknown) => void) => {
    if (!(err instanceof ApiError)) return next(err);
    res.status(err.status).json({ error: err.message });
  });
  return r;
}
