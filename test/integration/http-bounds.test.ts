// HTTP connection bounds (issue #13): per-address and global caps at accept, on Node's path and on the
// native burst path, and deadlines for headers, request bodies and idle keep-alive connections.
// Real sockets on loopback; the reproduction runs the real process under a 1,024-descriptor limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acceptBursts, connectionBudget, limitConnections, type ConnectionLimits } from '../../src/http/accept.ts';
import { native } from '../../src/native.ts';
import { REPO, tempDir } from '../support/core.ts';
import { dirArgsOf } from '../support/server-env.ts';
import { freePort } from '../support/ports.ts';

const LIMITS: ConnectionLimits = {
  perAddress: 5,
  total: 8,
  headersTimeoutMs: 400,
  requestTimeoutMs: 500,
  idleTimeoutMs: 400,
};

async function serve(handler: Parameters<typeof createServer>[1], limits: Partial<ConnectionLimits> = {}) {
  const server = createServer(handler);
  const bursts = acceptBursts(server);
  const guard = limitConnections(server, { ...LIMITS, ...limits });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, guard, bursts };
}

async function closeServer(server: Server) {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

interface Conn {
  sock: Socket;
  closed: Promise<number>;
  data: () => string;
}
function open(port: number, localAddress = '127.0.0.1'): Conn {
  const sock = connect({ port, host: '127.0.0.1', localAddress });
  let buf = '';
  sock.on('data', (d: Buffer) => {
    buf += d.toString();
  });
  sock.on('error', () => {});
  const t0 = Date.now();
  const closed = new Promise<number>((r) => sock.on('close', () => r(Date.now() - t0)));
  return { sock, closed, data: () => buf };
}
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await settle(10);
  }
}
function listenQueue(port: number): number {
  const out = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim();
  return Number(out.split(/\s+/)[1] ?? 0);
}

test('per-address cap: the 6th and 7th connection from one address are closed at accept; another address still gets in', async () => {
  const { server, port, guard } = await serve((_q, res) => res.end('ok'), { headersTimeoutMs: 10_000 });
  try {
    const conns = Array.from({ length: 7 }, () => open(port));
    await waitFor(() => guard.refused['per-address'] === 2, 3000, 'two refused');
    const closedEarly = await Promise.race([
      Promise.all(conns.slice(5).map((c) => c.closed)),
      settle(2000).then(() => 'timeout'),
    ]);
    assert.notEqual(closedEarly, 'timeout', 'the excess connections were closed');
    assert.equal(guard.open(), 5);
    const other = await fetchFrom(port, '127.0.0.2');
    assert.equal(other, 'ok', 'a different address is served while 127.0.0.1 is at its cap');
    conns[0]!.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => conns[0]!.data().endsWith('ok'), 2000, 'a held connection is still served');
    for (const c of conns) c.sock.destroy();
  } finally {
    await closeServer(server);
  }
});

test('global cap: past `total` connections are dropped at accept and counted', async () => {
  const { server, port, guard } = await serve((_q, res) => res.end('ok'), { headersTimeoutMs: 10_000 });
  try {
    const conns = [2, 3, 4, 5].flatMap((n) => Array.from({ length: 3 }, () => open(port, `127.0.0.${n}`)));
    await waitFor(() => guard.refused.total === 4, 3000, 'four over the cap of 8');
    assert.ok(guard.open() <= 8);
    for (const c of conns) c.sock.destroy();
  } finally {
    await closeServer(server);
  }
});

test(
  'burst path: connections taken from the listen queue in one turn obey the per-address cap',
  { skip: native ? false : 'native addon not built' },
  async () => {
    const { server, port, guard, bursts } = await serve((_q, res) => res.end('ok'), {
      headersTimeoutMs: 10_000,
      perAddress: 5,
      total: 100,
    });
    try {
      const conns = Array.from({ length: 12 }, () => open(port));
      await new Promise((r) => process.nextTick(r));
      // Hold this process (and so the server's loop) until all 12 wait in the listen queue: Node accepts one, the addon the rest.
      for (let i = 0; i < 500 && listenQueue(port) < 12; i++) spawnSync('sleep', ['0.01']);
      assert.equal(listenQueue(port), 12);
      await waitFor(() => guard.refused['per-address'] === 7, 3000, 'seven refused');
      assert.ok(bursts.adopted >= 10, `taken in a burst: ${bursts.adopted}`);
      assert.equal(guard.open(), 5);
      for (const c of conns) c.sock.destroy();
    } finally {
      await closeServer(server);
    }
  },
);

test('deadlines: silent and half-sent headers, a body that never ends, idle keep-alive; a long response is not cut', async () => {
  const { server, port, guard } = await serve((req, res) => {
    if (req.url === '/slow') {
      // 1.5 s of response, far beyond every deadline: answering a request is never cut by them.
      let n = 0;
      const t = setInterval(() => {
        res.write('.');
        if (++n === 15) {
          clearInterval(t);
          res.end('done');
        }
      }, 100);
      return;
    }
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  try {
    const silent = open(port, '127.0.0.2');
    const half = open(port, '127.0.0.3');
    half.sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const body = open(port, '127.0.0.4');
    body.sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
    const idle = open(port, '127.0.0.5');
    idle.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const slow = open(port, '127.0.0.6');
    slow.sock.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    const [a, b, c, d] = await Promise.all([silent.closed, half.closed, body.closed, idle.closed]);
    for (const [name, ms] of [
      ['silent', a],
      ['half headers', b],
      ['unfinished body', c],
      ['idle keep-alive', d],
    ] as const) {
      assert.ok(ms >= 350 && ms < 3000, `${name} closed after ${ms} ms`);
    }
    assert.match(idle.data(), /\r\n\r\nok$/, 'the idle connection got its answer first');
    assert.equal(silent.data(), '');
    await waitFor(() => /done\r\n0\r\n\r\n$/.test(slow.data()), 5000, 'slow response complete (chunked, last chunk)');
    assert.match(slow.data(), /^HTTP\/1.1 200/);
    assert.equal(guard.refused['headers-timeout'], 2);
    assert.equal(guard.refused['request-timeout'], 1);
    assert.equal(guard.refused['idle-timeout'], 1);
    slow.sock.destroy();
  } finally {
    await closeServer(server);
  }
});

test('connectionBudget keeps HTTP under the descriptor limit beside TFTP and syslog', () => {
  assert.deepEqual(connectionBudget(65536, 4096, 1624), { total: 4096 });
  assert.deepEqual(connectionBudget(undefined, 4096, 1624), { total: 4096 });
  const low = connectionBudget(1024, 4096, 600);
  assert.equal(low.total, 180);
  assert.match(low.warning!, /descriptor limit \(1024\).*LimitNOFILE/);
  assert.equal(connectionBudget(100, 4096, 600).total, 16);
});

function fetchFrom(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = open(port, localAddress);
    c.sock.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    c.closed.then(() => resolve(c.data().split('\r\n\r\n')[1] ?? ''), reject);
  });
}

test('reproduction: 1,100 idle connections from one address under a 1,024-descriptor limit; HTTP and TFTP keep serving', async (t) => {
  if (spawnSync('prlimit', ['--version']).error || spawnSync('curl', ['--version']).error)
    return t.skip('prlimit or curl missing');
  const dir = tempDir();
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot'), { recursive: true });
  writeFileSync(join(dir, 'tftpboot', 'pxelinux.0'), Buffer.alloc(30_000, 7));
  const [http, tftp] = [await freePort('tcp'), await freePort('udp')];
  const args = [
    '--nofile=1024',
    process.execPath,
    join(REPO, 'bin/rackboot.mjs'),
    'serve',
    '--listen',
    '127.0.0.1',
    '--http-port',
    String(http),
    '--tftp-port',
    String(tftp),
    '--syslog-port',
    '0',
    ...dirArgsOf(dir, `http://127.0.0.1:${http}`),
  ];
  const proc = spawn('prlimit', args, {
    env: { ...process.env, RACKBOOT_ADMIN_TOKEN: 'bounds-token' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const conns: Conn[] = [];
  try {
    await waitFor(() => out.includes('rackboot serving') || proc.exitCode !== null, 30_000, 'rackboot started');
    assert.ok(out.includes('rackboot serving'), out);
    for (let i = 0; i < 1100; i++) conns.push(open(http));
    let closed = 0;
    for (const c of conns) void c.closed.then(() => closed++);
    await waitFor(() => closed >= 1100 - 64, 20_000, 'the excess closed at accept');
    await settle(200);
    assert.equal(closed, 1100 - 64, 'exactly the per-address cap stays open');
    const ready = spawnSync(
      'curl',
      ['-sS', '--max-time', '10', '--interface', '127.0.0.2', `http://127.0.0.1:${http}/readyz`],
      { encoding: 'utf8' },
    );
    assert.equal(ready.status, 0, ready.stderr);
    assert.match(ready.stdout, /ok/);
    const boot = spawnSync(
      'curl',
      ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download}', `tftp://127.0.0.1:${tftp}/pxelinux.0`],
      { encoding: 'utf8' },
    );
    assert.equal(boot.status, 0, boot.stderr);
    assert.equal(boot.stdout, '30000', 'TFTP serves a loader meanwhile');
    const metrics = spawnSync(
      'curl',
      [
        '-sS',
        '--max-time',
        '10',
        '--interface',
        '127.0.0.2',
        '-H',
        'Authorization: Bearer bounds-token',
        `http://127.0.0.1:${http}/metrics`,
      ],
      { encoding: 'utf8' },
    );
    assert.match(metrics.stdout, /rackboot_http_connections_refused_total\{reason="per-address"\} 1036/);
    assert.doesNotMatch(out, /EMFILE/);
  } finally {
    for (const c of conns) c.sock.destroy();
    proc.kill('SIGTERM');
    if (proc.exitCode === null) await once(proc, 'exit');
  }
});
