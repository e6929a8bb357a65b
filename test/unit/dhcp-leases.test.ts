import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseStore } from '../../src/dhcp/leases.ts';
import type { Mac } from '../../src/net/mac.ts';
import { openTestStore, reqIp, sid, testEngine } from '../fixtures/dhcp/helpers.ts';

const A = '52:54:00:00:01:01' as Mac,
  B = '52:54:00:00:01:02' as Mac;
const SUB = '10.99.0.0/24';

test('the reads the database still serves (tools, start-up) are index seeks, never a scan', () => {
  const store = openTestStore();
  const db = (store.sql as unknown as { db: import('better-sqlite3').Database }).db;
  const plans = [
    'SELECT * FROM dhcp_leases WHERE ip = 1',
    "SELECT * FROM dhcp_leases WHERE mac = 'x' AND subnet = 'y'",
    "SELECT * FROM dhcp_leases WHERE subnet = 'y' AND dynamic = 1 AND expires_at < 5 ORDER BY expires_at LIMIT 1 OFFSET 0",
    "UPDATE dhcp_leases SET mac = '' WHERE mac = 'x' AND subnet = 'y' AND ip <> 1",
  ];
  for (const sql of plans) {
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[])
      .map((r) => r.detail)
      .join('; ');
    assert.doesNotMatch(plan, /^SCAN|; SCAN/, `${sql}: ${plan}`);
    assert.doesNotMatch(plan, /TEMP B-TREE/, `${sql}: ${plan}`);
  }
});

test('leases survive a restart (real SQLite file, WAL); offer holds do not need to', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbdhcp-leases-'));
  try {
    const file = join(dir, 'leases.db');
    const config = {
      mode: 'authoritative' as const,
      serverIp: '10.99.0.1',
      subnets: [{ cidr: SUB, ranges: ['10.99.0.100-10.99.0.110'] }],
    };
    let store = openTestStore(file);
    let t = testEngine({ config, leases: new LeaseStore(store.leases) });
    const o = t.send({ type: 1, mac: A }).reply;
    t.send({ type: 3, mac: A, opts: [sid('10.99.0.1'), reqIp(o.p.yiaddr)] });
    const offerB = t.send({ type: 1, mac: B }).reply.p.yiaddr;
    assert.equal(offerB, '10.99.0.101');
    assert.deepEqual(await t.commit(), [true]);
    await store.close();
    store = openTestStore(file);
    const leases = new LeaseStore(store.leases);
    await leases.load();
    t = testEngine({ config, leases });
    assert.equal(t.leases.byIp('10.99.0.100')?.mac, A);
    assert.equal(t.leases.byIp('10.99.0.100')?.state, 'bound');
    // B's offer hold died with the process: its REQUEST is confirmed from the free pool (RFC 2131 lets the server decide).
    const ackB = t.send({ type: 3, mac: B, opts: [sid('10.99.0.1'), reqIp(offerB)] }).reply;
    assert.equal(ackB.type, 5);
    assert.equal(t.send({ type: 1, mac: '52:54:00:00:01:03' }).reply.p.yiaddr, '10.99.0.102');
    assert.equal(t.send({ type: 1, mac: A }).reply.p.yiaddr, '10.99.0.100', 'A keeps its address');
    await t.commit();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('offer holds expire in order and their addresses are reused before stored leases', async () => {
  const s = new LeaseStore(openTestStore().leases);
  s.setPools([{ subnet: SUB, ranges: [{ start: '10.99.0.1', end: '10.99.0.3' }] }]);
  const now = 1000;
  for (const [i, mac] of ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'].entries()) {
    const ip = s.findFree(SUB, now + i)!;
    s.offer({ subnet: SUB, mac: mac as Mac, ip, expiresAt: now + i + 100, dynamic: true, now: now + i });
  }
  assert.equal(s.findFree(SUB, now + 50), undefined, 'all held');
  assert.equal(s.findFree(SUB, now + 100.5), '10.99.0.1', 'first hold to expire is first reused');
  s.bind({ subnet: SUB, mac: B, ip: '10.99.0.2', expiresAt: now + 10_000, dynamic: true, now: now + 101 });
  assert.equal(s.byIp('10.99.0.2', now + 200)?.mac, B);
  assert.equal(s.findFree(SUB, now + 200), '10.99.0.1');
  s.offer({ subnet: SUB, mac: A, ip: '10.99.0.1', expiresAt: now + 300, dynamic: true, now: now + 200 });
  assert.equal(s.findFree(SUB, now + 200), '10.99.0.3');
  assert.equal(s.release('10.99.0.1', A, now + 201), true);
  assert.equal(s.byIp('10.99.0.1', now + 201), undefined);
  assert.deepEqual(await s.commit(), [true]);
  assert.equal((await s.list()).length, 1, 'only the bind reached the table');
});

test('run-out rows are reused longest-expired first; one reserved for a host turns static and is skipped', async () => {
  const s = new LeaseStore(openTestStore().leases);
  s.setPools([{ subnet: SUB, ranges: [{ start: '10.99.0.1', end: '10.99.0.3' }] }]);
  const macs = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'] as Mac[];
  const expiry = [300, 100, 200];
  for (const [i, mac] of macs.entries())
    s.bind({ subnet: SUB, mac, ip: `10.99.0.${i + 1}`, expiresAt: expiry[i], dynamic: true, now: 10 });
  assert.equal(s.findFree(SUB, 50), undefined, 'nothing ran out yet');
  assert.equal(s.findFree(SUB, 250), '10.99.0.2');
  assert.equal(
    s.findFree(SUB, 250, (ip) => ip === '10.99.0.2'),
    '10.99.0.3',
    'vetoed: the next one',
  );
  assert.equal(s.findFree(SUB, 1000), '10.99.0.3', '.2 is static now, .3 ran out before .1');
  assert.equal(s.byIp('10.99.0.2', 1000)?.dynamic, false);
  assert.deepEqual(await s.commit(), [true, true, true, true]);
  const reloaded = new LeaseStore(s['writer']);
  await reloaded.load();
  reloaded.setPools([{ subnet: SUB, ranges: [{ start: '10.99.0.1', end: '10.99.0.3' }] }]);
  assert.equal(reloaded.byIp('10.99.0.2', 1000)?.dynamic, false, 'the static mark was committed');
  assert.equal(reloaded.findFree(SUB, 1000), '10.99.0.3');
});

test('DECLINE quarantine ends: the address returns to the pool after declineHoldSec', () => {
  let now = 10_000_000;
  const t = testEngine({
    config: {
      mode: 'authoritative',
      serverIp: '10.99.0.1',
      declineHoldSec: 60,
      subnets: [{ cidr: SUB, ranges: ['10.99.0.100-10.99.0.100'] }],
    },
    now: () => now,
  });
  t.send({ type: 1, mac: A });
  t.send({ type: 3, mac: A, opts: [sid('10.99.0.1'), reqIp('10.99.0.100')] });
  t.send({ type: 4, mac: A, opts: [sid('10.99.0.1'), reqIp('10.99.0.100')] });
  assert.match(t.send({ type: 1, mac: B }).drop!, /exhausted/);
  now += 61_000;
  assert.equal(t.send({ type: 1, mac: B }).reply.p.yiaddr, '10.99.0.100');
});

test('a MAC bound to a second address gives the first back, in memory and in the table; a reload agrees', async () => {
  const store = openTestStore();
  const s = new LeaseStore(store.leases);
  s.setPools([{ subnet: SUB, ranges: [{ start: '10.99.0.1', end: '10.99.0.9' }] }]);
  s.bind({ subnet: SUB, mac: A, ip: '10.99.0.1', expiresAt: 5000, dynamic: true, now: 10 });
  assert.deepEqual(await s.commit(), [true]);
  s.bind({ subnet: SUB, mac: A, ip: '10.99.0.2', expiresAt: 6000, dynamic: true, now: 20 });
  assert.equal(s.byIp('10.99.0.1', 30)?.mac, '');
  assert.equal(s.byMac(A, SUB, 30)?.ip, '10.99.0.2');
  assert.deepEqual(await s.commit(), [true]);
  const row = await store.leases.byIp('10.99.0.1');
  assert.equal(row?.mac, '');
  assert.equal(row?.expiresAt, 20, 'free from the moment A moved');
  const again = new LeaseStore(store.leases);
  await again.load();
  assert.equal(again.byMac(A, SUB, 30)?.ip, '10.99.0.2');
  assert.equal(again.byIp('10.99.0.1', 30)?.state, 'released');
});
