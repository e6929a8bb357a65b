/* eslint-disable @typescript-eslint/no-explicit-any -- the JSON answers under test are read loosely */
// Rollouts across processes: `rackboot rack build` (a separate process) records the rollout, the running
// `rackboot serve` carries it out; serve killed with SIGKILL mid-rollout resumes the remaining waves on its next
// start, without redoing the waves it had done. The CLI refuses worst values and records nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';

const BIN = join(REPO, 'bin/rackboot.mjs');
const TOKEN = 'rollout-crash-token';
const dir = tempDir('rackboot-rollout-crash-');
cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
const flags = [
  '--data-dir',
  join(dir, 'data'),
  '--profiles-dir',
  join(dir, 'profiles'),
  '--tftp-root',
  join(dir, 'tftpboot'),
  '--images-dir',
  join(dir, 'images'),
  '--listen',
  '127.0.0.1',
  '--tftp-port',
  '0',
];
const macs = [1, 2, 3, 4].map((i) => `52:54:00:71:00:0${i}`);
let child: ChildProcess | undefined;
let base = '';

after(() => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args, ...flags], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env },
  });

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const call = () =>
    fetch(`${base}/api${path}`, {
      method,
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  // A kept-alive connection that serve closed while a CLI command ran (idle timeout): one fresh try.
  const res = await call().catch(() => call());
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startServe(port: number): Promise<ChildProcess> {
  const c = spawn(process.execPath, [BIN, 'serve', ...flags, '--http-port', String(port)], {
    env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN, RACKBOOT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  base = `http://127.0.0.1:${port}`;
  await until(`serve on ${port} (${stderr})`, async () => (await fetch(`${base}/healthz`)).ok);
  return c;
}

test('the CLI records a rollout, serve carries it out; kill -9 mid-rollout resumes the waves left', async () => {
  const port = await freePort('tcp');
  child = await startServe(port);
  for (const [i, mac] of macs.entries()) {
    const r = await api('POST', '/hosts', { mac, hostname: `crash0${i + 1}`, profile: 'rhvh-base', rack: 'R5' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const rec = cli('rack', 'build', 'R5', '--wave', '1', '--interval', '4');
  assert.equal(rec.status, 0, rec.stderr);
  const id = Number(/^rollout (\d+): 4 host\(s\) of rack R5, builds only/m.exec(rec.stdout)?.[1]);
  assert.ok(id > 0, rec.stdout);
  assert.match(rec.stdout, /rackboot serve carries it out now/);
  // Serve picks it up from the database; kill it while waves are left.
  const first = await until('wave 1 done by serve', async () => {
    const v = (await api('GET', `/rollouts/${id}`)).body;
    return v.hosts[0].step === 'build-started' && v;
  });
  assert.equal(first.hosts[3].step, 'queued');
  child.kill('SIGKILL');
  await new Promise((r) => child!.once('exit', r));
  const cut = cli('rollout', 'show', String(id));
  assert.equal(cut.status, 0, cut.stderr);
  assert.match(cut.stdout, new RegExp(`^rollout ${id} running: rack R5, 4 host\\(s\\)`, 'm'));

  child = await startServe(port);
  const done = await until('rollout done after the restart', async () => {
    const v = (await api('GET', `/rollouts/${id}`)).body;
    return v.status === 'done' && v;
  });
  assert.deepEqual(
    done.hosts.map((h: any) => [h.mac, h.step, h.state]),
    macs.map((m) => [m, 'build-started', 'build']),
  );
  assert.equal(done.hosts[0].buildId, first.hosts[0].buildId, 'the wave done before the kill was not redone');
  for (const m of macs) {
    const tl = (await api('GET', `/hosts/${m}`)).body.events.filter((e: any) => e.type === 'build.start');
    assert.equal(tl.length, 1, `${m}: one build started`);
    assert.equal(tl[0].detail.actor, `rollout ${id} (cli)`);
  }
  const show = cli('rollout', 'show', String(id));
  assert.match(show.stdout, new RegExp(`^rollout ${id} done`, 'm'));
  assert.equal(show.stdout.match(/build-started\tbuild\t/g)?.length, 4, show.stdout);

  // Worst values through the CLI: exit 2, the flag named, nothing recorded.
  const bad: [string[], RegExp][] = [
    [['rack', 'build', 'R5', '--wave', '0'], /--wave: must be a whole number from 1 to 256/],
    [['rack', 'build', 'R5', '--wave', '99999999999'], /--wave:/],
    [['rack', 'build', 'R5', '--interval', 'soon'], /--interval: must be a whole number from 0 to 3600/],
    [['rack', 'build', 'R5\u0001'], /rack: .* is not a rack name/],
    [['rollout', 'show', '1; rm -rf /'], /is not a rollout id/],
    [['rack', 'build'], /rackboot rack build RACK/],
  ];
  for (const [args, re] of bad) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
  }
  assert.equal((await api('GET', '/rollouts')).body.length, 1, 'nothing recorded');
  const rebuild = cli('rack', 'cancel', 'R5');
  assert.equal(rebuild.status, 0, rebuild.stderr);
  assert.match(rebuild.stdout, /rack R5: 4 build\(s\) cancelled/);
  assert.equal((await api('GET', `/hosts/${macs[0]}`)).body.state, 'idle');
});
