// GET /api/templates (which profile uses which template), GET /api/profiles/:name/effective[?mac=] (each value and
// where it comes from), GET /api/webhooks/deliveries (the delivery log, paged). Mounted under /api after the token
// check; each route declared with apiRoute so it is checked by and described with src/http/api-schemas.ts.
import express, { type Response } from 'express';
import { parseMac, type Mac } from '../../net/mac.ts';
import type { ProfileSnapshot } from '../../profiles/catalog.ts';
import { applyHostParams } from '../../profiles/load.ts';
import { effectiveProfile } from '../../profiles/effective.ts';
import type { Host } from '../../store/hosts.ts';
import type { WebhookDeliveryStore } from '../../store/webhooks.ts';
import { templateReport } from '../../render/usage.ts';
import type { TemplateLibrary } from '../../render/templates.ts';
import { formatTemplateError } from '../../render/template-catalog.ts';
import { webhookTarget } from '../../webhooks/payload.ts';
import { HttpError } from '../reply.ts';
import { apiRoute, type ApiDocs } from '../openapi.ts';
import { decodeIdCursor, encodeCursor, PAGE_LIMIT_DEFAULT } from '../paging.ts';
import {
  DeliveriesQuery,
  DeliveryPage,
  EffectiveProfile,
  EffectiveQuery,
  ProfileParams,
  TemplateUsageReport,
} from '../api-schemas.ts';

export interface TemplatesApiDeps {
  templates: () => TemplateLibrary;
  profiles: () => ProfileSnapshot;
  hosts: { get(mac: Mac): Promise<Host | undefined> };
  deliveries: Pick<WebhookDeliveryStore, 'list'>;
}

function macOf(v: string | undefined): Mac | undefined {
  if (v === undefined || v === '') return undefined;
  const mac = parseMac(v);
  if (!mac) throw new HttpError(400, `mac: "${v.slice(0, 64)}" is not a MAC address (aa:bb:cc:dd:ee:ff)`, 'mac');
  return mac;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function createTemplatesApi(d: TemplatesApiDeps): (docs: ApiDocs) => express.Router {
  return (docs) => {
    const r = express.Router();
    apiRoute(
      r,
      docs,
      {
        method: 'get',
        path: '/templates',
        summary: 'the templates loaded, which profiles use each, and the broken or missing ones',
        tags: ['templates'],
        responses: { 200: TemplateUsageReport },
      },
      (_req, res) => {
        const report = templateReport(d.templates(), d.profiles().profiles.values());
        res.json({ ...report, errors: report.errors.map((e) => ({ ...e, text: formatTemplateError(e) })) });
      },
    );

    apiRoute(
      r,
      docs,
      {
        method: 'get',
        path: '/profiles/:name/effective',
        summary: "each value of a profile (with a host's parameters, ?mac=) and where it comes from",
        tags: ['profiles'],
        params: ProfileParams,
        query: EffectiveQuery,
        responses: {
          200: EffectiveProfile,
          404: 'no such profile or host',
          409: 'the host uses another profile, or its parameters do not apply',
        },
      },
      async (_req, res, { params, query }) => {
        const name = params.name;
        const loaded = d.profiles().profiles.get(name);
        if (!loaded) throw new HttpError(404, `no profile named "${name.slice(0, 64)}" is loaded (GET /api/profiles)`);
        const mac = macOf(query.mac);
        let host: Host | undefined;
        if (mac) {
          host = await d.hosts.get(mac);
          if (!host) throw new HttpError(404, `mac: no host with MAC ${mac}`);
          if (host.profile !== name)
            throw new HttpError(409, `host ${host.hostname} uses profile ${host.profile}, not ${name}`);
        }
        const hostParams = host?.params ?? {};
        const applied = applyHostParams(loaded, hostParams, host?.hostname ?? name);
        if (!applied.ok) throw new HttpError(409, applied.errors.join('; '));
        const values = effectiveProfile(loaded, applied.profile, hostParams, host?.hostname);
        // A tech's token sees host secrets masked, as everywhere else in the API (src/http/api/index.ts sets it).
        const mask = res.locals.maskForCaller as
          (<V>(res: Response, host: { profile: string; params: Record<string, string> }, v: V) => V) | undefined;
        res.json({
          profile: name,
          file: loaded.file,
          extends: loaded.extends,
          host: host && { mac: host.mac, hostname: host.hostname },
          values: mask ? mask(res, host ?? { profile: name, params: {} }, values) : values,
        });
      },
    );

    apiRoute(
      r,
      docs,
      {
        method: 'get',
        path: '/webhooks/deliveries',
        summary: 'webhook deliveries, newest first (paged); filters: mac, status',
        tags: ['webhooks'],
        query: DeliveriesQuery,
        responses: { 200: DeliveryPage },
      },
      async (_req, res, { query }) => {
        const limit = query.limit ?? PAGE_LIMIT_DEFAULT;
        const beforeId = query.cursor === undefined ? undefined : decodeIdCursor('webhook-deliveries', query.cursor);
        // One more than asked tells whether a next page exists.
        const rows = await d.deliveries.list({
          mac: macOf(query.mac),
          status: query.status,
          limit: limit + 1,
          beforeId,
        });
        const page = rows.slice(0, limit);
        res.json({
          items: page.map((x) => ({
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
          nextCursor: rows.length > limit ? encodeCursor('webhook-deliveries', [page[page.length - 1]!.id]) : null,
        });
      },
    );
    return r;
  };
}
