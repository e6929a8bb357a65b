// The serving nodes that share this database: each `rackboot serve` registers itself at start and
// heartbeats; GET /api/nodes and the nodes page read it. A node is alive while its heartbeat is recent.

export interface NodeInfo {
  id: string;
  /** undefined: the node serves every site. */
  site?: string;
  version: string;
  /** The provisioning-network address (server IP) and the URL its boot configs and kickstarts name. */
  address: string;
  publicUrl: string;
  /** Ports bound, by service (http, https, tftp, dhcp, syslog). */
  ports: Record<string, number | number[]>;
  startedAt: number;
  heartbeatAt: number;
  /** Set by a clean shutdown; a node killed with kill -9 only stops heartbeating. */
  stoppedAt?: number;
}

export interface NodeView extends NodeInfo {
  alive: boolean;
  /** The once-per-database duties this node holds now (src/store/repo/leaders.ts), e.g. 'rollouts'. */
  duties: string[];
}

/** How often a node heartbeats by default (config nodeHeartbeat); three missed beats make it dead. */
export const HEARTBEAT_MS = 5_000;
export const MISSED_BEATS = 3;
/** A node not heard of for this long is forgotten (ids of retired nodes must not pile up). */
export const FORGET_AFTER_MS = 7 * 86_400_000;

export interface NodeRow {
  id: string;
  site: string | null;
  version: string;
  address: string;
  public_url: string;
  ports: string;
  started_at: number;
  heartbeat_at: number;
  stopped_at: number | null;
}

/** Pure: whether a node counts as alive at `now`. */
export function isAlive(
  n: Pick<NodeInfo, 'heartbeatAt' | 'stoppedAt'>,
  now: number,
  heartbeatMs: number = HEARTBEAT_MS,
): boolean {
  return n.stoppedAt === undefined && now - n.heartbeatAt < MISSED_BEATS * heartbeatMs;
}

export function nodeFromRow(r: NodeRow, now: number, heartbeatMs?: number): Omit<NodeView, 'duties'> {
  // PostgreSQL returns BIGINT as a string.
  r = {
    ...r,
    started_at: Number(r.started_at),
    heartbeat_at: Number(r.heartbeat_at),
    stopped_at: r.stopped_at === null ? null : Number(r.stopped_at),
  };
  const n: NodeInfo = {
    id: r.id,
    version: r.version,
    address: r.address,
    publicUrl: r.public_url,
    ports: JSON.parse(r.ports) as NodeInfo['ports'],
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
  };
  if (r.site !== null) n.site = r.site;
  if (r.stopped_at !== null) n.stoppedAt = r.stopped_at;
  return { ...n, alive: isAlive(n, now, heartbeatMs) };
}

export interface NodeRegistry {
  register(n: Omit<NodeInfo, 'startedAt' | 'heartbeatAt' | 'stoppedAt'>): Promise<void>;
  heartbeat(id: string, ports?: NodeInfo['ports']): Promise<void>;
  stopped(id: string): Promise<void>;
  list(): Promise<NodeView[]>;
}
