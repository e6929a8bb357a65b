// Webhook deliveries: one row per (event, URL), pending until delivered or out of attempts. Promise-returning so a
// PostgreSQL store can stand in; the SQLite one does its work synchronously inside.
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
