// Host records on either store (validation lives in src/hosts/input.ts).
import type { Mac } from '../../net/mac.ts';
import type { Host, HostFields, HostRow } from '../hosts.ts';
import { hostFromRow, hostToRow } from '../hosts.ts';
import type { Param, Sql } from '../sql.ts';
import type { ChangeFeed } from '../changes-feed.ts';

const COLUMNS = 'mac, hostname, profile, ip, netmask, gateway, nameservers, domain, rack, position, uuid, site, params';

function values(h: HostFields, now: number): Param[] {
  const r = hostToRow(h, now);
  return [
    r.mac,
    r.hostname,
    r.profile,
    r.ip,
    r.netmask,
    r.gateway,
    r.nameservers,
    r.domain,
    r.rack,
    r.position,
    r.uuid,
    r.site,
    r.params,
  ];
}

export class HostRepo {
  constructor(
    private readonly sql: Sql,
    private readonly feed: ChangeFeed,
    private readonly now: () => number = Date.now,
  ) {}

  private async one(where: string, arg: Param, sql = this.sql): Promise<Host | undefined> {
    const r = await sql.get<HostRow>(`SELECT * FROM hosts WHERE ${where} = ?`, [arg]);
    return r && hostFromRow(r);
  }
  get(mac: Mac): Promise<Host | undefined> {
    return this.one('mac', mac);
  }
  getByIp(ip: string): Promise<Host | undefined> {
    return this.one('ip', ip);
  }
  async getByUuid(uuid: string): Promise<Host | undefined> {
    return (await this.listByUuid(uuid))[0];
  }
  /** Every host with that SMBIOS UUID (up to 16): UUIDs need not be unique. */
  async listByUuid(uuid: string): Promise<Host[]> {
    const rows = await this.sql.all<HostRow>('SELECT * FROM hosts WHERE uuid = ? ORDER BY mac LIMIT 16', [
      uuid.toLowerCase(),
    ]);
    return rows.map(hostFromRow);
  }
  getByHostname(name: string): Promise<Host | undefined> {
    return this.one('hostname', name);
  }
  async list(): Promise<Host[]> {
    return (await this.sql.all<HostRow>('SELECT * FROM hosts ORDER BY rack, position, hostname')).map(hostFromRow);
  }
  async insert(h: HostFields): Promise<Host> {
    await this.insertIn(this.sql, h);
    await this.feed.publish({ kind: 'host', mac: h.mac });
    return (await this.get(h.mac))!;
  }
  private async insertIn(sql: Sql, h: HostFields): Promise<void> {
    const now = this.now();
    await sql.run(
      `INSERT INTO hosts (${COLUMNS}, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [...values(h, now), now, now],
    );
  }
  async update(h: HostFields): Promise<Host> {
    const [mac, ...rest] = values(h, this.now());
    await this.sql.run(
      `UPDATE hosts SET hostname = ?, profile = ?, ip = ?, netmask = ?, gateway = ?, nameservers = ?, domain = ?,
       rack = ?, position = ?, uuid = ?, site = ?, params = ?, updated_at = ? WHERE mac = ?`,
      [...rest, this.now(), mac],
    );
    await this.feed.publish({ kind: 'host', mac: h.mac });
    return (await this.get(h.mac))!;
  }
  async delete(mac: Mac): Promise<boolean> {
    const n = await this.sql.run('DELETE FROM hosts WHERE mac = ?', [mac]);
    if (n) await this.feed.publish({ kind: 'host', mac });
    return n > 0;
  }
  /** Several inserts in one transaction: a rack import lands whole or not at all. */
  async insertMany(hosts: HostFields[]): Promise<void> {
    await this.sql.tx(async (sql) => {
      for (const h of hosts) await this.insertIn(sql, h);
    });
    for (const h of hosts) await this.feed.publish({ kind: 'host', mac: h.mac });
  }
}
