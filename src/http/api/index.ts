// The API under /api: GET /api/openapi.json (no token: it describes, it holds nothing), then a bearer token on
// every route (./auth.ts), JSON bodies, then one router per resource group over one ApiContext, then the routers
// other parts mount (installer logs, ...). Each route declares itself with apiRoute(), which checks its input by
// the same zod schemas the document is built from. Errors are HttpErrors: {error: {code, message, field?}}.
import express from 'express';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { bearerAuth } from './auth.ts';
import { createApiContext, type ApiDeps } from './context.ts';
import { hostRoutes } from './hosts.ts';
import { buildRoutes } from './builds.ts';
import { importRoutes } from './import.ts';
import { settingsRoutes } from './settings.ts';
import { profileRoutes } from './profiles.ts';
import { imageRoutes } from './images.ts';
import { discoveredRoutes } from './discovered.ts';
import { eventRoutes } from './events.ts';
import { ApiDocs, apiRoute } from '../openapi.ts';
import { SHARED_SCHEMAS } from '../api-schemas.ts';
import { PACKAGE_ROOT } from '../../config.ts';

export { callerOf, type ApiCaller, type ApiDeps } from './context.ts';

const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** A router other parts mount under /api: built with the docs so its routes describe themselves. */
export type ApiRouterFactory = (docs: ApiDocs) => express.Router;

export interface ApiRouters {
  /** Mounted at /api before the token check: only GET /api/openapi.json. */
  open: express.Router;
  /** Mounted at /api: everything else, behind the token. */
  api: express.Router;
  docs: ApiDocs;
}

export function createApiRouters(d: ApiDeps): ApiRouters {
  const docs = new ApiDocs();
  docs.name(SHARED_SCHEMAS);
  const c = createApiContext(d, docs);

  const open = express.Router();
  let document: Record<string, unknown> | undefined;
  apiRoute(
    open,
    docs,
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'this document (OpenAPI 3.1); needs no token',
      tags: ['meta'],
      responses: { 200: z.record(z.string(), z.unknown()).describe('an OpenAPI 3.1 document') },
    },
    (_req, res) => {
      document ??= docs.document({ version: VERSION });
      res.set('Cache-Control', 'no-cache').json(document);
    },
  );

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
    eventRoutes,
    settingsRoutes,
    profileRoutes,
    imageRoutes,
    discoveredRoutes,
  ])
    api.use(routes(c));
  for (const r of d.apiRouters ?? [])
    api.use(typeof r === 'function' && !('stack' in r) ? (r as ApiRouterFactory)(docs) : r);
  return { open, api, docs };
}
