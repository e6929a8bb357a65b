// DHCP lease rows on either store. The serving path never reads here: src/dhcp/leases.ts keeps every row in memory
// (loadAll at start) and hands this repository the writes of one event-loop turn at a time (commit), which the
// DHCP server awaits before any reply of that turn leaves. The single-row methods below are for tools and tests.
import type { Mac } from '../../net/mac.ts';
import type { Lease, LeaseRow, LeaseState } from '../../dhcp/leases.ts';
import { toLease } from '../../dhcp/leases.ts';
import { ipToInt } from '../../dhcp/packet.ts';
import type { Param, Sql } from '../sql.ts';

const INSERT = `INSERT INTO dhcp_leases (ip, subnet, mac, state, expires_at, dynamic, hostname, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (ip) DO UPDATE SET subnet = excluded.subnet, mac = excluded.mac, state = excluded.state,
    expires_at = excluded.expires_at, dynamic = excluded.dynamic,
    hostname = COALESCE(excluded.hostname, dhcp_leases.hostname), updated_at = excluded.updated_at`;
const UPSERT = INSERT;
// Kea's shared-lease rule: the row is taken only from the same client or from a lease that ran out, so the primary
// key decides a race between nodes. 0 rows changed: another client holds the address now.
const CLAIM = `${INSERT}
  WHERE dhcp_leases.mac = excluded.mac OR dhcp_leases.expires_at <= excluded.updated_at`;
// An OFFER's claim never turns a client's live bound lease back into an offer (another node may have ACKed this
// client this address after this node's offer was decided, and the release of that offer would then free it).
// 0 rows changed and that lease is the client's own: the offer stands, nothing to write.
const OFFER_CLAIM = `${INSERT}
  WHERE (dhcp_leases.mac = excluded.mac AND dhcp_leases.state <> 'bound') OR dhcp_leases.expires_at <= excluded.updated_at`;
// The client's live bound lease on another address: an OFFER of this one (not its own bound row) loses. Another
// node ACKed it that address; memory re-reads the client's rows, and its next DISCOVER is offered that one.
const OTHER_BOUND_OF_MAC = `SELECT 1 AS x FROM dhcp_leases WHERE mac = ? AND subnet = ? AND ip <> ? AND state = 'bound'
  AND expires_at > ? LIMIT 1`;
const OWN_BOUND = "SELECT 1 AS x FROM dhcp_leases WHERE ip = ? AND mac = ? AND state = 'bound'";
// A SELECT first: an UPDATE that changes the indexed mac column it searches by costs ~3x even when nothing matches.
const OTHER_OF_MAC = 'SELECT 1 AS x FROM dhcp_leases WHERE mac = ? AND subnet = ? AND ip <> ? LIMIT 1';
const EVICT_OTHER_OF_MAC = `UPDATE dhcp_leases SET mac = '', state = 'released',
    expires_at = CASE WHEN expires_at < ? THEN expires_at ELSE ? END
  WHERE mac = ? AND subnet = ? AND ip <> ?`;
const RELEASE = `UPDATE dhcp_leases SET state = 'released', expires_at = CASE WHEN expires_at < ? THEN expires_at ELSE ? END,
    updated_at = ? WHERE ip = ? AND mac = ?`;
const RELEASE_OFFER = `${RELEASE} AND state = 'offered'`;
const MARK_STATIC = 'UPDATE dhcp_leases SET dynamic = 0 WHERE ip = ?';
const BY_IP = 'SELECT * FROM dhcp_leases WHERE ip = ?';
const BY_MAC_ALL = 'SELECT * FROM dhcp_leases WHERE mac = ? AND subnet = ?';

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

/**
 * One write the DHCP engine decided on (src/dhcp/leases.ts records them, the server commits them per loop turn).
 * claim: conditional upsert (Kea's rule, for a bind), offer: the same for an OFFER (shared leases), and with `evict` the MAC's other addresses in the subnet go back to the
 * pool when it wins (`evicted`: the addresses memory already took from it, to re-read if the write fails). upsert: unconditional (reservations, DECLINE). release: only by the holder.
 */
export type LeaseIntent =
  | { kind: 'claim' | 'offer' | 'upsert'; row: LeaseRow; evict: boolean; evicted?: number[] }
  | { kind: 'release'; ip: number; mac: string; now: number; offeredOnly: boolean }
  | { kind: 'static'; ip: number };

/** What LeaseStore needs from a store: load everything once, then commit batches of intents. */
export interface LeaseWriter {
  loadAll(): Promise<LeaseRow[]>;
  /** One transaction; per intent, in order, whether it took effect (false only for a claim another client won). */
  commit(intents: readonly LeaseIntent[]): Promise<boolean[]>;
  /** Current rows of these addresses and of these (mac, subnet) pairs: to repair memory after a failed commit. */
  rows(ips: readonly number[], macs: readonly { mac: string; subnet: string }[]): Promise<LeaseRow[]>;
  list(limit?: number): Promise<Lease[]>;
}

const rowParams = (r: LeaseRow): Param[] => [
  r.ip,
  r.subnet,
  r.mac,
  r.state,
  r.expires_at,
  r.dynamic,
  r.hostname,
  r.updated_at,
];

/** Deadlock between two nodes' batches (PostgreSQL 40P01) or a serialization failure: the batch may simply run again. */
const retryable = (e: unknown): boolean => {
  const code = (e as { code?: unknown }).code;
  return code === '40P01' || code === '40001';
};

export class LeaseRepo implements LeaseWriter {
  constructor(private readonly sql: Sql) {}

  async loadAll(): Promise<LeaseRow[]> {
    return this.sql.all<LeaseRow>('SELECT * FROM dhcp_leases');
  }

  async commit(intents: readonly LeaseIntent[]): Promise<boolean[]> {
    // Rows in address order: two nodes' batches then lock rows in the same order and cannot deadlock on them
    // (the sort is stable, so writes of one address keep their order).
    const order = intents.map((_, i) => i).sort((a, b) => intentIp(intents[a]) - intentIp(intents[b]));
    for (let attempt = 0; ; attempt++) {
      try {
        if (this.sql.dialect === 'postgres') return await this.commitInOneTrip(intents, order);
        return await this.sql.tx(async (sql) => {
          const won = new Array<boolean>(intents.length).fill(true);
          for (const i of order) {
            const w = intents[i];
            // A release that changed nothing (another node bound the offer meanwhile) counts as lost: memory re-reads it.
            if (w.kind === 'release')
              won[i] = (await sql.run(w.offeredOnly ? RELEASE_OFFER : RELEASE, [w.now, w.now, w.now, w.ip, w.mac])) > 0;
            else if (w.kind === 'static') await sql.run(MARK_STATIC, [w.ip]);
            else {
              const r = w.row;
              const ownBound = w.kind === 'offer' && (await sql.get(OWN_BOUND, [r.ip, r.mac])) !== undefined;
              if (
                w.kind === 'offer' &&
                !ownBound &&
                (await sql.get(OTHER_BOUND_OF_MAC, [r.mac, r.subnet, r.ip, r.updated_at]))
              ) {
                won[i] = false;
                continue;
              }
              const q = w.kind === 'claim' ? CLAIM : w.kind === 'offer' ? OFFER_CLAIM : UPSERT;
              const changed = await sql.run(q, rowParams(r));
              if (changed === 0) won[i] = ownBound;
              else if (w.evict && r.mac && (await sql.get(OTHER_OF_MAC, [r.mac, r.subnet, r.ip])) !== undefined)
                await sql.run(EVICT_OTHER_OF_MAC, [r.updated_at, r.updated_at, r.mac, r.subnet, r.ip]);
            }
          }
          return won;
        });
      } catch (e) {
        if (attempt < 2 && retryable(e)) continue;
        throw e;
      }
    }
  }

  /**
   * PostgreSQL: the batch as one call of rackboot_commit_leases (migration 13), which runs the statements above
   * per intent in this order, in one statement's transaction. Per-statement round trips made a node's commit
   * grow with its batch, and the next batch with the commit, until replies came too late to be taken.
   */
  private async commitInOneTrip(intents: readonly LeaseIntent[], order: number[]): Promise<boolean[]> {
    const batch = order.map((i) => {
      const w = intents[i];
      if (w.kind === 'release')
        return { k: w.offeredOnly ? 'release-offer' : 'release', ip: w.ip, mac: w.mac, at: w.now };
      if (w.kind === 'static') return { k: 'static', ip: w.ip };
      const r = w.row;
      return {
        k: w.kind,
        ip: r.ip,
        subnet: r.subnet,
        mac: r.mac,
        state: r.state,
        exp: r.expires_at,
        dyn: r.dynamic,
        // jsonb refuses \u0000, which a client's hostname option may carry: stored as U+FFFD, as textSafe() does.
        host: r.hostname?.replaceAll('\0', '\ufffd') ?? null,
        at: r.updated_at,
        evict: w.evict,
      };
    });
    const res = await this.sql.get<{ won: boolean[] }>('SELECT rackboot_commit_leases(?::jsonb) AS won', [
      JSON.stringify(batch),
    ]);
    const won = new Array<boolean>(intents.length);
    order.forEach((i, j) => (won[i] = res!.won[j]));
    return won;
  }

  async rows(ips: readonly number[], macs: readonly { mac: string; subnet: string }[]): Promise<LeaseRow[]> {
    const out: LeaseRow[] = [];
    for (let i = 0; i < ips.length; i += 500) {
      const chunk = ips.slice(i, i + 500);
      out.push(
        ...(await this.sql.all<LeaseRow>(
          `SELECT * FROM dhcp_leases WHERE ip IN (${chunk.map(() => '?').join(', ')})`,
          chunk,
        )),
      );
    }
    for (const m of macs) out.push(...(await this.sql.all<LeaseRow>(BY_MAC_ALL, [m.mac, m.subnet])));
    return out;
  }

  async byIp(ip: string): Promise<Lease | undefined> {
    const n = ipToInt(ip);
    if (n === undefined) return undefined;
    const r = await this.sql.get<LeaseRow>(BY_IP, [n]);
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
  /** A lease written at once (tools, tests): the lease, and the MAC's other address in this subnet back to the pool. */
  async bind(w: LeaseWrite): Promise<void> {
    const ip = ipToInt(w.ip)!;
    const row: LeaseRow = {
      ip,
      subnet: w.subnet,
      mac: w.mac,
      state: w.state,
      expires_at: w.expiresAt,
      dynamic: w.dynamic ? 1 : 0,
      hostname: w.hostname ?? null,
      updated_at: w.now,
    };
    await this.commit([{ kind: 'upsert', row, evict: !!w.mac }]);
  }
  /** RELEASE by its holder: free now, still linked to the MAC. */
  async release(ip: string, mac: Mac, now: number): Promise<boolean> {
    const n = ipToInt(ip);
    if (n === undefined) return false;
    return (await this.sql.run(RELEASE, [now, now, now, n, mac])) > 0;
  }
  async markStatic(ip: string): Promise<void> {
    await this.sql.run(MARK_STATIC, [ipToInt(ip) ?? -1]);
  }
  async list(limit = 10_000): Promise<Lease[]> {
    return (await this.sql.all<LeaseRow>('SELECT * FROM dhcp_leases ORDER BY ip LIMIT ?', [limit])).map(toLease);
  }
}

/** The address an intent writes. */
export function intentIp(w: LeaseIntent): number {
  return 'row' in w ? w.row.ip : w.ip;
}
