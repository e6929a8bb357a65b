// Rollouts as the API and the CLI ask for them: checked, then recorded in the store. Carrying them out is the
// runner's (runner.ts, in the serving process only), so a rollout asked for by the CLI, a separate process,
// is picked up from the database by serve, and one cut off by a restart is resumed from it.
import type { Mac } from '../net/mac.ts';
import type { Host } from '../store/hosts.ts';
import type { HostState } from '../store/builds.ts';
import type { RolloutStore, Rollout, RolloutHost, RolloutStep } from '../store/rollouts.ts';
import type { Partitioning } from '../profiles/schema.ts';
import type { RolloutOptions } from './request.ts';
import type { StuckView } from './stuck.ts';

export interface RolloutServiceDeps {
  store: RolloutStore;
  hosts: { get(mac: Mac): Promise<Host | undefined>; list(): Promise<Host[]> };
  /** The host's state now (the in-memory view: no query). */
  state(mac: Mac): HostState;
  cancelBuild(mac: Mac, actor: string): Promise<{ ok: boolean }>;
  /** The partitioning of the host's profile (with its parameters), for the rebuild warning; undefined when it does not resolve. */
  partitioning(host: Host): Partitioning | undefined;
  stuck?(mac: Mac): Promise<StuckView | undefined>;
  now?: () => number;
}

export type ServiceResult<T> =
  { ok: true; value: T } | { ok: false; status: number; message: string; rebuild?: RebuildWarning[] };

export interface RebuildWarning {
  mac: Mac;
  hostname: string;
  wipes: string;
}

/** What a rebuild erases, in one line, from the profile's partitioning (templates/kickstart/rhvh.ks.eta: clearpart --all). */
export function wipeText(p: Partitioning | undefined): string {
  if (!p) return 'every disk the installer sees (the profile does not resolve now: check it before confirming)';
  const layout = p.layout === 'autopart' ? 'autopart thin LVM' : `the custom layout${p.disk ? ` on ${p.disk}` : ''}`;
  return p.disks?.length
    ? `disks ${p.disks.join(', ')} are cleared (clearpart --all) and repartitioned with ${layout}`
    : `every disk the installer sees, SAN LUNs included, is cleared (clearpart --all: the profile sets no partitioning.disks) and repartitioned with ${layout}`;
}

const FINAL: ReadonlySet<RolloutStep> = new Set(['powered', 'failed', 'cancelled']);

export class RolloutService {
  private readonly now: () => number;
  constructor(private readonly d: RolloutServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  /** What rebuilding this host wipes, in one line. */
  wipesOf(host: Host): string {
    return wipeText(this.d.partitioning(host));
  }

  /** The hosts of a rack, in rack order (position, then hostname). */
  async rackHosts(rack: string): Promise<Host[]> {
    return (await this.d.hosts.list()).filter((h) => h.rack === rack);
  }

  async start(scope: string, macs: readonly Mac[], o: RolloutOptions, actor: string): Promise<ServiceResult<Rollout>> {
    const found = new Map<string, Host>();
    for (const m of macs) {
      const h = await this.d.hosts.get(m);
      if (h) found.set(m, h);
    }
    const unknown = macs.filter((m) => !found.has(m));
    if (unknown.length)
      return {
        ok: false,
        status: 404,
        message: `no host with MAC ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ` (and ${unknown.length - 10} more)` : ''}: add them first (POST /api/hosts); nothing was started`,
      };
    const busy = await this.d.store.runningWith(macs);
    if (busy.length) {
      const held = new Set((await this.d.store.hosts(busy[0]!.id)).map((h) => h.mac));
      const both = macs.filter((m) => held.has(m));
      return {
        ok: false,
        status: 409,
        message: `${both.slice(0, 5).join(', ')}${both.length > 5 ? ` (and ${both.length - 5} more)` : ''} already in running rollout ${busy[0]!.id}: cancel it first (POST /api/rollouts/${busy[0]!.id}/cancel); nothing was started`,
      };
    }
    const rebuild = macs
      .filter((m) => this.d.state(m) === 'built')
      .map((m) => {
        const h = found.get(m)!;
        return { mac: m, hostname: h.hostname, wipes: wipeText(this.d.partitioning(h)) };
      });
    if (rebuild.length && !o.confirm)
      return {
        ok: false,
        status: 409,
        message: `${rebuild.length} of the ${macs.length} host(s) are built: rebuilding wipes their disks (see rebuild). Send "confirm": true (CLI: --confirm) to go on; nothing was started`,
        rebuild,
      };
    const rollout = await this.d.store.create({
      actor,
      scope,
      power: o.power,
      waveSize: o.waveSize,
      waveIntervalMs: o.waveIntervalMs,
      macs,
    });
    return { ok: true, value: rollout };
  }

  /** Cancels a running rollout: hosts not started stay out, the builds it started are cancelled (a rebuilt host goes back to built). */
  async cancel(id: number, actor: string): Promise<ServiceResult<Rollout>> {
    const r = await this.d.store.get(id);
    if (!r) return { ok: false, status: 404, message: `no rollout ${id} (GET /api/rollouts lists them)` };
    if (!(await this.d.store.finish(id, 'cancelled')))
      return { ok: false, status: 409, message: `rollout ${id} is ${r.status}, not running: nothing to cancel` };
    for (const h of await this.d.store.hosts(id)) if (h.buildId !== undefined) await this.cancelHostBuild(h, actor);
    return { ok: true, value: (await this.d.store.get(id))! };
  }

  /** Cancels these hosts wherever they are: out of running rollouts (a rollout left with nothing to do ends), their builds cancelled. */
  async cancelHosts(macs: readonly Mac[], actor: string): Promise<{ rollouts: number[]; builds: Mac[] }> {
    const want = new Set<string>(macs);
    const rollouts: number[] = [];
    for (const r of await this.d.store.runningWith(macs)) {
      const hosts = await this.d.store.hosts(r.id);
      for (const h of hosts)
        if (want.has(h.mac) && !FINAL.has(h.step))
          await this.d.store.setStep(r.id, h.mac, 'cancelled', `cancelled by ${actor}`);
      const left = hosts.some((h) => !want.has(h.mac) && h.step === 'queued');
      if (!left && (await this.d.store.finish(r.id, 'cancelled'))) rollouts.push(r.id);
    }
    const builds: Mac[] = [];
    for (const m of macs) if (this.d.state(m) === 'build' && (await this.d.cancelBuild(m, actor)).ok) builds.push(m);
    return { rollouts, builds };
  }

  private async cancelHostBuild(h: RolloutHost, actor: string): Promise<void> {
    if (this.d.state(h.mac) === 'build') await this.d.cancelBuild(h.mac, actor);
  }

  /** Newest first; `beforeId`: the page after the rollout with that id. */
  async list(limit = 50, beforeId?: number): Promise<ReturnType<RolloutService['summary']>[]> {
    const out = [];
    for (const r of await this.d.store.list(limit, beforeId)) out.push(this.summary(r, await this.d.store.hosts(r.id)));
    return out;
  }

  async show(id: number) {
    const r = await this.d.store.get(id);
    if (!r) return undefined;
    const hosts = await this.d.store.hosts(id);
    const rows = [];
    for (const h of hosts) {
      const host = await this.d.hosts.get(h.mac);
      rows.push({
        mac: h.mac,
        hostname: host?.hostname ?? null,
        wave: h.wave,
        step: h.step,
        reason: h.reason ?? null,
        buildId: h.buildId ?? null,
        updatedAt: iso(h.updatedAt),
        state: host ? this.d.state(h.mac) : 'deleted',
        stuck: (await this.d.stuck?.(h.mac)) ?? null,
      });
    }
    return { ...this.summary(r, hosts), hosts: rows };
  }

  private summary(r: Rollout, hosts: readonly RolloutHost[]) {
    const steps: Partial<Record<RolloutStep, number>> = {};
    for (const h of hosts) steps[h.step] = (steps[h.step] ?? 0) + 1;
    const waves = hosts.reduce((n, h) => Math.max(n, h.wave + 1), 0);
    return {
      id: r.id,
      status: r.status,
      scope: r.scope,
      actor: r.actor,
      power: r.power,
      waveSize: r.waveSize,
      waveIntervalSeconds: r.waveIntervalMs / 1000,
      waves,
      nextWave: r.status === 'running' ? r.nextWave : null,
      nextWaveAt: r.status === 'running' ? iso(r.nextWaveAt) : null,
      createdAt: iso(r.createdAt),
      finishedAt: r.finishedAt === undefined ? null : iso(r.finishedAt),
      hostCount: hosts.length,
      steps,
    };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
