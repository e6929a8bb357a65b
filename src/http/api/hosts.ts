// /api/hosts: list, add, show, change and delete hosts, and a host's rendered kickstart or boot config.
import express, { type Request, type Response } from 'express';
import { parseMac, type Mac } from '../../net/mac.ts';
import { checkHostInput, hostRecord, HOST_FIELDS, type HostInput } from '../../hosts/input.ts';
import { maskText } from '../../hosts/policy.ts';
import { HttpError, sendText } from '../reply.ts';
import { callerOf, macParam, type ApiContext } from './context.ts';
import { bmcOfBody, saveBmc } from '../bmc-api.ts';

export function hostRoutes(c: ApiContext): express.Router {
  const { d, p, actor, forCaller } = c;
  const r = express.Router();

  // A host's BMC, checked before anything is written (admin only; src/http/bmc-api.ts), and shown without its password.
  const checkBmc = async (res: Response, mac: string, raw: unknown) => {
    if (raw === undefined) return undefined;
    if (!d.bmc) throw new HttpError(422, 'bmc: this server keeps no BMCs');
    return bmcOfBody(d.bmc, callerOf(res).role, mac, raw);
  };
  const bmcView = async (mac: string) => (d.bmc ? ((await d.bmc.get(mac)) ?? null) : undefined);

  r.get('/hosts', async (_req, res) => {
    const bmcs = d.bmc ? await d.bmc.list() : undefined;
    res.json(
      d.hosts.list().map((h) =>
        forCaller(res, h, {
          ...h,
          state: p.state(h.mac),
          // stuck: set by stuck detection (src/rollout/stuck.ts) past a stage's time limit, else null.
          stuck: p.stuck(h.mac) ?? null,
          ...(bmcs ? { bmc: bmcs.get(h.mac) ?? null } : {}),
        }),
      ),
    );
  });
  r.post('/hosts', async (req, res) => {
    const { input, bmc: rawBmc } = bodyObject(req);
    const checked = checkHostInput(input, c.profileExists);
    if (!checked.ok) throw new HttpError(422, checked.errors.join('; '));
    c.guard(res, {}, checked.host);
    conflicts(checked.host.mac, checked.host, true);
    const bmc = await checkBmc(res, checked.host.mac, rawBmc);
    d.hosts.insert(checked.host);
    d.audit.recordChange(actor(res), 'host.create', checked.host.mac, undefined, checked.host);
    if (d.bmc) await saveBmc({ bmc: d.bmc, audit: d.audit }, actor(res), checked.host.mac, bmc);
    const bmcNow = await bmcView(checked.host.mac);
    res
      .status(201)
      .json(
        forCaller(res, checked.host, { ...p.view(checked.host.mac), ...(bmcNow !== undefined ? { bmc: bmcNow } : {}) }),
      );
  });
  r.get('/hosts/:mac', async (req, res) => {
    const mac = macParam(req);
    const v = p.view(mac);
    const h = d.hosts.get(mac);
    if (!v || !h) throw new HttpError(404, `no host with MAC ${req.params.mac}`);
    const bmcNow = await bmcView(mac);
    res.json(forCaller(res, h, { ...v, ...(bmcNow !== undefined ? { bmc: bmcNow } : {}) }));
  });
  r.put('/hosts/:mac', async (req, res) => {
    const mac = macParam(req);
    const old = d.hosts.get(mac);
    if (!old) throw new HttpError(404, `no host with MAC ${mac}`);
    const { input: body, bmc: rawBmc } = bodyObject(req);
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
    d.hosts.update(checked.host);
    d.audit.recordChange(actor(res), 'host.update', mac, hostRecord(old), hostRecord(checked.host));
    if (d.bmc) await saveBmc({ bmc: d.bmc, audit: d.audit }, actor(res), mac, bmc);
    const bmcNow = await bmcView(mac);
    res.json(forCaller(res, checked.host, { ...p.view(mac), ...(bmcNow !== undefined ? { bmc: bmcNow } : {}) }));
  });
  r.delete('/hosts/:mac', c.adminOnly, (req, res) => {
    const mac = macParam(req);
    const old = d.hosts.get(mac);
    if (!old || !d.hosts.delete(mac)) throw new HttpError(404, `no host with MAC ${mac}`);
    d.audit.recordChange(actor(res), 'host.delete', mac, hostRecord(old), undefined);
    res.status(204).end();
  });
  r.get('/hosts/:mac/render/:kind', (req, res) => {
    const kind = String(req.params.kind);
    if (!['kickstart', 'pxelinux', 'grub', 'ipxe'].includes(kind))
      throw new HttpError(400, 'kind must be kickstart, pxelinux, grub or ipxe');
    const mac = macParam(req);
    const rendered = p.preview(mac, kind as 'kickstart', { maskSecrets: true });
    if (!rendered.ok) throw new HttpError(rendered.status, rendered.message);
    // Also every secret value of the host, however the template quotes it.
    const host = d.hosts.get(mac);
    sendText(res, 200, host ? maskText(rendered.value, c.secretsOf(host)) : rendered.value);
  });

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

  return r;
}

/** The host fields of a body, and its `bmc` apart (checked and stored on its own: the password is write-only). */
function bodyObject(req: Request): { input: HostInput; bmc: unknown } {
  const b = req.body as unknown;
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw new HttpError(400, 'send a JSON object with Content-Type: application/json');
  const { bmc, ...rest } = b as Record<string, unknown>;
  const unknown = Object.keys(rest).filter((k) => !(HOST_FIELDS as readonly string[]).includes(k));
  if (unknown.length)
    throw new HttpError(422, `unknown field(s) ${unknown.join(', ')}; known: ${HOST_FIELDS.join(', ')}, bmc`);
  return { input: rest as HostInput, bmc };
}
