// The append-only timeline of each host: every boot-path request, callback and state change.
import type { Db } from './db.ts';
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
}

export type NewEvent = Omit<HostEvent, 'id' | 'at'> & { at?: number };

interface EventRow { id: number; mac: string; build_id: number | null; at: number; type: string; client_ip: string | null; status: string | null; bytes: number | null; detail: string | null }

function fromRow(r: EventRow): HostEvent {
  const e: HostEvent = { id: r.id, mac: r.mac as Mac, at: r.at, type: r.type };
  if (r.build_id !== null) e.buildId = r.build_id;
  if (r.client_ip !== null) e.clientIp = r.client_ip;
  if (r.status !== null) e.status = r.status;
  if (r.bytes !== null) e.bytes = r.bytes;
  if (r.detail !== null) e.detail = JSON.parse(r.detail) as Record<string, unknown>;
  return e;
}

export class EventLog {
  private readonly insertStmt;
  private readonly forMac;
  private readonly listeners = new Set<(e: HostEvent) => void>();

  constructor(db: Db, private readonly now: () => number = Date.now) {
    this.insertStmt = db.prepare(`INSERT INTO events (mac, build_id, at, type, client_ip, status, bytes, detail)
      VALUES (@mac, @buildId, @at, @type, @clientIp, @status, @bytes, @detail)`);
    this.forMac = db.prepare<[string, number], EventRow>('SELECT * FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?');
  }

  append(e: NewEvent): HostEvent {
    const at = e.at ?? this.now();
    const info = this.insertStmt.run({
      mac: e.mac, buildId: e.buildId ?? null, at, type: e.type, clientIp: e.clientIp ?? null,
      status: e.status ?? null, bytes: e.bytes ?? null, detail: e.detail ? JSON.stringify(e.detail) : null,
    });
    const saved: HostEvent = { ...e, id: Number(info.lastInsertRowid), at };
    for (const l of this.listeners) l(saved);
    return saved;
  }

  /** Oldest first, the most recent `limit` events. */
  timeline(mac: Mac, limit = 500): HostEvent[] {
    return this.forMac.all(mac, limit).map(fromRow).reverse();
  }

  subscribe(listener: (e: HostEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
