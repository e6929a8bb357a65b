// rackboot backup / restore on PostgreSQL (native dump), and across stores: a SQLite backup restored into
// PostgreSQL, a PostgreSQL dump restored into SQLite. Crafted dumps are refused and change nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { openPostgresStore, openSqliteStore, type Store } from '../../src/store/index.ts';
import { backupStore, restoreStoreFile } from '../../src/ops/store-backup.ts';
import { parseMac, type Mac } from '../../src/net/mac.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../support/postgres.ts';

const missing = postgresMissing();
let pg: TestPostgres | undefined;
const dir = mkdtempSync(join(tmpdir(), 'rb-backup-'));
const secret = Buffer.alloc(32, 3);
const mac = (i: number): Mac => parseMac(`52:54:00:00:01:${i.toString(16).padStart(2, '0')}`)!;

before(async () => {
  if (!missing) pg = await startPostgres();
});
after(() => {
  pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function fill(store: Store, n: number): Promise<void> {
  for (let i = 1; i <= n; i++)
    await store.hosts.insert({
      mac: mac(i),
      hostname: `h${i}.lab`,
      profile: 'rhvh',
      nameservers: [],
      params: { k: `v'${i}` },
    });
  const { token } = await store.builds.start(mac(1), 3600_000);
  await store.builds.close(token, 'failed', 'line 1\nline "2"');
  await store.users.add('alice', 'admin', 'scrypt$x');
  store.events.append({ mac: mac(1), type: 'kickstart', detail: { a: [1, 2] } });
  await store.settings.setTechParams(['role']);
}

async function pgConfig(sub: string) {
  const url = await pg!.createDatabase();
  return { url, config: loadConfig({ 'data-dir': join(dir, sub), database: url }, {}) };
}

describe('backup and restore', { skip: missing ?? false }, () => {
  test('PostgreSQL: backup, change, restore brings the data back; ids go on after the restored ones', async () => {
    const { url, config } = await pgConfig('a');
    let s = await openPostgresStore(url, { dataDir: dir, secret });
    await fill(s, 3);
    await s.close();
    const file = join(dir, 'a.jsonl');
    const b = await backupStore(config, file);
    assert.equal(b.ok, true, b.message);
    assert.match(b.message, /3 host\(s\), 1 build\(s\)/);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the dump holds password hashes: 0600');
    s = await openPostgresStore(url, { dataDir: dir, secret });
    await s.hosts.delete(mac(2));
    await s.hosts.insert({ mac: mac(9), hostname: 'late.lab', profile: 'rhvh', nameservers: [], params: {} });
    await s.close();
    const r = await restoreStoreFile(config, file);
    assert.equal(r.ok, true, r.message);
    s = await openPostgresStore(url, { dataDir: dir, secret });
    try {
      assert.deepEqual(
        (await s.hosts.list()).map((h) => h.hostname),
        ['h1.lab', 'h2.lab', 'h3.lab'],
      );
      assert.equal((await s.hosts.get(mac(1)))?.params.k, "v'1");
      const [old] = await s.builds.history(mac(1));
      assert.equal(old.failureLog, 'line 1\nline "2"');
      assert.equal((await s.events.timeline(mac(1)))[0]?.type, 'kickstart');
      assert.deepEqual(await s.settings.techParams(), ['role']);
      assert.equal((await s.users.get('alice'))?.role, 'admin');
      const next = await s.builds.start(mac(2), 1000);
      assert.ok(next.build.id > old.id, 'the identity sequence continues after the restored ids');
    } finally {
      await s.close();
    }
  });

  test('SQLite backup restored into PostgreSQL, and a PostgreSQL dump restored into SQLite', async () => {
    const sqliteDir = join(dir, 'sqlite');
    const sqliteConfig = loadConfig({ 'data-dir': sqliteDir }, {});
    const s = openSqliteStore(join(sqliteDir, 'rackboot.db'), { dataDir: sqliteDir, secret });
    await fill(s, 4);
    await s.close();
    const dbFile = join(dir, 'sqlite-backup.db');
    assert.equal((await backupStore(sqliteConfig, dbFile)).ok, true);
    const { url, config } = await pgConfig('b');
    const r = await restoreStoreFile(config, dbFile);
    assert.equal(r.ok, true, r.message);
    const p = await openPostgresStore(url, { dataDir: dir, secret });
    try {
      assert.equal((await p.hosts.list()).length, 4);
      assert.equal((await p.builds.latest(mac(1)))?.status, 'failed');
      await p.hosts.delete(mac(4));
    } finally {
      await p.close();
    }
    const dump = join(dir, 'b.jsonl');
    assert.equal((await backupStore(config, dump)).ok, true);
    const back = await restoreStoreFile(sqliteConfig, dump);
    assert.equal(back.ok, true, back.message);
    const s2 = openSqliteStore(join(sqliteDir, 'rackboot.db'), { dataDir: sqliteDir, secret });
    try {
      assert.equal((await s2.hosts.list()).length, 3);
      assert.equal((await s2.users.get('alice'))?.name, 'alice');
    } finally {
      await s2.close();
    }
  });

  test('crafted dumps are refused naming the line, and nothing changes; a running node blocks restore', async () => {
    const { url, config } = await pgConfig('c');
    let s = await openPostgresStore(url, { dataDir: dir, secret });
    await fill(s, 2);
    await s.close();
    const good = join(dir, 'c.jsonl');
    assert.equal((await backupStore(config, good)).ok, true);
    const lines = readFileSync(good, 'utf8').trimEnd().split('\n');
    const header = JSON.parse(lines[0]) as { schema: number };
    const cases: [string, string, RegExp][] = [
      ['not-json', `${lines[0]}\n{nope\n`, /:2: not JSON/],
      ['no-header', `${lines[1]}\n`, /:1: not a rackboot store dump/],
      ['newer', `${JSON.stringify({ ...header, schema: 999 })}\n`, /schema version 999 is newer/],
      ['table', `${lines[0]}\n${JSON.stringify({ t: 'pg_authid', r: {} })}\n`, /:2: unknown table "pg_authid"/],
      [
        'column',
        `${lines[0]}\n${JSON.stringify({ t: 'settings', r: { 'key) VALUES (1); DROP TABLE hosts; --': 'x' } })}\n`,
        /:2: table settings has no column/,
      ],
      [
        'value',
        `${lines[0]}\n${JSON.stringify({ t: 'settings', r: { key: 'a', value: { x: 1 } } })}\n`,
        /neither text/,
      ],
      ['half', `${lines.slice(0, 3).join('\n')}\n${JSON.stringify({ t: 'hosts', r: { mac: 'm' } })}\n`, /refusing/],
    ];
    for (const [name, text, want] of cases) {
      const f = join(dir, `bad-${name}.jsonl`);
      writeFileSync(f, text);
      const r = await restoreStoreFile(config, f);
      assert.equal(r.ok, false, name);
      assert.match(r.message, want, name);
    }
    s = await openPostgresStore(url, { dataDir: dir, secret });
    try {
      assert.equal((await s.hosts.list()).length, 2, 'every refused restore left the data as it was');
      const refused = await restoreStoreFile(config, good);
      assert.equal(refused.ok, false);
      assert.match(refused.message, /other rackboot connection\(s\).*stop every node first/);
      assert.equal((await restoreStoreFile(config, good, { force: true })).ok, true);
    } finally {
      await s.close();
    }
  });
});
