// Templates (which profile uses which, errors with file:line), a profile's effective values (and where each comes
// from, with a host's parameters when ?mac= names one), and the webhook delivery log. Read-only pages for techs too;
// a tech sees secret values masked.
import express, { type Request, type Response } from 'express';
import { parseMac } from '../../net/mac.ts';
import { applyHostParams } from '../../profiles/load.ts';
import { effectiveProfile, type EffectiveValue } from '../../profiles/effective.ts';
import { isSecretKey, maskText, MASK } from '../../hosts/policy.ts';
import { templateReport } from '../../render/usage.ts';
import { formatTemplateError } from '../../render/template-catalog.ts';
import { webhookTarget } from '../../webhooks/payload.ts';
import type { Host } from '../../store/hosts.ts';
import type { DeliveryStatus } from '../../store/webhooks.ts';
import { Refused, sortedHosts, type WebContext } from './context.ts';

const STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed', 'dropped'];

export function templatePages(c: WebContext): express.Router {
  const { d, page } = c;
  const r = express.Router();

  r.get('/templates', c.tech, (_req, res) => {
    if (!d.templates) throw new Refused(404, 'Templates are not available in this server.');
    const report = templateReport(d.templates(), d.catalog.snapshot.profiles.values());
    page(res, 200, 'templates', {
      title: 'Templates',
      report,
      errors: report.errors.map(formatTemplateError),
    });
  });

  r.get('/profiles/:name/effective', c.tech, (req: Request, res: Response) => {
    const name = String(req.params.name);
    const loaded = d.catalog.snapshot.profiles.get(name);
    if (!loaded) throw new Refused(404, `There is no loaded profile named ${name}.`);
    let host: Host | undefined;
    const macText = typeof req.query.mac === 'string' ? req.query.mac : '';
    if (macText) {
      const mac = parseMac(macText);
      if (!mac) throw new Refused(400, `"${macText.slice(0, 64)}" is not a MAC address.`);
      host = d.view.host(mac);
      if (!host) throw new Refused(404, `There is no host with MAC ${mac}.`);
      if (host.profile !== name) throw new Refused(409, `${host.hostname} uses profile ${host.profile}, not ${name}.`);
    }
    const params = host?.params ?? {};
    const applied = applyHostParams(loaded, params, host?.hostname ?? name);
    if (!applied.ok) throw new Refused(409, applied.errors.join('; '));
    let values: EffectiveValue[] = effectiveProfile(loaded, applied.profile, params, host?.hostname);
    if (c.isTech(res)) {
      const secrets = [...c.secretsOf(host ?? ({ profile: name, params: {} } as Host))];
      values = values.map((v) =>
        isSecretKey(v.field)
          ? { ...v, value: MASK }
          : { ...v, value: JSON.parse(maskText(JSON.stringify(v.value), secrets)) as unknown },
      );
    }
    page(res, 200, 'profile-effective', {
      title: `Effective profile ${name}`,
      name,
      host,
      values: values.map((v) => ({ ...v, shown: typeof v.value === 'string' ? v.value : JSON.stringify(v.value) })),
      hostsUsing: sortedHosts(d.view.hostList().filter((h) => h.profile === name)),
    });
  });

  r.get('/webhooks', c.tech, async (req, res) => {
    if (!d.webhookDeliveries) throw new Refused(404, 'Webhooks are not available in this server.');
    const status = typeof req.query.status === 'string' && req.query.status ? req.query.status : undefined;
    if (status !== undefined && !STATUSES.includes(status as DeliveryStatus))
      throw new Refused(400, `Status must be one of ${STATUSES.join(', ')}.`);
    const rows = await d.webhookDeliveries.list({ status: status as DeliveryStatus | undefined, limit: 200 });
    page(res, 200, 'webhooks', {
      title: 'Webhook deliveries',
      status,
      statuses: STATUSES,
      rows: rows.map((x) => ({ ...x, target: webhookTarget(x.url) })),
    });
  });
  return r;
}
