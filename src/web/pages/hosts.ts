// Hosts: the list, one host's page (timeline, rendered previews), add/edit/delete, start and cancel a build.
import express, { type Request, type Response } from 'express';
import type { Host, HostFields } from '../../store/hosts.ts';
import type { HostEvent } from '../../store/events.ts';
import type { Mac } from '../../net/mac.ts';
import { checkHostInput, hostRecord, HOST_FIELDS, type HostInput } from '../../hosts/input.ts';
import { guardHostParams, maskDeep, maskText } from '../../hosts/policy.ts';
import { fmtTime, Refused, type WebContext } from './context.ts';
import { hostList, parseHostListQuery, type HostListRow } from '../hosts-list.ts';
import { installerLogView } from './installer-log.ts';
import { powerView } from '../power-view.ts';

export function hostPages(c: WebContext): express.Router {
  const { d, p, admin, tech, form, page, flash, actor, hostOf } = c;
  const r = express.Router();

  r.get('/hosts', tech, async (req, res) => {
    const query = parseHostListQuery(req.query as Record<string, unknown>);
    const learnt = p.learntAddresses();
    const hosts = d.view.hostList();
    const chips = await c.chipsFor(hosts);
    const rows: HostListRow[] = hosts.map((h, i) => ({
      host: h,
      chip: chips[i]!,
      learntIp: learnt.get(h.mac),
      lastBuild: d.view.latestBuild(h.mac),
    }));
    page(res, 200, 'hosts', { title: 'Hosts', list: hostList(rows, query), total: rows.length, query });
  });

  r.get('/hosts/new', admin, (_req, res) => hostForm(res, 200, undefined, emptyForm(), []));
  r.post('/hosts', form, admin, async (req, res) => {
    const values = formValues(req.body);
    const checked = await checkForm(res, values, undefined);
    if (!checked.ok) return hostForm(res, checked.status, undefined, values, checked.errors);
    await d.hosts.insert(checked.host);
    await d.audit.recordChange(actor(res), 'host.create', checked.host.mac, undefined, checked.host);
    flash(res, { kind: 'ok', text: `Host ${checked.host.hostname} added.` });
    res.redirect(303, `/hosts/${checked.host.mac}`);
  });

  r.get('/hosts/:mac', tech, async (req, res) => {
    const host = hostOf(req);
    page(res, 200, 'host', await hostPageData(host, c.isTech(res), req.query.severity));
  });

  r.get('/hosts/:mac/edit', admin, (req, res) => {
    const host = hostOf(req);
    hostForm(res, 200, host, toForm(host), []);
  });
  r.post('/hosts/:mac', form, admin, async (req, res) => {
    const old = hostOf(req);
    const values = { ...formValues(req.body), mac: old.mac };
    const checked = await checkForm(res, values, old.mac, old.params);
    if (!checked.ok) return hostForm(res, checked.status, old, values, checked.errors);
    await d.hosts.update(checked.host);
    await d.audit.recordChange(actor(res), 'host.update', old.mac, hostRecord(old), hostRecord(checked.host));
    flash(res, { kind: 'ok', text: `Host ${checked.host.hostname} saved.` });
    res.redirect(303, `/hosts/${old.mac}`);
  });

  r.get('/hosts/:mac/delete', admin, (req, res) => {
    const host = hostOf(req);
    page(res, 200, 'confirm-delete', { title: `Delete ${host.hostname}`, host, state: p.state(host.mac) });
  });
  r.post('/hosts/:mac/delete', form, admin, async (req, res) => {
    const host = hostOf(req);
    if (p.state(host.mac) === 'build') await p.cancelBuild(host.mac, actor(res));
    await d.hosts.delete(host.mac);
    await d.audit.recordChange(actor(res), 'host.delete', host.mac, hostRecord(host), undefined);
    flash(res, { kind: 'ok', text: `Host ${host.hostname} (${host.mac}) deleted.` });
    res.redirect(303, '/hosts');
  });

  r.post('/hosts/:mac/build', form, tech, async (req, res) => {
    const host = hostOf(req);
    const started = await p.startBuild(host.mac, actor(res));
    if (!started.ok)
      flash(res, { kind: 'error', text: `Could not start a build for ${host.hostname}: ${started.message}` });
    else
      flash(res, {
        kind: 'ok',
        text: `Build ${started.value.buildId} started for ${host.hostname}; its token expires ${fmtTime(Date.parse(started.value.expiresAt))}. Power-cycle the machine to PXE boot.`,
      });
    res.redirect(303, backTo(req, `/hosts/${host.mac}`));
  });
  r.post('/hosts/:mac/cancel', form, tech, async (req, res) => {
    const host = hostOf(req);
    const cancelled = await p.cancelBuild(host.mac, actor(res));
    flash(
      res,
      cancelled.ok
        ? { kind: 'ok', text: `Build ${cancelled.value.id} of ${host.hostname} cancelled: it boots its local disk.` }
        : { kind: 'error', text: cancelled.message },
    );
    res.redirect(303, backTo(req, `/hosts/${host.mac}`));
  });

  async function hostPageData(host: Host, masked: boolean, severity?: unknown) {
    const view = await p.view(host.mac);
    // Deleted between hostOf() and here (another tab, another node).
    if (!view) throw new Refused(404, `There is no host with MAC ${host.mac}.`);
    // A tech sees secret parameters masked, and the host's secret values masked in the failure log and the timeline.
    const secrets = masked ? c.secretsOf(host) : new Set<string>();
    if (masked && view.build?.failureLog) view.build.failureLog = maskText(view.build.failureLog, secrets);
    const [chip, timeline, rendered] = await Promise.all([
      c.chipFor(host),
      d.events.timeline(host.mac, 500),
      Promise.all(PREVIEWS.map((kind) => p.preview(host.mac, kind, { maskSecrets: true }))),
    ]);
    const previews = PREVIEWS.map((kind, i) => {
      const pr = rendered[i]!;
      return {
        kind,
        ok: pr.ok,
        text: masked ? maskText(pr.ok ? pr.value : pr.message, secrets) : pr.ok ? pr.value : pr.message,
      };
    });
    const events = view.events
      .slice()
      .reverse()
      .map((e) => eventRow(e as unknown as HostEvent & { at: string }))
      .map((e) => (masked ? { ...e, detail: maskText(e.detail, secrets) } : e));
    const params = Object.entries(masked ? maskDeep(host.params) : host.params);
    const log = await installerLogView(c, secrets, view.build?.id, severity);
    const power = powerView(timeline);
    if (power && masked) for (const e of power.errors) e.answer = maskText(e.answer, secrets);
    return { title: host.hostname, host, view, chip, previews, events, params, log, power, live: true };
  }

  function hostForm(
    res: Response,
    status: number,
    host: Host | undefined,
    values: Record<string, string>,
    errors: string[],
  ) {
    const profiles = [...d.catalog.snapshot.profiles.keys()].sort();
    page(res, status, 'host-form', {
      title: host ? `Edit ${host.hostname}` : 'Add a host',
      host,
      values,
      errors,
      profiles,
    });
  }

  async function checkForm(
    res: Response,
    values: Record<string, string>,
    existing: Mac | undefined,
    beforeParams: Record<string, string> = {},
  ): Promise<{ ok: true; host: HostFields } | { ok: false; status: number; errors: string[] }> {
    const params: Record<string, string> = {};
    const errors: string[] = [];
    values.params.split('\n').forEach((line, i) => {
      const t = line.trim();
      if (!t || t.startsWith('#')) return;
      const eq = t.indexOf('=');
      if (eq <= 0) {
        errors.push(`params line ${i + 1}: write field.path = value (e.g. boot.kernelArgs = console=ttyS0)`);
        return;
      }
      params[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
    });
    const input: HostInput = {
      ...Object.fromEntries(HOST_FIELDS.filter((f) => f !== 'params').map((f) => [f, values[f]])),
      params,
    };
    const r2 = checkHostInput(input, (n) => d.catalog.snapshot.profiles.has(n));
    if (!r2.ok) return { ok: false, status: 422, errors: [...r2.errors, ...errors] };
    if (errors.length) return { ok: false, status: 422, errors };
    const h = r2.host;
    const refused = guardHostParams(await c.guardOf(res), beforeParams, h);
    if (refused) return { ok: false, status: refused.status, errors: refused.errors };
    // One host: ask the database itself, not the view (another node may have just taken the name).
    const [byMac, byName, byIp] = await Promise.all([
      existing ? undefined : d.hosts.get(h.mac),
      d.hosts.getByHostname(h.hostname),
      h.ip ? d.hosts.getByIp(h.ip) : undefined,
    ]);
    if (byMac) errors.push(`mac: a host with MAC ${h.mac} exists already`);
    if (byName && byName.mac !== h.mac) errors.push(`hostname: ${h.hostname} already belongs to ${byName.mac}`);
    if (byIp && byIp.mac !== h.mac) errors.push(`ip: ${h.ip} already belongs to ${byIp.hostname} (${byIp.mac})`);
    return errors.length ? { ok: false, status: 422, errors } : { ok: true, host: h };
  }

  return r;
}

const PREVIEWS = ['kickstart', 'pxelinux', 'grub', 'ipxe'] as const;

function backTo(req: Request, fallback: string): string {
  const b = (req.body as Record<string, unknown>).back;
  return b === '/' ? '/' : fallback;
}

function emptyForm(): Record<string, string> {
  return Object.fromEntries(HOST_FIELDS.map((f) => [f, '']));
}

function formValues(body: unknown): Record<string, string> {
  const b = (body ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    HOST_FIELDS.map((f) => [f, typeof b[f] === 'string' ? (b[f] as string).replace(/\r\n?/g, '\n') : '']),
  );
}

function toForm(h: Host): Record<string, string> {
  return {
    mac: h.mac,
    hostname: h.hostname,
    profile: h.profile,
    ip: h.ip ?? '',
    netmask: h.netmask ?? '',
    gateway: h.gateway ?? '',
    nameservers: h.nameservers.join(', '),
    domain: h.domain ?? '',
    rack: h.rack ?? '',
    position: h.position ?? '',
    uuid: h.uuid ?? '',
    site: h.site ?? '',
    params: Object.entries(h.params)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n'),
  };
}

function eventRow(e: {
  id: number;
  at: string;
  type: string;
  clientIp?: string;
  status?: string;
  bytes?: number;
  buildId?: number;
  detail?: Record<string, unknown>;
  node?: string;
}) {
  const detail = e.detail
    ? Object.entries(e.detail)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ')
    : '';
  return {
    at: e.at,
    type: e.type,
    clientIp: e.clientIp ?? '',
    status: e.status ?? '',
    bytes: e.bytes,
    buildId: e.buildId,
    node: e.node ?? '',
    detail: detail.length > 300 ? detail.slice(0, 300) + '…' : detail,
    cls:
      e.type.endsWith('failed') || e.type.endsWith('refused') || e.status === 'error'
        ? 'bad'
        : e.type === 'build.built'
          ? 'good'
          : '',
  };
}
