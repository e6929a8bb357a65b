// A rack built from one command with nobody touching power: 4 QEMU machines behind real BMCs, 2 behind the
// Redfish emulator (sushy-tools, one UEFI and one BIOS: the mode of the one-time boot picks the firmware) and 2
// behind OpenIPMI's ipmi_sim (UEFI), as ../shared/bmc-lab runs them, in this suite's own namespace with rackboot
// as the only DHCP/TFTP/HTTP server. First the 4 are built the way a tech does it today (a build per host, then
// at each machine: network boot once and power on); then, with every host installed and the UEFI one set to boot
// its disk first, `rackboot rack build R1 --power --confirm` rebuilds them all. Both times are printed.
import './rack-ns.ts';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  skipReason,
  setUpAsTheReadmeSays,
  netUp,
  netDown,
  startRouterAdverts,
  startRackboot,
  api,
  dirFlags,
  Background,
  PROFILES,
  BRIDGE,
  NS,
  REPO,
  SERVER_IP,
} from './lab.ts';

// ../shared beside the checkout (main), or two levels up from a worktree under wt/.
const LAB = [join(REPO, '../shared/bmc-lab'), join(REPO, '../../shared/bmc-lab')].find((p) => existsSync(p)) ?? '';
const MEM = '384';
const missing =
  skipReason() ??
  (LAB ? undefined : 'the shared BMC lab (../shared/bmc-lab) is not beside the project') ??
  (spawnSync('sh', ['-c', 'command -v tcpdump && command -v ipmi_sim && command -v ipmitool']).status !== 0
    ? 'the BMC labs need tcpdump, ipmi_sim (openipmi) and ipmitool'
    : undefined);
if (missing) console.log(`# rack e2e skipped: ${missing}`);

interface Machine {
  mac: string;
  hostname: string;
  kind: 'redfish' | 'ipmi';
  firmware: 'uefi' | 'legacy';
  /** Redfish: the system UUID; IPMI: unused. */
  system?: string;
  bmcAddr: string;
}
const RACK: Machine[] = [
  {
    mac: '52:54:00:b0:00:01',
    hostname: 'rk-rf1',
    kind: 'redfish',
    firmware: 'uefi',
    system: '8d0c0000-0000-4000-8000-000000000001',
    bmcAddr: '127.0.0.11',
  },
  {
    mac: '52:54:00:b0:00:02',
    hostname: 'rk-rf2',
    kind: 'redfish',
    firmware: 'legacy',
    system: '8d0c0000-0000-4000-8000-000000000002',
    bmcAddr: '127.0.0.12',
  },
  { mac: '52:54:00:c0:00:01', hostname: 'rk-ip1', kind: 'ipmi', firmware: 'uefi', bmcAddr: '127.0.0.11' },
  { mac: '52:54:00:c0:00:02', hostname: 'rk-ip2', kind: 'ipmi', firmware: 'uefi', bmcAddr: '127.0.0.12' },
];

const ns = (args: string[], input?: string) =>
  spawnSync('ip', ['netns', 'exec', NS, ...args], { encoding: 'utf8', input, timeout: 60_000 });

/** What a tech's hands do at a Redfish BMC: one-time network boot in the machine's mode, then power on. */
function redfish(m: Machine, method: string, path: string, body?: unknown): string {
  const r = ns([
    'curl',
    '-sSk',
    '--tlsv1.2',
    '-u',
    'admin:password',
    '-X',
    method,
    ...(body ? ['-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body)] : []),
    `https://${m.bmcAddr}/redfish/v1/Systems/${m.system}${path}`,
  ]);
  if (r.status !== 0) throw new Error(`curl ${method} ${path}: ${r.stderr}`);
  return r.stdout;
}
function ipmitool(m: Machine, ...args: string[]): string {
  const r = ns(['ipmitool', '-I', 'lanplus', '-C', '3', '-H', m.bmcAddr, '-U', 'admin', '-P', 'password', ...args]);
  if (r.status !== 0) throw new Error(`ipmitool ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
function byHand(m: Machine): void {
  if (m.kind === 'redfish') {
    redfish(m, 'PATCH', '', {
      Boot: {
        BootSourceOverrideTarget: 'Pxe',
        BootSourceOverrideEnabled: 'Once',
        BootSourceOverrideMode: m.firmware === 'uefi' ? 'UEFI' : 'Legacy',
      },
    });
    redfish(m, 'POST', '/Actions/ComputerSystem.Reset', { ResetType: 'On' });
  } else {
    ipmitool(m, 'chassis', 'bootdev', 'pxe', ...(m.firmware === 'uefi' ? ['options=efiboot'] : []));
    ipmitool(m, 'chassis', 'power', 'on');
  }
}

interface EventView {
  type: string;
  at: string;
  status?: string;
  detail?: { rollout?: number; mode?: string; why?: string };
}
interface HostView {
  mac: string;
  hostname: string;
  state: string;
  build: { id: number };
  stuck?: { text: string } | null;
  events: EventView[];
}
interface RolloutView {
  status: string;
  hosts: { step: string }[];
}

const host = (mac: string) => api<HostView>('GET', `/api/hosts/${mac}`).json;

/** Seconds until every host has a built build newer than `afterBuild` (its id then), or a failure naming who is not. */
async function allBuilt(since: number, afterBuild: Record<string, number>, timeoutSec: number): Promise<number> {
  const deadline = Date.now() + timeoutSec * 1000;
  for (;;) {
    const views = RACK.map((m) => host(m.mac));
    const done = views.every((v) => v.state === 'built' && v.build.id > (afterBuild[v.mac] ?? 0));
    if (done) return (Date.now() - since) / 1000;
    if (Date.now() > deadline)
      throw new Error(
        `not all built after ${timeoutSec}s: ${views
          .map((v) => `${v.hostname} ${v.state} ${v.stuck?.text ?? ''} last ${v.events.at(-1)?.type}`)
          .join('; ')}`,
      );
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function waitForLog(b: Background, re: RegExp, what: string, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (re.test(b.out)) {
        clearInterval(t);
        resolve();
      } else if (b.proc.exitCode !== null || Date.now() > end) {
        clearInterval(t);
        reject(new Error(`${what} did not come up: ${b.out.slice(-2000)}`));
      }
    }, 250);
  });
}

describe('a rack built from one command through its BMCs', { skip: missing ?? false, concurrency: false }, () => {
  let dir: string;
  const bg: Background[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rackboot-rack-e2e-'));
    const lab = setUpAsTheReadmeSays(dir);
    console.log(`== set up as the README says: image ${lab.image}`);
    netUp(0);
    bg.push(startRouterAdverts(dir));
    bg.push(
      await startRackboot(dir, [
        '--dhcp-mode',
        'authoritative',
        '--dhcp-interface',
        BRIDGE,
        '--dhcp-subnet',
        '10.99.0.0/24',
        '--dhcp-range',
        '10.99.0.100-10.99.0.150',
        '--dhcp-router',
        SERVER_IP,
      ]),
    );
    const rf = new Background(
      'redfish-lab',
      spawn(
        '/usr/bin/python3',
        [
          join(LAB, 'qemu-redfish-bmc.py'),
          'up',
          '--vms',
          '2',
          '--netns',
          NS,
          '--bridge',
          BRIDGE,
          '--dir',
          join(dir, 'rf'),
          '--mem',
          MEM,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    bg.push(rf);
    const ipmi = new Background(
      'ipmi-lab',
      spawn('bash', [join(LAB, 'qemu-ipmi-bmc.sh'), 'up', '2'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NETNS: NS, BRIDGE, RUN: join(dir, 'ipmi'), FIRMWARE: 'uefi', MEM },
      }),
    );
    bg.push(ipmi);
    await Promise.all([
      waitForLog(rf, /lab up in netns/, 'the Redfish lab'),
      waitForLog(ipmi, /lab up: ipmitool/, 'the IPMI lab'),
    ]);
    for (const [i, m] of RACK.entries()) {
      const r = api('POST', '/api/hosts', {
        mac: m.mac,
        hostname: m.hostname,
        profile: PROFILES.base,
        rack: 'R1',
        position: `U${i + 1}`,
      });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const b = api(
        'PUT',
        `/api/hosts/${m.mac}/bmc`,
        m.kind === 'redfish'
          ? {
              driver: 'redfish',
              address: `https://${m.bmcAddr}`,
              username: 'admin',
              password: 'password',
              system: m.system,
              verifyTls: false,
            }
          : { driver: 'ipmi', address: `${m.bmcAddr}:623`, username: 'admin', password: 'password' },
      );
      assert.equal(b.status, 200, JSON.stringify(b.json));
    }
  });
  after(async () => {
    for (const b of bg.reverse()) await b.stop();
    netDown();
    if (!process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
    else console.log(`== kept ${dir}`);
  });

  let byHandSeconds = 0;
  test('today: a build per host, then network boot once and power on at each machine by hand', async () => {
    const t0 = Date.now();
    for (const m of RACK) assert.equal(api('POST', `/api/hosts/${m.mac}/build`).status, 201);
    for (const m of RACK) byHand(m);
    byHandSeconds = await allBuilt(t0, {}, 900);
    console.log(`== by hand: 4 hosts built in ${byHandSeconds.toFixed(0)}s`);
  });

  test('one `rackboot rack build R1 --power --confirm`: every host rebuilt, the disk-first UEFI one too, nobody touching power', async () => {
    const firstBuilds = Object.fromEntries(RACK.map((m) => [m.mac, host(m.mac).build.id]));
    // The installed UEFI host boots its disk first now (what an installed OS does to the boot order).
    const rf1 = RACK[0]!;
    redfish(rf1, 'PATCH', '', {
      Boot: {
        BootSourceOverrideTarget: 'Hdd',
        BootSourceOverrideEnabled: 'Continuous',
        BootSourceOverrideMode: 'UEFI',
      },
    });
    assert.equal(JSON.parse(redfish(rf1, 'GET', '')).Boot.BootSourceOverrideTarget, 'Hdd');
    const t0 = Date.now();
    const cli = ns([
      process.execPath,
      join(REPO, 'bin/rackboot.mjs'),
      'rack',
      'build',
      'R1',
      '--power',
      '--confirm',
      ...dirFlags(dir),
    ]);
    assert.equal(cli.status, 0, cli.stderr);
    console.log(`== $ rackboot rack build R1 --power --confirm\n${cli.stdout}`);
    const id = Number(/^rollout (\d+)/m.exec(cli.stdout)?.[1]);
    const oneCommand = await allBuilt(t0, firstBuilds, 900);
    console.log(
      `== one command: 4 hosts built in ${oneCommand.toFixed(0)}s (by hand, same run: ${byHandSeconds.toFixed(0)}s of machine time plus the walk)`,
    );
    const v = api<RolloutView>('GET', `/api/rollouts/${id}`).json;
    assert.equal(v.status, 'done');
    assert.deepEqual(
      v.hosts.map((h) => h.step),
      ['powered', 'powered', 'powered', 'powered'],
      JSON.stringify(v.hosts),
    );
    for (const m of RACK) {
      const boot = host(m.mac).events.filter((e) => e.type === 'bmc.boot' && e.detail?.rollout === id);
      assert.equal(boot.length, 1, `${m.hostname}: one-time network boot set by the rollout`);
      assert.equal(boot[0]?.detail?.mode, m.firmware, `${m.hostname}: ${boot[0]?.detail?.why}`);
    }
    assert.equal(JSON.parse(redfish(rf1, 'GET', '')).Boot.BootSourceOverrideTarget, 'Pxe', 'rackboot set PXE once');
    assert.equal(
      host(RACK[1]!.mac).events.some((e) => e.type === 'pxelinux.config'),
      true,
    );
    // Built, they boot local: power-cycled through rackboot with a network boot once (the harness sets it on the IPMI
    // ones; sushy keeps its PXE override), each machine PXE-boots and gets a local-boot config, and no kickstart.
    const t1 = Date.now();
    for (const m of RACK) {
      if (m.kind === 'ipmi') ipmitool(m, 'chassis', 'bootdev', 'pxe', 'options=efiboot');
      const r = api('POST', `/api/hosts/${m.mac}/power`, { action: 'cycle' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    const deadline = Date.now() + 600_000;
    for (;;) {
      const seen = RACK.map((m) => {
        const after = host(m.mac).events.filter((e) => Date.parse(e.at) >= t1);
        const configs = after.filter((e) => /\.config$/.test(e.type));
        assert.ok(!after.some((e) => e.type === 'kickstart.fetched'), `${m.hostname}: no second kickstart`);
        return { m, configs };
      });
      if (seen.every((x) => x.configs.length > 0)) {
        for (const x of seen)
          assert.ok(
            x.configs.every((e) => String(e.status).startsWith('local')),
            `${x.m.hostname}: ${x.configs.map((e) => `${e.type}=${e.status}`).join(', ')}`,
          );
        console.log(`== second boot: all 4 got a local-boot config in ${((Date.now() - t1) / 1000).toFixed(0)}s`);
        break;
      }
      if (Date.now() > deadline)
        throw new Error(
          `no config asked after the power-cycle: ${seen.filter((x) => !x.configs.length).map((x) => x.m.hostname)}`,
        );
      await new Promise((r) => setTimeout(r, 2000));
    }
  });
});
