// The server as served (startRackboot on loopback, real clients): file modes under umask 000, a readable
// secret.key refused, /metrics token, the Host check, nosniff on boot paths, HTTPS with curl --cacert,
// and login throttling under 200 parallel guesses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '../../src/config.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { backupDatabase } from '../../src/ops/backup.ts';
import { saveProfileAtomic } from '../../src/web/profile-edit.ts';
import { LoginThrottle } from '../../src/web/auth.ts';
import { REPO, tempDir } from '../support/core.ts';

const run = promisify(execFile);
const BIN = join(REPO, 'bin/rackboot.mjs');
const PW = 'correct horse battery';

function fixture(): string {
  const dir = tempDir('rackboot-surface-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot'), { recursive: true });
  mkdirSync(join(dir, 'images'), { recursive: true });
  writeFileSync(join(dir, 'images', 'stage2.txt'), '<html><script>alert(1)</script></html>\n');
  return dir;
}

function flags(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    listen: '127.0.0.1',
    'http-port': '0',
    'tftp-port': '0',
    'syslog-port': '0',
    'data-dir': join(dir, 'data'),
    'profiles-dir': join(dir, 'profiles'),
    'tftp-root': join(dir, 'tftpboot'),
    'images-dir': join(dir, 'images'),
    'public-url': 'http://127.0.0.1:8080',
    ...extra,
  };
}

async function start(dir: string, extra: Record<string, string> = {}): Promise<{ running: Running; config: Config }> {
  const config = loadConfig(flags(dir, extra), {}, dir);
  const running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: 'admin-token-for-tests' });
  return { running, config };
}

/** curl, the real client: status, headers (lower-case names) and body. */
async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-i', '--max-time', '10', ...args], { maxBuffer: 4 << 20 });
  const blocks = stdout.split(/\r\n\r\n/);
  const head = blocks[0].split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of head.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(head[0].split(' ')[1]), headers, body: blocks.slice(1).join('\r\n\r\n') };
}

const modeOf = (p: string) => statSync(p).mode & 0o777;

test('under umask 000 the data dir is 0700 and every file rackboot writes there 0600; saved profiles 0640', async () => {
  const dir = fixture();
  const old = process.umask(0);
  let running: Running | undefined;
  try {
    mkdirSync(join(dir, 'data'), { mode: 0o777 });
    chmodSync(join(dir, 'data'), 0o777);
    ({ running } = await start(dir));
    const data = join(dir, 'data');
    assert.equal(modeOf(data), 0o700);
    const files = readdirSync(data);
    for (const f of ['rackboot.db', 'rackboot.db-wal', 'rackboot.db-shm', 'secret.key', 'serve.pid'])
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    for (const f of files) assert.equal(modeOf(join(data, f)), 0o600, `${f} is ${modeOf(join(data, f)).toString(8)}`);
    const backup = join(dir, 'backups', 'copy.db');
    const b = await backupDatabase(data, backup);
    assert.ok(b.ok, b.message);
    assert.equal(modeOf(backup), 0o600);
    saveProfileAtomic(join(dir, 'profiles'), 'new-one', 'extends: rhvh-base\ndescription: x\n');
    assert.equal(modeOf(join(dir, 'profiles', 'new-one.yaml')), 0o640);
    chmodSync(join(dir, 'profiles', 'rhvh-base.yaml'), 0o666);
    saveProfileAtomic(join(dir, 'profiles'), 'rhvh-base', 'description: x\n');
    assert.equal(
      modeOf(join(dir, 'profiles', 'rhvh-base.yaml')),
      0o660 & 0o666 & ~0o006,
      'an edited world-writable profile loses world access',
    );
  } finally {
    process.umask(old);
    await running?.close();
  }
});

test('serve refuses (exit 2, with the chmod fix) and doctor fails on a group- or world-readable secret.key', async () => {
  const dir = fixture();
  const { running } = await start(dir);
  await running.close();
  const key = join(dir, 'data', 'secret.key');
  const args = Object.entries(flags(dir)).flatMap(([k, v]) => [`--${k}`, v]);
  for (const mode of [0o644, 0o640, 0o604]) {
    chmodSync(key, mode);
    const serve = spawnSync(process.execPath, [BIN, 'serve', ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, RACKBOOT_ADMIN_TOKEN: 'x' },
    });
    assert.equal(serve.status, 2, `mode ${mode.toString(8)}: ${serve.stderr}`);
    assert.match(
      serve.stderr,
      new RegExp(`refusing to start: ${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is readable by`),
    );
    assert.ok(serve.stderr.includes(`chmod 600 ${key}`), serve.stderr);
  }
  const doctor = spawnSync(process.execPath, [BIN, 'doctor', ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(doctor.status, 1);
  assert.match(doctor.stdout, /^FAIL .*secret\.key is readable by every user \(mode 0604\).*\n\s+fix: chmod 600 /m);
  chmodSync(key, 0o600);
  const doctor2 = spawnSync(process.execPath, [BIN, 'doctor', ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.doesNotMatch(doctor2.stdout, /secret\.key/);
});

test('surfaces: /metrics needs its token; UI/API refuse a foreign Host, boot paths answer any; nosniff on /ks, /images, /api', async () => {
  const dir = fixture();
  const { running } = await start(dir, {
    'metrics-token': 'metrics-token-0123456789',
    'allowed-hosts': 'rackboot.example.com',
  });
  const base = `http://127.0.0.1:${running.httpPort}`;
  try {
    assert.equal((await curl([`${base}/metrics`])).status, 401);
    assert.equal((await curl(['-H', 'Authorization: Bearer wrong-token-0123456789', `${base}/metrics`])).status, 401);
    const m = await curl(['-H', 'Authorization: Bearer metrics-token-0123456789', `${base}/metrics`]);
    assert.equal(m.status, 200);
    assert.match(m.body, /# TYPE/);

    for (const path of ['/login', '/api/hosts', '/', '/metrics']) {
      const r = await curl(['-H', 'Host: evil.example', `${base}${path}`]);
      assert.equal(r.status, 421, path);
      assert.match(r.body, /not a name this server's UI and API answer for.*--allowed-hosts/);
    }
    assert.ok(
      [400, 421].includes((await curl(['-H', 'Host: \u0007bad', `${base}/login`])).status),
      'a control character in Host is refused',
    );
    for (const host of ['rackboot.example.com', 'RACKBOOT.example.com:8080', 'localhost', '127.0.0.1:1']) {
      assert.equal((await curl(['-H', `Host: ${host}`, `${base}/login`])).status, 200, host);
    }
    // Firmware sends the server's IP, or nothing useful at all: the boot paths answer whatever the Host.
    const ks = await curl(['-H', 'Host: 10.1.2.3', `${base}/ks/nosuchtoken`]);
    assert.notEqual(ks.status, 421);
    assert.equal(ks.headers['x-content-type-options'], 'nosniff', '/ks (the fast path) has nosniff');
    const img = await curl(['-H', 'Host: 10.1.2.3', `${base}/images/stage2.txt`]);
    assert.equal(img.status, 200);
    assert.equal(img.headers['x-content-type-options'], 'nosniff');
    for (const path of ['/boot/ipxe', '/tftp/nosuch', '/images/nosuch', '/healthz']) {
      const r = await curl(['-H', 'Host: 10.1.2.3', `${base}${path}`]);
      assert.notEqual(r.status, 421, path);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', path);
    }
    const api = await curl(['-H', 'Authorization: Bearer admin-token-for-tests', `${base}/api/hosts`]);
    assert.equal(api.status, 200);
    assert.equal(api.headers['x-content-type-options'], 'nosniff');
    assert.equal((await curl([`${base}/api/nosuch`])).headers['x-content-type-options'], 'nosniff', 'errors too');
  } finally {
    await running.close();
  }
});

test('HTTPS for the UI and API (curl --cacert): HSTS, Secure cookies; plain HTTP redirects the UI/API and keeps the boot paths', async () => {
  const dir = fixture();
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  const { running } = await start(dir, { 'tls-cert': cert, 'tls-key': key, 'https-port': '0' });
  try {
    assert.ok(running.httpsPort);
    const https = `https://127.0.0.1:${running.httpsPort}`;
    const http = `http://127.0.0.1:${running.httpPort}`;
    const login = await curl(['--cacert', cert, `${https}/login`]);
    assert.equal(login.status, 200);
    assert.equal(login.headers['strict-transport-security'], 'max-age=31536000');
    assert.match(login.headers['set-cookie'] ?? '', /rackboot_login=.*; Secure/);
    assert.equal(login.headers['x-content-type-options'], 'nosniff');
    const api = await curl([
      '--cacert',
      cert,
      '-H',
      'Authorization: Bearer admin-token-for-tests',
      `${https}/api/hosts`,
    ]);
    assert.equal(api.status, 200);
    // (async: a spawnSync would block the event loop this server runs on)
    const untrusted = await run('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', `${https}/login`]).then(
      () => 0,
      (e: { code?: number }) => e.code,
    );
    assert.equal(
      untrusted,
      60,
      'without --cacert curl refuses the self-signed certificate (exit 60): it really is TLS',
    );

    const redirect = await curl([`${http}/login?next=%2Fhosts`]);
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, `https://127.0.0.1:${running.httpsPort}/login?next=%2Fhosts`);
    assert.equal(redirect.headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP (RFC 6797 7.2)');
    const post = await curl(['-X', 'POST', `${http}/api/hosts`]);
    assert.equal(post.status, 308, 'an API POST is redirected keeping its method');
    for (const path of ['/ks/nosuchtoken', '/images/stage2.txt', '/boot/ipxe', '/healthz']) {
      const r = await curl([`${http}${path}`]);
      assert.notEqual(r.status, 308, path);
      assert.equal(r.headers.location, undefined, path);
    }
    assert.equal(
      (await curl(['-H', 'Host: evil.example', `${http}/login`])).status,
      421,
      'the Host check comes before the redirect (no open redirect)',
    );
  } finally {
    await running.close();
  }
});

function post(port: number, body: string, cookie: string, localAddress = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/login',
        method: 'POST',
        localAddress,
        agent: false,
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          'Content-Length': Buffer.byteLength(body),
          Cookie: cookie,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('login throttle: of 200 parallel guesses only 10 are checked; the right password sent during the burst is refused; per user across addresses', async () => {
  const dir = fixture();
  // 200 connections at once from one address: above the default per-address connection cap (64), which would
  // close most of them before the throttle is reached. The throttle is what this test is about.
  writeFileSync(join(dir, 'rackboot.yaml'), 'http:\n  maxConnectionsPerAddress: 512\n');
  const { running } = await start(dir, { config: join(dir, 'rackboot.yaml') });
  const hash = hashUserPasswordSync(PW);
  const users = running.core.store.users;
  await users.add('alice', 'admin', hash);
  await users.add('tom', 'tech', hash);
  const port = running.httpPort;
  try {
    const page = await curl([`http://127.0.0.1:${port}/login`]);
    const token = /rackboot_login=([^;]+)/.exec(page.headers['set-cookie'] ?? '')![1];
    const cookie = `rackboot_login=${token}`;
    const form = (name: string, password: string) =>
      new URLSearchParams({ _csrf: decodeURIComponent(token), name, password, next: '/' }).toString();
    let firstRefusal!: () => void;
    const refused = new Promise<void>((r) => {
      firstRefusal = r;
    });
    const burst = Array.from({ length: 199 }, (_, i) =>
      post(port, form('alice', `wrong guess ${i}`), cookie).then((s) => {
        if (s === 429) firstRefusal();
        return s;
      }),
    );
    await refused;
    const right = await post(port, form('alice', PW), cookie);
    const statuses = await Promise.all(burst);
    assert.equal(statuses.filter((s) => s === 401).length, 10, `checked: ${statuses.filter((s) => s === 401).length}`);
    assert.equal(statuses.filter((s) => s === 429).length, 189);
    assert.equal(right, 429, 'the correct password sent after the burst is not even checked');

    // Per user: another address cannot go on guessing alice; other users are unaffected.
    assert.equal(await post(port, form('alice', PW), cookie, '127.0.0.2'), 429);
    assert.equal(await post(port, form('tom', PW), cookie, '127.0.0.3'), 303);
  } finally {
    await running.close();
  }
});

test('login throttle table: bounded, least recently used goes first, and failures from many addresses do not unblock a key', () => {
  let t = 0;
  const th = new LoginThrottle(3, 60_000, () => t, 100);
  for (let i = 0; i < 3; i++) th.reserve(['ip:10.0.0.1', 'user:alice'])!.fail();
  assert.equal(th.reserve(['ip:10.0.0.9', 'user:alice']), undefined, 'alice is blocked from any address');
  for (let i = 0; i < 20_000; i++) {
    t++;
    th.reserve([`ip:172.16.${(i >> 8) & 255}.${i & 255}`, `user:u${i}`])!.fail();
  }
  assert.ok(th.size <= 100, `table size ${th.size}`);
  assert.equal(th.blocked('user:alice'), true, 'still blocked after 20,000 failures from other addresses');
  assert.equal(th.blocked('ip:10.0.0.1'), true);
  // In flight counts: 3 reserved and unsettled block the 4th.
  const held = [th.reserve(['user:bob'])!, th.reserve(['user:bob'])!, th.reserve(['user:bob'])!];
  assert.equal(th.reserve(['user:bob']), undefined);
  held[0].succeed();
  assert.ok(th.reserve(['user:bob']), 'a settled success frees its slot');
  t += 60_001;
  assert.equal(th.blocked('user:alice'), false, 'the window passes');
});
