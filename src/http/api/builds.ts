// /api/hosts/:mac/build: start a host's build (its token and URLs) or cancel it.
import express from 'express';
import { HttpError } from '../reply.ts';
import { apiRoute } from '../openapi.ts';
import { BuildCancelled, BuildStarted, MacParams } from '../api-schemas.ts';
import { macParam, type ApiContext } from './context.ts';

export function buildRoutes(c: ApiContext): express.Router {
  const { p, actor, docs } = c;
  const r = express.Router();
  const tags = ['builds'];
  apiRoute(
    r,
    docs,
    {
      method: 'post',
      path: '/hosts/:mac/build',
      summary: 'start a build: the host PXE-boots into the installer at its next power-on',
      tags,
      params: MacParams,
      responses: { 201: BuildStarted, 404: 'no such host', 409: 'the kickstart cannot be rendered' },
    },
    async (req, res) => {
      const started = await p.startBuild(macParam(req), actor(res));
      if (!started.ok) throw new HttpError(started.status, started.message);
      const { buildId: _id, eventsUrl: _e, ...contract } = started.value;
      res.status(201).json({ ...contract, buildId: started.value.buildId, eventsUrl: started.value.eventsUrl });
    },
  );
  apiRoute(
    r,
    docs,
    {
      method: 'delete',
      path: '/hosts/:mac/build',
      summary: 'cancel the build in progress',
      tags,
      params: MacParams,
      responses: { 200: BuildCancelled, 409: 'no build in progress' },
    },
    async (req, res) => {
      const cancelled = await p.cancelBuild(macParam(req), actor(res));
      if (!cancelled.ok) throw new HttpError(cancelled.status, cancelled.message);
      res.json({ mac: cancelled.value.mac, buildId: cancelled.value.id, status: cancelled.value.status });
    },
  );
  return r;
}
