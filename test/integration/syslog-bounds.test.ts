// Syslog bounds (issue #13): TCP connections per source address, lines only for builds in progress,
// an age retention. Real sockets on loopback, real SQLite; the last test runs the whole server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import http from 'node:http';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';
import type { Mac } from '../../src/net/mac.ts';
import { databaseBytes, openDb } from '../../src/store/db.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { startSyslogReceiver, type SyslogDropReason } from '../../src/ops/syslog-server.ts';
import { startRackboot } from '../../src/serve.ts';
import { databaseSizeFinding } from '../../src/images/doctor.ts';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';

const MAC = '52:54:00:5e:00:01' as Mac;

async function receiver(
  resolve: (ip: string) => { mac: Mac; buildId: number; finished?: boolean } | undefined,
  extra: { maxConnectionsPerSource?: number; maxAgeMs?: number } = {},
) {
  const dir = tempDir();
  const opened = openSqliteStore(join(dir, 's.db'), {
    dataDir: dir,
    secret: Buffer.alloc(32),
    syslogLimits: { ringLines: 1000, maxTotalLines: 100_000, maxQueued: 10_000, maxAgeMs: extra.maxAgeMs },
  });
  const store = opened.syslog;
  const drops: SyslogDropReason[] = [];
  const rx = await startSyslogReceiver({
    address: '127.0.0.1',
    port: 0,
    store,
    log: silentLogger(),
    resolve,
    ratePerSec: 1000,
    burst: 1000,
    maxLineBytes: 4096,
    maxConnectionsPerSource: extra.maxConnectionsPerSource,
    onDrop: (r) => drops.push(r),
  });
  return {
    sql: opened.sql,
    store,
    // Closing the receiver flushes its lines; then the store.
    rx: {
      ...rx,
      close: async () => {
        await rx.close();
        await opened.close();
      },
    },
    drops,
  };
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function tcp(port: number, from: string) {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress: from });
  let closed = false;
  sock.on('error', () => {});
  sock.on('close', () => {
    closed = true;
  });
  return { sock, closed: () => closed };
}

test('one source holds at most 4 TCP connections; others still get theirs; the excess is counted', async () => {
  const { rx, drops, store } = await receiver(() => ({ mac: MAC, buildId: 1 }));
  try {
    const mine = Array.from({ length: 7 }, () => tcp(rx.port, '127.0.0.2'));
    await waitFor(() => mine.filter((c) => c.closed()).length === 3, 3000, 'three closed');
    assert.equal(rx.connections(), 4);
    assert.equal(drops.filter((d) => d === 'too-many-connections-from-source').length, 3);
    const other = tcp(rx.port, '127.0.0.3');
    await waitFor(() => rx.connections() === 5, 3000, 'another source gets in');
    other.sock.end('<14>anaconda: from another source\n');
    await waitFor(async () => (await store.count(1)) === 1, 3000, 'its line is kept');
    await waitFor(() => rx.connections() === 4, 3000, 'the other source closed');
    // A held connection that closes frees its place for the same source.
    mine.find((c) => !c.closed())!.sock.destroy();
    await waitFor(() => rx.connections() === 3, 3000, 'freed');
    const again = tcp(rx.port, '127.0.0.2');
    again.sock.write('<14>anaconda: on the freed slot\n');
    await waitFor(async () => (await store.count(1)) === 2, 3000, 'a freed slot is usable again');
    assert.equal(again.closed(), false);
    for (const c of [...mine, again]) c.sock.destroy();
  } finally {
    await rx.close();
  }
});

test('lines for a finished build are dropped and counted; lines for a build in progress are kept', async () => {
  let finished = false;
  const { rx, drops, store } = await receiver(() => ({ mac: MAC, buildId: 7, finished }));
  const s = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => s.bind(0, '127.0.0.2', () => r()));
    s.send('<14>anaconda: installing', rx.port, '127.0.0.1');
    await waitFor(async () => (await store.count(7)) === 1, 3000, 'kept while in progress');
    finished = true;
    await new Promise((r) => setTimeout(r, 1100)); // the receiver caches a source's build for one second
    for (let i = 0; i < 5; i++) s.send('<14>sshd: a login on the installed host', rx.port, '127.0.0.1');
    await waitFor(() => drops.filter((d) => d === 'build-finished').length === 5, 3000, 'five dropped');
    assert.equal(await store.count(7), 1);
  } finally {
    s.close();
    await rx.close();
  }
});

test('retention: lines older than maxAge are pruned (by the syslog_at index)', async () => {
  const { sql, store, rx } = await receiver(() => undefined, { maxAgeMs: 3_600_000 });
  try {
    const now = Date.now();
    store.append({ buildId: 1, mac: MAC, at: now - 2 * 3_600_000, facility: 1, severity: 6, text: 'old' });
    store.append({ buildId: 1, mac: MAC, at: now, facility: 1, severity: 6, text: 'new' });
    assert.equal(await store.prune(now), 1);
    assert.deepEqual(
      (await store.search({ buildId: 1 })).map((l) => l.text),
      ['new'],
    );
    assert.match(JSON.stringify(await sql.all('EXPLAIN QUERY PLAN DELETE FROM syslog WHERE at < 1')), /syslog_at/);
  } finally {
    await rx.close();
  }
});

test("whole server: a built host's later syslog lines do not join its finished build", async () => {
  const dir = tempDir('rackboot-syslog-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  const syslogPort = await freePort('udp');
  const config = loadConfig(
    {
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': '0',
      'syslog-port': String(syslogPort),
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
    },
    {},
    dir,
  );
  const run = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: 'syslog-bounds-token' });
  const base = `http://127.0.0.1:${run.httpPort}`;
  const call = (
    method: string,
    path: string,
    body?: unknown,
    localAddress?: string,
    extra: Record<string, string> = {},
  ) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        base + path,
        {
          method,
          localAddress,
          agent: false,
          headers: {
            Authorization: 'Bearer syslog-bounds-token',
            ...extra,
            ...(data ? { 'Content-Type': 'application/json' } : {}),
          },
        },
        (res) => {
          let t = '';
          res.on('data', (c) => {
            t += c;
          });
          res.on('end', () => resolve({ status: res.statusCode!, text: t }));
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const s = dgram.createSocket('udp4');
  try {
    assert.equal((await call('POST', '/api/hosts', { mac: MAC, hostname: 'sl1', profile: 'rhvh-base' })).status, 201);
    const b = JSON.parse((await call('POST', `/api/hosts/${MAC}/build`)).text) as {
      kickstartUrl: string;
      builtUrl: string;
      buildId: number;
    };
    assert.equal(
      (
        await call('GET', new URL(b.kickstartUrl).pathname, undefined, '127.0.0.2', {
          'X-RHN-Provisioning-MAC-0': `eth0 ${MAC}`,
        })
      ).status,
      200,
    );
    await new Promise<void>((r) => s.bind(0, '127.0.0.2', () => r()));
    s.send('<14>anaconda: during the install', syslogPort, '127.0.0.1');
    await waitFor(async () => (await run.core.syslog.count(b.buildId)) === 1, 3000, 'install line kept');
    assert.equal((await call('GET', new URL(b.builtUrl).pathname, undefined, '127.0.0.2')).status, 200);
    await new Promise((r) => setTimeout(r, 1100)); // past the receiver's one-second cache of the source's build
    s.send('<14>sshd: after the install', syslogPort, '127.0.0.1');
    const metrics = async () => (await call('GET', '/metrics')).text;
    const end = Date.now() + 3000;
    while (!/rackboot_syslog_dropped_total\{reason="build-finished",transport="udp"\} 1/.test(await metrics())) {
      if (Date.now() > end) throw new Error('build-finished drop not counted');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await run.core.syslog.count(b.buildId), 1, 'the finished build keeps only its install lines');
    const size = Number(/^rackboot_db_bytes (\d+)$/m.exec(await metrics())?.[1]);
    // The WAL grows between the scrape and this read only by what the server wrote meanwhile.
    assert.ok(size > 4096 && Math.abs(size - databaseBytes(config.dataDir)) < 1024 * 1024, `rackboot_db_bytes ${size}`);
  } finally {
    s.close();
    await run.close();
  }
});

test('doctor: the database size line warns above the threshold and says how to shrink', () => {
  const dir = tempDir('rackboot-dbsize-');
  const db = openDb(join(dir, 'rackboot.db'));
  db.close();
  const bytes = databaseBytes(dir);
  assert.ok(bytes > 0);
  assert.equal(databaseSizeFinding(bytes, dir).level, 'ok');
  const warn = databaseSizeFinding(3 * 1024 ** 3, dir);
  assert.equal(warn.level, 'warn');
  assert.match(warn.what, /3072\.0 MiB, above 2048\.0 MiB/);
  assert.match(warn.fix!, /events\.maxPerHost.*VACUUM/);
});
