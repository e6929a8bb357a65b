// Carries out rollouts in the serving process: polls the store (a rollout recorded by the CLI, another process,
// is picked up within a poll), one wave at a time. Per host: build started, next boot set to network once in its
// firmware mode, then powered on (or restarted when on). A wave holds at most waveSize hosts, so never more than
// waveSize power actions are in flight; the next wave is due waveInterval after the last one settled.
// Every step is written before the next begins: after a kill -9 the runner of the next start resumes there.
import type { Logger } from '../log.ts';
import type { Mac } from '../net/mac.ts';
import { BmcError, type BmcDriver } from '../bmc/driver.ts';
import type { Rollout, RolloutHost, RolloutStore } from '../store/rollouts.ts';
import type { FirmwareGuess } from './firmware.ts';

export interface RunnerDeps {
  store: RolloutStore;
  startBuild(
    mac: Mac,
    actor: string,
  ): Promise<{ ok: true; value: { buildId: number } } | { ok: false; message: string }>;
  cancelBuild(mac: Mac, actor: string): Promise<{ ok: boolean }>;
  /** The host's BMC driver, undefined when it has none. */
  bmcFor(mac: Mac): Promise<BmcDriver | undefined>;
  firmwareOf(mac: Mac): Promise<FirmwareGuess>;
  event(e: { mac: Mac; buildId?: number; type: string; status?: string; detail?: Record<string, unknown> }): void;
  log: Logger;
  now?: () => number;
  pollMs?: number;
  /** Longest one host's BMC steps may take before the host is failed and the wave goes on (the drivers have their own timeouts). */
  hostTimeoutMs?: number;
}

const DEFAULT_HOST_TIMEOUT_MS = 120_000;

export class RolloutRunner {
  private timer: NodeJS.Timeout | undefined;
  private readonly active = new Map<number, Promise<void>>();
  private ticking = false;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly d: RunnerDeps) {
    this.now = d.now ?? Date.now;
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), this.d.pollMs ?? 1000);
    this.timer.unref();
    void this.tick();
  }

  /** Stops taking waves; waits (bounded) for the hosts in flight so their steps are recorded. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const all = Promise.allSettled([...this.active.values()]);
    await Promise.race([all, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  /** One look at the store: every running rollout whose next wave is due gets it started. Also what tests call. */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      for (const r of await this.d.store.running()) {
        if (this.active.has(r.id) || r.nextWaveAt > this.now()) continue;
        const p = this.runWave(r)
          .catch((err: Error) => this.d.log.error({ rollout: r.id, err: err.message }, 'rollout wave failed'))
          .finally(() => this.active.delete(r.id));
        this.active.set(r.id, p);
      }
    } catch (err) {
      this.d.log.error({ err: (err as Error).message }, 'rollout poll failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Settles when every wave in flight has. */
  async idle(): Promise<void> {
    while (this.active.size) await Promise.allSettled([...this.active.values()]);
  }

  private async runWave(r: Rollout): Promise<void> {
    const hosts = await this.d.store.hosts(r.id);
    const wave = hosts.filter((h) => h.wave === r.nextWave);
    const last = hosts.reduce((n, h) => Math.max(n, h.wave), 0);
    this.d.log.info({ rollout: r.id, wave: r.nextWave, hosts: wave.length }, `rollout ${r.id}: wave ${r.nextWave + 1}`);
    await Promise.all(wave.map((h) => this.runHost(r, h)));
    if (r.nextWave >= last) {
      if (await this.d.store.finish(r.id, 'done')) this.d.log.info({ rollout: r.id }, `rollout ${r.id} done`);
      return;
    }
    // Waves are spaced whether or not they powered anything: power (breakers, a DHCP flood) and, as much, a rack's
    // installers all pulling the image at once.
    await this.d.store.advance(r.id, r.nextWave + 1, this.now() + r.waveIntervalMs);
  }

  /** Whether the host still belongs to a running rollout (a cancel from the API or CLI lands between steps). */
  private async live(id: number, mac: Mac): Promise<boolean> {
    const r = await this.d.store.get(id);
    if (r?.status !== 'running') return false;
    const h = (await this.d.store.hosts(id)).find((x) => x.mac === mac);
    return h !== undefined && h.step !== 'cancelled';
  }

  /** One host's steps from where it stands; true when a power action was sent. */
  private async runHost(r: Rollout, h: RolloutHost): Promise<boolean> {
    if (h.step === 'powered' || h.step === 'failed' || h.step === 'cancelled') return false;
    const actor = `rollout ${r.id} (${r.actor})`;
    let buildId = h.buildId;
    if (h.step === 'queued') {
      if (!(await this.live(r.id, h.mac))) return false;
      const b = await this.d.startBuild(h.mac, actor);
      if (!b.ok) {
        await this.d.store.setStep(r.id, h.mac, 'failed', `build not started: ${b.message}`);
        return false;
      }
      buildId = b.value.buildId;
      await this.d.store.setStep(r.id, h.mac, 'build-started', undefined, buildId);
      if (!(await this.live(r.id, h.mac))) {
        await this.d.cancelBuild(h.mac, actor); // cancelled while the build was being started
        return false;
      }
    }
    if (!r.power) {
      await this.d.store.setStep(r.id, h.mac, 'build-started', 'power not asked: power it on by hand', buildId);
      return false;
    }
    let driver: BmcDriver | undefined;
    try {
      driver = await this.d.bmcFor(h.mac);
      if (!driver) {
        await this.d.store.setStep(
          r.id,
          h.mac,
          'build-started',
          'no BMC: power it on by hand, or give the host a bmc',
          buildId,
        );
        return false;
      }
      return await withTimeout(
        this.powerSteps(r, h, driver, buildId, actor),
        this.d.hostTimeoutMs ?? DEFAULT_HOST_TIMEOUT_MS,
      );
    } catch (err) {
      const reason = (err as Error).message;
      await this.d.store.setStep(
        r.id,
        h.mac,
        'failed',
        `build started, BMC step failed: ${reason}: power it on by hand`,
        buildId,
      );
      // As src/bmc/power.ts records a BMC error: which BMC, what it answered.
      const b = err instanceof BmcError ? err : undefined;
      this.d.event({
        mac: h.mac,
        buildId,
        type: 'bmc.error',
        status: (b?.answer ?? reason).slice(0, 200),
        detail: { action: 'rollout', bmc: b?.bmc, answer: b?.answer ?? reason, retryable: b?.retryable, by: actor },
      });
      this.d.log.warn({ rollout: r.id, mac: h.mac, err: reason }, 'rollout: BMC step failed');
      return true;
    } finally {
      await driver?.close?.().catch(() => undefined);
    }
  }

  private async powerSteps(
    r: Rollout,
    h: RolloutHost,
    bmc: BmcDriver,
    buildId: number | undefined,
    actor: string,
  ): Promise<boolean> {
    if (h.step !== 'boot-set') {
      const fw = await this.d.firmwareOf(h.mac);
      await bmc.bootNetworkOnce(fw.mode);
      await this.d.store.setStep(r.id, h.mac, 'boot-set', `next boot: network once, ${fw.mode} (${fw.why})`, buildId);
      this.d.event({
        mac: h.mac,
        buildId,
        type: 'bmc.boot',
        status: `network once (${fw.mode})`,
        detail: { mode: fw.mode, by: actor, rollout: r.id, why: fw.why },
      });
    }
    if (!(await this.live(r.id, h.mac))) return false;
    const action = await powerAction(bmc);
    const after = await bmc.power(action);
    await this.d.store.setStep(
      r.id,
      h.mac,
      'powered',
      action === 'on' ? `powered on (now ${after})` : `was on: restarted (now ${after})`,
      buildId,
    );
    this.d.event({
      mac: h.mac,
      buildId,
      type: 'bmc.power',
      status: after,
      detail: { action, powerState: after, by: actor, rollout: r.id },
    });
    return true;
  }
}

/** On when off (or unknown: "on" is harmless on a machine that is on), restart when on. */
async function powerAction(bmc: BmcDriver): Promise<'on' | 'cycle'> {
  return (await bmc.powerState()) === 'on' ? 'cycle' : 'on';
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from the BMC within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
