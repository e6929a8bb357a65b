// `rackboot doctor`: is this machine ready to provision? Ports, loaders, images referenced by profiles,
// the public URL. Each finding says what to fix; any failure makes the exit code non-zero.
import dgram from 'node:dgram';
import net from 'node:net';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { ProfileSnapshot } from '../profiles/catalog.ts';
import { formatProfileError } from '../profiles/load.ts';
import { Bsdtar, BSDTAR_HINT } from './archive.ts';
import { verifyImage, STAGE2_IN_ISO } from './import.ts';
import { inspectLoader, loaderItems } from './loaders.ts';
import { imageEfiLoaders, imageKernelVendor, type ImageView } from './store.ts';
import { createUefiChainResolver, type UefiChainResolver } from './uefi-chain.ts';
import { posix } from 'node:path';
import { nativeState } from '../native.ts';
import { databaseBytes } from '../store/db.ts';
import { redactUrl, type DatabaseTarget } from '../store/target.ts';

export interface Finding {
  level: 'ok' | 'warn' | 'fail';
  what: string;
  fix?: string;
}
export interface DoctorReport {
  findings: Finding[];
  ok: boolean;
}

export interface DoctorDeps {
  config: Pick<Config, 'listen' | 'httpPort' | 'tftpPort' | 'publicUrl' | 'tftpRoot' | 'imagesDir' | 'loaders'> & {
    dhcp: { mode: string };
    dataDir?: string;
    /** Where the store is (--database): PostgreSQL has no file to size here. */
    database?: DatabaseTarget;
  };
  images: Pick<ImageView, 'get' | 'list'>;
  profiles: ProfileSnapshot;
  fetch?: typeof fetch;
  bsdtar?: Bsdtar;
  timeoutMs?: number;
  uefiChain?: UefiChainResolver;
}

export async function runDoctor(d: DoctorDeps): Promise<DoctorReport> {
  const c = d.config;
  const findings: Finding[] = [];
  const timeoutMs = d.timeoutMs ?? 3000;
  const doFetch = d.fetch ?? fetch;

  // --- Ports ---------------------------------------------------------------------------------
  const localHost = c.listen === '0.0.0.0' || c.listen === '::' ? '127.0.0.1' : c.listen;
  const http = await tryBind('tcp', c.listen, c.httpPort);
  if (http === 'ok')
    findings.push({
      level: 'ok',
      what: `HTTP port ${c.httpPort} on ${c.listen} is free (rackboot serve is not running here)`,
    });
  else if (http === 'EADDRINUSE') {
    const alive = await healthz(doFetch, `http://${localHost}:${c.httpPort}`, timeoutMs);
    findings.push(
      alive.ok
        ? { level: 'ok', what: `HTTP port ${c.httpPort}: rackboot answers /healthz` }
        : {
            level: 'fail',
            what: `HTTP port ${c.httpPort} on ${c.listen} is taken by another program (/healthz: ${alive.error})`,
            fix: `stop that program, or choose another --http-port`,
          },
    );
  } else findings.push(bindFailure('HTTP', c.httpPort, http));

  if (c.tftpPort === 0)
    findings.push({
      level: 'warn',
      what: 'TFTP is off (--tftp-port 0)',
      fix: 'PXE firmware loads its first loader over TFTP: turn it on unless another TFTP server serves the tftp root',
    });
  else {
    const tftp = await tryBind('udp', c.listen, c.tftpPort);
    if (tftp === 'ok') findings.push({ level: 'ok', what: `TFTP port ${c.tftpPort} on ${c.listen} is free` });
    else if (tftp === 'EADDRINUSE') {
      const answers = await tftpAnswers(localHost, c.tftpPort, Math.min(timeoutMs, 1500));
      findings.push(
        answers
          ? { level: 'ok', what: `TFTP port ${c.tftpPort}: a TFTP server answers (rackboot serve?)` }
          : {
              level: 'fail',
              what: `UDP port ${c.tftpPort} is taken by a program that does not answer TFTP`,
              fix: 'stop it (tftpd-hpa? dnsmasq?), or choose another --tftp-port',
            },
      );
    } else findings.push(bindFailure('TFTP', c.tftpPort, tftp));
    if (c.tftpPort !== 69)
      findings.push({
        level: c.dhcp.mode === 'off' ? 'warn' : 'fail',
        what: `TFTP listens on port ${c.tftpPort}; PXE firmware always asks port 69`,
        fix: 'set --tftp-port 69 in production (needs root or CAP_NET_BIND_SERVICE), or forward 69 to it',
      });
  }
  if (c.dhcp.mode !== 'off') {
    for (const port of c.dhcp.mode === 'proxy' ? [67, 4011] : [67]) {
      const r = await tryBind('udp', '0.0.0.0', port);
      if (r === 'ok') findings.push({ level: 'ok', what: `DHCP port ${port} is free` });
      else if (r === 'EADDRINUSE')
        findings.push({
          level: 'warn',
          what: `DHCP port ${port} is in use (rackboot serve, or another DHCP server?)`,
          fix: 'if it is not rackboot, stop the other DHCP server (dnsmasq, isc-dhcp-server, kea) or use --dhcp-mode proxy beside it',
        });
      else findings.push(bindFailure('DHCP', port, r));
    }
  }

  // --- Boot loaders --------------------------------------------------------------------------
  const missingLoaders = loaderItems(c.loaders).filter((i) => i.required && !isFile(join(c.tftpRoot, i.dest)));
  if (missingLoaders.length === 0)
    findings.push({
      level: 'ok',
      what: `boot loaders present in ${c.tftpRoot} (${c.loaders.bios}, ${c.loaders.uefi}, ${c.loaders.ipxeBios}, ${c.loaders.ipxeUefi})`,
    });
  else
    findings.push({
      level: 'fail',
      what: `boot loaders missing in ${c.tftpRoot}: ${missingLoaders.map((i) => i.dest).join(', ')}`,
      fix: 'run rackboot loaders sync (it lists the packages to install for anything it cannot find)',
    });

  // --- Profiles and their images -------------------------------------------------------------
  for (const e of d.profiles.errors)
    findings.push({
      level: 'fail',
      what: `profile error: ${formatProfileError(e)}`,
      fix: 'fix the file (rackboot lint shows every problem)',
    });
  const used = new Set<string>();
  for (const lp of d.profiles.profiles.values()) {
    const img = lp.profile.image;
    if (typeof img === 'string') {
      used.add(img);
      const rec = d.images.get(img);
      if (!rec) {
        findings.push({
          level: 'fail',
          what: `profile ${lp.name} uses image ${img}, which is not imported`,
          fix: `rackboot image import /path/to/RHVH.iso --name ${img}`,
        });
        continue;
      }
      const problems = verifyImage(rec, c.tftpRoot, c.imagesDir);
      findings.push(
        problems.length
          ? {
              level: 'fail',
              what: `image ${img} (profile ${lp.name}): ${problems.join('; ')}`,
              fix: `rackboot image remove ${img} (after pointing the profiles elsewhere), then import it again`,
            }
          : { level: 'ok', what: `profile ${lp.name}: image ${img} (RHVH ${rec.version}) is imported and complete` },
      );
    } else {
      const missing: string[] = [];
      for (const p of [img.kernel, img.initrd]) if (!isFile(join(c.tftpRoot, p))) missing.push(join(c.tftpRoot, p));
      if (
        !/^https?:/.test(img.stage2) &&
        !isFile(join(c.imagesDir, img.stage2, STAGE2_IN_ISO)) &&
        !isFile(join(c.imagesDir, img.stage2))
      )
        missing.push(join(c.imagesDir, img.stage2, STAGE2_IN_ISO));
      if (!/^https?:/.test(img.liveimg) && !isFile(join(c.imagesDir, img.liveimg)))
        missing.push(join(c.imagesDir, img.liveimg));
      findings.push(
        missing.length
          ? {
              level: 'fail',
              what: `profile ${lp.name}: missing ${missing.join(', ')}`,
              fix: 'import the RHVH ISO (rackboot image import ISO --name NAME) and say image: NAME in the profile, or fix the paths',
            }
          : { level: 'ok', what: `profile ${lp.name}: kernel, initrd, stage2 and liveimg files are present` },
      );
    }
  }
  findings.push(...uefiFindings(d));
  for (const rec of d.images.list())
    if (!used.has(rec.name))
      findings.push({ level: 'ok', what: `image ${rec.name} (RHVH ${rec.version}) is imported; no profile uses it` });
  if (!nativeState.loaded) {
    const slower =
      'images are served by copying, at about half the speed, and bursts of new HTTP connections are let in one per event-loop turn';
    findings.push(
      nativeState.reason === 'off'
        ? {
            level: 'warn',
            what: `the native addon is turned off (RACKBOOT_NATIVE=off): ${slower}`,
            fix: 'unset RACKBOOT_NATIVE unless you are ruling the addon out',
          }
        : {
            level: 'warn',
            what: `the native addon (native/build/Release/rackboot.node) ${nativeState.reason === 'missing' ? 'is not built' : `does not load (${nativeState.detail})`}: ${slower}`,
            fix: 'install g++, make and python3, then run npm run install in the rackboot directory (again after a Node.js upgrade)',
          },
    );
  }
  const bsdtarVersion = await (d.bsdtar ?? new Bsdtar()).version();
  if (!bsdtarVersion)
    findings.push({ level: 'warn', what: 'bsdtar is not installed: rackboot image import needs it', fix: BSDTAR_HINT });

  // --- Public URL ----------------------------------------------------------------------------
  let host = '';
  try {
    host = new URL(c.publicUrl).hostname;
  } catch {
    /* config validated it */
  }
  if (/^(127\.|localhost$|\[?::1\]?$)/.test(host))
    findings.push({
      level: 'fail',
      what: `public URL ${c.publicUrl} is a loopback address: installing hosts cannot reach it`,
      fix: "set --public-url (or --server-ip) to this server's address on the provisioning network",
    });
  const pub = await healthz(doFetch, c.publicUrl, timeoutMs);
  findings.push(
    pub.ok
      ? { level: 'ok', what: `public URL ${c.publicUrl} answers /healthz` }
      : {
          level: 'fail',
          what: `public URL ${c.publicUrl}/healthz: ${pub.error}`,
          fix: 'start rackboot serve, and check that --public-url is the address hosts on the provisioning network reach (firewall, routing)',
        },
  );

  if (c.database?.dialect === 'postgres')
    // The CLI opened the store before doctor ran: the database answered.
    findings.push({ level: 'ok', what: `database ${redactUrl(c.database.url)} (PostgreSQL) answers` });
  else if (c.dataDir !== undefined) findings.push(databaseSizeFinding(databaseBytes(c.dataDir), c.dataDir));

  return { findings, ok: findings.every((f) => f.level !== 'fail') };
}

const RHEL_PACKAGES =
  "RHEL's shim-x64 and grub2-efi-x64 (run rackboot loaders sync on a RHEL machine, or copy /boot/efi/EFI/redhat/{shimx64,grubx64}.efi)";

/**
 * UEFI per profile: which chain its hosts boot, whether that GRUB finds per-host configs by MAC or only
 * through rackboot tying the client address to the host, and whether Secure Boot would accept the kernel
 * (the chain's vendor CA must be the one that signed the image's kernel).
 */
function uefiFindings(d: DoctorDeps): Finding[] {
  const c = d.config;
  const chainOf =
    d.uefiChain ?? createUefiChainResolver({ images: d.images, tftpRoot: c.tftpRoot, loaders: c.loaders });
  const out: Finding[] = [];
  const syncedShimPath = /^shim/i.test(posix.basename(c.loaders.uefi))
    ? c.loaders.uefi
    : posix.join(posix.dirname(c.loaders.uefi), 'shimx64.efi');
  const syncedShim = inspectLoader(join(c.tftpRoot, syncedShimPath));
  const prefixOnly = new Map<string, string[]>();
  for (const lp of d.profiles.profiles.values()) {
    const imageName = typeof lp.profile.image === 'string' ? lp.profile.image : undefined;
    const rec = imageName ? d.images.get(imageName) : undefined;
    if (imageName && !rec) continue; // reported above
    const choice = lp.profile.boot.uefiLoaders;
    const chain = chainOf(imageName, choice);
    if (choice === 'image' && chain.source === 'sync') {
      out.push({
        level: 'warn',
        what: `profile ${lp.name} says boot.uefiLoaders: image, but ${imageName ? `image ${imageName} has no EFI/BOOT/ loaders` : 'it names no imported image'}: its UEFI hosts boot the synced ${c.loaders.uefi}`,
        fix: 'import an ISO that carries EFI/BOOT/ (RHVH ISOs do), or say boot.uefiLoaders: sync',
      });
    }
    if (chain.grub && !chain.grub.perMac) {
      const key = `${chain.bootFile}\t${chain.grub.asks.join(', ')}`;
      prefixOnly.set(key, [...(prefixOnly.get(key) ?? []), lp.name]);
    }
    const kernelVendor = rec ? imageKernelVendor(rec) : 'Red Hat';
    const own = rec ? imageEfiLoaders(rec) : undefined;
    const chainVendor =
      chain.source === 'image' ? (own?.shim?.facts?.vendor ?? own?.grub?.facts?.signerVendor) : undefined;
    const grubVendor = chain.source === 'image' ? own?.grub?.facts?.signerVendor : undefined;
    if (chain.source === 'sync') {
      const shimVendor = syncedShim?.kind === 'shim' ? syncedShim.vendor : undefined;
      if (shimVendor && shimVendor !== kernelVendor) {
        out.push({
          level: 'warn',
          what: `profile ${lp.name}: UEFI hosts boot the synced loaders, whose shim trusts ${shimVendor}; the kernel of ${imageName ?? 'its image'} is signed by ${kernelVendor}: with Secure Boot on, it is refused`,
          fix:
            kernelVendor === 'Red Hat'
              ? `use the image's own loaders (import the RHVH ISO: its EFI/BOOT/ is used unless boot.uefiLoaders: sync), or install ${RHEL_PACKAGES}`
              : `install ${kernelVendor}'s shim and GRUB, or use the image's own loaders`,
        });
      } else
        out.push({
          level: 'ok',
          what: `profile ${lp.name}: UEFI hosts boot ${chain.reason} (${chain.bootFile})${shimVendor ? `, whose shim trusts ${shimVendor} like its kernel` : ''}`,
        });
    } else if (chainVendor && chainVendor !== kernelVendor) {
      out.push({
        level: 'warn',
        what: `profile ${lp.name}: the shim of image ${imageName} trusts ${chainVendor}, its kernel is signed by ${kernelVendor}: with Secure Boot on, it is refused`,
        fix: 'check the ISO (a respin with foreign loaders?)',
      });
    } else if (chainVendor && grubVendor && grubVendor !== chainVendor) {
      out.push({
        level: 'warn',
        what: `profile ${lp.name}: the shim of image ${imageName} trusts ${chainVendor}, its GRUB is signed by ${grubVendor}: with Secure Boot on, that GRUB is refused`,
        fix: 'check the ISO (a respin with foreign loaders?)',
      });
    } else {
      out.push({
        level: 'ok',
        what: `profile ${lp.name}: UEFI hosts boot ${chain.reason} (${chain.bootFile})${chainVendor ? `, ${chainVendor}-signed like its kernel` : ''}`,
      });
    }
  }
  for (const [key, names] of prefixOnly) {
    const [bootFile, asks] = key.split('\t');
    out.push({
      level: 'warn',
      what: `UEFI hosts of profile(s) ${names.join(', ')} boot a GRUB (${bootFile}) that asks only ${asks}, never grub.cfg-01-<mac>: they get their config only while rackboot can tie their address to the host (DHCP lease, learnt address, neighbour table, static IP)`,
      fix: "keep rackboot the DHCP server (or proxy) on their network, give hosts a static ip, and avoid NAT between them and rackboot; a GRUB built with grub-mknetdir or Red Hat's GRUB asks per MAC",
    });
  }
  return out;
}

/** Above this the database is larger than the retention should ever let it grow for a few racks. */
export const DB_WARN_BYTES = 2 * 1024 ** 3;

/** The database size line: the timeline and installer logs are pruned, but a deleted row does not shrink the file. */
export function databaseSizeFinding(bytes: number, dataDir: string, warnBytes = DB_WARN_BYTES): Finding {
  const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes <= warnBytes)
    return { level: 'ok', what: `database ${join(dataDir, 'rackboot.db')} (with its WAL): ${mib(bytes)}` };
  return {
    level: 'warn',
    what: `database ${join(dataDir, 'rackboot.db')} (with its WAL) is ${mib(bytes)}, above ${mib(warnBytes)}`,
    fix: `lower the retention (events.maxAge, events.maxPerHost, syslog.maxAge, syslog.maxTotalLines in the config file); SQLite reuses freed pages, and to shrink the file stop rackboot and run sqlite3 ${join(dataDir, 'rackboot.db')} VACUUM`,
  };
}

export function formatDoctor(r: DoctorReport): string[] {
  const out: string[] = [];
  for (const f of r.findings) {
    out.push(`${f.level === 'ok' ? 'ok  ' : f.level === 'warn' ? 'WARN' : 'FAIL'} ${f.what}`);
    if (f.fix && f.level !== 'ok') out.push(`     fix: ${f.fix}`);
  }
  const fails = r.findings.filter((f) => f.level === 'fail').length;
  const warns = r.findings.filter((f) => f.level === 'warn').length;
  out.push(
    fails
      ? `${fails} problem(s) to fix${warns ? `, ${warns} warning(s)` : ''}`
      : `ready${warns ? ` (${warns} warning(s))` : ''}`,
  );
  return out;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function bindFailure(what: string, port: number, code: string): Finding {
  return code === 'EACCES'
    ? {
        level: 'fail',
        what: `${what} port ${port} cannot be bound: permission denied`,
        fix: 'ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep $(command -v node))',
      }
    : {
        level: 'fail',
        what: `${what} port ${port} cannot be bound: ${code}`,
        fix: 'check --listen is an address of this machine',
      };
}

function tryBind(kind: 'tcp' | 'udp', address: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    if (kind === 'tcp') {
      const s = net.createServer();
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.listen({ port, host: address, exclusive: true }, () => s.close(() => resolve('ok')));
    } else {
      const s = dgram.createSocket({ type: 'udp4' });
      s.once('error', (e: NodeJS.ErrnoException) => {
        s.close();
        resolve(e.code ?? 'error');
      });
      s.bind({ port, address, exclusive: true }, () => s.close(() => resolve('ok')));
    }
  });
}

async function healthz(
  doFetch: typeof fetch,
  base: string,
  timeoutMs: number,
): Promise<{ ok: true } | { ok: false; error: string }> {
  try {
    const res = await doFetch(`${base.replace(/\/+$/, '')}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) return { ok: false, error: `HTTP ${res.status}` };
    const body = (await res.json().catch(() => undefined)) as { ok?: unknown } | undefined;
    return body?.ok === true
      ? { ok: true }
      : { ok: false, error: 'answered, but not as rackboot ({"ok":true} expected)' };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    return {
      ok: false,
      error:
        err.name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : (err.cause?.code ?? err.cause?.message ?? err.message),
    };
  }
}

/** A read request for a file that does not exist: any TFTP server answers with an ERROR packet (RFC 1350). */
function tftpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (v: boolean) => {
      clearTimeout(t);
      try {
        s.close();
      } catch {
        /* closed */
      }
      resolve(v);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('message', (m) =>
      done(m.length >= 4 && (m.readUInt16BE(0) === 5 || m.readUInt16BE(0) === 3 || m.readUInt16BE(0) === 6)),
    );
    s.on('error', () => done(false));
    const rrq = Buffer.concat([Buffer.from([0, 1]), Buffer.from('rackboot-doctor-probe\0octet\0')]);
    s.send(rrq, port, host);
  });
}
