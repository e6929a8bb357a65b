// The nodes table on either store (src/store/nodes.ts has the shapes and the alive rule).
import type { Sql } from '../sql.ts';
import {
  FORGET_AFTER_MS,
  HEARTBEAT_MS,
  nodeFromRow,
  type NodeInfo,
  type NodeRegistry,
  type NodeRow,
  type NodeView,
} from '../nodes.ts';

export class NodeRepo implements NodeRegistry {
  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
    private readonly heartbeatMs = HEARTBEAT_MS,
  ) {}

  async register(n: Omit<NodeInfo, 'startedAt' | 'heartbeatAt' | 'stoppedAt'>): Promise<void> {
    const now = this.now();
    await this.sql.run(
      `INSERT INTO nodes (id, site, version, address, public_url, ports, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET site = excluded.site, version = excluded.version, address = excluded.address,
         public_url = excluded.public_url, ports = excluded.ports, started_at = excluded.started_at,
         heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
      [n.id, n.site ?? null, n.version, n.address, n.publicUrl, JSON.stringify(n.ports), now, now],
    );
  }
  /** `ports` absent keeps the stored ones. */
  async heartbeat(id: string, ports?: NodeInfo['ports']): Promise<void> {
    const now = this.now();
    await this.sql.run(
      'UPDATE nodes SET heartbeat_at = ?, ports = COALESCE(?, ports), stopped_at = NULL WHERE id = ?',
      [now, ports ? JSON.stringify(ports) : null, id],
    );
    await this.sql.run('DELETE FROM nodes WHERE heartbeat_at < ?', [now - FORGET_AFTER_MS]);
  }
  async stopped(id: string): Promise<void> {
    await this.sql.run('UPDATE nodes SET stopped_at = ? WHERE id = ?', [this.now(), id]);
  }
  async list(): Promise<NodeView[]> {
    const now = this.now();
    const [rows, held] = await Promise.all([
      this.sql.all<NodeRow>('SELECT * FROM nodes ORDER BY id'),
      this.sql.all<{ role: string; node: string }>(
        'SELECT role, node FROM leaders WHERE expires_at > ? ORDER BY role',
        [now],
      ),
    ]);
    return rows.map((r) => ({
      ...nodeFromRow(r, now, this.heartbeatMs),
      duties: held.filter((l) => l.node === r.id).map((l) => l.role),
    }));
  }
}
