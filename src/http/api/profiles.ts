// GET /api/profiles: the profiles serving now, which are stale, and every load error.
import express from 'express';
import { formatProfileError } from '../../profiles/load.ts';
import { apiRoute } from '../openapi.ts';
import { Profiles } from '../api-schemas.ts';
import type { ApiContext } from './context.ts';

export function profileRoutes(c: ApiContext): express.Router {
  const r = express.Router();
  apiRoute(
    r,
    c.docs,
    {
      method: 'get',
      path: '/profiles',
      summary: 'the profiles serving now, which are stale (a broken file: the last good version serves), load errors',
      tags: ['profiles'],
      responses: { 200: Profiles },
    },
    (_req, res) => {
      const s = c.d.profiles();
      res.json({
        loadedAt: new Date(s.loadedAt).toISOString(),
        profiles: [...s.profiles.values()].map((lp) => ({
          name: lp.name,
          file: lp.file,
          extends: lp.extends,
          description: lp.profile.description,
          stale: s.stale.includes(lp.name),
        })),
        errors: s.errors.map((e) => ({ ...e, text: formatProfileError(e) })),
      });
    },
  );
  return r;
}
