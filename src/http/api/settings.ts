// /api/settings/tech-params: the host parameters techs may set (admins change them).
import express from 'express';
import { checkTechParamList, TECH_NEVER } from '../../hosts/policy.ts';
import { HttpError } from '../reply.ts';
import type { ApiContext } from './context.ts';

export function settingsRoutes(c: ApiContext): express.Router {
  const { d } = c;
  const r = express.Router();
  r.get('/settings/tech-params', (_req, res) => {
    res.json({ techParams: d.settings?.techParams() ?? [], neverForTechs: TECH_NEVER });
  });
  r.put('/settings/tech-params', c.adminOnly, (req, res) => {
    if (!d.settings) throw new HttpError(404, 'settings are not kept by this server');
    const body = req.body as unknown;
    const list = Array.isArray(body) ? body : (body as { techParams?: unknown } | null)?.techParams;
    const checked = checkTechParamList(list);
    if (!checked.ok) throw new HttpError(400, checked.errors.join('; '));
    const before = d.settings.techParams();
    d.settings.setTechParams(checked.list);
    d.audit.recordChange(
      c.actor(res),
      'settings.tech-params',
      'techParams',
      { techParams: before },
      { techParams: checked.list },
    );
    res.json({ techParams: checked.list, neverForTechs: TECH_NEVER });
  });
  return r;
}
