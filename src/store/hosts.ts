// Host records. Validation of what goes in lives in src/hosts/input.ts; this is storage only.
import type { Db } from './db.ts';
import type { Mac } from '../net/mac.ts';

export interface Host {
  mac: Mac;
  hostname: string;
  profile: string;
  ip?: string;
  netmask?: string;
  gateway?: string;
  nameservers: string[];
  domain?: string;
  rack?: string;
  position?: string;
  uuid?: string;
  /** The site whose node serves this host (src/hosts/site.ts); undefined: every node. */
  site?: string;
  params: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export type HostFields = Omit<Host, 'createdAt' | 'updatedAt'>;

export interface HostRow {
  mac: string;
  hostname: string;
  profile: string;
  ip: string | null;
  netmask: string | null;
  gateway: string | null;
  nameservers: string | null;
  domain: string | null;
  rack: string | null;
  position: string | null;
  uuid: string | null;
  site: string | null;
  params: string;
  created_at: number;
  updated_at: number;
}

export function hostFromRow(r: HostRow): Host {
  return {
    mac: r.mac as Mac,
    hostname: r.hostname,
    profile: r.profile,
    ip: r.ip ?? undefined,
    netmask: r.netmask ?? undefined,
    gateway: r.gateway ?? undefined,
    nameservers: r.nameservers ? r.nameservers.split(',') : [],
    domain: r.domain ?? undefined,
    rack: r.rack ?? undefined,
    position: r.position ?? undefined,
    uuid: r.uuid ?? undefined,
    ...(r.site !== null ? { site: r.site } : {}),
    params: JSON.parse(r.params) as Record<string, string>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function hostToRow(h: HostFields, now: number) {
  return {
    mac: h.mac,
    hostname: h.hostname,
    profile: h.profile,
    ip: h.ip ?? null,
    netmask: h.netmask ?? null,
    gateway: h.gateway ?? null,
    nameservers: h.nameservers.length ? h.nameservers.join(',') : null,
    domain: h.domain ?? null,
    rack: h.rack ?? null,
    position: h.position ?? null,
    uuid: h.uuid ?? null,
    site: h.site ?? null,
    params: JSON.stringify(h.params),
    now,
  };
}

export class HostStore {
  private readonly byMac;
  private readonly byIp;
  private readonly byUuid;
  private readonly allByUuid;
  private readonly byHostname;
  private readonly all;
  private readonly insertStmt;
  private readonly updateStmt;
  private readonly deleteStmt;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.byMac = db.prepare<[string], HostRow>('SELECT * FROM hosts WHERE mac = ?');
    this.byIp = db.prepare<[string], HostRow>('SELECT * FROM hosts WHERE ip = ?');
    this.byUuid = db.prepare<[string], HostRow>('SELECT * FROM hosts WHERE uuid = ?');
    this.allByUuid = db.prepare<[string], HostRow>('SELECT * FROM hosts WHERE uuid = ? ORDER BY mac LIMIT 16');
    this.byHostname = db.prepare<[string], HostRow>('SELECT * FROM hosts WHERE hostname = ?');
    this.all = db.prepare<[], HostRow>('SELECT * FROM hosts ORDER BY rack, position, hostname');
    this.insertStmt =
      db.prepare(`INSERT INTO hosts (mac, hostname, profile, ip, netmask, gateway, nameservers, domain, rack, position, uuid, site, params, created_at, updated_at)
      VALUES (@mac, @hostname, @profile, @ip, @netmask, @gateway, @nameservers, @domain, @rack, @position, @uuid, @site, @params, @now, @now)`);
    this.updateStmt =
      db.prepare(`UPDATE hosts SET hostname=@hostname, profile=@profile, ip=@ip, netmask=@netmask, gateway=@gateway,
      nameservers=@nameservers, domain=@domain, rack=@rack, position=@position, uuid=@uuid, site=@site, params=@params, updated_at=@now WHERE mac=@mac`);
    this.deleteStmt = db.prepare('DELETE FROM hosts WHERE mac = ?');
  }

  get(mac: Mac): Host | undefined {
    const r = this.byMac.get(mac);
    return r && hostFromRow(r);
  }
  getByIp(ip: string): Host | undefined {
    const r = this.byIp.get(ip);
    return r && hostFromRow(r);
  }
  getByUuid(uuid: string): Host | undefined {
    const r = this.byUuid.get(uuid.toLowerCase());
    return r && hostFromRow(r);
  }
  /** Every host with that SMBIOS UUID (up to 16): UUIDs need not be unique, and a UUID-named config is served only for a unique one. */
  listByUuid(uuid: string): Host[] {
    return this.allByUuid.all(uuid.toLowerCase()).map(hostFromRow);
  }
  getByHostname(name: string): Host | undefined {
    const r = this.byHostname.get(name);
    return r && hostFromRow(r);
  }
  list(): Host[] {
    return this.all.all().map(hostFromRow);
  }
  insert(h: HostFields): Host {
    this.insertStmt.run(hostToRow(h, this.now()));
    return this.get(h.mac)!;
  }
  update(h: HostFields): Host {
    this.updateStmt.run(hostToRow(h, this.now()));
    return this.get(h.mac)!;
  }
  delete(mac: Mac): boolean {
    return this.deleteStmt.run(mac).changes > 0;
  }
  /** Several inserts in one transaction: a rack import lands whole or not at all. */
  insertMany(hosts: HostFields[]): void {
    this.db.transaction(() => {
      for (const h of hosts) this.insert(h);
    })();
  }
}
