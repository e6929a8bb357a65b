// Leases on the core's SQLite database (bound leases) plus offer holds in memory. One row per address ever handed out (ip is the rowid), so a
// returning MAC gets its old address back and every lookup is an index seek: by ip (rowid), by MAC
// (index), and "oldest reclaimable address" (index on subnet, dynamic, expires_at). Fresh addresses
// come from a cursor that only moves forward over the pool, so a pool is walked once per process,
// never per packet.
//
// Several nodes on one database (issue #15): Kea's shared-lease-database model, not a hash split with
// takeover (RFC 3074 / Kea HA load balancing). The address is the table's primary key, and a write that would
// take an address from another client only succeeds when that client's lease ran out (`claimable` below), so
// the database's own constraint decides a race: two nodes can never ACK one address to two clients, whatever
// the timing, and any number of nodes may answer (a hash split needs exactly two, a takeover timer, and loses
// the addresses the dead node's half still holds). With `shared` on, an OFFER claims its address in the
// database too (a hold in memory would not stop another node offering it), a failed claim moves on to the
// next free address, and each packet commits before the next is read (the write lock is held for one
// packet, not one loop turn), because another process waits on it.
import type { Database, Statement } from 'better-sqlite3';
import type { Mac } from '../net/mac.ts';
import { intToIp, ipToInt } from './packet.ts';

export type LeaseState = 'offered' | 'bound' | 'released' | 'declined';

export interface Lease {
  ip: string;
  subnet: string;
  /** Empty for a declined address (no one owns it). */
  mac: Mac | '';
  state: LeaseState;
  /** Epoch ms; after it the address may go to someone else. */
  expiresAt: number;
  /** From a dynamic pool (1) or a reservation (0): reservations are never handed to others. */
  dynamic: boolean;
  hostname?: string;
  updatedAt: number;
}

export interface LeaseRow {
  ip: number;
  subnet: string;
  mac: string;
  state: LeaseState;
  expires_at: number;
  dynamic: number;
  hostname: string | null;
  updated_at: number;
}

export interface PoolRange {
  start: number;
  end: number;
}

interface PoolState {
  ranges: PoolRange[];
  rangeIdx: number;
  cursor: number;
  /** Offer holds in the order they expire, and addresses whose hold ran out unused. */
  fifo: Hold[];
  head: number;
  free: number[];
  freeHead: number;
}

interface Hold {
  ip: number;
  mac: Mac;
  subnet: string;
  expiresAt: number;
  dynamic: boolean;
}

export function toLease(r: LeaseRow): Lease {
  return {
    ip: intToIp(r.ip),
    subnet: r.subnet,
    mac: r.mac as Mac | '',
    state: r.state,
    expiresAt: r.expires_at,
    dynamic: r.dynamic === 1,
    hostname: r.hostname ?? undefined,
    updatedAt: r.updated_at,
  };
}

export class LeaseStore {
  private readonly db: Database;
  private readonly pools = new Map<string, PoolState>();
  private readonly holds = new Map<number, Hold>();
  private readonly holdOfMac = new Map<string, Hold>();
  private readonly q: {
    byIp: Statement<[number]>;
    byMac: Statement<[string, string]>;
    oldestReclaimable: Statement<[string, number, number]>;
    upsert: Statement<[number, string, string, LeaseState, number, number, string | null, number]>;
    claim: Statement<[number, string, string, LeaseState, number, number, string | null, number]>;
    evictOtherOfMac: Statement<[number, string, string, number]>;
    setState: Statement<[LeaseState, number, number, number]>;
    exists: Statement<[number]>;
    otherOfMac: Statement<[string, string, number]>;
    list: Statement<[number]>;
    markStatic: Statement<[number]>;
  };

  /**
   * `db` is opened by openDb (src/store/db.ts): migration 6 creates the dhcp_leases table and its indexes.
   * `shared`: other rackboot nodes allocate from this database too (dhcp.sharedLeases): OFFERs claim their
   * address in the table, and the server commits each packet at once.
   */
  constructor(
    db: Database,
    readonly shared = false,
  ) {
    this.db = db;
    this.q = {
      byIp: db.prepare('SELECT * FROM dhcp_leases WHERE ip = ?'),
      byMac: db.prepare('SELECT * FROM dhcp_leases WHERE mac = ? AND subnet = ? ORDER BY updated_at DESC LIMIT 1'),
      oldestReclaimable: db.prepare(
        'SELECT * FROM dhcp_leases WHERE subnet = ? AND dynamic = 1 AND expires_at < ? ORDER BY expires_at LIMIT 1 OFFSET ?',
      ),
      upsert:
        db.prepare(`INSERT INTO dhcp_leases (ip, subnet, mac, state, expires_at, dynamic, hostname, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(ip) DO UPDATE SET subnet = excluded.subnet, mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at,
          dynamic = excluded.dynamic, hostname = COALESCE(excluded.hostname, dhcp_leases.hostname), updated_at = excluded.updated_at`),
      // The same upsert, but it takes the row only from the same client or a lease that ran out: 0 changes
      // means another client (another node's offer or lease) holds the address now.
      claim:
        db.prepare(`INSERT INTO dhcp_leases (ip, subnet, mac, state, expires_at, dynamic, hostname, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(ip) DO UPDATE SET subnet = excluded.subnet, mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at,
          dynamic = excluded.dynamic, hostname = COALESCE(excluded.hostname, dhcp_leases.hostname), updated_at = excluded.updated_at
        WHERE dhcp_leases.mac = excluded.mac OR dhcp_leases.expires_at <= excluded.updated_at`),
      evictOtherOfMac: db.prepare(`UPDATE dhcp_leases SET mac = '', state = 'released', expires_at = MIN(expires_at, ?)
        WHERE mac = ? AND subnet = ? AND ip <> ?`),
      setState: db.prepare('UPDATE dhcp_leases SET state = ?, expires_at = ?, updated_at = ? WHERE ip = ?'),
      exists: db.prepare('SELECT 1 FROM dhcp_leases WHERE ip = ?'),
      otherOfMac: db.prepare('SELECT 1 FROM dhcp_leases WHERE mac = ? AND subnet = ? AND ip <> ? LIMIT 1'),
      list: db.prepare('SELECT * FROM dhcp_leases ORDER BY ip LIMIT ?'),
      markStatic: db.prepare('UPDATE dhcp_leases SET dynamic = 0 WHERE ip = ?'),
    };
  }

  /** Declares the dynamic pools (subnet cidr -> ranges). Called by the server at start and on config change. */
  setPools(pools: { subnet: string; ranges: { start: string; end: string }[] }[]): void {
    this.pools.clear();
    for (const p of pools) {
      const ranges = p.ranges
        .map((r) => ({ start: ipToInt(r.start)!, end: ipToInt(r.end)! }))
        .sort((a, b) => a.start - b.start);
      this.pools.set(p.subnet, {
        ranges,
        rangeIdx: 0,
        cursor: ranges[0]?.start ?? 0,
        fifo: [],
        head: 0,
        free: [],
        freeHead: 0,
      });
    }
  }

  inPool(subnet: string, ip: number): boolean {
    const p = this.pools.get(subnet);
    return !!p && p.ranges.some((r) => ip >= r.start && ip <= r.end);
  }

  private activeHold(ip: number, now: number): Hold | undefined {
    const h = this.holds.get(ip);
    if (!h) return undefined;
    if (h.expiresAt < now) {
      this.dropHold(h);
      return undefined;
    }
    return h;
  }

  private dropHold(h: Hold): void {
    if (this.holds.get(h.ip) === h) this.holds.delete(h.ip);
    const k = h.mac + '|' + h.subnet;
    if (this.holdOfMac.get(k) === h) this.holdOfMac.delete(k);
  }

  private holdView(h: Hold): Lease {
    return {
      ip: intToIp(h.ip),
      subnet: h.subnet,
      mac: h.mac,
      state: 'offered',
      expiresAt: h.expiresAt,
      dynamic: h.dynamic,
      updatedAt: h.expiresAt,
    };
  }

  /** The lease on an address: an active offer hold (memory) or the stored lease. */
  byIp(ip: string, now = Date.now()): Lease | undefined {
    const n = ipToInt(ip);
    if (n === undefined) return undefined;
    const r = this.q.byIp.get(n) as LeaseRow | undefined;
    const h = this.activeHold(n, now);
    if (h && (!r || r.expires_at < now || r.mac === h.mac)) return this.holdView(h);
    return r && toLease(r);
  }

  byMac(mac: Mac, subnet: string, now = Date.now()): Lease | undefined {
    const h = this.holdOfMac.get(mac + '|' + subnet);
    if (h && this.activeHold(h.ip, now) === h) return this.holdView(h);
    const r = this.q.byMac.get(mac, subnet) as LeaseRow | undefined;
    return r && toLease(r);
  }

  /** An address with no stored lease and no live offer hold. */
  private isFresh(ip: number, now: number): boolean {
    return this.activeHold(ip, now) === undefined && this.q.exists.get(ip) === undefined;
  }

  /**
   * A free pool address, without writing anything: a never-used address from the cursor, else one
   * whose offer hold ran out, else the stored lease that ran out longest ago. `unavailable(ip)` lets
   * the caller veto (an address reserved for another host). Undefined when the pool is exhausted.
   */
  findFree(subnet: string, now: number, unavailable?: (ip: string) => boolean): string | undefined {
    const p = this.pools.get(subnet);
    if (!p) return undefined;
    // Fresh addresses: each pool address is looked at once per process by this cursor.
    while (p.rangeIdx < p.ranges.length) {
      const r = p.ranges[p.rangeIdx];
      if (p.cursor < r.start) p.cursor = r.start;
      if (p.cursor > r.end) {
        p.rangeIdx++;
        continue;
      }
      const ip = p.cursor;
      if (this.isFresh(ip, now) && !unavailable?.(intToIp(ip))) return intToIp(ip);
      p.cursor++;
    }
    // Offers nobody took: their holds expire in FIFO order (one hold time for all).
    this.sweep(p, now, Infinity);
    // Like the cursor, look without taking: the OFFER that follows makes the address not fresh.
    while (p.freeHead < p.free.length) {
      const ip = p.free[p.freeHead];
      if (this.inPool(subnet, ip) && this.isFresh(ip, now) && !unavailable?.(intToIp(ip))) return intToIp(ip);
      p.freeHead++;
      if (p.freeHead > 4096 && p.freeHead * 2 > p.free.length) {
        p.free = p.free.slice(p.freeHead);
        p.freeHead = 0;
      }
    }
    // Stored leases that ran out, longest ago first. Bounded look-ahead past vetoed or held rows.
    for (let skip = 0; skip < 16; skip++) {
      const row = this.q.oldestReclaimable.get(subnet, now, skip) as LeaseRow | undefined;
      if (!row) return undefined;
      if (this.activeHold(row.ip, now)) continue;
      if (!this.inPool(subnet, row.ip) || unavailable?.(intToIp(row.ip))) {
        this.q.markStatic.run(row.ip);
        continue;
      }
      return intToIp(row.ip);
    }
    return undefined;
  }

  /** Moves up to `max` expired offer holds from the FIFO to the free list (keeps memory bounded by rate x hold time). */
  private sweep(p: PoolState, now: number, max: number): void {
    let n = 0;
    while (p.head < p.fifo.length && n < max) {
      const h = p.fifo[p.head];
      if (h.expiresAt >= now) break;
      p.fifo[p.head++] = undefined as unknown as Hold;
      n++;
      this.dropHold(h);
      if (this.isFresh(h.ip, now)) p.free.push(h.ip);
    }
    if (p.head > 4096 && p.head * 2 > p.fifo.length) {
      p.fifo = p.fifo.slice(p.head);
      p.head = 0;
    }
  }

  /** Whether `mac` may take `ip` now: nobody holds it, or the holder is `mac`, or its lease ran out (and it is not quarantined). */
  isAvailableTo(ip: string, mac: Mac, now: number): boolean {
    const l = this.byIp(ip, now);
    if (!l) return true;
    if (l.mac === mac && l.state !== 'declined') return true;
    return l.expiresAt < now;
  }

  /**
   * OFFER: holds the address for `mac` in memory only (RFC 2131 4.3.1 leaves this to the server).
   * A hold lost in a restart costs nothing: the REQUEST that follows is confirmed from the pool.
   */
  offer(a: { subnet: string; mac: Mac; ip: string; expiresAt: number; dynamic: boolean; now: number }): boolean {
    const ip = ipToInt(a.ip)!;
    if (this.shared && a.dynamic) {
      const claimed = this.q.claim.run(ip, a.subnet, a.mac, 'offered', a.expiresAt, 1, null, a.now).changes > 0;
      if (!claimed) {
        // Another node's client has it: this node's cursor must not offer it again either.
        const pool = this.pools.get(a.subnet);
        if (pool && pool.cursor === ip) pool.cursor++;
        return false;
      }
    }
    const k = a.mac + '|' + a.subnet;
    const old = this.holdOfMac.get(k);
    if (old) this.dropHold(old);
    const prev = this.holds.get(ip);
    if (prev) this.dropHold(prev);
    const h: Hold = { ip, mac: a.mac, subnet: a.subnet, expiresAt: a.expiresAt, dynamic: a.dynamic };
    this.holds.set(ip, h);
    this.holdOfMac.set(k, h);
    const pool = this.pools.get(a.subnet);
    if (pool) {
      pool.fifo.push(h);
      this.sweep(pool, a.now, 4);
      if (pool.cursor === ip) pool.cursor++;
    }
    return true;
  }

  /**
   * REQUEST committed: the lease is written; the MAC's other address in this subnet (if any) goes back to the pool.
   * False (nothing written) when another client's live lease or offer holds a dynamic address: another node
   * took it since this one looked. A reservation (dynamic false) is the host's own and always written.
   */
  bind(a: {
    subnet: string;
    mac: Mac;
    ip: string;
    expiresAt: number;
    dynamic: boolean;
    hostname?: string;
    now: number;
  }): boolean {
    const ip = ipToInt(a.ip)!;
    const row = [ip, a.subnet, a.mac, 'bound', a.expiresAt, a.dynamic ? 1 : 0, a.hostname ?? null, a.now] as const;
    if (!a.dynamic) this.q.upsert.run(...row);
    else if (this.q.claim.run(...row).changes === 0) return false;
    // A SELECT first: an UPDATE that changes the indexed mac column it searches by costs ~3x even when nothing matches.
    if (this.q.otherOfMac.get(a.mac, a.subnet, ip) !== undefined)
      this.q.evictOtherOfMac.run(a.now, a.mac, a.subnet, ip);
    const h = this.holds.get(ip);
    if (h) this.dropHold(h);
    const hm = this.holdOfMac.get(a.mac + '|' + a.subnet);
    if (hm) this.dropHold(hm);
    const pool = this.pools.get(a.subnet);
    if (pool && pool.cursor === ip) pool.cursor++;
    return true;
  }

  /** RELEASE, or a client that chose another server's offer: the address is free now but stays linked to the MAC. */
  release(ip: string, mac: Mac, now: number): boolean {
    const n = ipToInt(ip);
    if (n === undefined) return false;
    const h = this.activeHold(n, now);
    let done = false;
    if (h && h.mac === mac) {
      this.dropHold(h);
      this.pools.get(h.subnet)?.free.push(n);
      done = true;
    }
    const r = this.q.byIp.get(n) as LeaseRow | undefined;
    if (r && r.mac === mac) {
      this.q.setState.run('released', Math.min(r.expires_at, now), now, n);
      done = true;
    }
    return done;
  }

  /** DECLINE: someone else uses the address; keep it out of the pool for `until` (RFC 2131 4.3.3). */
  decline(a: { ip: string; subnet: string; until: number; now: number }): void {
    const n = ipToInt(a.ip)!;
    const h = this.holds.get(n);
    if (h) this.dropHold(h);
    const dynamic = this.inPool(a.subnet, n) ? 1 : 0;
    this.q.upsert.run(n, a.subnet, '', 'declined', a.until, dynamic, null, a.now);
  }

  /** Group commit: the server opens a transaction for the packets of one event-loop turn and commits before replying. */
  begin(): void {
    // Shared: take the write lock first, so what this packet reads is what it writes over (another process
    // may commit between a deferred transaction's read and its write).
    if (!this.db.inTransaction) this.db.exec(this.shared ? 'BEGIN IMMEDIATE' : 'BEGIN');
  }
  commit(): void {
    if (this.db.inTransaction) this.db.exec('COMMIT');
  }
  rollback(): void {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }

  /** For the web UI and tests; not used per packet. */
  list(limit = 10_000): Lease[] {
    return (this.q.list.all(limit) as LeaseRow[]).map(toLease);
  }
}
