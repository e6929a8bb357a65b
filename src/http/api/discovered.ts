// GET /api/discovered: machines that PXE-booted here without being hosts, the most recently seen first.
import type { Mac } from '../../net/mac.ts';
import express from 'express';
import { DISCOVERED_MAX_ROWS } from '../../store/discovered.ts';
import { apiRoute } from '../openapi.ts';
import { pageList } from '../paging.ts';
import { DiscoveredPage, DiscoveredQuery } from '../api-schemas.ts';
import type { ApiContext } from './context.ts';

export function discoveredRoutes(c: ApiContext): express.Router {
  const discovered = c.d.store.discovered;
  const r = express.Router();
  apiRoute(
    r,
    c.docs,
    {
      method: 'get',
      path: '/discovered',
      summary: 'machines that PXE-booted without being hosts (what DHCP saw), the most recently seen first',
      tags: ['discovered'],
      query: DiscoveredQuery,
      responses: { 200: DiscoveredPage },
    },
    async (_req, res, { query }) => {
      // The table is bounded (DISCOVERED_MAX_ROWS): the page is cut from all of it, newest first.
      // A machine made a host since it was seen is no longer "discovered" (the web page leaves it out too).
      const machines = (await discovered.list(DISCOVERED_MAX_ROWS)).filter((m) => !c.d.view.host(m.mac as Mac));
      const page = pageList('discovered', machines, (m) => [-m.lastSeen, m.mac], query, 2);
      res.json({
        items: page.items.map((m) => ({
          mac: m.mac,
          arch: m.arch,
          uuid: m.uuid,
          ipxe: m.ipxe === 1,
          ip: m.ip,
          firstSeen: new Date(m.firstSeen).toISOString(),
          lastSeen: new Date(m.lastSeen).toISOString(),
        })),
        nextCursor: page.nextCursor,
      });
    },
  );
  return r;
}
