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
  const viewOf = async (res: Response, h: HostRecord) => {
    // A write is in this node's view on return; a host another node just deleted is gone from it.
    const v = await p.view(h.mac);
    if (!v) throw new HttpError(404, `no host with MAC ${h.mac}`);
    return forCaller(res, h, { ...hostJson(v), ...(await bmcView(h.mac)) });
  };
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
      // From memory (src/store/view.ts): pageList sorts, so the view's order does not matter.
      for (const h of d.view.hostList()) {
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
      // stuck: set by stuck detection (src/rollout/stuck.ts) past a stage's time limit, else null. Only a host in
      // build reads its timeline, and only the page's hosts.
      const stuck = await Promise.all(page.items.map(({ h }) => p.stuck(h.mac)));
      res.json({
        items: page.items.map(({ h, state }, i) => {
          const bmc = bmcs?.get(h.mac);
          return forCaller(res, h, {
            ...hostJson(h),
            state,
            stuck: stuck[i] ?? null,
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
      await c.guard(res, {}, checked.host);
      await conflicts(checked.host.mac, checked.host, true);
      const bmc = await checkBmc(res, checked.host.mac, rawBmc);
      const h = await d.hosts.insert(checked.host);
      await d.audit.recordChange(actor(res), 'host.create', checked.host.mac, undefined, checked.host);
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
      const h = await d.hosts.get(mac);
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
      const old = await d.hosts.get(mac);
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
      await c.guard(res, old.params, checked.host);
      await conflicts(mac, checked.host, false);
      const bmc = await checkBmc(res, mac, rawBmc);
      const h = await d.hosts.update(checked.host);
      await d.audit.recordChange(actor(res), 'host.update', mac, hostRecord(old), hostRecord(checked.host));
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
    async (req, res) => {
      const mac = macParam(req);
      const old = await d.hosts.get(mac);
      if (!old || !(await d.hosts.delete(mac))) throw new HttpError(404, `no host with MAC ${mac}`);
      await d.audit.recordChange(actor(res), 'host.delete', mac, hostRecord(old), undefined);
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
    async (req, res, { params }) => {
      const mac = macParam(req);
      const rendered = await p.preview(mac, params.kind, { maskSecrets: true });
      if (!rendered.ok) throw new HttpError(rendered.status, rendered.message);
      // Also every secret value of the host, however the template quotes it (the host preview rendered).
      const host = d.view.host(mac);
      sendText(res, 200, host ? maskText(rendered.value, c.secretsOf(host)) : rendered.value);
    },
  );

  async function conflicts(mac: Mac, h: { hostname: string; ip?: string }, isNew: boolean) {
    const [byMac, byName, byIp] = await Promise.all([
      isNew ? d.hosts.get(mac) : undefined,
      d.hosts.getByHostname(h.hostname),
      h.ip ? d.hosts.getByIp(h.ip) : undefined,
    ]);
    if (byMac)
      throw new HttpError(409, `a host with MAC ${mac} already exists (PUT /api/hosts/${mac} to change it)`, 'mac');
    if (byName && byName.mac !== mac)
      throw new HttpError(409, `hostname ${h.hostname} already belongs to ${byName.mac}`, 'hostname');
    if (byIp && byIp.mac !== mac)
      throw new HttpError(409, `IP ${h.ip} already belongs to ${byIp.hostname} (${byIp.mac})`, 'ip');
  }

  return r;
}
