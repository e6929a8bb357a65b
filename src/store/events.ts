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

/**
 * Events are written in batches, one transaction per turn of the event loop: a rack booting at once
 * makes thousands per second, and one commit each would cost more than serving the request.
 * A kill -9 can lose the events of the current turn, never a build record (those commit at once).
 */
export class EventLog {
  private readonly insertStmt;
  private readonly forMac;
  private readonly listeners = new Set<(e: HostEvent) => void>();
  private queue: Record<string, unknown>[] = [];
  private flushScheduled = false;
  private readonly insertBatch;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    this.insertStmt = db.prepare(`INSERT INTO events (mac, build_id, at, type, client_ip, status, bytes, detail)
      VALUES (@mac, @buildId, @at, @type, @clientIp, @status, @bytes, @detail)`);
    this.forMac = db.prepare<[string, number], EventRow>('SELECT * FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?');
    this.insertBatch = db.transaction((rows: Record<string, unknown>[]) => { for (const r of rows) this.insertStmt.run(r); });
  }

  append(e: NewEvent): HostEvent {
    const at = e.at ?? this.now();
    this.queue.push({
      mac: e.mac, buildId: e.buildId ?? null, at, type: e.type, clientIp: e.clientIp ?? null,
      status: e.status ?? null, bytes: e.bytes ?? null, detail: e.detail ? JSON.stringify(e.detail) : null,
    });
    if (!this.flushScheduled) { this.flushScheduled = true; setImmediate(() => this.flush()); }
    const saved: HostEvent = { ...e, id: 0, at };
    for (const l of this.listeners) l(saved);
    return saved;
  }

  /** Writes queued events now (reads and shutdown call it). */
  flush(): void {
    this.flushScheduled = false;
    if (!this.queue.length || !this.db.open) return;
    const rows = this.queue;
    this.queue = [];
    this.insertBatch(rows);
  }

  /** Oldest first, the most recent `limit` events. */
  timeline(mac: Mac, limit = 500): HostEvent[] {
    this.flush();
    return this.forMac.all(mac, limit).map(fromRow).reverse();
  }

  subscribe(listener: (e: HostEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
