// Timeline bounds (issue #13): every field cut, the detail JSON bounded, a retention by age and by count
// per host. The reproduction sends 2,000 boot-path requests with huge headers through the real app.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { databaseBytes } from '../../src/store/db.ts';
import { boundDetail, cutUtf8, type EventLimits } from '../../src/store/events.ts';
import { openSqliteStore, type Sql } from '../../src/store/index.ts';
import type { Mac } from '../../src/net/mac.ts';
import { makeEnv, tempDir, type TestEnv } from '../support/core.ts';
import { appFor } from '../support/web-env.ts';

let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

const A = '52:54:00:aa:00:01' as Mac;
const B = '52:54:00:aa:00:02' as Mac;

function freshLog(limits: Partial<EventLimits> = {}, now: () => number = Date.now) {
  const dir = tempDir();
  const store = openSqliteStore(join(dir, 'events.db'), {
    dataDir: dir,
    secret: Buffer.alloc(32),
    now,
    eventLimits: limits,
  });
  return { db: store.sql, log: store.events };
}
const rows = async (db: Sql, mac: string) =>
  (await db.get<{ n: number }>('SELECT COUNT(*) n FROM events WHERE mac = ?', [mac]))!.n;

test('fields are cut on a character boundary; the worst values are stored bounded and read back as valid JSON', async () => {
  const { db, log } = freshLog();
  const huge = 'é'.repeat(50_000) + '\r\n\u2028\u2029\x00\x1b[31m';
  log.append({
    mac: A,
    type: huge,
    clientIp: huge,
    status: huge,
    detail: { path: huge, range: huge, n: 1e308, nested: { deep: [huge, huge] }, [huge]: 1 },
  });
  await log.flush();
  const r = (await db.get<{ type: string; client_ip: string; status: string; detail: string }>(
    'SELECT type, client_ip, status, detail FROM events',
  ))!;
  assert.ok(Buffer.byteLength(r.type) <= 64, `type ${Buffer.byteLength(r.type)}`);
  assert.ok(Buffer.byteLength(r.client_ip) <= 64);
  assert.ok(Buffer.byteLength(r.status) <= 256);
  assert.ok(Buffer.byteLength(r.detail) <= 4096, `detail ${Buffer.byteLength(r.detail)}`);
  assert.doesNotMatch(r.type + r.status, /\uFFFD/, 'no character split in half');
  const back = (await log.timeline(A))[0]!;
  assert.match(back.status!, /\[cut: \d+ bytes\]$/);
  assert.equal(back.detail!.n, 1e308);
  assert.equal(cutUtf8('short', 10), 'short');
  assert.equal(Buffer.byteLength(cutUtf8('€'.repeat(100), 40)) <= 40, true);
});

test('a failed build keeps the newest lines of its syslog tail within the detail bound', () => {
  const tail = Array.from({ length: 40 }, (_, i) => `line ${i} ` + 'x'.repeat(150));
  const json = boundDetail({ syslogTail: tail }, 4096);
  assert.ok(Buffer.byteLength(json) <= 4096);
  const kept = (JSON.parse(json) as { syslogTail: string[] }).syslogTail;
  assert.ok(kept.length >= 20, `${kept.length} lines kept`);
  assert.match(kept.at(-1)!, /^line 39 /, 'the last line, the one that says why, stays');
  assert.deepEqual(JSON.parse(boundDetail({ a: 1 }, 512)), { a: 1 });
  assert.deepEqual(
    JSON.parse(boundDetail(Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])), 512)),
    { truncated: true, bytes: 5281 },
  );
});

test('retention: at most maxPerHost per host (pruned while writing, exact after prune), and nothing older than maxAge', async () => {
  let clock = Date.now();
  const { db, log } = freshLog({ maxPerHost: 300, maxAgeMs: 86_400_000, burstPerHost: 1_000_000 }, () => clock);
  for (let i = 0; i < 1000; i++) log.append({ mac: A, type: 'pxelinux.config', status: String(i) });
  log.append({ mac: B, type: 'build.start', at: clock - 2 * 86_400_000 });
  log.append({ mac: B, type: 'build.built' });
  await log.flush();
  assert.ok((await rows(db, A)) <= 300 + 100, `pruned in the write batch: ${await rows(db, A)}`);
  await log.prune();
  assert.equal(await rows(db, A), 300);
  assert.deepEqual(
    (await log.timeline(A, 1)).map((e) => e.status),
    ['999'],
    'the newest stay',
  );
  assert.deepEqual(
    (await log.timeline(B)).map((e) => e.type),
    ['build.built'],
    'the two-day-old event is gone, the new one stays',
  );
  // Later prunes look only at hosts with events since the last one (below the in-batch threshold here).
  for (let i = 0; i < 50; i++) log.append({ mac: A, type: 'pxelinux.config', status: `late ${i}` });
  await log.flush();
  assert.equal(await rows(db, A), 350);
  await log.prune();
  assert.equal(await rows(db, A), 300);
  assert.deepEqual(
    (await log.timeline(A, 1)).map((e) => e.status),
    ['late 49'],
  );
  clock += 2 * 86_400_000;
  await log.prune();
  assert.equal((await rows(db, A)) + (await rows(db, B)), 0);
  // The prunes use the indexes: no full scan of the table.
  const plan = async (sql: string) => JSON.stringify(await db.all(`EXPLAIN QUERY PLAN ${sql}`));
  assert.match(await plan('DELETE FROM events WHERE at < 1'), /events_at/);
  assert.match(
    await plan(
      "DELETE FROM events WHERE mac = 'x' AND id <= (SELECT id FROM events WHERE mac = 'x' ORDER BY id DESC LIMIT 1 OFFSET 5)",
    ),
    /events_mac/,
  );
});

test('reproduction: 2,000 boot-path requests with 8 KB headers add a bounded amount to the database', async (t) => {
  env = await makeEnv();
  const e = env;
  mkdirSync(e.config.tftpRoot, { recursive: true });
  writeFileSync(join(e.config.tftpRoot, 'pxelinux.0'), Buffer.alloc(100, 1));
  await e.core.hosts.insert({
    mac: A,
    hostname: 'rhvh-huge',
    profile: 'rhvh-base',
    ip: '127.0.0.1',
    netmask: '255.0.0.0',
    gateway: '127.0.0.254',
    nameservers: [],
    params: {},
  });
  const app = appFor(e, 'x');
  const server = createServer({ maxHeaderSize: 64 * 1024 }, app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const checkpoint = () => e.core.store.sql.all('PRAGMA wal_checkpoint(TRUNCATE)');
  await e.core.events.flush();
  await checkpoint();
  const before = databaseBytes(e.config.dataDir);
  let elapsed: number;
  const ranges = Array.from({ length: 1200 }, (_, i) => `${i}-${i}`).join(',');
  // Each request's range starts differently, so none is a repeat of the one before (those are only counted).
  let sent = 0;
  const range = () => `bytes=${sent++}-${sent},${ranges}`;
  assert.ok(range().length > 8000);
  try {
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 8 });
    const one = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { port, host: '127.0.0.1', path: '/tftp/pxelinux.0', agent, headers: { Range: range() } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const t0 = Date.now();
    for (let i = 0; i < 2000; i += 8) await Promise.all(Array.from({ length: 8 }, one));
    elapsed = (Date.now() - t0) / 1000;
    agent.destroy();
  } finally {
    await new Promise((r) => server.close(r));
  }
  await e.core.events.flush();
  const stored = (await e.core.store.sql.get<{ n: number; bytes: number }>(
    "SELECT COUNT(*) n, SUM(LENGTH(detail) + LENGTH(type) + IFNULL(LENGTH(status), 0)) bytes FROM events WHERE type = 'http.tftpfile'",
  ))!;
  // The host's burst (100), then its rate (2/s) for as long as the requests ran; the rest is counted, not stored.
  const { burstPerHost, ratePerHost } = e.core.events.limits;
  assert.ok(stored.n >= burstPerHost && stored.n <= burstPerHost + ratePerHost * elapsed + 1, `stored ${stored.n}`);
  assert.ok(stored.bytes / stored.n < 600, `bytes per event: ${stored.bytes / stored.n}`);
  await checkpoint();
  const grown = databaseBytes(e.config.dataDir) - before;
  t.diagnostic(
    `2000 requests: ${Math.round(stored.bytes / stored.n)} bytes per event stored, database +${grown} bytes`,
  );
  assert.ok(grown < 2 * 1024 * 1024, `database grew ${grown} bytes (was +28 MB before the bounds)`);
});

test('a host flooding request-driven events is cut to its burst then its rate; state changes always pass; the drop is summarized', async () => {
  let now = 1_000_000;
  const { db, log } = freshLog({ burstPerHost: 50, ratePerHost: 10, repeatWindowMs: 0 }, () => now);
  for (let i = 0; i < 1000; i++) log.append({ mac: A, type: 'kickstart.fetched', status: '200' });
  log.append({ mac: A, type: 'build.built' });
  for (let i = 0; i < 20; i++) log.append({ mac: B, type: 'tftp.sent' });
  now += 2000; // two seconds at 10/s: 20 more
  for (let i = 0; i < 100; i++) log.append({ mac: A, type: 'kickstart.fetched', status: '200' });
  await log.flush();
  const kinds = async (mac: string) =>
    (
      await db.all<{ type: string; n: number }>('SELECT type, COUNT(*) n FROM events WHERE mac = ? GROUP BY type', [
        mac,
      ])
    )
      .map((r) => `${r.type}=${r.n}`)
      .sort();
  assert.deepEqual(await kinds(A), ['build.built=1', 'kickstart.fetched=70']);
  assert.deepEqual(await kinds(B), ['tftp.sent=20'], 'another host has its own bucket');
  // The summary is written a second after the first drop: wait for it (bounded), then check what it says.
  const deadline = Date.now() + 5000;
  let summary: { status: string; detail: string } | undefined;
  while (!summary && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    await log.flush();
    summary = await db.get("SELECT status, detail FROM events WHERE mac = ? AND type = 'events.suppressed'", [A]);
  }
  assert.ok(summary, 'an events.suppressed event');
  assert.deepEqual(JSON.parse(summary.detail), { count: 1030, byType: { 'kickstart.fetched': 1030 } });
  assert.match(summary.status, /^1030 more events over 10\/s not recorded$/);
  assert.equal(await rows(db, B), 20, 'no summary for a host that lost nothing');
});

test('a script re-fetching a kickstart: one row per repeat window, the repeats counted in the summary', async () => {
  let now = 5_000_000;
  const { db, log } = freshLog({ repeatWindowMs: 5000 }, () => now);
  const fetched = (clientIp = '10.0.0.5') =>
    log.append({ mac: A, buildId: 7, type: 'kickstart.fetched', clientIp, status: '200', bytes: 4179 });
  for (let i = 0; i < 60; i++, now += 100) fetched(); // 12 a second for 6 s
  fetched('10.0.0.6'); // another address is another event
  log.append({ mac: A, buildId: 7, type: 'build.built' });
  log.append({ mac: A, buildId: 7, type: 'build.built' }); // state events are never repeats
  const deadline = Date.now() + 5000;
  let summary: { status: string; detail: string } | undefined;
  while (!summary && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    await log.flush();
    summary = await db.get("SELECT status, detail FROM events WHERE mac = ? AND type = 'events.suppressed'", [A]);
  }
  const kept = await db.all<{ at: number; client_ip: string | null; type: string }>(
    "SELECT at, client_ip, type FROM events WHERE mac = ? AND type <> 'events.suppressed' ORDER BY id",
    [A],
  );
  assert.deepEqual(
    kept.map((r) => `${r.type} ${r.client_ip ?? ''} +${r.at - 5_000_000}`),
    [
      'kickstart.fetched 10.0.0.5 +0',
      'kickstart.fetched 10.0.0.5 +5000',
      'kickstart.fetched 10.0.0.6 +6000',
      'build.built  +6000',
      'build.built  +6000',
    ],
  );
  assert.ok(summary, 'an events.suppressed event');
  assert.deepEqual(JSON.parse(summary.detail), { count: 58, byType: { 'kickstart.fetched': 58 }, repeats: 58 });
  assert.equal(summary.status, '58 repeats not recorded');
});
