// Machines that PXE-booted but are not hosts: what DHCP saw of them. Anyone on the provisioning network can
// send DISCOVERs with made-up MACs, so the table is bounded: past `maxRows` the least recently seen go first.
import type { DiscoveredMachine } from '../dhcp/engine.ts';
import type { Db } from './db.ts';
import type { Mac } from '../net/mac.ts';

// What the DHCP engine reports of a machine is what is kept (a type only: the store runs no DHCP code).
export type { DiscoveredMachine };
export interface DiscoveredRow {
  mac: string;
  arch: number | null;
  uuid: string | null;
  ipxe: number;
  ip: string | null;
  firstSeen: number;
  lastSeen: number;
}

export const DISCOVERED_MAX_ROWS = 10_000;
/** Pruning scans the table: do it once per this many new sightings, not per packet. */
const PRUNE_EVERY = 100;

export class DiscoveredStore {
  private readonly upsertStmt;
  private readonly pruneStmt;
  private readonly listStmt;
  private readonly getStmt;
  private sincePrune = 0;

  constructor(
    db: Db,
    private readonly maxRows = DISCOVERED_MAX_ROWS,
    private readonly now: () => number = Date.now,
  ) {
    this.upsertStmt =
      db.prepare(`INSERT INTO discovered (mac, arch, uuid, ipxe, ip, first_seen, last_seen) VALUES (@mac, @arch, @uuid, @ipxe, @ip, @now, @now)
      ON CONFLICT(mac) DO UPDATE SET arch = COALESCE(excluded.arch, arch), uuid = COALESCE(excluded.uuid, uuid), ipxe = excluded.ipxe, ip = COALESCE(excluded.ip, ip), last_seen = excluded.last_seen`);
    this.pruneStmt = db.prepare<[number]>(
      'DELETE FROM discovered WHERE mac IN (SELECT mac FROM discovered ORDER BY last_seen DESC, mac LIMIT -1 OFFSET ?)',
    );
    this.listStmt = db.prepare<[number], DiscoveredRow>(
      'SELECT mac, arch, uuid, ipxe, ip, first_seen AS firstSeen, last_seen AS lastSeen FROM discovered ORDER BY last_seen DESC LIMIT ?',
    );
    this.getStmt = db.prepare<[string], DiscoveredRow>(
      'SELECT mac, arch, uuid, ipxe, ip, first_seen AS firstSeen, last_seen AS lastSeen FROM discovered WHERE mac = ?',
    );
  }

  seen(m: DiscoveredMachine): void {
    this.upsertStmt.run({
      mac: m.mac,
      arch: m.arch ?? null,
      uuid: m.uuid ?? null,
      ipxe: m.ipxe ? 1 : 0,
      ip: m.ip ?? null,
      now: this.now(),
    });
    if (++this.sincePrune >= PRUNE_EVERY) this.prune();
  }

  prune(): void {
    this.sincePrune = 0;
    this.pruneStmt.run(this.maxRows);
  }

  get(mac: Mac): DiscoveredRow | undefined {
    return this.getStmt.get(mac);
  }

  list(limit = 1000): DiscoveredRow[] {
    return this.listStmt.all(limit);
  }
}
