// What an EFI loader file is and whom Secure Boot will see behind it: the facts `image import`,
// `loaders sync` and `doctor` report, and what the boot decision and the GRUB config are chosen from.
// Pure (bytes in). The shim's vendor is the CA it trusts (its .vendor_cert): the GRUB it loads and the
// kernel that GRUB loads must be signed under that CA, or Secure Boot refuses them.
import { grubFlavour, grubKernelCommand, type GrubFlavour } from './grub.ts';
import { authenticodeSigners, formatSigner, parsePe, shimVendorCerts } from './pe.ts';

export type LoaderKind = 'shim' | 'grub' | 'mokmanager' | 'efi';

export interface GrubFacts {
  prefix?: string;
  perMac: boolean;
  perMacOver?: 'tftp' | 'any';
  lookup: string;
  asks: string[];
  linuxefi: boolean;
  http: boolean;
  kernelCommand: 'linux' | 'linuxefi';
}

export interface LoaderFacts {
  kind: LoaderKind;
  /** The first signature's certificate, e.g. "Debian Secure Boot Signer 2022 - grub2 (issued by Debian Secure Boot CA)"; "unsigned" when none. */
  signer: string;
  /** Vendor of that signature ("Debian", "Red Hat", "Microsoft"); undefined when unsigned. */
  signerVendor?: string;
  /** shim only: the CAs it trusts (its built-in vendor certificate). */
  trusts?: string[];
  /** The vendor whose signatures this loader's chain accepts (shim: its vendor CA; GRUB: its signer). */
  vendor?: string;
  grub?: GrubFacts;
}

export function grubFacts(f: GrubFlavour, signerVendor: string | undefined): GrubFacts {
  return {
    ...(f.prefix !== undefined ? { prefix: f.prefix } : {}),
    perMac: f.perMac,
    ...(f.perMacOver ? { perMacOver: f.perMacOver } : {}),
    lookup: f.lookup,
    asks: f.asks,
    linuxefi: f.linuxefi,
    http: f.http,
    kernelCommand: grubKernelCommand(f, signerVendor),
  };
}

/** `name` (the file name) only breaks ties: a file is a shim by its .vendor_cert, a GRUB by its module list. */
export function describeLoader(bytes: Uint8Array, name = '', extra: Uint8Array[] = []): LoaderFacts | undefined {
  const pe = parsePe(bytes);
  if (!pe) return undefined;
  const signers = authenticodeSigners(bytes, pe);
  const signer = signers[0];
  const base = { signer: formatSigner(signer), ...(signer ? { signerVendor: signer.vendor } : {}) };
  if (pe.sections.some((s) => s.name === '.vendor_cert')) {
    const trusted = shimVendorCerts(bytes, pe);
    return {
      kind: 'shim',
      ...base,
      trusts: trusted.map(formatSigner),
      ...(trusted[0] ? { vendor: trusted[0].vendor } : {}),
    };
  }
  const g = grubFlavour(bytes, extra);
  if (g)
    return { kind: 'grub', ...base, ...(signer ? { vendor: signer.vendor } : {}), grub: grubFacts(g, signer?.vendor) };
  return { kind: /^mm/i.test(name) ? 'mokmanager' : 'efi', ...base, ...(signer ? { vendor: signer.vendor } : {}) };
}

/** One line for `loaders sync`, `image import` and doctor. */
export function formatLoaderFacts(f: LoaderFacts): string {
  const parts = [f.signerVendor ? `signed by ${f.signer}` : 'unsigned (refused while Secure Boot is on)'];
  if (f.trusts) parts.push(f.trusts.length ? `trusts ${f.trusts.join(', ')}` : 'trusts only the firmware db');
  if (f.grub)
    parts.push(
      f.grub.lookup,
      `kernel command ${f.grub.kernelCommand}`,
      f.grub.http ? 'HTTP capable' : 'TFTP only (no http module)',
    );
  return parts.join('; ');
}
