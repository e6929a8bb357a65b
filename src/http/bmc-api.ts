// A host's BMC over the API (mounted under /api, after its bearer auth, like the installer logs):
//   GET/PUT/DELETE /api/hosts/:mac/bmc   the BMC (PUT/DELETE admin only; the password is write-only)
//   POST /api/hosts/:mac/power           {"action": "status"|"on"|"off"|"cycle"} -> {"powerState": ...}
//   POST /api/hosts/:mac/bmc/facts       model, serial, power state, the NIC MACs the BMC reports
// The `bmc` field of POST/PUT /api/hosts goes through bmcOfBody/saveBmc here too.
import express, { type Request, type Response } from 'express';
import { BmcError } from '../bmc/driver.ts';
import { mayRunPower, NoBmcError, type PowerRequest, type PowerService } from '../bmc/power.ts';
import { checkBmcInput } from '../hosts/bmc-input.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import type { BmcSetting, BmcStore, BmcView } from '../store/bmc.ts';
import type { Role } from '../store/users.ts';
import { HttpError } from './reply.ts';
import { errorBody } from './errors.ts';
import { apiRoute, type ApiDocs } from './openapi.ts';
import { BmcBody, BmcFacts, BmcJson, MacParams, PowerBody, PowerAnswer } from './api-schemas.ts';

/** A BMC as the API shows it: no password (never kept readable), times in ISO 8601 UTC. */
export const bmcJson = (v: BmcView) => ({ ...v, updatedAt: new Date(v.updatedAt).toISOString() });

export interface BmcApiDeps {
  hosts: { get(mac: Mac): Promise<object | undefined> };
  bmc: BmcStore;
  power: PowerService;
  audit: {
    recordChange(actor: string, action: string, target: string, before?: object, after?: object): Promise<void>;
  };
  /** The API's docs: these routes describe themselves in /api/openapi.json. */
  docs: ApiDocs;
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
    throw new HttpError(
      403,
      `bmc: only an admin may set a host's BMC (the ${role} role may not). Nothing was changed.`,
    );
  }
  if (raw === null) return null;
  const r = checkBmcInput(raw);
  if (!r.ok) throw new HttpError(422, r.errors.join('; '));
  if (r.bmc.password === undefined && !(await store.get(mac))?.passwordSet) {
    throw new HttpError(422, 'bmc.password: required when a host gets its first BMC');
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
    if (await d.bmc.remove(mac)) await d.audit.recordChange(actor, 'host.bmc', mac, audited(before), undefined);
    return undefined;
  }
  const after = await d.bmc.set(mac, bmc);
  await d.audit.recordChange(actor, 'host.bmc', mac, audited(before), audited(after, bmc.password !== undefined));
  return after;
}

/** A BMC that failed: 502 with which BMC and what it answered. A host without a BMC: 409. */
function answerFailure(res: Response, err: unknown): void {
  if (err instanceof BmcError) {
    const body = errorBody(502, err.message);
    res.status(502).json({ error: { ...body.error, bmc: err.bmc, answer: err.answer, retryable: err.retryable } });
  } else if (err instanceof NoBmcError) {
    res.status(409).json(errorBody(409, err.message));
  } else throw err;
}

export function createBmcApi(d: BmcApiDeps): express.Router {
  const r = express.Router();
  const hostOf = async (req: Request): Promise<Mac> => {
    const raw = String(req.params.mac ?? '');
    const mac = parseMac(raw);
    if (!mac)
      throw new HttpError(400, `mac: "${raw.slice(0, 64)}" is not a MAC address (use aa:bb:cc:dd:ee:ff)`, 'mac');
    if (!(await d.hosts.get(mac))) throw new HttpError(404, `no host with MAC ${mac}`);
    return mac;
  };
  const objectBody = (req: Request): Record<string, unknown> => {
    const b = req.body as unknown;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) {
      throw new HttpError(400, 'send a JSON object with Content-Type: application/json');
    }
    return b as Record<string, unknown>;
  };

  const tags = ['bmc'];
  const failures = { 409: 'the host has no BMC', 502: 'the BMC failed: error.bmc, error.answer, error.retryable' };
  apiRoute(
    r,
    d.docs,
    {
      method: 'get',
      path: '/hosts/:mac/bmc',
      summary: "the host's BMC (never its password)",
      tags,
      params: MacParams,
      responses: { 200: BmcJson, 404: 'no such host, or it has no BMC' },
    },
    async (req, res) => {
      const mac = await hostOf(req);
      const v = await d.bmc.get(mac);
      if (!v) throw new HttpError(404, `host ${mac} has no BMC`);
      res.json(bmcJson(v));
    },
  );
  apiRoute(
    r,
    d.docs,
    {
      method: 'put',
      path: '/hosts/:mac/bmc',
      summary: "set the host's BMC (admin); the password is write-only, left out it is kept",
      tags,
      admin: true,
      params: MacParams,
      body: BmcBody,
      responses: { 200: BmcJson, 422: 'a field is refused' },
    },
    async (req, res) => {
      const mac = await hostOf(req);
      const bmc = await bmcOfBody(d.bmc, callerOf(res).role, mac, objectBody(req));
      const saved = await saveBmc(d, callerOf(res).actor, mac, bmc);
      res.json(bmcJson(saved!));
    },
  );
  apiRoute(
    r,
    d.docs,
    {
      method: 'delete',
      path: '/hosts/:mac/bmc',
      summary: "remove the host's BMC (admin)",
      tags,
      admin: true,
      params: MacParams,
      responses: { 204: 'removed', 404: 'no such host, or it has no BMC' },
    },
    async (req, res) => {
      const mac = await hostOf(req);
      await bmcOfBody(d.bmc, callerOf(res).role, mac, null);
      if (!(await d.bmc.get(mac))) throw new HttpError(404, `host ${mac} has no BMC`);
      await saveBmc(d, callerOf(res).actor, mac, null);
      res.status(204).end();
    },
  );
  apiRoute(
    r,
    d.docs,
    {
      method: 'post',
      path: '/hosts/:mac/power',
      summary: 'power through the BMC: status, on, cycle (tech and admin), off (admin)',
      tags,
      params: MacParams,
      body: PowerBody,
      responses: { 200: PowerAnswer, ...failures },
    },
    async (req, res) => {
      const mac = await hostOf(req);
      const action = (req.body as { action: PowerRequest }).action;
      const caller = callerOf(res);
      if (!mayRunPower(caller.role, action)) {
        throw new HttpError(
          403,
          `action: the ${caller.role} role may not power a host off; ask an admin. Nothing was changed.`,
        );
      }
      try {
        res.json(await d.power.run(mac, action, caller.actor));
      } catch (err) {
        answerFailure(res, err);
      }
    },
  );
  apiRoute(
    r,
    d.docs,
    {
      method: 'post',
      path: '/hosts/:mac/bmc/facts',
      summary: 'ask the BMC: model, serial, power state, the NIC MACs it reports',
      tags,
      params: MacParams,
      responses: { 200: BmcFacts, ...failures },
    },
    async (req, res) => {
      const mac = await hostOf(req);
      try {
        res.json(await d.power.facts(mac, callerOf(res).actor));
      } catch (err) {
        answerFailure(res, err);
      }
    },
  );
  return r;
}
