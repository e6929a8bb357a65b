// Build a rack from the UI: one confirmation page that shows the count (and, for built hosts, what a rebuild wipes),
// then the rollout's page with each host's step and a cancel button. Thin over RolloutService (src/rollout).
// The board links here with templates/web/rollout-build-link.eta (it.rack, it.count).
import express from 'express';
import { parseRackName, parseRolloutBody, DEFAULTS } from '../../rollout/request.ts';
import { Refused, str, type WebContext } from './context.ts';

const asNumber = (v: string) => (/^\d{1,9}$/.test(v) ? Number(v) : v === '' ? undefined : v);

export function rolloutPages(c: WebContext): express.Router {
  const r = express.Router();
  const s = c.d.rollouts;
  if (!s) return r;

  // rackHosts is async since the store is (src/rollout/service.ts, converted alongside).
  const rackOf = async (raw: unknown) => {
    const rack = parseRackName(String(raw ?? ''));
    if (!rack.ok) throw new Refused(404, rack.errors.join('; '));
    const hosts = await s.rackHosts(rack.value);
    if (!hosts.length) throw new Refused(404, `Rack ${rack.value} has no hosts.`);
    return { rack: rack.value, hosts };
  };
  const confirmPage = async (
    res: express.Response,
    status: number,
    rack: string,
    extra: Record<string, unknown> = {},
  ) => {
    const hosts = await s.rackHosts(rack);
    const built = hosts.filter((h) => c.p.state(h.mac) === 'built');
    c.page(res, status, 'rollout-confirm', {
      title: `Build rack ${rack}`,
      rack,
      count: hosts.length,
      rebuild: built.map((h) => ({ hostname: h.hostname, mac: h.mac, wipes: s.wipesOf(h) })),
      form: { power: true, waveSize: DEFAULTS.waveSize, waveIntervalSeconds: DEFAULTS.waveIntervalSeconds },
      ...extra,
    });
  };

  r.get('/racks/:rack/build', c.tech, async (req, res) => {
    await confirmPage(res, 200, (await rackOf(req.params.rack)).rack);
  });

  r.post('/racks/:rack/build', c.form, c.tech, async (req, res) => {
    const { rack, hosts } = await rackOf(req.params.rack);
    const b = req.body as Record<string, unknown>;
    const o = parseRolloutBody(
      {
        power: str(b.power) === 'on',
        waveSize: asNumber(str(b.waveSize)),
        waveIntervalSeconds: asNumber(str(b.waveIntervalSeconds)),
        confirm: str(b.confirm) === 'on',
      },
      false,
    );
    if (!o.ok) return confirmPage(res, 400, rack, { error: o.errors.join('; ') });
    const started = await s.start(
      `rack ${rack}`,
      hosts.map((h) => h.mac),
      o.value.options,
      c.actor(res),
    );
    if (!started.ok) return confirmPage(res, started.status, rack, { error: started.message });
    c.flash(res, {
      kind: 'ok',
      text: `Rollout ${started.value.id}: ${hosts.length} host(s) of rack ${rack}${o.value.options.power ? ', powered through their BMCs a wave at a time' : ': power them on by hand'}.`,
    });
    res.redirect(303, `/rollouts/${started.value.id}`);
  });

  const idOf = (raw: unknown) => {
    const v = String(raw ?? '');
    if (!/^[1-9]\d{0,15}$/.test(v)) throw new Refused(404, `"${v.slice(0, 32)}" is not a rollout id.`);
    return Number(v);
  };
  r.get('/rollouts/:id', c.tech, async (req, res) => {
    const v = await s.show(idOf(req.params.id));
    if (!v) throw new Refused(404, `There is no rollout ${req.params.id}.`);
    c.page(res, 200, 'rollout', { title: `Rollout ${v.id}`, rollout: v });
  });
  r.post('/rollouts/:id/cancel', c.form, c.tech, async (req, res) => {
    const id = idOf(req.params.id);
    const done = await s.cancel(id, c.actor(res));
    c.flash(
      res,
      done.ok
        ? {
            kind: 'ok',
            text: `Rollout ${id} cancelled: hosts not started stay out, the builds it started are cancelled.`,
          }
        : { kind: 'error', text: done.message },
    );
    res.redirect(303, `/rollouts/${id}`);
  });
  return r;
}
