// Installer log lines per build, on the store. Bounded three times: a ring per build (the newest
// `ringLines` lines stay), a cap on all lines together (the oldest go first) and an age (prune()), so
// neither a chatty installer nor months of rollouts can fill the disk. Writes are batched (one transaction
// per flush, like the timeline); a line lost to kill -9 is a log line, never a build record.
import type { Mac } from '../net/mac.ts';
import { SEVERITY_NAMES } from './syslog-parse.ts';

export interface SyslogLine {
  id: number;
  buildId: number;
  mac: Mac;
  at: number;
  clientIp?: string;
  facility: number;
  severity: number;
  host?: string;
  app?: string;
  text: string;
}

export type NewSyslogLine = Omit<SyslogLine, 'id'>;

export interface SyslogLimits {
  /** Lines kept per build (the newest). */
  ringLines: number;
  /** Lines kept over all builds (the oldest builds' lines go first). */
  maxTotalLines: number;
  /** Lines waiting for the next write; more are dropped (counted), so memory stays bounded. */
  maxQueued: number;
  /** Lines older than this are deleted by prune() (default 30 days). */
  maxAgeMs?: number;
}

export const DEFAULT_SYSLOG_MAX_AGE_MS = 30 * 86_400_000;

export interface SyslogSearch {
  buildId: number;
  q?: string;
  maxSeverity?: number;
  limit?: number;
  beforeId?: number;
  /** Only lines newer than this id, oldest first (a follower or a live view asking for what came since its last line). */
  afterId?: number;
}

export interface SyslogRow {
  id: number;
  build_id: number;
  mac: string;
  at: number;
  client_ip: string | null;
  facility: number;
  severity: number;
  host: string | null;
  app: string | null;
  text: string;
}

export function syslogFromRow(r: SyslogRow): SyslogLine {
  const l: SyslogLine = {
    id: r.id,
    buildId: r.build_id,
    mac: r.mac as Mac,
    at: r.at,
    facility: r.facility,
    severity: r.severity,
    text: r.text,
  };
  if (r.client_ip !== null) l.clientIp = r.client_ip;
  if (r.host !== null) l.host = r.host;
  if (r.app !== null) l.app = r.app;
  return l;
}

export interface SyslogStoreStats {
  queued: number;
  written: number;
  evicted: number;
  droppedQueueFull: number;
}

/** "2024-05-01T10:00:00.000Z err anaconda: text": one line as people read it. */
export function formatLine(l: Pick<SyslogLine, 'at' | 'severity' | 'app' | 'text'>): string {
  return `${new Date(l.at).toISOString()} ${SEVERITY_NAMES[l.severity] ?? l.severity}${l.app ? ` ${l.app}:` : ''} ${l.text}`;
}
