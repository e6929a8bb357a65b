// The installer's log on the host page: the newest lines rendered with the page (no JavaScript needed), then
// live over SSE at the chosen severity. Techs see it too, with the host's secrets masked.
import express from 'express';
import { maskText } from '../../hosts/policy.ts';
import { SEVERITY_NAMES } from '../../ops/syslog-parse.ts';
import { LOG_BACKLOG, logLineEvent, parseSeverity } from '../log-stream.ts';
import { cookieOf, SESSION_COOKIE } from '../auth.ts';
import { Refused, type WebContext } from './context.ts';

/** The log section of the host page, or undefined when there is no build or no log store. */
export async function installerLogView(
  c: WebContext,
  secrets: Set<string>,
  buildId: number | undefined,
  severity: unknown,
) {
  if (!c.d.syslog || buildId === undefined) return undefined;
  const level = parseSeverity(severity) ?? undefined;
  const mask = (t: string) => (secrets.size ? maskText(t, secrets) : t);
  const lines = (await c.d.syslog.search({ buildId, maxSeverity: level, limit: LOG_BACKLOG })).map((l) =>
    logLineEvent(l, mask),
  );
  return { buildId, severity: level, severities: SEVERITY_NAMES, lines };
}

export function installerLogPages(c: WebContext): express.Router {
  const r = express.Router();
  r.get('/hosts/:mac/log/stream', c.tech, async (req, res) => {
    const host = c.hostOf(req);
    if (!c.logs) throw new Refused(404, 'This server keeps no installer logs.');
    const idText = typeof req.query.build === 'string' ? req.query.build : '';
    const build = /^\d{1,15}$/.test(idText) ? await c.d.builds.byId(Number(idText)) : await c.d.builds.latest(host.mac);
    if (!build || build.mac !== host.mac) throw new Refused(404, `Host ${host.mac} has no build ${idText}.`);
    const severity = parseSeverity(req.query.severity);
    if (severity === null)
      throw new Refused(400, `severity must be 0-7 or one of ${SEVERITY_NAMES.join(', ')} (that level and worse)`);
    const secrets = c.isTech(res) ? c.secretsOf(host) : new Set<string>();
    const cookie = cookieOf(req, SESSION_COOKIE);
    c.logs.open(res, {
      buildId: build.id,
      maxSeverity: severity,
      mask: (t) => (secrets.size ? maskText(t, secrets) : t),
      alive: async () => (await c.sessions.lookup(cookie)) !== undefined,
      session: c.sessionOf(res).idHash,
    });
  });
  return r;
}
