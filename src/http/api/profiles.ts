// GET /api/profiles: the profiles serving now, which are stale, and every load error.
import express from 'express';
import { formatProfileError } from '../../profiles/load.ts';
import type { ApiContext } from './context.ts';

export function profileRoutes(c: ApiContext): express.Router {
  const r = express.Router();
  r.get('/profiles', (_req, res) => {
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
  });
  return r;
}
