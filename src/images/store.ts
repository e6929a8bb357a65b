// Imported RHVH images (table `images`, migration 2). A row is written only after an import's files
// have been renamed into place, so a row always means "complete on disk".
import type { ImageFiles } from '../profiles/schema.ts';
import type { LoaderFacts } from './efi.ts';
import type { ImageRepo } from '../store/repo/small.ts';
import type { StoreView } from '../store/view.ts';

/** One file of an image: `root` says which directory `path` is under (the ISO itself is `source`, an absolute path). */
export interface ImageFileRecord {
  root: 'tftp' | 'images' | 'source';
  path: string;
  size: number;
  sha256: string;
  /** What the file is for; absent for the rest of the ISO tree. */
  role?: 'kernel' | 'initrd' | 'stage2' | 'treeinfo' | 'liveimg' | 'image-update-rpm' | 'iso' | EfiRole;
  /** EFI loaders from the ISO's EFI/BOOT/: what they are and who signed them. */
  loader?: LoaderFacts;
}

export type EfiRole = 'shim' | 'grub' | 'mokmanager';

/** An image's own EFI loaders (tftp paths and facts); undefined when its ISO had none. */
export interface ImageEfiLoaders {
  shim?: { path: string; facts?: LoaderFacts };
  grub?: { path: string; facts?: LoaderFacts };
  mokmanager?: { path: string; facts?: LoaderFacts };
}

export function imageEfiLoaders(r: Pick<ImageRecord, 'files'>): ImageEfiLoaders | undefined {
  const out: ImageEfiLoaders = {};
  for (const f of r.files) {
    if (f.root !== 'tftp' || (f.role !== 'shim' && f.role !== 'grub' && f.role !== 'mokmanager')) continue;
    out[f.role] = { path: f.path, ...(f.loader ? { facts: f.loader } : {}) };
  }
  // Shim alone boots nothing (it loads grubx64.efi beside it): only a GRUB makes a usable chain.
  return out.grub ? out : undefined;
}

/**
 * Whose signature the image's kernel carries: read from the kernel when it is a signed EFI stub, else the
 * vendor of the image's own loaders (an ISO's loaders come from the vendor who built its kernel), else
 * Red Hat (RHVH is built and signed by Red Hat).
 */
export function imageKernelVendor(r: Pick<ImageRecord, 'files'>): string {
  const kernel = r.files.find((f) => f.role === 'kernel')?.loader?.signerVendor;
  if (kernel) return kernel;
  const e = imageEfiLoaders(r);
  return e?.shim?.facts?.vendor ?? e?.grub?.facts?.vendor ?? 'Red Hat';
}

/** "shim + GRUB (Debian; GRUB prefix only)" for listings; "-" when the image has no EFI loaders. */
export function formatImageEfi(r: Pick<ImageRecord, 'files'>): string {
  const e = imageEfiLoaders(r);
  if (!e) return '-';
  const vendor = e.shim?.facts?.vendor ?? e.grub?.facts?.vendor ?? 'unsigned';
  const g = e.grub?.facts?.grub;
  return `${e.shim ? 'shim + GRUB' : 'GRUB'} (${vendor}${g ? `; GRUB ${g.perMac ? 'per-MAC' : 'prefix only'}` : ''})`;
}

export interface ImageRecord extends ImageFiles {
  name: string;
  /** RHVH version-release from the image-update RPM header, e.g. 4.3.8-20200123.0.el7_7. */
  version: string;
  sourceSha256: string;
  files: ImageFileRecord[];
  importedAt: number;
}

export interface ImageRow {
  name: string;
  version: string;
  source_sha256: string;
  kernel: string;
  initrd: string;
  stage2: string;
  liveimg: string;
  files: string;
  imported_at: number;
}

/** What readers of images see without a query: the in-memory view's images (see openCore's imageView). */
export interface ImageView {
  get(name: string): ImageRecord | undefined;
  list(): ImageRecord[];
  resolve(name: string): ImageFiles | undefined;
}

/** The view's images as an ImageView (what openCore hands the boot paths). */
export function imageViewOf(view: Pick<StoreView, 'image' | 'imageList' | 'resolveImage'>): ImageView {
  return {
    get: (name) => view.image(name),
    list: () => view.imageList(),
    resolve: (name) => view.resolveImage(name),
  };
}

/** Where imports and removals write (store.images): the view hears of each through the change feed. */
export type ImageWrites = Pick<ImageRepo, 'get' | 'findBySource' | 'insert' | 'replace' | 'remove'>;

/** Image names: the same rule profiles use for `image: NAME`, and safe as one directory name. */
export const IMAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function imageFromRow(r: ImageRow): ImageRecord {
  let files: ImageFileRecord[] = [];
  try {
    const v = JSON.parse(r.files) as unknown;
    if (Array.isArray(v)) files = v as ImageFileRecord[];
  } catch {
    /* a damaged list reads as empty */
  }
  return {
    name: r.name,
    version: r.version,
    sourceSha256: r.source_sha256,
    kernel: r.kernel,
    initrd: r.initrd,
    stage2: r.stage2,
    liveimg: r.liveimg,
    files,
    importedAt: r.imported_at,
  };
}

/** Profiles (by name) whose `image:` names this image. */
export function profilesUsingImage(
  profiles: Iterable<{ name: string; profile: { image: unknown } }>,
  image: string,
): string[] {
  const out: string[] = [];
  for (const p of profiles) if (p.profile.image === image) out.push(p.name);
  return out.sort();
}
