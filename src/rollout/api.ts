// /api routes of rollouts (mounted after the token check, src/http/app.ts apiRouters): thin over RolloutService.
import express, { type Request, type Response } from 'express';
import { callerOf } from '../http/app.ts';
import type { Mac } from '../net/mac.ts';
import { parseMacList, parseRackName, parseRolloutBody, type RolloutOptions } from './request.ts';
import type { RolloutService, ServiceResult } from './service.ts';

export interface RolloutApiDeps {
  service: RolloutService;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function idParam(req: Request): number {
  const raw = String(req.params.id ?? '');
  if (!/^[1-9]\d{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new ApiError(400, `id: "${raw.slice(0, 32)}" is not a rollout id (a positive whole number)`);
  return Number(raw);
}

function rackParam(req: Request): string {
  const r = parseRackName(String(req.params.rack ?? ''));
  if (!r.ok) throw new ApiError(400, r.errors.join('; '));
  return r.value;
}

/** A failed ServiceResult as the API answers it: the error, and for a rebuild what each host would lose. */
function sendFailure(res: Response, r: Extract<ServiceResult<unknown>, { ok: false }>): void {
  res.status(r.status).json({ error: r.message, ...(r.rebuild ? { rebuild: r.rebuild } : {}) });
}

export function createRolloutApi(d: RolloutApiDeps): express.Router {
  const api = express.Router();
  const s = d.service;
  const actor = (res: Response) => callerOf(res).actor;

  const build = async (res: Response, scope: string, macs: Mac[], options: RolloutOptions) => {
    const r = await s.start(scope, macs, options, actor(res));
    if (!r.ok) return sendFailure(res, r);
    res
      .status(202)
      .location(`/api/rollouts/${r.value.id}`)
      .json(await s.show(r.value.id));
  };

  api.post('/racks/:rack/build', async (req, res) => {
    const rack = rackParam(req);
    const macs = s.rackHosts(rack).map((h) => h.mac);
    const o = parseRolloutBody(req.body, false);
    if (!o.ok) throw new ApiError(400, o.errors.join('; '));
    if (!macs.length) throw new ApiError(404, `rack ${rack} has no hosts (GET /api/hosts shows each host's rack)`);
    await build(res, `rack ${rack}`, macs, o.value.options);
  });
  api.post('/hosts/build', async (req, res) => {
    const o = parseRolloutBody(req.body, true);
    if (!o.ok) throw new ApiError(400, o.errors.join('; '));
    await build(res, 'hosts', o.value.macs!, o.value.options);
  });
  api.post('/racks/:rack/cancel', async (req, res) => {
    const rack = rackParam(req);
    const macs = s.rackHosts(rack).map((h) => h.mac);
    if (!macs.length) throw new ApiError(404, `rack ${rack} has no hosts`);
    res.json(await s.cancelHosts(macs, actor(res)));
  });
  api.post('/hosts/cancel', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const extra = Object.keys(body).filter((k) => k !== 'macs');
    if (extra.length) throw new ApiError(400, `${extra[0]}: not a field of a cancel (send {"macs": [...]})`);
    const m = parseMacList(body.macs);
    if (!m.ok) throw new ApiError(400, m.errors.join('; '));
    res.json(await s.cancelHosts(m.value, actor(res)));
  });
  api.get('/rollouts', async (_req, res) => {
    res.json(await s.list());
  });
  api.get('/rollouts/:id', async (req, res) => {
    const v = await s.show(idParam(req));
    if (!v) throw new ApiError(404, `no rollout ${req.params.id}`);
    res.json(v);
  });
  api.post('/rollouts/:id/cancel', async (req, res) => {
    const r = await s.cancel(idParam(req), actor(res));
    if (!r.ok) return sendFailure(res, r);
    res.json(await s.show(r.value.id));
  });
  return api;
}
