// The web UI: server-rendered pages and plain forms over the core (provisioner, stores, profiles).
// Every page works without JavaScript; JS adds only live updates (SSE) and small conveniences.
// Roles: a tech views everything (secrets masked), starts/cancels builds and imports racks, setting
// only the host parameters an admin opened (Settings); an admin also edits profiles, hosts, users and
// settings. Every POST carries the session's CSRF token or changes nothing.
// One module per page group, all over one WebContext; this file only composes them.
import express, { type NextFunction, type Request, type Response } from 'express';
import { createWebContext, Refused, type WebDeps } from './context.ts';
import { sessionPages } from './session.ts';
import { boardPages } from './board.ts';
import { importPages } from './import.ts';
import { hostPages } from './hosts.ts';
import { bmcPages } from './bmc.ts';
import { profilePages } from './profiles.ts';
import { auditPages } from './audit.ts';
import { userPages } from './users.ts';
import { settingsPages } from './settings.ts';
import { accountPages } from './account.ts';
import { discoveredPages } from './discovered.ts';
import { installerLogPages } from './installer-log.ts';
import { templatePages } from './templates.ts';
import { rolloutPages } from './rollouts.ts';
import { nodePages } from './nodes.ts';

export type { WebDeps } from './context.ts';
export { auditView } from './audit.ts';
export { STAGE_LABELS } from '../board.ts';

export type WebRouter = express.Router & { close(): void };

export function createWebRouter(d: WebDeps): WebRouter {
  const c = createWebContext(d);
  const r = express.Router() as WebRouter;
  // /hosts/import before hostPages: its /hosts/:mac would take "import" for a MAC.
  for (const pages of [
    sessionPages,
    boardPages,
    importPages,
    bmcPages,
    hostPages,
    // /profiles/:name/effective before profilePages' /profiles/:name routes.
    templatePages,
    profilePages,
    auditPages,
    userPages,
    settingsPages,
    accountPages,
    discoveredPages,
    installerLogPages,
    rolloutPages,
    nodePages,
  ])
    r.use(pages(c));

  // Refusals thrown by a page become pages; anything else goes on to the app's error handler.
  r.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (err instanceof Refused)
      return c.problem(res, err.status, err.status === 404 ? 'Not found' : 'Refused', err.message);
    next(err);
  });

  r.close = () => {
    c.live.close();
    c.logs?.close();
  };
  return r;
}
