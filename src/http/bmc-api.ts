// A host's BMC over the API (mounted under /api, after its bearer auth, like the installer logs):
//   GET/PUT/DELETE /api/hosts/:mac/bmc   the BMC (PUT/DELETE admin only; the password is write-only)
//   POST /api/hosts/:mac/power           {"action": "status"|"on"|"off"|"cycle"} -> {"powerState": ...}
//   POST /api/hosts/:mac/bmc/facts       model, serial, power state, the NIC MACs the BMC reports
// The `bmc` field of POST/PUT /api/hosts goes through bmcOfBody/saveBmc here too.
import express, { type Request, type Response } from 'express';
import { BmcError } from '../bmc/driver.ts';
import { mayRunPower, NoBmcError, POWER_REQUESTS, type PowerRequest, type PowerService } from '../bmc/power.ts';
import { checkBmcInput } from '../hosts/bmc-input.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import type { BmcSetting, BmcStore, BmcView } from '../store/bmc.ts';
import type { Role } from '../store/users.ts';

export interface BmcApiDeps {
  hosts: { get(mac: Mac): object | undefined };
  bmc: BmcStore;
  power: PowerService;
  audit: { recordChange(actor: string, action: string, target: string, before?: object, after?: object): void };
}

/** An error the app's error handler answers with its status as {"error": message}. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const callerOf = (res: Response) => res.locals.caller as { actor: string; role: Role; user?: string };

/** What the audit log keeps of a BMC: never the password, not even sealed; whether one is set or changed. */
function audited(v: BmcView | undefined, passwordChanged = false): object | undefined {
  if (!v) return undefined;
  const { updatedAt: _at, ...rest } = v;
  return { ...rest, ...(passwordChanged ? { passwordChanged } : {}) };
}

/**
 * The `bmc` of a host body, checked before anything is written: undefined = not sent (kept), null = remove.
 * Throws a 403/422 naming the field.
 */
export async function bmcOfBody(
  store: BmcStore,
  role: Role,
  mac: string,
  raw: unknown,
): Promise<BmcSetting | null | undefined> {
  if (raw === undefined) return undefined;
  if (role !== 'admin') {
    throw new ApiError(403, `bmc: only an admin may set a host's BMC (the ${role} role may not). Nothing was changed.`);
  }
  if (raw === null) return null;
  const r = checkBmcInput(raw);
  if (!r.ok) throw new ApiError(422, r.errors.join('; '));
  if (r.bmc.password === undefined && !(await store.get(mac))?.passwordSet) {
    throw new ApiError(422, 'bmc.password: required when a host gets its first BMC');
  }
  return r.bmc;
}

/** Writes what bmcOfBody checked, with an audit entry that never carries the password. */
export async function saveBmc(
  d: Pick<BmcApiDeps, 'bmc' | 'audit'>,
  actor: string,
  mac: string,
  bmc: BmcSetting | null | undefined,
): Promise<BmcView | undefined> {
  if (bmc === undefined) return d.bmc.get(mac);
  const before = await d.bmc.get(mac);
  if (bmc === null) {
    if (await d.bmc.remove(mac)) d.audit.recordChange(actor, 'host.bmc', mac, audited(before), undefined);
    return undefined;
  }
  const after = await d.bmc.set(mac, bmc);
  d.audit.recordChange(actor, 'host.bmc', mac, audited(before), audited(after, bmc.password !== undefined));
  return after;
}

/** A BMC that failed: 502 with which BMC and what it answered. A host without a BMC: 409. */
function answerFailure(res: Response, err: unknown): void {
  if (err instanceof BmcError) {
    res.status(502).json({ error: err.message, bmc: err.bmc, answer: err.answer, retryable: err.retryable });
  } else if (err instanceof NoBmcError) {
    res.status(409).json({ error: err.message });
  } else throw err;
}

export function createBmcApi(d: BmcApiDeps): express.Router {
  const r = express.Router();
  const hostOf = (req: Request): Mac => {
    const raw = String(req.params.mac ?? '');
    const mac = parseMac(raw);
    if (!mac) throw new ApiError(400, `"${raw.slice(0, 64)}" is not a MAC address (use aa:bb:cc:dd:ee:ff)`);
    if (!d.hosts.get(mac)) throw new ApiError(404, `no host with MAC ${mac}`);
    return mac;
  };
  const objectBody = (req: Request): Record<string, unknown> => {
    const b = req.body as unknown;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) {
      throw new ApiError(400, 'send a JSON object with Content-Type: application/json');
    }
    return b as Record<string, unknown>;
  };

  r.get('/hosts/:mac/bmc', async (req, res) => {
    const mac = hostOf(req);
    const v = await d.bmc.get(mac);
    if (!v) throw new ApiError(404, `host ${mac} has no BMC`);
    res.json(v);
  });
  r.put('/hosts/:mac/bmc', async (req, res) => {
    const mac = hostOf(req);
    const bmc = await bmcOfBody(d.bmc, callerOf(res).role, mac, objectBody(req));
    res.json(await saveBmc(d, callerOf(res).actor, mac, bmc));
  });
  r.delete('/hosts/:mac/bmc', async (req, res) => {
    const mac = hostOf(req);
    await bmcOfBody(d.bmc, callerOf(res).role, mac, null);
    if (!(await d.bmc.get(mac))) throw new ApiError(404, `host ${mac} has no BMC`);
    await saveBmc(d, callerOf(res).actor, mac, null);
    res.status(204).end();
  });

  r.post('/hosts/:mac/power', async (req, res) => {
    const mac = hostOf(req);
    const body = objectBody(req);
    const action = body.action;
    if (typeof action !== 'string' || !(POWER_REQUESTS as readonly string[]).includes(action)) {
      const got = JSON.stringify(action)?.slice(0, 40) ?? 'nothing';
      throw new ApiError(422, `action: must be one of ${POWER_REQUESTS.join(', ')} (got ${got})`);
    }
    const extra = Object.keys(body).filter((k) => k !== 'action');
    if (extra.length) throw new ApiError(422, `unknown field(s) ${extra.join(', ').slice(0, 200)}; known: action`);
    const caller = callerOf(res);
    if (!mayRunPower(caller.role, action as PowerRequest)) {
      throw new ApiError(
        403,
        `action: the ${caller.role} role may not power a host off; ask an admin. Nothing was changed.`,
      );
    }
    try {
      res.json(await d.power.run(mac, action as PowerRequest, caller.actor));
    } catch (err) {
      answerFailure(res, err);
    }
  });

  r.post('/hosts/:mac/bmc/facts', async (req, res) => {
    const mac = hostOf(req);
    try {
      res.json(await d.power.facts(mac, callerOf(res).actor));
    } catch (err) {
      answerFailure(res, err);
    }
  });
  return r;
}
