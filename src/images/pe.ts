// EFI loaders as PE/COFF files (Microsoft PE/COFF spec): sections, and who signed them (the Authenticode
// certificate table, a PKCS#7 SignedData blob), plus the certificate a shim trusts (its .vendor_cert).
// Pure: bytes in, facts out. Bad or truncated bytes give undefined (or an empty list), never an exception.
import { X509Certificate } from 'node:crypto';

export interface PeSection {
  name: string;
  virtualSize: number;
  fileOffset: number;
  fileSize: number;
}
export interface PeFile {
  machine: number;
  sections: PeSection[];
  certTable?: { offset: number; size: number };
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
const MAX_SECTIONS = 96;

export function parsePe(b: Uint8Array): PeFile | undefined {
  if (b.length < 0x40 || b[0] !== 0x4d || b[1] !== 0x5a) return undefined; // "MZ"
  const pe = u32(b, 0x3c);
  if (pe + 24 > b.length || u32(b, pe) !== 0x00004550) return undefined; // "PE\0\0"
  const machine = u16(b, pe + 4);
  const nsec = u16(b, pe + 6);
  const symtab = u32(b, pe + 12),
    nsym = u32(b, pe + 16);
  const optSize = u16(b, pe + 20);
  const opt = pe + 24;
  if (nsec > MAX_SECTIONS || opt + optSize > b.length || optSize < 2) return undefined;
  const magic = u16(b, opt);
  // Data directories: PE32 at 96, PE32+ at 112; entry 4 is the certificate table (a file offset, not an RVA).
  const dirs = magic === 0x20b ? opt + 112 : magic === 0x10b ? opt + 96 : -1;
  if (dirs < 0) return undefined;
  let certTable: PeFile['certTable'];
  if (dirs + 8 * 5 <= opt + optSize) {
    const offset = u32(b, dirs + 32),
      size = u32(b, dirs + 36);
    if (size > 0 && offset + size <= b.length) certTable = { offset, size };
  }
  const strings = symtab > 0 ? symtab + nsym * 18 : -1;
  const sections: PeSection[] = [];
  const table = opt + optSize;
  if (table + nsec * 40 > b.length) return undefined;
  for (let i = 0; i < nsec; i++) {
    const s = table + i * 40;
    let name = cString(b, s, 8);
    // Long names (MinGW/GNU ld, as shim is built): "/N" is offset N into the COFF string table.
    if (/^\/\d+$/.test(name) && strings > 0) {
      const at = strings + Number(name.slice(1));
      if (at < b.length) name = cString(b, at, 64);
    }
    sections.push({ name, virtualSize: u32(b, s + 8), fileSize: u32(b, s + 16), fileOffset: u32(b, s + 20) });
  }
  return { machine, sections, certTable };
}

function cString(b: Uint8Array, at: number, max: number): string {
  let end = at;
  while (end < b.length && end < at + max && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + at, end - at).toString('latin1');
}

export function sectionBytes(b: Uint8Array, s: PeSection): Uint8Array | undefined {
  const size = Math.min(s.fileSize, s.virtualSize || s.fileSize);
  if (s.fileOffset + size > b.length) return undefined;
  return b.subarray(s.fileOffset, s.fileOffset + size);
}

// --- DER (X.690), only as far as PKCS#7 SignedData needs --------------------------------------------
interface Tlv {
  tag: number;
  at: number;
  start: number;
  end: number;
  next: number;
}

function tlv(b: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = b[at];
  let len = b[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined; // indefinite lengths are not DER
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i];
    start += n;
  }
  const end = start + len;
  return end > limit ? undefined : { tag, at, start, end, next: end };
}

function children(b: Uint8Array, t: Tlv, max = 4096): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.start; at < t.end && out.length < max;) {
    const c = tlv(b, at, t.end);
    if (!c) break;
    out.push(c);
    at = c.next;
  }
  return out;
}

const OID_SIGNED_DATA = Buffer.from('2a864886f70d010702', 'hex'); // 1.2.840.113549.1.7.2

export interface CertName {
  cn?: string;
  o?: string;
}
export interface Signer {
  subject: CertName;
  issuer: CertName;
  /** Who this is, in a word ("Red Hat", "Debian", "Microsoft"), from the subject, else the issuer. */
  vendor: string;
}

/** The certificates in a PKCS#7 SignedData, and the serial numbers its SignerInfos name. */
function pkcs7(b: Uint8Array): { certs: Uint8Array[]; signerSerials: string[] } | undefined {
  const ci = tlv(b, 0, b.length);
  if (!ci || ci.tag !== 0x30) return undefined;
  const [oid, explicit] = children(b, ci, 2);
  if (
    !oid ||
    oid.tag !== 0x06 ||
    !Buffer.from(b.subarray(oid.start, oid.end)).equals(OID_SIGNED_DATA) ||
    !explicit ||
    explicit.tag !== 0xa0
  )
    return undefined;
  const sd = children(b, explicit, 1)[0];
  if (!sd || sd.tag !== 0x30) return undefined;
  const parts = children(b, sd, 8);
  const certs: Uint8Array[] = [];
  const signerSerials: string[] = [];
  for (const p of parts) {
    if (p.tag === 0xa0) for (const c of children(b, p, 64)) if (c.tag === 0x30) certs.push(b.subarray(c.at, c.end));
  }
  const infos = parts[parts.length - 1];
  if (infos && infos.tag === 0x31) {
    for (const si of children(b, infos, 16)) {
      const [, sid] = children(b, si, 2);
      if (sid?.tag !== 0x30) continue; // v3 SignerInfos name a subjectKeyIdentifier: matched by the first certificate below
      const serial = children(b, sid, 2)[1];
      if (serial?.tag === 0x02)
        signerSerials.push(normSerial(Buffer.from(b.subarray(serial.start, serial.end)).toString('hex')));
    }
  }
  return { certs, signerSerials };
}

const normSerial = (hex: string) =>
  hex
    .toUpperCase()
    .replace(/^(00)+(?=.)/, '')
    .replace(/^0+(?=.)/, '');

function parseName(text: string): CertName {
  const out: CertName = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i < 0) continue;
    const k = line.slice(0, i).trim(),
      v = line
        .slice(i + 1)
        .trim()
        // eslint-disable-next-line no-control-regex -- control characters are what it removes
        .replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' ')
        .slice(0, 120);
    if (k === 'CN') out.cn = v;
    else if (k === 'O') out.o = v;
  }
  return out;
}

const VENDORS: [RegExp, string][] = [
  [/red ?hat/i, 'Red Hat'],
  [/centos/i, 'CentOS'],
  [/rocky/i, 'Rocky'],
  [/alma/i, 'AlmaLinux'],
  [/oracle/i, 'Oracle'],
  [/debian/i, 'Debian'],
  [/canonical|ubuntu/i, 'Canonical'],
  [/suse/i, 'SUSE'],
  [/fedora/i, 'Fedora'],
  [/microsoft/i, 'Microsoft'],
];

export function vendorOf(...names: (string | undefined)[]): string {
  for (const n of names) for (const [re, v] of VENDORS) if (n && re.test(n)) return v;
  return names.find((n) => n) ?? 'unknown';
}

function describeCert(der: Uint8Array): Signer | undefined {
  try {
    const c = new X509Certificate(der);
    const subject = parseName(c.subject),
      issuer = parseName(c.issuer);
    return { subject, issuer, vendor: vendorOf(subject.o, subject.cn, issuer.o, issuer.cn) };
  } catch {
    return undefined;
  }
}

/** Who signed this PE file (Authenticode): one entry per signature, the signing certificate's subject and issuer. */
export function authenticodeSigners(b: Uint8Array, pe: PeFile | undefined = parsePe(b)): Signer[] {
  if (!pe?.certTable) return [];
  const out: Signer[] = [];
  let at = pe.certTable.offset;
  const end = pe.certTable.offset + pe.certTable.size;
  // WIN_CERTIFICATE entries, each 8-byte aligned: dwLength, wRevision, wCertificateType (2 = PKCS#7 SignedData).
  for (let n = 0; n < 8 && at + 8 <= end; n++) {
    const len = u32(b, at),
      type = u16(b, at + 6);
    if (len < 8 || at + len > end) break;
    if (type === 2) {
      const p = pkcs7(b.subarray(at + 8, at + len));
      if (p) {
        const bySerial = new Map<string, Uint8Array>();
        for (const der of p.certs) {
          try {
            bySerial.set(normSerial(new X509Certificate(der).serialNumber), der);
          } catch {
            /* not a certificate */
          }
        }
        const der = p.signerSerials.map((s) => bySerial.get(s)).find((d) => d) ?? p.certs[0];
        const s = der && describeCert(der);
        if (s) out.push(s);
      }
    }
    at += (len + 7) & ~7;
  }
  return out;
}

const EFI_CERT_X509_GUID = Buffer.from('a159c0a5e494a74a87b5ab155c2bf072', 'hex');

/** The CA a shim trusts besides the firmware's db (its built-in vendor certificate, shim's cert.S table). */
export function shimVendorCerts(b: Uint8Array, pe: PeFile | undefined = parsePe(b)): Signer[] {
  const sec = pe?.sections.find((s) => s.name === '.vendor_cert');
  const v = sec && sectionBytes(b, sec);
  if (!v || v.length < 16) return [];
  const size = u32(v, 0),
    offset = u32(v, 8);
  if (size === 0 || offset + size > v.length) return [];
  const blob = v.subarray(offset, offset + size);
  if (blob[0] === 0x30) {
    const s = describeCert(blob);
    return s ? [s] : [];
  }
  // Built with VENDOR_DB_FILE: an EFI_SIGNATURE_LIST sequence (UEFI spec 32.4.1).
  const out: Signer[] = [];
  for (let at = 0; at + 28 <= blob.length && out.length < 16;) {
    const listSize = u32(blob, at + 16),
      headerSize = u32(blob, at + 20),
      sigSize = u32(blob, at + 24);
    if (listSize < 28 || at + listSize > blob.length || sigSize <= 16) break;
    if (Buffer.from(blob.subarray(at, at + 16)).equals(EFI_CERT_X509_GUID)) {
      for (let s = at + 28 + headerSize; s + sigSize <= at + listSize; s += sigSize) {
        const c = describeCert(blob.subarray(s + 16, s + sigSize));
        if (c) out.push(c);
      }
    }
    at += listSize;
  }
  return out;
}

export function formatSigner(s: Signer | undefined): string {
  if (!s) return 'unsigned';
  const who = s.subject.cn ?? s.subject.o ?? 'unknown';
  const by = s.issuer.cn ?? s.issuer.o;
  return by && by !== who ? `${who} (issued by ${by})` : who;
}
