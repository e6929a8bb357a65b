// Webhook deliveries: one row per (event, URL), pending until delivered or out of attempts. Promise-returning so a
// PostgreSQL store can stand in; the SQLite one does its work synchronously inside.
import type { Db } from './db.ts';
import type { Mac } from '../net/mac.ts';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'dropped';

export interface Delivery {
  id: number;
  uid: string;
  url: string;
  event: string;
  mac?: Mac;
  buildId?: number;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  nextAt: number;
  createdAt: number;
  lastAt?: number;
  /** HTTP status of the last attempt, when the receiver answered. */
  lastStatus?: number;
  lastError?: string;
  lastMs?: number;
}

export type NewDelivery = Pick<
  Delivery,
  'uid' | 'url' | 'event' | 'mac' | 'buildId' | 'payload' | 'status' | 'nextAt'
> & {
  createdAt: number;
  lastError?: string;
};

export interface AttemptResult {
  status: DeliveryStatus;
  attempts: number;
  nextAt: number;
  lastAt: number;
  lastStatus?: number;
  lastError?: string;
  lastMs: number;
}

export interface WebhookDeliveryStore {
  add(d: NewDelivery): Promise<Delivery>;
  pendingCount(): Promise<number>;
  /** Pending deliveries due at `now`, oldest first, leaving out `busy` ids (attempts in flight). */
  due(now: number, limit: number, busy: ReadonlySet<number>): Promise<Delivery[]>;
  nextDueAt(): Promise<number | undefined>;
  recordAttempt(id: number, r: AttemptResult): Promise<void>;
  /** Newest first; `beforeId`: only older than that delivery (the next page). */
  list(opts?: { limit?: number; mac?: Mac; status?: DeliveryStatus; beforeId?: number }): Promise<Delivery[]>;
  /** Keeps the newest `keep` finished deliveries (pending ones are never pruned). */
  prune(keep: number): Promise<number>;
}

export interface DeliveryRow {
  id: number;
  uid: string;
  url: string;
  event: string;
  mac: string | null;
  build_id: number | null;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  next_at: number;
  created_at: number;
  last_at: number | null;
  last_status: number | null;
  last_error: string | null;
  last_ms: number | null;
}

export function deliveryFromRow(r: DeliveryRow): Delivery {
  const d: Delivery = {
    id: r.id,
    uid: r.uid,
    url: r.url,
    event: r.event,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    status: r.status,
    attempts: r.attempts,
    nextAt: r.next_at,
    createdAt: r.created_at,
  };
  if (r.mac !== null) d.mac = r.mac as Mac;
  if (r.build_id !== null) d.buildId = r.build_id;
  if (r.last_at !== null) d.lastAt = r.last_at;
  if (r.last_status !== null) d.lastStatus = r.last_status;
  if (r.last_error !== null) d.lastError = r.last_error;
  if (r.last_ms !== null) d.lastMs = r.last_ms;
  return d;
}

export class SqliteWebhookDeliveryStore implements WebhookDeliveryStore {
  constructor(private readonly db: Db) {}

  add(d: NewDelivery): Promise<Delivery> {
    const r = this.db
      .prepare<unknown[], DeliveryRow>(
        `INSERT INTO webhook_deliveries (uid, url, event, mac, build_id, payload, status, next_at, created_at, last_error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .get(
        d.uid,
        d.url,
        d.event,
        d.mac ?? null,
        d.buildId ?? null,
        JSON.stringify(d.payload),
        d.status,
        d.nextAt,
        d.createdAt,
        d.lastError ?? null,
      )!;
    return Promise.resolve(deliveryFromRow(r));
  }

  pendingCount(): Promise<number> {
    const r = this.db
      .prepare<[], { n: number }>("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'")
      .get()!;
    return Promise.resolve(r.n);
  }

  due(now: number, limit: number, busy: ReadonlySet<number>): Promise<Delivery[]> {
    const rows = this.db
      .prepare<[number, number], DeliveryRow>(
        "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?",
      )
      .all(now, limit + busy.size);
    return Promise.resolve(
      rows
        .filter((r) => !busy.has(r.id))
        .slice(0, limit)
        .map(deliveryFromRow),
    );
  }

  nextDueAt(): Promise<number | undefined> {
    const r = this.db
      .prepare<[], { at: number | null }>("SELECT min(next_at) AS at FROM webhook_deliveries WHERE status = 'pending'")
      .get();
    return Promise.resolve(r?.at ?? undefined);
  }

  recordAttempt(id: number, r: AttemptResult): Promise<void> {
    this.db
      .prepare(
        `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_at = ?, last_status = ?, last_error = ?,
         last_ms = ? WHERE id = ?`,
      )
      .run(r.status, r.attempts, r.nextAt, r.lastAt, r.lastStatus ?? null, r.lastError ?? null, r.lastMs, id);
    return Promise.resolve();
  }

  list(opts: { limit?: number; mac?: Mac; status?: DeliveryStatus; beforeId?: number } = {}): Promise<Delivery[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.beforeId !== undefined) {
      where.push('id < ?');
      args.push(opts.beforeId);
    }
    if (opts.mac) {
      where.push('mac = ?');
      args.push(opts.mac);
    }
    if (opts.status) {
      where.push('status = ?');
      args.push(opts.status);
    }
    // 1001: a page of 1000 and one more that tells whether a next page exists.
    const limit = Math.min(Math.max(1, opts.limit ?? 100), 1001);
    const rows = this.db
      .prepare<unknown[], DeliveryRow>(
        `SELECT * FROM webhook_deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      )
      .all(...args, limit);
    return Promise.resolve(rows.map(deliveryFromRow));
  }

  prune(keep: number): Promise<number> {
    const r = this.db
      .prepare(
        `DELETE FROM webhook_deliveries WHERE status != 'pending' AND id <= (
           SELECT id FROM webhook_deliveries WHERE status != 'pending' ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      )
      .run(keep);
    return Promise.resolve(r.changes);
  }
}
