// Machines that PXE-booted here but are not hosts, and "make this a host" (admin) in one form.
import express, { type Response } from 'express';
import { parseMac, type Mac } from '../../net/mac.ts';
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
  const discovered = d.store.discovered;
  const r = express.Router();

  async function list(
    res: Response,
    status: number,
    extra: { formMac?: string; values?: FromDiscoveredForm; errors?: string[] } = {},
  ) {
    const rows = (await discovered.list())
      .filter((m) => !d.view.host(m.mac as Mac))
      .map((m) => ({ ...m, archLabel: archLabel(m.arch) }));
    const profiles = [...d.catalog.snapshot.profiles.keys()].sort();
    c.page(res, status, 'discovered', { title: 'Discovered machines', rows, profiles, ...extra });
  }

  r.get('/discovered', c.tech, (_req, res) => list(res, 200));

  r.post('/discovered/:mac/host', c.form, c.admin, async (req, res) => {
    const mac = parseMac(String(req.params.mac ?? ''));
    if (!mac) throw new Refused(404, `"${String(req.params.mac).slice(0, 64)}" is not a MAC address`);
    const body = req.body as Record<string, unknown>;
    const values = Object.fromEntries(FROM_DISCOVERED_FIELDS.map((f) => [f, str(body[f]).slice(0, 300)]));
    const g = await c.guardOf(res);
    // The repository reads no single row: the table is bounded (10,000 rows by default), and this is one admin's click.
    const seen = (await discovered.list(Number.MAX_SAFE_INTEGER)).find((m) => m.mac === mac);
    // Taken MACs, addresses and names from the view, as the rack import checks them; the unique keys back it.
    const checked = checkFromDiscovered(seen, values, {
      profileExists: (n) => d.catalog.snapshot.profiles.has(n),
      macTaken: (m) => d.view.host(m as Mac) !== undefined,
      ipTaken: (ip) => d.view.hostByIp(ip) !== undefined,
      hostnameTaken: (n) => d.view.hostByHostname(n) !== undefined,
      hostProblems: (h: HostFields) => guardHostParams(g, {}, h),
      buildProblems: (h: HostFields) => buildReadinessProblems(d.catalog.snapshot.profiles.get(h.profile), h),
    });
    if (!checked.ok) return list(res, checked.status, { formMac: mac, values, errors: checked.errors });
    await d.hosts.insert(checked.host);
    await d.audit.recordChange(c.actor(res), 'host.create', mac, undefined, { ...checked.host, from: 'discovered' });
    c.flash(res, { kind: 'ok', text: `Host ${checked.host.hostname} added from the discovered machine ${mac}.` });
    res.redirect(303, `/hosts/${mac}`);
  });
  return r;
}
