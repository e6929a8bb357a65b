// `rackboot image import ISO`: the RHVH ISO in one step (RHVH-PXE.md sections 1 and 2).
//   kernel + initrd            -> <tftp root>/<name>/{vmlinuz,initrd.img}
//   the whole ISO tree         -> <images dir>/<name>/          (inst.stage2: .treeinfo, LiveOS/squashfs.img)
//   the hypervisor image       -> <images dir>/<name>/redhat-virtualization-host-<v>.squashfs.img (liveimg),
//                                 from Packages/redhat-virtualization-host-image-update-*.rpm
// LiveOS/squashfs.img is the *installer*; the liveimg is the *hypervisor*. The two are never confused:
// each is found by its own path, and an RPM payload named squashfs.img is refused.
// Atomic: everything is written into dot-directories beside the targets and renamed at the end; the
// store row is written last. Any failure removes what this import wrote.
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  readFileSync,
  existsSync,
  linkSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readSync,
  openSync,
  closeSync,
  renameSync,
  rmSync,
  statSync,
  statfsSync,
  chmodSync,
  lstatSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ArchiveError, Bsdtar } from './archive.ts';
import { parseRpmHeader, type RpmInfo } from './rpm-header.ts';
import { formatBytes, noProgress, type Phase, type Progress } from './progress.ts';
import { IMAGE_NAME, type EfiRole, type ImageFileRecord, type ImageRecord, type ImageWrites } from './store.ts';
import { describeLoader, type LoaderFacts } from './efi.ts';

export const KERNEL_IN_ISO = 'images/pxeboot/vmlinuz';
export const INITRD_IN_ISO = 'images/pxeboot/initrd.img';
export const STAGE2_IN_ISO = 'LiveOS/squashfs.img';
export const TREEINFO = '.treeinfo';
export const IMAGE_UPDATE_RPM = /^Packages\/redhat-virtualization-host-image-update-[^/]*\.rpm$/;
export const LIVEIMG_IN_RPM = /^usr\/share\/redhat-virtualization-host\/image\/[^/]+\.squashfs\.img$/;
const IMAGE_UPDATE_NAME = 'redhat-virtualization-host-image-update';
/**
 * The vendor's signed loaders (RHEL/RHVH ISOs: shim as BOOTX64.EFI, GRUB, MokManager). Names are matched
 * without case (plain ISO 9660 upper-cases them) and written as shim asks: it loads grubx64.efi and mmx64.efi
 * from its own directory, by those exact names, and TFTP names are case-sensitive.
 */
export const EFI_BOOT_FILES: { name: string; role: EfiRole }[] = [
  { name: 'BOOTX64.EFI', role: 'shim' },
  { name: 'grubx64.efi', role: 'grub' },
  { name: 'mmx64.efi', role: 'mokmanager' },
];
export const EFI_BOOT_DIR = 'EFI/BOOT';
const TEMP_PREFIX = '.rackboot-import-';

export interface ImportDeps {
  store: Pick<ImageWrites, 'get' | 'findBySource' | 'insert' | 'replace'>;
  tftpRoot: string;
  imagesDir: string;
  bsdtar?: Bsdtar;
  progress?: Progress;
  /** Plain progress messages (one line each). */
  info?: (line: string) => void;
  now?: () => number;
  /** Check free space before copying (default true); tests turn it off to meet ENOSPC in the middle of a copy. */
  checkSpace?: boolean;
}

export type ImportResult =
  { ok: true; status: 'imported' | 'unchanged'; image: ImageRecord; warnings: string[] } | { ok: false; error: string };

class ImportFailure extends Error {}
const fail = (message: string): never => {
  throw new ImportFailure(message);
};

/** `replace` (--force): an image of the same name from a different ISO is swapped for this one. */
export async function importIso(
  isoIn: string,
  opts: { name?: string; replace?: boolean },
  d: ImportDeps,
): Promise<ImportResult> {
  const iso = resolve(isoIn);
  const bsdtar = d.bsdtar ?? new Bsdtar();
  const progress = d.progress ?? noProgress;
  const info = d.info ?? (() => {});
  const warnings: string[] = [];
  let tmpImages: string | undefined, tmpTftp: string | undefined;
  let finalImages: string | undefined, finalTftp: string | undefined;
  let renamedImages = false,
    renamedTftp = false;
  const trash: { from: string; to: string }[] = [];
  let stage = 'reading the ISO';
  try {
    if (resolve(d.tftpRoot) === resolve(d.imagesDir))
      fail(
        `the TFTP root and the images dir are the same directory (${d.tftpRoot}): give them separate directories (--tftp-root, --images-dir)`,
      );
    const isoSize = checkIsoFile(iso);

    let entries;
    try {
      entries = await bsdtar.list(iso);
    } catch (e) {
      if (!(e instanceof ArchiveError)) throw e;
      if (/not found/.test(e.message)) fail(e.message);
      return fail(
        `${iso} cannot be read as an ISO 9660 image (bsdtar: ${e.message}); is the download complete? compare its sha256 with Red Hat's checksum`,
      );
    }
    const byPath = new Map(entries.map((e) => [e.path, e]));
    const missing = [KERNEL_IN_ISO, INITRD_IN_ISO, STAGE2_IN_ISO].filter((p) => byPath.get(p)?.type !== 'file');
    if (missing.length) fail(`${iso} is not an RHVH installation ISO: it has no ${missing.join(', ')}`);
    const rpms = entries.filter((e) => e.type === 'file' && IMAGE_UPDATE_RPM.test(e.path));
    if (rpms.length === 0)
      fail(
        `${iso} has no Packages/${IMAGE_UPDATE_NAME}-*.rpm, which holds the hypervisor image (the liveimg): is this the RHVH ISO, not a RHEL one?`,
      );
    if (rpms.length > 1)
      fail(
        `${iso} has ${rpms.length} image-update RPMs (${rpms.map((r) => r.path).join(', ')}): rackboot expects exactly one`,
      );
    const rpm = rpms[0];
    if (byPath.get(TREEINFO)?.type !== 'file')
      warnings.push(`${iso} has no ${TREEINFO}: Anaconda will look for ${STAGE2_IN_ISO} directly`);

    const rpmInfo = await readRpmInfo(bsdtar, iso, rpm.path);
    const version = `${rpmInfo.version}-${rpmInfo.release}`;
    const name = opts.name ?? `rhvh-${rpmInfo.version}`.toLowerCase().replace(/[^a-z0-9._-]/g, '-');
    if (!IMAGE_NAME.test(name))
      fail(
        `image name "${name}" must be 1-63 lower-case letters, digits, . _ - (starting with a letter or digit): choose one with --name`,
      );

    stage = 'hashing the ISO';
    const sha = await sha256File(iso, progress.phase(`sha256 ${basename(iso)}`, isoSize));
    const existing = await d.store.get(name);
    const replacing = existing !== undefined && existing.sourceSha256 !== sha && opts.replace === true;
    if (existing && !replacing) {
      if (existing.sourceSha256 !== sha)
        fail(
          `an image named ${name} is already imported from a different ISO (version ${existing.version}, sha256 ${existing.sourceSha256.slice(0, 12)}…): choose another --name, run rackboot image remove ${name} first, or replace it with --force`,
        );
      const problems = verifyImage(existing, d.tftpRoot, d.imagesDir);
      if (problems.length)
        fail(
          `${name} was imported from this ISO, but ${problems.join('; ')}: run rackboot image remove ${name}, then import again`,
        );
      const isoHasGrub = entries.some(
        (e) => e.type === 'file' && e.path.toLowerCase() === `${EFI_BOOT_DIR}/grubx64.efi`.toLowerCase(),
      );
      if (isoHasGrub && !existing.files.some((f) => f.role === 'grub')) {
        warnings.push(
          `${name} was imported before rackboot copied the ISO's ${EFI_BOOT_DIR}/ loaders, so its UEFI hosts boot the synced ones: run rackboot image remove ${name}, then import again, to use the image's own signed shim and GRUB`,
        );
      }
      return { ok: true, status: 'unchanged', image: existing, warnings };
    }
    finalImages = join(d.imagesDir, name);
    finalTftp = join(d.tftpRoot, name);
    for (const dir of [finalImages, finalTftp]) {
      if (existsSync(dir) && !replacing)
        fail(
          `${dir} already exists, but no image ${name} is recorded: rackboot will not overwrite it; move it away or choose another --name`,
        );
    }
    for (const other of await d.store.findBySource(sha)) warnings.push(`this ISO is also imported as ${other.name}`);

    mkdirSync(d.imagesDir, { recursive: true });
    mkdirSync(d.tftpRoot, { recursive: true });
    removeStaleTemps(d.imagesDir);
    removeStaleTemps(d.tftpRoot);
    const tag = `${TEMP_PREFIX}${name}-${process.pid}-${randomBytes(4).toString('hex')}`;
    tmpImages = join(d.imagesDir, tag);
    tmpTftp = join(d.tftpRoot, tag);
    mkdirSync(tmpImages);
    mkdirSync(tmpTftp);

    const treeBytes = entries.filter((e) => e.type === 'file').reduce((s, e) => s + e.size, 0);
    const kernelBytes = byPath.get(KERNEL_IN_ISO)!.size + byPath.get(INITRD_IN_ISO)!.size;
    const sameFs = statSync(tmpImages).dev === statSync(tmpTftp).dev;
    // The RPM payload is compressed squashfs: the RPM's size is a close estimate of the liveimg's.
    if (d.checkSpace !== false) {
      if (sameFs)
        needSpace(
          d.imagesDir,
          treeBytes + rpm.size + kernelBytes,
          `the ISO tree, the hypervisor image and the kernel/initrd of ${name}`,
        );
      else {
        needSpace(d.imagesDir, treeBytes + rpm.size, `the ISO tree and the hypervisor image of ${name}`);
        needSpace(d.tftpRoot, kernelBytes, `the kernel and initrd of ${name}`);
      }
    }

    stage = `extracting the ISO into ${d.imagesDir}`;
    info(`importing ${basename(iso)} as ${name} (RHVH ${version})`);
    await extractWithProgress(bsdtar, iso, tmpImages, [], treeBytes, progress.phase('extracting ISO', treeBytes));
    normalisePermissions(tmpImages);
    for (const e of entries) {
      if (e.type !== 'file') continue;
      const got = fileSize(join(tmpImages, e.path));
      if (got !== e.size)
        fail(`${e.path} came out of the ISO as ${got ?? 'nothing'} bytes instead of ${e.size}: the ISO is damaged`);
    }

    stage = `extracting the hypervisor image from ${rpm.path}`;
    const rpmFile = join(tmpImages, rpm.path);
    let payload;
    try {
      payload = await bsdtar.list(rpmFile);
    } catch (e) {
      if (!(e instanceof ArchiveError)) throw e;
      return fail(`${rpm.path} in ${iso} cannot be read as an RPM (bsdtar: ${e.message})`);
    }
    const images = payload.filter((e) => e.type === 'file' && LIVEIMG_IN_RPM.test(e.path));
    if (images.length !== 1)
      fail(
        `${rpm.path} holds ${images.length ? images.map((i) => i.path).join(', ') : 'no usr/share/redhat-virtualization-host/image/*.squashfs.img'}: expected exactly one hypervisor image`,
      );
    const liveEntry = images[0];
    const liveName = basename(liveEntry.path);
    if (liveName === basename(STAGE2_IN_ISO) || byPath.has(liveName))
      fail(
        `the hypervisor image in ${rpm.path} is named ${liveName}, which would collide with the ISO tree (${STAGE2_IN_ISO} is the installer, not the hypervisor)`,
      );
    if (d.checkSpace !== false) needSpace(d.imagesDir, liveEntry.size, `the hypervisor image ${liveName}`);
    const work = join(tmpImages, '.rpm-payload');
    mkdirSync(work);
    await extractWithProgress(
      bsdtar,
      rpmFile,
      work,
      [liveEntry.path],
      liveEntry.size,
      progress.phase(`extracting ${liveName}`, liveEntry.size),
    );
    const extracted = join(work, liveEntry.path);
    if (fileSize(extracted) !== liveEntry.size)
      fail(
        `${liveEntry.path} came out of ${rpm.path} as ${fileSize(extracted) ?? 'nothing'} bytes instead of ${liveEntry.size}: the RPM is damaged`,
      );
    renameSync(extracted, join(tmpImages, liveName));
    chmodSync(join(tmpImages, liveName), 0o644);
    rmSync(work, { recursive: true, force: true });

    stage = `copying the kernel and initrd into ${d.tftpRoot}`;
    linkOrCopy(join(tmpImages, KERNEL_IN_ISO), join(tmpTftp, 'vmlinuz'));
    linkOrCopy(join(tmpImages, INITRD_IN_ISO), join(tmpTftp, 'initrd.img'));

    stage = 'copying the EFI loaders (EFI/BOOT/) into the tftp root';
    const efiRoles: Record<string, ImageFileRecord['role']> = {};
    const efiFacts = new Map<string, LoaderFacts>();
    for (const f of EFI_BOOT_FILES) {
      const entry = entries.find(
        (e) => e.type === 'file' && e.path.toLowerCase() === `${EFI_BOOT_DIR}/${f.name}`.toLowerCase(),
      );
      if (!entry) continue;
      const rel = `${EFI_BOOT_DIR}/${f.name}`;
      mkdirSync(join(tmpTftp, EFI_BOOT_DIR), { recursive: true });
      linkOrCopy(join(tmpImages, entry.path), join(tmpTftp, rel));
      efiRoles[`tftp:${rel}`] = f.role;
      const facts = describeLoader(readFileSync(join(tmpTftp, rel)), f.name);
      if (facts) efiFacts.set(rel, facts);
      else
        warnings.push(`${entry.path} in ${iso} is not an EFI (PE) file: it is copied, but UEFI clients cannot boot it`);
    }
    // A signed EFI-stub kernel names its vendor (RHEL's vmlinuz is Authenticode-signed by Red Hat): what Secure Boot checks it against.
    const kernelFacts = describeLoader(readFileSync(join(tmpTftp, 'vmlinuz')), 'vmlinuz');
    if (kernelFacts?.signerVendor) efiFacts.set('vmlinuz', kernelFacts);
    const efiCount = Object.keys(efiRoles).length;
    if (efiCount > 0 && !efiRoles[`tftp:${EFI_BOOT_DIR}/grubx64.efi`])
      warnings.push(
        `${iso} has ${EFI_BOOT_DIR}/ but no grubx64.efi: its shim has nothing to load, so UEFI hosts use the loaders from rackboot loaders sync`,
      );
    else if (efiCount > 0) {
      const shim = efiFacts.get(`${EFI_BOOT_DIR}/BOOTX64.EFI`),
        grub = efiFacts.get(`${EFI_BOOT_DIR}/grubx64.efi`);
      if (shim && shim.kind !== 'shim')
        warnings.push(
          `${EFI_BOOT_DIR}/BOOTX64.EFI is not a shim (${shim.kind}): Secure Boot hosts may refuse the chain`,
        );
      if (grub && grub.kind !== 'grub')
        warnings.push(
          `${EFI_BOOT_DIR}/grubx64.efi is not a GRUB image rackboot can read: its config lookup and kernel command are guesses`,
        );
      if (shim?.vendor && grub?.signerVendor && shim.vendor !== grub.signerVendor)
        warnings.push(
          `the image's shim trusts ${shim.vendor} but its GRUB is signed by ${grub.signerVendor}: Secure Boot will refuse that GRUB`,
        );
    }

    stage = 'hashing the imported files';
    const roles: Record<string, ImageFileRecord['role']> = {
      ...efiRoles,
      [`tftp:vmlinuz`]: 'kernel',
      [`tftp:initrd.img`]: 'initrd',
      [`images:${STAGE2_IN_ISO}`]: 'stage2',
      [`images:${TREEINFO}`]: 'treeinfo',
      [`images:${liveName}`]: 'liveimg',
      [`images:${rpm.path}`]: 'image-update-rpm',
    };
    const list = [
      ...walkFiles(tmpTftp).map((p) => ({ root: 'tftp' as const, dir: tmpTftp!, rel: p })),
      ...walkFiles(tmpImages).map((p) => ({ root: 'images' as const, dir: tmpImages!, rel: p })),
    ];
    const total = list.reduce((s, f) => s + (fileSize(join(f.dir, f.rel)) ?? 0), 0);
    const phase = progress.phase('sha256 of imported files', total);
    const files: ImageFileRecord[] = [{ root: 'source', path: iso, size: isoSize, sha256: sha, role: 'iso' }];
    let done = 0;
    for (const f of list) {
      const full = join(f.dir, f.rel);
      const size = fileSize(full) ?? 0;
      const base = done;
      const h = await sha256File(full, { update: (n) => phase.update(base + n), finish() {} });
      done += size;
      const role = roles[`${f.root}:${f.rel}`];
      const loader = f.root === 'tftp' ? efiFacts.get(f.rel) : undefined;
      files.push({
        root: f.root,
        path: `${name}/${f.rel}`,
        size,
        sha256: h,
        ...(role ? { role } : {}),
        ...(loader ? { loader } : {}),
      });
    }
    phase.finish();

    stage = 'moving the image into place';
    const record: ImageRecord = {
      name,
      version,
      sourceSha256: sha,
      kernel: `${name}/vmlinuz`,
      initrd: `${name}/initrd.img`,
      stage2: name,
      liveimg: `${name}/${liveName}`,
      files,
      importedAt: (d.now ?? Date.now)(),
    };
    if (replacing) {
      for (const dir of [finalImages, finalTftp]) {
        if (!existsSync(dir)) continue;
        const to = join(resolve(dir, '..'), `${TEMP_PREFIX}${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
        renameSync(dir, to);
        trash.push({ from: dir, to });
      }
    }
    renameSync(tmpImages, finalImages);
    renamedImages = true;
    tmpImages = undefined;
    renameSync(tmpTftp, finalTftp);
    renamedTftp = true;
    tmpTftp = undefined;
    if (replacing) await d.store.replace(record);
    else await d.store.insert(record);
    for (const t of trash.splice(0)) rmSync(t.to, { recursive: true, force: true });
    if (replacing)
      warnings.push(`replaced ${name} (was RHVH ${existing!.version}); hosts building now may mix old and new files`);
    return { ok: true, status: 'imported', image: record, warnings };
  } catch (err) {
    for (const dir of [
      tmpImages,
      tmpTftp,
      renamedImages ? finalImages : undefined,
      renamedTftp ? finalTftp : undefined,
    ]) {
      if (dir) {
        try {
          rmSync(dir, { recursive: true, force: true });
        } catch {
          /* best effort; reported below if it matters */
        }
      }
    }
    for (const t of trash) {
      try {
        renameSync(t.to, t.from);
      } catch {
        /* the old image stays in its temp dir; removed by the next import */
      }
    }
    return { ok: false, error: describeError(err, stage, d) };
  }
}

function describeError(err: unknown, stage: string, d: ImportDeps): string {
  const e = err as NodeJS.ErrnoException;
  const msg = e?.message ?? String(err);
  if (e?.code === 'ENOSPC' || /No space left on device/i.test(msg)) {
    return `no space left on the device while ${stage} (${msg.replace(/^ENOSPC: /, '')}): free some space under ${d.imagesDir} / ${d.tftpRoot}, or point --images-dir elsewhere; nothing was imported`;
  }
  if (err instanceof ImportFailure) return `${msg}; nothing was imported`;
  if (err instanceof ArchiveError) return `${stage}: ${msg}; nothing was imported`;
  return `${stage}: ${msg}; nothing was imported`;
}

function checkIsoFile(iso: string): number {
  let st;
  try {
    st = statSync(iso);
  } catch (e) {
    return fail(`${iso}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (!st.isFile()) fail(`${iso} is not a file (give the path of the RHVH .iso)`);
  // ISO 9660: the primary volume descriptor is sector 16 (2048-byte sectors): type 1, "CD001".
  const fd = openSync(iso, 'r');
  const buf = Buffer.alloc(6);
  try {
    readSync(fd, buf, 0, 6, 16 * 2048);
  } finally {
    closeSync(fd);
  }
  if (buf.toString('latin1', 1, 6) !== 'CD001')
    fail(
      `${iso} is not an ISO 9660 image (no CD001 volume descriptor at sector 16): is it the RHVH .iso, and is the download complete?`,
    );
  return st.size;
}

async function readRpmInfo(bsdtar: Bsdtar, iso: string, member: string): Promise<RpmInfo> {
  let want = 256 * 1024;
  for (;;) {
    let buf: Buffer;
    try {
      buf = await bsdtar.head(iso, member, want);
    } catch (e) {
      if (e instanceof ArchiveError)
        return fail(`${member} in ${iso} cannot be read (bsdtar: ${e.message}): the ISO is damaged`);
      throw e;
    }
    const r = parseRpmHeader(buf);
    if (r.ok) {
      if (r.info.name !== IMAGE_UPDATE_NAME) fail(`${member} is the package ${r.info.name}, not ${IMAGE_UPDATE_NAME}`);
      return r.info;
    }
    if ('error' in r) return fail(`${member} in ${iso}: ${r.error}`);
    if (r.needMore <= buf.length || r.needMore > 16 * 1024 * 1024)
      return fail(`${member} in ${iso}: the RPM header is truncated`);
    want = r.needMore;
  }
}

export function sha256File(file: string, phase?: Phase): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const h = createHash('sha256');
    let n = 0;
    const s = createReadStream(file, { highWaterMark: 1024 * 1024 });
    s.on('data', (b) => {
      h.update(b as Buffer);
      n += (b as Buffer).length;
      phase?.update(n);
    });
    s.on('error', reject);
    s.on('end', () => {
      phase?.finish();
      resolvePromise(h.digest('hex'));
    });
  });
}

/** bsdtar prints "x NAME" as it starts each member; the size of that file so far gives byte-level progress. */
async function extractWithProgress(
  bsdtar: Bsdtar,
  archive: string,
  dir: string,
  members: string[],
  total: number,
  phase: Phase,
): Promise<void> {
  let doneBefore = 0;
  let current: string | undefined;
  const sizeOf = (p: string) => {
    try {
      const st = lstatSync(join(dir, p));
      return st.isFile() ? st.size : 0;
    } catch {
      return 0;
    }
  };
  const timer = setInterval(() => {
    if (current) phase.update(doneBefore + sizeOf(current));
  }, 200);
  try {
    await bsdtar.extract(archive, dir, members, (p) => {
      if (current) doneBefore += sizeOf(current);
      current = p;
      phase.update(doneBefore);
    });
  } finally {
    clearInterval(timer);
  }
  phase.update(total);
  phase.finish();
}

function needSpace(dir: string, bytes: number, what: string): void {
  const st = statfsSync(dir);
  const free = st.bavail * st.bsize;
  const margin = 16 * 1024 * 1024;
  if (free < bytes + margin)
    fail(
      `not enough space under ${dir} for ${what}: needs ${formatBytes(bytes + margin)}, ${formatBytes(free)} free; free some space or choose another directory`,
    );
}

/** ISO files come out read-only (r-xr-xr-x dirs): make the tree servable and removable. */
function normalisePermissions(dir: string): void {
  chmodSync(dir, 0o755);
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) normalisePermissions(p);
    else if (ent.isFile()) chmodSync(p, 0o644);
  }
}

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (e) {
    if (!['EXDEV', 'EPERM', 'EMLINK'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    copyFileSync(from, to);
    chmodSync(to, 0o644);
  }
}

function walkFiles(root: string, sub = ''): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(join(root, sub), { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const rel = sub ? `${sub}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...walkFiles(root, rel));
    else if (ent.isFile()) out.push(rel);
  }
  return out;
}

function fileSize(p: string): number | undefined {
  try {
    const st = statSync(p);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/** Leftovers of an import that was killed (its pid is gone): removed before the next import. */
function removeStaleTemps(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const n of names) {
    const m = new RegExp(`^${TEMP_PREFIX.replace(/\./g, '\\.')}.+-(\\d+)-[0-9a-f]{8}$`).exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive || pid === process.pid) rmSync(join(root, n), { recursive: true, force: true });
  }
}

/** What is wrong with an imported image on disk now (missing files, changed sizes); empty when fine. */
export function verifyImage(r: ImageRecord, tftpRoot: string, imagesDir: string): string[] {
  const problems: string[] = [];
  const keyFiles = r.files.filter((f) => f.role && f.root !== 'source');
  const checks = keyFiles.length
    ? keyFiles
    : [
        { root: 'tftp' as const, path: r.kernel, size: -1 },
        { root: 'tftp' as const, path: r.initrd, size: -1 },
        { root: 'images' as const, path: r.liveimg, size: -1 },
        { root: 'images' as const, path: `${r.stage2}/${STAGE2_IN_ISO}`, size: -1 },
      ];
  for (const f of checks) {
    const full = join(f.root === 'tftp' ? tftpRoot : imagesDir, f.path);
    const size = fileSize(full);
    if (size === undefined) problems.push(`${full} is missing`);
    else if (f.size >= 0 && size !== f.size) problems.push(`${full} is ${size} bytes, ${f.size} were imported`);
  }
  return problems;
}

export type RemoveResult = { ok: true; removed: string[] } | { ok: false; error: string };

/** Refused while a profile uses the image; otherwise the row goes first, then the files. */
export async function removeImage(
  name: string,
  d: { store: Pick<ImageWrites, 'get' | 'remove'>; tftpRoot: string; imagesDir: string; usedBy: string[] },
): Promise<RemoveResult> {
  const r = await d.store.get(name);
  if (!r) return { ok: false, error: `no image named ${name} (see rackboot image list)` };
  if (d.usedBy.length)
    return {
      ok: false,
      error: `image ${name} is used by profile(s) ${d.usedBy.join(', ')}: change their image: first`,
    };
  const dirs = [join(d.tftpRoot, name), join(d.imagesDir, name)].filter((p) => existsSync(p));
  // Rename out of the served namespace first, so nothing half-deleted is ever served.
  const trash: string[] = [];
  for (const dir of dirs) {
    const t = join(resolve(dir, '..'), `${TEMP_PREFIX}${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    renameSync(dir, t);
    trash.push(t);
  }
  try {
    await d.store.remove(name);
  } catch (err) {
    // The row stays: put the files back so it still means "complete on disk".
    for (const [i, t] of trash.entries()) renameSync(t, dirs[i]!);
    return { ok: false, error: `could not remove ${name} from the store: ${(err as Error).message}` };
  }
  for (const t of trash) rmSync(t, { recursive: true, force: true });
  return { ok: true, removed: dirs };
}
