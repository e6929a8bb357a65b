// The Hosts list: search and sort over hosts with their chip, learnt address and last build. Pure.
import type { Chip } from './board.ts';
import type { Host } from '../store/hosts.ts';
import type { Build } from '../store/builds.ts';

export interface HostListRow {
  host: Host;
  chip: Chip;
  /** Where the host was last seen asking (DHCP, a verified kickstart fetch): may differ from a static ip. */
  learntIp?: string;
  lastBuild?: Pick<Build, 'id' | 'status' | 'createdAt' | 'finishedAt'>;
}

export const HOST_SORTS = ['hostname', 'rack', 'state', 'time', 'build'] as const;
export type HostSort = (typeof HOST_SORTS)[number];

export interface HostListQuery {
  /** Substring of hostname, MAC, IP, learnt IP, rack, position or profile; any case. */
  q?: string;
  sort?: HostSort;
  desc?: boolean;
}

/** Longest search text taken: a query string is the user's, and every row is matched against it. */
export const SEARCH_MAX = 100;

const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
/** State order on the list: what needs someone first. */
const STATE_RANK: Record<Chip['state'], number> = { failed: 0, expired: 1, build: 2, idle: 3, built: 4 };

export function parseHostListQuery(query: Record<string, unknown>): HostListQuery {
  const q = typeof query.q === 'string' ? query.q.trim().slice(0, SEARCH_MAX) : '';
  const sort = HOST_SORTS.find((s) => s === query.sort);
  return { q: q || undefined, sort, desc: query.dir === 'desc' };
}

export function hostList(rows: readonly HostListRow[], query: HostListQuery): HostListRow[] {
  const needle = query.q?.toLowerCase();
  const shown = needle
    ? rows.filter((r) =>
        [r.host.hostname, r.host.mac, r.host.ip, r.learntIp, r.host.rack, r.host.position, r.host.profile].some((v) =>
          v?.toLowerCase().includes(needle),
        ),
      )
    : [...rows];
  const byName = (a: HostListRow, b: HostListRow) => natural.compare(a.host.hostname, b.host.hostname);
  const compare: Record<HostSort, (a: HostListRow, b: HostListRow) => number> = {
    hostname: byName,
    rack: (a, b) =>
      natural.compare(a.host.rack ?? '', b.host.rack ?? '') ||
      natural.compare(a.host.position ?? '', b.host.position ?? '') ||
      byName(a, b),
    state: (a, b) =>
      STATE_RANK[a.chip.state] - STATE_RANK[b.chip.state] ||
      Number(b.chip.stuck) - Number(a.chip.stuck) ||
      byName(a, b),
    // Longest in its stage first.
    time: (a, b) => a.chip.since - b.chip.since || byName(a, b),
    // Newest build first; never built last.
    build: (a, b) => (b.lastBuild?.createdAt ?? -1) - (a.lastBuild?.createdAt ?? -1) || byName(a, b),
  };
  const cmp = compare[query.sort ?? 'rack'];
  shown.sort(query.desc ? (a, b) => cmp(b, a) : cmp);
  return shown;
}
