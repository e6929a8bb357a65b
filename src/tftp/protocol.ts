// TFTP wire codec and option negotiation. Pure: no sockets, no fs, never throws on bad bytes.
// RFC 1350 (packets), RFC 2347 (OACK), RFC 2348 (blksize), RFC 2349 (timeout, tsize), RFC 7440 (windowsize).

export const OP_RRQ = 1;
export const OP_WRQ = 2;
export const OP_DATA = 3;
export const OP_ACK = 4;
export const OP_ERROR = 5;
export const OP_OACK = 6;

/** RFC 1350 section 5 error codes, plus 8 from RFC 2347. */
export const TftpError = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTid: 5,
  FileExists: 6,
  NoSuchUser: 7,
  OptionRefused: 8,
} as const;

export interface TftpOption {
  name: string;
  value: string;
}

export type TftpPacket =
  | { op: 'RRQ' | 'WRQ'; filename: string; mode: string; options: TftpOption[] }
  | { op: 'DATA'; block: number; data: Buffer }
  | { op: 'ACK'; block: number }
  | { op: 'ERROR'; code: number; message: string }
  | { op: 'OACK'; options: TftpOption[] };

export type ParseResult = { ok: true; packet: TftpPacket } | { ok: false; reason: string };

/** A request is one small datagram; anything larger is garbage or an attack. */
export const MAX_REQUEST_BYTES = 2048;
/** Real clients send at most 4-5 options; a long list is refused rather than walked. */
export const MAX_OPTIONS = 32;

/** Split NUL-terminated latin1 strings starting at `from`; undefined if the last one lacks its NUL. */
function splitStrings(buf: Uint8Array, from: number, max: number): string[] | undefined {
  const out: string[] = [];
  let start = from;
  for (let i = from; i < buf.length; i++) {
    if (buf[i] === 0) {
      out.push(Buffer.from(buf.buffer, buf.byteOffset + start, i - start).toString('latin1'));
      start = i + 1;
      if (out.length > max) return undefined;
    }
  }
  if (start !== buf.length) return undefined;
  return out;
}

function parseOptions(strs: string[]): { ok: true; options: TftpOption[] } | { ok: false; reason: string } {
  // An odd trailing string (a name with no value) is ignored, as tftp-hpa and dnsmasq do.
  const options: TftpOption[] = [];
  for (let i = 0; i + 1 < strs.length; i += 2) {
    const name = strs[i]!;
    if (name.length === 0) return { ok: false, reason: 'empty option name' };
    options.push({ name: name.toLowerCase(), value: strs[i + 1]! });
  }
  return { ok: true, options };
}

export function parsePacket(buf: Uint8Array): ParseResult {
  if (buf.length < 2) return { ok: false, reason: `too short (${buf.length} bytes)` };
  const op = (buf[0]! << 8) | buf[1]!;
  switch (op) {
    case OP_RRQ:
    case OP_WRQ: {
      if (buf.length > MAX_REQUEST_BYTES) return { ok: false, reason: `request too long (${buf.length} bytes)` };
      const strs = splitStrings(buf, 2, 2 + MAX_OPTIONS * 2);
      if (!strs) return { ok: false, reason: 'request not NUL-terminated or too many options' };
      if (strs.length < 2) return { ok: false, reason: 'request without filename and mode' };
      const filename = strs[0]!;
      const mode = strs[1]!.toLowerCase();
      if (filename.length === 0) return { ok: false, reason: 'empty filename' };
      const opts = parseOptions(strs.slice(2));
      if (!opts.ok) return opts;
      return { ok: true, packet: { op: op === OP_RRQ ? 'RRQ' : 'WRQ', filename, mode, options: opts.options } };
    }
    case OP_DATA: {
      if (buf.length < 4) return { ok: false, reason: 'DATA too short' };
      const data = Buffer.from(buf.buffer, buf.byteOffset + 4, buf.length - 4);
      return { ok: true, packet: { op: 'DATA', block: (buf[2]! << 8) | buf[3]!, data } };
    }
    case OP_ACK: {
      if (buf.length < 4) return { ok: false, reason: 'ACK too short' };
      return { ok: true, packet: { op: 'ACK', block: (buf[2]! << 8) | buf[3]! } };
    }
    case OP_ERROR: {
      if (buf.length < 4) return { ok: false, reason: 'ERROR too short' };
      const code = (buf[2]! << 8) | buf[3]!;
      // Some clients omit the final NUL; take the text up to the first NUL or the end.
      let end = buf.indexOf(0, 4);
      if (end < 0) end = buf.length;
      const message = Buffer.from(buf.buffer, buf.byteOffset + 4, Math.min(end - 4, 512)).toString('latin1');
      return { ok: true, packet: { op: 'ERROR', code, message } };
    }
    case OP_OACK: {
      if (buf.length > MAX_REQUEST_BYTES) return { ok: false, reason: 'OACK too long' };
      const strs = splitStrings(buf, 2, MAX_OPTIONS * 2);
      if (!strs) return { ok: false, reason: 'OACK not NUL-terminated or too many options' };
      const opts = parseOptions(strs);
      if (!opts.ok) return opts;
      return { ok: true, packet: { op: 'OACK', options: opts.options } };
    }
    default:
      return { ok: false, reason: `unknown opcode ${op}` };
  }
}

/** Hot path for a transfer: the block number of an ACK, or -1 when the packet is not a well-formed ACK. */
export function ackBlock(buf: Uint8Array): number {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== OP_ACK) return -1;
  return (buf[2]! << 8) | buf[3]!;
}

function encodeStrings(op: number, strs: string[]): Buffer {
  let len = 2;
  for (const s of strs) len += Buffer.byteLength(s, 'latin1') + 1;
  const out = Buffer.alloc(len);
  out.writeUInt16BE(op, 0);
  let o = 2;
  for (const s of strs) {
    o += out.write(s, o, 'latin1');
    out[o++] = 0;
  }
  return out;
}

const flatten = (options: readonly TftpOption[]): string[] => options.flatMap((o) => [o.name, o.value]);

export function encodeRequest(
  op: 'RRQ' | 'WRQ',
  filename: string,
  mode = 'octet',
  options: readonly TftpOption[] = [],
): Buffer {
  return encodeStrings(op === 'RRQ' ? OP_RRQ : OP_WRQ, [filename, mode, ...flatten(options)]);
}

export function encodeOack(options: readonly TftpOption[]): Buffer {
  return encodeStrings(OP_OACK, flatten(options));
}

export function encodeAck(block: number): Buffer {
  const out = Buffer.alloc(4);
  out[1] = OP_ACK;
  out.writeUInt16BE(block & 0xffff, 2);
  return out;
}

export function encodeData(block: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + data.length);
  out[0] = 0;
  out[1] = OP_DATA;
  out.writeUInt16BE(block & 0xffff, 2);
  out.set(data, 4);
  return out;
}

/** Writes the 4-byte DATA header in place (the session fills the payload at offset 4). */
export function writeDataHeader(buf: Uint8Array, block: number): void {
  buf[0] = 0;
  buf[1] = OP_DATA;
  buf[2] = (block >>> 8) & 0xff;
  buf[3] = block & 0xff;
}

export function encodeError(code: number, message: string): Buffer {
  // Messages are ASCII by RFC 1350; keep them short so an ERROR is never fragmented.
  message = message.slice(0, 200);
  const out = Buffer.alloc(4 + Buffer.byteLength(message, 'latin1') + 1);
  out.writeUInt16BE(OP_ERROR, 0);
  out.writeUInt16BE(code & 0xffff, 2);
  out.write(message, 4, 'latin1');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Paths

export type PathResult = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Firmware sends "/boot/grub/..." (GRUB), "\\pxelinux.0" (some DOS-era ROMs), "a//b". We strip leading
 * separators, turn '\\' into '/', collapse repeats and drop '.' segments; '..' is refused outright
 * rather than resolved, so no request can name a parent of the root.
 */
export function normalizeRequestPath(raw: string): PathResult {
  if (raw.includes('\0')) return { ok: false, reason: 'NUL in path' };
  const segs = raw
    .replace(/\\/g, '/')
    .split('/')
    .filter((s) => s !== '' && s !== '.');
  if (segs.some((s) => s === '..')) return { ok: false, reason: "'..' in path" };
  if (segs.length === 0) return { ok: false, reason: 'empty path' };
  return { ok: true, path: segs.join('/') };
}

// ---------------------------------------------------------------------------------------------
// Option negotiation (RFC 2347): pure, table-tested.

export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;

export interface NegotiationLimits {
  /** Largest block the path to the client carries without fragmentation (MTU - 32), <= 65464. */
  maxBlksize: number;
  /** Upper bound on windowsize regardless of block size. */
  maxWindowsize: number;
  /** Bytes one window may hold (bounds memory per transfer: windowsize * blksize). */
  maxWindowBytes: number;
  /** Retransmit timeout when the client sends no timeout option. */
  defaultTimeoutMs: number;
  /** Largest timeout option honoured, seconds; a larger one is ignored (left out of the OACK). */
  maxTimeoutSec: number;
}

export const DEFAULT_LIMITS: NegotiationLimits = {
  maxBlksize: MAX_BLKSIZE,
  maxWindowsize: 64,
  maxWindowBytes: 1 << 20,
  defaultTimeoutMs: 1000,
  // A client asking timeout=255 would hold its slot 255 s per retransmit (25 minutes with 5 retries): 640
  // such requests held every slot of a 600-slot server. No boot loader asks for more than a few seconds.
  maxTimeoutSec: 10,
};

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Options to acknowledge, in the client's order; empty means no OACK (start with DATA 1). */
  oack: TftpOption[];
}

const DIGITS = /^[0-9]{1,10}$/;

export function negotiateOptions(
  options: readonly TftpOption[],
  size: number,
  limits: NegotiationLimits = DEFAULT_LIMITS,
): Negotiated {
  let blksize = 512;
  let windowsize = 1;
  let timeoutMs = limits.defaultTimeoutMs;
  const oack: TftpOption[] = [];
  const seen = new Set<string>();
  const pending: { name: string; value: string }[] = [];
  for (const { name, value } of options) {
    if (seen.has(name)) continue; // first occurrence wins
    seen.add(name);
    if (!DIGITS.test(value)) continue; // unparsable values: option ignored (RFC 2347: omit from OACK)
    const n = Number(value);
    switch (name) {
      case 'blksize': // RFC 2348: 8..65464; larger requests are answered with what we can do
        if (n < MIN_BLKSIZE) break;
        blksize = Math.min(n, limits.maxBlksize, MAX_BLKSIZE);
        pending.push({ name, value: '' });
        break;
      case 'tsize': // RFC 2349: a client asks with 0 and gets the real size
        pending.push({ name, value: String(size) });
        break;
      case 'timeout': // RFC 2349: 1..255 seconds
        // RFC 2349 requires the OACK to echo the client's value, so a value above our cap cannot be lowered in
        // the OACK: it is ignored (left out), as RFC 2347 allows for any option, and our default applies.
        if (n < 1 || n > 255 || n > limits.maxTimeoutSec) break;
        timeoutMs = n * 1000;
        pending.push({ name, value: String(n) });
        break;
      case 'windowsize': // RFC 7440: 1..65535
        if (n < 1 || n > 65535) break;
        windowsize = n;
        pending.push({ name, value: '' });
        break;
      default: // unknown options are ignored (RFC 2347)
        break;
    }
  }
  // Window memory is bounded per transfer; the client accepts a smaller window in the OACK.
  windowsize = Math.max(1, Math.min(windowsize, limits.maxWindowsize, Math.floor(limits.maxWindowBytes / blksize)));
  for (const p of pending) {
    if (p.name === 'blksize') oack.push({ name: 'blksize', value: String(blksize) });
    else if (p.name === 'windowsize') oack.push({ name: 'windowsize', value: String(windowsize) });
    else oack.push(p);
  }
  return { blksize, windowsize, timeoutMs, oack };
}
