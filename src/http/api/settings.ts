// /api/settings/tech-params: the host parameters techs may set (admins change them).
import express from 'express';
import { checkTechParamList, TECH_NEVER } from '../../hosts/policy.ts';
import { HttpError } from '../reply.ts';
import { apiRoute } from '../openapi.ts';
import { TechParams, TechParamsBody } from '../api-schemas.ts';
import type { ApiContext } from './context.ts';

export function settingsRoutes(c: ApiContext): express.Router {
  const { d } = c;
  const r = express.Router();
  const tags = ['settings'];
  apiRoute(
    r,
    c.docs,
    {
      method: 'get',
      path: '/settings/tech-params',
      summary: 'the host parameters techs may set',
      tags,
      responses: { 200: TechParams },
    },
    async (_req, res) => {
      res.json({ techParams: (await d.settings?.techParams()) ?? [], neverForTechs: TECH_NEVER });
    },
  );
  apiRoute(
    r,
    c.docs,
    {
      method: 'put',
      path: '/settings/tech-params',
      summary: 'set the host parameters techs may set (admin): ["timezone.name"] or {"techParams": [...]}',
      tags,
      admin: true,
      body: TechParamsBody,
      responses: { 200: TechParams },
    },
    c.adminOnly,
    async (req, res) => {
      if (!d.settings) throw new HttpError(404, 'settings are not kept by this server');
      const body = req.body as unknown;
      const list = Array.isArray(body) ? body : (body as { techParams?: unknown } | null)?.techParams;
      const checked = checkTechParamList(list);
      if (!checked.ok) throw new HttpError(400, checked.errors.join('; '), 'techParams');
      const before = await d.settings.techParams();
      await d.settings.setTechParams(checked.list);
      await d.audit.recordChange(
        c.actor(res),
        'settings.tech-params',
        'techParams',
        { techParams: before },
        { techParams: checked.list },
      );
      res.json({ techParams: checked.list, neverForTechs: TECH_NEVER });
    },
  );
  return r;
}
