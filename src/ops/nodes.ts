// This node in the nodes table: registered at start with what it serves and binds, a heartbeat every
// HEARTBEAT_MS, stopped on a clean shutdown. GET /api/nodes lists every node sharing the database.
import express from 'express';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../config.ts';
import type { Logger } from '../log.ts';
import { apiRoute, type ApiDocs } from '../http/openapi.ts';
import { Nodes } from '../http/api-schemas.ts';
import { HEARTBEAT_MS, type NodeInfo, type NodeRegistry, type NodeView } from '../store/nodes.ts';

export function rackbootVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export interface NodeHeartbeat {
  stop(): Promise<void>;
}

/** Registers `self` and beats until stop(). A failed beat is logged (once per outage), never thrown: the store may be away. */
export async function startHeartbeat(
  registry: NodeRegistry,
  self: Omit<NodeInfo, 'startedAt' | 'heartbeatAt' | 'stoppedAt'>,
  log: Logger,
  everyMs = HEARTBEAT_MS,
): Promise<NodeHeartbeat> {
  await registry.register(self);
  let failing = false;
  const timer = setInterval(() => {
    registry.heartbeat(self.id).then(
      () => {
        if (failing) log.info({ node: self.id }, 'node heartbeat written again');
        failing = false;
      },
      (err: Error) => {
        if (!failing)
          log.error({ node: self.id, err: err.message }, 'node heartbeat failed: other nodes will see this one dead');
        failing = true;
      },
    );
  }, everyMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      try {
        await registry.stopped(self.id);
      } catch (err) {
        log.warn({ node: self.id, err: (err as Error).message }, 'could not mark this node stopped');
      }
    },
  };
}

/** The API shape: ISO times, alive computed at read time. */
export function nodeJson(n: NodeView) {
  return {
    id: n.id,
    site: n.site ?? null,
    version: n.version,
    address: n.address,
    publicUrl: n.publicUrl,
    ports: n.ports,
    startedAt: new Date(n.startedAt).toISOString(),
    lastHeartbeat: new Date(n.heartbeatAt).toISOString(),
    stoppedAt: n.stoppedAt === undefined ? null : new Date(n.stoppedAt).toISOString(),
    alive: n.alive,
    duties: n.duties,
  };
}

/** Mounted under /api (after the token check). A handful of nodes share a database: one list, not paged. */
export function createNodesApi(d: { nodes: NodeRegistry; self: string }): (docs: ApiDocs) => express.Router {
  return (docs) => {
    const r = express.Router();
    apiRoute(
      r,
      docs,
      {
        method: 'get',
        path: '/nodes',
        summary: 'the nodes sharing this database: site, version, ports, last heartbeat, alive',
        tags: ['nodes'],
        responses: { 200: Nodes },
      },
      async (_req, res) => {
        const nodes = await d.nodes.list();
        res.json({ self: d.self, nodes: nodes.map(nodeJson) });
      },
    );
    return r;
  };
}
