// Stuck detection, pure: from a build's timeline, the stage a host is in, how long it has been there, and
// whether that is past the stage's time limit. The watcher (stuck-watch.ts) acts on it.
import type { TimelineEntry } from './firmware.ts';

export interface StuckLimits {
  /** No DHCP this long after a power-on. */
  dhcpAfterPowerOnMs: number;
  /** No kernel/initrd this long after the loader (or after DHCP). */
  kernelAfterLoaderMs: number;
  /** No kickstart this long after the kernel. */
  kickstartAfterKernelMs: number;
  /** No built/failed callback this long after the kickstart. */
  builtAfterKickstartMs: number;
}

export const DEFAULT_STUCK_LIMITS: StuckLimits = {
  dhcpAfterPowerOnMs: 5 * 60_000,
  kernelAfterLoaderMs: 5 * 60_000,
  kickstartAfterKernelMs: 10 * 60_000,
  builtAfterKickstartMs: 60 * 60_000,
};

export type Stage = 'power-on' | 'dhcp' | 'loader' | 'kernel' | 'kickstart';

export interface Stuck {
  stage: Stage;
  /** What did not come. */
  waitingFor: 'dhcp' | 'loader or kernel' | 'kernel' | 'kickstart' | 'built';
  /** When the stage began (ms). */
  since: number;
  forMs: number;
  lastSeen?: { type: string; at: number; status?: string };
}

/** A power-on or restart through the BMC (src/bmc/power.ts, the rollout runner, this watcher: event bmc.power). */
export function isPowerOn(e: TimelineEntry): boolean {
  const action = e.detail?.action;
  return e.type === 'bmc.power' && (action === 'on' || action === 'cycle');
}

/** The automatic power-cycle of stuck detection (one per build). */
export function isAutoCycle(e: TimelineEntry): boolean {
  return isPowerOn(e) && e.detail?.auto === true;
}

const KERNEL_PATH = /(^|\/)(vmlinuz|initrd)[^/]*$/i;

/** The milestone an event marks, if any. */
export function milestoneOf(e: TimelineEntry): Stage | 'built' | undefined {
  if (e.type === 'build.built' || e.type === 'build.failed') return 'built';
  if (isPowerOn(e)) return 'power-on';
  if (e.type === 'kickstart.fetched') return 'kickstart';
  const path = e.detail?.path;
  if ((e.type === 'tftp.sent' || e.type.startsWith('http.')) && typeof path === 'string' && KERNEL_PATH.test(path))
    return 'kernel';
  if (e.type === 'pxelinux.config' || e.type === 'grub.config' || e.type === 'ipxe.config') return 'loader';
  if (e.type === 'dhcp.ack' || e.type === 'dhcp.offer') return 'dhcp';
  return undefined;
}

const ORDER: Record<Stage, number> = { 'power-on': 0, dhcp: 1, loader: 2, kernel: 3, kickstart: 4 };

function limitOf(stage: Stage, l: StuckLimits): { ms: number; waitingFor: Stuck['waitingFor'] } {
  switch (stage) {
    case 'power-on':
      return { ms: l.dhcpAfterPowerOnMs, waitingFor: 'dhcp' };
    case 'dhcp':
      return { ms: l.kernelAfterLoaderMs, waitingFor: 'loader or kernel' };
    case 'loader':
      return { ms: l.kernelAfterLoaderMs, waitingFor: 'kernel' };
    case 'kernel':
      return { ms: l.kickstartAfterKernelMs, waitingFor: 'kickstart' };
    case 'kickstart':
      return { ms: l.builtAfterKickstartMs, waitingFor: 'built' };
  }
}

/**
 * The stage of a build from its events (oldest first), and the time spent in it when past its limit.
 * A power-on starts over (an auto power-cycle gives the machine a fresh start); otherwise the furthest stage
 * reached counts, and it began at its latest event (a machine that re-DHCPs while loading is still loading).
 * No milestone yet: nothing to time (nobody said when the machine was powered on).
 */
export function stuckAt(events: readonly TimelineEntry[], now: number, limits: StuckLimits): Stuck | undefined {
  let stage: Stage | undefined;
  let since = 0;
  let last: TimelineEntry | undefined;
  for (const e of events) {
    if (e.type !== 'stuck') last = e;
    const m = milestoneOf(e);
    if (m === 'built') return undefined;
    if (!m) continue;
    if (m === 'power-on' || stage === undefined || ORDER[m] >= ORDER[stage]) {
      stage = m;
      since = e.at;
    }
  }
  if (!stage) return undefined;
  const { ms, waitingFor } = limitOf(stage, limits);
  const forMs = now - since;
  if (forMs < ms) return undefined;
  return {
    stage,
    waitingFor,
    since,
    forMs,
    ...(last ? { lastSeen: { type: last.type, at: last.at, ...(last.status ? { status: last.status } : {}) } } : {}),
  };
}

export type StuckAction = { kind: 'none' } | { kind: 'cycle'; stuck: Stuck } | { kind: 'mark'; stuck: Stuck };

/** What the watcher does now: one automatic power-cycle per build when the host has a BMC, then mark it stuck (once per stage). */
export function stuckAction(
  events: readonly TimelineEntry[],
  now: number,
  limits: StuckLimits,
  hasBmc: boolean,
): StuckAction {
  const stuck = stuckAt(events, now, limits);
  if (!stuck) return { kind: 'none' };
  if (events.some((e) => e.type === 'stuck' && e.at >= stuck.since)) return { kind: 'none' };
  const cycled = events.some(isAutoCycle);
  return hasBmc && !cycled ? { kind: 'cycle', stuck } : { kind: 'mark', stuck };
}

/** The stuck mark a host shows now: the watcher's latest `stuck` event, unless a milestone came after it. */
export function currentStuck(events: readonly TimelineEntry[], now: number): StuckView | undefined {
  let mark: TimelineEntry | undefined;
  for (const e of events) {
    if (e.type === 'stuck') mark = e;
    else if (mark && milestoneOf(e)) mark = undefined;
  }
  if (!mark) return undefined;
  const d = mark.detail ?? {};
  const stage = typeof d.stage === 'string' ? d.stage : 'unknown';
  const since = typeof d.since === 'number' ? d.since : mark.at;
  const lastSeen = d.lastSeen as StuckView['lastSeen'];
  const forSeconds = Math.max(0, Math.round((now - since) / 1000));
  return {
    stage,
    waitingFor: typeof d.waitingFor === 'string' ? d.waitingFor : 'the next stage',
    since: new Date(since).toISOString(),
    forSeconds,
    lastSeen,
    autoCycled: events.some(isAutoCycle),
    text: `stuck: ${stage} for ${formatDuration(forSeconds * 1000)}`,
  };
}

/** What the host API says (field `stuck`, null when not stuck). */
export interface StuckView {
  stage: string;
  waitingFor: string;
  since: string;
  forSeconds: number;
  lastSeen?: { type: string; at: number; status?: string };
  autoCycled: boolean;
  /** One line: "stuck: power-on for 6m". */
  text: string;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? ` ${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 ? ` ${m % 60}m` : ''}`;
}
