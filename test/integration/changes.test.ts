// The change feed (src/store/repo/changes.ts, the interface in src/store/changes.ts): a second process (the real `rackboot` CLI on the same data dir)
// adds, builds and cancels hosts, and the feed of this process hears each within a second; token expiry
// and deletes are changes too; a backlog larger than the table keeps says "resync" instead of lying.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeEnv, REPO, type TestEnv } from '../support/core.ts';
import type { Change } from '../../src/store/changes.ts';
import { TableChangeFeed } from '../../src/store/repo/changes.ts';
import type { Mac } from '../../src/net/mac.ts';

const BIN = join(REPO, 'bin/rackboot.mjs');
let env: TestEnv;
let feed: TableChangeFeed;
let seen: { c: Change; at: number }[];
let unsubscribe: () => void;

beforeEach(async () => {
  env = await makeEnv();
  feed = new TableChangeFeed(env.core.store.sql, { pollMs: 100, local: env.core.events });
  seen = [];
  unsubscribe = feed.subscribe((c) => seen.push({ c, at: Date.now() }));
  await feed.ready();
});
afterEach(async () => {
  unsubscribe();
  feed.close();
  await env.cleanup();
});

/** Runs the CLI on the test's data dir; resolves when it exits, with the time it exited. */
function cli(...args: string[]): Promise<{ code: number; out: string; exitedAt: number }> {
  const c = env.config;
  const proc = spawn(
    process.execPath,
    [
      BIN,
      ...args,
      '--data-dir',
      c.dataDir,
      '--profiles-dir',
      c.profilesDir,
      '--tftp-root',
      c.tftpRoot,
      '--images-dir',
      c.imagesDir,
      '--public-url',
      c.publicUrl,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ code: code ?? -1, out, exitedAt: Date.now() })));
}

/** When a change matching `pred` was seen (a change seen before the CLI exited is in time: the commit comes first). */
async function waitFor(pred: (c: Change) => boolean, ms: number, what: string): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = seen.find((s) => pred(s.c));
    if (hit) return hit.at;
    if (Date.now() > deadline)
      assert.fail(`${what}: not seen within ${ms} ms; seen ${JSON.stringify(seen.slice(0, 10).map((s) => s.c))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('hosts imported, built and cancelled by another process reach this one within a second', async () => {
  const csv = join(env.dir, 'rack.csv');
  writeFileSync(csv, 'mac,hostname,profile,rack,position\n52:54:00:cc:00:01,r1n1,rhvh-base,R1,U1\n');
  const imp = await cli('hosts', 'import', csv);
  assert.equal(imp.code, 0, imp.out);
  const hostAt = await waitFor((c) => c.kind === 'host' && c.mac === '52:54:00:cc:00:01', 1000, 'import');
  assert.ok(hostAt - imp.exitedAt < 1000);

  seen = [];
  const build = await cli('hosts', 'build', '52:54:00:cc:00:01');
  assert.equal(build.code, 0, build.out);
  const buildAt = await waitFor((c) => c.kind === 'build' && c.mac === '52:54:00:cc:00:01', 1000, 'build');
  assert.ok(buildAt - build.exitedAt < 1000);
  // The database says so (this env's view hears other processes only through serve's forwarding of the feed).
  assert.equal(await env.core.builds.state('52:54:00:cc:00:01' as Mac), 'build');

  seen = [];
  const cancel = await cli('hosts', 'cancel', '52:54:00:cc:00:01');
  assert.equal(cancel.code, 0, cancel.out);
  const cancelAt = await waitFor((c) => c.kind === 'build' && c.mac === '52:54:00:cc:00:01', 1000, 'cancel');
  assert.ok(cancelAt - cancel.exitedAt < 1000);
});

test('a token passing its expires_at is a change, and so is a deleted host', async () => {
  const mac = '52:54:00:cc:00:02' as Mac;
  await env.core.hosts.insert({ mac, hostname: 'r1n2', profile: 'rhvh-base', nameservers: [], params: {} });
  await waitFor((c) => c.kind === 'host' && c.mac === mac, 1000, 'insert');
  const { build } = await env.core.builds.start(mac, 600);
  await waitFor((c) => c.kind === 'build' && c.mac === mac, 1000, 'start');
  const expiredAt = await waitFor((c) => c.kind === 'expired' && c.mac === mac, 1500, 'expiry');
  assert.ok(expiredAt >= build.expiresAt, 'not before the token expired');
  assert.ok(expiredAt - build.expiresAt < 1000, `within a second of expiry (${expiredAt - build.expiresAt} ms)`);
  assert.equal(seen.filter((s) => s.c.kind === 'expired').length, 1, 'announced once');
  await env.core.hosts.delete(mac);
  await waitFor((c) => c.kind === 'host.deleted' && c.mac === mac, 1000, 'delete');
});

test('events of this process reach listeners at once, without a poll', () => {
  env.core.events.append({ mac: '52:54:00:cc:00:03' as Mac, type: 'dhcp.discover' });
  assert.deepEqual(
    seen.map((s) => s.c),
    [{ kind: 'event', mac: '52:54:00:cc:00:03' }],
  );
});

test('more changes between two polls than the table keeps: one resync, then the feed goes on', async () => {
  // One change read first: on an empty table a first id above 1 is taken for a rolled-back insert, not a loss.
  await env.core.store.sql.run("INSERT INTO changes (at, kind, mac) VALUES (0, 'host', 'first')");
  await waitFor((c) => c.mac === 'first', 1000, 'the first change');
  seen = [];
  await env.core.store.sql.tx(async (sql) => {
    for (let i = 0; i < 10_050; i++)
      await sql.run("INSERT INTO changes (at, kind, mac) VALUES (0, 'host', ?)", [`m${i}`]);
  });
  const count = await env.core.store.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM changes');
  assert.equal(Number(count!.n), 10_000, 'bounded');
  await waitFor((c) => c.kind === 'resync', 1000, 'resync');
  assert.ok(!seen.some((s) => s.c.mac.startsWith('m')), 'the backlog is one resync, not 10,000 changes');
  seen = [];
  await env.core.hosts.insert({
    mac: '52:54:00:cc:00:04' as Mac,
    hostname: 'r1n4',
    profile: 'rhvh-base',
    nameservers: [],
    params: {},
  });
  await waitFor((c) => c.kind === 'host' && c.mac === '52:54:00:cc:00:04', 1000, 'after resync');
  assert.ok(!seen.some((s) => s.c.kind === 'resync'), 'only one resync');
});

test('no subscriber, no polling; a write made while nobody listened is not replayed to a later subscriber', async () => {
  unsubscribe();
  await env.core.hosts.insert({
    mac: '52:54:00:cc:00:05' as Mac,
    hostname: 'r1n5',
    profile: 'rhvh-base',
    nameservers: [],
    params: {},
  });
  const late: Change[] = [];
  const off = feed.subscribe((c) => late.push(c));
  await feed.ready();
  await feed.poll();
  assert.deepEqual(late, []);
  off();
  unsubscribe = () => {};
});
