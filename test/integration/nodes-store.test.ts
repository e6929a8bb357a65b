// Several nodes at the store level, on both stores: two stores opened on one database stand for two nodes.
// The build token secret is one (seeded by whichever opens first, even when both open at once), tokens of one
// node close builds on the other, hosts keep their site, events their node, and the nodes table is shared.
// The PostgreSQL half is skipped with the reason when its binaries are missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMac } from '../../src/net/mac.ts';
import { storeBackends } from '../support/backends.ts';

// Each node brings its own secret.key (below): the base secret is never the one used.
const backends = storeBackends({ secret: Buffer.alloc(32) });

for (const b of backends) {
  test(
    `${b.name}: two nodes on one database share the token secret, hosts' sites, events' nodes and the nodes table`,
    {
      skip: b.skip,
    },
    async () => {
      const database = await b.database();
      // Opened at the same moment, each with its own secret.key: one of them wins, both use it.
      const [a, c] = await Promise.all([
        b.openOn(database, { secret: Buffer.alloc(32, 1), nodeId: 'node-a' }),
        b.openOn(database, { secret: Buffer.alloc(32, 2), nodeId: 'node-b' }),
      ]);
      const mac = parseMac('52:54:00:0e:00:01')!;
      await a.hosts.insert({ mac, hostname: 'n1', profile: 'rhvh-base', nameservers: [], params: {}, site: 'dc1' });
      assert.equal((await c.hosts.get(mac))?.site, 'dc1');
      await c.hosts.update({ mac, hostname: 'n1', profile: 'rhvh-base', nameservers: [], params: {} });
      assert.equal((await a.hosts.get(mac))?.site, undefined, 'a site can be taken away');

      const { build, token } = await a.builds.start(mac, 3_600_000);
      assert.equal(await c.builds.tokenOf((await c.builds.byId(build.id))!), token, 'B derives the same token');
      const closed = await c.builds.close(token, 'built');
      assert.ok(closed.ok, JSON.stringify(closed));

      // One after the other, as on two nodes: each store writes its buffer on its own connection and schedule.
      a.events.append({ mac, type: 'build.start', buildId: build.id });
      await a.events.flush();
      c.events.append({ mac, type: 'build.built', buildId: build.id });
      await c.events.flush();
      const timeline = await a.events.timeline(mac);
      assert.deepEqual(
        timeline.map((e) => [e.type, e.node]),
        [
          ['build.start', 'node-a'],
          ['build.built', 'node-b'],
        ],
      );

      const self = { version: '0.1.0', address: '127.0.0.1', publicUrl: 'http://127.0.0.1:1', ports: { http: 1 } };
      await a.nodes.register({ ...self, id: 'node-a', site: 'dc1' });
      await c.nodes.register({ ...self, id: 'node-b' });
      await c.nodes.heartbeat('node-b');
      assert.deepEqual(
        (await a.nodes.list()).map((n) => [n.id, n.site ?? null, n.alive, n.ports]),
        [
          ['node-a', 'dc1', true, { http: 1 }],
          ['node-b', null, true, { http: 1 }],
        ],
      );
    },
  );
}
