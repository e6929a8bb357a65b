// /api/hosts: list, add, show, change and delete hosts, and a host's rendered kickstart or boot config.
import express, { type Request } from 'express';
import { parseMac, type Mac } from '../../net/mac.ts';
import { checkHostInput, hostRecord, HOST_FIELDS, type HostInput } from '../../hosts/input.ts';
import { maskText } from '../../hosts/policy.ts';
import { HttpError, sendText } from '../reply.ts';
import { macParam, type ApiContext } from './context.ts';

export function hostRoutes(c: ApiContext): express.Router {
  const { d, p, actor, forCaller } = c;
  const r = express.Router();

  r.get('/hosts', (_req, res) => {
    // stuck: set by stuck detection (src/rollout/stuck.ts) while the host is past a stage's time limit, else null.
    res.json(
      d.hosts.list().map((h) => forCaller(res, h, { ...h, state: p.state(h.mac), stuck: p.stuck(h.mac) ?? null })),
    );
  });
  r.post('/hosts', (req, res) => {
    const checked = checkHostInput(bodyObject(req), c.profileExists);
    if (!checked.ok) throw new HttpError(422, checked.errors.join('; '));
    c.guard(res, {}, checked.host);
    conflicts(checked.host.mac, checked.host, true);
    d.hosts.insert(checked.host);
    d.audit.recordChange(actor(res), 'host.create', checked.host.mac, undefined, checked.host);
    res.status(201).json(forCaller(res, checked.host, p.view(checked.host.mac)));
  });
  r.get('/hosts/:mac', (req, res) => {
    const mac = macParam(req);
    const v = p.view(mac);
    const h = d.hosts.get(mac);
    if (!v || !h) throw new HttpError(404, `no host with MAC ${req.params.mac}`);
    res.json(forCaller(res, h, v));
  });
  r.put('/hosts/:mac', (req, res) => {
    const mac = macParam(req);
    const old = d.hosts.get(mac);
    if (!old) throw new HttpError(404, `no host with MAC ${mac}`);
    const body = bodyObject(req);
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
    d.hosts.update(checked.host);
    d.audit.recordChange(actor(res), 'host.update', mac, hostRecord(old), hostRecord(checked.host));
    res.json(forCaller(res, checked.host, p.view(mac)));
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

function bodyObject(req: Request): HostInput {
  const b = req.body as unknown;
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw new HttpError(400, 'send a JSON object with Content-Type: application/json');
  const unknown = Object.keys(b).filter((k) => !(HOST_FIELDS as readonly string[]).includes(k));
  if (unknown.length)
    throw new HttpError(422, `unknown field(s) ${unknown.join(', ')}; known: ${HOST_FIELDS.join(', ')}`);
  return b as HostInput;
}
