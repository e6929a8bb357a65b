// Which host a client address is, and who gets a build token: in process on loopback, real TFTP clients
// (curl tftp:// bound to a chosen 127.x source, tftp-hpa), real HTTP from chosen source addresses, real
// SQLite leases, a real syslog socket. Each 127.0.0.x address plays one machine:
//   127.0.0.3  host A, tied by its DHCP lease (authoritative mode)
//   127.0.0.1  host B, tied by its static IP (tftp-hpa cannot choose its source: it sends from here)
//   127.0.0.5  host C, tied by the address proxy-DHCP learnt
//   127.0.0.6  host D's installer: no address rackboot knows, its kickstart request names its MAC
//   127.0.0.9  a stranger on the provisioning network
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import http from 'node:http';
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO, tempDir } from '../support/core.ts';
import { LeaseStore } from '../../src/dhcp/leases.ts';

const ADMIN = 'identity-test-admin-token-0123456789';
const A = '52:54:00:1d:00:0a',
  B = '52:54:00:1d:00:0b',
  C = '52:54:00:1d:00:0c',
  D = '52:54:00:1d:00:0d';
const IP_A = '127.0.0.3',
  IP_B = '127.0.0.1',
  IP_C = '127.0.0.5',
  IP_D = '127.0.0.6',
  STRANGER = '127.0.0.9';
const UUID_SHARED = '4c4c4544-0000-1111-2222-333344445555',
  UUID_B = '4c4c4544-0000-1111-2222-bbbbbbbbbbbb';
const dashes = (mac: string) => mac.replace(/:/g, '-');
const GRUB_DEFAULTS = [
  'grub.cfg',
  '/grub.cfg',
  'grub/grub.cfg',
  '/grub/grub.cfg',
  'EFI/BOOT/grub.cfg',
  '/EFI/BOOT/grub.cfg',
  'boot/grub/grub.cfg',
  '/boot/grub/grub.cfg',
  'EFI/redhat/grub.cfg',
];

let run: Running;
let dir: string;
let base: string;
let syslogPort: number;
const builds: Record<
  string,
  { token: string; kickstartUrl: string; builtUrl: string; eventsUrl: string; buildId: number }
> = {};

async function freeUdpPort(): Promise<number> {
  for (;;) {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    s.close();
    const free = await new Promise<boolean>((r) => {
      const t = net.createServer();
      t.once('error', () => r(false));
      t.listen(port, '127.0.0.1', () => t.close(() => r(true)));
    });
    if (free) return port;
  }
}

interface Res {
  status: number;
  text: string;
}
function request(
  method: string,
  path: string,
  opts: { from?: string; headers?: Record<string, string>; body?: string; auth?: boolean } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const headers: Record<string, string> = {
      ...(opts.auth ? { Authorization: `Bearer ${ADMIN}` } : {}),
      ...opts.headers,
    };
    if (opts.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(opts.body));
    const req = http.request(
      { host: u.hostname, port: u.port, method, path, headers, localAddress: opts.from, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
const api = (method: string, path: string, body?: unknown) =>
  request(method, `/api${path}`, {
    auth: true,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
  });

/** curl tftp:// from a chosen source address (not spawnSync: the TFTP server runs in this process). `//x` sends "/x", as GRUB does. */
function tftp(from: string, name: string): Promise<{ ok: boolean; text: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '10', '--interface', from, `tftp://127.0.0.1:${run.tftpPort}/${name}`],
      { encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ ok: !err, text: stdout, err: stderr }),
    );
  });
}
function tftpHpa(name: string): Promise<string> {
  const out = join(dir, `hpa-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    execFile(
      'tftp',
      ['127.0.0.1', String(run.tftpPort), '-m', 'binary', '-c', 'get', name, out],
      { timeout: 15_000 },
      (err) => {
        if (err) return reject(err);
        try {
          resolve(readFileSync(out, 'utf8'));
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}

type Ev = { type: string; clientIp?: string; status?: string; detail?: Record<string, unknown> };
async function timeline(mac: string): Promise<Ev[]> {
  await run.core.events.flush();
  return (JSON.parse((await api('GET', `/hosts/${mac}`)).text) as { events: Ev[] }).events;
}
const hasToken = (text: string, mac: string) => text.includes(builds[mac].token);

before(async () => {
  dir = tempDir('rackboot-identity-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot'), { recursive: true });
  syslogPort = await freeUdpPort();
  const config = loadConfig(
    {
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': String(await freeUdpPort()),
      'syslog-port': String(syslogPort),
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
    },
    {},
    dir,
  );
  run = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: ADMIN });
  base = `http://127.0.0.1:${run.httpPort}`;
  const hosts = [
    { mac: A, hostname: 'id-a', profile: 'rhvh-base', uuid: UUID_SHARED },
    { mac: B, hostname: 'id-b', profile: 'rhvh-base', uuid: UUID_B, ip: IP_B, netmask: '255.0.0.0' },
    { mac: C, hostname: 'id-c', profile: 'rhvh-base', uuid: UUID_SHARED },
    { mac: D, hostname: 'id-d', profile: 'rhvh-base' },
  ];
  for (const h of hosts) {
    const r = await api('POST', '/hosts', h);
    assert.equal(r.status, 201, r.text);
    const b = await api('POST', `/hosts/${h.mac}/build`);
    assert.equal(b.status, 201, b.text);
    const v = JSON.parse(b.text) as { kickstartUrl: string; builtUrl: string; eventsUrl: string; buildId: number };
    builds[h.mac] = { ...v, token: new URL(v.kickstartUrl).pathname.slice('/ks/'.length) };
  }
  // What the DHCP server does: a bound lease for A (authoritative), an address learnt for C (proxy mode).
  // DHCP is off here: the lease is recorded through the DHCP server's own LeaseStore, and the boot paths ask it
  // the way serve.ts wires them when DHCP is on.
  const now = Date.now();
  const leases = new LeaseStore(run.core.store.leases);
  await leases.load();
  assert.ok(
    leases.bind({
      subnet: '127.0.0.0/8',
      mac: A as Mac,
      ip: IP_A,
      expiresAt: now + 3600_000,
      dynamic: true,
      now,
    }),
  );
  await leases.commit();
  run.core.setLeaseLookup((ip) => {
    const l = leases.byIp(ip);
    return l?.state === 'bound' && l.mac && l.expiresAt > Date.now() ? l.mac : undefined;
  });
  run.core.provisioner.learnClient(IP_C, C as Mac);
});
after(async () => {
  await run?.close();
});

test("a default config name from a client tied to a host gets that host's config, exactly as its per-MAC name (TFTP and HTTP)", async () => {
  for (const [mac, ip, via] of [
    [A, IP_A, 'lease'],
    [B, IP_B, 'static'],
    [C, IP_C, 'learnt'],
  ] as const) {
    const perMac = await tftp(ip, `boot/grub/grub.cfg-01-${dashes(mac)}`);
    assert.ok(perMac.ok, perMac.err);
    assert.ok(hasToken(perMac.text, mac), `${mac}: its own per-MAC file carries its token`);
    for (const name of GRUB_DEFAULTS) {
      const t = await tftp(ip, name);
      assert.ok(t.ok, `${name} from ${ip}: ${t.err}`);
      assert.equal(t.text, perMac.text, `TFTP ${name} from ${ip} (${via}) is ${mac}'s install config`);
      const h = await request('GET', `/tftp/${name.replace(/^\//, '')}`, { from: ip });
      assert.equal(h.status, 200);
      assert.equal(h.text, perMac.text, `HTTP ${name} from ${ip} (${via})`);
    }
    const pxeDefault = await tftp(ip, 'pxelinux.cfg/default');
    assert.equal(pxeDefault.text, (await tftp(ip, `pxelinux.cfg/01-${dashes(mac)}`)).text);
    assert.match(pxeDefault.text, new RegExp(`inst\\.ks=${builds[mac].kickstartUrl}`));
    const ipxe = await request('GET', '/boot/ipxe', { from: ip });
    assert.match(
      ipxe.text,
      new RegExp(`inst\\.ks=${builds[mac].kickstartUrl}`),
      "/boot/ipxe without a MAC is the requester's script",
    );
    const ev = (await timeline(mac)).filter((e) => e.type === 'grub.config' && e.detail?.name === 'grub/grub.cfg');
    assert.ok(
      ev.length >= 2 && ev.every((e) => e.detail?.resolvedBy === via && e.status === 'install' && e.clientIp === ip),
      JSON.stringify(ev),
    );
  }
  // tftp-hpa sends from 127.0.0.1, B's static IP: the name Debian's signed grubnetx64 asks.
  if (!spawnSync('tftp', ['-V']).error)
    assert.ok(hasToken(await tftpHpa('/grub/grub.cfg'), B), "tftp-hpa: /grub/grub.cfg is B's install config");
});

test('a client no host is tied to gets the default: GRUB chains to its per-MAC file, pxelinux boots local, never a token', async () => {
  const grub = await tftp(STRANGER, '/grub/grub.cfg');
  assert.ok(grub.ok, grub.err);
  assert.match(grub.text, /\$net_default_mac/);
  assert.match(grub.text, /configfile "\$prefix\/grub\.cfg-01-\$rb_m1-\$rb_m2-\$rb_m3-\$rb_m4-\$rb_m5-\$rb_m6"/);
  assert.match(grub.text, /chainloader/);
  assert.doesNotMatch(grub.text, /inst\.ks|^\s*linux(efi)?\s/m);
  const file = join(dir, 'grub-default.cfg');
  writeFileSync(file, grub.text);
  const check = spawnSync('grub-script-check', [file], { encoding: 'utf8' });
  if (check.error) assert.fail('grub-script-check (Debian grub-common) is needed for this test');
  assert.equal(check.status, 0, check.stderr + check.stdout);
  const http = await request('GET', '/tftp/EFI/BOOT/grub.cfg', { from: STRANGER });
  assert.equal(http.text, grub.text);
  assert.match((await tftp(STRANGER, 'pxelinux.cfg/default')).text, /LOCALBOOT 0/);
  for (const mac of [A, B, C, D])
    assert.ok(
      !(await timeline(mac)).some((e) => e.clientIp === STRANGER && /\.config$/.test(e.type)),
      "no host took the stranger's request",
    );
});

test("a per-MAC (or per-IP) name asked from another address gets no token, and the host's timeline says why", async () => {
  const asks: [string, () => Promise<string>][] = [
    [STRANGER, async () => (await tftp(STRANGER, `boot/grub/grub.cfg-01-${dashes(A)}`)).text],
    [STRANGER, async () => (await tftp(STRANGER, `pxelinux.cfg/01-${dashes(A)}`)).text],
    [STRANGER, async () => (await request('GET', `/tftp/grub.cfg-01-${dashes(A)}`, { from: STRANGER })).text],
    [STRANGER, async () => (await request('GET', `/boot/ipxe/${A}`, { from: STRANGER })).text],
    [IP_B, async () => (await request('GET', `/boot/ipxe?mac=${A}`, { from: IP_B })).text],
    [IP_C, async () => (await tftp(IP_C, `/EFI/BOOT/grub.cfg-01-${dashes(A)}`)).text],
    [
      STRANGER,
      async () => (await request('GET', `/tftp/${'d/'.repeat(4000)}grub.cfg-01-${dashes(A)}`, { from: STRANGER })).text,
    ],
  ];
  for (const [from, ask] of asks) {
    const text = await ask();
    assert.ok(text.length > 0);
    assert.ok(!hasToken(text, A), `no token for ${from}`);
    assert.doesNotMatch(text, /inst\.ks/);
  }
  // A stranger looping on the same name: one event per 30 s, not one per request.
  for (let i = 0; i < 5; i++) assert.ok(!hasToken(await asks[0][1](), A));
  const refused = (await timeline(A)).filter((e) => e.type === 'config.refused');
  assert.equal(refused.length, asks.length);
  assert.ok(
    refused.every((e) => String(e.detail?.name).length <= 201),
    "a stranger's 8 KB name is cut short on the timeline",
  );
  assert.ok(
    refused.some(
      (e) => e.clientIp === STRANGER && /^requester 127\.0\.0\.9 resolves to no host/.test(String(e.detail?.reason)),
    ),
  );
  assert.ok(
    refused.some(
      (e) => e.clientIp === IP_B && String(e.detail?.reason) === `requester ${IP_B} resolves to ${B} (static)`,
    ),
  );
  assert.ok(
    refused.some(
      (e) => e.clientIp === IP_C && String(e.detail?.reason) === `requester ${IP_C} resolves to ${C} (learnt)`,
    ),
  );
  // Per-IP names are the requester's own address in hex: A's from A, nothing from anyone else.
  assert.ok(hasToken((await tftp(IP_A, 'pxelinux.cfg/7F000003')).text, A));
  assert.equal((await tftp(STRANGER, 'pxelinux.cfg/7F000003')).ok, false, "another address's hex name is not served");
  assert.equal((await tftp(STRANGER, 'pxelinux.cfg/7F000009')).ok, false);
});

test('UUID-named pxelinux configs: only for a unique UUID, only to its host', async () => {
  const shared = await tftp(IP_A, `pxelinux.cfg/${UUID_SHARED}`);
  assert.equal(shared.ok, false, 'a UUID two hosts carry is not answered: pxelinux goes on to 01-<mac>');
  for (const mac of [A, C]) {
    const ev = (await timeline(mac)).filter((e) => e.type === 'config.refused' && e.status === 'uuid');
    assert.ok(
      ev.some((e) => /belongs to 2 hosts \(id-a, id-c\)/.test(String(e.detail?.reason))),
      JSON.stringify(ev),
    );
  }
  assert.ok(hasToken((await tftp(IP_B, `pxelinux.cfg/${UUID_B}`)).text, B), 'a unique UUID from its own host');
  assert.ok(hasToken((await tftp(IP_B, `pxelinux.cfg/${UUID_B.toUpperCase()}`)).text, B));
  assert.equal((await tftp(STRANGER, `pxelinux.cfg/${UUID_B}`)).ok, false, 'a unique UUID from another address');
  assert.equal((await tftp(IP_C, `pxelinux.cfg/${UUID_B}`)).ok, false);
  assert.ok((await timeline(B)).some((e) => e.type === 'config.refused' && e.status === 'uuid' && e.clientIp === IP_C));
});

test("the kickstart goes only to a request naming the host's MAC (inst.ks.sendmac) or from its address", async () => {
  const ks = new URL(builds[D].kickstartUrl).pathname;
  const cases: [string, Record<string, string>, string][] = [
    ['no header', {}, ks],
    ["another host's MAC", { 'X-RHN-Provisioning-MAC-0': `eth0 ${A}` }, ks],
    ['a bare MAC without the interface', { 'X-RHN-Provisioning-MAC-0': D }, ks],
    ['a MAC in a header of another name', { 'X-RHN-Provisioning-MAC': `eth0 ${D}` }, ks],
    ['control characters', { 'X-RHN-Provisioning-MAC-0': `eth0\t${D}x` }, ks],
    ['the express route (query string)', { 'X-RHN-Provisioning-MAC-0': `eth0 ${A}` }, `${ks}?retry=1`],
  ];
  for (const [what, headers, path] of cases) {
    const r = await request('GET', path, { from: STRANGER, headers });
    assert.equal(r.status, 403, what);
    assert.match(
      r.text,
      /kickstart refused: requester 127\.0\.0\.9 resolves to no host .* not 52:54:00:1d:00:0d/,
      what,
    );
    assert.doesNotMatch(r.text, /rootpw/);
  }
  const refused = (await timeline(D)).filter((e) => e.type === 'kickstart.refused' && e.status === 'requester');
  assert.equal(refused.length, cases.length);
  // Anaconda sends one header per NIC; the PXE NIC's is among them.
  const ok = await request('GET', ks, {
    from: IP_D,
    headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${A}`, 'X-RHN-Provisioning-MAC-1': `ens3 ${D.toUpperCase()}` },
  });
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.text, /rootpw/);
  const fetched = (await timeline(D)).find((e) => e.type === 'kickstart.fetched');
  assert.equal(fetched?.detail?.matchedBy, 'sendmac');
  // Once fetched, only that address may fetch it again, with or without a header.
  assert.equal((await request('GET', ks, { from: IP_D })).status, 200);
  const again = await request('GET', ks, { from: STRANGER, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${D}` } });
  assert.equal(again.status, 403);
  assert.match(again.text, /fetched from 127\.0\.0\.6; only that address may fetch it again/);
  // A's kickstart by its lease address alone (no header).
  const a = await request('GET', new URL(builds[A].kickstartUrl).pathname, { from: IP_A });
  assert.equal(a.status, 200);
  assert.equal((await timeline(A)).find((e) => e.type === 'kickstart.fetched')?.detail?.matchedBy, 'lease');
});

test('after the kickstart fetch only that address speaks for the build: callbacks and syslog lines from others are refused', async () => {
  // A forged proxy-DHCP packet taught rackboot that 127.0.0.7 is A; A's kickstart was fetched from 127.0.0.3 (test above).
  const FORGER = '127.0.0.7';
  run.core.provisioner.learnClient(FORGER, A as Mac);
  for (const [from, method, path, body] of [
    [STRANGER, 'POST', new URL(builds[A].builtUrl).pathname, undefined],
    [FORGER, 'GET', new URL(builds[A].builtUrl).pathname, undefined],
    [FORGER, 'POST', `/failed/${builds[A].token}`, 'fake failure'],
    [IP_B, 'POST', new URL(builds[A].eventsUrl).pathname, '{"step":"nodectl-init"}'],
  ] as const) {
    const r = await request(method, path, { from, body, headers: body ? { 'Content-Type': 'application/json' } : {} });
    assert.equal(r.status, 403, `${method} ${path} from ${from}: ${r.text}`);
    assert.match(
      r.text,
      new RegExp(
        `refused: requester ${from.replace(/\./g, '\\.')} is not 127\\.0\\.0\\.3, the address that fetched build \\d+'s kickstart`,
      ),
    );
  }
  assert.equal(JSON.parse((await api('GET', `/hosts/${A}`)).text).state, 'build', 'nothing changed');
  const types = (await timeline(A)).map((e) => e.type);
  for (const t of ['built.refused', 'failed.refused', 'progress.refused'])
    assert.ok(types.includes(t), `${t} in ${types}`);
  assert.ok(!types.includes('progress'));

  // Syslog: the forger's lines are not A's; the fetcher's are.
  const s = dgram.createSocket('udp4');
  for (const [from, line] of [
    [FORGER, '<30>May  1 10:00:00 localhost anaconda: forged line'],
    [IP_A, '<30>May  1 10:00:00 localhost anaconda: real line'],
  ]) {
    const c = dgram.createSocket('udp4');
    await new Promise<void>((r) => c.bind(0, from, () => r()));
    await new Promise<void>((r) => c.send(line, syslogPort, '127.0.0.1', () => r()));
    c.close();
  }
  s.close();
  let lines: string[] = [];
  for (const end = Date.now() + 10_000; Date.now() < end && lines.length === 0;) {
    await run.core.syslog.flush();
    lines = (JSON.parse((await api('GET', `/hosts/${A}/logs`)).text) as { lines: { text: string }[] }).lines.map(
      (l) => l.text,
    );
    if (!lines.length) await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(lines, ['real line']);

  // The installer itself.
  assert.equal(
    (
      await request('POST', new URL(builds[A].eventsUrl).pathname, {
        from: IP_A,
        body: '{"step":"nodectl-init"}',
        headers: { 'Content-Type': 'application/json' },
      })
    ).status,
    200,
  );
  assert.equal((await request('POST', new URL(builds[A].builtUrl).pathname, { from: IP_A })).status, 200);
  assert.equal(JSON.parse((await api('GET', `/hosts/${A}`)).text).state, 'built');
  // Before any kickstart fetch, the host's own address (C: learnt) may call back; another may not.
  assert.equal((await request('POST', new URL(builds[C].builtUrl).pathname, { from: STRANGER })).status, 403);
  assert.equal((await request('POST', new URL(builds[C].builtUrl).pathname, { from: IP_C })).status, 200);
});
