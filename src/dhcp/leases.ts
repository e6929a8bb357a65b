// Leases: every row of the store's dhcp_leases table in memory (loaded once at start, like Kea's memfile), plus
// offer holds in memory. The engine is synchronous per packet: it reads these maps and records the writes it
// wants (intents); the server commits the intents of one event-loop turn in one transaction (commit()) and sends
// those replies only after it (src/dhcp/server.ts). One row per address ever handed out, so a returning MAC gets
// its old address back. Fresh addresses come from a cursor that only moves forward over the pool (walked once
// per process, never per packet); run-out leases come from a heap ordered by expiry.
//
// Several nodes on one database (issue #15): Kea's shared-lease-database model, not a hash split with
// takeover (RFC 3074 / Kea HA load balancing). The address is the table's primary key, and a write that would
// take an address from another client only succeeds when that client's lease ran out (a `claim`, see
// src/store/repo/leases.ts), so the database's own constraint decides a race: two nodes can never ACK one address
// to two clients, whatever the timing, and any number of nodes may answer (a hash split needs exactly two, a
// takeover timer, and loses the addresses the dead node's half still holds). With `shared` on, an OFFER claims
// its address in the database too (a hold in memory would not stop another node offering it). This node's memory
// does not see other nodes' writes as they happen: a claim that loses in the database is how it learns of them.
// That packet's reply is dropped and the row is re-read, so the client's next DISCOVER gets another address.
// An OFFER also loses while the client holds a live bound lease on another address (another node ACKed it):
// the client's rows are then re-read, and its next DISCOVER is offered that address, not a second one.
// Shared pools allocate fresh addresses at random (randomFresh), so the nodes rarely reach for the same one.
import type { Mac } from '../net/mac.ts';
import { intentIp, type LeaseIntent, type LeaseWriter } from '../store/repo/leases.ts';
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

/** A row of dhcp_leases as both stores return it; also the in-memory form (never changed in place: replaced). */
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

/** Min-heap of (expires_at, ip) for one subnet's dynamic rows. Entries go stale when a row changes: checked on pop. */
class ExpiryHeap {
  exp: number[] = [];
  ip: number[] = [];
  get size(): number {
    return this.exp.length;
  }
  push(exp: number, ip: number): void {
    const e = this.exp,
      p = this.ip;
    let i = e.length;
    e.push(exp);
    p.push(ip);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (e[up] <= exp) break;
      e[i] = e[up];
      p[i] = p[up];
      i = up;
    }
    e[i] = exp;
    p[i] = ip;
  }
  pop(): void {
    const e = this.exp,
      p = this.ip;
    const lastE = e.pop()!,
      lastP = p.pop()!;
    const n = e.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && e[c + 1] < e[c]) c++;
      if (e[c] >= lastE) break;
      e[i] = e[c];
      p[i] = p[c];
      i = c;
    }
    e[i] = lastE;
    p[i] = lastP;
  }
}

export interface LeaseStoreOptions {
  /**
   * Other rackboot nodes allocate from this database too (dhcp.sharedLeases): OFFERs claim their address in the
   * table, so the reply to a DISCOVER waits for the batch commit like an ACK does.
   */
  shared?: boolean;
}

/** Random picks tried before the cursor, with several nodes on one pool. */
const RANDOM_PROBES = 8;

export class LeaseStore {
  readonly shared: boolean;
  private readonly rows = new Map<number, LeaseRow>();
  /** mac|subnet -> addresses whose row names that MAC (usually one). */
  private readonly ofMac = new Map<string, number[]>();
  private readonly heaps = new Map<string, ExpiryHeap>();
  private heapEntries = 0;
  private readonly pools = new Map<string, PoolState>();
  private readonly holds = new Map<number, Hold>();
  private readonly holdOfMac = new Map<string, Hold>();
  /** Writes recorded since the last commit() began, in order. */
  private pending: LeaseIntent[] = [];
  /** Rows memory may have wrong (a lost claim, a failed commit): re-read after the next commit. */
  private readonly dirtyIps = new Set<number>();
  private readonly dirtyMacs = new Map<string, { mac: string; subnet: string }>();

  /** `writer`: the store's LeaseRepo (store.leases). Call load() before serving. */
  constructor(
    private readonly writer: LeaseWriter,
    o: LeaseStoreOptions = {},
  ) {
    this.shared = o.shared ?? false;
  }

  /** Reads every row into memory (start-up; a restart gives a returning MAC its old address). */
  async load(): Promise<void> {
    const all = await this.writer.loadAll();
    this.rows.clear();
    this.ofMac.clear();
    this.heaps.clear();
    this.heapEntries = 0;
    for (const r of all) this.put(r.ip, r);
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

  /** Replaces (or with no row, removes) the in-memory row of `ip`, keeping the MAC index and expiry heap current. */
  private put(ip: number, r: LeaseRow | undefined): void {
    const old = this.rows.get(ip);
    if (old?.mac) {
      const k = old.mac + '|' + old.subnet;
      const list = this.ofMac.get(k);
      if (list) {
        const i = list.indexOf(ip);
        if (i >= 0) list.splice(i, 1);
        if (!list.length) this.ofMac.delete(k);
      }
    }
    if (!r) {
      this.rows.delete(ip);
      return;
    }
    this.rows.set(ip, r);
    if (r.mac) {
      const k = r.mac + '|' + r.subnet;
      const list = this.ofMac.get(k);
      if (list) list.push(ip);
      else this.ofMac.set(k, [ip]);
    }
    if (r.dynamic === 1 && (!old || old.expires_at !== r.expires_at || old.dynamic !== 1 || old.subnet !== r.subnet)) {
      let h = this.heaps.get(r.subnet);
      if (!h) this.heaps.set(r.subnet, (h = new ExpiryHeap()));
      h.push(r.expires_at, ip);
      if (++this.heapEntries > 4096 && this.heapEntries > 2 * this.rows.size) this.rebuildHeaps();
    }
  }

  private rebuildHeaps(): void {
    this.heaps.clear();
    this.heapEntries = 0;
    for (const r of this.rows.values()) {
      if (r.dynamic !== 1) continue;
      let h = this.heaps.get(r.subnet);
      if (!h) this.heaps.set(r.subnet, (h = new ExpiryHeap()));
      h.push(r.expires_at, r.ip);
      this.heapEntries++;
    }
  }

  /**
   * The MAC's bound row in `subnet` (the most recent), else its most recently updated row. Bound first: with several
   * nodes a client may also hold a later offer another node made at a random address, which it did not take.
   */
  private rowOfMac(mac: string, subnet: string): LeaseRow | undefined {
    const list = this.ofMac.get(mac + '|' + subnet);
    if (!list) return undefined;
    let best: LeaseRow | undefined;
    for (const ip of list) {
      const r = this.rows.get(ip)!;
      const better =
        !best ||
        (r.state === 'bound' && best.state !== 'bound') ||
        ((r.state === 'bound') === (best.state === 'bound') && r.updated_at > best.updated_at);
      if (better) best = r;
    }
    return best;
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

  /** The lease on an address: an active offer hold or the row (memory only: never waits). */
  byIp(ip: string, now = Date.now()): Lease | undefined {
    const n = ipToInt(ip);
    if (n === undefined) return undefined;
    const r = this.rows.get(n);
    const h = this.activeHold(n, now);
    if (h && (!r || r.expires_at < now || r.mac === h.mac)) return this.holdView(h);
    return r && toLease(r);
  }

  byMac(mac: Mac, subnet: string, now = Date.now()): Lease | undefined {
    const h = this.holdOfMac.get(mac + '|' + subnet);
    if (h && this.activeHold(h.ip, now) === h) return this.holdView(h);
    const r = this.rowOfMac(mac, subnet);
    return r && toLease(r);
  }

  /** An address with no row and no live offer hold. */
  private isFresh(ip: number, now: number): boolean {
    return this.activeHold(ip, now) === undefined && !this.rows.has(ip);
  }

  /**
   * A free pool address, without writing anything: a never-used address from the cursor, else one
   * whose offer hold ran out, else the row that ran out longest ago. `unavailable(ip)` lets
   * the caller veto (an address reserved for another host). Undefined when the pool is exhausted.
   */
  findFree(subnet: string, now: number, unavailable?: (ip: string) => boolean): string | undefined {
    const p = this.pools.get(subnet);
    if (!p) return undefined;
    if (this.shared) {
      const picked = this.randomFresh(p, now, unavailable);
      if (picked !== undefined) return intToIp(picked);
    }
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
    return this.oldestReclaimable(subnet, now, unavailable);
  }

  /**
   * Several nodes on one pool: a fresh address at random (Kea's random allocator, made for shared lease
   * databases). Cursors that walk the pool in the same order meet and then collide on every address: each claim
   * one node wins is a reply the other drops, in lockstep. Random picks collide only as often as the other
   * nodes' offers in flight are a share of the free addresses. A few probes, then the cursor as on one node.
   */
  private randomFresh(p: PoolState, now: number, unavailable?: (ip: string) => boolean): number | undefined {
    let size = 0;
    for (const r of p.ranges) size += r.end - r.start + 1;
    for (let probe = 0; probe < RANDOM_PROBES && size > 0; probe++) {
      let k = Math.floor(Math.random() * size);
      for (const r of p.ranges) {
        const n = r.end - r.start + 1;
        if (k < n) {
          const ip = r.start + k;
          if (this.isFresh(ip, now) && !unavailable?.(intToIp(ip))) return ip;
          break;
        }
        k -= n;
      }
    }
    return undefined;
  }

  /** Rows that ran out, longest ago first. Bounded look-ahead past held addresses. */
  private oldestReclaimable(subnet: string, now: number, unavailable?: (ip: string) => boolean): string | undefined {
    const h = this.heaps.get(subnet);
    if (!h) return undefined;
    const held: number[] = [];
    let found: number | undefined;
    while (h.size && held.length < 16) {
      const exp = h.exp[0],
        ip = h.ip[0];
      const r = this.rows.get(ip);
      if (!r || r.dynamic !== 1 || r.expires_at !== exp || r.subnet !== subnet) {
        h.pop(); // stale: the row changed since
        this.heapEntries--;
        continue;
      }
      if (exp >= now) break;
      if (this.activeHold(ip, now)) {
        held.push(exp, ip);
        h.pop();
        this.heapEntries--;
        continue;
      }
      if (!this.inPool(subnet, ip) || unavailable?.(intToIp(ip))) {
        // Out of the pool now, or reserved for a host: never offered from the pool again.
        h.pop();
        this.heapEntries--;
        this.put(ip, { ...r, dynamic: 0 });
        this.pending.push({ kind: 'static', ip });
        continue;
      }
      found = ip;
      break;
    }
    for (let i = 0; i < held.length; i += 2) {
      h.push(held[i], held[i + 1]);
      this.heapEntries++;
    }
    return found === undefined ? undefined : intToIp(found);
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

  /** Whether the database's claim rule would let `mac` take the row of `ip` at `now` (as far as memory knows). */
  private claimable(ip: number, mac: string, now: number): boolean {
    const r = this.rows.get(ip);
    return !r || r.mac === mac || r.expires_at <= now;
  }

  /**
   * OFFER: holds the address for `mac` in memory only (RFC 2131 4.3.1 leaves this to the server): a hold lost in
   * a restart costs nothing, the REQUEST that follows is confirmed from the pool. Shared: a claim in the table
   * instead (false when memory already knows another client has it; the commit may still find that it lost).
   */
  offer(a: { subnet: string; mac: Mac; ip: string; expiresAt: number; dynamic: boolean; now: number }): boolean {
    const ip = ipToInt(a.ip)!;
    const pool = this.pools.get(a.subnet);
    if (this.shared && a.dynamic) {
      const other = this.activeHold(ip, a.now);
      if (!this.claimable(ip, a.mac, a.now) || (other && other.mac !== a.mac)) {
        // Another client has it: this node's cursor must not offer it again either.
        if (pool && pool.cursor === ip) pool.cursor++;
        return false;
      }
      const old = this.rows.get(ip);
      const row: LeaseRow = {
        ip,
        subnet: a.subnet,
        mac: a.mac,
        state: 'offered',
        expires_at: a.expiresAt,
        dynamic: 1,
        hostname: old?.hostname ?? null,
        updated_at: a.now,
      };
      this.put(ip, row);
      this.pending.push({ kind: 'offer', row, evict: false });
      const hm = this.holdOfMac.get(a.mac + '|' + a.subnet);
      if (hm) this.dropHold(hm);
      if (pool && pool.cursor === ip) pool.cursor++;
      return true;
    }
    const k = a.mac + '|' + a.subnet;
    const old = this.holdOfMac.get(k);
    if (old) this.dropHold(old);
    const prev = this.holds.get(ip);
    if (prev) this.dropHold(prev);
    const h: Hold = { ip, mac: a.mac, subnet: a.subnet, expiresAt: a.expiresAt, dynamic: a.dynamic };
    this.holds.set(ip, h);
    this.holdOfMac.set(k, h);
    if (pool) {
      pool.fifo.push(h);
      this.sweep(pool, a.now, 4);
      if (pool.cursor === ip) pool.cursor++;
    }
    return true;
  }

  /**
   * REQUEST: the lease is recorded; the MAC's other address in this subnet (if any) goes back to the pool.
   * False (nothing recorded) when another client's live lease holds a dynamic address. A reservation (dynamic
   * false) is the host's own and always written. The write is a claim: the commit may still find it lost.
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
    if (a.dynamic && !this.claimable(ip, a.mac, a.now)) return false;
    const old = this.rows.get(ip);
    const row: LeaseRow = {
      ip,
      subnet: a.subnet,
      mac: a.mac,
      state: 'bound',
      expires_at: a.expiresAt,
      dynamic: a.dynamic ? 1 : 0,
      hostname: a.hostname ?? old?.hostname ?? null,
      updated_at: a.now,
    };
    this.put(ip, row);
    const mine = this.ofMac.get(a.mac + '|' + a.subnet);
    const evicted = mine && mine.length > 1 ? mine.filter((x) => x !== ip) : undefined;
    for (const o of evicted ?? []) {
      const r = this.rows.get(o)!;
      this.put(o, { ...r, mac: '', state: 'released', expires_at: Math.min(r.expires_at, a.now) });
    }
    // One node alone knows every row of this MAC: no other, nothing to evict (a query saved per ACK). Shared:
    // another node may have given this MAC an address, so the database is asked.
    this.pending.push({ kind: a.dynamic ? 'claim' : 'upsert', row, evict: this.shared || !!evicted, evicted });
    const h = this.holds.get(ip);
    if (h) this.dropHold(h);
    const hm = this.holdOfMac.get(a.mac + '|' + a.subnet);
    if (hm) this.dropHold(hm);
    const pool = this.pools.get(a.subnet);
    if (pool && pool.cursor === ip) pool.cursor++;
    return true;
  }

  /**
   * RELEASE, or a client that chose another server's offer (`offeredOnly`: only an offer is released, never a
   * bound lease): the address is free now but stays linked to the MAC.
   */
  release(ip: string, mac: Mac, now: number, o: { offeredOnly?: boolean } = {}): boolean {
    const n = ipToInt(ip);
    if (n === undefined) return false;
    const h = this.activeHold(n, now);
    let done = false;
    if (h && h.mac === mac) {
      this.dropHold(h);
      this.pools.get(h.subnet)?.free.push(n);
      done = true;
    }
    const r = this.rows.get(n);
    if (r && r.mac === mac && (!o.offeredOnly || r.state === 'offered')) {
      this.put(n, { ...r, state: 'released', expires_at: Math.min(r.expires_at, now), updated_at: now });
      this.pending.push({ kind: 'release', ip: n, mac, now, offeredOnly: !!o.offeredOnly });
      done = true;
    }
    return done;
  }

  /** DECLINE: someone else uses the address; keep it out of the pool for `until` (RFC 2131 4.3.3). */
  decline(a: { ip: string; subnet: string; until: number; now: number }): void {
    const n = ipToInt(a.ip)!;
    const h = this.holds.get(n);
    if (h) this.dropHold(h);
    const old = this.rows.get(n);
    const row: LeaseRow = {
      ip: n,
      subnet: a.subnet,
      mac: '',
      state: 'declined',
      expires_at: a.until,
      dynamic: this.inPool(a.subnet, n) ? 1 : 0,
      hostname: old?.hostname ?? null,
      updated_at: a.now,
    };
    this.put(n, row);
    this.pending.push({ kind: 'upsert', row, evict: false });
  }

  /** Writes recorded and not yet committed. The server notes this before and after each packet to know its writes. */
  pendingWrites(): number {
    return this.pending.length;
  }

  /**
   * Commits the writes recorded so far in one transaction. Per write, in order, whether it took effect: false
   * where a claim lost to another client (another node); those rows are re-read into memory. Throws when the
   * transaction failed (nothing written): the rows it touched are re-read, or, if the database cannot be read
   * either, after the next commit that succeeds. One commit at a time (the group commit awaits each).
   */
  async commit(): Promise<boolean[]> {
    const batch = this.pending;
    if (!batch.length) return [];
    this.pending = [];
    let won: boolean[];
    try {
      won = await this.writer.commit(batch);
    } catch (err) {
      for (const w of batch) this.markDirty(w);
      await this.repair().catch(() => {});
      throw err;
    }
    for (let i = 0; i < batch.length; i++) if (!won[i]) this.markDirty(batch[i]);
    if (this.dirtyIps.size || this.dirtyMacs.size) await this.repair().catch(() => {});
    return won;
  }

  private markDirty(w: LeaseIntent): void {
    if ('row' in w) {
      this.dirtyIps.add(w.row.ip);
      if (w.row.mac) this.dirtyMacs.set(w.row.mac + '|' + w.row.subnet, { mac: w.row.mac, subnet: w.row.subnet });
      // Rows memory took from this MAC in bind(): the database says whose they are.
      for (const ip of w.evicted ?? []) this.dirtyIps.add(ip);
    } else this.dirtyIps.add(w.ip);
  }

  /** Re-reads the dirty rows from the database into memory (not those a newer, uncommitted write touches). */
  private async repair(): Promise<void> {
    const ips = [...this.dirtyIps];
    const macs = [...this.dirtyMacs.values()];
    const found = await this.writer.rows(ips, macs);
    this.dirtyIps.clear();
    this.dirtyMacs.clear();
    const busy = new Set<number>();
    for (const w of this.pending) busy.add(intentIp(w));
    const seen = new Set<number>();
    for (const r of found) {
      seen.add(r.ip);
      if (!busy.has(r.ip)) this.put(r.ip, r);
    }
    for (const ip of ips) {
      if (seen.has(ip) || busy.has(ip) || !this.rows.has(ip)) continue;
      const r = this.rows.get(ip)!;
      this.put(ip, undefined);
      // Never written after all: back to the pool (the cursor has moved past it).
      this.pools.get(r.subnet)?.free.push(ip);
    }
  }

  /** The table as the database holds it (committed rows, every node's): for the web UI, the API and tests. */
  list(limit = 10_000): Promise<Lease[]> {
    return this.writer.list(limit);
  }
}
