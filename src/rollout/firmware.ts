// Which firmware a host boots (UEFI or legacy BIOS), so its BMC's one-time network boot is set in that mode.
// rackboot learns it from what the machine did: DHCP option 93 (RFC 4578 client architecture: 0 is x86 BIOS,
// 6/7/9 EFI, 16 EFI HTTP) and which loader config it asked for. Profiles carry no boot mode.
import type { FirmwareMode } from '../bmc/driver.ts';

export interface TimelineEntry {
  type: string;
  at: number;
  status?: string;
  detail?: Record<string, unknown>;
}

export interface FirmwareGuess {
  mode: FirmwareMode;
  /** One line for the rollout step: how rackboot knows. */
  why: string;
}

/** The firmware a host last showed (newest event first); then what discovery saw; else UEFI, said as assumed. */
export function firmwareOf(timeline: readonly TimelineEntry[], discoveredArch?: number): FirmwareGuess {
  for (let i = timeline.length - 1; i >= 0; i--) {
    const e = timeline[i]!;
    const arch = e.detail?.arch;
    if (e.type.startsWith('dhcp.') && typeof arch === 'number') return fromArch(arch, `DHCP ${e.type.slice(5)}`);
    if (e.type === 'grub.config') return { mode: 'uefi', why: 'it last booted GRUB (UEFI)' };
    if (e.type === 'pxelinux.config') return { mode: 'legacy', why: 'it last booted pxelinux (BIOS)' };
  }
  if (discoveredArch !== undefined) return fromArch(discoveredArch, 'discovery');
  return { mode: 'uefi', why: 'never seen booting: UEFI assumed' };
}

function fromArch(arch: number, seen: string): FirmwareGuess {
  return arch === 0
    ? { mode: 'legacy', why: `${seen} said client architecture 0 (BIOS)` }
    : { mode: 'uefi', why: `${seen} said client architecture ${arch} (UEFI)` };
}
