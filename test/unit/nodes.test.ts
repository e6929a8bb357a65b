// Several nodes, piece by piece on real SQLite: two connections to one file stand for two nodes (the lease
// claims, the build token secret, the nodes table), plus the site/node-id grammar at every entry (flags, env,
// config file, DHCP subnets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDb } from '../../src/store/db.ts';
import { LeaseStore } from '../../src/dhcp/leases.ts';
import { sharedBuildSecret, loadBuildSecret } from '../../src/store/build-secret.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { SqliteSql } from '../../src/store/sqlite-sql.ts';
import { isAlive, FORGET_AFTER_MS } from '../../src/store/nodes.ts';
import { NodeRepo } from '../../src/store/repo/nodes.ts';
import { nodeIdProblem, servesSite, siteProblem } from '../../src/hosts/site.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { checkHostInput } from '../../src/hosts/input.ts';
import { tempDir } from '../support/core.ts';
import type { Mac } from '../../src/net/mac.ts';

const M1 = '52:54:00:00:00:01' as Mac;
const M2 = '52:54:00:00:00:02' as Mac;
const SUBNET = '10.99.0.0/24';

/** Two nodes: two stores (connections) on one SQLite file, each with its own in-memory lease table. */
function twoNodes(shared = true) {
  const file = join(tempDir('rackboot-nodes-unit-'), 'rackboot.db');
  const open = () => openSqliteStore(file, { dataDir: '/nonexistent', secret: Buffer.alloc(32, 1) });
  const [sa, sb] = [open(), open()];
  const [a, b] = [new LeaseStore(sa.leases, { shared }), new LeaseStore(sb.leases, { shared })];
  for (const l of [a, b]) l.setPools([{ subnet: SUBNET, ranges: [{ start: '10.99.0.10', end: '10.99.0.12' }] }]);
  return { a, b, sa };
}

test('shared leases: two nodes see one address free, the first claim wins and the second moves on', async () => {
  const { a, b } = twoNodes();
  const now = 1_000_000;
  const ipA = a.findFree(SUBNET, now)!;
  // Shared pools pick at random, so the nodes reach for one address only sometimes: here they do.
  const ipB = ipA;
  assert.equal(b.byIp(ipB, now), undefined, 'B sees it free too');
  assert.equal(a.offer({ subnet: SUBNET, mac: M1, ip: ipA, expiresAt: now + 30_000, dynamic: true, now }), true);
  assert.equal(b.offer({ subnet: SUBNET, mac: M2, ip: ipB, expiresAt: now + 30_000, dynamic: true, now }), true);
  assert.deepEqual(await a.commit(), [true]);
  assert.deepEqual(await b.commit(), [false], "B's claim loses in the database");
  assert.equal(b.byIp(ipA, now)?.mac, M1, 'B re-read the row it lost');
  const next = b.findFree(SUBNET, now)!;
  assert.notEqual(next, ipA);
  assert.equal(b.offer({ subnet: SUBNET, mac: M2, ip: next, expiresAt: now + 30_000, dynamic: true, now }), true);
  assert.deepEqual(await b.commit(), [true]);
  // The REQUESTs: each binds its own; a bind of the other's address fails and writes nothing.
  const bind = (l: LeaseStore, mac: Mac, ip: string, dynamic = true) =>
    l.bind({ subnet: SUBNET, mac, ip, expiresAt: now + 3_600_000, dynamic, now: now + 1 });
  assert.equal(bind(b, M2, ipA), false, "B may not bind A's offered address (it knows now)");
  assert.equal(bind(a, M1, ipA), true);
  assert.equal(bind(b, M2, next), true);
  assert.deepEqual([await a.commit(), await b.commit()], [[true], [true]]);
  assert.equal(bind(a, M1, next), true, 'A does not know yet that B bound it');
  assert.equal(a.byIp(ipA, now + 2)?.mac, '', "in A's memory M1 moved off its old address");
  assert.deepEqual(await a.commit(), [false], "A may not bind B's bound address");
  assert.equal(a.byIp(next, now + 2)?.mac, M2, 'A re-read the row');
  assert.equal(a.byIp(ipA, now + 2)?.mac, M1, 'and M1 still holds its own address, as in the database');
  assert.equal(b.byIp(ipA, now + 2)?.mac, M1, 'B never saw the lost write either');
  // A reservation is the host's own: always written.
  assert.equal(bind(a, M1, next, false), true);
  assert.deepEqual(await a.commit(), [true]);
});

test('shared leases: a run-out lease or offer is claimable by another client; a declined address is not', async () => {
  const { a, b } = twoNodes();
  const now = 2_000_000;
  assert.ok(a.offer({ subnet: SUBNET, mac: M1, ip: '10.99.0.10', expiresAt: now + 30_000, dynamic: true, now }));
  assert.deepEqual(await a.commit(), [true]);
  const later = now + 31_000;
  assert.ok(
    b.offer({ subnet: SUBNET, mac: M2, ip: '10.99.0.10', expiresAt: later + 30_000, dynamic: true, now: later }),
  );
  assert.deepEqual(await b.commit(), [true], "A's offer ran out");
  a.decline({ ip: '10.99.0.11', subnet: SUBNET, until: later + 3_600_000, now: later });
  assert.deepEqual(await a.commit(), [true]);
  const offer11 = () =>
    b.offer({ subnet: SUBNET, mac: M2, ip: '10.99.0.11', expiresAt: later + 30_000, dynamic: true, now: later });
  assert.equal(offer11(), true, 'B has not seen the DECLINE');
  assert.deepEqual(await b.commit(), [false]);
  assert.equal(offer11(), false, 'now B knows the address is quarantined');
  assert.equal(b.pendingWrites(), 0);
});

test('without sharedLeases an OFFER writes nothing (one node keeps its in-memory holds), a bind still cannot take a live lease', async () => {
  const { a, b, sa } = twoNodes(false);
  const now = 3_000_000;
  assert.ok(a.offer({ subnet: SUBNET, mac: M1, ip: '10.99.0.10', expiresAt: now + 30_000, dynamic: true, now }));
  assert.equal(a.pendingWrites(), 0);
  assert.equal((await sa.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM dhcp_leases'))!.n, 0);
  assert.ok(a.bind({ subnet: SUBNET, mac: M1, ip: '10.99.0.10', expiresAt: now + 1e6, dynamic: true, now }));
  assert.deepEqual(await a.commit(), [true]);
  assert.ok(b.bind({ subnet: SUBNET, mac: M2, ip: '10.99.0.10', expiresAt: now + 1e6, dynamic: true, now }));
  assert.deepEqual(await b.commit(), [false], 'the database refuses what B could not see');
  assert.equal((await sa.leases.byIp('10.99.0.10'))?.mac, M1);
});

test('build token secret: one per database, seeded once (from secret.key), the same on every node', async () => {
  const file = join(tempDir('rackboot-secret-'), 'rackboot.db');
  const [dbA, dbB] = [openDb(file, 'full'), openDb(file, 'full')];
  const seed = Buffer.alloc(32, 7);
  let seeded = 0;
  const first = sharedBuildSecret(dbA, () => (seeded++, seed));
  assert.deepEqual(first, seed);
  assert.deepEqual(
    sharedBuildSecret(dbB, () => (seeded++, Buffer.alloc(32, 9))),
    seed,
    'B reads what A wrote',
  );
  assert.equal(seeded, 1, 'the seed is asked for only when the database has none');
  assert.deepEqual(await loadBuildSecret(new SqliteSql(dbB), () => Buffer.alloc(32, 9)), seed);
  for (const damaged of ['', 'zz', '0'.repeat(63), '0'.repeat(65), `${'0'.repeat(64)}\n`]) {
    dbA.prepare("UPDATE settings SET value = ? WHERE key = 'build_token_secret'").run(damaged);
    assert.throws(() => sharedBuildSecret(dbB), /build token secret .* is damaged/);
    await assert.rejects(loadBuildSecret(new SqliteSql(dbB)), /is damaged/);
  }
});

test('nodes table: register, heartbeat, stop, alive by the heartbeat age, forgotten after a week', async () => {
  const file = join(tempDir('rackboot-nodes-reg-'), 'rackboot.db');
  const db = openDb(file, 'full');
  let now = 10_000_000;
  {
    const reg = new NodeRepo(new SqliteSql(db), () => now, 1000);
    const self = { version: '0.1.0', address: '10.99.0.1', publicUrl: 'http://10.99.0.1:8080', ports: { http: 8080 } };
    await reg.register({ ...self, id: 'a', site: 'dc1' });
    await reg.register({ ...self, id: 'b' });
    now += 1500;
    await reg.heartbeat('b');
    let list = await reg.list();
    assert.deepEqual(
      list.map((n) => [n.id, n.site ?? null, n.alive]),
      [
        ['a', 'dc1', true],
        ['b', null, true],
      ],
    );
    now += 2000; // a: 3.5 s without a beat at 1 s intervals: dead
    list = await reg.list();
    assert.equal(list.find((n) => n.id === 'a')!.alive, false);
    assert.equal(list.find((n) => n.id === 'b')!.alive, true);
    await reg.stopped('b');
    assert.equal((await reg.list()).find((n) => n.id === 'b')!.alive, false, 'a clean stop is not alive');
    await reg.register({ ...self, id: 'b' });
    assert.equal((await reg.list()).find((n) => n.id === 'b')!.stoppedAt, undefined, 'a restart clears stopped');
    now += FORGET_AFTER_MS;
    await reg.heartbeat('b');
    assert.deepEqual(
      (await reg.list()).map((n) => n.id),
      ['b'],
      'a node gone for a week is forgotten',
    );
  }
  assert.equal(isAlive({ heartbeatAt: 0 }, 14_999), true);
  assert.equal(isAlive({ heartbeatAt: 0 }, 15_000), false);
});

const BAD_SITES = [
  '',
  'DC1',
  '-dc',
  'dc-',
  'd c',
  '../x',
  'dc1\n',
  'dc1\u0000',
  'dc\u00e9',
  'a'.repeat(33),
  'x'.repeat(65_536),
];
const BAD_NODE_IDS = ['', ' ', 'a b', '/etc', 'a/b', 'node\n', '-a', 'a-', 'ü', 'a'.repeat(65), '\u2028'];

test('site and node id grammar: worst values refused with the field named, good ones taken', () => {
  for (const s of BAD_SITES) {
    const e = siteProblem(s, '--site');
    assert.ok(e?.startsWith('--site '), JSON.stringify(s));
    assert.ok(e!.length < 200, 'a huge value is not echoed whole');
  }
  for (const s of ['dc1', 'a', 'paris-b', '0', 'a'.repeat(32)]) assert.equal(siteProblem(s, '--site'), undefined, s);
  for (const n of BAD_NODE_IDS) assert.ok(nodeIdProblem(n, '--node-id')?.startsWith('--node-id '), JSON.stringify(n));
  for (const n of ['rack-a:8080', 'a', 'n1.example.com', 'A_1']) assert.equal(nodeIdProblem(n, '--node-id'), undefined);
  assert.equal(servesSite(undefined, 'dc2'), true, 'a node of no site serves every site');
  assert.equal(servesSite('dc1', undefined), true, 'a host of no site is served by every node');
  assert.equal(servesSite('dc1', 'dc1'), true);
  assert.equal(servesSite('dc1', 'dc2'), false);
});

test('config: --site, RACKBOOT_SITE, site: in the file and --node-id, each refused by name; the default node id', () => {
  const dir = tempDir('rackboot-site-config-');
  const flags = { 'data-dir': join(dir, 'data'), 'server-ip': '10.99.0.1' };
  for (const s of BAD_SITES.filter(Boolean)) {
    assert.throws(
      () => loadConfig({ ...flags, site: s }, {}, dir),
      (e: Error) => e instanceof ConfigError && e.message.startsWith('--site '),
    );
    assert.throws(() => loadConfig(flags, { RACKBOOT_SITE: s }, dir), /: --site /);
  }
  for (const n of BAD_NODE_IDS.filter((x) => x.trim()))
    assert.throws(() => loadConfig({ ...flags, 'node-id': n }, {}, dir), /: --node-id /);
  assert.equal(loadConfig({ ...flags, site: 'dc1' }, {}, dir).site, 'dc1');
  assert.equal(loadConfig(flags, { RACKBOOT_SITE: 'dc2' }, dir).site, 'dc2');
  assert.equal(loadConfig(flags, {}, dir).site, undefined);
  assert.match(loadConfig({ ...flags, 'http-port': '8181' }, {}, dir).nodeId, /^[A-Za-z0-9][A-Za-z0-9._-]*:8181$/);
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'site: 42\n');
  assert.throws(() => loadConfig({ ...flags, config: file }, {}, dir), /setting site/);
  writeFileSync(file, 'nodeHeartbeat: 100ms\n');
  assert.throws(() => loadConfig({ ...flags, config: file }, {}, dir), /nodeHeartbeat: must be from 1s to 60s/);
  writeFileSync(file, 'nodeHeartbeat: 2s\nsite: dc1\nnodeId: rack-a\n');
  const c = loadConfig({ ...flags, config: file }, {}, dir);
  assert.deepEqual([c.nodeHeartbeatMs, c.site, c.nodeId], [2000, 'dc1', 'rack-a']);
});

test('DHCP subnets carry a site: a node keeps its own and those of no site; a bad subnet site is named', () => {
  const dir = tempDir('rackboot-site-dhcp-');
  const file = join(dir, 'c.yaml');
  const subnets = (extra: string) =>
    [
      'dhcp:',
      '  mode: authoritative',
      '  serverIp: 10.99.0.1',
      '  subnets:',
      '    - { cidr: 10.1.0.0/24, ranges: ["10.1.0.10-10.1.0.20"], site: dc1 }',
      '    - { cidr: 10.2.0.0/24, ranges: ["10.2.0.10-10.2.0.20"], site: dc2 }',
      '    - { cidr: 10.3.0.0/24, ranges: ["10.3.0.10-10.3.0.20"] }',
      extra,
    ].join('\n');
  writeFileSync(file, subnets(''));
  const flags = { config: file, 'data-dir': join(dir, 'data'), 'server-ip': '10.99.0.1' };
  const cidrs = (site?: string) =>
    loadConfig({ ...flags, ...(site ? { site } : {}) }, {}, dir).dhcp.subnets.map((s) => s.cidr);
  assert.deepEqual(cidrs('dc1'), ['10.1.0.0/24', '10.3.0.0/24']);
  assert.deepEqual(cidrs('dc2'), ['10.2.0.0/24', '10.3.0.0/24']);
  assert.deepEqual(cidrs(), ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24']);
  writeFileSync(file, subnets('    - { cidr: 10.4.0.0/24, site: "DC 4" }'));
  assert.throws(() => loadConfig(flags, {}, dir), /setting dhcp\.subnets\.3\.site: must be a site name/);
  writeFileSync(
    file,
    'dhcp:\n  mode: authoritative\n  serverIp: 10.99.0.1\n  subnets: [{ cidr: 10.1.0.0/24, ranges: ["10.1.0.10-10.1.0.20"], site: dc1 }]\n',
  );
  assert.throws(() => loadConfig({ ...flags, site: 'dc9' }, {}, dir), /no subnet for site dc9/);
});

test('host input: site is optional, a string, and a site name', () => {
  const base = { mac: '52:54:00:00:00:01', hostname: 'h1', profile: 'p' };
  const known = () => true;
  const ok = checkHostInput({ ...base, site: 'dc1' }, known);
  assert.ok(ok.ok && ok.host.site === 'dc1');
  const none = checkHostInput({ ...base, site: '' }, known);
  assert.ok(none.ok && none.host.site === undefined, 'an empty site is no site');
  for (const site of [...BAD_SITES.filter(Boolean), 42, true, ['dc1'], { a: 1 }]) {
    const r = checkHostInput({ ...base, site }, known);
    assert.ok(!r.ok && r.errors.some((e) => e.startsWith('site')), JSON.stringify(site).slice(0, 30));
  }
});
