// The remote CLI as an operator runs it from a laptop: `rackboot --server URL ...` as a child process, against a
// real `rackboot serve` process on loopback, with a bearer token; and every way it can go wrong, with its exit code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:http';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { once } from 'node:events';
import { REPO, tempDir } from '../support/core.ts';
import { dirArgsOf } from '../support/server-env.ts';
import { freePort } from '../support/ports.ts';

const BIN = join(REPO, 'bin/rackboot.mjs');
const ADMIN = 'cli-remote-admin-token';
const MAC = '52:54:00:c1:00:01';

let serve: ChildProcess;
let base: string;
let dir: string;
let syslogPort: number;

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The real CLI in a child process, with only the environment an operator's shell would give it. */
function cli(
  args: string[],
  env: Record<string, string> = { RACKBOOT_TOKEN: ADMIN },
  killAfter?: (out: string) => boolean,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (killAfter?.(out)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // tsx says once that it runs the sources; that is not the command's output.
      err = err.replace(/^rackboot: .*running the TypeScript sources through tsx.*\n/m, '');
      resolve({ code: code ?? (signal === 'SIGTERM' ? 143 : -1), out, err });
    });
  });
}
const remote = (args: string[], env?: Record<string, string>) => cli(['--server', base, ...args], env);

before(async () => {
  dir = tempDir('rackboot-cli-remote-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot'), { recursive: true });
  const http = await freePort('tcp');
  syslogPort = await freePort('udp');
  const args = [
    'serve',
    '--listen',
    '127.0.0.1',
    '--http-port',
    String(http),
    '--tftp-port',
    String(await freePort('udp')),
    '--syslog-port',
    String(syslogPort),
    ...dirArgsOf(dir, `http://127.0.0.1:${http}`),
  ];
  serve = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, RACKBOOT_ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  serve.stdout!.on('data', (d) => (log += d));
  serve.stderr!.on('data', (d) => (log += d));
  const deadline = Date.now() + 30_000;
  while (!log.includes('rackboot serving')) {
    if (serve.exitCode !== null) throw new Error(`rackboot serve exited ${serve.exitCode}: ${log}`);
    if (Date.now() > deadline) throw new Error(`rackboot serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  base = `http://127.0.0.1:${http}`;
});

after(async () => {
  if (serve && serve.exitCode === null) {
    serve.kill('SIGTERM');
    await once(serve, 'exit');
  }
});

test('hosts add, list (table and --json, filtered), show, edit, build, timeline, cancel, rm over the API', async () => {
  const add = await remote([
    'hosts',
    'add',
    '--mac',
    MAC,
    '--hostname',
    'cli01',
    '--profile',
    'rhvh-base',
    '--rack',
    'R7',
    '--position',
    'U3',
    '--param',
    'timezone.name=Europe/Paris',
  ]);
  assert.equal(add.code, 0, add.err);
  assert.match(add.out, /added cli01 \(52:54:00:c1:00:01\), profile rhvh-base/);

  const table = await remote(['hosts', 'list']);
  assert.equal(table.code, 0, table.err);
  const [header, row] = table.out.trim().split('\n');
  assert.match(header!, /^MAC\s+HOSTNAME\s+PROFILE\s+IP\s+RACK\s+POS\s+STATE$/);
  assert.match(row!, /^52:54:00:c1:00:01\s+cli01\s+rhvh-base\s+-\s+R7\s+U3\s+idle$/);

  const json = await remote(['--json', 'hosts', 'list', '--rack', 'R7']);
  assert.equal(json.code, 0, json.err);
  const hosts = JSON.parse(json.out) as { mac: string; createdAt: string; params: Record<string, string> }[];
  assert.deepEqual(
    hosts.map((h) => h.mac),
    [MAC],
  );
  assert.match(hosts[0]!.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO 8601 UTC');
  assert.equal(hosts[0]!.params['timezone.name'], 'Europe/Paris');
  assert.deepEqual(
    JSON.parse((await remote(['hosts', 'list', '--rack', 'R8', '--json'])).out),
    [],
    'another rack: none',
  );

  const edit = await remote(['hosts', 'edit', MAC, '--rack', 'R8', '--param', 'ntpServers=["10.0.0.1"]']);
  assert.equal(edit.code, 0, edit.err);
  const show = await remote(['hosts', 'show', MAC]);
  assert.equal(show.code, 0, show.err);
  assert.match(show.out, /^rack: R8$/m);
  assert.match(show.out, /^param timezone\.name: Europe\/Paris$/m, 'edit kept the other parameter');
  assert.match(show.out, /^param ntpServers: \["10\.0\.0\.1"\]$/m);

  const build = await remote(['hosts', 'build', MAC]);
  assert.equal(build.code, 0, build.err);
  assert.match(JSON.parse(build.out).kickstartUrl as string, new RegExp(`^${base}/ks/`));
  const timeline = await remote(['hosts', 'timeline', MAC, '--json']);
  assert.equal(timeline.code, 0, timeline.err);
  const events = JSON.parse(timeline.out) as { type: string; at: string }[];
  assert.ok(
    events.some((e) => e.type === 'build.start'),
    timeline.out,
  );
  assert.ok(events.every((e) => /Z$/.test(e.at)));
  const timelineTable = await remote(['hosts', 'timeline', MAC]);
  assert.match(timelineTable.out, /^AT\s+EVENT/);
  assert.match(timelineTable.out, /build\.start/);

  const cancel = await remote(['hosts', 'cancel', MAC]);
  assert.equal(cancel.code, 0, cancel.err);
  assert.match(cancel.out, /^build \d+ cancelled$/m);
  const again = await remote(['hosts', 'cancel', MAC]);
  assert.equal(again.code, 1, 'refused by the server: exit 1');
  assert.match(again.err, /has no build in progress \(HTTP 409 conflict\)/);

  const rm = await remote(['hosts', 'rm', MAC]);
  assert.equal(rm.code, 0, rm.err);
  const gone = await remote(['hosts', 'show', MAC]);
  assert.equal(gone.code, 1);
  assert.match(gone.err, /no host with MAC 52:54:00:c1:00:01 \(HTTP 404 not_found\)/);
});

test('a refused host names the field; a rack CSV imports with --dry-run first; rack list; discovered list', async () => {
  const bad = await remote(['hosts', 'add', '--mac', 'nope', '--hostname', 'x', '--profile', 'rhvh-base']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /mac: "nope" is not a MAC address.*\(HTTP 422 invalid\)/);

  const csv = join(dir, 'rack9.csv');
  writeFileSync(
    csv,
    'mac,hostname,profile,rack,position\n52:54:00:c9:00:01,r9a,rhvh-base,R9,U1\n52:54:00:c9:00:02,r9b,rhvh-base,R9,U2\n',
  );
  const dry = await remote(['hosts', 'import', csv, '--dry-run']);
  assert.equal(dry.code, 0, dry.err);
  assert.match(dry.out, /dry run: 2 host\(s\) would be imported/);
  assert.deepEqual(JSON.parse((await remote(['--json', 'rack', 'show', 'R9'])).out), [], 'the dry run wrote nothing');
  const done = await remote(['rack', 'import', csv]);
  assert.equal(done.code, 0, done.err);
  assert.match(done.out, /imported 2 host\(s\)/);
  const racks = await remote(['rack', 'list']);
  assert.match(racks.out, /^R9\s+2\s+idle 2$/m);
  const shown = await remote(['rack', 'show', 'R9']);
  assert.equal(shown.out.trim().split('\n').length, 3, shown.out);

  const disc = await remote(['discovered', 'list', '--json']);
  assert.equal(disc.code, 0, disc.err);
  assert.deepEqual(JSON.parse(disc.out), []);
  assert.match((await remote(['discovered', 'list'])).out, /^MAC\s+IP\s+ARCH/);
});

test('hosts logs MAC --follow prints the installer log as it arrives', async () => {
  const mac = '52:54:00:c1:00:02';
  assert.equal((await remote(['hosts', 'add', '--mac', mac, '--hostname', 'cli02', '--profile', 'rhvh-base'])).code, 0);
  const none = await remote(['hosts', 'logs', mac]);
  assert.equal(none.code, 1);
  assert.match(none.err, /has no build yet/);
  const build = JSON.parse((await remote(['hosts', 'build', mac])).out) as { kickstartUrl: string };
  // The kickstart fetched from 127.0.0.4 ties that address to the host: its syslog lines are the host's.
  const ks = await fetchFrom(build.kickstartUrl, '127.0.0.4', mac);
  assert.equal(ks, 200);
  const send = (text: string) => sendUdp('127.0.0.4', `<30>May  1 10:00:00 localhost anaconda: ${text}`);
  await send('first line');
  let sentSecond = false;
  const follow = cli(['--server', base, 'hosts', 'logs', mac, '--follow'], { RACKBOOT_TOKEN: ADMIN }, (out) => {
    if (out.includes('first line') && !sentSecond) {
      sentSecond = true;
      void send('second line, after the follow began');
    }
    return out.includes('second line');
  });
  const r = await follow;
  assert.match(r.out, /anaconda: first line\n/);
  assert.match(r.out, /anaconda: second line, after the follow began\n/);
  assert.equal(r.out.match(/first line/g)!.length, 1, 'a line is printed once');
});

test('a bad token, a bad URL, a server that is down or is not rackboot: a clear message and an exit code', async () => {
  const badToken = await remote(['hosts', 'list'], { RACKBOOT_TOKEN: 'not-the-token' });
  assert.equal(badToken.code, 4);
  assert.match(badToken.err, /the server refused the token \(HTTP 401\)/);
  assert.doesNotMatch(badToken.err + badToken.out, /not-the-token/, 'the token is never printed');

  const noToken = await remote(['hosts', 'list'], {});
  assert.equal(noToken.code, 2);
  assert.match(noToken.err, /no API token: set RACKBOOT_TOKEN or pass --token-file/);

  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, ADMIN + '\n');
  chmodSync(tokenFile, 0o600);
  const fromFile = await remote(['--token-file', tokenFile, 'hosts', 'list'], {});
  assert.equal(fromFile.code, 0, fromFile.err);
  const missingFile = await remote(['--token-file', join(dir, 'nope'), 'hosts', 'list'], {});
  assert.equal(missingFile.code, 2);
  assert.match(missingFile.err, /--token-file: cannot read/);

  const viaEnv = await cli(['hosts', 'list'], { RACKBOOT_SERVER: base, RACKBOOT_TOKEN: ADMIN });
  assert.equal(viaEnv.code, 0, viaEnv.err);

  for (const url of ['not a url', 'ftp://127.0.0.1/', `http://admin:${ADMIN}@127.0.0.1:1/`]) {
    const r = await cli(['--server', url, 'hosts', 'list']);
    assert.equal(r.code, 2, url);
    assert.match(r.err, /^rackboot: --server: /);
    assert.doesNotMatch(r.err, new RegExp(ADMIN));
  }

  const down = await cli(['--server', `http://127.0.0.1:${await freePort('tcp')}`, 'hosts', 'list']);
  assert.equal(down.code, 3);
  assert.match(down.err, /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\. Check --server/);

  const other = createServer((_req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/html' }).end('<h1>It works</h1>');
  });
  other.listen(0, '127.0.0.1');
  await once(other, 'listening');
  try {
    const port = (other.address() as { port: number }).port;
    const r = await cli(['--server', `http://127.0.0.1:${port}`, 'hosts', 'list']);
    assert.equal(r.code, 3);
    assert.match(r.err, /without a rackboot API error: is http:\/\/127\.0\.0\.1:\d+\/ a rackboot server\?/);
  } finally {
    other.close();
  }

  const serverOnly = await remote(['serve']);
  assert.equal(serverOnly.code, 2);
  assert.match(serverOnly.err, /"serve" runs only on the server/);
  for (const args of [
    ['hosts', 'show', 'x;rm -rf /'],
    ['hosts', 'add', '--mac', MAC, '--param', 'novalue'],
    ['power', MAC, 'explode'],
    ['hosts', 'list', '--no-such-flag'],
  ]) {
    const r = await remote(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, /^rackboot: /);
  }
  // Without --server it is the server's own CLI, as before: the SQLite file, no token.
  const local = await cli(
    ['hosts', 'list', '--data-dir', join(dir, 'data'), '--profiles-dir', join(dir, 'profiles')],
    {},
  );
  assert.equal(local.code, 0, local.err);
  assert.match(local.out, /^52:54:00:c9:00:01\tr9a\trhvh-base/m);
  const stray = await cli(['--json', 'hosts', 'list'], {});
  assert.equal(stray.code, 2);
  assert.match(stray.err, /--token-file and --json go with --server URL/);
  const usage = await remote(['hosts', 'frobnicate']);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /unknown command "hosts frobnicate"/);
});

function sendUdp(from: string, line: string): Promise<void> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, from, () => s.send(line, syslogPort, '127.0.0.1', () => (s.close(), resolve())));
  });
}

async function fetchFrom(url: string, from: string, mac: string): Promise<number> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        localAddress: from,
        agent: false,
        headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${mac}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('rack build, rollout show and rack cancel over the API; worst flag values refused before any request', async () => {
  const csv = join(dir, 'rack7.csv');
  writeFileSync(
    csv,
    'mac,hostname,profile,rack,position\n52:54:00:c7:00:01,r7a,rhvh-base,R7,U1\n52:54:00:c7:00:02,r7b,rhvh-base,R7,U2\n',
  );
  assert.equal((await remote(['rack', 'import', csv])).code, 0);
  for (const [flag, value] of [
    ['--wave', '-1'],
    ['--wave', '1e3'],
    ['--interval', 'soon'],
    ['--wave', '9'.repeat(40)],
  ]) {
    const r = await remote(['rack', 'build', 'R7', `${flag}=${value}`]);
    assert.equal(r.code, 2, `${flag} ${value}: ${r.err}`);
    assert.match(r.err, new RegExp(`${flag}: .* is not a whole number`));
  }
  const tooBig = await remote(['rack', 'build', 'R7', '--wave', '100000']);
  assert.equal(tooBig.code, 1, 'the server checks the range and names the field');
  assert.match(tooBig.err, /waveSize/);
  assert.equal((await remote(['--json', 'rack', 'show', 'R7'])).out.includes('"state": "build"'), false);

  const started = await remote(['--json', 'rack', 'build', 'R7', '--wave', '1', '--interval', '0']);
  assert.equal(started.code, 0, started.err);
  const id = (JSON.parse(started.out) as { id: number }).id;
  assert.ok(Number.isInteger(id), started.out);
  const deadline = Date.now() + 30_000;
  let shown: Run;
  for (;;) {
    shown = await remote(['rollout', 'show', String(id)]);
    assert.equal(shown.code, 0, shown.err);
    if (/^rollout \d+: done/m.test(shown.out) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(shown.out, new RegExp(`^rollout ${id}: done`, 'm'), shown.out);
  assert.match(shown.out, /^52:54:00:c7:00:01\s+build-started/m);
  const hosts = JSON.parse((await remote(['--json', 'rack', 'show', 'R7'])).out) as { state: string }[];
  assert.deepEqual(
    hosts.map((h) => h.state),
    ['build', 'build'],
  );
  const cancelled = await remote(['rack', 'cancel', 'R7']);
  assert.equal(cancelled.code, 0, cancelled.err);
  const after = JSON.parse((await remote(['--json', 'rack', 'show', 'R7'])).out) as { state: string }[];
  assert.deepEqual(
    after.map((h) => h.state),
    ['idle', 'idle'],
  );
  const listed = await remote(['rollout', 'list']);
  assert.match(listed.out, new RegExp(`^${id}\\s+done\\s+rack R7\\s+2\\s`, 'm'), listed.out);
  const nosuch = await remote(['rollout', 'show', '999999']);
  assert.equal(nosuch.code, 1);
  assert.equal((await remote(['rollout', 'show', '../1'])).code, 2);
});
