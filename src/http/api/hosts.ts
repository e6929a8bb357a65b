// /api/hosts: list (paged, filtered), add, show, change and delete hosts, and a host's rendered kickstart or boot config.
import express from 'express';
import type { Response } from 'express';
import { parseMac, type Mac } from '../../net/mac.ts';
import type { Host as HostRecord } from '../../store/hosts.ts';
import type { HostState } from '../../store/builds.ts';
import { checkHostInput, hostRecord, type HostInput } from '../../hosts/input.ts';
import { maskText } from '../../hosts/policy.ts';
import { HttpError, sendText } from '../reply.ts';
import { apiRoute } from '../openapi.ts';
import { pageList } from '../paging.ts';
import { HostBody, HostListQuery, HostPage, HostPatchBody, HostView, MacParams, RenderParams } from '../api-schemas.ts';
import { callerOf, macParam, type ApiContext } from './context.ts';
import { bmcJson, bmcOfBody, saveBmc } from '../bmc-api.ts';

const iso = (ms: number) => new Date(ms).toISOString();
/** A host as the API answers it: times in ISO 8601 UTC. */
export const hostJson = <T extends { createdAt: number; updatedAt: number }>(h: T) => ({
  ...h,
  createdAt: iso(h.createdAt),
  updatedAt: iso(h.updatedAt),
});

export function hostRoutes(c: ApiContext): express.Router {
  const { d, p, actor, forCaller, docs } = c;
  const r = express.Router();
  const tags = ['hosts'];
  // A host's BMC, checked before anything is written (admin only; src/http/bmc-api.ts), and shown without its password.
  const checkBmc = async (res: Response, mac: string, raw: unknown) => {
    if (raw === undefined) return undefined;
    if (!d.bmc) throw new HttpError(422, 'bmc: this server keeps no BMCs');
    return bmcOfBody(d.bmc, callerOf(res).role, mac, raw);
  };
  const bmcView = async (mac: string) => {
    if (!d.bmc) return {};
    const v = await d.bmc.get(mac);
    return { bmc: v ? bmcJson(v) : null };
  };
  const viewOf = async (res: Response, h: HostRecord) =>
    forCaller(res, h, { ...hostJson(p.view(h.mac)!), ...(await bmcView(h.mac)) });
  /** The host fields of a body, and its `bmc` apart (checked and stored on its own: the password is write-only). */
  const split = (body: unknown) => {
    const { bmc, ...input } = body as Record<string, unknown>;
    return { input: input as HostInput, bmc };
  };

  apiRoute(
    r,
    docs,
    {
      method: 'get',
      path: '/hosts',
      summary: 'hosts and their state, by rack, position and hostname; filters: rack, state, profile',
      tags,
      query: HostListQuery,
      responses: { 200: HostPage },
    },
    async (_req, res, { query }) => {
      const bmcs = d.bmc ? await d.bmc.list() : undefined;
      const rows: { h: HostRecord; state: HostState }[] = [];
      for (const h of d.hosts.list()) {
        if (
          (query.rack !== undefined && h.rack !== query.rack) ||
          (query.profile !== undefined && h.profile !== query.profile) ||
          (query.site !== undefined && h.site !== undefined && h.site !== query.site)
        )
          continue;
        const state = p.state(h.mac);
        if (query.state === undefined || state === query.state) rows.push({ h, state });
      }
      const page = pageList('hosts', rows, ({ h }) => [h.rack ?? '', h.position ?? '', h.hostname, h.mac], query, 4);
      res.json({
        items: page.items.map(({ h, state }) => {
          const bmc = bmcs?.get(h.mac);
          return forCaller(res, h, {
            ...hostJson(h),
            state,
            // stuck: set by stuck detection (src/rollout/stuck.ts) past a stage's time limit, else null.
            stuck: p.stuck(h.mac) ?? null,
            ...(bmcs ? { bmc: bmc ? bmcJson(bmc) : null } : {}),
          });
        }),
        nextCursor: page.nextCursor,
      });
    },
  );
  apiRoute(
    r,
    docs,
    {
      method: 'post',
      path: '/hosts',
      summary: 'add a host',
      tags,
      body: HostBody,
      responses: { 201: HostView, 409: 'the MAC, hostname or IP belongs to another host', 422: 'a field is refused' },
    },
    async (req, res) => {
      const { input, bmc: rawBmc } = split(req.body);
      const checked = checkHostInput(input, c.profileExists);
      if (!checked.ok) throw new HttpError(422, checked.errors.join('; '));
      c.guard(res, {}, checked.host);
      conflicts(checked.host.mac, checked.host, true);
      const bmc = await checkBmc(res, checked.host.mac, rawBmc);
      const h = d.hosts.insert(checked.host);
      d.audit.recordChange(actor(res), 'host.create', checked.host.mac, undefined, checked.host);
      if (d.bmc) await saveBmc({ bmc: d.bmc, audit: d.audit }, actor(res), checked.host.mac, bmc);
      res.status(201).json(await viewOf(res, h));
    },
  );
  apiRoute(
    r,
    docs,
    {
      method: 'get',
      path: '/hosts/:mac',
      summary: 'a host: its record, state, latest build and timeline',
      tags,
      params: MacParams,
      responses: { 200: HostView, 404: 'no such host' },
    },
    async (req, res) => {
      const mac = macParam(req);
      const h = d.hosts.get(mac);
      if (!h) throw new HttpError(404, `no host with MAC ${mac}`);
      res.json(await viewOf(res, h));
    },
  );
  apiRoute(
    r,
    docs,
    {
      method: 'put',
      path: '/hosts/:mac',
      summary: 'change a host: the fields sent replace those kept (params as a whole); mac cannot change',
      tags,
      params: MacParams,
      body: HostPatchBody,
      responses: {
        200: HostView,
        404: 'no such host',
        409: 'the hostname or IP belongs to another host',
        422: 'a field is refused',
      },
    },
    async (req, res) => {
      const mac = macParam(req);
      const old = d.hosts.get(mac);
      if (!old) throw new HttpError(404, `no host with MAC ${mac}`);
      const { input: body, bmc: rawBmc } = split(req.body);
      if (body.mac !== undefined && parseMac(String(body.mac)) !== mac)
        throw new HttpError(422, 'mac: cannot be changed; delete the host and add it again');
      const merged: HostInput = { ...old, ...body, mac };
      const checked = checkHostInput(merged, c.profileExists);
      if (!checked.ok) throw new HttpError(422, checked.errors.join('; '));
      // Another profile is another install (STIG, Satellite, image): a tech picks one only when adding a host.
      if (c.isTech(res) && checked.host.profile !== old.profile)
        throw new HttpError(
          403,
          `profile: the tech role may not move ${old.hostname} from profile ${old.profile} to ${checked.host.profile}; ask an admin. Nothing was changed.`,
        );
      c.guard(res, old.params, checked.host);
      conflicts(mac, checked.host, false);
      const bmc = await checkBmc(res, mac, rawBmc);
      const h = d.hosts.update(checked.host);
      d.audit.recordChange(actor(res), 'host.update', mac, hostRecord(old), hostRecord(checked.host));
      if (d.bmc) await saveBmc({ bmc: d.bmc, audit: d.audit }, actor(res), mac, bmc);
      res.json(await viewOf(res, h));
    },
  );
  apiRoute(
    r,
    docs,
    {
      method: 'delete',
      path: '/hosts/:mac',
      summary: 'delete a host (admin)',
      tags,
      admin: true,
      params: MacParams,
      responses: { 204: 'deleted', 404: 'no such host' },
    },
    c.adminOnly,
    (req, res) => {
      const mac = macParam(req);
      const old = d.hosts.get(mac);
      if (!old || !d.hosts.delete(mac)) throw new HttpError(404, `no host with MAC ${mac}`);
      d.audit.recordChange(actor(res), 'host.delete', mac, hostRecord(old), undefined);
      res.status(204).end();
    },
  );
  apiRoute(
    r,
    docs,
    {
      method: 'get',
      path: '/hosts/:mac/render/:kind',
      summary: "the host's kickstart or boot config as it would be served now, secrets masked",
      tags,
      params: RenderParams,
      responses: {
        200: { contentType: 'text/plain', description: 'the rendered file' },
        404: 'no such host',
        409: 'the profile cannot be rendered',
      },
    },
    (req, res, { params }) => {
      const mac = macParam(req);
      const rendered = p.preview(mac, params.kind, { maskSecrets: true });
      if (!rendered.ok) throw new HttpError(rendered.status, rendered.message);
      // Also every secret value of the host, however the template quotes it.
      const host = d.hosts.get(mac);
      sendText(res, 200, host ? maskText(rendered.value, c.secretsOf(host)) : rendered.value);
    },
  );

  function conflicts(mac: Mac, h: { hostname: string; ip?: string }, isNew: boolean) {
    if (isNew && d.hosts.get(mac))
      throw new HttpError(409, `a host with MAC ${mac} already exists (PUT /api/hosts/${mac} to change it)`, 'mac');
    const byName = d.hosts.getByHostname(h.hostname);
    if (byName && byName.mac !== mac)
      throw new HttpError(409, `hostname ${h.hostname} already belongs to ${byName.mac}`, 'hostname');
    const byIp = h.ip ? d.hosts.getByIp(h.ip) : undefined;
    if (byIp && byIp.mac !== mac)
      throw new HttpError(409, `IP ${h.ip} already belongs to ${byIp.hostname} (${byIp.mac})`, 'ip');
  }

  return r;
}
