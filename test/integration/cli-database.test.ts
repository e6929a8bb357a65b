// The host and build commands on --database postgres://...: the same commands, rows in PostgreSQL, nothing in the
// data dir's SQLite file (the data dir keeps only the secrets).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/cli.ts';
import { openPostgresStore } from '../../src/store/index.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO, tempDir } from '../support/core.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../support/postgres.ts';

const missing = postgresMissing();
let pg: TestPostgres | undefined;
before(async () => {
  if (!missing) pg = await startPostgres();
});
after(() => pg?.stop());

test('hosts import, list, build, cancel, render and lint on PostgreSQL', { skip: missing ?? false }, async () => {
  const url = await pg!.createDatabase();
  const dir = tempDir();
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  const flags = ['--data-dir', join(dir, 'data'), '--profiles-dir', join(dir, 'profiles'), '--database', url];
  const cli = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), readStdin: async () => '', env: {} };
    const code = await runCli([...args, ...flags, '--public-url', 'http://10.99.0.1:8080'], io);
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const csv = join(dir, 'rack.csv');
  writeFileSync(
    csv,
    'mac,hostname,profile,ip,netmask,gateway,rack\n' +
      '52:54:00:d0:00:01,pg01,rhvh-base,10.99.0.21,255.255.255.0,10.99.0.1,P1\n' +
      '52:54:00:d0:00:02,pg02,rhvh-base,10.99.0.22,255.255.255.0,10.99.0.1,P1\n',
  );
  const imported = await cli('hosts', 'import', csv);
  assert.equal(imported.code, 0, imported.err);
  assert.match(imported.out, /imported 2 host\(s\)/);
  // Again: both are taken now (the check reads the store the first import wrote).
  const again = await cli('hosts', 'import', csv);
  assert.equal(again.code, 1);
  assert.match(again.err, /52:54:00:d0:00:01/);

  const built = await cli('hosts', 'build', '52:54:00:d0:00:01');
  assert.equal(built.code, 0, built.err);
  const urls = JSON.parse(built.out) as { kickstartUrl: string };
  assert.match(urls.kickstartUrl, /^http:\/\/10\.99\.0\.1:8080\/ks\//);
  const list = await cli('hosts', 'list');
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^52:54:00:d0:00:01\tpg01\trhvh-base\t10\.99\.0\.21\tP1\tbuild$/m);
  assert.match(list.out, /^52:54:00:d0:00:02\tpg02\trhvh-base\t10\.99\.0\.22\tP1\tidle$/m);
  const ks = await cli('render', 'kickstart', '--mac', '52:54:00:d0:00:01');
  assert.equal(ks.code, 0, ks.err);
  assert.match(ks.out, /^# rackboot kickstart for pg01 \(52:54:00:d0:00:01\), profile rhvh-base, build \d+$/m);
  const lint = await cli('lint');
  assert.match(lint.out, /2 host\(s\)/);

  const cancelled = await cli('hosts', 'cancel', '52:54:00:d0:00:01');
  assert.equal(cancelled.code, 0, cancelled.err);
  assert.match(cancelled.out, /^build \d+ cancelled$/);

  // The rows are PostgreSQL's; the data dir has no database file.
  const store = await openPostgresStore(url, { dataDir: join(dir, 'data'), secret: Buffer.alloc(32) });
  try {
    assert.deepEqual((await store.hosts.list()).map((h) => h.hostname).sort(), ['pg01', 'pg02']);
    assert.deepEqual(
      (await store.builds.history('52:54:00:d0:00:01' as Mac)).map((b) => b.status),
      ['cancelled'],
    );
    const audit = await store.audit.recent(10);
    assert.ok(audit.some((a) => a.action === 'host.import' && a.actor === 'cli'));
  } finally {
    await store.close();
  }
  assert.equal(existsSync(join(dir, 'data', 'rackboot.db')), false);
});
