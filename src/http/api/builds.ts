// /api/hosts/:mac/build: start a host's build (its token and URLs) or cancel it.
import express from 'express';
import { HttpError } from '../reply.ts';
import { macParam, type ApiContext } from './context.ts';

export function buildRoutes(c: ApiContext): express.Router {
  const { p, actor } = c;
  const r = express.Router();
  r.post('/hosts/:mac/build', (req, res) => {
    const started = p.startBuild(macParam(req), actor(res));
    if (!started.ok) throw new HttpError(started.status, started.message);
    const { buildId: _id, eventsUrl: _e, ...contract } = started.value;
    res.status(201).json({ ...contract, buildId: started.value.buildId, eventsUrl: started.value.eventsUrl });
  });
  r.delete('/hosts/:mac/build', (req, res) => {
    const cancelled = p.cancelBuild(macParam(req), actor(res));
    if (!cancelled.ok) throw new HttpError(cancelled.status, cancelled.message);
    res.json({ mac: cancelled.value.mac, buildId: cancelled.value.id, status: cancelled.value.status });
  });
  return r;
}
