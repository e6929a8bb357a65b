// End to end with real firmware: QEMU machines PXE-boot through rackboot's own DHCP, TFTP and HTTP
// to the built callback, then boot their (missing) disk on the second power-on.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipReason, prepareTree, netUp, netDown, startRouterAdverts, startRackboot, startInNs, api, bootMachine, BRIDGE, SERVER_IP, type Background, type Firmware } from './lab.ts';

const reason = skipReason();
if (reason) console.log(`# e2e skipped: ${reason}`);

interface Ev { at: string; type: string; status?: string; clientIp?: string; detail?: { path?: string; via?: string; method?: string; range?: string } }
interface Phase { name: string; event?: (e: Ev) => boolean; console?: RegExp }

const dhcpPhases: Phase[] = [
  { name: 'DHCP discover', event: (e) => e.type === 'dhcp.discover' },
  { name: 'DHCP ack', event: (e) => e.type === 'dhcp.ack' },
];
const tftpFile = (path: string) => (e: Ev) => e.type === 'tftp.sent' && e.detail?.path === path;
const httpFile = (path: string) => (e: Ev) => e.type === 'http.tftpfile' && e.detail?.path === path && e.status === '200';
const installerPhases: Phase[] = [
  { name: 'kickstart fetched', event: (e) => e.type === 'kickstart.fetched' },
  { name: 'liveimg HEAD (server side)', event: (e) => e.type === 'http.image' && e.detail?.method === 'HEAD' && e.status === '200' },
  { name: 'liveimg Range GET 206 (server side)', event: (e) => e.type === 'http.image' && e.detail?.range !== undefined && e.status === '206' },
  { name: 'progress events', event: (e) => e.type === 'progress' && e.status === 'installing' },
  { name: 'built callback', event: (e) => e.type === 'build.built' },
  { name: 'console: BOOTIF matches the NIC', console: /\[installer\] BOOTIF_OK/ },
  { name: 'console: liveimg HEAD 200', console: /\[installer\] LIVEIMG_HEAD_OK/ },
  { name: 'console: liveimg Range 206', console: /\[installer\] LIVEIMG_RANGE_OK/ },
  { name: 'console: built answered', console: /\[installer\] BUILT_OK/ },
];
const native = (firmware: Firmware): Phase[] => [
  ...dhcpPhases,
  firmware === 'bios'
    ? { name: 'loader pxelinux.0 (TFTP)', event: tftpFile('pxelinux.0') }
    : { name: 'loader GRUB core.efi (TFTP)', event: tftpFile('boot/grub/x86_64-efi/core.efi') },
  { name: `per-host ${firmware === 'bios' ? 'pxelinux' : 'GRUB'} config: install`, event: (e) => e.type === `${firmware === 'bios' ? 'pxelinux' : 'grub'}.config` && e.status === 'install' },
  { name: 'kernel (TFTP)', event: tftpFile('rhvh-4.3/vmlinuz') },
  { name: 'initrd (TFTP)', event: tftpFile('rhvh-4.3/initrd.img') },
  ...installerPhases,
];
const ipxe = (firmware: Firmware): Phase[] => [
  ...dhcpPhases,
  ...(firmware === 'uefi' ? [{ name: 'loader ipxe.efi (TFTP)', event: tftpFile('ipxe.efi') }] : []),
  { name: 'iPXE script over HTTP: install', event: (e) => e.type === 'ipxe.config' && e.status === 'install' },
  { name: 'kernel (HTTP)', event: httpFile('rhvh-4.3/vmlinuz') },
  { name: 'initrd (HTTP)', event: httpFile('rhvh-4.3/initrd.img') },
  ...installerPhases,
];

/** Prints PASS/FAIL per phase with its time since power-on; returns the failures. */
function report(title: string, events: Ev[], consoleText: string, since: number, phases: Phase[]): string[] {
  const failures: string[] = [];
  console.log(`== ${title}`);
  for (const p of phases) {
    if (p.event) {
      const hit = events.find((e) => Date.parse(e.at) >= since && p.event!(e));
      if (hit) console.log(`  PASS  ${p.name.padEnd(44)} +${((Date.parse(hit.at) - since) / 1000).toFixed(1)}s`);
      else { console.log(`  FAIL  ${p.name}`); failures.push(p.name); }
    } else if (p.console) {
      const m = p.console.exec(consoleText);
      if (m) console.log(`  PASS  ${p.name.padEnd(44)} ${m[0]}`);
      else { console.log(`  FAIL  ${p.name}`); failures.push(p.name); }
    }
  }
  return failures;
}

const timeline = (mac: string): Ev[] => api('GET', `/api/hosts/${mac}`).json.events as Ev[];
const stateOf = (mac: string): string => api('GET', `/api/hosts/${mac}`).json.state as string;

async function install(dir: string, tap: number, mac: string, firmware: Firmware, phases: Phase[], title: string) {
  const since = Date.now();
  const boot = await bootMachine({ dir, tap, mac, firmware, timeoutSec: 300 });
  const failures = report(`${title} (first boot ${boot.seconds.toFixed(0)}s, ${boot.stoppedBy})`, timeline(mac), boot.console, since, phases);
  if (failures.length) writeFileSync(join(dir, `console-${mac.replaceAll(':', '')}.log`), boot.console);
  const trail = timeline(mac).filter((e) => Date.parse(e.at) >= since).map((e) => `${e.type} ${e.status ?? ''} ${e.detail?.path ?? ''} ${e.clientIp ?? ''}`).join('\n');
  const installer = boot.console.split('\n').filter((l) => /\[installer\]|GRUB|error|panic/i.test(l)).join('\n');
  assert.deepEqual(failures, [], `${title}: phases missing\n-- timeline:\n${trail}\n-- console:\n${installer}\n${boot.console.slice(-1500)}`);
  assert.equal(stateOf(mac), 'built');
}

async function secondBootIsLocal(dir: string, tap: number, mac: string, firmware: Firmware) {
  const since = Date.now();
  const boot = await bootMachine({ dir, tap, mac, firmware, timeoutSec: 180 });
  const events = timeline(mac).filter((e) => Date.parse(e.at) >= since);
  const configs = events.filter((e) => /\.config$/.test(e.type));
  console.log(`== second boot of ${mac}: ${boot.seconds.toFixed(0)}s, ${boot.stoppedBy}; configs served: ${configs.map((e) => `${e.type}=${e.status}`).join(', ')}`);
  assert.ok(configs.length > 0 && configs.every((e) => e.status?.startsWith('local')), 'the second boot got a local-boot config');
  assert.ok(!events.some((e) => e.type === 'kickstart.fetched'), 'no second kickstart');
  assert.ok(!/\[installer\] STARTED/.test(boot.console), 'the installer did not start again');
  assert.notEqual(boot.stoppedBy, 'timeout', `second boot hung:\n${boot.console.slice(-2000)}`);
}

function addHost(mac: string, hostname: string, params: Record<string, string> = {}) {
  const r = api('POST', '/api/hosts', { mac, hostname, profile: 'rhvh-base', params: { 'boot.kernelArgs': 'console=ttyS0,115200 panic=-1 no_timer_check', ...params } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const b = api('POST', `/api/hosts/${mac}/build`);
  assert.equal(b.status, 201, JSON.stringify(b.json));
}

/** Waits for every machine (a failed one must not leave others running on their taps), then fails with all reasons. */
async function settleAll(runs: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(runs);
  const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).message);
  assert.deepEqual(errors, []);
}

const AUTHORITATIVE = ['--dhcp-mode', 'authoritative', '--dhcp-interface', BRIDGE, '--dhcp-subnet', '10.99.0.0/24', '--dhcp-range', '10.99.0.100-10.99.0.150', '--dhcp-router', SERVER_IP];

describe('PXE boot through rackboot with real firmware', { skip: reason ?? false, concurrency: false }, () => {
  let dir: string;
  const bg: Background[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'rackboot-e2e-'));
    prepareTree(dir);
  });
  after(async () => {
    for (const b of bg.reverse()) await b.stop();
    netDown();
    if (!process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true });
  });

  describe('authoritative DHCP', { concurrency: false }, () => {
    before(async () => {
      netUp(4);
      bg.push(startRouterAdverts(dir));
      bg.push(await startRackboot(dir, AUTHORITATIVE));
    });
    after(async () => { for (const b of bg.splice(0).reverse()) await b.stop(); });

    test('1. BIOS: SeaBIOS + iPXE ROM -> pxelinux -> kernel/initrd over TFTP -> built, then local', async () => {
      addHost('52:54:00:e2:00:01', 'bios01');
      await install(dir, 0, '52:54:00:e2:00:01', 'bios', native('bios'), 'BIOS pxelinux');
      await secondBootIsLocal(dir, 0, '52:54:00:e2:00:01', 'bios');
    });

    test('2. UEFI: OVMF native PXE -> GRUB -> grub.cfg-01-<mac> -> built, then local', async () => {
      addHost('52:54:00:e2:00:02', 'uefi02');
      await install(dir, 1, '52:54:00:e2:00:02', 'uefi', native('uefi'), 'UEFI GRUB');
      await secondBootIsLocal(dir, 1, '52:54:00:e2:00:02', 'uefi');
    });

    test('3. iPXE: iPXE ROM -> HTTP script -> kernel/initrd over HTTP -> built, then local', async () => {
      addHost('52:54:00:e2:00:03', 'ipxe03', { 'boot.loader': 'ipxe' });
      await install(dir, 2, '52:54:00:e2:00:03', 'bios', ipxe('bios'), 'iPXE over HTTP');
      await secondBootIsLocal(dir, 2, '52:54:00:e2:00:03', 'bios');
    });

    test('4. UEFI -> ipxe.efi chainload -> HTTP -> built', async () => {
      addHost('52:54:00:e2:00:04', 'uefiipxe04', { 'boot.loader': 'ipxe' });
      await install(dir, 3, '52:54:00:e2:00:04', 'uefi', ipxe('uefi'), 'UEFI -> iPXE');
    });

    test('6. mini rack: 2 BIOS + 2 UEFI powered on at once, all built, all second boots local', async () => {
      const rack = [['52:54:00:e2:01:01', 'bios'], ['52:54:00:e2:01:02', 'bios'], ['52:54:00:e2:01:03', 'uefi'], ['52:54:00:e2:01:04', 'uefi']] as const;
      rack.forEach(([mac], i) => addHost(mac, `rack${i}`));
      const t0 = Date.now();
      await settleAll(rack.map(([mac, fw], i) => install(dir, i, mac, fw, native(fw), `rack ${mac} ${fw}`)));
      console.log(`== mini rack: 4 hosts built in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
      await settleAll(rack.map(([mac, fw], i) => secondBootIsLocal(dir, i, mac, fw)));
    });

    test('7a. a failing %post calls the failed URL: the host shows failed with its log', async () => {
      addHost('52:54:00:e2:02:01', 'fail01', { post: 'rackboot-e2e-fail' });
      const since = Date.now();
      const boot = await bootMachine({ dir, tap: 0, mac: '52:54:00:e2:02:01', firmware: 'bios', timeoutSec: 300 });
      const failures = report('failing %post', timeline('52:54:00:e2:02:01'), boot.console, since, [
        ...dhcpPhases, { name: 'kickstart fetched', event: (e) => e.type === 'kickstart.fetched' },
        { name: 'failed callback', event: (e) => e.type === 'build.failed' }, { name: 'console: failed posted', console: /\[installer\] FAILED_POSTED/ },
      ]);
      assert.deepEqual(failures, []);
      const view = api('GET', '/api/hosts/52:54:00:e2:02:01').json;
      assert.equal(view.state, 'failed');
      assert.match(view.build.failureLog, /stand-in %post failed for 52:54:00:e2:02:01/);
    });

    test('7b. an unknown MAC boots its disk and shows up as discovered', async () => {
      const since = Date.now();
      const boot = await bootMachine({ dir, tap: 1, mac: '52:54:00:e2:0f:0f', firmware: 'bios', timeoutSec: 180 });
      assert.ok(!/\[installer\] STARTED/.test(boot.console), 'never an installer');
      assert.notEqual(boot.stoppedBy, 'timeout');
      const found = (api('GET', '/api/discovered').json as { mac: string; arch: number; lastSeen: number }[]).find((d) => d.mac === '52:54:00:e2:0f:0f');
      assert.ok(found && found.lastSeen >= since - 1000, 'listed in /api/discovered');
      assert.equal(found!.arch, 0);
      console.log(`== unknown machine: local boot in ${boot.seconds.toFixed(0)}s, discovered as ${JSON.stringify(found)}`);
    });
  });

  test('7c. an expired build token: the host boots local, gets no kickstart, and the timeline says why', async () => {
    netUp(1);
    const ra = startRouterAdverts(dir);
    const rb = await startRackboot(dir, [...AUTHORITATIVE, '--token-ttl', '2s']);
    try {
      addHost('52:54:00:e2:03:01', 'expired01');
      await new Promise((r) => setTimeout(r, 2500));
      const since = Date.now();
      const boot = await bootMachine({ dir, tap: 0, mac: '52:54:00:e2:03:01', firmware: 'bios', timeoutSec: 180 });
      const events = timeline('52:54:00:e2:03:01').filter((e) => Date.parse(e.at) >= since);
      assert.ok(!/\[installer\] STARTED/.test(boot.console));
      assert.ok(events.some((e) => e.type === 'pxelinux.config' && e.status === 'local (build token expired)'), JSON.stringify(events));
      assert.equal(stateOf('52:54:00:e2:03:01'), 'expired');
    } finally { await rb.stop(); await ra.stop(); }
  });

  test('5. proxy-DHCP beside a site dnsmasq (addresses only): BIOS and UEFI both install', async () => {
    netUp(2);
    const ra = startRouterAdverts(dir);
    // the site's DHCP server: addresses only, no PXE options
    const site = startInNs('site-dhcp', ['dnsmasq', '--keep-in-foreground', '--port=0', `--interface=${BRIDGE}`, '--bind-interfaces', '--user=root', '--group=root', '--pid-file=',
      '--conf-file=/dev/null', '--dhcp-range=10.99.0.160,10.99.0.200,255.255.255.0,10m', `--dhcp-leasefile=${join(dir, 'site.leases')}`, '--dhcp-authoritative', '--no-ping']);
    const rb = await startRackboot(dir, ['--dhcp-mode', 'proxy', '--dhcp-interface', BRIDGE]);
    try {
      addHost('52:54:00:e2:04:01', 'proxybios');
      addHost('52:54:00:e2:04:02', 'proxyuefi');
      const noDhcpEvents = (p: Phase[]) => p.filter((x) => x.name !== 'DHCP ack');
      await settleAll([
        install(dir, 0, '52:54:00:e2:04:01', 'bios', noDhcpEvents(native('bios')), 'proxy BIOS'),
        install(dir, 1, '52:54:00:e2:04:02', 'uefi', noDhcpEvents(native('uefi')), 'proxy UEFI'),
      ]);
    } finally { await rb.stop(); await site.stop(); await ra.stop(); }
  });
});
