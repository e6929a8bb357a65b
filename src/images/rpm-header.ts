// The few RPM header tags an import needs (name, version, release, arch), read from the first bytes
// of a package file. Pure: bytes in, a result out; never throws on bad bytes. The payload itself is
// read by bsdtar. Format: lead (96 bytes), signature header (padded to 8), main header; each header
// is magic 8e ad e8 01, 4 reserved bytes, index count, data size, 16-byte index entries, then data.
export interface RpmInfo {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  arch?: string;
  payloadCompressor?: string;
}

export type RpmHeaderResult =
  { ok: true; info: RpmInfo } | { ok: false; error: string } | { ok: false; needMore: number };

const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = 0x8eade801;
const TAG = { name: 1000, version: 1001, release: 1002, epoch: 1003, arch: 1022, payloadCompressor: 1125 } as const;
const TYPE_INT32 = 4,
  TYPE_STRING = 6;

/** Parses the lead and both headers; `needMore` says how many bytes it needs when `buf` is too short. */
export function parseRpmHeader(buf: Buffer): RpmHeaderResult {
  if (buf.length < 96) return { ok: false, needMore: 96 + 16 };
  if (buf.readUInt32BE(0) !== LEAD_MAGIC) return { ok: false, error: 'not an RPM package (bad lead magic)' };
  const sig = headerAt(buf, 96);
  if (sig.kind === 'error') return { ok: false, error: `RPM signature header: ${sig.error}` };
  if (sig.kind === 'more') return { ok: false, needMore: sig.needMore };
  const main = headerAt(buf, 96 + align8(sig.length));
  if (main.kind === 'error') return { ok: false, error: `RPM header: ${main.error}` };
  if (main.kind === 'more') return { ok: false, needMore: main.needMore };
  const str = (tag: number) => main.strings.get(tag);
  const name = str(TAG.name),
    version = str(TAG.version),
    release = str(TAG.release);
  if (!name || !version || !release) return { ok: false, error: 'RPM header has no name, version or release' };
  const info: RpmInfo = { name, version, release };
  const epoch = main.ints.get(TAG.epoch);
  if (epoch !== undefined) info.epoch = epoch;
  const arch = str(TAG.arch);
  if (arch) info.arch = arch;
  const pc = str(TAG.payloadCompressor);
  if (pc) info.payloadCompressor = pc;
  return { ok: true, info };
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

type HeaderAt =
  | { kind: 'ok'; length: number; strings: Map<number, string>; ints: Map<number, number> }
  | { kind: 'error'; error: string }
  | { kind: 'more'; needMore: number };

function headerAt(buf: Buffer, at: number): HeaderAt {
  if (buf.length < at + 16) return { kind: 'more', needMore: at + 16 };
  if (buf.readUInt32BE(at) !== HEADER_MAGIC) return { kind: 'error', error: 'bad header magic' };
  const count = buf.readUInt32BE(at + 8);
  const size = buf.readUInt32BE(at + 12);
  if (count > 100_000 || size > 64 * 1024 * 1024)
    return { kind: 'error', error: `implausible header (${count} entries, ${size} bytes)` };
  const indexStart = at + 16;
  const dataStart = indexStart + count * 16;
  const end = dataStart + size;
  if (buf.length < end) return { kind: 'more', needMore: end };
  const strings = new Map<number, string>();
  const ints = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const e = indexStart + i * 16;
    const tag = buf.readUInt32BE(e),
      type = buf.readUInt32BE(e + 4),
      offset = buf.readUInt32BE(e + 8);
    if (offset >= size) continue;
    const p = dataStart + offset;
    if (type === TYPE_STRING) {
      const nul = buf.indexOf(0, p);
      if (nul < 0 || nul > end) return { kind: 'error', error: `string of tag ${tag} runs past the header` };
      strings.set(tag, buf.toString('utf8', p, nul));
    } else if (type === TYPE_INT32 && p + 4 <= end) {
      ints.set(tag, buf.readUInt32BE(p));
    }
  }
  return { kind: 'ok', length: 16 + count * 16 + size, strings, ints };
}
