// What a GRUB EFI image will do on the network, read from its bytes: which config names it asks for
// (per-MAC grub.cfg-01-<mac>, or only a fixed file under its prefix), which kernel command it has.
// GRUB's mkimage layout (include/grub/kernel.h): a "mods" section opening with grub_module_info64
// ("mimg", offset, size), then grub_module_header { type, size } records: 0 ELF module, 1 memdisk,
// 2 embedded config, 3 prefix. Pure; bounded loops; bad bytes give undefined.
import { parsePe, sectionBytes, type PeFile } from './pe.ts';

export interface GrubFlavour {
  /** Embedded prefix ("/grub", "/EFI/redhat", "(tftp)/boot/grub"); the boot device is put in front of a bare path. */
  prefix?: string;
  /** The embedded config script (mkimage -c), and script text found in its memdisk (Debian's grubnetx64). */
  embeddedConfig?: string;
  memdiskConfig?: string;
  /** Module names built into the image (.modname of each ELF module). */
  modules: string[];
  /** True when it asks grub.cfg-01-<mac> (and the hex-IP names) before grub.cfg. */
  perMac: boolean;
  /** Over which protocol the per-MAC search happens: upstream GRUB searches only when its prefix is (tftp,...). */
  perMacOver?: 'tftp' | 'any';
  /** Asks first in the directory it was loaded from ($fw_path, Red Hat's GRUB), then under the prefix. */
  loaderDirFirst: boolean;
  /** The config files it asks for, in order, relative to its boot device ("<loader dir>" = where it was loaded from). */
  asks: string[];
  /** One line for people: "per-MAC (grub.cfg-01-<mac>) ..." or "prefix only: ...". */
  lookup: string;
  linuxefi: boolean;
  /** Has an http module: can fetch its config and kernel over HTTP when loaded by UEFI HTTP boot. */
  http: boolean;
}

const MODULE_ELF = 0,
  MODULE_MEMDISK = 1,
  MODULE_CONFIG = 2,
  MODULE_PREFIX = 3;
const MAX_MODULES = 1024;

const le32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
const le64 = (b: Uint8Array, o: number) => le32(b, o) + le32(b, o + 4) * 0x100000000;
const le16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);

/** Text taken from a binary goes into listings, logs and the API: no control characters, bounded. */
function clean(s: string, max = 256): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it removes
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?').slice(0, max);
}

function text(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(b.buffer, b.byteOffset, end < 0 ? b.length : end).toString('latin1');
}

/** The module list of a GRUB image; undefined when these bytes are not one. */
function modulesOf(
  b: Uint8Array,
  pe: PeFile,
): { elf: Uint8Array[]; memdisk?: Uint8Array; config?: string; prefix?: string } | undefined {
  const sec = pe.sections.find((s) => s.name === 'mods');
  const mods = sec && sectionBytes(b, sec);
  if (!mods || mods.length < 24 || text(mods.subarray(0, 4)) !== 'mimg') return undefined;
  const offset = le64(mods, 8),
    size = le64(mods, 16);
  if (offset < 24 || size > mods.length) return undefined;
  const out: { elf: Uint8Array[]; memdisk?: Uint8Array; config?: string; prefix?: string } = { elf: [] };
  for (let at = offset, n = 0; at + 8 <= size && n < MAX_MODULES; n++) {
    const type = le32(mods, at),
      len = le32(mods, at + 4);
    if (len < 8 || at + len > size) break;
    const body = mods.subarray(at + 8, at + len);
    if (type === MODULE_ELF) out.elf.push(body);
    else if (type === MODULE_MEMDISK) out.memdisk = body;
    else if (type === MODULE_CONFIG) out.config = text(body);
    else if (type === MODULE_PREFIX) out.prefix = text(body);
    at += len;
  }
  return out;
}

/** The .modname of an ELF64 GRUB module. */
function moduleName(e: Uint8Array): string | undefined {
  if (e.length < 64 || e[0] !== 0x7f || e[1] !== 0x45 || e[4] !== 2) return undefined;
  const shoff = le64(e, 0x28),
    shentsize = le16(e, 0x3a),
    shnum = le16(e, 0x3c),
    shstrndx = le16(e, 0x3e);
  if (shentsize < 64 || shnum > 256 || shstrndx >= shnum || shoff + shnum * shentsize > e.length) return undefined;
  const sh = (i: number) => ({
    name: le32(e, shoff + i * shentsize),
    offset: le64(e, shoff + i * shentsize + 24),
    size: le64(e, shoff + i * shentsize + 32),
  });
  const names = sh(shstrndx);
  if (names.offset + names.size > e.length) return undefined;
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    if (s.name >= names.size || s.offset + s.size > e.length) continue;
    if (text(e.subarray(names.offset + s.name, names.offset + names.size)) === '.modname')
      return text(e.subarray(s.offset, s.offset + s.size)) || undefined;
  }
  return undefined;
}

function contains(b: Uint8Array, needle: string): boolean {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).includes(needle, 0, 'latin1');
}

/**
 * GRUB script text in a memdisk, whatever its file system (FAT for Debian's grubnetx64, tar for
 * grub-mkstandalone): runs of printable text that use GRUB's config commands. Good enough to tell
 * "sources $prefix/grub.cfg" from "looks up grub.cfg-01-$net_default_mac"; not a file system reader.
 */
function memdiskScripts(m: Uint8Array): string | undefined {
  const s = Buffer.from(m.buffer, m.byteOffset, Math.min(m.byteLength, 64 * 1024 * 1024)).toString('latin1');
  const found: string[] = [];
  for (const run of s.matchAll(/[\t\n\x20-\x7e]{24,}/g)) {
    if (/\b(source|configfile|normal)\b/.test(run[0]) && /(\$prefix|grub\.cfg|\$\{?net_)/.test(run[0]))
      found.push(run[0].trim());
    if (found.length >= 16) break;
  }
  return found.length ? found.join('\n') : undefined;
}

const PER_MAC_SCRIPT = /grub\.cfg-01-|net_default_mac|\$\{?net_[A-Za-z0-9_]*_mac\b/;
/** A line that runs `normal` with no argument: GRUB's own config search (normal/main.c) then happens. */
const BARE_NORMAL = /^\s*normal\s*(#.*)?$/m;

/** Config files a script sources from $prefix (or literal paths), in order. */
function sourcedFiles(script: string, prefix: string): string[] {
  const out: string[] = [];
  for (const m of script.matchAll(/\b(?:source|configfile)\s+("?)([^\s";]+)\1/g)) {
    const p = m[2].replace(/\$\{?prefix\}?/g, prefix).replace(/\$\{?cmdpath\}?/g, '<loader dir>');
    if (!p.startsWith('(memdisk)') && !out.includes(clean(p))) out.push(clean(p));
    if (out.length >= 8) break;
  }
  return out;
}

/**
 * `extra`: module files GRUB loads from its prefix at run time (grub-mknetdir puts normal.mod and
 * net.mod beside core.efi, which embeds only what it needs to reach them).
 */
export function grubFlavour(b: Uint8Array, extra: Uint8Array[] = []): GrubFlavour | undefined {
  const pe = parsePe(b);
  if (!pe) return undefined;
  const mods = modulesOf(b, pe);
  if (!mods) return undefined;
  const modules = mods.elf.map(moduleName).filter((n): n is string => n !== undefined);
  const code = [...mods.elf, ...extra];
  const has = (needle: string) => code.some((m) => contains(m, needle));
  const prefix = clean(mods.prefix ?? '');
  const bare = prefix.replace(/^\([^)]*\)/, '') || '/';
  const memdiskConfig = mods.memdisk ? memdiskScripts(mods.memdisk) : undefined;
  const script = [mods.config ?? '', memdiskConfig ?? ''].join('\n');
  // grub_net_search_config_file (upstream 2.04+, and Red Hat's earlier patch) builds "net_%s_clientuuid".
  const netSearch = has('_clientuuid');
  // Red Hat's "Try prefix if fw_path doesn't work": $fw_path (the loader's own directory) is tried first.
  const loaderDirFirst = has('fw_path');
  const under = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
  let perMac = false;
  let perMacOver: GrubFlavour['perMacOver'];
  let asks: string[];
  let lookup: string;
  if (PER_MAC_SCRIPT.test(script)) {
    perMac = true;
    perMacOver = 'any';
    asks = [...sourcedFiles(script, bare)];
    lookup = 'per-MAC: its built-in config looks up grub.cfg-01-<mac> itself';
  } else if (mods.config === undefined || BARE_NORMAL.test(mods.config)) {
    // No embedded config: GRUB loads normal and runs it without arguments, which searches per MAC/IP on TFTP.
    perMac = netSearch;
    perMacOver = netSearch ? (loaderDirFirst ? 'any' : 'tftp') : undefined;
    const dirs = loaderDirFirst ? ['<loader dir>', bare] : [bare];
    asks = dirs.flatMap((d) => [
      ...(perMac ? [under(d, 'grub.cfg-01-<mac>'), under(d, 'grub.cfg-<hex ip>')] : []),
      under(d, 'grub.cfg'),
    ]);
    lookup = perMac
      ? `per-MAC: grub.cfg-01-<mac>, then grub.cfg-<hex ip>, then grub.cfg in ${dirs.join(', then ')}${perMacOver === 'tftp' ? ' (over TFTP only; over HTTP only grub.cfg)' : ''}`
      : `prefix only: ${asks.join(', ')} (this GRUB has no per-MAC search)`;
  } else {
    asks = sourcedFiles(script, bare);
    if (asks.length === 0) asks = [under(bare, 'grub.cfg')];
    lookup = `prefix only: ${asks.join(', then ')} (never grub.cfg-01-<mac>: rackboot must tie the client's address to its host)`;
  }
  return {
    ...(mods.prefix !== undefined ? { prefix } : {}),
    ...(mods.config !== undefined ? { embeddedConfig: mods.config } : {}),
    ...(memdiskConfig !== undefined ? { memdiskConfig } : {}),
    modules,
    perMac,
    ...(perMacOver ? { perMacOver } : {}),
    loaderDirFirst,
    asks,
    lookup,
    linuxefi: modules.includes('linuxefi') || has('\0linuxefi\0'),
    http: modules.includes('http') || modules.includes('efihttp'),
  };
}

/** Vendors whose GRUB needs linuxefi/initrdefi under Secure Boot (Red Hat's shim-lock loader); others boot EFI kernels with linux. */
const LINUXEFI_VENDORS = new Set(['Red Hat', 'CentOS', 'Rocky', 'AlmaLinux', 'Oracle', 'Fedora']);

/**
 * The one kernel command the install config uses. Debian's and upstream's linux command boots EFI kernels
 * (through shim's verifier); Debian's linuxefi refuses without shim, after reading the whole kernel. Red Hat's
 * GRUB verifies only in linuxefi. So: linuxefi when this GRUB has it and is Red Hat's family (or has no linux).
 */
export function grubKernelCommand(f: GrubFlavour | undefined, signerVendor: string | undefined): 'linux' | 'linuxefi' {
  if (!f?.linuxefi) return 'linux';
  if (signerVendor && LINUXEFI_VENDORS.has(signerVendor)) return 'linuxefi';
  if (f.loaderDirFirst) return 'linuxefi';
  return f.modules.length > 0 && !f.modules.includes('linux') ? 'linuxefi' : 'linux';
}
