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
/** One wording for a state wherever it shows (board counts, filters, host page, hosts list). */
export const STATE_LABELS: Record<HostState, string> = {
  idle: 'idle',
  build: 'in build',
  built: 'built',
  failed: 'failed',
  expired: 'token expired',
};
/** The board's filters: a state, or stuck (a host past its stage's time limit, from the rollout's stuck detection). */
export type BoardView = HostState | 'stuck';
export const VIEWS: readonly BoardView[] = ['build', 'stuck', 'failed', 'expired', 'built', 'idle'];
export const VIEW_LABELS: Record<BoardView, string> = { ...STATE_LABELS, stuck: 'stuck' };

/** A host past its stage's time limit, as the rollout's stuck detection reports it. */
export interface Stuck {
  /** The stage it stopped in, as the rollout names it ("dhcp", "kernel", ...). */
  stage: string;
  /** Since when it has been there (ms). */
  since: number;
  /** The last thing seen of it ("tftp.sent vmlinuz from 10.0.0.12"). */
  lastSeen?: string;
}

/** Longest reason line a chip carries: one line on a chip, the host page has the whole log. */
const REASON_MAX = 160;

export interface Chip {
  mac: string;
  hostname: string;
  rack: string;
  position: string;
  profile: string;
  state: HostState;
  /** The state in the board's one wording ("in build", "token expired"). */
  stateLabel: string;
  stage: Stage;
  /** The stage as a person reads it: "installing: nodectl-init". */
  label: string;
  /** When the host entered this stage (ms). */
  since: number;
  /** Why, in one line, when the host failed or is stuck. */
  reason?: string;
  stuck: boolean;
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
  stuck?: Stuck,
): Chip {
  const chip = chipOfState(host, build, state, events, now);
  if (!stuck || state !== 'build') return chip;
  const reason = oneLine(
    `stuck: ${stuck.stage} for ${formatDuration(now - stuck.since)}${stuck.lastSeen ? `; last seen: ${stuck.lastSeen}` : ''}`,
  );
  return { ...chip, stuck: true, reason };
}

function chipOfState(
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
    stateLabel: STATE_LABELS[state],
    stuck: false,
  };
  if (!build || state === 'idle') {
    const since = build?.finishedAt ?? host.updatedAt;
    return { ...base, stage: 'idle', label: STAGE_LABELS.idle, since: Math.min(since, now) };
  }
  if (state === 'built')
    return { ...base, stage: state, label: STAGE_LABELS[state], since: build.finishedAt ?? build.createdAt };
  if (state === 'failed')
    return {
      ...base,
      stage: state,
      label: STAGE_LABELS[state],
      since: build.finishedAt ?? build.createdAt,
      reason: failureReason(build, events),
    };
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
  return { ...base, stage, label: stageLabel(stage, step), since };
}

/** "installing: nodectl-init"; a step that only repeats the stage ("installing") adds nothing. */
export function stageLabel(stage: Stage, step?: string): string {
  const s = step === undefined ? '' : oneLine(step);
  if (stage !== 'installing' || !s || s.toLowerCase() === STAGE_LABELS.installing) return STAGE_LABELS[stage];
  return oneLine(`${STAGE_LABELS.installing}: ${s}`);
}

/** One printable line of at most REASON_MAX characters. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
  return flat.length > REASON_MAX ? `${flat.slice(0, REASON_MAX - 1)}…` : flat;
}

/**
 * Why a build failed, in one line: the last line the installer said (its failure log, else the syslog tail
 * of the build.failed event), after the last step it reported.
 */
export function failureReason(build: Build, events: readonly HostEvent[]): string {
  const mine = events.filter((e) => e.buildId === build.id);
  const lastLine = (text: string | undefined) =>
    text
      ?.split(/\r?\n/)
      .map((l) => l.trim())
      .filter(Boolean)
      .pop();
  const failed = mine.filter((e) => e.type === 'build.failed').pop();
  const tail = failed?.detail?.syslogTail;
  const said =
    lastLine(build.failureLog) ??
    (Array.isArray(tail) ? lastLine(tail.filter((x) => typeof x === 'string').join('\n')) : undefined);
  const step = mine.filter((e) => e.type === 'progress' && e.status).pop()?.status;
  const where = step ? `failed at ${oneLine(step)}` : 'failed';
  return oneLine(said ? `${where}: ${said}` : `${where} (the installer sent no log)`);
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
  /** A state, or "stuck". */
  state?: string;
  /** "time": longest in its stage first; default: by position. */
  sort?: string;
}

export interface RackGroup {
  rack: string;
  chips: Chip[];
  /** Hosts in the rack, shown or not (what a rack build builds). */
  hosts: number;
  counts: Record<BoardView, number>;
}

export interface Board {
  racks: RackGroup[];
  counts: Record<BoardView, number>;
  total: number;
  /** Values for the filter menus, from all hosts (not only the shown ones). */
  rackNames: string[];
  profileNames: string[];
  /** The filters and counts in the order they show, with their one wording. */
  views: { view: BoardView; label: string }[];
}

const zero = (): Record<BoardView, number> => ({ idle: 0, build: 0, built: 0, failed: 0, expired: 0, stuck: 0 });

/** Whether a chip shows under a view: stuck hosts are in build too. */
export function inView(c: Pick<Chip, 'state' | 'stuck'>, view: string | undefined): boolean {
  if (!view) return true;
  return view === 'stuck' ? c.stuck : c.state === view;
}

/** Position "U12" sorts before "U3"? No: numbers inside labels compare as numbers. */
const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

export function buildBoard(chips: readonly Chip[], filter: BoardFilter): Board {
  const rackNames = [...new Set(chips.map((c) => c.rack))].sort(natural.compare);
  const profileNames = [...new Set(chips.map((c) => c.profile))].sort(natural.compare);
  const shown = chips.filter(
    (c) =>
      (!filter.rack || c.rack === filter.rack) &&
      (!filter.profile || c.profile === filter.profile) &&
      inView(c, filter.state),
  );
  const groups = new Map<string, RackGroup>();
  const counts = zero();
  for (const c of shown) {
    let g = groups.get(c.rack);
    if (!g) groups.set(c.rack, (g = { rack: c.rack, chips: [], hosts: 0, counts: zero() }));
    g.chips.push(c);
    g.counts[c.state]++;
    counts[c.state]++;
    if (c.stuck) {
      g.counts.stuck++;
      counts.stuck++;
    }
  }
  for (const c of chips) {
    const g = groups.get(c.rack);
    if (g) g.hosts++;
  }
  const racks = [...groups.values()].sort((a, b) =>
    a.rack === '' ? 1 : b.rack === '' ? -1 : natural.compare(a.rack, b.rack),
  );
  const byPosition = (a: Chip, b: Chip) =>
    natural.compare(a.position, b.position) || natural.compare(a.hostname, b.hostname);
  for (const g of racks)
    g.chips.sort(filter.sort === 'time' ? (a, b) => a.since - b.since || byPosition(a, b) : byPosition);
  const views = VIEWS.map((view) => ({ view, label: VIEW_LABELS[view] }));
  return { racks, counts, total: shown.length, rackNames, profileNames, views };
}
