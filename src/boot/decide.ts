// The one decision: what does this machine boot now? Pure: DHCP and the config renderers both ask it.
import type { Mac } from '../net/mac.ts';

/** Firmware families as DHCP option 93 (RFC 4578 / IANA "Processor Architecture Types") tells them. */
export type Firmware = 'bios' | 'uefi' | 'uefi-http';

export interface BootClient {
  mac: Mac;
  /** DHCP option 93 value; undefined when the client sent none (treated as BIOS, as PXE 2.1 implies). */
  arch?: number;
  /** Option 77 is "iPXE": the client is already iPXE and can fetch an HTTP script. */
  ipxe: boolean;
}

/** What the core knows of the host: nothing (unknown), or its build state and the loader it should use. */
export interface HostBootState {
  inBuild: boolean;
  /** Loader chain from the host's profile: pxelinux/GRUB over TFTP, or iPXE with kernel/initrd over HTTP. */
  loader: 'native' | 'ipxe';
  /**
   * The host's UEFI chain (src/images/uefi-chain.ts): the TFTP path of the loader DHCP names (the image's own
   * shim, or loaders.uefi), and whether its GRUB can fetch over HTTP. Absent: loaders.uefi, HTTP unknown.
   */
  uefi?: { bootFile: string; http: boolean; reason?: string };
}

export interface LoaderFiles {
  bios: string; // pxelinux.0
  uefi: string; // shimx64.efi or a grub-mknetdir core.efi
  ipxeBios: string; // undionly.kpxe
  ipxeUefi: string; // ipxe.efi
}

export type BootFile = { kind: 'tftp'; path: string } | { kind: 'http'; url: string };

export type BootDecision =
  | { action: 'install' | 'local'; firmware: Firmware; file: BootFile; reason: string }
  | { action: 'none'; reason: string };

export interface DecideInput {
  client: BootClient;
  host: HostBootState | undefined;
  loaders: LoaderFiles;
  /** Base URL of our HTTP server, no trailing slash: iPXE scripts and HTTP boot come from there. */
  httpBase: string;
  /** proxy-DHCP answers only machines we know: an unknown one keeps whatever the site's DHCP gives it. */
  answerUnknown: boolean;
}

export function firmwareOf(arch: number | undefined): Firmware | undefined {
  if (arch === undefined || arch === 0) return 'bios';
  // 6 EFI IA32, 7 EFI BC (x64), 9 EFI x64, 11 ARM64 UEFI: all take the UEFI (GRUB/iPXE EFI) chain.
  if (arch === 6 || arch === 7 || arch === 9 || arch === 11) return 'uefi';
  // 16 x64 UEFI HTTP boot, 19 arm64 HTTP: the firmware itself fetches a URL.
  if (arch === 16 || arch === 19) return 'uefi-http';
  return undefined;
}

export function decideBoot(input: DecideInput): BootDecision {
  const { client, host, loaders, httpBase } = input;
  const firmware = firmwareOf(client.arch);
  if (!firmware)
    return { action: 'none', reason: `client architecture ${client.arch} is not one we have a loader for` };
  if (!host && !input.answerUnknown)
    return { action: 'none', reason: 'unknown machine and this mode answers only known hosts' };
  // A machine not in build still gets a loader: its per-host config then says "boot the local disk".
  const action = host?.inBuild ? 'install' : 'local';
  const reason = !host
    ? 'unknown machine: boot local disk'
    : host.inBuild
      ? 'host is in build'
      : 'host not in build: boot local disk';
  const macPath = encodeURIComponent(client.mac);
  const ipxeScript: BootFile = { kind: 'http', url: `${httpBase}/boot/ipxe/${macPath}` };
  const wantsIpxe = host?.loader === 'ipxe';

  const uefiFile = host?.uefi?.bootFile ?? loaders.uefi;
  const chain = host?.uefi?.reason ? ` (UEFI: ${host.uefi.reason})` : '';
  // UEFI HTTP boot with the native loader: the firmware loads shim/GRUB by URL (shim then fetches grubx64.efi
  // from the same URL directory), when that GRUB has an http module to fetch its config and kernel with.
  const nativeHttp = firmware === 'uefi-http' && !wantsIpxe && host?.uefi?.http === true;
  if (nativeHttp && !client.ipxe)
    return {
      action,
      firmware,
      file: { kind: 'http', url: `${httpBase}/tftp/${uefiFile}` },
      reason: `${reason}${chain}`,
    };
  // A UEFI client that is already iPXE (an iPXE NIC ROM, or the ipxe.efi handed to HTTP boot below, which asks again
  // as arch 7) goes on over HTTP with its script: shim started by iPXE cannot load grubx64.efi (seen under OVMF:
  // "Malformed binary after Attribute Certificate Table"), and an HTTP-only network has no TFTP for it anyway.
  if (client.ipxe && (wantsIpxe || firmware !== 'bios')) {
    return {
      action,
      firmware,
      file: ipxeScript,
      reason: wantsIpxe ? reason : `${reason}; the client is already iPXE: kernel and initrd over HTTP`,
    };
  }
  if (firmware === 'uefi-http') {
    // UEFI HTTP boot loads an EFI binary by URL: hand it iPXE EFI, which then fetches its script
    // (iPXE profiles, unknown machines, and GRUBs without an http module, which could not fetch their config).
    const why = !wantsIpxe && host ? `; its GRUB has no http module, so UEFI HTTP boot goes through iPXE${chain}` : '';
    return {
      action,
      firmware,
      file: { kind: 'http', url: `${httpBase}/tftp/${loaders.ipxeUefi}` },
      reason: `${reason}${why}`,
    };
  }
  if (wantsIpxe && !client.ipxe) {
    return {
      action,
      firmware,
      file: { kind: 'tftp', path: firmware === 'bios' ? loaders.ipxeBios : loaders.ipxeUefi },
      reason,
    };
  }
  if (firmware === 'bios') return { action, firmware, file: { kind: 'tftp', path: loaders.bios }, reason };
  return { action, firmware, file: { kind: 'tftp', path: uefiFile }, reason: `${reason}${chain}` };
}
