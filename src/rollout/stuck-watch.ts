// Watches hosts in build against the stage time limits (stuck.ts): past one, a host with a BMC gets one
// automatic power-cycle (network boot once first), recorded on its timeline; then, or without a BMC, an event
// `stuck` marks it. Runs in the serving process; its events are what every page and API response read.
import type { Logger } from '../log.ts';
import type { Mac } from '../net/mac.ts';
import type { BmcDriver } from '../bmc/driver.ts';
import type { FirmwareGuess, TimelineEntry } from './firmware.ts';
import { formatDuration, stuckAction, type Stuck, type StuckLimits } from './stuck.ts';

export interface StuckWatchDeps {
  /** Hosts whose build is live now, with when that build began. */
  inBuild(): { mac: Mac; buildId: number; since: number }[];
  timeline(mac: Mac): Promise<TimelineEntry[]>;
  bmcFor(mac: Mac): Promise<BmcDriver | undefined>;
  firmwareOf(mac: Mac): Promise<FirmwareGuess>;
  event(e: { mac: Mac; buildId?: number; type: string; status?: string; detail?: Record<string, unknown> }): void;
  limits: StuckLimits;
  log: Logger;
  now?: () => number;
  checkEveryMs: number;
}

/** Hosts acted on at once per check: a rack stuck together must not hold hundreds of BMC sessions. */
const PARALLEL = 8;

export class StuckWatch {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly d: StuckWatchDeps) {
    this.now = d.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.d.checkEveryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass over the hosts in build (never two at once). */
  check(): Promise<void> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<void> {
    const todo: { mac: Mac; buildId: number; action: 'cycle' | 'mark'; stuck: Stuck; events: TimelineEntry[] }[] = [];
    // No stage can have outlasted its limit in a build younger than the shortest limit: its timeline is not read
    // (a rack just powered on is all such builds, and 1,000 timeline reads a pass cost its kickstarts 4 % of CPU).
    const l = this.d.limits;
    const shortest = Math.min(
      l.dhcpAfterPowerOnMs,
      l.kernelAfterLoaderMs,
      l.kickstartAfterKernelMs,
      l.builtAfterKickstartMs,
    );
    try {
      for (const b of this.d.inBuild()) {
        if (this.now() - b.since < shortest) continue;
        // A turn of the event loop per host: on SQLite each timeline read runs on this thread, and a pass over
        // 1,000 hosts in build read back to back held every request behind it (kickstart p99 20 ms).
        await new Promise<void>((r) => setImmediate(r));
        const events = (await this.d.timeline(b.mac)).filter((e) => e.at >= b.since);
        const a = stuckAction(events, this.now(), this.d.limits, true);
        if (a.kind !== 'none') todo.push({ ...b, action: a.kind, stuck: a.stuck, events });
      }
    } catch (err) {
      this.d.log.error({ err: (err as Error).message }, 'stuck check failed');
      return;
    }
    for (let i = 0; i < todo.length; i += PARALLEL)
      await Promise.all(todo.slice(i, i + PARALLEL).map((t) => this.act(t.mac, t.buildId, t.action, t.stuck)));
  }

  private async act(mac: Mac, buildId: number, action: 'cycle' | 'mark', stuck: Stuck): Promise<void> {
    const text = `${stuck.stage} for ${formatDuration(stuck.forMs)} (no ${stuck.waitingFor})`;
    let bmcError: string | undefined;
    if (action === 'cycle') {
      let bmc: BmcDriver | undefined;
      try {
        bmc = await this.d.bmcFor(mac);
        if (bmc) {
          const fw = await this.d.firmwareOf(mac);
          await bmc.bootNetworkOnce(fw.mode);
          const after = await bmc.power('cycle');
          this.d.event({
            mac,
            buildId,
            type: 'bmc.power',
            status: after,
            detail: {
              action: 'cycle',
              powerState: after,
              by: 'stuck detection',
              auto: true,
              reason: `stuck: ${text}`,
              firmware: fw.mode,
            },
          });
          this.d.log.warn({ mac, buildId }, `stuck: ${text}: power-cycled through its BMC`);
          return;
        }
      } catch (err) {
        bmcError = (err as Error).message;
      } finally {
        await bmc?.close?.().catch(() => undefined);
      }
    }
    this.d.event({
      mac,
      buildId,
      type: 'stuck',
      status: stuck.stage,
      detail: {
        stage: stuck.stage,
        waitingFor: stuck.waitingFor,
        since: stuck.since,
        forSeconds: Math.round(stuck.forMs / 1000),
        lastSeen: stuck.lastSeen,
        ...(bmcError ? { bmcError } : {}),
      },
    });
    this.d.log.warn({ mac, buildId, bmcError }, `stuck: ${text}`);
  }
}
