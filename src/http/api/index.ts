// The API under /api: a bearer token on every route (./auth.ts), JSON bodies, then one router per resource
// group over one ApiContext, then the routers other parts mount (installer logs, ...). Errors are HttpErrors,
// written as {"error": ...} by the app's error handler.
import express from 'express';
import { bearerAuth } from './auth.ts';
import { createApiContext, type ApiDeps } from './context.ts';
import { hostRoutes } from './hosts.ts';
import { buildRoutes } from './builds.ts';
import { importRoutes } from './import.ts';
import { settingsRoutes } from './settings.ts';
import { profileRoutes } from './profiles.ts';
import { imageRoutes } from './images.ts';
import { discoveredRoutes } from './discovered.ts';

export { callerOf, type ApiCaller, type ApiDeps } from './context.ts';

export function createApiRouter(d: ApiDeps): express.Router {
  const c = createApiContext(d);
  const api = express.Router();
  api.use(bearerAuth(d));
  api.use(express.json({ limit: '256kb' }));
  // Mounted routers (installer logs) mask the same way for a tech's token.
  api.use((_req, res, next) => {
    res.locals.maskForCaller = c.forCaller;
    next();
  });
  for (const routes of [
    hostRoutes,
    buildRoutes,
    importRoutes,
    settingsRoutes,
    profileRoutes,
    imageRoutes,
    discoveredRoutes,
  ])
    api.use(routes(c));
  for (const r of d.apiRouters ?? []) api.use(r);
  return api;
}
