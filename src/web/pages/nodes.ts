// The nodes sharing this database: site, version, address, ports, last heartbeat, alive (GET /api/nodes as a page).
import express from 'express';
import type { WebContext } from './context.ts';

export function nodePages(c: WebContext): express.Router {
  const r = express.Router();
  r.get('/nodes', c.tech, async (_req, res) => {
    const nodes = c.d.nodes ? await c.d.nodes.list() : [];
    const rows = nodes.map((n) => ({
      ...n,
      self: n.id === c.d.nodeId,
      portsText: Object.entries(n.ports)
        .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : v}`)
        .join(' · '),
    }));
    c.page(res, 200, 'nodes', { title: 'Nodes', nodes: rows });
  });
  return r;
}
