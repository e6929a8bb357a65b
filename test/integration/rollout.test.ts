/* eslint-disable @typescript-eslint/no-explicit-any -- the JSON answers under test are read loosely */
// Rollouts end to end on loopback: rackboot serving, the real Redfish driver, the real sushy-emulator (fake driver)
// behind a proxy that counts power actions in flight. Waves never exceed waveSize and are spaced; a cancel stops
// the rest; stuck detection power-cycles once then marks; a rebuild needs confirm and a cancelled one stays built;
// the API refuses worst values and changes nothing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { REPO, tempDir } from '../support/core.ts';
import { loadConfig } from '../../src/config.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { RedfishDriver } from '../../src/bmc/redfish.ts';
import type { Mac } from '../../src/net/mac.ts';
import { startSushy, sushyMissing, type Sushy } from '../fixtures/bmc/sushy.ts';
import { startCountingProxy, type CountingProxy } from '../fixtures/rollout/counting-proxy.ts';

const missing = sushyMissing();
const TOKEN = 'rollout-test-token';
const uuid = (i: number) => `00000000-0000-4000-8000-0000000000${String(i).padStart(2, '0')}`;
const mac = (i: number) => `52:54:00:70:00:${String(i).padStart(2, '0')}` as Mac;
const FAST = { timeoutMs: 3000, retries: 1, backoffMs: 50, pollMs: 100, settleMs: 10_000 };

interface Server {
  run: Running;
  base: string;
  dir: string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

let sushy: Sushy;
let proxy: CountingProxy;
/** Which sushy system each host's BMC is (hosts not listed have no BMC). */
const bmcOf = new Map<string, string>();

async function startServer(configYaml = ''): Promise<Server> {
  const dir = tempDir('rackboot-rollout-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot'), { recursive: true });
  writeFileSync(join(dir, 'rackboot.yaml'), configYaml || '{}\n');
  const config = loadConfig(
    {
      config: join(dir, 'rackboot.yaml'),
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': '0',
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
    },
    {},
    dir,
  );
  const run = await startRackboot(
    config,
    silentLogger(),
    { RACKBOOT_ADMIN_TOKEN: TOKEN },
    {
      bmcFor: (m) => {
        const system = bmcOf.get(m);
        return Promise.resolve(
          system
            ? new RedfishDriver(
                {
                  driver: 'redfish',
                  address: proxy.url,
                  username: 'admin',
                  password: 'password',
                  system,
                  verifyTls: false,
                },
                FAST,
              )
            : undefined,
        );
      },
    },
  );
  const base = `http://127.0.0.1:${run.httpPort}`;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/api${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* text */
    }
    return { status: res.status, body: parsed as any };
  };
  return {
    run,
    base,
    dir,
    api,
    stop: async () => {
      await run.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function addHost(s: Server, i: number, rack: string, withBmc: boolean) {
  const r = await s.api('POST', '/hosts', {
    mac: mac(i),
    hostname: `ro${String(i).padStart(2, '0')}`,
    profile: 'rhvh-base',
    rack,
    position: `U${String(i).padStart(2, '0')}`,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  if (withBmc) bmcOf.set(mac(i), uuid(i));
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function sushySystem(id: string): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${sushy.url}/redfish/v1/Systems/${id}`,
      {
        rejectUnauthorized: false,
        headers: { Authorization: `Basic ${Buffer.from('admin:password').toString('base64')}` },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(JSON.parse(text) as Record<string, any>));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const events = async (s: Server, m: Mac) => {
  await s.run.core.events.flush();
  return (await s.api('GET', `/hosts/${m}`)).body.events as { type: string; status?: string; detail?: any }[];
};

describe('rollouts through Redfish (sushy-emulator)', { skip: missing ? `skipped: ${missing}` : false }, () => {
  let main: Server;
  before(async () => {
    const systems = Array.from({ length: 12 }, (_, k) => ({
      uuid: uuid(k + 1),
      name: `ro${k + 1}`,
      power_state: (k + 1 === 2 ? 'On' : 'Off') as 'On' | 'Off',
      nics: [{ mac: mac(k + 1) }],
    }));
    sushy = await startSushy(systems);
    proxy = await startCountingProxy(sushy.url, sushy.tls, 300);
    main = await startServer();
    for (let i = 1; i <= 6; i++) await addHost(main, i, 'R1', true);
  });
  after(async () => {
    await main?.stop();
    await proxy?.close();
    await sushy?.stop();
  });

  test('a rack in waves: never more than waveSize power actions at once, waves spaced, boot set in the firmware seen', async () => {
    // ro03 was seen booting BIOS (DHCP option 93 = 0): its one-time boot is Legacy; the others were never seen: UEFI.
    main.run.core.provisioner.event({ mac: mac(3), type: 'dhcp.discover', detail: { arch: 0 } });
    const t0 = Date.now();
    const r = await main.api('POST', '/racks/R1/build', { power: true, waveSize: 2, waveIntervalSeconds: 1 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.waves, 3);
    const id = r.body.id as number;
    const done = await until('rollout done', async () => {
      const v = (await main.api('GET', `/rollouts/${id}`)).body;
      return v.status === 'done' && v;
    });
    assert.deepEqual(
      done.hosts.map((h: any) => [h.mac, h.wave, h.step, h.state]),
      [1, 2, 3, 4, 5, 6].map((i) => [mac(i), Math.floor((i - 1) / 2), 'powered', 'build']),
    );
    const resets = proxy.resets.filter((x) => x.at >= t0);
    assert.equal(resets.length, 6, JSON.stringify(resets));
    assert.equal(proxy.maxInFlight, 2, 'the two hosts of a wave together, never more');
    // Waves apart: each wave's first action at least waveIntervalSeconds after the previous wave's last began.
    const waveOf = (sys: string) => Math.floor((Number(sys.slice(-2)) - 1) / 2);
    for (const w of [1, 2]) {
      const prev = Math.max(...resets.filter((x) => waveOf(x.system) === w - 1).map((x) => x.at));
      const next = Math.min(...resets.filter((x) => waveOf(x.system) === w).map((x) => x.at));
      assert.ok(next - prev >= 1000, `wave ${w + 1} began ${next - prev} ms after wave ${w}`);
    }
    assert.equal(resets.find((x) => x.system === uuid(2))!.resetType, 'ForceRestart', 'ro02 was on: restarted');
    assert.equal(resets.find((x) => x.system === uuid(1))!.resetType, 'On');
    for (let i = 1; i <= 6; i++) {
      // sushy's fake driver applies a power change 1-11 s after it answers the reset: wait for it, bounded.
      const sys = await until(`ro0${i} on`, async () => {
        const v = await sushySystem(uuid(i));
        return v.PowerState === 'On' && v;
      });
      assert.equal(sys.PowerState, 'On');
      assert.equal(sys.Boot.BootSourceOverrideTarget, 'Pxe');
      assert.equal(sys.Boot.BootSourceOverrideMode, i === 3 ? 'Legacy' : 'UEFI', `ro0${i}`);
    }
    // sushy's fake driver shows every override as Continuous: what was asked is in the PATCH the proxy saw.
    const patch = proxy.patches.find((x) => x.system === uuid(4))!;
    assert.equal(patch.body.Boot.BootSourceOverrideEnabled, 'Once');
    const tl = await events(main, mac(2));
    assert.ok(tl.some((e) => e.type === 'bmc.power' && e.detail.action === 'cycle' && e.detail.rollout === id));
    assert.ok(tl.some((e) => e.type === 'bmc.boot' && e.detail.mode === 'uefi'));
    const boot3 = (await events(main, mac(3))).find((e) => e.type === 'bmc.boot')!;
    assert.equal(boot3.detail.mode, 'legacy');
    assert.match(boot3.detail.why, /DHCP discover said client architecture 0 \(BIOS\)/);
    const list = (await main.api('GET', '/rollouts')).body.items;
    assert.equal(list[0].id, id);
    assert.deepEqual(list[0].steps, { powered: 6 });
  });

  test('cancel mid-rollout: the waves left never start, the builds it started are cancelled', async () => {
    const t0 = Date.now();
    const r = await main.api('POST', '/racks/R1/build', { power: true, waveSize: 2, waveIntervalSeconds: 3 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.id as number;
    await until('wave 1 powered', async () => {
      const v = (await main.api('GET', `/rollouts/${id}`)).body;
      return v.hosts.filter((h: any) => h.step === 'powered').length === 2 && v;
    });
    const c = await main.api('POST', `/rollouts/${id}/cancel`);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal(c.body.status, 'cancelled');
    assert.deepEqual(
      c.body.hosts.map((h: any) => h.step),
      ['powered', 'powered', 'cancelled', 'cancelled', 'cancelled', 'cancelled'],
    );
    assert.deepEqual(
      c.body.hosts.map((h: any) => h.state),
      ['idle', 'idle', 'build', 'build', 'build', 'build'],
      "the builds it started are cancelled (their earlier ones were superseded); the others keep the first rollout's",
    );
    // Past the time wave 2 was due, with the runner polling every second: nothing more was sent.
    const sent = proxy.resets.filter((x) => x.at >= t0).length;
    await new Promise((res) => setTimeout(res, 4500));
    assert.equal(proxy.resets.filter((x) => x.at >= t0).length, sent);
    assert.equal(sent, 2);
    assert.equal((await main.api('POST', `/rollouts/${id}/cancel`)).status, 409, 'cancelled twice: not running');
  });

  test('rebuild of a built host: refused without confirm, saying what is wiped; a cancelled rebuild leaves it built', async () => {
    await addHost(main, 20, 'R4', false);
    const p = main.run.core.provisioner;
    const b = await p.startBuild(mac(20), 'test');
    assert.ok(b.ok);
    assert.ok((await main.run.core.builds.close(b.value.token, 'built')).ok);
    const before = (await main.api('GET', '/rollouts')).body.items.length;
    const r = await main.api('POST', '/racks/R4/build', { power: true });
    assert.equal(r.status, 409);
    assert.match(r.body.error.message, /rebuilding wipes their disks.*"confirm": true/);
    assert.equal(r.body.error.rebuild[0].hostname, 'ro20');
    assert.match(r.body.error.rebuild[0].wipes, /every disk the installer sees, SAN LUNs included, is cleared/);
    assert.equal((await main.api('GET', '/rollouts')).body.items.length, before, 'nothing recorded');
    assert.equal(p.state(mac(20)), 'built');
    const ok = await main.api('POST', '/racks/R4/build', { power: true, confirm: true });
    assert.equal(ok.status, 202);
    const v = await until('rebuild started', async () => {
      const x = (await main.api('GET', `/rollouts/${ok.body.id}`)).body;
      return x.status === 'done' && x;
    });
    assert.equal(v.hosts[0].step, 'build-started');
    assert.match(v.hosts[0].reason, /no BMC: power it on by hand/);
    assert.equal(p.state(mac(20)), 'build');
    const c = await main.api('POST', '/racks/R4/cancel');
    assert.deepEqual(c.body.builds, [mac(20)]);
    assert.equal(p.state(mac(20)), 'built', 'cancelling a rebuild returns the host to built');
    assert.equal((await main.api('GET', `/hosts/${mac(20)}`)).body.state, 'built');
  });

  test('worst values at every entry: a 400 naming the field, nothing recorded or started', async () => {
    const before = (await main.api('GET', '/rollouts')).body.items.length;
    const events0 = (await events(main, mac(1))).length;
    // A path parameter or a body that is no JSON object: 400; a field of the body refused: 422. Each names its field.
    const cases: [string, string, unknown, number, string | undefined, RegExp][] = [
      ['POST', '/racks/R1/build', { waveSize: 0 }, 422, 'waveSize', /waveSize: must be a whole number from 1 to 256/],
      ['POST', '/racks/R1/build', { waveSize: 1e308 }, 422, 'waveSize', /waveSize/],
      ['POST', '/racks/R1/build', { waveSize: 2.5 }, 422, 'waveSize', /waveSize/],
      ['POST', '/racks/R1/build', { waveIntervalSeconds: 86400 }, 422, 'waveIntervalSeconds', /from 0 to 3600/],
      ['POST', '/racks/R1/build', { power: 'true' }, 422, 'power', /power: must be true or false/],
      ['POST', '/racks/R1/build', { confirm: 1 }, 422, 'confirm', /confirm/],
      ['POST', '/racks/R1/build', { wave: 8 }, 422, 'wave', /wave: unknown field/],
      ['POST', '/racks/R1/build', [1, 2], 400, undefined, /send a JSON object/],
      ['POST', '/racks/R1/build', '{"power": tru', 400, undefined, /not valid JSON/],
      ['POST', '/racks/R1%0Abad/build', {}, 400, 'rack', /rack: no control characters/],
      ['POST', `/racks/${'R'.repeat(65)}/build`, {}, 400, 'rack', /rack:/],
      ['POST', '/hosts/build', {}, 422, 'macs', /macs: must be a list/],
      ['POST', '/hosts/build', { macs: ['not-a-mac'] }, 422, 'macs[0]', /macs\[0\]: "not-a-mac" is not a MAC address/],
      ['POST', '/hosts/build', { macs: [mac(1), mac(1)] }, 422, 'macs[1]', /listed twice/],
      ['POST', '/hosts/build', { macs: Array(10_001).fill(mac(1)) }, 422, 'macs', /at most 10000/],
      ['POST', '/hosts/cancel', { macs: 'all' }, 422, 'macs', /macs: must be a list/],
      ['POST', '/hosts/cancel', { macs: [mac(1)], force: true }, 422, 'force', /force: unknown field/],
      ['GET', '/rollouts/abc', undefined, 400, 'id', /id: not a rollout id/],
      ['GET', '/rollouts/0', undefined, 400, 'id', /id:/],
      ['GET', '/rollouts/99999999999999999999', undefined, 400, 'id', /id:/],
      ['POST', '/rollouts/-1/cancel', undefined, 400, 'id', /id:/],
      ['GET', '/rollouts?limit=0', undefined, 400, 'limit', /limit:/],
      ['GET', '/rollouts?cursor=x', undefined, 400, 'cursor', /cursor:/],
    ];
    for (const [method, path, body, status, field, re] of cases) {
      const r = await main.api(method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.deepEqual(Object.keys(r.body), ['error'], path);
      assert.equal(r.body.error.field, field, `${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, re, path);
    }
    assert.equal((await main.api('POST', '/racks/NOPE/build', {})).status, 404);
    assert.match(
      (await main.api('POST', '/hosts/build', { macs: ['52:54:00:ff:ff:ff'] })).body.error.message,
      /no host with MAC 52:54:00:ff:ff:ff/,
    );
    assert.equal((await main.api('GET', '/rollouts/424242')).status, 404);
    const noToken = await fetch(`${main.base}/api/racks/R1/build`, { method: 'POST' });
    assert.equal(noToken.status, 401);
    assert.equal((await main.api('GET', '/rollouts')).body.items.length, before, 'nothing recorded');
    assert.equal((await events(main, mac(1))).length, events0, 'nothing started');
  });

  test('a host already in a running rollout is refused', async () => {
    const r = await main.api('POST', '/hosts/build', { macs: [mac(5), mac(6)], waveSize: 1, waveIntervalSeconds: 30 });
    assert.equal(r.status, 202);
    const again = await main.api('POST', '/racks/R1/build', {});
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'conflict');
    assert.match(again.body.error.message, new RegExp(`already in running rollout ${r.body.id}`));
    const c = await main.api('POST', '/hosts/cancel', { macs: [mac(5), mac(6)] });
    assert.deepEqual(c.body.rollouts, [r.body.id], 'a rollout left with nothing to do ends');
  });

  test('a silent BMC fails its host with the reason and never holds up the others of its wave', async () => {
    await addHost(main, 11, 'R6', true);
    await addHost(main, 12, 'R6', true);
    proxy.silent.add(uuid(11));
    try {
      const t0 = Date.now();
      const r = await main.api('POST', '/racks/R6/build', { power: true, waveSize: 2 });
      assert.equal(r.status, 202);
      const v = await until('rollout done', async () => {
        const x = (await main.api('GET', `/rollouts/${r.body.id}`)).body;
        return x.status === 'done' && x;
      });
      assert.equal(v.hosts[0].step, 'failed');
      assert.match(
        v.hosts[0].reason,
        /^build started, BMC step failed: BMC redfish https:\/\/127\.0\.0\.1:\d+: .*no answer within 3000 ms: power it on by hand$/,
      );
      assert.equal(v.hosts[0].state, 'build', 'the build stays: power it on by hand');
      const err = (await events(main, mac(11))).find((e) => e.type === 'bmc.error')!;
      assert.match(err.detail.bmc, /^redfish https:\/\/127\.0\.0\.1/);
      assert.ok(!JSON.stringify(err).includes('password'), 'no secret on the timeline');
      // ro12 was powered while ro11 still waited on its BMC, not after ro11 gave up.
      const ro12 = proxy.resets.find((x) => x.system === uuid(12) && x.at >= t0)!;
      assert.equal(v.hosts[1].step, 'powered');
      assert.ok(
        ro12.at < Date.parse(v.hosts[0].updatedAt),
        `ro12 powered at ${ro12.at}, ro11 failed at ${v.hosts[0].updatedAt}`,
      );
    } finally {
      proxy.silent.delete(uuid(11));
    }
  });

  test('stuck: no DHCP after power-on gets one automatic power-cycle, then the host is marked stuck', async () => {
    const s = await startServer('stuck:\n  dhcpAfterPowerOn: 2s\n  kernelAfterLoader: 2s\n  checkEvery: 1s\n');
    try {
      await addHost(s, 9, 'R3', true);
      await addHost(s, 10, 'R3', false);
      const t0 = Date.now();
      const r = await s.api('POST', '/racks/R3/build', { power: true });
      assert.equal(r.status, 202);
      // ro10 has no BMC: someone powered it by hand, it DHCPed, then nothing.
      await until('ro10 in build', async () => s.run.core.provisioner.state(mac(10)) === 'build');
      s.run.core.provisioner.event({ mac: mac(10), type: 'dhcp.ack', clientIp: '10.0.0.10' });
      const stuck = await until(
        'ro09 stuck',
        async () => {
          const h = (await s.api('GET', `/hosts/${mac(9)}`)).body;
          return h.stuck && h;
        },
        30_000,
      );
      assert.match(stuck.stuck.text, /^stuck: power-on for \d+s$/);
      assert.equal(stuck.stuck.waitingFor, 'dhcp');
      assert.equal(stuck.stuck.autoCycled, true);
      assert.equal(stuck.stuck.lastSeen.type, 'bmc.power');
      const tl = stuck.events.map((e: any) =>
        e.type === 'bmc.power'
          ? `power:${e.detail.action}:${e.detail.auto ? 'auto' : e.detail.rollout}`
          : `${e.type}:${e.status ?? ''}`,
      );
      const at = (t: string) => tl.indexOf(t);
      assert.ok(at(`power:on:${r.body.id}`) >= 0 && at(`power:on:${r.body.id}`) < at('power:cycle:auto'), tl.join(' '));
      assert.ok(at('power:cycle:auto') < at('stuck:power-on'), tl.join(' '));
      const mine = () => proxy.resets.filter((x) => x.system === uuid(9) && x.at >= t0);
      assert.deepEqual(
        mine().map((x) => x.resetType),
        ['On', 'ForceRestart'],
        'one power-on by the rollout, one automatic cycle',
      );
      const noBmc = await until(
        'ro10 stuck',
        async () => {
          const h = (await s.api('GET', `/hosts/${mac(10)}`)).body;
          return h.stuck && h;
        },
        30_000,
      );
      assert.equal(noBmc.stuck.stage, 'dhcp');
      assert.equal(noBmc.stuck.autoCycled, false, 'no BMC: marked without a cycle');
      // Two more checks later: marked once, never cycled again.
      await new Promise((res) => setTimeout(res, 2500));
      assert.equal(mine().length, 2);
      assert.equal((await events(s, mac(9))).filter((e) => e.type === 'stuck').length, 1);
      // It moves on: the mark goes.
      s.run.core.provisioner.event({ mac: mac(9), type: 'dhcp.ack', clientIp: '10.0.0.9' });
      assert.equal((await s.api('GET', `/hosts/${mac(9)}`)).body.stuck, null);
    } finally {
      await s.stop();
    }
  });
});
