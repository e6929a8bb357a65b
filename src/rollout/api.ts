// /api routes of rollouts (mounted after the token check): thin over RolloutService, each declared with apiRoute
// (src/http/openapi.ts) so it is checked by and described with the schemas of src/http/api-schemas.ts.
import express, { type NextFunction, type Request, type Response } from 'express';
import { callerOf } from '../http/app.ts';
import { HttpError } from '../http/reply.ts';
import { apiRoute, type ApiDocs } from '../http/openapi.ts';
import { decodeIdCursor, encodeCursor, PAGE_LIMIT_DEFAULT } from '../http/paging.ts';
import {
  CancelledHosts,
  HostsBuildBody,
  HostsCancelBody,
  RackBuildBody,
  RackParams,
  RolloutListQuery,
  RolloutPage,
  RolloutParams,
  RolloutView,
} from '../http/api-schemas.ts';
import type { Mac } from '../net/mac.ts';
import { parseMacList, parseRolloutBody, type RolloutOptions } from './request.ts';
import type { RolloutService, ServiceResult } from './service.ts';

export interface RolloutApiDeps {
  service: RolloutService;
}

/** A failed ServiceResult as the one error shape; a refused rebuild says inside `error` what each host would lose. */
function failure(r: Extract<ServiceResult<unknown>, { ok: false }>): HttpError {
  return new HttpError(r.status, r.message, undefined, r.rebuild ? { rebuild: r.rebuild } : undefined);
}

/** A POST with no body at all (curl -X POST) asks for the defaults. */
const emptyBodyIsDefaults = (req: Request, _res: Response, next: NextFunction) => {
  req.body ??= {};
  next();
};

export function createRolloutApi(d: RolloutApiDeps): (docs: ApiDocs) => express.Router {
  return (docs) => {
    const api = express.Router();
    const s = d.service;
    const tags = ['rollouts'];
    const actor = (res: Response) => callerOf(res).actor;
    const refused = { 404: 'no such host or rack', 409: 'hosts busy, or built hosts without confirm: error.rebuild' };

    const build = async (res: Response, scope: string, macs: Mac[], options: RolloutOptions) => {
      const r = await s.start(scope, macs, options, actor(res));
      if (!r.ok) throw failure(r);
      res
        .status(202)
        .location(`/api/rollouts/${r.value.id}`)
        .json(await s.show(r.value.id));
    };
    const options = (body: unknown, withMacs: boolean) => {
      const o = parseRolloutBody(body, withMacs);
      if (!o.ok) throw new HttpError(422, o.errors.join('; '));
      return o.value;
    };

    apiRoute(
      api,
      docs,
      {
        method: 'post',
        path: '/racks/:rack/build',
        summary: "build a rack's hosts in waves (rebuilding built ones needs confirm)",
        tags,
        params: RackParams,
        body: RackBuildBody,
        responses: { 202: RolloutView, ...refused },
      },
      emptyBodyIsDefaults,
      async (_req, res, { params, body }) => {
        const o = options(body, false);
        const macs = (await s.rackHosts(params.rack)).map((h) => h.mac);
        if (!macs.length)
          throw new HttpError(404, `rack ${params.rack} has no hosts (GET /api/hosts shows each host's rack)`);
        await build(res, `rack ${params.rack}`, macs, o.options);
      },
    );
    apiRoute(
      api,
      docs,
      {
        method: 'post',
        path: '/hosts/build',
        summary: 'build these hosts in waves, in the order given',
        tags,
        body: HostsBuildBody,
        responses: { 202: RolloutView, ...refused },
      },
      async (_req, res, { body }) => {
        const o = options(body, true);
        await build(res, 'hosts', o.macs!, o.options);
      },
    );
    apiRoute(
      api,
      docs,
      {
        method: 'post',
        path: '/racks/:rack/cancel',
        summary: "cancel a rack's hosts: out of running rollouts, their builds cancelled",
        tags,
        params: RackParams,
        responses: { 200: CancelledHosts, 404: 'the rack has no hosts' },
      },
      async (_req, res, { params }) => {
        const macs = (await s.rackHosts(params.rack)).map((h) => h.mac);
        if (!macs.length) throw new HttpError(404, `rack ${params.rack} has no hosts`);
        res.json(await s.cancelHosts(macs, actor(res)));
      },
    );
    apiRoute(
      api,
      docs,
      {
        method: 'post',
        path: '/hosts/cancel',
        summary: 'cancel these hosts: out of running rollouts, their builds cancelled',
        tags,
        body: HostsCancelBody,
        responses: { 200: CancelledHosts },
      },
      async (_req, res, { body }) => {
        const m = parseMacList(body.macs);
        if (!m.ok) throw new HttpError(422, m.errors.join('; '));
        res.json(await s.cancelHosts(m.value, actor(res)));
      },
    );
    apiRoute(
      api,
      docs,
      {
        method: 'get',
        path: '/rollouts',
        summary: 'rollouts, newest first (paged)',
        tags,
        query: RolloutListQuery,
        responses: { 200: RolloutPage },
      },
      async (_req, res, { query }) => {
        const limit = query.limit ?? PAGE_LIMIT_DEFAULT;
        const before = query.cursor === undefined ? undefined : decodeIdCursor('rollouts', query.cursor);
        // One more than asked tells whether a next page exists.
        const items = await s.list(limit + 1, before);
        const more = items.length > limit;
        const page = items.slice(0, limit);
        res.json({ items: page, nextCursor: more ? encodeCursor('rollouts', [page[page.length - 1]!.id]) : null });
      },
    );
    apiRoute(
      api,
      docs,
      {
        method: 'get',
        path: '/rollouts/:id',
        summary: 'a rollout and each of its hosts: wave, step, state, stuck',
        tags,
        params: RolloutParams,
        responses: { 200: RolloutView, 404: 'no such rollout' },
      },
      async (_req, res, { params }) => {
        const v = await s.show(Number(params.id));
        if (!v) throw new HttpError(404, `no rollout ${params.id} (GET /api/rollouts lists them)`);
        res.json(v);
      },
    );
    apiRoute(
      api,
      docs,
      {
        method: 'post',
        path: '/rollouts/:id/cancel',
        summary: 'cancel a running rollout: hosts not started stay out, its builds are cancelled',
        tags,
        params: RolloutParams,
        responses: { 200: RolloutView, 404: 'no such rollout', 409: 'the rollout is not running' },
      },
      async (_req, res, { params }) => {
        const r = await s.cancel(Number(params.id), actor(res));
        if (!r.ok) throw failure(r);
        res.json(await s.show(r.value.id));
      },
    );
    return api;
  };
}
