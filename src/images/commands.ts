// The CLI side of images, loaders and doctor: argument checks, calls into src/images, printed results.
import type { Config } from '../config.ts';
import type { ProfileSnapshot } from '../profiles/catalog.ts';
import { runDoctor, formatDoctor } from './doctor.ts';
import { importIso, removeImage, verifyImage } from './import.ts';
import { formatSyncReport, syncLoaders } from './loaders.ts';
import { createProgress, formatBytes, type ProgressSink } from './progress.ts';
import {
  formatImageEfi,
  imageEfiLoaders,
  imageKernelVendor,
  imageViewOf,
  profilesUsingImage,
  type ImageWrites,
} from './store.ts';
import type { StoreView } from '../store/view.ts';
import { formatLoaderFacts } from './efi.ts';

export interface CommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  progress?: ProgressSink;
}
export interface ImageCore {
  /** Writes (import, remove): the view hears of each before the write returns. */
  images: ImageWrites;
  /** Reads, from memory. */
  view: Pick<StoreView, 'image' | 'imageList' | 'resolveImage'>;
  catalog: { snapshot: ProfileSnapshot };
  audit?: { record(actor: string, action: string, target: string, diff?: unknown): Promise<void> };
}

export const IMAGE_USAGE = 'rackboot image import ISO [--name NAME] [--force] | image list | image remove NAME';

export async function imageCommand(
  core: ImageCore,
  config: Config,
  io: CommandIo,
  args: string[],
  opts: { name?: string; force?: boolean },
): Promise<number> {
  const [sub, arg] = args;
  if (sub === 'import') {
    if (!arg) {
      io.err(`usage: ${IMAGE_USAGE}`);
      return 2;
    }
    const sink: ProgressSink = io.progress ?? { isTTY: false, write: (s) => io.err(s.replace(/\n$/, '')) };
    const r = await importIso(
      arg,
      { name: opts.name, replace: opts.force },
      {
        store: core.images,
        tftpRoot: config.tftpRoot,
        imagesDir: config.imagesDir,
        progress: createProgress(sink),
        info: io.err,
      },
    );
    if (!r.ok) {
      io.err(`rackboot image import: ${r.error}`);
      return 1;
    }
    for (const w of r.warnings) io.err(`warning: ${w}`);
    const i = r.image;
    if (r.status === 'unchanged') {
      io.out(`${i.name}: already imported from this ISO (sha256 ${i.sourceSha256.slice(0, 16)}…); nothing to do`);
      return 0;
    }
    await core.audit?.record('cli', 'image.import', i.name, { version: i.version, sourceSha256: i.sourceSha256 });
    const size = (role: string) => i.files.find((f) => f.role === role)?.size ?? 0;
    io.out(
      [
        `imported ${i.name}: RHVH ${i.version}`,
        `  kernel   ${config.tftpRoot}/${i.kernel} (${formatBytes(size('kernel'))})`,
        `  initrd   ${config.tftpRoot}/${i.initrd} (${formatBytes(size('initrd'))})`,
        `  stage2   ${config.imagesDir}/${i.stage2}/ (installer: LiveOS/squashfs.img ${formatBytes(size('stage2'))}) -> inst.stage2=${config.publicUrl}/images/${i.stage2}`,
        `  liveimg  ${config.imagesDir}/${i.liveimg} (hypervisor image, ${formatBytes(size('liveimg'))}) -> liveimg --url=${config.publicUrl}/images/${i.liveimg}`,
        ...efiLines(i, config.tftpRoot),
        `use it in a profile with: image: ${i.name}`,
      ].join('\n'),
    );
    return 0;
  }
  if (sub === 'list') {
    const list = core.view.imageList();
    if (list.length === 0) {
      io.out('no images imported (rackboot image import ISO)');
      return 0;
    }
    const profiles = [...core.catalog.snapshot.profiles.values()];
    io.out(['NAME', 'VERSION', 'IMPORTED', 'LIVEIMG', 'EFI LOADERS', 'USED BY', 'STATE'].join('\t'));
    for (const i of list) {
      const problems = verifyImage(i, config.tftpRoot, config.imagesDir);
      const live = i.files.find((f) => f.role === 'liveimg');
      io.out(
        [
          i.name,
          i.version,
          new Date(i.importedAt).toISOString().slice(0, 19).replace('T', ' '),
          `${i.liveimg}${live ? ` (${formatBytes(live.size)})` : ''}`,
          formatImageEfi(i),
          profilesUsingImage(profiles, i.name).join(',') || '-',
          problems.length ? `BROKEN: ${problems.join('; ')}` : 'ok',
        ].join('\t'),
      );
    }
    return 0;
  }
  if (sub === 'remove') {
    if (!arg) {
      io.err(`usage: ${IMAGE_USAGE}`);
      return 2;
    }
    const usedBy = profilesUsingImage(core.catalog.snapshot.profiles.values(), arg);
    const r = await removeImage(arg, {
      store: core.images,
      tftpRoot: config.tftpRoot,
      imagesDir: config.imagesDir,
      usedBy,
    });
    if (!r.ok) {
      io.err(`rackboot image remove: ${r.error}`);
      return 1;
    }
    await core.audit?.record('cli', 'image.remove', arg);
    io.out(`removed ${arg}${r.removed.length ? ` (${r.removed.join(', ')})` : ''}`);
    return 0;
  }
  io.err(`usage: ${IMAGE_USAGE}`);
  return 2;
}

function efiLines(i: Parameters<typeof imageEfiLoaders>[0], tftpRoot: string): string[] {
  const e = imageEfiLoaders(i);
  if (!e) return ['  EFI      none in EFI/BOOT/: UEFI hosts of this image boot the loaders from rackboot loaders sync'];
  const out: string[] = [];
  for (const [label, l] of [
    ['shim', e.shim],
    ['grub', e.grub],
    ['mokmgr', e.mokmanager],
  ] as const) {
    if (l) out.push(`  ${label.padEnd(8)} ${tftpRoot}/${l.path}${l.facts ? `: ${formatLoaderFacts(l.facts)}` : ''}`);
  }
  out.push(
    `  UEFI hosts of profiles using this image boot ${e.shim ? 'its shim' : 'its GRUB'} (boot.uefiLoaders: sync in a profile says otherwise)`,
  );
  return out;
}

/** Kernel vendors of the images that profiles use through the synced loaders (boot.uefiLoaders: sync, or an image without EFI/BOOT/). */
export function syncedLoaderVendors(core: ImageCore): string[] {
  const out = new Set<string>();
  for (const lp of core.catalog.snapshot.profiles.values()) {
    const img = lp.profile.image;
    const rec = typeof img === 'string' ? core.view.image(img) : undefined;
    if (rec && imageEfiLoaders(rec) && (lp.profile.boot as { uefiLoaders?: string }).uefiLoaders !== 'sync') continue;
    out.add(rec ? imageKernelVendor(rec) : 'Red Hat');
  }
  return [...out].sort();
}

export async function loadersCommand(config: Config, io: CommandIo, args: string[], core?: ImageCore): Promise<number> {
  if (args[0] !== 'sync') {
    io.err('usage: rackboot loaders sync');
    return 2;
  }
  // Without loaded profiles nothing is known of the images in use: RHVH's kernel (Red Hat's) is assumed.
  const vendors = core && core.catalog.snapshot.profiles.size > 0 ? syncedLoaderVendors(core) : undefined;
  const r = await syncLoaders({
    tftpRoot: config.tftpRoot,
    loaders: config.loaders,
    ...(vendors ? { imageVendors: vendors } : {}),
  });
  for (const line of formatSyncReport(r, config.tftpRoot)) io.out(line);
  if (!r.ok) io.err('rackboot loaders sync: some loaders are missing (see above)');
  return r.ok ? 0 : 1;
}

export async function doctorCommand(core: ImageCore, config: Config, io: CommandIo): Promise<number> {
  const r = await runDoctor({ config, images: imageViewOf(core.view), profiles: core.catalog.snapshot });
  for (const line of formatDoctor(r)) io.out(line);
  return r.ok ? 0 : 1;
}
