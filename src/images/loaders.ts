// `rackboot loaders sync`: fill the TFTP root with the boot loaders each firmware needs, copied from
// distro packages already on this machine. Nothing is downloaded. Knows Debian/Ubuntu and RHEL/Rocky.
//   BIOS:        pxelinux.0 + ldlinux.c32 (loaded by pxelinux.0 from its own dir), libutil, libcom32, menu, chain
//   UEFI x64:    shimx64.efi (signed, for Secure Boot) + grubx64.efi (the name shim loads from its own dir)
//   iPXE:        undionly.kpxe (BIOS), ipxe.efi (UEFI)
// Target names follow config.loaders, so what DHCP hands out is what is on disk.
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { runTool } from './archive.ts';
import { describeLoader, formatLoaderFacts, type LoaderFacts } from './efi.ts';

export type Family = 'debian' | 'rhel';

export interface Candidate {
  path: string;
  family: Family;
  signed?: boolean;
}

export interface LoaderItem {
  /** Path under the TFTP root. */
  dest: string;
  what: string;
  candidates: Candidate[];
  packages: Record<Family, string>;
  /** Needed for the loader named in config.loaders (false: an extra, e.g. shim when loaders.uefi is GRUB). */
  required: boolean;
}

export interface LoaderConfig {
  bios: string;
  uefi: string;
  ipxeBios: string;
  ipxeUefi: string;
}

const RHEL_EFI_VENDORS = ['redhat', 'rocky', 'centos', 'almalinux', 'ol'];
const C32 = ['ldlinux.c32', 'libutil.c32', 'libcom32.c32', 'menu.c32', 'chain.c32'];
export const GRUB_MKNETDIR_SUBDIR = 'boot/grub';

/** The loaders rackboot fills in, for a config. Pure. */
export function loaderItems(loaders: LoaderConfig): LoaderItem[] {
  const biosDir = posix.dirname(loaders.bios) === '.' ? '' : posix.dirname(loaders.bios);
  const uefiDir = posix.dirname(loaders.uefi) === '.' ? '' : posix.dirname(loaders.uefi);
  const at = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);
  const uefiBase = posix.basename(loaders.uefi);
  const shimIsLoader = /^shim/i.test(uefiBase);
  const items: LoaderItem[] = [
    {
      dest: loaders.bios,
      what: 'BIOS PXE loader (pxelinux)',
      required: true,
      candidates: [
        { path: '/usr/lib/PXELINUX/pxelinux.0', family: 'debian' },
        { path: '/usr/share/syslinux/pxelinux.0', family: 'rhel' },
        { path: '/tftpboot/pxelinux.0', family: 'rhel' },
      ],
      packages: { debian: 'pxelinux', rhel: 'syslinux (syslinux-tftpboot on EL8+)' },
    },
    ...C32.map((m): LoaderItem => ({
      dest: at(biosDir, m),
      what: `pxelinux module ${m}`,
      required: true,
      candidates: [
        { path: `/usr/lib/syslinux/modules/bios/${m}`, family: 'debian' },
        { path: `/usr/share/syslinux/${m}`, family: 'rhel' },
        { path: `/tftpboot/${m}`, family: 'rhel' },
      ],
      packages: { debian: 'syslinux-common', rhel: 'syslinux-nonlinux (EL8+) or syslinux' },
    })),
    {
      dest: at(uefiDir, 'shimx64.efi'),
      what: 'UEFI x64 shim (Secure Boot first stage; loads grubx64.efi beside it)',
      required: shimIsLoader,
      candidates: [
        { path: '/usr/lib/shim/shimx64.efi.signed.latest', family: 'debian', signed: true },
        { path: '/usr/lib/shim/shimx64.efi.signed', family: 'debian', signed: true },
        ...RHEL_EFI_VENDORS.map((v): Candidate => ({
          path: `/boot/efi/EFI/${v}/shimx64.efi`,
          family: 'rhel',
          signed: true,
        })),
        { path: '/usr/lib/shim/shimx64.efi', family: 'debian', signed: false },
      ],
      packages: { debian: 'shim-signed', rhel: 'shim-x64' },
    },
    {
      dest: at(uefiDir, 'grubx64.efi'),
      what: 'UEFI x64 GRUB network image',
      required: true,
      candidates: [
        { path: '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed', family: 'debian', signed: true },
        ...RHEL_EFI_VENDORS.map((v): Candidate => ({
          path: `/boot/efi/EFI/${v}/grubx64.efi`,
          family: 'rhel',
          signed: true,
        })),
      ],
      packages: {
        debian: 'grub-efi-amd64-signed (or grub-efi-amd64-bin, unsigned, through grub-mknetdir)',
        rhel: 'grub2-efi-x64',
      },
    },
    {
      dest: loaders.ipxeBios,
      what: 'iPXE for BIOS (chainloaded by PXE ROMs)',
      required: true,
      candidates: [
        { path: '/usr/lib/ipxe/undionly.kpxe', family: 'debian' },
        { path: '/usr/share/ipxe/undionly.kpxe', family: 'rhel' },
      ],
      packages: { debian: 'ipxe', rhel: 'ipxe-bootimgs-x86 (EL8+) or ipxe-bootimgs' },
    },
    {
      dest: loaders.ipxeUefi,
      what: 'iPXE for UEFI x64',
      required: true,
      candidates: [
        { path: '/usr/lib/ipxe/ipxe.efi', family: 'debian' },
        { path: '/usr/share/ipxe/ipxe-x86_64.efi', family: 'rhel' },
        { path: '/usr/share/ipxe/ipxe.efi', family: 'rhel' },
      ],
      packages: { debian: 'ipxe', rhel: 'ipxe-bootimgs-x86 (EL8+) or ipxe-bootimgs' },
    },
  ];
  // A loaders.uefi name that is neither shim nor grubx64.efi gets GRUB under that name as well.
  if (!shimIsLoader && uefiBase !== 'grubx64.efi') {
    const grub = items.find((i) => i.dest === at(uefiDir, 'grubx64.efi'))!;
    items.push({ ...grub, dest: loaders.uefi, what: `UEFI x64 GRUB network image (as loaders.uefi ${loaders.uefi})` });
  }
  return items;
}

export function detectFamily(osRelease: string | undefined): Family | undefined {
  if (!osRelease) return undefined;
  const ids = [...osRelease.matchAll(/^(ID|ID_LIKE)=["']?([^"'\n]*)["']?$/gm)].flatMap((m) => m[2].split(/\s+/));
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return 'debian';
  if (ids.some((i) => ['rhel', 'fedora', 'centos', 'rocky', 'almalinux', 'ol'].includes(i))) return 'rhel';
  return undefined;
}

export interface SyncDeps {
  tftpRoot: string;
  loaders: LoaderConfig;
  /** Where the distro files are looked for ('/' normally; tests give a fake root). */
  fsRoot?: string;
  /** grub-mknetdir command (Debian/Ubuntu grub-efi-amd64-bin) for an unsigned GRUB when no signed one exists; '' turns it off. */
  grubMknetdir?: string;
  /**
   * Vendors that signed the kernels booted through the synced loaders (e.g. "Red Hat"): a shim of another vendor
   * is warned about. Undefined: unknown, RHVH's (Red Hat); empty: no profile boots through the synced UEFI loaders.
   */
  imageVendors?: string[];
}

export type SyncLine =
  | { kind: 'copied' | 'unchanged'; dest: string; from: string; signed?: boolean; facts?: LoaderFacts }
  | { kind: 'built'; dest: string; from: string; signed: false; facts?: LoaderFacts }
  | { kind: 'missing'; dest: string; what: string; required: boolean; packages: Record<Family, string> };

export interface SyncReport {
  family?: Family;
  lines: SyncLine[];
  advice: string[];
  ok: boolean;
}

export async function syncLoaders(d: SyncDeps): Promise<SyncReport> {
  const root = d.fsRoot ?? '/';
  const under = (p: string) => join(root, p);
  let osRelease: string | undefined;
  try {
    osRelease = readFileSync(under('/etc/os-release'), 'utf8');
  } catch {
    /* unknown family */
  }
  const family = detectFamily(osRelease);
  const lines: SyncLine[] = [];
  const advice: string[] = [];
  mkdirSync(d.tftpRoot, { recursive: true });
  const items = loaderItems(d.loaders);
  const grubDest = items.find((i) => /grubx64\.efi$/.test(i.dest) && i.what === 'UEFI x64 GRUB network image')!.dest;
  let grubFrom: { path: string; signed: boolean } | undefined;

  for (const item of items) {
    // Our family's paths first, then the other family's (a Debian box may carry RHEL's files, or the reverse).
    const ordered = [...item.candidates].sort((a, b) => rank(a) - rank(b));
    const found = ordered.find((c) => isFile(under(c.path)));
    if (found) {
      const changed = installFile(under(found.path), join(d.tftpRoot, item.dest));
      lines.push({
        kind: changed ? 'copied' : 'unchanged',
        dest: item.dest,
        from: found.path,
        ...(found.signed !== undefined ? { signed: found.signed } : {}),
      });
      if (item.dest === grubDest) grubFrom = { path: under(found.path), signed: Boolean(found.signed) };
      continue;
    }
    if (item.dest === grubDest && d.grubMknetdir !== '') {
      const built = await mknetdirGrub(d, under('/usr/lib/grub/x86_64-efi'));
      if (built) {
        const changed = installFile(built, join(d.tftpRoot, item.dest));
        lines.push({
          kind: changed ? 'built' : 'unchanged',
          dest: item.dest,
          from: `grub-mknetdir (${GRUB_MKNETDIR_SUBDIR}/x86_64-efi/core.efi)`,
          signed: false,
        });
        grubFrom = { path: built, signed: false };
        continue;
      }
    }
    lines.push({ kind: 'missing', dest: item.dest, what: item.what, required: item.required, packages: item.packages });
  }
  // Extra GRUB copies (loaders.uefi under another name) follow the main one.
  for (const l of lines) {
    if (l.kind === 'missing' && grubFrom && l.what.startsWith('UEFI x64 GRUB network image (as')) {
      installFile(grubFrom.path, join(d.tftpRoot, l.dest));
      Object.assign(l, { kind: 'copied', from: grubDest, signed: grubFrom.signed });
    }
  }
  for (const l of lines) {
    if (l.kind !== 'missing' && /\.efi$/i.test(l.dest)) {
      const facts = inspectLoader(
        join(d.tftpRoot, l.dest),
        l.kind === 'built' ? join(d.tftpRoot, GRUB_MKNETDIR_SUBDIR, 'x86_64-efi') : undefined,
      );
      if (facts) l.facts = facts;
    }
  }
  advice.push(...secureBootAdvice(lines, d.imageVendors));

  const shim = lines.find((l) => l.dest.endsWith('shimx64.efi'));
  const uefiIsShim = /^shim/i.test(posix.basename(d.loaders.uefi));
  if (shim && shim.kind !== 'missing' && !uefiIsShim) {
    advice.push(
      `Secure Boot: UEFI clients are told to boot ${d.loaders.uefi}; to go through the signed shim set "loaders: { uefi: ${posix.join(posix.dirname(d.loaders.uefi), 'shimx64.efi').replace(/^\.\//, '')} }" in the config file`,
    );
  }
  if (grubFrom && !grubFrom.signed)
    advice.push(
      'GRUB is unsigned (built with grub-mknetdir): UEFI clients with Secure Boot on will refuse it; install grub-efi-amd64-signed and shim-signed (Debian/Ubuntu) or grub2-efi-x64 and shim-x64 (RHEL/Rocky), then sync again',
    );
  const missing = lines.filter((l): l is Extract<SyncLine, { kind: 'missing' }> => l.kind === 'missing');
  if (missing.length) {
    const fam = family ?? 'debian';
    const pkgs = [...new Set(missing.map((m) => m.packages[fam]))];
    advice.push(
      `install ${pkgs.join(', ')}${family ? '' : " (Debian/Ubuntu names; this machine's family is unknown)"}, then run rackboot loaders sync again`,
    );
  }
  return { family, lines, advice, ok: missing.every((m) => !m.required) };

  function rank(c: Candidate): number {
    return (family && c.family !== family ? 10 : 0) + (c.signed === false ? 1 : 0);
  }
}

/** Facts of an installed EFI file; a grub-mknetdir core.efi is read with the normal.mod and net.mod it loads at run time. */
export function inspectLoader(path: string, moduleDir?: string): LoaderFacts | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  const extra: Buffer[] = [];
  if (moduleDir)
    for (const m of ['normal.mod', 'net.mod']) {
      try {
        extra.push(readFileSync(join(moduleDir, m)));
      } catch {
        /* not there */
      }
    }
  return describeLoader(bytes, basename(path), extra);
}

const RHEL_LOADER_PACKAGES =
  'shim-x64 and grub2-efi-x64 (from RHEL, copied with rackboot loaders sync on a RHEL machine)';

/**
 * Secure Boot checks the kernel against the shim's vendor CA: RHVH kernels are Red Hat's, so Debian's shim
 * and GRUB refuse them. Said when the synced chain's vendor is not the vendor of the images in use.
 */
export function secureBootAdvice(lines: SyncLine[], imageVendors: string[] | undefined): string[] {
  const facts = lines.flatMap((l) => (l.kind !== 'missing' && l.facts ? [{ dest: l.dest, facts: l.facts }] : []));
  const shim = facts.find((f) => f.facts.kind === 'shim');
  const grub = facts.find((f) => f.facts.kind === 'grub');
  const chainVendor = shim?.facts.vendor ?? grub?.facts.vendor;
  const out: string[] = [];
  const wanted = [...new Set(imageVendors ?? ['Red Hat'])];
  if (chainVendor && wanted.some((v) => v !== chainVendor)) {
    const others = wanted.filter((v) => v !== chainVendor).join(', ');
    out.push(
      `Secure Boot: the synced ${shim ? 'shim trusts' : 'GRUB is signed by'} ${chainVendor}, but the ${imageVendors ? 'images in use are' : 'RHVH kernel is'} signed by ${others}: ` +
        `with Secure Boot on, hosts refuse that kernel. Use the image's own loaders (rackboot image import copies EFI/BOOT/; profiles use them unless boot.uefiLoaders: sync), ` +
        `or install ${others === 'Red Hat' ? RHEL_LOADER_PACKAGES : `${others}'s shim and GRUB`} instead`,
    );
  }
  if (grub?.facts.grub && !grub.facts.grub.perMac) {
    out.push(
      `${grub.dest} asks only a fixed config (${grub.facts.grub.asks.join(', ') || 'grub.cfg'}), never grub.cfg-01-<mac>: ` +
        'rackboot answers it by tying the client address to its host (DHCP lease, learnt address, neighbour table, static IP); a client behind NAT gets the local-boot default',
    );
  }
  return out;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function sha256(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

/** Copies when the content differs; a temp file + rename so a client never reads half a loader. Returns true when it wrote. */
function installFile(from: string, to: string): boolean {
  if (isFile(to) && sha256(to) === sha256(from)) return false;
  mkdirSync(dirname(to), { recursive: true });
  const tmp = join(dirname(to), `.${basename(to)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    copyFileSync(from, tmp);
    chmodSync(tmp, 0o644);
    renameSync(tmp, to);
  } finally {
    if (existsSync(tmp)) rmSync(tmp, { force: true });
  }
  return true;
}

/** grub-mknetdir --subdir=boot/grub: core.efi with prefix (tftp)/boot/grub, modules beside it. */
async function mknetdirGrub(d: SyncDeps, moduleDir: string): Promise<string | undefined> {
  if (!existsSync(join(moduleDir, 'efinet.mod'))) return undefined;
  try {
    const r = await runTool(d.grubMknetdir ?? 'grub-mknetdir', [
      `--net-directory=${d.tftpRoot}`,
      `--subdir=${GRUB_MKNETDIR_SUBDIR}`,
      '-d',
      moduleDir,
    ]);
    const core = join(d.tftpRoot, GRUB_MKNETDIR_SUBDIR, 'x86_64-efi', 'core.efi');
    return r.code === 0 && isFile(core) ? core : undefined;
  } catch {
    return undefined;
  }
}

export function formatSyncReport(r: SyncReport, tftpRoot: string): string[] {
  const out = [`tftp root ${tftpRoot} (distro family: ${r.family ?? 'unknown'})`];
  for (const l of r.lines) {
    if (l.kind === 'missing') {
      out.push(
        `  missing   ${l.dest.padEnd(16)} ${l.what}${l.required ? '' : ' (optional)'}: Debian/Ubuntu package ${l.packages.debian}; RHEL/Rocky package ${l.packages.rhel}`,
      );
    } else {
      const sig = l.signed === undefined ? '' : l.signed ? ', signed' : ', unsigned';
      out.push(`  ${l.kind.padEnd(9)} ${l.dest.padEnd(16)} <- ${l.from}${sig}`);
      if (l.facts) out.push(`            ${formatLoaderFacts(l.facts)}`);
    }
  }
  for (const a of r.advice) out.push(`note: ${a}`);
  return out;
}
