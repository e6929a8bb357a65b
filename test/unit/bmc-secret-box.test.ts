// BMC passwords at rest: sealed with bmc.key (0600), bound to the host, never stored in clear.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadBmcKey, secretBox } from '../../src/bmc/secret-box.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Mac } from '../../src/net/mac.ts';

test('bmc.key is made 0600 once and kept; a damaged one is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-bmckey-'));
  try {
    const old = process.umask(0);
    const k1 = loadBmcKey(dir);
    process.umask(old);
    assert.equal(statSync(join(dir, 'bmc.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadBmcKey(dir), k1);
    writeFileSync(join(dir, 'bmc.key'), 'nope\n');
    assert.throws(() => loadBmcKey(dir), /bmc\.key is damaged/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('seal/open: authenticated, bound to its context, fresh IV each time', () => {
  const box = secretBox(Buffer.alloc(32, 7));
  const a = box.seal('calvin', '52:54:00:00:00:01');
  assert.notEqual(a, box.seal('calvin', '52:54:00:00:00:01'));
  assert.equal(box.open(a, '52:54:00:00:00:01'), 'calvin');
  assert.throws(() => box.open(a, '52:54:00:00:00:02'), 'a row copied to another host does not open');
  const raw = Buffer.from(a.slice(3), 'base64');
  raw[raw.length - 1] ^= 1;
  assert.throws(() => box.open(`v1:${raw.toString('base64')}`, '52:54:00:00:00:01'));
  assert.throws(() => secretBox(Buffer.alloc(32, 8)).open(a, '52:54:00:00:00:01'), 'another key does not open it');
});

test('the store keeps only ciphertext, hides the password, keeps it when none is sent, cascades on host delete', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-bmcstore-'));
  try {
    const file = join(dir, 'rackboot.db');
    const db = openSqliteStore(file, { dataDir: dir, secret: Buffer.alloc(32), bmcBox: secretBox(loadBmcKey(dir)) });
    const hosts = db.hosts;
    const mac = '52:54:00:00:00:01' as Mac;
    await hosts.insert({ mac, hostname: 'h1', profile: 'p', nameservers: [], params: {} });
    const store = db.bmc;
    const base = { driver: 'redfish' as const, address: 'https://10.0.0.5', username: 'root', verifyTls: true };
    await assert.rejects(store.set(mac, base), /bmc\.password: required/);
    const v = await store.set(mac, { ...base, password: 'Sup3r-Secret-Pw' });
    assert.equal(v.passwordSet, true);
    assert.ok(!JSON.stringify(v).includes('Sup3r'));
    assert.ok(!JSON.stringify([...(await store.list()).values()]).includes('Sup3r'));
    await store.set(mac, { ...base, username: 'admin' });
    assert.equal((await store.bmcConfig(mac))?.password, 'Sup3r-Secret-Pw', 'no password sent: the old one stays');
    assert.equal((await store.bmcConfig(mac))?.username, 'admin');
    await db.sql.run('PRAGMA wal_checkpoint(TRUNCATE)');
    assert.ok(!readFileSync(file).includes('Sup3r-Secret-Pw'), 'the database file holds no clear password');
    await hosts.delete(mac);
    assert.equal(await store.get(mac), undefined);
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
