// Machines that PXE-booted here but are not hosts, and "make this a host" (admin) in one form.
import express, { type Response } from 'express';
import { parseMac, type Mac } from '../../net/mac.ts';
import { DiscoveredStore } from '../../store/discovered.ts';
import type { HostFields } from '../../store/hosts.ts';
import { guardHostParams } from '../../hosts/policy.ts';
import { buildReadinessProblems } from '../../hosts/readiness.ts';
import {
  archLabel,
  checkFromDiscovered,
  FROM_DISCOVERED_FIELDS,
  type FromDiscoveredForm,
} from '../../hosts/from-discovered.ts';
import { Refused, str, type WebContext } from './context.ts';

export function discoveredPages(c: WebContext): express.Router {
  const { d } = c;
  const discovered = new DiscoveredStore(d.db);
  const r = express.Router();

  function list(
    res: Response,
    status: number,
    extra: { formMac?: string; values?: FromDiscoveredForm; errors?: string[] } = {},
  ) {
    const rows = discovered
      .list()
      .filter((m) => !d.hosts.get(m.mac as Mac))
      .map((m) => ({ ...m, archLabel: archLabel(m.arch) }));
    const profiles = [...d.catalog.snapshot.profiles.keys()].sort();
    c.page(res, status, 'discovered', { title: 'Discovered machines', rows, profiles, ...extra });
  }

  r.get('/discovered', c.tech, (_req, res) => list(res, 200));

  r.post('/discovered/:mac/host', c.form, c.admin, (req, res) => {
    const mac = parseMac(String(req.params.mac ?? ''));
    if (!mac) throw new Refused(404, `"${String(req.params.mac).slice(0, 64)}" is not a MAC address`);
    const body = req.body as Record<string, unknown>;
    const values = Object.fromEntries(FROM_DISCOVERED_FIELDS.map((f) => [f, str(body[f]).slice(0, 300)]));
    const g = c.guardOf(res);
    const checked = checkFromDiscovered(discovered.get(mac), values, {
      profileExists: (n) => d.catalog.snapshot.profiles.has(n),
      macTaken: (m) => d.hosts.get(m as Mac) !== undefined,
      ipTaken: (ip) => d.hosts.getByIp(ip) !== undefined,
      hostnameTaken: (n) => d.hosts.getByHostname(n) !== undefined,
      hostProblems: (h: HostFields) => guardHostParams(g, {}, h),
      buildProblems: (h: HostFields) => buildReadinessProblems(d.catalog.snapshot.profiles.get(h.profile), h),
    });
    if (!checked.ok) return list(res, checked.status, { formMac: mac, values, errors: checked.errors });
    d.hosts.insert(checked.host);
    d.audit.recordChange(c.actor(res), 'host.create', mac, undefined, { ...checked.host, from: 'discovered' });
    c.flash(res, { kind: 'ok', text: `Host ${checked.host.hostname} added from the discovered machine ${mac}.` });
    res.redirect(303, `/hosts/${mac}`);
  });
  return r;
}
