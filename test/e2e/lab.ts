// The e2e lab: a network namespace with a bridge, rackboot as the only server in it, and QEMU machines
// (SeaBIOS + iPXE ROM, OVMF with and without Secure Boot) that PXE-boot a stand-in installer (Debian kernel +
// busybox initramfs). rackboot is set up only with the README's commands, from an ISO that carries the stand-in.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  chmodSync,
  mkdtempSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { buildRhvhIso, isoToolsMissing } from '../fixtures/images/rhvh-iso.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '../..');
// RACKBOOT_E2E_NS: another name, so a second lab (or another suite) can run beside this one.
export const NS = process.env.RACKBOOT_E2E_NS ?? 'rbe2e';
export const BRIDGE = 'rbbr0';
export const SERVER_IP = '10.99.0.1';
export const HTTP_PORT = 8080;
export const BASE = `http://${SERVER_IP}:${HTTP_PORT}`;
export const API_TOKEN = 'e2e-api-token';
const CACHE = process.env.RACKBOOT_E2E_CACHE ?? '/var/tmp/rackboot-e2e';
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const OVMF_SECBOOT_CODE = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
const OVMF_MS_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
const NEEDED = ['qemu-system-x86_64', 'ip', 'cpio', 'gzip', 'xz', 'dpkg-deb', 'apt-get', 'dnsmasq', 'curl'];
// What `rackboot loaders sync` copies from (README, Images and loaders) and the firmware the machines run.
const NEEDED_FILES = [
  '/usr/lib/PXELINUX/pxelinux.0',
  '/usr/lib/syslinux/modules/bios/ldlinux.c32',
  '/usr/lib/ipxe/ipxe.efi',
  '/usr/lib/ipxe/undionly.kpxe',
  '/usr/lib/shim/shimx64.efi.signed',
  '/usr/lib/shim/mmx64.efi.signed',
  '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed',
  '/usr/lib/ipxe/qemu/efi-e1000.rom',
  OVMF_CODE,
  OVMF_VARS,
  OVMF_SECBOOT_CODE,
  OVMF_MS_VARS,
];

const sh = (cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...opts });
const nsExec = (args: string[], input?: string) => sh('ip', ['netns', 'exec', NS, ...args], { input });

/** Why the e2e suite cannot run here, or undefined when it can. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'e2e needs root (network namespaces, taps)';
  for (const c of NEEDED)
    if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)
      return `e2e needs ${c} (.ci/run installs the Debian packages)`;
  for (const f of NEEDED_FILES) if (!existsSync(f)) return `e2e needs ${f} (.ci/run installs the Debian packages)`;
  const iso = isoToolsMissing();
  if (iso) return `e2e builds its RHVH ISO with them: ${iso}`;
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
  if (
    existsSync(join(dir, 'vmlinuz')) &&
    existsSync(join(dir, 'modules/e1000.ko')) &&
    existsSync(join(dir, 'modules/efivarfs.ko'))
  )
    return { vmlinuz: join(dir, 'vmlinuz'), modules: join(dir, 'modules') };
  const work = mkdtempSync(join(tmpdir(), 'rbe2e-deb-'));
  try {
    const meta = downloadDeb('linux-image-amd64', work);
    const dep = /linux-image-[0-9][^ ,]*/.exec(sh('dpkg-deb', ['-f', meta, 'Depends']))![0];
    const deb = downloadDeb(dep, work);
    sh('dpkg-deb', ['-x', deb, join(work, 'x')]);
    const kv = readdirSync(join(work, 'x/lib/modules'))[0];
    mkdirSync(join(dir, 'modules'), { recursive: true });
    for (const m of [
      'drivers/net/ethernet/intel/e1000/e1000.ko',
      'drivers/virtio/virtio_ring.ko',
      'drivers/virtio/virtio.ko',
      'drivers/virtio/virtio_pci_legacy_dev.ko',
      'drivers/virtio/virtio_pci_modern_dev.ko',
      'drivers/virtio/virtio_pci.ko',
      'net/core/failover.ko',
      'drivers/net/net_failover.ko',
      'drivers/net/virtio_net.ko',
      // efivarfs is a module in Debian's kernel: the stand-in reads SecureBoot and changes BootOrder through it
      'fs/efivarfs/efivarfs.ko',
    ]) {
      const src = join(work, 'x/lib/modules', kv, 'kernel', m);
      if (existsSync(src)) copyFileSync(src, join(dir, 'modules', m.split('/').pop()!));
      else if (existsSync(src + '.xz')) {
        copyFileSync(src + '.xz', join(dir, 'modules', m.split('/').pop()! + '.xz'));
        sh('xz', ['-d', '-f', join(dir, 'modules', m.split('/').pop()! + '.xz')]);
      }
    }
    copyFileSync(join(work, 'x/boot', `vmlinuz-${kv}`), join(dir, 'vmlinuz'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
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
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return file;
}

/**
 * Debian's efibootmgr with its libraries (and this machine's glibc: the lab runs on Debian 12, as the packages do), so
 * the stand-in changes the firmware boot order as Anaconda does and runs the kickstart's own efibootmgr step.
 */
function efibootmgr(): string {
  const dir = join(CACHE, 'efibootmgr');
  if (existsSync(join(dir, 'efibootmgr')) && existsSync(join(dir, 'libdl.so.2'))) return dir;
  const work = mkdtempSync(join(tmpdir(), 'rbe2e-efi-'));
  try {
    mkdirSync(`${dir}.tmp`, { recursive: true });
    for (const pkg of ['efibootmgr', 'libefiboot1', 'libefivar1', 'libpopt0'])
      sh('dpkg-deb', ['-x', downloadDeb(pkg, work), join(work, 'x')]);
    const libs = join(work, 'x/usr/lib/x86_64-linux-gnu');
    for (const f of readdirSync(libs))
      if (/^lib(efiboot|efivar|popt)\.so\.\d+$/.test(f)) copyFileSync(join(libs, f), join(`${dir}.tmp`, f));
    for (const f of [
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib64/ld-linux-x86-64.so.2',
    ])
      copyFileSync(f, join(`${dir}.tmp`, f.split('/').pop()!));
    copyFileSync(
      join(work, existsSync(join(work, 'x/bin/efibootmgr')) ? 'x/bin/efibootmgr' : 'x/usr/bin/efibootmgr'),
      join(`${dir}.tmp`, 'efibootmgr'),
    );
    rmSync(dir, { recursive: true, force: true });
    execFileSync('mv', [`${dir}.tmp`, dir]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

/** The stand-in installer initramfs; rebuilt only when its inputs change. */
function initrd(modules: string): string {
  const init = readFileSync(join(HERE, 'installer-init.sh'));
  const script = readFileSync(join(HERE, 'udhcpc.script'));
  const bb = busybox();
  const efi = efibootmgr();
  const key = createHash('sha256')
    .update(init)
    .update(script)
    .update(readFileSync(bb))
    .update(readdirSync(modules).join(','))
    .update(readdirSync(efi).join(','))
    .digest('hex')
    .slice(0, 16);
  const out = join(CACHE, `installer-${key}.img`);
  if (existsSync(out)) return out;
  const root = mkdtempSync(join(tmpdir(), 'rbe2e-root-'));
  try {
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'lib/modules'])
      mkdirSync(join(root, d), { recursive: true });
    copyFileSync(bb, join(root, 'bin/busybox'));
    for (const m of readdirSync(modules)) copyFileSync(join(modules, m), join(root, 'lib/modules', m));
    writeFileSync(join(root, 'init'), init, { mode: 0o755 });
    writeFileSync(join(root, 'etc/udhcpc.script'), script, { mode: 0o755 });
    mkdirSync(join(root, 'lib/efi'));
    for (const f of readdirSync(efi)) copyFileSync(join(efi, f), join(root, 'lib/efi', f));
    // ld.so run directly: no /lib64 interpreter path or ld.so.cache needed in the initramfs.
    writeFileSync(
      join(root, 'bin/efibootmgr'),
      '#!/bin/sh\nexec /lib/efi/ld-linux-x86-64.so.2 --library-path /lib/efi /lib/efi/efibootmgr "$@"\n',
      { mode: 0o755 },
    );
    chmodSync(join(root, 'bin/busybox'), 0o755);
    const cpio = spawnSync('sh', [
      '-c',
      `cd ${root} && find . | cpio -o -H newc --quiet | gzip -6 > ${out}.tmp && mv ${out}.tmp ${out}`,
    ]);
    if (cpio.status !== 0) throw new Error(`initramfs build failed: ${cpio.stderr}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return out;
}

export interface Lab {
  dir: string;
  /** The image name `rackboot image import` chose (the profiles say `image: <name>`). */
  image: string;
  /** Path under the TFTP root of the image's own shim, when `image import` copied the ISO's EFI/BOOT. */
  imageShim?: string;
  /** What each README command printed, for the log. */
  transcript: string[];
}

/** The settings flags every rackboot command takes (README: "each takes serve's --data-dir, --tftp-root, --images-dir"). */
export const dirFlags = (dir: string): string[] => [
  '--data-dir',
  join(dir, 'data'),
  '--profiles-dir',
  join(dir, 'profiles'),
  '--tftp-root',
  join(dir, 'tftpboot'),
  '--images-dir',
  join(dir, 'images'),
  '--server-ip',
  SERVER_IP,
  '--public-url',
  BASE,
  '--http-port',
  String(HTTP_PORT),
  '--tftp-port',
  '69',
];

function rackbootCli(dir: string, args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/rackboot.mjs'), ...args, ...dirFlags(dir)], {
    encoding: 'utf8',
    env: { ...process.env, RACKBOOT_ADMIN_TOKEN: API_TOKEN },
  });
  // Progress lines ("extracting ISO: 40% (...)") are for a terminal, not for the test log.
  const out = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((l) => !/: \d+% \(/.test(l))
    .join('\n');
  return { code: r.status ?? -1, out };
}

/** Files under root whose path matches, relative to root (the image's EFI/BOOT names keep their ISO case). */
function findUnder(root: string, match: RegExp, rel = ''): string[] {
  if (!existsSync(join(root, rel))) return [];
  return readdirSync(join(root, rel), { withFileTypes: true }).flatMap((e) => {
    const p = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? findUnder(root, match, p) : match.test(p) ? [p] : [];
  });
}

/** The site profiles a user writes next to the samples: the imported image, a serial console the lab can read. */
const SITE_ARGS = 'console=ttyS0,115200 panic=-1 no_timer_check';
export const PROFILES = { base: 'e2e-rhvh', customThin: 'e2e-custom-thin' } as const;

/**
 * Sets rackboot up the way the README tells a user to, and nothing else: `rackboot loaders sync` from the Debian
 * packages, `rackboot image import` of an ISO with the RHVH layout (EFI/BOOT included when the builder puts it in),
 * the sample profiles plus a site profile naming the image. No loader path in a config file, no GRUB built here.
 * `extra`: flags every one of those commands also gets (`--database postgres://...` for nodes on PostgreSQL).
 */
export function setUpAsTheReadmeSays(dir: string, extra: string[] = []): Lab {
  mkdirSync(CACHE, { recursive: true });
  const k = kernel();
  const isoDir = join(dir, 'iso');
  mkdirSync(isoDir, { recursive: true });
  // The stand-in installer goes where a real ISO has Anaconda's kernel and initrd, so `image import` is what puts it in place.
  const built = buildRhvhIso(isoDir, {
    kernelBytes: readFileSync(k.vmlinuz),
    initrdBytes: readFileSync(initrd(k.modules)),
  });
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'));
  const transcript: string[] = [];
  const run = (args: string[]) => {
    const r = rackbootCli(dir, [...args, ...extra]);
    transcript.push(
      `$ rackboot ${args.join(' ')}  (exit ${r.code})`,
      ...r.out
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`),
    );
    if (r.code !== 0) throw new Error(`rackboot ${args.join(' ')} exited ${r.code}:\n${r.out}`);
    return r.out;
  };
  run(['loaders', 'sync']);
  const imported = run(['image', 'import', built.iso]);
  const image = /use it in a profile with: image: (\S+)/.exec(imported)?.[1];
  if (!image) throw new Error(`rackboot image import did not name the image:\n${imported}`);
  for (const [name, parent, what] of [
    [PROFILES.base, 'rhvh-base', 'autopart thin'],
    [PROFILES.customThin, 'rhvh-custom-thin', "the guide's custom thin layout"],
  ]) {
    writeFileSync(
      join(dir, 'profiles', `${name}.yaml`),
      `# e2e site profile: ${what} from the imported ISO, serial console for the lab\nextends: ${parent}\n` +
        `description: e2e ${what}\nimage: ${image}\nboot:\n  kernelArgs: ${SITE_ARGS}\n`,
    );
  }
  const imageShim = findUnder(join(dir, 'tftpboot'), /\/BOOTX64\.EFI$/i).find((p) => p.startsWith(`${image}/`));
  return { dir, image, imageShim, transcript };
}

function cpSync(from: string, to: string) {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) copyFileSync(join(from, f), join(to, f));
}

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
  if (
    !sh('ip', ['netns', 'list'])
      .split('\n')
      .some((l) => l.split(' ')[0] === NS)
  )
    return;
  const pids = spawnSync('ip', ['netns', 'pids', NS], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  spawnSync('ip', ['netns', 'del', NS]);
}

// ---------------------------------------------------------------- processes in the namespace
export class Background {
  out = '';
  readonly exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.stdout?.on('data', (d) => {
      this.out += d;
    });
    proc.stderr?.on('data', (d) => {
      this.out += d;
    });
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
  return new Background(
    name,
    spawn('ip', ['netns', 'exec', NS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
}

/** IPv6 router adverts on the bridge: without them iPXE waits ~13 s for autoconfiguration. */
export function startRouterAdverts(dir: string): Background {
  return startInNs('ra', [
    'dnsmasq',
    '--keep-in-foreground',
    '--port=0',
    `--interface=${BRIDGE}`,
    '--bind-interfaces',
    '--user=root',
    '--group=root',
    '--pid-file=',
    '--conf-file=/dev/null',
    '--enable-ra',
    `--dhcp-range=::,constructor:${BRIDGE},ra-only`,
    `--dhcp-leasefile=${join(dir, 'ra.leases')}`,
  ]);
}

export async function startRackboot(dir: string, extra: string[]): Promise<Background> {
  // README, Settings: the production flags (TFTP on 69, the server's address and public URL) and the same dirs as the commands above.
  const rb = startInNs(
    'rackboot',
    [process.execPath, join(REPO, 'bin/rackboot.mjs'), 'serve', '--listen', '0.0.0.0', ...dirFlags(dir), ...extra],
    { RACKBOOT_ADMIN_TOKEN: API_TOKEN },
  );
  const end = Date.now() + 30_000;
  while (!rb.out.includes('rackboot serving')) {
    if (rb.proc.exitCode !== null) throw new Error(`rackboot exited: ${rb.out}`);
    if (Date.now() > end) throw new Error(`rackboot did not start: ${rb.out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return rb;
}

/** `rackboot doctor` inside the namespace while serve runs (README: the third command); its exit code and what it printed. */
export function doctor(dir: string): { code: number; out: string } {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', NS, process.execPath, join(REPO, 'bin/rackboot.mjs'), 'doctor', ...dirFlags(dir)],
    { encoding: 'utf8' },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`.trimEnd() };
}

/** The rackboot API, called from inside the namespace. T is the body's shape as the caller expects it (not checked). */
export function api<T = unknown>(method: string, path: string, body?: unknown): { status: number; json: T } {
  return apiAt<T>(BASE, method, path, body);
}

/** api() against another node's base URL (several nodes in the lab). */
export function apiAt<T = unknown>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): { status: number; json: T } {
  const args = [
    'curl',
    '-sS',
    '-X',
    method,
    '-H',
    `Authorization: Bearer ${API_TOKEN}`,
    '-w',
    '\n%{http_code}',
    `${base}${path}`,
  ];
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', '@-');
  const out = nsExec(args, body === undefined ? undefined : JSON.stringify(body));
  const nl = out.lastIndexOf('\n');
  const text = out.slice(0, nl);
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: Number(out.slice(nl + 1)), json: json as T };
}

// ---------------------------------------------------------------- machines
/**
 * bios: SeaBIOS + iPXE ROM (e1000). uefi: OVMF's own PXE (virtio-net, no option ROM), as on most UEFI servers.
 * uefi-sb: the same with Secure Boot enforced (Debian's secboot build, Microsoft keys enrolled: Debian's shim is
 * signed by Microsoft, GRUB and the kernel by Debian). uefi-http: OVMF with PXE turned off, so its first network
 * boot option is UEFI HTTP boot (DHCP vendor class HTTPClient, arch 16).
 */
export type Firmware = 'bios' | 'uefi' | 'uefi-sb' | 'uefi-http';
export const isUefi = (f: Firmware): boolean => f !== 'bios';
export interface BootResult {
  console: string;
  seconds: number;
  code: number | null;
  stoppedBy: 'exit' | 'fatal' | 'timeout';
}
// "failed to load Boot0001 ...: Access Denied" is Secure Boot refusing an image, "No more network devices" iPXE giving up:
// either way OVMF would go on to PXEv6 and HTTP boot for minutes.
export const FATAL =
  /No bootable device|Kernel panic - not syncing|UEFI Interactive Shell|Shell> |Boot Failed|BdsDxe: No bootable option|rackboot: no EFI loader on a local disk|: Access Denied|: Security Violation|No more network devices|Boot Maintenance Manager/;

const FIRMWARE_FILES: Record<Exclude<Firmware, 'bios'>, { code: string; vars: string }> = {
  uefi: { code: OVMF_CODE, vars: OVMF_VARS },
  'uefi-http': { code: OVMF_CODE, vars: OVMF_VARS },
  'uefi-sb': { code: OVMF_SECBOOT_CODE, vars: OVMF_MS_VARS },
};

/** A machine keeps its NVRAM from one power-on to the next, as a server does (boot order, Secure Boot state). */
export function nvramOf(dir: string, mac: string, firmware: Firmware): string {
  return join(dir, `OVMF_VARS-${mac.replaceAll(':', '')}-${firmware}.fd`);
}

/**
 * nvramBootOrder: no bootindex on the NIC, so QEMU passes no boot order and OVMF follows the BootOrder in its NVRAM, as a
 * server does (with a bootindex OVMF puts the NIC first again on every power-on, hiding what the installer changed).
 */
export async function bootMachine(opts: {
  dir: string;
  tap: number;
  mac: string;
  firmware: Firmware;
  timeoutSec?: number;
  stopOn?: RegExp;
  nvramBootOrder?: boolean;
}): Promise<BootResult> {
  const args = [
    'qemu-system-x86_64',
    '-accel',
    'tcg',
    '-m',
    '512',
    '-smp',
    '1',
    '-nographic',
    '-no-reboot',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-boot',
    'n',
  ];
  const netdev = ['-netdev', `tap,id=n0,ifname=rbtap${opts.tap},script=no,downscript=no`];
  if (opts.firmware === 'bios') {
    args.push(
      '-machine',
      'pc',
      ...netdev,
      '-device',
      `e1000,netdev=n0,mac=${opts.mac},romfile=/usr/lib/ipxe/qemu/efi-e1000.rom,bootindex=1`,
    );
  } else {
    const fw = FIRMWARE_FILES[opts.firmware];
    const vars = nvramOf(opts.dir, opts.mac, opts.firmware);
    if (!existsSync(vars)) copyFileSync(fw.vars, vars);
    // The secboot build keeps its variables in SMM: without smm=on and a secure pflash it stops before the first line.
    if (opts.firmware === 'uefi-sb')
      args.push('-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on');
    else args.push('-machine', 'pc');
    args.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${fw.code}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${vars}`,
    );
    // OVMF reads these fw_cfg knobs (OvmfPkg NetworkPkg PCDs) when it makes the NIC's boot options: no PXE, HTTP first.
    if (opts.firmware === 'uefi-http')
      args.push(
        '-fw_cfg',
        'name=opt/org.tianocore/IPv4PXESupport,string=n',
        '-fw_cfg',
        'name=opt/org.tianocore/IPv6PXESupport,string=n',
      );
    args.push(
      ...netdev,
      '-device',
      `virtio-net-pci,netdev=n0,mac=${opts.mac},romfile=${opts.nvramBootOrder ? '' : ',bootindex=1'}`,
    );
  }
  const started = Date.now();
  const vm = startInNs(`vm-${opts.mac}`, args);
  const stopOn = opts.stopOn ?? FATAL;
  let stoppedBy: BootResult['stoppedBy'] = 'exit';
  const timeout = (opts.timeoutSec ?? 240) * 1000;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (stopOn.test(vm.out)) {
        stoppedBy = 'fatal';
        clearInterval(tick);
        setTimeout(() => {
          void vm.stop('SIGKILL').then(resolve);
        }, 1500);
      } else if (Date.now() - started > timeout) {
        stoppedBy = 'timeout';
        clearInterval(tick);
        void vm.stop('SIGKILL').then(resolve);
      }
    }, 250);
    void vm.exited.then(() => {
      clearInterval(tick);
      resolve();
    });
  });
  // eslint-disable-next-line no-control-regex
  const consoleText = vm.out.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1bc|\r/g, '');
  return { console: consoleText, seconds: (Date.now() - started) / 1000, code: vm.proc.exitCode, stoppedBy };
}
