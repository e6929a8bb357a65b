// The append-only timeline of each host: every boot-path request, callback and state change.
import type { Mac } from '../net/mac.ts';

export interface HostEvent {
  id: number;
  mac: Mac;
  buildId?: number;
  at: number;
  type: string;
  clientIp?: string;
  status?: string;
  bytes?: number;
  detail?: Record<string, unknown>;
  /** The node that saw it (config nodeId); undefined for events written before nodes were recorded. */
  node?: string;
}

export type NewEvent = Omit<HostEvent, 'id' | 'at' | 'node'> & { at?: number };

export interface EventLimits {
  /** Events older than this are deleted by prune(). */
  maxAgeMs: number;
  /** Events kept per host (the newest). */
  maxPerHost: number;
  /** Largest detail JSON stored; strings in it are cut first, then arrays shortened, then it is replaced by a marker. */
  maxDetailBytes: number;
  /** Request-driven events a second per host, after a burst of burstPerHost (src/store/event-throttle.ts). */
  ratePerHost: number;
  burstPerHost: number;
  /** An event identical to its host's last one within this long is counted as a repeat, not written (0: never). */
  repeatWindowMs: number;
}

export const DEFAULT_EVENT_LIMITS: EventLimits = {
  maxAgeMs: 90 * 86_400_000,
  maxPerHost: 2000,
  maxDetailBytes: 4096,
  ratePerHost: 2,
  burstPerHost: 100,
  repeatWindowMs: 5000,
};

/** Longest type, client address and status kept (bytes of UTF-8); a string in detail is cut at DETAIL_STRING_MAX. */
const TYPE_MAX = 64;
const IP_MAX = 64;
const STATUS_MAX = 256;
const DETAIL_STRING_MAX = 256;
/** A host's count is pruned in the write batch once this many of its events arrived since its last prune. */
export const PRUNE_EVERY = 100;

/** `s` cut to at most `max` bytes of UTF-8 on a character boundary, with a marker saying how long it was. */
export function cutUtf8(s: string, max: number): string {
  if (s.length <= max / 3 || Buffer.byteLength(s) <= max) return s;
  const marker = ` [cut: ${Buffer.byteLength(s)} bytes]`;
  const buf = Buffer.from(s);
  let end = Math.max(0, max - marker.length);
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--; // not inside a multi-byte character
  return buf.subarray(0, end).toString() + marker;
}

function cutStrings(v: unknown, max: number, depth = 0): unknown {
  if (typeof v === 'string') return cutUtf8(v, max);
  if (depth > 4 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => cutStrings(x, max, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[cutUtf8(k, 64)] = cutStrings(x, max, depth + 1);
  return out;
}

/**
 * The detail as stored: JSON of at most `maxBytes`. Header values and paths come from the network, so one
 * request must not store more than a bounded amount (2,000 requests with huge headers added 28 MB).
 * Arrays (the syslog tail of a failed build) lose their oldest items first: the last lines say why.
 */
export function boundDetail(detail: Record<string, unknown>, maxBytes: number): string {
  let json = JSON.stringify(detail);
  if (Buffer.byteLength(json) <= maxBytes) return json;
  const cut = cutStrings(detail, DETAIL_STRING_MAX) as Record<string, unknown>;
  json = JSON.stringify(cut);
  for (let guard = 0; Buffer.byteLength(json) > maxBytes && guard < 10_000; guard++) {
    const longest = Object.entries(cut)
      .filter(([, x]) => Array.isArray(x) && x.length > 0)
      .sort((a, b) => (b[1] as unknown[]).length - (a[1] as unknown[]).length)[0];
    if (!longest) break;
    (longest[1] as unknown[]).shift();
    json = JSON.stringify(cut);
  }
  if (Buffer.byteLength(json) <= maxBytes) return json;
  return JSON.stringify({ truncated: true, bytes: Buffer.byteLength(JSON.stringify(detail)) });
}

/** An event as stored: every string cut to its bound (they come from the network). */
/** `node`: the node that saw it (config nodeId). */
export function boundEvent(e: NewEvent, at: number, maxDetailBytes: number, node?: string) {
  return {
    mac: e.mac as string,
    buildId: e.buildId ?? null,
    at,
    type: cutUtf8(e.type, TYPE_MAX),
    clientIp: e.clientIp === undefined ? null : cutUtf8(e.clientIp, IP_MAX),
    status: e.status === undefined || e.status === null ? null : cutUtf8(String(e.status), STATUS_MAX),
    bytes: e.bytes ?? null,
    detail: e.detail ? boundDetail(e.detail, maxDetailBytes) : null,
    node: node ?? null,
  };
}

export interface EventRow {
  id: number;
  mac: string;
  build_id: number | null;
  at: number;
  type: string;
  client_ip: string | null;
  status: string | null;
  bytes: number | null;
  detail: string | null;
  node: string | null;
}

export function eventFromRow(r: EventRow): HostEvent {
  const e: HostEvent = { id: r.id, mac: r.mac as Mac, at: r.at, type: r.type };
  if (r.build_id !== null) e.buildId = r.build_id;
  if (r.client_ip !== null) e.clientIp = r.client_ip;
  if (r.status !== null) e.status = r.status;
  if (r.bytes !== null) e.bytes = r.bytes;
  if (r.detail !== null) e.detail = JSON.parse(r.detail) as Record<string, unknown>;
  if (r.node !== null) e.node = r.node;
  return e;
}
