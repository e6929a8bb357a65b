// The kickstart path checks a live build's token in the node's in-memory view (src/store/view.ts), so a fetch
// waits on no query: a started build's token is found at once, a cancelled, superseded or another node's
// finished build is not (the caller then asks the database), and a stranger's token never is.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openPostgresStore, openSqliteStore, type Store } from '../../src/store/index.ts';
import { StoreView } from '../../src/store/view.ts';
import type { Mac } from '../../src/net/mac.ts';
import { tempDir } from '../support/core.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../support/postgres.ts';

const secret = Buffer.alloc(32, 5);
const mac = '52:54:00:77:00:01' as Mac;
let pg: TestPostgres | undefined;
const dir = tempDir('rb-view-tokens-');
after(() => {
  pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const backends: { name: string; skip: string | false; pair(): Promise<[Store, Store]> }[] = [
  {
    name: 'SQLite',
    skip: false,
    pair() {
      const file = join(dir, 'rackboot.db');
      return Promise.resolve([
        openSqliteStore(file, { dataDir: dir, secret }),
        openSqliteStore(file, { dataDir: dir, secret }),
      ]);
    },
  },
  {
    name: 'PostgreSQL',
    skip: postgresMissing() ?? false,
    async pair() {
      pg ??= await startPostgres();
      const url = await pg.createDatabase();
      return [
        await openPostgresStore(url, { dataDir: dir, secret }),
        await openPostgresStore(url, { dataDir: dir, secret }),
      ];
    },
  },
];

for (const b of backends)
  test(`live build tokens in the view on ${b.name}`, { skip: b.skip }, async () => {
    const [store, other] = await b.pair();
    const view = await StoreView.open(store, { reloadMs: 0, imagesCheckMs: 0 });
    try {
      await store.hosts.insert({ mac, hostname: 'vt1', profile: 'rhvh-base', nameservers: [], params: {} });
      const first = await store.builds.start(mac, 60_000);
      assert.equal(view.pendingBuildOfToken(first.token)?.id, first.build.id, 'started here: in the view at once');
      assert.equal(view.pendingBuildOfToken('x'.repeat(43)), undefined, 'a stranger token');
      const second = await store.builds.start(mac, 60_000);
      assert.equal(view.pendingBuildOfToken(first.token), undefined, 'superseded');
      assert.equal(view.pendingBuildOfToken(second.token)?.id, second.build.id);
      await store.builds.cancel(mac);
      assert.equal(view.pendingBuildOfToken(second.token), undefined, 'cancelled here');
      // Another node (or process) starts one: after a reload (or its notification) the view has it; closed there, gone here.
      const third = await other.builds.start(mac, 60_000);
      await view.reload();
      assert.equal(view.pendingBuildOfToken(third.token)?.id, third.build.id);
      assert.equal((await other.builds.close(third.token, 'built')).ok, true);
      await view.reload();
      assert.equal(view.pendingBuildOfToken(third.token), undefined, 'built on the other node');
    } finally {
      view.close();
      await store.close();
      await other.close();
    }
  });
