// RHVH custom partitioning rules (RHV 4.3 install guide 6.1.3.1 and 2.2.3; RHVH-PXE.md section 4).
import type { CustomLayout } from './schema.ts';

export interface RuleViolation {
  path: (string | number)[];
  message: string;
}

/** Minimum sizes in MiB, as the guide's own example layout writes them (6 GB -> --size=6000). */
export const MIN_SIZES: Record<string, number> = {
  '/': 6000,
  '/home': 1000,
  '/tmp': 1000,
  '/var': 15000,
  '/var/crash': 10000,
  '/var/log': 8000,
  '/var/log/audit': 2000,
};
export const MIN_BOOT = 1000;
export const MIN_SWAP = 1000;
export const REQUIRED_THIN_MOUNTS = Object.keys(MIN_SIZES);
const FSTYPES = ['xfs', 'ext4'];

export function checkCustomLayout(layout: CustomLayout): RuleViolation[] {
  const out: RuleViolation[] = [];
  const at = (...path: (string | number)[]) => ['partitioning', ...path];
  const seenMounts = new Map<string, number>();
  const seenNames = new Set<string>();

  layout.volumes.forEach((v, i) => {
    if (v.mount === '/usr' || v.mount.startsWith('/usr/')) {
      out.push({
        path: at('volumes', i, 'mount'),
        message: `a separate ${v.mount} makes the RHVH install fail: /usr must stay on / (remove this volume)`,
      });
    }
    if (v.mount === '/boot') {
      out.push({
        path: at('volumes', i, 'mount'),
        message: '/boot must be a standard partition, not a thin volume: set partitioning.boot instead',
      });
    }
    if (v.mount === '/boot/efi' || v.mount === 'biosboot') {
      // reqpart makes the EFI System Partition (UEFI) or biosboot (BIOS with GPT) the firmware needs.
      out.push({
        path: at('volumes', i, 'mount'),
        message: `${v.mount} is made by rackboot (reqpart) for the firmware in use: remove this volume`,
      });
    }
    if (!FSTYPES.includes(v.fstype)) {
      out.push({
        path: at('volumes', i, 'fstype'),
        message: `file system "${v.fstype}" is not supported by RHVH: use xfs or ext4`,
      });
    }
    const min = MIN_SIZES[v.mount];
    if (min !== undefined && v.size < min) {
      out.push({
        path: at('volumes', i, 'size'),
        message: `${v.mount} needs at least ${min} MiB (RHV 4.3 guide 2.2.3), got ${v.size}`,
      });
    }
    if (seenMounts.has(v.mount))
      out.push({
        path: at('volumes', i, 'mount'),
        message: `${v.mount} is declared twice (also volumes[${seenMounts.get(v.mount)}])`,
      });
    seenMounts.set(v.mount, i);
    if (seenNames.has(v.name) || v.name === layout.thinpool.name || v.name === 'swap') {
      out.push({
        path: at('volumes', i, 'name'),
        message: `logical volume name "${v.name}" is used twice in ${layout.volgroup}`,
      });
    }
    seenNames.add(v.name);
  });

  for (const mount of REQUIRED_THIN_MOUNTS) {
    if (!seenMounts.has(mount)) {
      out.push({
        path: at('volumes'),
        message: `RHVH needs ${mount} on a thin logical volume: add { mount: ${mount}, name: ..., size: ${MIN_SIZES[mount]} }`,
      });
    }
  }
  if (!FSTYPES.includes(layout.boot.fstype)) {
    out.push({
      path: at('boot', 'fstype'),
      message: `/boot file system "${layout.boot.fstype}" is not supported: use xfs or ext4`,
    });
  }
  if (layout.boot.size < MIN_BOOT)
    out.push({ path: at('boot', 'size'), message: `/boot needs at least ${MIN_BOOT} MiB, got ${layout.boot.size}` });
  if ('size' in layout.swap && layout.swap.size < MIN_SWAP)
    out.push({ path: at('swap', 'size'), message: `swap needs at least ${MIN_SWAP} MiB, got ${layout.swap.size}` });

  if (layout.disk !== undefined && layout.disks !== undefined && !layout.disks.includes(layout.disk)) {
    out.push({
      path: at('disk'),
      message: `disk ${layout.disk} holds /boot and the volume group but is not in partitioning.disks (${layout.disks.join(', ')}): add it there`,
    });
  }
  if (layout.reservedPercent !== undefined && layout.reservedSpace !== undefined) {
    out.push({ path: at('reservedSpace'), message: 'set either reservedPercent or reservedSpace, not both' });
  }
  if (layout.thinpool.grow && layout.reservedPercent === undefined && layout.reservedSpace === undefined) {
    out.push({
      path: at('thinpool', 'grow'),
      message:
        'a growing thin pool needs space kept free in the volume group: set reservedPercent (e.g. 20) or reservedSpace (MiB)',
    });
  }
  if (!layout.thinpool.grow) {
    // Anaconda keeps 20 % of the pool for metadata growth; over-provisioning at install is unsupported.
    const thinTotal = layout.volumes.reduce((s, v) => s + v.size, 0);
    const usable = Math.floor(layout.thinpool.size * 0.8);
    if (thinTotal > usable) {
      out.push({
        path: at('thinpool', 'size'),
        message: `the thin volumes add up to ${thinTotal} MiB but a ${layout.thinpool.size} MiB pool holds ${usable} MiB after the 20 % Anaconda keeps: grow the pool or shrink volumes`,
      });
    }
  }
  return out;
}
