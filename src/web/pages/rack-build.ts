// Build a rack from the board: one confirmation that shows the count, what a rebuild wipes, and the waves;
// then the rollout (src/rollout: recorded here, carried out by serve's runner) does the rest.
import express, { type Response } from 'express';
import { wipeText, type RolloutService, type RebuildWarning } from '../../rollout/service.ts';
import {
  DEFAULTS,
  parseRackName,
  parseRolloutBody,
  WAVE_INTERVAL_MAX_S,
  WAVE_SIZE_MAX,
} from '../../rollout/request.ts';
import { Refused, str, type WebContext } from './context.ts';

/** A form field as the number the rollout checks want (its errors then name the field), or undefined when empty. */
function formInt(v: unknown): number | string | undefined {
  const s = str(v).trim();
  if (!s) return undefined;
  return /^\d{1,9}$/.test(s) ? Number(s) : s;
}

export function rackBuildPages(c: WebContext, rollouts: RolloutService | undefined): express.Router {
  const r = express.Router();
  if (!rollouts) return r;

  function rackOf(raw: unknown) {
    const name = parseRackName(str(raw));
    if (!name.ok) throw new Refused(404, name.errors.join('; '));
    const hosts = rollouts!.rackHosts(name.value);
    if (!hosts.length) throw new Refused(404, `Rack ${name.value} has no hosts.`);
    return { rack: name.value, hosts };
  }

  function confirmPage(
    res: Response,
    status: number,
    rack: string,
    values: Record<string, unknown>,
    errors: string[],
    rebuild?: RebuildWarning[],
  ) {
    const { hosts } = rackOf(rack);
    const states = hosts.map((h) => ({ host: h, state: c.p.state(h.mac) }));
    const built =
      rebuild ??
      states
        .filter((s) => s.state === 'built')
        .map((s) => {
          const profile = c.p.profileFor(s.host);
          return {
            mac: s.host.mac,
            hostname: s.host.hostname,
            wipes: wipeText(profile.ok ? profile.value.partitioning : undefined),
          };
        });
    c.page(res, status, 'rack-build', {
      title: `Build rack ${rack}`,
      rack,
      states,
      count: hosts.length,
      built,
      values: {
        power: true,
        waveSize: DEFAULTS.waveSize,
        waveIntervalSeconds: DEFAULTS.waveIntervalSeconds,
        ...values,
      },
      limits: { waveSize: WAVE_SIZE_MAX, waveInterval: WAVE_INTERVAL_MAX_S },
      errors,
    });
  }

  r.get('/racks/:rack/build', c.tech, (req, res) => confirmPage(res, 200, str(req.params.rack), {}, []));

  r.post('/racks/:rack/build', c.form, c.tech, async (req, res) => {
    const { rack, hosts } = rackOf(req.params.rack);
    const b = req.body as Record<string, unknown>;
    const body = {
      power: b.power === 'on',
      waveSize: formInt(b.waveSize),
      waveIntervalSeconds: formInt(b.waveIntervalSeconds),
      confirm: b.confirm === 'on',
    };
    const values = { ...body, power: body.power };
    const parsed = parseRolloutBody(body, false);
    if (!parsed.ok) return confirmPage(res, 400, rack, values, parsed.errors);
    // The count the person confirmed must be the count built: a host added since would be built unseen.
    if (str(b.count) !== String(hosts.length))
      return confirmPage(res, 409, rack, values, [
        `The rack changed since this page was shown (${str(b.count) || '?'} hosts then, ${hosts.length} now): check the list and confirm again. Nothing was started.`,
      ]);
    const started = await rollouts.start(
      `rack ${rack}`,
      hosts.map((h) => h.mac),
      parsed.value.options,
      c.actor(res),
    );
    if (!started.ok) return confirmPage(res, started.status, rack, values, [started.message], started.rebuild);
    const o = parsed.value.options;
    c.flash(res, {
      kind: 'ok',
      text: `Rollout ${started.value.id} started: ${hosts.length} host(s) of rack ${rack}, ${o.power ? `powered on in waves of ${o.waveSize} every ${o.waveIntervalMs / 1000} s` : 'without power (power them on by hand)'}.`,
    });
    res.redirect(303, `/?rack=${encodeURIComponent(rack)}`);
  });
  return r;
}
