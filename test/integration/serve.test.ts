// The real process: `rackboot serve` as a child, real sockets on 127.0.0.1, a real SQLite file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync, readFileSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { REPO, tempDir } from '../support/core.ts';
import { dirArgsOf } from '../support/server-env.ts';
import { freePort } from '../support/ports.ts';
import { cpSync } from 'node:fs';

const BIN = join(REPO, 'bin/rackboot.mjs');
const TOKEN = 'serve-test-token';

const freeUdpPort = () => freePort('udp');

interface Instance {
  proc: ChildProcess;
  base: string;
  out: () => string;
  dir: string;
  args: string[];
}

function flagsFor(dir: string, http: number, tftp: number): string[] {
  return [
    '--listen',
    '127.0.0.1',
    '--http-port',
    String(http),
    '--tftp-port',
    String(tftp),
    ...dirArgsOf(dir, `http://127.0.0.1:${http}`),
  ];
}

async function start(dir: string, args: string[]): Promise<Instance> {
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], {
    env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const http = args[args.indexOf('--http-port') + 1];
  const deadline = Date.now() + 20_000;
  while (!out.includes('rackboot serving')) {
    if (proc.exitCode !== null) throw new Error(`rackboot exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`rackboot did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, base: `http://127.0.0.1:${http}`, out: () => out, dir, args };
}

async function stop(i: Instance, signal: NodeJS.Signals = 'SIGTERM') {
  if (i.proc.exitCode !== null) return;
  i.proc.kill(signal);
  await once(i.proc, 'exit');
}

function fixture(): string {
  const dir = tempDir();
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot'), { recursive: true });
  return dir;
}

const api = (base: string, path: string, init: RequestInit = {}) =>
  fetch(base + path, {
    ...init,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) },
  });

test('serve: start-up line says DHCP is off; TFTP serves per-host configs to a real client', async () => {
  const dir = fixture();
  const [http, tftp] = [await freePort('tcp'), await freeUdpPort()];
  const i = await start(dir, flagsFor(dir, http, tftp));
  try {
    assert.match(i.out(), /DHCP off/);
    assert.equal(
      (
        await api(i.base, '/api/hosts', {
          method: 'POST',
          body: JSON.stringify({
            mac: '52:54:00:00:00:01',
            hostname: 'h1',
            profile: 'rhvh-base',
            ip: '127.0.0.1',
            netmask: '255.0.0.0',
          }),
        })
      ).status,
      201,
    );
    const b = (await (await api(i.base, '/api/hosts/52:54:00:00:00:01/build', { method: 'POST' })).json()) as {
      kickstartUrl: string;
    };
    const has = (cmd: string) => !spawnSync(cmd, ['--version']).error;
    if (has('curl')) {
      const r = spawnSync(
        'curl',
        ['-sS', '--max-time', '10', `tftp://127.0.0.1:${tftp}/pxelinux.cfg/01-52-54-00-00-00-01`],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`inst\\.ks=${b.kickstartUrl}`));
      // The default name from the host's own address (its static IP) is its config too: a loader that asks only "default" installs.
      const def = spawnSync('curl', ['-sS', '--max-time', '10', `tftp://127.0.0.1:${tftp}/pxelinux.cfg/default`], {
        encoding: 'utf8',
      });
      assert.equal(def.stdout, r.stdout);
      const stranger = spawnSync(
        'curl',
        ['-sS', '--max-time', '10', '--interface', '127.0.0.9', `tftp://127.0.0.1:${tftp}/pxelinux.cfg/default`],
        { encoding: 'utf8' },
      );
      assert.match(stranger.stdout, /LOCALBOOT 0/);
      assert.doesNotMatch(stranger.stdout, /inst\.ks/);
    }
    const ks = await fetch(b.kickstartUrl);
    assert.equal(ks.status, 200);
    const view = (await (await api(i.base, '/api/hosts/52:54:00:00:00:01')).json()) as { events: { type: string }[] };
    assert.ok(view.events.some((e) => e.type === 'pxelinux.config'));
    assert.doesNotMatch(
      i.out(),
      new RegExp(new URL(b.kickstartUrl).pathname.slice(4, 20)),
      'the token never reaches the log',
    );
  } finally {
    await stop(i);
  }
});

test('serve: a bad setting exits 2 naming it; a taken port fails clearly and frees the others', async () => {
  const r = spawnSync(process.execPath, [BIN, 'serve', '--dhcp-mode', 'sometimes'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--dhcp-mode "sometimes" must be off, proxy or authoritative/);
  const u = spawnSync(process.execPath, [BIN, 'serve', '--public-url', 'ftp://x'], { encoding: 'utf8' });
  assert.equal(u.status, 2);
  assert.match(u.stderr, /--public-url/);
  const dir = fixture();
  const http = await freePort('tcp');
  const blocker = createSocket('udp4');
  await new Promise<void>((res) => blocker.bind(0, '127.0.0.1', () => res()));
  const taken = blocker.address().port;
  const res = spawnSync(process.execPath, [BIN, 'serve', ...flagsFor(dir, http, taken)], {
    encoding: 'utf8',
    timeout: 20000,
  });
  blocker.close();
  assert.equal(res.status, 1);
  assert.match(res.stderr, /EADDRINUSE.*another process has this port/);
});

test('serve: a valid profile edit takes effect live; a broken one is refused and the last good keeps serving', async () => {
  const dir = fixture();
  const i = await start(dir, flagsFor(dir, await freePort('tcp'), await freeUdpPort()));
  try {
    await api(i.base, '/api/hosts', {
      method: 'POST',
      body: JSON.stringify({
        mac: '52:54:00:00:00:02',
        hostname: 'h2',
        profile: 'rhvh-base',
        ip: '127.0.0.1',
        netmask: '255.0.0.0',
      }),
    });
    const b = (await (await api(i.base, '/api/hosts/52:54:00:00:00:02/build', { method: 'POST' })).json()) as {
      kickstartUrl: string;
    };
    const file = join(dir, 'profiles/rhvh-base.yaml');
    const good = readFileSync(file, 'utf8');
    const waitFor = async (check: () => Promise<boolean>) => {
      const end = Date.now() + 10_000;
      while (!(await check())) {
        if (Date.now() > end) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    };
    // atomic save, as editors and the UI do
    writeFileSync(file + '.tmp', good.replace('name: UTC', 'name: Asia/Tokyo'));
    renameSync(file + '.tmp', file);
    assert.ok(
      await waitFor(async () => /timezone Asia\/Tokyo/.test(await (await fetch(b.kickstartUrl)).text())),
      'valid edit took effect',
    );
    writeFileSync(file, good.replace('keyboard: us', 'keyboard: [broken'));
    assert.ok(
      await waitFor(
        async () => ((await (await api(i.base, '/api/profiles')).json()) as { errors: unknown[] }).errors.length > 0,
      ),
      'error visible in the API',
    );
    const profiles = (await (await api(i.base, '/api/profiles')).json()) as {
      profiles: { name: string; stale: boolean }[];
      errors: { text: string }[];
    };
    assert.ok(profiles.profiles.find((p) => p.name === 'rhvh-base')!.stale);
    assert.match(profiles.errors[0].text, /rhvh-base\.yaml:\d+: YAML syntax/);
    assert.match(await (await fetch(b.kickstartUrl)).text(), /timezone Asia\/Tokyo/, 'last good version still serving');
    assert.match(i.out(), /profile error: .*rhvh-base\.yaml/);
  } finally {
    await stop(i);
  }
});

test('kill -9 during a rollout loses no acknowledged build record', async () => {
  const dir = fixture();
  const flags = flagsFor(dir, await freePort('tcp'), 0);
  let i = await start(dir, flags);
  const N = 40;
  const macs = Array.from({ length: N }, (_, n) => `52:54:00:01:00:${n.toString(16).padStart(2, '0')}`);
  const builtUrls: string[] = [];
  for (const [n, mac] of macs.entries()) {
    assert.equal(
      (
        await api(i.base, '/api/hosts', {
          method: 'POST',
          body: JSON.stringify({ mac, hostname: `r${n}`, profile: 'rhvh-base' }),
        })
      ).status,
      201,
    );
    const b = (await (await api(i.base, `/api/hosts/${mac}/build`, { method: 'POST' })).json()) as {
      builtUrl: string;
      kickstartUrl: string;
    };
    // The installer fetches its kickstart first (naming its MAC, inst.ks.sendmac): that address then speaks for the build.
    assert.equal((await fetch(b.kickstartUrl, { headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${mac}` } })).status, 200);
    builtUrls.push(b.builtUrl);
  }
  const acknowledged = new Set<number>();
  for (let round = 0; round < 4; round++) {
    // hosts call back concurrently; the server is killed partway through
    const pending = builtUrls.map(async (url, n) => {
      if (acknowledged.has(n)) return;
      await new Promise((r) => setTimeout(r, Math.random() * 150));
      try {
        const r = await fetch(url, { method: 'POST' });
        if (r.status === 200) acknowledged.add(n);
      } catch {
        /* the server died mid-request */
      }
    });
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 100));
    i.proc.kill('SIGKILL');
    await once(i.proc, 'exit');
    await Promise.allSettled(pending);
    i = await start(dir, flags);
  }
  try {
    const hosts = ((await (await api(i.base, '/api/hosts')).json()) as { items: { mac: string; state: string }[] })
      .items;
    assert.equal(hosts.length, N);
    for (const n of acknowledged)
      assert.equal(hosts.find((h) => h.mac === macs[n])!.state, 'built', `${macs[n]} was acknowledged as built`);
    for (const h of hosts)
      assert.ok(['build', 'built'].includes(h.state), `${h.mac} in an explainable state: ${h.state}`);
    // the rest finish after the restarts: nothing was corrupted
    for (const url of builtUrls) assert.equal((await fetch(url, { method: 'POST' })).status, 200);
    const integrity = spawnSync(
      process.execPath,
      [
        '-e',
        `const D=require(${JSON.stringify(join(REPO, 'node_modules/better-sqlite3'))});console.log(new D(${JSON.stringify(join(dir, 'data/rackboot.db'))},{readonly:true}).pragma('integrity_check',{simple:true}))`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(integrity.stdout.trim(), 'ok');
    assert.ok(acknowledged.size > 0, 'some callbacks were acknowledged before a kill');
  } finally {
    await stop(i);
  }
});

test('CLI: render prints what the server serves; lint finds broken hosts; hash-password', async () => {
  const dir = fixture();
  const flags = flagsFor(dir, await freePort('tcp'), 0);
  const i = await start(dir, flags);
  let ks: string;
  try {
    await api(i.base, '/api/hosts', {
      method: 'POST',
      body: JSON.stringify({
        mac: '52:54:00:00:00:03',
        hostname: 'h3',
        profile: 'rhvh-base',
        ip: '127.0.0.1',
        netmask: '255.0.0.0',
      }),
    });
    const b = (await (await api(i.base, '/api/hosts/52:54:00:00:00:03/build', { method: 'POST' })).json()) as {
      kickstartUrl: string;
    };
    ks = await (await fetch(b.kickstartUrl)).text();
  } finally {
    await stop(i);
  }
  const cli = (...a: string[]) =>
    spawnSync(process.execPath, [BIN, ...a, ...flags.filter((_, n) => n >= 6)], { encoding: 'utf8', input: '' });
  const r = cli('render', 'kickstart', '--mac', '52-54-00-00-00-03');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, ks);
  assert.equal(cli('lint').status, 0);
  assert.equal(cli('render', 'kickstart', '--mac', 'nope').status, 2);
  writeFileSync(join(dir, 'profiles/broken.yaml'), 'extends: rhvh-base\nstig: { enabled: maybe }\n');
  const lint = cli('lint');
  assert.equal(lint.status, 1);
  assert.match(lint.stderr, /broken\.yaml:2: stig\.enabled/);
  const h = spawnSync(process.execPath, [BIN, 'hash-password'], { encoding: 'utf8', input: 'pa55word\n' });
  assert.equal(h.status, 0);
  assert.match(h.stdout.trim(), /^\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/);
});
