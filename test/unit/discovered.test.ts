// A stranger sending DISCOVERs with made-up MACs cannot grow the discovered table without end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/index.ts';
import { DiscoveredRepo } from '../../src/store/repo/small.ts';
import { parseMac } from '../../src/net/mac.ts';

const mac = (i: number) =>
  parseMac(
    `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  )!;

test('discovered: bounded to maxRows, the least recently seen go first; a pruned machine seen again comes back as new', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rb-discovered-'));
  try {
    const db = openSqliteStore(join(dir, 'rackboot.db'), { dataDir: dir, secret: Buffer.alloc(32) });
    let now = 1_000;
    const store = new DiscoveredRepo(db.sql, 50, () => now);
    await store.seen({ mac: mac(0), arch: 7, ipxe: false });
    for (let i = 1; i <= 1000; i++) {
      now++;
      await store.seen({ mac: mac(i), arch: 0, ipxe: false, uuid: 'u'.repeat(36) });
    }
    now++;
    await store.seen({ mac: mac(0), arch: 7, ipxe: true, ip: '10.99.0.100' }); // the first machine boots again: newest now
    await store.prune();
    const rows = await store.list(10_000);
    assert.equal(rows.length, 50);
    assert.equal(rows[0].mac, mac(0));
    assert.equal(rows[0].firstSeen, now, 'it was pruned as the oldest, then seen again as a new machine');
    assert.equal(rows[0].ip, '10.99.0.100');
    assert.equal(rows[1].mac, mac(1000));
    assert.equal(rows[1].firstSeen, 2_000);
    assert.ok(!rows.some((r) => r.mac === mac(1)), 'the oldest strangers are gone');
    const total = (await db.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM discovered'))!.n;
    assert.equal(total, 50);
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
