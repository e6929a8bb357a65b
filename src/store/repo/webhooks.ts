// Webhook deliveries on either store (src/store/webhooks.ts has the shapes; src/webhooks sends them).
import type { Mac } from '../../net/mac.ts';
import type { Param, Sql } from '../sql.ts';
import {
  deliveryFromRow,
  type AttemptResult,
  type Delivery,
  type DeliveryRow,
  type DeliveryStatus,
  type NewDelivery,
  type WebhookDeliveryStore,
} from '../webhooks.ts';

export class WebhookDeliveryRepo implements WebhookDeliveryStore {
  constructor(private readonly sql: Sql) {}

  async add(d: NewDelivery): Promise<Delivery> {
    const r = await this.sql.get<DeliveryRow>(
      `INSERT INTO webhook_deliveries (uid, url, event, mac, build_id, payload, status, next_at, created_at, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      [
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
      ],
    );
    return deliveryFromRow(r!);
  }

  async pendingCount(): Promise<number> {
    const r = await this.sql.get<{ n: number }>(
      "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'",
    );
    return Number(r?.n ?? 0);
  }

  async due(now: number, limit: number, busy: ReadonlySet<number>): Promise<Delivery[]> {
    const rows = await this.sql.all<DeliveryRow>(
      "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?",
      [now, limit + busy.size],
    );
    return rows
      .filter((r) => !busy.has(r.id))
      .slice(0, limit)
      .map(deliveryFromRow);
  }

  async nextDueAt(): Promise<number | undefined> {
    const r = await this.sql.get<{ at: number | null }>(
      "SELECT min(next_at) AS at FROM webhook_deliveries WHERE status = 'pending'",
    );
    return r?.at == null ? undefined : Number(r.at);
  }

  async recordAttempt(id: number, r: AttemptResult): Promise<void> {
    await this.sql.run(
      `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_at = ?, last_status = ?, last_error = ?,
       last_ms = ? WHERE id = ?`,
      [r.status, r.attempts, r.nextAt, r.lastAt, r.lastStatus ?? null, r.lastError ?? null, r.lastMs, id],
    );
  }

  async list(
    opts: { limit?: number; mac?: Mac; status?: DeliveryStatus; beforeId?: number } = {},
  ): Promise<Delivery[]> {
    const where: string[] = [];
    const args: Param[] = [];
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
    const rows = await this.sql.all<DeliveryRow>(
      `SELECT * FROM webhook_deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      [...args, limit],
    );
    return rows.map(deliveryFromRow);
  }

  async prune(keep: number): Promise<number> {
    return this.sql.run(
      `DELETE FROM webhook_deliveries WHERE status != 'pending' AND id <= (
         SELECT id FROM webhook_deliveries WHERE status != 'pending' ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      [keep],
    );
  }
}
