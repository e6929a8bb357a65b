// The per-node in-memory view of hosts and their latest builds: what DHCP, TFTP and the boot decision read, so no
// packet waits on the network. Loaded once, then kept current by the store's change feed (this node's writes
// before they return; other nodes' through PostgreSQL NOTIFY; other SQLite processes' through deliver()), and
// reloaded whole every `reloadMs` in case a notification was lost (a dropped LISTEN connection).
import type { Mac } from '../net/mac.ts';
import type { Host } from './hosts.ts';
import type { Build, HostState } from './builds.ts';
import { stateOf } from './builds.ts';
import type { Store, StoreChange } from './index.ts';
import type { ImageRecord } from '../images/store.ts';
import type { ImageFiles } from '../profiles/schema.ts';

export interface ViewOptions {
  /** Whole reload period (default 60 s); 0 turns it off. */
  reloadMs?: number;
  /**
   * How often the images table is checked for a change another process made (default 2 s; 0: off). Images
   * change rarely and no trigger reports them across SQLite processes: `rackboot image import` beside a running serve.
   */
  imagesCheckMs?: number;
  now?: () => number;
  /** A refresh that failed (the database away): the view keeps answering from what it has. */
  onError?: (e: Error) => void;
}

export class StoreView {
  private hosts = new Map<string, Host>();
  private byIp = new Map<string, Host>();
  private byUuid = new Map<string, Host[]>();
  private byHostname = new Map<string, Host>();
  private builds = new Map<string, Build>();
  /** The token of each pending build (boot configs carry it), by build id. */
  private tokens = new Map<number, string>();
  /** token -> MAC of the pending builds, rebuilt when `tokens` changed (kickstart fetches read it). */
  private byToken = new Map<string, Mac>();
  private tokensChanged = 0;
  private byTokenAt = -1;
  private images = new Map<string, ImageRecord>();
  private timer: NodeJS.Timeout | undefined;
  private imagesTimer: NodeJS.Timeout | undefined;
  private imagesStamp = '';
  private readonly unsubscribe: () => void;
  private readonly now: () => number;
  /** Whole reloads done (doctor, tests). */
  reloads = 0;

  private constructor(
    private readonly store: Store,
    private readonly o: ViewOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.unsubscribe = store.changes.subscribe((c) => this.apply(c));
  }

  static async open(store: Store, o: ViewOptions = {}): Promise<StoreView> {
    const v = new StoreView(store, o);
    await v.reload();
    const every = o.reloadMs ?? 60_000;
    if (every > 0) {
      v.timer = setInterval(() => void v.reload().catch((e: Error) => o.onError?.(e)), every);
      v.timer.unref();
    }
    const imagesEvery = o.imagesCheckMs ?? 2000;
    if (imagesEvery > 0) {
      v.imagesTimer = setInterval(() => void v.checkImages().catch((e: Error) => o.onError?.(e)), imagesEvery);
      v.imagesTimer.unref();
    }
    return v;
  }

  close(): void {
    clearInterval(this.timer);
    clearInterval(this.imagesTimer);
    this.unsubscribe();
  }

  host(mac: Mac): Host | undefined {
    return this.hosts.get(mac);
  }
  hostByIp(ip: string): Host | undefined {
    return this.byIp.get(ip);
  }
  hostByHostname(name: string): Host | undefined {
    return this.byHostname.get(name);
  }
  /** Every host with that SMBIOS UUID (up to 16), by MAC. */
  hostsByUuid(uuid: string): Host[] {
    return (this.byUuid.get(uuid.toLowerCase()) ?? []).slice(0, 16);
  }
  hostList(): Host[] {
    return [...this.hosts.values()];
  }
  latestBuild(mac: Mac): Build | undefined {
    return this.builds.get(mac);
  }
  state(mac: Mac): HostState {
    return stateOf(this.builds.get(mac), this.now());
  }
  /** The token of a pending build (undefined once it is no longer pending). */
  tokenOf(build: Build): string | undefined {
    return this.tokens.get(build.id);
  }
  /**
   * The pending build a token belongs to, when it is some host's latest build here: a kickstart fetch checks it
   * without a query. Undefined sends the caller to the database (an unknown, finished or just-started build).
   */
  pendingBuildOfToken(token: string): Build | undefined {
    if (this.byTokenAt !== this.tokensChanged) {
      const macOf = new Map([...this.builds.values()].map((b) => [b.id, b.mac]));
      this.byToken = new Map();
      for (const [id, t] of this.tokens) {
        const mac = macOf.get(id);
        if (mac) this.byToken.set(t, mac);
      }
      this.byTokenAt = this.tokensChanged;
    }
    const mac = this.byToken.get(token);
    const b = mac && this.builds.get(mac);
    return b && b.status === 'pending' && this.tokens.get(b.id) === token ? b : undefined;
  }
  image(name: string): ImageRecord | undefined {
    return this.images.get(name);
  }
  imageList(): ImageRecord[] {
    return [...this.images.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }
  /** What a profile's `image: NAME` turns into. */
  resolveImage(name: string): ImageFiles | undefined {
    const r = this.images.get(name);
    return r && { kernel: r.kernel, initrd: r.initrd, stage2: r.stage2, liveimg: r.liveimg };
  }

  /** Reloads the images when the table's count or newest import differs from what was loaded. */
  async checkImages(): Promise<void> {
    if ((await this.imageStamp()) !== this.imagesStamp) await this.loadImages();
  }

  private async imageStamp(): Promise<string> {
    const r = await this.store.sql.get<{ n: number; at: number | null }>(
      'SELECT COUNT(*) AS n, MAX(imported_at) AS at FROM images',
    );
    return `${Number(r?.n ?? 0)}|${Number(r?.at ?? 0)}`;
  }

  private async loadImages(): Promise<void> {
    const stamp = await this.imageStamp();
    const images = await this.store.images.list();
    this.images = new Map(images.map((i) => [i.name, i]));
    this.imagesStamp = stamp;
  }

  /** Everything again from the store (start, and the periodic safety net). */
  async reload(): Promise<void> {
    const started = this.seq;
    const [hosts, builds, tokens] = await Promise.all([
      this.store.hosts.list(),
      this.store.builds.latestForAll(),
      this.store.builds.pendingTokens(),
      this.loadImages(),
    ]);
    const fresh = new Map(hosts.map((h) => [h.mac as string, h]));
    // A change applied while the reload read keeps its newer value (the reload's rows may predate it).
    for (const [key, n] of this.applied) {
      if (n <= started) continue;
      const [kind, mac] = key.split('|') as ['host' | 'build', string];
      if (kind === 'host') {
        const h = this.hosts.get(mac);
        if (h) fresh.set(mac, h);
        else fresh.delete(mac);
      } else {
        const b = this.builds.get(mac);
        if (b) {
          builds.set(mac, b);
          const t = this.tokens.get(b.id);
          if (t) tokens.set(b.id, t);
          else tokens.delete(b.id);
        } else builds.delete(mac);
      }
    }
    this.hosts = fresh;
    this.builds = builds;
    this.tokens = tokens;
    this.tokensChanged++;
    this.reindex();
    this.reloads++;
  }

  private reindex(): void {
    this.byIp = new Map();
    this.byUuid = new Map();
    this.byHostname = new Map();
    for (const h of [...this.hosts.values()].sort((a, b) => (a.mac < b.mac ? -1 : 1))) this.index(h);
  }

  private index(h: Host): void {
    if (h.ip) this.byIp.set(h.ip, h);
    this.byHostname.set(h.hostname, h);
    if (h.uuid) {
      const k = h.uuid.toLowerCase();
      this.byUuid.set(
        k,
        [...(this.byUuid.get(k) ?? []), h].sort((a, b) => (a.mac < b.mac ? -1 : 1)),
      );
    }
  }

  /** Order of the reads: a slower, older read must not overwrite a newer one (the pool runs them in parallel). */
  private seq = 0;
  private readonly applied = new Map<string, number>();

  private async apply(c: StoreChange): Promise<void> {
    if (c.kind === 'resync') return this.reload().catch((e: Error) => this.o.onError?.(e));
    if (c.kind === 'image') return this.loadImages();
    if (!c.mac || (c.kind !== 'host' && c.kind !== 'build')) return;
    const mac = c.mac as Mac;
    const key = `${c.kind}|${mac}`;
    const n = ++this.seq;
    if (c.kind === 'host') {
      const h = await this.store.hosts.get(mac);
      if ((this.applied.get(key) ?? 0) > n) return;
      this.applied.set(key, n);
      const old = this.hosts.get(mac);
      if (h) this.hosts.set(mac, h);
      else this.hosts.delete(mac);
      // An IP, name or UUID may have moved: reindexing is a pass over memory, no query.
      if (old || h) this.reindex();
    } else {
      const b = await this.store.builds.latest(mac);
      const token = b?.status === 'pending' ? await this.store.builds.tokenOf(b) : undefined;
      if ((this.applied.get(key) ?? 0) > n) return;
      this.applied.set(key, n);
      const old = this.builds.get(mac);
      if (old && old.id !== b?.id) this.tokens.delete(old.id);
      this.tokensChanged++;
      if (b) this.builds.set(mac, b);
      else this.builds.delete(mac);
      if (b && token) this.tokens.set(b.id, token);
      else if (b) this.tokens.delete(b.id);
    }
  }
}
