// Where each host is in its build, from its latest build and the events since it started. Pure.
import type { Build, HostState } from '../store/builds.ts';
import type { HostEvent } from '../store/events.ts';
import type { Host } from '../store/hosts.ts';

export type Stage =
  'idle' | 'pending' | 'dhcp' | 'loader' | 'kernel' | 'kickstart' | 'installing' | 'built' | 'failed' | 'expired';

export const STAGE_LABELS: Record<Stage, string> = {
  idle: 'idle',
  pending: 'build pending',
  dhcp: 'DHCP',
  loader: 'loader',
  kernel: 'kernel/initrd',
  kickstart: 'kickstart fetched',
  installing: 'installing',
  built: 'built',
  failed: 'failed',
  expired: 'token expired',
};
export const STATES: readonly HostState[] = ['idle', 'build', 'built', 'failed', 'expired'];

export interface Chip {
  mac: string;
  hostname: string;
  rack: string;
  position: string;
  profile: string;
  state: HostState;
  stage: Stage;
  /** The stage as a person reads it: "installing: nodectl-init". */
  label: string;
  /** When the host entered this stage (ms). */
  since: number;
}

// The order a PXE install goes through; a later event never moves a host back (a retried DHCP
// during the install is noise, not a regression).
const ORDER: Stage[] = ['pending', 'dhcp', 'loader', 'kernel', 'kickstart', 'installing'];

const KERNEL_FILE = /(^|\/)(vmlinuz|initrd)[^/]*$/i;
const LOADER_FILE = /(\.(0|efi|kpxe|pxe|c32)$)|(^|\/)(pxelinux|lpxelinux|grub|shim|undionly|ipxe)/i;

/** Which stage one event says the host has reached, if any. */
export function stageOfEvent(e: Pick<HostEvent, 'type' | 'detail'>): Stage | undefined {
  const t = e.type;
  if (t === 'build.start') return 'pending';
  if (t.startsWith('dhcp.')) return 'dhcp';
  if (t === 'pxelinux.config' || t === 'grub.config' || t === 'ipxe.config') return 'loader';
  if (t === 'tftp.sent' || t === 'http.tftpfile') {
    const path = typeof e.detail?.path === 'string' ? e.detail.path : '';
    if (KERNEL_FILE.test(path)) return 'kernel';
    if (LOADER_FILE.test(path)) return 'loader';
    return undefined;
  }
  if (t === 'http.image') return 'installing';
  if (t === 'kickstart.fetched') return 'kickstart';
  if (t === 'progress') return 'installing';
  return undefined;
}

/** The chip of one host. `events` are the host's recent timeline, oldest first. */
export function chipOf(
  host: Host,
  build: Build | undefined,
  state: HostState,
  events: readonly HostEvent[],
  now: number,
): Chip {
  const base = {
    mac: host.mac,
    hostname: host.hostname,
    rack: host.rack ?? '',
    position: host.position ?? '',
    profile: host.profile,
    state,
  };
  if (!build || state === 'idle') {
    const since = build?.finishedAt ?? host.updatedAt;
    return { ...base, stage: 'idle', label: STAGE_LABELS.idle, since: Math.min(since, now) };
  }
  if (state === 'built' || state === 'failed')
    return { ...base, stage: state, label: STAGE_LABELS[state], since: build.finishedAt ?? build.createdAt };
  if (state === 'expired') return { ...base, stage: 'expired', label: STAGE_LABELS.expired, since: build.expiresAt };
  let stage: Stage = 'pending';
  let since = build.createdAt;
  let step: string | undefined;
  for (const e of events) {
    if (e.at < build.createdAt || (e.buildId !== undefined && e.buildId !== build.id)) continue;
    const s = stageOfEvent(e);
    if (!s) continue;
    if (ORDER.indexOf(s) > ORDER.indexOf(stage)) {
      stage = s;
      since = e.at;
    }
    if (
      s === 'installing' &&
      e.type === 'progress' &&
      e.status &&
      e.status !== step &&
      ORDER.indexOf(stage) === ORDER.indexOf('installing')
    ) {
      step = e.status;
      since = e.at;
    }
  }
  const label = stage === 'installing' && step ? `${STAGE_LABELS.installing}: ${step}` : STAGE_LABELS[stage];
  return { ...base, stage, label, since };
}

/** "45s", "12m 03s", "3h 20m", "2d 4h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export interface BoardFilter {
  rack?: string;
  profile?: string;
  state?: string;
}

export interface RackGroup {
  rack: string;
  chips: Chip[];
  counts: Record<HostState, number>;
}

export interface Board {
  racks: RackGroup[];
  counts: Record<HostState, number>;
  total: number;
  /** Values for the filter menus, from all hosts (not only the shown ones). */
  rackNames: string[];
  profileNames: string[];
}

const zero = (): Record<HostState, number> => ({ idle: 0, build: 0, built: 0, failed: 0, expired: 0 });

/** Position "U12" sorts before "U3"? No: numbers inside labels compare as numbers. */
const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

export function buildBoard(chips: readonly Chip[], filter: BoardFilter): Board {
  const rackNames = [...new Set(chips.map((c) => c.rack))].sort(natural.compare);
  const profileNames = [...new Set(chips.map((c) => c.profile))].sort(natural.compare);
  const shown = chips.filter(
    (c) =>
      (!filter.rack || c.rack === filter.rack) &&
      (!filter.profile || c.profile === filter.profile) &&
      (!filter.state || c.state === filter.state),
  );
  const groups = new Map<string, RackGroup>();
  const counts = zero();
  for (const c of shown) {
    let g = groups.get(c.rack);
    if (!g) groups.set(c.rack, (g = { rack: c.rack, chips: [], counts: zero() }));
    g.chips.push(c);
    g.counts[c.state]++;
    counts[c.state]++;
  }
  const racks = [...groups.values()].sort((a, b) =>
    a.rack === '' ? 1 : b.rack === '' ? -1 : natural.compare(a.rack, b.rack),
  );
  for (const g of racks)
    g.chips.sort((a, b) => natural.compare(a.position, b.position) || natural.compare(a.hostname, b.hostname));
  return { racks, counts, total: shown.length, rackNames, profileNames };
}
