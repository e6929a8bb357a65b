// The e2e lab: a network namespace with a bridge, rackboot as the only server in it, and QEMU machines
// (SeaBIOS + iPXE ROM, OVMF) that PXE-boot a stand-in installer (Debian kernel + busybox initramfs).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync, mkdtempSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '../..');
export const NS = 'rbe2e';
export const BRIDGE = 'rbbr0';
export const SERVER_IP = '10.99.0.1';
export const HTTP_PORT = 8080;
export const BASE = `http://${SERVER_IP}:${HTTP_PORT}`;
export const API_TOKEN = 'e2e-api-token';
const CACHE = process.env.RACKBOOT_E2E_CACHE ?? '/var/tmp/rackboot-e2e';
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const NEEDED = ['qemu-system-x86_64', 'ip', 'cpio', 'gzip', 'dpkg-deb', 'apt-get', 'grub-mknetdir', 'dnsmasq', 'curl'];
const NEEDED_FILES = ['/usr/lib/PXELINUX/pxelinux.0', '/usr/lib/syslinux/modules/bios/ldlinux.c32', OVMF_CODE, '/usr/lib/ipxe/qemu/efi-e1000.rom', '/usr/lib/ipxe/ipxe.efi', '/usr/lib/ipxe/undionly.kpxe', '/usr/lib/grub/x86_64-efi/efinet.mod'];

const sh = (cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...opts });
const nsExec = (args: string[], input?: string) => sh('ip', ['netns', 'exec', NS, ...args], { input });

/** Why the e2e suite cannot run here, or undefined when it can. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'e2e needs root (network namespaces, taps)';
  for (const c of NEEDED) if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) return `e2e needs ${c} (.ci/run installs the Debian packages)`;
  for (const f of NEEDED_FILES) if (!existsSync(f)) return `e2e needs ${f} (.ci/run installs the Debian packages)`;
  if (!existsSync('/dev/net/tun')) return 'e2e needs /dev/net/tun';
  const probe = spawnSync('ip', ['netns', 'add', 'rbe2e-probe']);
  if (probe.status !== 0) return `cannot create network namespaces: ${probe.stderr}`;
  spawnSync('ip', ['netns', 'del', 'rbe2e-probe']);
  return undefined;
}

// ---------------------------------------------------------------- artifacts (cached)
function downloadDeb(pkg: string, into: string): string {
  sh('apt-get', ['-q', '-o', 'APT::Sandbox::User=root', 'download', pkg], { cwd: into });
  const deb = readdirSync(into).find((f) => f.startsWith(pkg.replace(/:.*/, '') + '_') && f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
  return join(into, deb);
}

/** A Debian kernel and the NIC modules, extracted from the package (not installed). */
function kernel(): { vmlinuz: string; modules: string } {
  const dir = join(CACHE, 'kernel');
  if (existsSync(join(dir, 'vmlinuz')) && existsSync(join(dir, 'modules/e1000.ko'))) return { vmlinuz: join(dir, 'vmlinuz'), modules: join(dir, 'modules') };
  const work = mkdtempSync(join(tmpdir(), 'rbe2e-deb-'));
  try {
    const meta = downloadDeb('linux-image-amd64', work);
    const dep = /linux-image-[0-9][^ ,]*/.exec(sh('dpkg-deb', ['-f', meta, 'Depends']))![0];
    const deb = downloadDeb(dep, work);
    sh('dpkg-deb', ['-x', deb, join(work, 'x')]);
    const kv = readdirSync(join(work, 'x/lib/modules'))[0];
    mkdirSync(join(dir, 'modules'), { recursive: true });
    for (const m of ['drivers/net/ethernet/intel/e1000/e1000.ko', 'drivers/virtio/virtio_ring.ko', 'drivers/virtio/virtio.ko', 'drivers/virtio/virtio_pci_legacy_dev.ko',
      'drivers/virtio/virtio_pci_modern_dev.ko', 'drivers/virtio/virtio_pci.ko', 'net/core/failover.ko', 'drivers/net/net_failover.ko', 'drivers/net/virtio_net.ko']) {
      const src = join(work, 'x/lib/modules', kv, 'kernel', m);
      if (existsSync(src)) copyFileSync(src, join(dir, 'modules', m.split('/').pop()!));
      else if (existsSync(src + '.xz')) { copyFileSync(src + '.xz', join(dir, 'modules', m.split('/').pop()! + '.xz')); sh('xz', ['-d', '-f', join(dir, 'modules', m.split('/').pop()! + '.xz')]); }
    }
    copyFileSync(join(work, 'x/boot', `vmlinuz-${kv}`), join(dir, 'vmlinuz'));
  } finally { rmSync(work, { recursive: true, force: true }); }
  return { vmlinuz: join(dir, 'vmlinuz'), modules: join(dir, 'modules') };
}

function busybox(): string {
  const file = join(CACHE, 'busybox');
  if (existsSync(file)) return file;
  const work = mkdtempSync(join(tmpdir(), 'rbe2e-bb-'));
  try {
    sh('dpkg-deb', ['-x', downloadDeb('busybox-static', work), join(work, 'x')]);
    copyFileSync(join(work, 'x/bin/busybox'), file);
    chmodSync(file, 0o755);
  } finally { rmSync(work, { recursive: true, force: true }); }
  return file;
}

/** The stand-in installer initramfs; rebuilt only when its inputs change. */
function initrd(modules: string): string {
  const init = readFileSync(join(HERE, 'installer-init.sh'));
  const script = readFileSync(join(HERE, 'udhcpc.script'));
  const bb = busybox();
  const key = createHash('sha256').update(init).update(script).update(readFileSync(bb)).update(readdirSync(modules).join(',')).digest('hex').slice(0, 16);
  const out = join(CACHE, `installer-${key}.img`);
  if (existsSync(out)) return out;
  const root = mkdtempSync(join(tmpdir(), 'rbe2e-root-'));
  try {
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'lib/modules']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(bb, join(root, 'bin/busybox'));
    for (const m of readdirSync(modules)) copyFileSync(join(modules, m), join(root, 'lib/modules', m));
    writeFileSync(join(root, 'init'), init, { mode: 0o755 });
    writeFileSync(join(root, 'etc/udhcpc.script'), script, { mode: 0o755 });
    chmodSync(join(root, 'bin/busybox'), 0o755);
    const cpio = spawnSync('sh', ['-c', `cd ${root} && find . | cpio -o -H newc --quiet | gzip -6 > ${out}.tmp && mv ${out}.tmp ${out}`]);
    if (cpio.status !== 0) throw new Error(`initramfs build failed: ${cpio.stderr}`);
  } finally { rmSync(root, { recursive: true, force: true }); }
  return out;
}

/** tftpboot/ with the distro loaders and the stand-in installer, images/ with a small liveimg. */
export function prepareTree(dir: string): void {
  mkdirSync(CACHE, { recursive: true });
  const k = kernel();
  const img = initrd(k.modules);
  const tftp = join(dir, 'tftpboot');
  mkdirSync(join(tftp, 'rhvh-4.3'), { recursive: true });
  copyFileSync('/usr/lib/PXELINUX/pxelinux.0', join(tftp, 'pxelinux.0'));
  for (const m of ['ldlinux.c32', 'libutil.c32', 'libcom32.c32', 'menu.c32', 'chain.c32']) {
    const f = `/usr/lib/syslinux/modules/bios/${m}`;
    if (existsSync(f)) copyFileSync(f, join(tftp, m));
  }
  copyFileSync('/usr/lib/ipxe/ipxe.efi', join(tftp, 'ipxe.efi'));
  copyFileSync('/usr/lib/ipxe/undionly.kpxe', join(tftp, 'undionly.kpxe'));
  sh('grub-mknetdir', [`--net-directory=${tftp}`, '--subdir=boot/grub', '-d', '/usr/lib/grub/x86_64-efi']);
  copyFileSync(k.vmlinuz, join(tftp, 'rhvh-4.3/vmlinuz'));
  copyFileSync(img, join(tftp, 'rhvh-4.3/initrd.img'));
  const images = join(dir, 'images/rhvh-4.3');
  mkdirSync(join(images, 'LiveOS'), { recursive: true });
  writeFileSync(join(images, 'redhat-virtualization-host-4.3.squashfs.img'), Buffer.alloc(256 * 1024, 7));
  writeFileSync(join(images, 'LiveOS/squashfs.img'), Buffer.alloc(4096, 1));
  writeFileSync(join(images, '.treeinfo'), '[general]\nfamily = RHVH\n');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'));
  writeFileSync(join(dir, 'rackboot.yaml'), 'loaders:\n  uefi: boot/grub/x86_64-efi/core.efi\n');
}

function cpSync(from: string, to: string) { mkdirSync(to, { recursive: true }); for (const f of readdirSync(from)) copyFileSync(join(from, f), join(to, f)); }

// ---------------------------------------------------------------- network
export function netUp(taps: number): void {
  netDown();
  sh('ip', ['netns', 'add', NS]);
  nsExec(['ip', 'link', 'set', 'lo', 'up']);
  nsExec(['ip', 'link', 'add', BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  nsExec(['ip', 'addr', 'add', `${SERVER_IP}/24`, 'dev', BRIDGE]);
  nsExec(['ip', 'addr', 'add', 'fd99::1/64', 'dev', BRIDGE, 'nodad']);
  nsExec(['ip', 'link', 'set', BRIDGE, 'up']);
  for (let i = 0; i < taps; i++) {
    nsExec(['ip', 'tuntap', 'add', 'dev', `rbtap${i}`, 'mode', 'tap']);
    nsExec(['ip', 'link', 'set', `rbtap${i}`, 'master', BRIDGE, 'up']);
  }
}

export function netDown(): void {
  if (!sh('ip', ['netns', 'list']).split('\n').some((l) => l.split(' ')[0] === NS)) return;
  const pids = spawnSync('ip', ['netns', 'pids', NS], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const p of pids) { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } }
  spawnSync('ip', ['netns', 'del', NS]);
}

// ---------------------------------------------------------------- processes in the namespace
export class Background {
  out = '';
  readonly exited: Promise<number | null>;
  constructor(readonly name: string, readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d) => { this.out += d; });
    proc.stderr?.on('data', (d) => { this.out += d; });
    this.exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

export function startInNs(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Background {
  return new Background(name, spawn('ip', ['netns', 'exec', NS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** IPv6 router adverts on the bridge: without them iPXE waits ~13 s for autoconfiguration. */
export function startRouterAdverts(dir: string): Background {
  return startInNs('ra', ['dnsmasq', '--keep-in-foreground', '--port=0', `--interface=${BRIDGE}`, '--bind-interfaces', '--user=root', '--group=root', '--pid-file=',
    '--conf-file=/dev/null', '--enable-ra', `--dhcp-range=::,constructor:${BRIDGE},ra-only`, `--dhcp-leasefile=${join(dir, 'ra.leases')}`]);
}

export async function startRackboot(dir: string, extra: string[]): Promise<Background> {
  const rb = startInNs('rackboot', [process.execPath, join(REPO, 'bin/rackboot.mjs'), 'serve', '--config', join(dir, 'rackboot.yaml'),
    '--listen', '0.0.0.0', '--http-port', String(HTTP_PORT), '--tftp-port', '69', '--server-ip', SERVER_IP, '--public-url', BASE,
    '--data-dir', join(dir, 'data'), '--profiles-dir', join(dir, 'profiles'), '--tftp-root', join(dir, 'tftpboot'), '--images-dir', join(dir, 'images'), ...extra],
  { RACKBOOT_ADMIN_TOKEN: API_TOKEN });
  const end = Date.now() + 30_000;
  while (!rb.out.includes('rackboot serving')) {
    if (rb.proc.exitCode !== null) throw new Error(`rackboot exited: ${rb.out}`);
    if (Date.now() > end) throw new Error(`rackboot did not start: ${rb.out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return rb;
}

/** The rackboot API, called from inside the namespace. */
export function api(method: string, path: string, body?: unknown): { status: number; json: any } {
  const args = ['curl', '-sS', '-X', method, '-H', `Authorization: Bearer ${API_TOKEN}`, '-w', '\n%{http_code}', `${BASE}${path}`];
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', '@-');
  const out = nsExec(args, body === undefined ? undefined : JSON.stringify(body));
  const nl = out.lastIndexOf('\n');
  const text = out.slice(0, nl);
  let json: unknown;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = text; }
  return { status: Number(out.slice(nl + 1)), json };
}

// ---------------------------------------------------------------- machines
export type Firmware = 'bios' | 'uefi';
export interface BootResult { console: string; seconds: number; code: number | null; stoppedBy: 'exit' | 'fatal' | 'timeout' }
const FATAL = /No bootable device|Kernel panic - not syncing|UEFI Interactive Shell|Shell> |Boot Failed|BdsDxe: No bootable option|rackboot: no EFI loader on a local disk/;

let vmCounter = 0;
export async function bootMachine(opts: { dir: string; tap: number; mac: string; firmware: Firmware; timeoutSec?: number; stopOn?: RegExp }): Promise<BootResult> {
  const args = ['qemu-system-x86_64', '-accel', 'tcg', '-machine', 'pc', '-m', '512', '-smp', '1', '-nographic', '-no-reboot', '-monitor', 'none', '-serial', 'stdio', '-boot', 'n'];
  if (opts.firmware === 'uefi') {
    const vars = join(opts.dir, `OVMF_VARS-${opts.mac.replaceAll(':', '')}-${vmCounter++}.fd`);
    copyFileSync(OVMF_VARS, vars);
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
    // OVMF's own PXE (virtio-net, no option ROM), as on most UEFI servers.
    args.push('-netdev', `tap,id=n0,ifname=rbtap${opts.tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${opts.mac},romfile=,bootindex=1`);
  } else {
    args.push('-netdev', `tap,id=n0,ifname=rbtap${opts.tap},script=no,downscript=no`, '-device', `e1000,netdev=n0,mac=${opts.mac},romfile=/usr/lib/ipxe/qemu/efi-e1000.rom,bootindex=1`);
  }
  const started = Date.now();
  const vm = startInNs(`vm-${opts.mac}`, args);
  const stopOn = opts.stopOn ?? FATAL;
  let stoppedBy: BootResult['stoppedBy'] = 'exit';
  const timeout = (opts.timeoutSec ?? 240) * 1000;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (stopOn.test(vm.out)) { stoppedBy = 'fatal'; clearInterval(tick); setTimeout(() => { void vm.stop('SIGKILL').then(resolve); }, 1500); }
      else if (Date.now() - started > timeout) { stoppedBy = 'timeout'; clearInterval(tick); void vm.stop('SIGKILL').then(resolve); }
    }, 250);
    void vm.exited.then(() => { clearInterval(tick); resolve(); });
  });
  // eslint-disable-next-line no-control-regex
  const consoleText = vm.out.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1bc|\r/g, '');
  return { console: consoleText, seconds: (Date.now() - started) / 1000, code: vm.proc.exitCode, stoppedBy };
}
