// DHCP lease rows on either store. The pool cursor and offer holds stay in memory (src/dhcp/leases.ts); this is
// what is durable. bind() and decline() must commit before the ACK/NAK goes out, so the server awaits them.
import type { Mac } from '../../net/mac.ts';
import type { Lease, LeaseRow, LeaseState } from '../../dhcp/leases.ts';
import { toLease } from '../../dhcp/leases.ts';
import { ipToInt } from '../../dhcp/packet.ts';
import type { Sql } from '../sql.ts';

const UPSERT = `INSERT INTO dhcp_leases (ip, subnet, mac, state, expires_at, dynamic, hostname, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (ip) DO UPDATE SET subnet = excluded.subnet, mac = excluded.mac, state = excluded.state,
    expires_at = excluded.expires_at, dynamic = excluded.dynamic,
    hostname = COALESCE(excluded.hostname, dhcp_leases.hostname), updated_at = excluded.updated_at`;

export interface LeaseWrite {
  ip: string;
  subnet: string;
  mac: Mac | '';
  state: LeaseState;
  expiresAt: number;
  dynamic: boolean;
  hostname?: string;
  now: number;
}

export class LeaseRepo {
  constructor(private readonly sql: Sql) {}

  async byIp(ip: string): Promise<Lease | undefined> {
    const n = ipToInt(ip);
    if (n === undefined) return undefined;
    const r = await this.sql.get<LeaseRow>('SELECT * FROM dhcp_leases WHERE ip = ?', [n]);
    return r && toLease(r);
  }
  async byMac(mac: Mac, subnet: string): Promise<Lease | undefined> {
    const r = await this.sql.get<LeaseRow>(
      'SELECT * FROM dhcp_leases WHERE mac = ? AND subnet = ? ORDER BY updated_at DESC LIMIT 1',
      [mac, subnet],
    );
    return r && toLease(r);
  }
  /** The dynamic lease of `subnet` that ran out longest ago (skipping `skip`), to hand out again. */
  async oldestReclaimable(subnet: string, now: number, skip = 0): Promise<Lease | undefined> {
    const r = await this.sql.get<LeaseRow>(
      'SELECT * FROM dhcp_leases WHERE subnet = ? AND dynamic = 1 AND expires_at < ? ORDER BY expires_at LIMIT 1 OFFSET ?',
      [subnet, now, skip],
    );
    return r && toLease(r);
  }
  /** REQUEST committed: the lease, and the MAC's other address in this subnet back to the pool; one transaction. */
  async bind(w: LeaseWrite): Promise<void> {
    const ip = ipToInt(w.ip)!;
    await this.sql.tx(async (sql) => {
      await sql.run(UPSERT, [ip, w.subnet, w.mac, w.state, w.expiresAt, w.dynamic ? 1 : 0, w.hostname ?? null, w.now]);
      if (w.mac)
        await sql.run(
          `UPDATE dhcp_leases SET mac = '', state = 'released', expires_at = CASE WHEN expires_at < ? THEN expires_at ELSE ? END
           WHERE mac = ? AND subnet = ? AND ip <> ?`,
          [w.now, w.now, w.mac, w.subnet, ip],
        );
    });
  }
  /** RELEASE by its holder: free now, still linked to the MAC. */
  async release(ip: string, mac: Mac, now: number): Promise<boolean> {
    const n = ipToInt(ip);
    if (n === undefined) return false;
    const changed = await this.sql.run(
      `UPDATE dhcp_leases SET state = 'released', expires_at = CASE WHEN expires_at < ? THEN expires_at ELSE ? END, updated_at = ?
       WHERE ip = ? AND mac = ?`,
      [now, now, now, n, mac],
    );
    return changed > 0;
  }
  async markStatic(ip: string): Promise<void> {
    await this.sql.run('UPDATE dhcp_leases SET dynamic = 0 WHERE ip = ?', [ipToInt(ip) ?? -1]);
  }
  async list(limit = 10_000): Promise<Lease[]> {
    return (await this.sql.all<LeaseRow>('SELECT * FROM dhcp_leases ORDER BY ip LIMIT ?', [limit])).map(toLease);
  }
}
