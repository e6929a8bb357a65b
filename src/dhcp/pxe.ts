// Who is asking: a PXE ROM, UEFI HTTP boot, iPXE, or a plain DHCP client. Pure.
import type { DhcpPacket } from './packet.ts';
import { Opt, parseEncap } from './packet.ts';
import type { Mac } from '../net/mac.ts';

export interface PxeClientInfo {
  /** Option 60 starts with "PXEClient" (PXE 2.1 section 2.2.1). */
  pxe: boolean;
  /** Option 60 starts with "HTTPClient" (UEFI 2.5+ HTTP boot, UEFI spec 24.7.2). */
  httpClient: boolean;
  /** A boot ROM of any kind: PXE, HTTP boot, or iPXE. Only these get boot answers. */
  bootClient: boolean;
  /** Option 93 (RFC 4578), else the Arch field of option 60; undefined for plain DHCP clients. */
  arch?: number;
  /** UNDI version from option 94 or the option 60 "UNDI:yyyzzz" field. */
  undi?: { major: number; minor: number };
  /** Option 77 is "iPXE" (raw, as iPXE sends it) or an RFC 3004 user class containing "iPXE", or option 175 present. */
  ipxe: boolean;
  /** Option 97 as a GUID in wire byte order (what pxelinux asks for); undefined when absent or all zeros (iPXE BIOS). */
  uuid?: string;
  /** The raw option 97 value (type byte + 16 bytes): PXE proxy replies echo it back. */
  uuidRaw?: Uint8Array;
  vendorClass?: string;
}

const PXE_VC = /^(PXEClient|HTTPClient)(?::Arch:(\d{5}))?(?::UNDI:(\d{3})(\d{3}))?/;

function latin1(v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1');
}

function isIpxeUserClass(v: Uint8Array): boolean {
  const s = latin1(v);
  if (s === 'iPXE') return true;
  // RFC 3004: a list of (length, data) items.
  let i = 0;
  while (i < v.length) {
    const len = v[i];
    if (len === 0 || i + 1 + len > v.length) return false;
    if (latin1(v.subarray(i + 1, i + 1 + len)) === 'iPXE') return true;
    i += 1 + len;
  }
  return false;
}

export function formatGuid(b: Uint8Array): string {
  const h = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function classifyClient(p: DhcpPacket): PxeClientInfo {
  const vcRaw = p.options.get(Opt.VendorClassId);
  const vendorClass = vcRaw ? latin1(vcRaw) : undefined;
  const m = vendorClass ? PXE_VC.exec(vendorClass) : null;
  const pxe = m?.[1] === 'PXEClient';
  const httpClient = m?.[1] === 'HTTPClient';

  let arch: number | undefined;
  const a = p.options.get(Opt.ClientArch);
  // RFC 4578 2.1: a list of 16-bit types; the first is the one the client runs now.
  if (a && a.length >= 2 && a.length % 2 === 0) arch = (a[0] << 8) | a[1];
  else if (m?.[2] !== undefined) arch = Number(m[2]);

  let undi: PxeClientInfo['undi'];
  const ndi = p.options.get(Opt.ClientNdi);
  if (ndi && ndi.length === 3 && ndi[0] === 1) undi = { major: ndi[1], minor: ndi[2] };
  else if (m?.[3] !== undefined) undi = { major: Number(m[3]), minor: Number(m[4]) };

  const uc = p.options.get(Opt.UserClass);
  const enc175 = p.options.get(Opt.IpxeEncap);
  const ipxe = (uc !== undefined && isIpxeUserClass(uc)) || (enc175 !== undefined && parseEncap(enc175) !== undefined);

  let uuid: string | undefined;
  const u = p.options.get(Opt.ClientUuid);
  // RFC 4578 2.3: type 0 followed by a 16-byte GUID.
  const uuidRaw = u && u.length === 17 && u[0] === 0 ? u : undefined;
  if (uuidRaw && uuidRaw.subarray(1).some((x) => x !== 0)) uuid = formatGuid(uuidRaw.subarray(1));

  return { pxe, httpClient, bootClient: pxe || httpClient || ipxe, arch, undi, ipxe, uuid, uuidRaw, vendorClass };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The client's MAC when its hardware is Ethernet-like (6-byte address); undefined otherwise. Same form as macFromBytes, faster. */
export function clientMac(p: DhcpPacket): Mac | undefined {
  if (p.hlen !== 6) return undefined;
  const c = p.chaddr;
  return `${HEX[c[0]]}:${HEX[c[1]]}:${HEX[c[2]]}:${HEX[c[3]]}:${HEX[c[4]]}:${HEX[c[5]]}` as Mac;
}
