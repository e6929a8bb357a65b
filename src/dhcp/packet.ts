// DHCPv4 wire codec (RFC 2131 / RFC 2132 / RFC 3396). Pure: no I/O, never throws on bad bytes.
// decodePacket() returns a result with the reason it refused; encodePacket() always produces bytes.

export const MAGIC_COOKIE = 0x63825363;
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

export const MsgType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;

export const MSG_NAMES: Record<number, string> = {
  1: 'discover',
  2: 'offer',
  3: 'request',
  4: 'decline',
  5: 'ack',
  6: 'nak',
  7: 'release',
  8: 'inform',
};

/** Option codes we read or write by name (RFC 2132 unless noted). */
export const Opt = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DnsServers: 6,
  HostName: 12,
  DomainName: 15,
  BroadcastAddr: 28,
  NtpServers: 42,
  VendorSpecific: 43,
  RequestedIp: 50,
  LeaseTime: 51,
  Overload: 52,
  MessageType: 53,
  ServerId: 54,
  ParamRequestList: 55,
  Message: 56,
  MaxMessageSize: 57,
  RenewalTime: 58,
  RebindingTime: 59,
  VendorClassId: 60,
  ClientId: 61,
  TftpServerName: 66,
  BootfileName: 67,
  UserClass: 77,
  RelayAgentInfo: 82 /* RFC 3046 */,
  ClientArch: 93 /* RFC 4578 */,
  ClientNdi: 94,
  ClientUuid: 97,
  IpxeEncap: 175,
  End: 255,
} as const;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The full 16-byte chaddr field; only the first `hlen` bytes are the hardware address. */
  chaddr: Uint8Array;
  /** Header sname/file as text (NUL-terminated); empty when option 52 reused the field for options. */
  sname: string;
  file: string;
  /**
   * Options by code. A code that appears several times is concatenated (RFC 3396), unknown codes
   * are kept as raw bytes. Map order is the order of first appearance on the wire.
   */
  options: Map<number, Uint8Array>;
}

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; reason: string };

const HEADER_LEN = 236;
const OPTIONS_START = 240;
/** RFC 2131 section 2: a client must accept 576-byte IP datagrams, so 576 - 20 (IP) - 8 (UDP). */
export const MIN_MAX_MESSAGE = 548;
/** Many BOOTP-era ROMs drop replies shorter than a BOOTP message (RFC 951: 300 bytes). */
const BOOTP_MIN_LEN = 300;

export function ipFromBytes(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Dotted quad to an unsigned 32-bit number; undefined when not an IPv4 address. */
export function ipToInt(ip: string): number | undefined {
  let n = 0,
    parts = 0,
    cur = -1;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46;
    if (c === 46) {
      if (cur < 0 || cur > 255) return undefined;
      n = n * 256 + cur;
      parts++;
      cur = -1;
    } else if (c >= 48 && c <= 57) {
      if (cur === 0) return undefined; // no leading zeros: "010" is ambiguous (octal in some tools)
      cur = cur < 0 ? c - 48 : cur * 10 + (c - 48);
      if (cur > 255) return undefined;
    } else return undefined;
  }
  return parts === 4 ? n >>> 0 : undefined;
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function cstring(b: Uint8Array, start: number, len: number): string {
  let end = start;
  const max = start + len;
  while (end < max && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

/** Walks one option area; appends into `into`. Returns an error reason or undefined. */
function parseOptions(
  b: Uint8Array,
  start: number,
  end: number,
  into: Map<number, Uint8Array>,
  where: string,
): string | undefined {
  let i = start;
  while (i < end) {
    const code = b[i];
    if (code === Opt.Pad) {
      i++;
      continue;
    }
    if (code === Opt.End) return undefined;
    if (i + 1 >= end) return `option ${code} in ${where} at byte ${i} has no length byte`;
    const len = b[i + 1];
    if (i + 2 + len > end)
      return `option ${code} in ${where} at byte ${i} claims ${len} bytes but only ${end - i - 2} remain`;
    const val = b.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    if (prev) {
      // RFC 3396: split long options are concatenated in order of appearance.
      const joined = new Uint8Array(prev.length + len);
      joined.set(prev, 0);
      joined.set(val, prev.length);
      into.set(code, joined);
    } else into.set(code, val);
    i += 2 + len;
  }
  // Running off the end without code 255 is tolerated: many ROMs pad to the end instead.
  return undefined;
}

export function decodePacket(input: Uint8Array): DecodeResult {
  try {
    return decodeUnsafe(input);
  } catch (err) {
    // The walk above bounds every read; this is a last line so a bug can never take down the socket.
    return { ok: false, reason: `decoder error: ${(err as Error).message}` };
  }
}

function decodeUnsafe(input: Uint8Array): DecodeResult {
  // A plain Uint8Array view: subarray() on it is cheap, Buffer#subarray allocates a FastBuffer.
  const b = Buffer.isBuffer(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : input;
  if (b.length < OPTIONS_START)
    return { ok: false, reason: `packet is ${b.length} bytes, shorter than the 240-byte DHCP header` };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(HEADER_LEN) !== MAGIC_COOKIE)
    return { ok: false, reason: 'no DHCP magic cookie (plain BOOTP or not DHCP)' };
  const op = b[0];
  if (op !== BOOTREQUEST && op !== BOOTREPLY)
    return { ok: false, reason: `op ${op} is neither BOOTREQUEST nor BOOTREPLY` };
  const hlen = b[2];
  if (hlen > 16) return { ok: false, reason: `hlen ${hlen} is larger than the 16-byte chaddr field` };
  const options = new Map<number, Uint8Array>();
  const err = parseOptions(b, OPTIONS_START, b.length, options, 'options');
  if (err) return { ok: false, reason: err };
  let sname = '',
    file = '';
  const overload = options.get(Opt.Overload);
  const ov = overload && overload.length === 1 ? overload[0] : 0;
  if (overload && (overload.length !== 1 || ov < 1 || ov > 3))
    return { ok: false, reason: 'option 52 (overload) must be one byte 1, 2 or 3' };
  options.delete(Opt.Overload);
  // RFC 2131 section 4.1: options continue in 'file' first, then in 'sname'.
  if (ov & 1) {
    const e = parseOptions(b, 108, 236, options, 'file field (overload)');
    if (e) return { ok: false, reason: e };
  } else file = cstring(b, 108, 128);
  if (ov & 2) {
    const e = parseOptions(b, 44, 108, options, 'sname field (overload)');
    if (e) return { ok: false, reason: e };
  } else sname = cstring(b, 44, 64);
  return {
    ok: true,
    packet: {
      op,
      htype: b[1],
      hlen,
      hops: b[3],
      xid: dv.getUint32(4),
      secs: dv.getUint16(8),
      flags: dv.getUint16(10),
      ciaddr: ipFromBytes(b, 12),
      yiaddr: ipFromBytes(b, 16),
      siaddr: ipFromBytes(b, 20),
      giaddr: ipFromBytes(b, 24),
      chaddr: b.slice(28, 44),
      sname,
      file,
      options,
    },
  };
}

export function messageType(p: DhcpPacket): number | undefined {
  const v = p.options.get(Opt.MessageType);
  return v && v.length === 1 ? v[0] : undefined;
}

/** Largest reply the client said it accepts (option 57), as a DHCP payload size; 548 when absent or silly. */
export function maxReplySize(p: DhcpPacket): number {
  const v = p.options.get(Opt.MaxMessageSize);
  if (!v || v.length !== 2) return MIN_MAX_MESSAGE;
  const ipSize = (v[0] << 8) | v[1];
  // Option 57 counts the IP datagram (RFC 2132 9.10: minimum 576); cap at an Ethernet frame.
  return Math.max(MIN_MAX_MESSAGE, Math.min(ipSize, 1500) - 28);
}

function writeIp(out: Uint8Array, off: number, ip: string): void {
  const n = ipToInt(ip) ?? 0;
  out[off] = n >>> 24;
  out[off + 1] = (n >>> 16) & 255;
  out[off + 2] = (n >>> 8) & 255;
  out[off + 3] = n & 255;
}

function writeCstring(out: Uint8Array, off: number, max: number, s: string): void {
  const bytes = Buffer.from(s, 'latin1');
  out.set(bytes.subarray(0, max - 1), off); // always leave a NUL
}

/** Bytes one option needs on the wire, counting RFC 3396 splits of values over 255 bytes. */
function wireSize(len: number): number {
  return len === 0 ? 2 : len + 2 * Math.ceil(len / 255);
}

function putOption(out: Uint8Array, off: number, code: number, val: Uint8Array): number {
  if (val.length <= 255) {
    out[off] = code;
    out[off + 1] = val.length;
    out.set(val, off + 2);
    return off + 2 + val.length;
  }
  for (let i = 0; i < val.length; i += 255) {
    const chunk = val.subarray(i, Math.min(i + 255, val.length));
    out[off] = code;
    out[off + 1] = chunk.length;
    out.set(chunk, off + 2);
    off += 2 + chunk.length;
  }
  return off;
}

export interface EncodeResult {
  bytes: Buffer;
  /** Options that did not fit within maxSize even with overload, lowest priority first. */
  dropped: number[];
}

/**
 * Encodes a packet. Option order: 53 and 54 first (some ROMs look only there), the rest in map
 * order, 82 last (RFC 3046 2.1: the relay agent option is echoed as the last option). When the
 * options do not fit `maxSize` (option 57, else 548), the file and sname fields carry the rest
 * (option 52, RFC 2132 9.3) if the header does not use them; what still does not fit is dropped
 * from the end of the order and reported.
 */
export function encodePacket(p: DhcpPacket, maxSize = MIN_MAX_MESSAGE): EncodeResult {
  const order: number[] = [];
  if (p.options.has(Opt.MessageType)) order.push(Opt.MessageType);
  if (p.options.has(Opt.ServerId)) order.push(Opt.ServerId);
  for (const code of p.options.keys()) {
    if (
      code === Opt.MessageType ||
      code === Opt.ServerId ||
      code === Opt.RelayAgentInfo ||
      code === Opt.Pad ||
      code === Opt.End ||
      code === Opt.Overload
    )
      continue;
    order.push(code);
  }
  if (p.options.has(Opt.RelayAgentInfo)) order.push(Opt.RelayAgentInfo);

  const limit = Math.max(MIN_MAX_MESSAGE, maxSize);
  const mainRoom = limit - OPTIONS_START - 1; // keep 1 for End
  let total = 0;
  for (const c of order) total += wireSize(p.options.get(c)!.length);

  const mainCodes: number[] = [],
    fileCodes: number[] = [],
    snameCodes: number[] = [],
    dropped: number[] = [];
  let overload = 0;
  if (total <= mainRoom) mainCodes.push(...order);
  else {
    // Room for option 52 itself (3 bytes) in the main area.
    let room = mainRoom - 3,
      fileRoom = p.file ? 0 : 127,
      snameRoom = p.sname ? 0 : 63;
    for (const c of order) {
      const need = wireSize(p.options.get(c)!.length);
      if (need <= room) {
        mainCodes.push(c);
        room -= need;
      } else if (need <= fileRoom) {
        fileCodes.push(c);
        fileRoom -= need;
        overload |= 1;
      } else if (need <= snameRoom) {
        snameCodes.push(c);
        snameRoom -= need;
        overload |= 2;
      } else dropped.push(c);
    }
  }

  let size = OPTIONS_START;
  for (const c of mainCodes) size += wireSize(p.options.get(c)!.length);
  if (overload) size += 3;
  size += 1;
  const out = Buffer.alloc(Math.max(size, BOOTP_MIN_LEN));
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = Math.min(p.hlen, 16);
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs & 0xffff, 8);
  out.writeUInt16BE(p.flags & 0xffff, 10);
  writeIp(out, 12, p.ciaddr);
  writeIp(out, 16, p.yiaddr);
  writeIp(out, 20, p.siaddr);
  writeIp(out, 24, p.giaddr);
  out.set(p.chaddr.subarray(0, 16), 28);
  if (!(overload & 2)) writeCstring(out, 44, 64, p.sname);
  if (!(overload & 1)) writeCstring(out, 108, 128, p.file);
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LEN);
  let off = OPTIONS_START;
  const mt = mainCodes[0] === Opt.MessageType ? 1 : 0;
  for (let i = 0; i < mt; i++) off = putOption(out, off, Opt.MessageType, p.options.get(Opt.MessageType)!);
  if (overload) off = putOption(out, off, Opt.Overload, Uint8Array.of(overload));
  for (let i = mt; i < mainCodes.length; i++) off = putOption(out, off, mainCodes[i], p.options.get(mainCodes[i])!);
  out[off] = Opt.End;
  if (overload & 1) {
    let o = 108;
    for (const c of fileCodes) o = putOption(out, o, c, p.options.get(c)!);
    out[o] = Opt.End;
  }
  if (overload & 2) {
    let o = 44;
    for (const c of snameCodes) o = putOption(out, o, c, p.options.get(c)!);
    out[o] = Opt.End;
  }
  return { bytes: out, dropped };
}

// Helpers to build option values.
export const optIp = (...ips: string[]): Uint8Array => {
  const out = new Uint8Array(ips.length * 4);
  ips.forEach((ip, i) => writeIp(out, i * 4, ip));
  return out;
};
export const optU32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
export const optStr = (s: string): Uint8Array => Buffer.from(s, 'utf8');
export const optU8 = (n: number): Uint8Array => Uint8Array.of(n & 255);
/** Encapsulated sub-options (option 43, 175, 82): code, length, value, ..., no end marker unless asked. */
export function optEncap(subs: [number, Uint8Array][], end = false): Uint8Array {
  const parts: number[] = [];
  for (const [c, v] of subs) {
    parts.push(c, v.length, ...v);
  }
  if (end) parts.push(255);
  return Uint8Array.from(parts);
}
/** Sub-options of an encapsulated option value; undefined when malformed. */
export function parseEncap(v: Uint8Array): Map<number, Uint8Array> | undefined {
  const m = new Map<number, Uint8Array>();
  let i = 0;
  while (i < v.length) {
    const c = v[i];
    if (c === 0) {
      i++;
      continue;
    }
    if (c === 255) break;
    if (i + 1 >= v.length) return undefined;
    const len = v[i + 1];
    if (i + 2 + len > v.length) return undefined;
    m.set(c, v.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return m;
}
