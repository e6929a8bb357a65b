// The store: one interface over every table rackboot keeps, on SQLite (embedded, the default) or PostgreSQL
// (several nodes sharing one inventory). Methods return Promises; the SQLite implementation does its work
// synchronously inside them, as before.
//
// Query layer, and why: node-postgres (`pg`) with plain SQL, not an ORM or a typed builder.
// - `pg` is the driver Debian and RHEL ship (node-pg), 15 years in production, pure JavaScript (nothing to build
//   next to better-sqlite3), and it has LISTEN/NOTIFY on a plain Client, which the in-memory view needs.
//   `postgres` (porsager) is faster on paper, but the hot paths never query per packet anyway (src/store/view.ts).
// - Kysely would give types to the queries, but rackboot's queries are few, short and fixed; what differs between
//   the two dialects is only placeholders, 64-bit integers and three spellings (LIMIT -1, LIKE's case, MIN()).
//   A thin Sql interface (src/store/sql.ts: `?` placeholders, tx(), lockKey()) keeps ONE set of queries, each
//   repository written once in src/store/repo/, and the migrations written once (ddlFor() adapts them), with no
//   new layer to learn and no generated types to keep in step.
//
// Adding a table: append a migration to MIGRATIONS in src/store/db.ts (SQLite spelling: INTEGER, AUTOINCREMENT;
// PostgreSQL gets BIGINT and identity columns from ddlFor()), write a repository class over Sql in src/store/repo/,
// add it to Store below and to both open functions (one line each, in openRepos), and add the table to BACKUP_TABLES
// (src/store/dump.ts) so backup/restore carry it. The contract suite (test/integration/store-contract.test.ts)
// then runs its tests on both stores.
import type { Dialect, Sql } from './sql.ts';
import { SqliteGate, SqliteSql } from './sqlite-sql.ts';
import type { PgSql } from './pg-sql.ts';
import { openDb } from './db.ts';
import { ChangeFeed, parseChange } from './changes-feed.ts';
import { HostRepo } from './repo/hosts.ts';
import { BuildRepo } from './repo/builds.ts';
import { EventRepo } from './repo/events.ts';
import { ApiTokenRepo, SessionRepo, UserRepo } from './repo/users.ts';
import { AuditRepo, DiscoveredRepo, ImageRepo, SettingsRepo } from './repo/small.ts';
import { SyslogRepo } from './repo/syslog.ts';
import { LeaseRepo } from './repo/leases.ts';
import { NodeRepo } from './repo/nodes.ts';
import { LeaderRepo } from './repo/leaders.ts';
import { RolloutRepo } from './repo/rollouts.ts';
import { WebhookDeliveryRepo } from './repo/webhooks.ts';
import { BmcRepo } from './repo/bmc.ts';
import type { SecretBox } from '../bmc/secret-box.ts';
import { loadBuildSecret, sharedBuildSecret } from './build-secret.ts';
import type { EventLimits } from './events.ts';
import type { SessionPolicy } from './users.ts';
import type { SyslogLimits } from '../ops/syslog-store.ts';
import { randomBytes } from 'node:crypto';
import { parseDatabase, redactUrl } from './target.ts';

export { parseDatabase, redactUrl, type DatabaseTarget } from './target.ts';

export type { Sql, Dialect } from './sql.ts';
export type { StoreChange, ChangeKind } from './changes-feed.ts';

export interface Store {
  readonly dialect: Dialect;
  /** Where the data is, for logs and doctor: a file path, or postgres://user@host/db without the password. */
  readonly location: string;
  /** This process's id among the nodes (NOTIFY payloads name it; each node ignores its own). */
  readonly node: string;
  /** The durable connection (FULL on SQLite): builds, hosts, leases, users. */
  readonly sql: Sql;
  readonly hosts: HostRepo;
  readonly builds: BuildRepo;
  readonly events: EventRepo;
  readonly leases: LeaseRepo;
  readonly users: UserRepo;
  readonly sessions: SessionRepo;
  readonly apiTokens: ApiTokenRepo;
  readonly audit: AuditRepo;
  readonly images: ImageRepo;
  readonly discovered: DiscoveredRepo;
  readonly settings: SettingsRepo;
  readonly syslog: SyslogRepo;
  /** The serving nodes sharing this database, and their heartbeats. */
  readonly nodes: NodeRepo;
  /** Which node carries out the once-per-database duties (src/store/repo/leaders.ts). */
  readonly leaders: LeaderRepo;
  readonly rollouts: RolloutRepo;
  readonly webhookDeliveries: WebhookDeliveryRepo;
  /** Hosts' BMCs; passwords sealed with StoreOptions.bmcBox. */
  readonly bmc: BmcRepo;
  /** What changed, here or (PostgreSQL) on any node: feeds src/store/view.ts and live pages. */
  readonly changes: ChangeFeed;
  /** Flushes queued events and log lines, then closes the connections. */
  close(): Promise<void>;
}

export interface StoreOptions {
  /** `postgres://user@host/db` (or postgresql://), a file path, or undefined for `<dataDir>/rackboot.db`. */
  database?: string;
  dataDir: string;
  /**
   * The first value of the database's build token secret (src/store/build-secret.ts), used only when the
   * database has none yet: the data dir's secret.key, so tokens handed out before keep working.
   */
  secret: Buffer;
  now?: () => number;
  eventLimits?: Partial<EventLimits>;
  syslogLimits?: SyslogLimits;
  sessionPolicy?: SessionPolicy;
  callbackGraceMs?: number;
  /** This node's id (config nodeId), written on the events it records. */
  nodeId?: string;
  /** Rows kept in the discovered table (default 10,000). */
  discoveredMaxRows?: number;
  /** How often nodes heartbeat (config nodeHeartbeat): a node is dead after three missed. */
  nodeHeartbeatMs?: number;
  /** PostgreSQL connections per node (default 10). */
  poolSize?: number;
  /**
   * Seals and opens BMC passwords (src/bmc/secret-box.ts, from the data dir's bmc.key). Without it the BMC
   * repository still lists and removes BMCs, but refuses to store a password or open one (bmcConfig).
   */
  bmcBox?: SecretBox;
}

export const DEFAULT_SYSLOG_LIMITS: SyslogLimits = { ringLines: 5000, maxTotalLines: 1_000_000, maxQueued: 10_000 };

function openRepos(
  sql: Sql,
  timeline: Sql,
  o: StoreOptions,
  feed: ChangeFeed,
): Omit<Store, 'dialect' | 'location' | 'node' | 'close'> {
  const now = o.now ?? Date.now;
  const users = new UserRepo(sql, now);
  return {
    sql,
    changes: feed,
    hosts: new HostRepo(sql, feed, now),
    builds: new BuildRepo(sql, feed, o.secret, now, timeline, o.callbackGraceMs),
    events: new EventRepo(timeline, now, o.eventLimits, o.nodeId),
    leases: new LeaseRepo(sql),
    users,
    sessions: new SessionRepo(sql, users, o.sessionPolicy, now),
    apiTokens: new ApiTokenRepo(sql, users, now),
    audit: new AuditRepo(sql, now),
    images: new ImageRepo(sql, feed),
    discovered: new DiscoveredRepo(sql, o.discoveredMaxRows, now),
    settings: new SettingsRepo(sql, feed),
    syslog: new SyslogRepo(timeline, o.syslogLimits ?? DEFAULT_SYSLOG_LIMITS),
    nodes: new NodeRepo(sql, now, o.nodeHeartbeatMs),
    leaders: new LeaderRepo(sql, now),
    rollouts: new RolloutRepo(sql, now),
    webhookDeliveries: new WebhookDeliveryRepo(sql),
    bmc: new BmcRepo(sql, o.bmcBox, now),
  };
}

export async function openStore(o: StoreOptions): Promise<Store> {
  const target = parseDatabase(o.database, o.dataDir);
  return target.dialect === 'sqlite' ? openSqliteStore(target.file, o) : openPostgresStore(target.url, o);
}

/** SQLite: the build lifecycle through a FULL (fsync per commit) connection, the timeline through NORMAL. */
export function openSqliteStore(file: string, o: StoreOptions): Store {
  const full = openDb(file, 'full');
  const normal = file === ':memory:' ? full : openDb(file, 'normal');
  const feed = new ChangeFeed();
  const gate = new SqliteGate();
  const secret = sharedBuildSecret(full, () => o.secret);
  const repos = openRepos(new SqliteSql(full, gate), new SqliteSql(normal, gate), { ...o, secret }, feed);
  return {
    dialect: 'sqlite',
    location: file,
    node: `${process.pid}`,
    ...repos,
    async close() {
      await repos.events.flush();
      await repos.syslog.flush();
      if (normal !== full) normal.close();
      full.close();
    },
  };
}

const CHANNEL = 'rackboot_changes';
const LISTEN_RETRY_MS = 2000;

/** PostgreSQL: migrations under an advisory lock, then a pool, and one LISTEN connection for other nodes' changes. */
export async function openPostgresStore(url: string, o: StoreOptions): Promise<Store> {
  // Loaded only here: node-postgres costs ~30 ms of every start, and the embedded default never uses it.
  const [{ PgSql }, { migratePostgres }] = await Promise.all([import('./pg-sql.ts'), import('./pg-migrate.ts')]);
  const sql = new PgSql(url, o.poolSize);
  const node = `${randomBytes(6).toString('hex')}`;
  const feed = new ChangeFeed();
  let listener: Awaited<ReturnType<PgSql['listen']>> | undefined;
  let closed = false;
  const onNotify = (payload: string) => {
    const c = parseChange(payload);
    if (c && c.node !== node) void feed.deliver(c.mac ? { kind: c.kind, mac: c.mac } : { kind: c.kind });
  };
  // A lost LISTEN connection (database restart, failover) is reopened every few seconds; what was said meanwhile
  // is lost, so the reopened feed says 'resync' and the view reloads whole.
  const listen = async (): Promise<void> => {
    listener = await sql.listen(CHANNEL, onNotify, () => {
      const lost = listener;
      listener = undefined;
      void lost?.end().catch(() => {});
      const retry = () => {
        if (closed) return;
        listen().then(
          () => void feed.deliver({ kind: 'resync' }),
          () => setTimeout(retry, LISTEN_RETRY_MS).unref(),
        );
      };
      setTimeout(retry, LISTEN_RETRY_MS).unref();
    });
  };
  try {
    await migratePostgres(sql.pool);
    await listen();
  } catch (e) {
    await sql.close();
    throw new Error(`--database ${redactUrl(url)}: ${(e as Error).message}`, { cause: e });
  }
  feed.remote = async (c) => {
    await sql.run('SELECT pg_notify(?, ?)', [CHANNEL, JSON.stringify({ ...c, node })]);
  };
  let secret: Buffer;
  try {
    secret = await loadBuildSecret(sql, () => o.secret);
  } catch (e) {
    await listener?.end().catch(() => {});
    await sql.close();
    throw new Error(`--database ${redactUrl(url)}: ${(e as Error).message}`, { cause: e });
  }
  const timeline = new PgSql(url, Math.max(2, Math.ceil((o.poolSize ?? 10) / 4)), true);
  const repos = openRepos(sql, timeline, { ...o, secret }, feed);
  return {
    dialect: 'postgres',
    location: redactUrl(url),
    node,
    ...repos,
    async close() {
      await repos.events.flush();
      await repos.syslog.flush();
      closed = true;
      await listener?.end().catch(() => {});
      await timeline.close();
      await sql.close();
    },
  };
}
