// GET /api/discovered: machines that PXE-booted here without being hosts.
import express from 'express';
import { DiscoveredStore } from '../../store/discovered.ts';
import type { ApiContext } from './context.ts';

export function discoveredRoutes(c: ApiContext): express.Router {
  const discovered = new DiscoveredStore(c.d.db);
  const r = express.Router();
  r.get('/discovered', (_req, res) => {
    res.json(discovered.list());
  });
  return r;
}
