// The live board hears every change within a second whatever made it (issue #14): a real `startRackboot` on
// loopback, its SSE stream read over HTTP, and a second process (the real `rackboot` CLI on the same data dir)
// importing and building hosts; a token expiring with nobody writing; a host deleted; the heartbeat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import type { Config } from '../../src/config.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { SESSION_COOKIE } from '../../src/web/auth.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO } from '../support/core.ts';
import { loopbackConfig } from '../support/server-env.ts';

const BIN = join(REPO, 'bin/rackboot.mjs');
let dir: string;
let config: Config;
let running: Running;
let cookie: string;

before(async () => {
  ({ dir, config } = loopbackConfig('rackboot-live-'));
  running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: 'live-test' });
  const tom = await running.core.store.users.add('tom', 'tech', hashUserPasswordSync('correct horse battery'));
  cookie = `${SESSION_COOKIE}=${(await running.core.store.sessions.create(tom)).id}`;
});
after(async () => {
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Sse {
  events: { event: string; data: Record<string, unknown>; at: number }[];
  req: ClientRequest;
  status: Promise<number>;
}

function openStream(): Sse {
  const s: Sse = { events: [], req: undefined as unknown as ClientRequest, status: Promise.resolve(0) };
  s.status = new Promise((resolve, reject) => {
    s.req = request(
      { host: '127.0.0.1', port: running.httpPort, path: '/board/stream', headers: { cookie } },
      (res) => {
        resolve(res.statusCode ?? 0);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data)
              s.events.push({ event, data: JSON.parse(data) as Record<string, unknown>, at: Date.now() });
          }
        });
      },
    );
    s.req.on('error', reject);
    s.req.end();
  });
  return s;
}

async function waitFor(s: Sse, pred: (e: Sse['events'][number]) => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = s.events.find(pred);
    if (hit) return hit;
    if (Date.now() > deadline)
      assert.fail(`${what}: not on the stream within ${ms} ms; saw ${JSON.stringify(s.events.slice(-5))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function cli(...args: string[]): Promise<{ code: number; out: string; exitedAt: number }> {
  const flags = ['--data-dir', config.dataDir, '--profiles-dir', config.profilesDir];
  const proc = spawn(process.execPath, [BIN, ...args, ...flags, '--public-url', config.publicUrl], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ code: code ?? -1, out, exitedAt: Date.now() })));
}

const chipOf = (mac: string) => (e: Sse['events'][number]) => e.event === 'chip' && e.data.mac === mac;

test('the stream says hello with its heartbeat, and beats', async () => {
  const s = openStream();
  assert.equal(await s.status, 200);
  const hello = await waitFor(s, (e) => e.event === 'hello', 2000, 'hello');
  assert.equal(typeof hello.data.heartbeatMs, 'number');
  assert.ok((hello.data.heartbeatMs as number) <= 10_000, 'often enough for the page to notice a dead stream');
  s.req.destroy();
});

test('a rack imported and a build started by the CLI (another process) reach the open board within 1 s', async () => {
  const s = openStream();
  await waitFor(s, (e) => e.event === 'hello', 2000, 'hello');
  const csv = join(dir, 'rack.csv');
  writeFileSync(csv, 'mac,hostname,profile,rack,position\n52:54:00:dd:00:01,cli01,rhvh-base,R7,U1\n');
  const imp = await cli('hosts', 'import', csv);
  assert.equal(imp.code, 0, imp.out);
  const added = await waitFor(s, chipOf('52:54:00:dd:00:01'), 1000 + 200, 'the imported host');
  assert.ok(added.at - imp.exitedAt < 1000, `${added.at - imp.exitedAt} ms after the CLI exited`);
  assert.equal(added.data.state, 'idle');
  assert.equal(added.data.rack, 'R7');

  const n = s.events.length;
  const build = await cli('hosts', 'build', '52:54:00:dd:00:01', '--token-ttl', '3s');
  assert.equal(build.code, 0, build.out);
  const building = await waitFor(
    s,
    (e) => s.events.indexOf(e) >= n && chipOf('52:54:00:dd:00:01')(e) && e.data.state === 'build',
    1200,
    'the build',
  );
  assert.ok(building.at - build.exitedAt < 1000, `${building.at - build.exitedAt} ms after the CLI exited`);
  assert.equal(building.data.stage, 'pending');

  // Nobody writes when a token expires: the board hears it all the same, within a second of expires_at.
  const expiresAt = (await running.core.builds.latest('52:54:00:dd:00:01' as Mac))!.expiresAt;
  const expired = await waitFor(
    s,
    (e) => chipOf('52:54:00:dd:00:01')(e) && e.data.state === 'expired',
    expiresAt - Date.now() + 1500,
    'the expiry',
  );
  assert.ok(expired.at >= expiresAt, 'not before it expired');
  assert.ok(expired.at - expiresAt < 1000, `${expired.at - expiresAt} ms after expires_at`);
  assert.equal(expired.data.label, 'token expired');
  s.req.destroy();
});

test('a deleted host leaves the board live', async () => {
  const mac = '52:54:00:dd:00:02' as Mac;
  await running.core.hosts.insert({ mac, hostname: 'gone02', profile: 'rhvh-base', nameservers: [], params: {} });
  const s = openStream();
  await waitFor(s, (e) => e.event === 'hello', 2000, 'hello');
  await running.core.hosts.delete(mac);
  const gone = await waitFor(s, chipOf(mac), 1000, 'the delete');
  assert.equal(gone.data.removed, true);
  s.req.destroy();
});
