// Which UEFI chain a host boots: its image's own signed shim and GRUB (copied from the ISO's EFI/BOOT/ by
// `image import`), or the loaders `loaders sync` put under config.loaders.uefi. The profile's
// boot.uefiLoaders chooses; unset means the image's when it has them (Secure Boot: RHVH's kernel is signed
// by Red Hat, and only Red Hat's shim trusts that). The synced GRUB is read from disk (cached by size and
// mtime) to know its kernel command and whether it can fetch over HTTP.
import { statSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { GrubFacts, LoaderFacts } from './efi.ts';
import { GRUB_MKNETDIR_SUBDIR, inspectLoader, type LoaderConfig } from './loaders.ts';
import { imageEfiLoaders, type ImageRecord } from './store.ts';

export interface UefiChain {
  source: 'image' | 'sync';
  /** Path under the TFTP root that DHCP names as the boot file (shim when there is one). */
  bootFile: string;
  /** The GRUB of this chain has an http module: UEFI HTTP boot can load it by URL. */
  http: boolean;
  grubKernelCommand: 'linux' | 'linuxefi';
  grub?: GrubFacts;
  /** Why this chain (for the timeline and doctor). */
  reason: string;
}

export type UefiChoice = 'image' | 'sync' | undefined;
export type UefiChainResolver = (imageName: string | undefined, choice: UefiChoice) => UefiChain;

export interface UefiChainDeps {
  images: { get(name: string): Pick<ImageRecord, 'files'> | undefined };
  tftpRoot: string;
  loaders: Pick<LoaderConfig, 'uefi'>;
  /** Reads a loader's facts; tests pass their own. */
  inspect?: (path: string, moduleDir?: string) => LoaderFacts | undefined;
}

/** The pure part: the chain from the image record (if any), the choice and the synced GRUB's facts. */
export function chooseUefiChain(
  image: Pick<ImageRecord, 'files'> | undefined,
  imageName: string | undefined,
  choice: UefiChoice,
  synced: { bootFile: string; grub?: LoaderFacts },
): UefiChain {
  const own = image ? imageEfiLoaders(image) : undefined;
  if (own?.grub && choice !== 'sync') {
    const g = own.grub.facts?.grub;
    return {
      source: 'image',
      bootFile: own.shim?.path ?? own.grub.path,
      http: g?.http ?? false,
      grubKernelCommand: g?.kernelCommand ?? 'linux',
      ...(g ? { grub: g } : {}),
      reason: `${imageName}'s own ${own.shim ? 'shim and GRUB' : 'GRUB'}${choice === 'image' ? ' (boot.uefiLoaders: image)' : ''}`,
    };
  }
  const g = synced.grub?.grub;
  const why =
    choice === 'sync'
      ? 'boot.uefiLoaders: sync'
      : choice === 'image'
        ? `boot.uefiLoaders: image, but ${imageName ? `image ${imageName} has no EFI/BOOT/ loaders` : 'the profile spells out its image files'}`
        : imageName
          ? `image ${imageName} has no EFI/BOOT/ loaders`
          : 'the profile spells out its image files';
  return {
    source: 'sync',
    bootFile: synced.bootFile,
    http: g?.http ?? false,
    grubKernelCommand: g?.kernelCommand ?? 'linux',
    ...(g ? { grub: g } : {}),
    reason: `the synced loaders (${why})`,
  };
}

export function createUefiChainResolver(d: UefiChainDeps): UefiChainResolver {
  const inspect = d.inspect ?? inspectLoader;
  let cache: { key: string; facts: LoaderFacts | undefined } | undefined;
  const syncedGrub = (): LoaderFacts | undefined => {
    // loaders.uefi is shim (GRUB beside it as grubx64.efi) or GRUB itself.
    const dir = posix.dirname(d.loaders.uefi);
    const name = /^shim/i.test(posix.basename(d.loaders.uefi)) ? posix.join(dir, 'grubx64.efi') : d.loaders.uefi;
    const path = join(d.tftpRoot, name);
    let key: string;
    try {
      const st = statSync(path);
      key = `${path}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
    if (cache?.key !== key) cache = { key, facts: inspect(path, join(d.tftpRoot, GRUB_MKNETDIR_SUBDIR, 'x86_64-efi')) };
    return cache.facts;
  };
  return (imageName, choice) => {
    const image = imageName ? d.images.get(imageName) : undefined;
    const own = image ? imageEfiLoaders(image) : undefined;
    const needSynced = !own?.grub || choice === 'sync';
    const grub = needSynced ? syncedGrub() : undefined;
    return chooseUefiChain(image, imageName, choice, { bootFile: d.loaders.uefi, ...(grub ? { grub } : {}) });
  };
}
