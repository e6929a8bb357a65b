// Operations, in process on loopback: installer logs by source IP (UDP and TCP), search, the failed
// event's log tail, /metrics, /readyz; bad input at the syslog port, the callbacks and the API; and a
// grep of the whole run's log for tokens and secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import http from 'node:http';
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { REPO, tempDir } from '../support/core.ts';

const ADMIN = 'ops-test-admin-token-0123456789';

async function freeUdpPort(): Promise<number> {
  for (;;) {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    s.close();
    // the syslog receiver takes TCP on the same port
    const free = await new Promise<boolean>((r) => {
      const t = net.createServer();
      t.once('error', () => r(false));
      t.listen(port, '127.0.0.1', () => t.close(() => r(true)));
    });
    if (free) return port;
  }
}

interface Env {
  run: Running;
  base: string;
  logs: () => string;
  dir: string;
  syslogPort: number;
}

async function startEnv(extra: Record<string, string> = {}): Promise<Env> {
  const dir = tempDir('rackboot-ops-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot/rhvh-4.3'), { recursive: true });
  writeFileSync(join(dir, 'tftpboot/rhvh-4.3/vmlinuz'), randomBytes(300_000));
  const syslogPort = await freeUdpPort();
  const tftpPort = await freeUdpPort();
  const config = loadConfig(
    {
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': String(tftpPort),
      'syslog-port': String(syslogPort),
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
      'log-level': 'debug',
      ...extra,
    },
    {},
    dir,
  );
  let out = '';
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(c, _e, cb) {
        out += c;
        cb();
      },
    }),
  });
  const run = await startRackboot(config, log, { RACKBOOT_ADMIN_TOKEN: ADMIN });
  return { run, base: `http://127.0.0.1:${run.httpPort}`, logs: () => out, dir, syslogPort };
}

interface Res {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}
function request(
  base: string,
  method: string,
  path: string,
  opts: { body?: Buffer | string; headers?: Record<string, string>; localAddress?: string; auth?: boolean } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const headers: Record<string, string> = {
      ...(opts.auth ? { Authorization: `Bearer ${ADMIN}` } : {}),
      ...opts.headers,
    };
    if (opts.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(opts.body));
    const req = http.request(
      { host: u.hostname, port: u.port, method, path, headers, localAddress: opts.localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString(), headers: res.headers }),
        );
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
const api = (e: Env, method: string, path: string, body?: unknown) =>
  request(e.base, method, `/api${path}`, {
    auth: true,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
  });

async function sendUdp(from: string, port: number, lines: (string | Buffer)[]): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  for (const [i, l] of lines.entries()) {
    await new Promise<void>((r) => s.send(l, port, '127.0.0.1', () => r()));
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5)); // paced: a full socket buffer drops in the kernel, which is not what this tests
  }
  s.close();
}
async function sendTcp(from: string, port: number, data: Buffer | string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port, localAddress: from }, () => c.end(data));
    c.on('close', () => resolve());
    c.on('error', reject);
  });
}
async function waitFor<T>(f: () => Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function hostInBuild(e: Env, mac: string, hostname: string, from: string) {
  assert.equal((await api(e, 'POST', '/hosts', { mac, hostname, profile: 'rhvh-base' })).status, 201);
  const b = JSON.parse((await api(e, 'POST', `/hosts/${mac}/build`)).text) as {
    kickstartUrl: string;
    builtUrl: string;
    failedUrl: string;
    eventsUrl: string;
    buildId: number;
  };
  // As Anaconda does with inst.ks.sendmac: the kickstart is given only to a request that names the host's MAC or comes from its address.
  const ks = await request(e.base, 'GET', new URL(b.kickstartUrl).pathname, {
    localAddress: from,
    headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${mac}` },
  });
  assert.equal(ks.status, 200);
  return { ...b, token: new URL(b.kickstartUrl).pathname.split('/').pop()! };
}

test('installer logs: attached by source IP over UDP and TCP, searchable; the failed event carries the tail; side by side with the failure log', async () => {
  const e = await startEnv();
  try {
    const a = await hostInBuild(e, '52:54:00:0a:00:01', 'inst-a', '127.0.0.2');
    const b = await hostInBuild(e, '52:54:00:0a:00:02', 'inst-b', '127.0.0.3');
    const cfg = await request(e.base, 'GET', '/tftp/pxelinux.cfg/01-52-54-00-0a-00-01', { localAddress: '127.0.0.2' });
    assert.match(cfg.text, new RegExp(`inst\\.syslog=127\\.0\\.0\\.1:${e.syslogPort} `));

    await sendUdp('127.0.0.2', e.syslogPort, [
      '<30>May  1 10:00:00 localhost anaconda[1234]: Running pre-installation scripts',
      "<165>1 2024-05-01T10:00:01Z localhost program 99 - - Running... ['mkfs.xfs', '/dev/sda1']",
      '<11>May  1 10:00:02 localhost storage: DeviceCreateError: device sda1 is too small',
    ]);
    // rsyslog forwards Anaconda's log over TCP ("@@host:port"): LF framing and octet counting
    await sendTcp(
      '127.0.0.3',
      e.syslogPort,
      '<30>May  1 10:00:00 localhost anaconda: B one\n<30>May  1 10:00:00 localhost anaconda: B two\n33 <30>May  1 10:00:00 h anaconda: 3<30>May  1 10:00:00 h anaconda: last, no LF',
    );
    await sendUdp('127.0.0.9', e.syslogPort, ['<30>from a machine we do not know']);

    const la = await waitFor(async () => {
      const r = JSON.parse((await api(e, 'GET', '/hosts/52:54:00:0a:00:01/logs')).text) as {
        buildId: number;
        lines: { text: string; severity: string; app?: string }[];
      };
      return r.lines.length === 3 ? r : undefined;
    }, 'host A lines');
    assert.equal(la.buildId, a.buildId);
    assert.deepEqual(
      la.lines.map((l) => l.app),
      ['anaconda', 'program', 'storage'],
    );
    const lb = await waitFor(async () => {
      const r = JSON.parse((await api(e, 'GET', '/hosts/52:54:00:0a:00:02/logs')).text) as {
        lines: { text: string }[];
      };
      return r.lines.length === 4 ? r : undefined;
    }, 'host B lines');
    assert.deepEqual(
      lb.lines.map((l) => l.text),
      ['B one', 'B two', '3', 'last, no LF'],
    );
    const found = JSON.parse((await api(e, 'GET', '/hosts/52:54:00:0a:00:01/logs?q=too%20SMALL')).text) as {
      lines: { text: string; severity: string }[];
    };
    assert.deepEqual(
      found.lines.map((l) => [l.severity, l.text]),
      [['err', 'DeviceCreateError: device sda1 is too small']],
    );
    assert.equal(
      (JSON.parse((await api(e, 'GET', '/hosts/52:54:00:0a:00:01/logs?severity=err')).text) as { lines: unknown[] })
        .lines.length,
      1,
    );
    const asText = await api(e, 'GET', '/hosts/52:54:00:0a:00:01/logs?format=text');
    assert.match(asText.text, /Z err storage: DeviceCreateError/);

    const failed = await request(e.base, 'POST', `/failed/${a.token}`, {
      body: 'ks.post.log: nodectl init failed\n',
      headers: { 'Content-Type': 'text/plain' },
      localAddress: '127.0.0.2',
    });
    assert.equal(failed.status, 200);
    const view = JSON.parse((await api(e, 'GET', '/hosts/52:54:00:0a:00:01')).text) as {
      state: string;
      events: { type: string; detail?: { syslogTail?: string[] } }[];
    };
    assert.equal(view.state, 'failed');
    const ev = view.events.find((x) => x.type === 'build.failed')!;
    assert.equal(ev.detail?.syslogTail?.length, 3);
    assert.match(ev.detail!.syslogTail![2], /err storage: DeviceCreateError/);
    const side = JSON.parse((await api(e, 'GET', `/hosts/52:54:00:0a:00:01/builds/${a.buildId}/logs`)).text) as {
      status: string;
      failureLog: string;
      syslog: { text: string }[];
    };
    assert.equal(side.status, 'failed');
    assert.equal(side.failureLog, 'ks.post.log: nodectl init failed\n');
    assert.equal(side.syslog.length, 3);

    assert.equal((await request(e.base, 'GET', `/built/${b.token}`, { localAddress: '127.0.0.3' })).status, 200);
    const ready = await request(e.base, 'GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(Object.keys(JSON.parse(ready.text).checks).sort(), [
      'dhcp',
      'http',
      'profiles',
      'store',
      'syslog',
      'tftp',
    ]);

    const curl = !spawnSync('curl', ['--version']).error;
    if (curl) {
      // not spawnSync: the TFTP server runs in this process and must keep answering
      await new Promise<void>((resolve, reject) =>
        execFile(
          'curl',
          ['-sS', '--max-time', '10', '-o', '/dev/null', `tftp://127.0.0.1:${e.run.tftpPort}/rhvh-4.3/vmlinuz`],
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    }
    const m = await request(e.base, 'GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'] ?? '', /text\/plain/);
    const metric = (re: RegExp) => {
      const x = re.exec(m.text);
      return x ? Number(x[1]) : undefined;
    };
    assert.equal(metric(/^rackboot_syslog_lines_total\{transport="udp"\} (\d+)/m), 3);
    assert.equal(metric(/^rackboot_syslog_lines_total\{transport="tcp"\} (\d+)/m), 4);
    assert.equal(metric(/^rackboot_syslog_dropped_total\{reason="unknown-source",transport="udp"\} (\d+)/m), 1);
    assert.equal(metric(/^rackboot_http_requests_total\{route="\/ks\/:token",method="GET",status="200"\} (\d+)/m), 2);
    assert.ok(
      metric(/^rackboot_http_requests_total\{route="\/api\/hosts\/:mac\/logs",method="GET",status="200"\} (\d+)/m)! >=
        5,
    );
    assert.equal(metric(/^rackboot_builds\{state="failed"\} (\d+)/m), 1);
    assert.equal(metric(/^rackboot_builds\{state="built"\} (\d+)/m), 1);
    assert.equal(metric(/^rackboot_build_duration_seconds_count\{outcome="failed"\} (\d+)/m), 1);
    assert.ok(metric(/^rackboot_kickstart_render_seconds_count (\d+)/m)! >= 4, 'start probes and fetches are timed');
    assert.ok(metric(/^nodejs_eventloop_lag_seconds (\S+)/m) !== undefined);
    assert.match(m.text, /^rackboot_active_transfers\{protocol="tftp"\} 0/m);
    if (curl) {
      assert.equal(metric(/^rackboot_tftp_transfers_total\{outcome="sent"\} (\d+)/m), 1);
      assert.equal(metric(/^rackboot_tftp_bytes_total (\d+)/m), 300_000);
      assert.match(m.text, /^rackboot_tftp_retransmits_total 0/m);
    }
    assert.doesNotMatch(
      m.text,
      /rackboot_http_requests_total\{route="\/api\/hosts\/52/,
      'routes are patterns, never paths',
    );

    await e.run.close();
    const logs = e.logs();
    assert.ok(logs.length > 1000);
    for (const secret of [a.token, b.token, ADMIN, a.token.slice(6, 20), '$6$f3jJz.m12KbiZn5A'])
      assert.ok(!logs.includes(secret), `the log holds a secret: ${secret.slice(0, 8)}…`);
    // every line about a build names its host
    for (const line of logs.split('\n').filter(Boolean)) {
      const o = JSON.parse(line) as { buildId?: number; mac?: string };
      if (o.buildId !== undefined) assert.ok(o.mac, `a line with a buildId but no mac: ${line}`);
    }
  } finally {
    await e.run.close();
  }
});

test('bad input: syslog floods and garbage, malformed callbacks and API requests get clear 4xx and nothing crashes', async () => {
  const e = await startEnv();
  try {
    const a = await hostInBuild(e, '52:54:00:0b:00:01', 'bad-a', '127.0.0.2');
    const rss0 = process.memoryUsage().rss;
    // syslog: random datagrams (mapped and unmapped sources), an endless TCP line, a huge counted frame, many connections
    const junk = Array.from({ length: 3000 }, (_, i) =>
      i % 3 === 0 ? Buffer.concat([Buffer.from('<14>x: '), randomBytes(i % 1400)]) : randomBytes(1 + (i % 1400)),
    );
    await sendUdp('127.0.0.2', e.syslogPort, junk);
    await sendUdp('127.0.0.4', e.syslogPort, junk.slice(0, 500));
    await sendTcp('127.0.0.2', e.syslogPort, Buffer.alloc(8 * 1024 * 1024, 0x41));
    await sendTcp(
      '127.0.0.2',
      e.syslogPort,
      Buffer.concat([Buffer.from('999999999 <14>x: '), randomBytes(1024 * 1024)]),
    );
    await Promise.all(Array.from({ length: 50 }, () => sendTcp('127.0.0.2', e.syslogPort, randomBytes(10_000))));
    assert.ok(process.memoryUsage().rss - rss0 < 200 * 1024 * 1024, 'memory stays bounded');
    assert.equal((await request(e.base, 'GET', '/healthz')).status, 200);
    const kept = JSON.parse((await api(e, 'GET', '/hosts/52:54:00:0b:00:01/logs?limit=5000')).text) as {
      lines: { text: string }[];
    };
    assert.ok(
      kept.lines.length > 0 && kept.lines.every((l) => Buffer.byteLength(l.text) <= 4096 * 4 + 16),
      'kept lines are bounded',
    );
    const m = (await request(e.base, 'GET', '/metrics')).text;
    assert.match(m, /rackboot_syslog_dropped_total\{reason="unknown-source",transport="udp"\} \d+/);

    const expect4xx = async (what: string, r: Promise<Res>, status?: number) => {
      const res = await r;
      assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} ${res.text.slice(0, 200)}`);
      if (status) assert.equal(res.status, status, what);
      assert.ok(
        res.text.length < 2000 && (res.text.length > 0 || res.status === 431),
        `${what}: a short, clear message`,
      );
    };
    // callbacks
    await expect4xx(
      'failed log over 1 MiB',
      request(e.base, 'POST', `/failed/${a.token}`, {
        body: Buffer.alloc(2 * 1024 * 1024, 0x61),
        headers: { 'Content-Type': 'text/plain' },
      }),
      413,
    );
    await expect4xx(
      'events body over 16 KiB',
      request(e.base, 'POST', `/events/${a.token}`, { body: 'x'.repeat(20_000) }),
      413,
    );
    await expect4xx(
      'events: invalid JSON',
      request(e.base, 'POST', `/events/${a.token}`, {
        body: '{"step":',
        headers: { 'Content-Type': 'application/json' },
      }),
      400,
    );
    await expect4xx(
      'events: invalid UTF-8 step',
      request(e.base, 'POST', `/events/${a.token}`, {
        body: Buffer.from([0x73, 0xff, 0xfe]),
        headers: { 'Content-Type': 'text/plain' },
      }),
      400,
    );
    await expect4xx('built: unknown token', request(e.base, 'POST', '/built/not-a-token'), 404);
    await expect4xx('built: bad percent-encoding', request(e.base, 'GET', '/built/%ff%fe'));
    await expect4xx('ks: path trick', request(e.base, 'GET', '/ks/..%2f..%2fetc%2fpasswd'), 404);
    await expect4xx('ks: NUL', request(e.base, 'GET', '/ks/%00'), 404);
    const inv = await request(e.base, 'POST', `/failed/${a.token}`, {
      body: Buffer.concat([Buffer.from('log \0with NUL and '), Buffer.from([0xc3, 0x28]), Buffer.from(' bad UTF-8')]),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      localAddress: '127.0.0.2',
    });
    assert.equal(inv.status, 200, 'a failure log in any encoding or content type is kept');
    // files
    await expect4xx('tftp: dot-dot', request(e.base, 'GET', '/tftp/../../etc/passwd'));
    await expect4xx('tftp: encoded dot-dot', request(e.base, 'GET', '/tftp/%2e%2e/%2e%2e/etc/passwd'));
    await expect4xx('images: encoded slash', request(e.base, 'GET', '/images/..%2f..%2fetc%2fpasswd'));
    await expect4xx('huge URL', request(e.base, 'GET', '/tftp/' + 'a'.repeat(100_000)));
    // API
    await expect4xx('api: no token', request(e.base, 'GET', '/api/hosts'), 401);
    await expect4xx(
      'api: wrong content type',
      request(e.base, 'POST', '/api/hosts', {
        auth: true,
        body: 'mac=52:54:00:0b:00:09',
        headers: { 'Content-Type': 'text/plain' },
      }),
      400,
    );
    await expect4xx(
      'api: invalid JSON',
      request(e.base, 'POST', '/api/hosts', {
        auth: true,
        body: '{"mac": ',
        headers: { 'Content-Type': 'application/json' },
      }),
      400,
    );
    await expect4xx(
      'api: invalid UTF-8 JSON',
      request(e.base, 'POST', '/api/hosts', {
        auth: true,
        body: Buffer.concat([Buffer.from('{"mac":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
        headers: { 'Content-Type': 'application/json' },
      }),
    );
    await expect4xx(
      'api: oversized JSON',
      request(e.base, 'POST', '/api/hosts', {
        auth: true,
        body: JSON.stringify({ hostname: 'x'.repeat(400_000) }),
        headers: { 'Content-Type': 'application/json' },
      }),
      413,
    );
    await expect4xx(
      'api: JSON array',
      request(e.base, 'POST', '/api/hosts', {
        auth: true,
        body: '[1,2]',
        headers: { 'Content-Type': 'application/json' },
      }),
      400,
    );
    await expect4xx(
      'api: path trick in MAC',
      request(e.base, 'GET', '/api/hosts/..%2f..%2fetc%2fpasswd/logs', { auth: true }),
      400,
    );
    await expect4xx(
      'api: logs limit not a number',
      request(e.base, 'GET', '/api/hosts/52:54:00:0b:00:01/logs?limit=abc', { auth: true }),
      400,
    );
    await expect4xx(
      'api: logs q twice',
      request(e.base, 'GET', '/api/hosts/52:54:00:0b:00:01/logs?q=a&q=b', { auth: true }),
      400,
    );
    await expect4xx(
      'api: logs q too long',
      request(e.base, 'GET', `/api/hosts/52:54:00:0b:00:01/logs?q=${'a'.repeat(300)}`, { auth: true }),
      400,
    );
    await expect4xx(
      'api: logs bad severity',
      request(e.base, 'GET', '/api/hosts/52:54:00:0b:00:01/logs?severity=loud', { auth: true }),
      400,
    );
    await expect4xx(
      'api: logs of an unknown host',
      request(e.base, 'GET', '/api/hosts/52:54:00:0b:00:99/logs', { auth: true }),
      404,
    );
    await expect4xx(
      'api: build id not a number',
      request(e.base, 'GET', '/api/hosts/52:54:00:0b:00:01/builds/1%20OR%201=1/logs', { auth: true }),
      400,
    );
    await expect4xx(
      'api: build of another host',
      request(e.base, 'GET', '/api/hosts/52:54:00:0b:00:01/builds/999/logs', { auth: true }),
      404,
    );
    await expect4xx(
      'api: render kind',
      request(e.base, 'GET', '/api/hosts/52:54:00:0b:00:01/render/..%2f..', { auth: true }),
      400,
    );
    assert.equal((await request(e.base, 'GET', '/healthz')).status, 200, 'still serving');
    assert.equal((await request(e.base, 'GET', '/readyz')).status, 200);
    assert.doesNotMatch(e.logs(), /"level":50/, 'no request ended in a server error');
  } finally {
    await e.run.close();
  }
});
