// A host's BMC and power, on its own page (/hosts/:mac/bmc): the power buttons (a tech: status, on,
// cycle; an admin also off), the BMC's recent actions and errors, and the admin's BMC form, where the
// password is never shown: "set" / "not set", and a field to change it.
import express, { type Request, type Response } from 'express';
import { BmcError } from '../../bmc/driver.ts';
import { mayRunPower, NoBmcError, POWER_REQUESTS, type PowerRequest } from '../../bmc/power.ts';
import { checkBmcInput } from '../../hosts/bmc-input.ts';
import { saveBmc } from '../../http/bmc-api.ts';
import type { Host } from '../../store/hosts.ts';
import { str, Refused, type WebContext } from './context.ts';

interface BmcFormValues {
  driver: string;
  address: string;
  username: string;
  system: string;
  verifyTls: boolean;
  fingerprint: string;
}

export function bmcPages(c: WebContext): express.Router {
  const { d } = c;
  const r = express.Router();
  const stores = () => {
    if (!d.bmc || !d.power) throw new Refused(404, 'BMCs are not kept by this server');
    return { bmc: d.bmc, power: d.power };
  };

  async function bmcPage(res: Response, status: number, host: Host, values?: BmcFormValues, errors: string[] = []) {
    const { bmc } = stores();
    const [view, timeline] = await Promise.all([bmc.get(host.mac), d.events.timeline(host.mac, 500)]);
    const role = c.isTech(res) ? 'tech' : 'admin';
    c.page(res, status, 'host-bmc', {
      title: `${host.hostname}: BMC and power`,
      host,
      bmc: view,
      actions: POWER_REQUESTS.filter((a) => mayRunPower(role, a)),
      events: timeline
        .filter((e) => e.type.startsWith('bmc.'))
        .slice(-20)
        .reverse(),
      form: values ?? {
        driver: view?.driver ?? 'redfish',
        address: view?.address ?? '',
        username: view?.username ?? '',
        system: view?.system ?? '',
        verifyTls: view?.verifyTls ?? true,
        fingerprint: view?.fingerprint ?? '',
      },
      errors,
    });
  }

  r.get('/hosts/:mac/bmc', c.tech, async (req, res) => {
    await bmcPage(res, 200, c.hostOf(req));
  });

  r.post('/hosts/:mac/power', c.form, c.tech, async (req: Request, res) => {
    const host = c.hostOf(req);
    const { power } = stores();
    const action = str((req.body as Record<string, unknown>).action);
    const back = `/hosts/${host.mac}/bmc`;
    if (!(POWER_REQUESTS as readonly string[]).includes(action))
      throw new Refused(400, `unknown power action "${action.slice(0, 20)}"`);
    if (!mayRunPower(c.isTech(res) ? 'tech' : 'admin', action as PowerRequest)) {
      throw new Refused(403, 'Only an admin may power a host off. Nothing was changed.');
    }
    try {
      const { powerState } = await power.run(host.mac, action as PowerRequest, c.actor(res));
      c.flash(res, { kind: 'ok', text: `Power ${action}: ${host.hostname} is ${powerState}.` });
    } catch (err) {
      if (!(err instanceof BmcError || err instanceof NoBmcError)) throw err;
      c.flash(res, { kind: 'error', text: `Power ${action} of ${host.hostname} failed: ${err.message}` });
    }
    res.redirect(303, back);
  });

  r.post('/hosts/:mac/bmc', c.form, c.admin, async (req, res) => {
    const host = c.hostOf(req);
    const { bmc } = stores();
    const body = req.body as Record<string, unknown>;
    if (str(body.remove) === '1') {
      await saveBmc({ bmc, audit: d.audit }, c.actor(res), host.mac, null);
      c.flash(res, { kind: 'ok', text: `The BMC of ${host.hostname} was removed.` });
      return res.redirect(303, `/hosts/${host.mac}/bmc`);
    }
    const values: BmcFormValues = {
      driver: str(body.driver),
      address: str(body.address),
      username: str(body.username),
      system: str(body.system),
      verifyTls: str(body.verifyTls) === 'on',
      fingerprint: str(body.fingerprint),
    };
    const password = str(body.password); // empty: keep the stored one
    const checked = checkBmcInput({ ...values, verifyTls: values.verifyTls, ...(password ? { password } : {}) });
    const errors = checked.ok ? [] : checked.errors;
    if (checked.ok && checked.bmc.password === undefined && !(await bmc.get(host.mac))?.passwordSet) {
      errors.push('bmc.password: required when a host gets its first BMC');
    }
    if (!checked.ok || errors.length) return bmcPage(res, 422, host, values, errors);
    await saveBmc({ bmc, audit: d.audit }, c.actor(res), host.mac, checked.bmc);
    c.flash(res, { kind: 'ok', text: `The BMC of ${host.hostname} was saved.` });
    res.redirect(303, `/hosts/${host.mac}/bmc`);
  });
  return r;
}
