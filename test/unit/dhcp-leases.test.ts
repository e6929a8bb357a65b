import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDb } from '../../src/store/db.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseStore } from '../../src/dhcp/leases.ts';
import type { Mac } from '../../src/net/mac.ts';
import { reqIp, sid, testEngine } from '../fixtures/dhcp/helpers.ts';

const A = '52:54:00:00:01:01' as Mac,
  B = '52:54:00:00:01:02' as Mac;
const SUB = '10.99.0.0/24';

test('tables are created idempotently; every per-packet query is an index seek, never a scan', () => {
  const db = openDb(':memory:');
  new LeaseStore(db);
  new LeaseStore(db);
  const plans = [
    'SELECT * FROM dhcp_leases WHERE ip = 1',
    "SELECT * FROM dhcp_leases WHERE mac = 'x' AND subnet = 'y' ORDER BY updated_at DESC LIMIT 1",
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

test('leases survive a restart (real SQLite file, WAL); offer holds do not need to', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbdhcp-leases-'));
  try {
    const file = join(dir, 'leases.db');
    const config = {
      mode: 'authoritative' as const,
      serverIp: '10.99.0.1',
      subnets: [{ cidr: SUB, ranges: ['10.99.0.100-10.99.0.110'] }],
    };
    let db = openDb(file);
    db.pragma('journal_mode = WAL');
    let t = testEngine({ config, db });
    const o = t.send({ type: 1, mac: A }).reply;
    t.send({ type: 3, mac: A, opts: [sid('10.99.0.1'), reqIp(o.p.yiaddr)] });
    const offerB = t.send({ type: 1, mac: B }).reply.p.yiaddr;
    assert.equal(offerB, '10.99.0.101');
    db.close();
    db = openDb(file);
    t = testEngine({ config, db });
    assert.equal(t.leases.byIp('10.99.0.100')?.mac, A);
    assert.equal(t.leases.byIp('10.99.0.100')?.state, 'bound');
    // B's offer hold died with the process: its REQUEST is confirmed from the free pool (RFC 2131 lets the server decide).
    const ackB = t.send({ type: 3, mac: B, opts: [sid('10.99.0.1'), reqIp(offerB)] }).reply;
    assert.equal(ackB.type, 5);
    assert.equal(t.send({ type: 1, mac: '52:54:00:00:01:03' }).reply.p.yiaddr, '10.99.0.102');
    assert.equal(t.send({ type: 1, mac: A }).reply.p.yiaddr, '10.99.0.100', 'A keeps its address');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('offer holds expire in order and their addresses are reused before stored leases', () => {
  const db = openDb(':memory:');
  const s = new LeaseStore(db);
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
