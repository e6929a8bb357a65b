// SQLite store: one file, WAL, versioned migrations. In WAL mode every commit survives kill -9.
// Power loss is another matter: synchronous=NORMAL may lose the last commits, FULL fsyncs each one.
// So the build lifecycle writes through its own FULL connection, and the busy timeline through NORMAL.
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ensurePrivateFile, tightenIfPresent } from '../ops/private-files.ts';

export type Db = Database.Database;

/** Every migration, in order; the index + 1 is the schema version. Both stores run these (src/store/migrate.ts). */
/** SQLite's spelling (PostgreSQL's through ddlFor()), or both texts where the two cannot share one (triggers). */
export type Migration = string | { sqlite: string; postgres: string };

export const MIGRATIONS: Migration[] = [
  `CREATE TABLE hosts (
     mac TEXT PRIMARY KEY,
     hostname TEXT NOT NULL UNIQUE,
     profile TEXT NOT NULL,
     ip TEXT UNIQUE,
     netmask TEXT, gateway TEXT, nameservers TEXT, domain TEXT,
     rack TEXT, position TEXT,
     uuid TEXT,
     params TEXT NOT NULL DEFAULT '{}',
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
   );
   CREATE INDEX hosts_uuid ON hosts(uuid);
   CREATE TABLE builds (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     mac TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     token_prefix TEXT NOT NULL,
     nonce TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('pending','built','failed','cancelled','superseded')),
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
     ks_fetched_at INTEGER, ks_fetched_from TEXT,
     finished_at INTEGER, failure_log TEXT
   );
   CREATE INDEX builds_mac ON builds(mac, id);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     mac TEXT NOT NULL, build_id INTEGER,
     at INTEGER NOT NULL, type TEXT NOT NULL,
     client_ip TEXT, status TEXT, bytes INTEGER, detail TEXT
   );
   CREATE INDEX events_mac ON events(mac, id);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, diff TEXT
   );
   CREATE TABLE discovered (
     mac TEXT PRIMARY KEY, arch INTEGER, uuid TEXT, ipxe INTEGER, ip TEXT,
     first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL
   );
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // 2: web UI users and sessions; imported RHVH images.
  `CREATE TABLE users (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     name TEXT NOT NULL UNIQUE,
     role TEXT NOT NULL CHECK (role IN ('admin','tech')),
     password_hash TEXT NOT NULL,
     disabled INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE sessions (
     id_hash TEXT PRIMARY KEY,
     user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     csrf TEXT NOT NULL,
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_seen INTEGER NOT NULL
   );
   CREATE INDEX sessions_expiry ON sessions(expires_at);
   CREATE TABLE images (
     name TEXT PRIMARY KEY,
     version TEXT NOT NULL,
     source_sha256 TEXT NOT NULL,
     kernel TEXT NOT NULL, initrd TEXT NOT NULL, stage2 TEXT NOT NULL, liveimg TEXT NOT NULL,
     files TEXT NOT NULL DEFAULT '[]',
     imported_at INTEGER NOT NULL
   );`,
  // 3: installer logs (syslog) per build: a bounded ring per build, pruned by src/ops/syslog-store.ts.
  `CREATE TABLE syslog (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     build_id INTEGER NOT NULL,
     mac TEXT NOT NULL,
     at INTEGER NOT NULL,
     client_ip TEXT,
     facility INTEGER NOT NULL, severity INTEGER NOT NULL,
     host TEXT, app TEXT,
     text TEXT NOT NULL
   );
   CREATE INDEX syslog_build ON syslog(build_id, id);`,
  // 4: retention by age (src/store/events.ts, src/ops/syslog-store.ts) deletes by time: an index makes it a range delete.
  `CREATE INDEX events_at ON events(at);
   CREATE INDEX syslog_at ON syslog(at);`,
  // 5: per-user API tokens (src/store/users.ts): only a SHA-256 of each token is kept.
  `CREATE TABLE api_tokens (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     prefix TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     last_used_at INTEGER
   );
   CREATE INDEX api_tokens_user ON api_tokens(user_id);`,
  // 6: DHCP leases (src/dhcp/leases.ts) in the migrations, so PostgreSQL gets the table too; IF NOT EXISTS because
  // SQLite files from before this migration already have it (LeaseStore created it on open).
  `CREATE TABLE IF NOT EXISTS dhcp_leases (
     ip INTEGER PRIMARY KEY,
     subnet TEXT NOT NULL,
     mac TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('offered','bound','released','declined')),
     expires_at INTEGER NOT NULL,
     dynamic INTEGER NOT NULL,
     hostname TEXT,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX IF NOT EXISTS dhcp_leases_mac ON dhcp_leases(mac, subnet, updated_at);
   CREATE INDEX IF NOT EXISTS dhcp_leases_reclaim ON dhcp_leases(subnet, dynamic, expires_at);`,
  // 7: BMC control (issue 14, src/store/bmc.ts): a host's BMC; the password only AES-256-GCM sealed with bmc.key.
  `CREATE TABLE host_bmc (
     mac TEXT PRIMARY KEY REFERENCES hosts(mac) ON DELETE CASCADE,
     driver TEXT NOT NULL CHECK (driver IN ('redfish','ipmi')),
     address TEXT NOT NULL,
     username TEXT NOT NULL,
     password_enc TEXT NOT NULL,
     system TEXT,
     verify_tls INTEGER NOT NULL DEFAULT 1,
     fingerprint TEXT,
     updated_at INTEGER NOT NULL
   );`,
  // 8: rollouts (src/rollout, src/store/rollouts.ts): builds of many hosts in waves, carried out by the serving
  // process; each host's step is kept so that a restart (kill -9) resumes the remaining waves.
  `CREATE TABLE rollouts (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     created_at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     scope TEXT NOT NULL,
     power INTEGER NOT NULL,
     wave_size INTEGER NOT NULL,
     wave_interval_ms INTEGER NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('running','done','cancelled')),
     next_wave INTEGER NOT NULL DEFAULT 0,
     next_wave_at INTEGER NOT NULL,
     finished_at INTEGER
   );
   CREATE INDEX rollouts_status ON rollouts(status, id);
   CREATE TABLE rollout_hosts (
     rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
     mac TEXT NOT NULL,
     wave INTEGER NOT NULL,
     step TEXT NOT NULL CHECK (step IN ('queued','build-started','boot-set','powered','failed','cancelled')),
     reason TEXT,
     build_id INTEGER,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (rollout_id, mac)
   );
   CREATE INDEX rollout_hosts_mac ON rollout_hosts(mac, rollout_id);`,
  // 9: webhooks: deliveries of build events to configured URLs (src/store/webhooks.ts), kept so a restart loses none.
  `CREATE TABLE webhook_deliveries (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     uid TEXT NOT NULL UNIQUE,
     url TEXT NOT NULL,
     event TEXT NOT NULL,
     mac TEXT,
     build_id INTEGER,
     payload TEXT NOT NULL,
     status TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     last_at INTEGER,
     last_status INTEGER,
     last_error TEXT,
     last_ms INTEGER
   );
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_at);`,
  // 10: several nodes and sites (issue #15): the serving nodes and their heartbeats, the node that saw each
  // event, the site a host belongs to (NULL: every site).
  `CREATE TABLE nodes (
     id TEXT PRIMARY KEY,
     site TEXT,
     version TEXT NOT NULL,
     address TEXT NOT NULL,
     public_url TEXT NOT NULL,
     ports TEXT NOT NULL DEFAULT '{}',
     started_at INTEGER NOT NULL,
     heartbeat_at INTEGER NOT NULL,
     stopped_at INTEGER
   );
   ALTER TABLE events ADD COLUMN node TEXT;
   ALTER TABLE hosts ADD COLUMN site TEXT;
   CREATE INDEX hosts_site ON hosts(site);`,
  // 11: the change feed (src/store/changes.ts): triggers record every host and build write, whichever process made it
  // (the CLI writes the same file), so open boards learn of it; bounded to the newest 10,000 rows by its own trigger.
  // Triggers are spelt differently in each database: this one migration names both texts.
  {
    sqlite: `CREATE TABLE changes (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL, kind TEXT NOT NULL, mac TEXT NOT NULL
   );
   CREATE TRIGGER changes_host_insert AFTER INSERT ON hosts BEGIN
     INSERT INTO changes (at, kind, mac) VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'host', NEW.mac);
   END;
   CREATE TRIGGER changes_host_update AFTER UPDATE ON hosts BEGIN
     INSERT INTO changes (at, kind, mac) SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'host.deleted', OLD.mac WHERE OLD.mac <> NEW.mac;
     INSERT INTO changes (at, kind, mac) VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'host', NEW.mac);
   END;
   CREATE TRIGGER changes_host_delete AFTER DELETE ON hosts BEGIN
     INSERT INTO changes (at, kind, mac) VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'host.deleted', OLD.mac);
   END;
   CREATE TRIGGER changes_build_insert AFTER INSERT ON builds BEGIN
     INSERT INTO changes (at, kind, mac) VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'build', NEW.mac);
   END;
   CREATE TRIGGER changes_build_update AFTER UPDATE OF status, expires_at, finished_at ON builds BEGIN
     INSERT INTO changes (at, kind, mac) VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'build', NEW.mac);
   END;
   CREATE TRIGGER changes_bound AFTER INSERT ON changes BEGIN
     DELETE FROM changes WHERE id <= NEW.id - 10000;
   END;`,
    postgres: `CREATE TABLE changes (
         id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
         at BIGINT NOT NULL, kind TEXT NOT NULL, mac TEXT NOT NULL
       );
       CREATE FUNCTION rackboot_change() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE now_ms BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
       BEGIN
         IF TG_TABLE_NAME = 'hosts' THEN
           IF TG_OP = 'DELETE' THEN
             INSERT INTO changes (at, kind, mac) VALUES (now_ms, 'host.deleted', OLD.mac);
             RETURN NULL;
           END IF;
           IF TG_OP = 'UPDATE' AND OLD.mac <> NEW.mac THEN
             INSERT INTO changes (at, kind, mac) VALUES (now_ms, 'host.deleted', OLD.mac);
           END IF;
           INSERT INTO changes (at, kind, mac) VALUES (now_ms, 'host', NEW.mac);
         ELSE
           INSERT INTO changes (at, kind, mac) VALUES (now_ms, 'build', NEW.mac);
         END IF;
         DELETE FROM changes WHERE id <= (SELECT max(id) FROM changes) - 10000;
         RETURN NULL;
       END $$;
       CREATE TRIGGER changes_hosts AFTER INSERT OR UPDATE OR DELETE ON hosts
         FOR EACH ROW EXECUTE FUNCTION rackboot_change();
       CREATE TRIGGER changes_builds AFTER INSERT OR UPDATE OF status, expires_at, finished_at ON builds
         FOR EACH ROW EXECUTE FUNCTION rackboot_change();`,
  },
  // 12: who carries out shared duties (the rollout runner, stuck detection) among the nodes: a lease per role.
  `CREATE TABLE leaders (
     role TEXT PRIMARY KEY,
     node TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   )`,
  // 13: a batch of DHCP lease writes in one round trip on PostgreSQL (src/store/repo/leases.ts commit()): the same
  // statements, in the same order, as the per-intent path SQLite runs in-process; plpgsql keeps their plans.
  {
    sqlite: 'SELECT 1',
    postgres: `CREATE FUNCTION rackboot_commit_leases(batch jsonb) RETURNS boolean[] LANGUAGE plpgsql AS $$
       DECLARE
         w jsonb; k text; n bigint; ok boolean; won boolean[] := ARRAY[]::boolean[];
         r_ip bigint; r_subnet text; r_mac text; r_at bigint;
       BEGIN
         FOR w IN SELECT e FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, i) ORDER BY i LOOP
           k := w->>'k';
           ok := true;
           r_ip := (w->>'ip')::bigint;
           r_mac := w->>'mac';
           r_at := (w->>'at')::bigint;
           IF k = 'release' OR k = 'release-offer' THEN
             UPDATE dhcp_leases SET state = 'released',
                 expires_at = CASE WHEN expires_at < r_at THEN expires_at ELSE r_at END, updated_at = r_at
               WHERE ip = r_ip AND mac = r_mac AND (k = 'release' OR state = 'offered');
             GET DIAGNOSTICS n = ROW_COUNT;
             ok := n > 0;
           ELSIF k = 'static' THEN
             UPDATE dhcp_leases SET dynamic = 0 WHERE ip = r_ip;
           ELSE
             r_subnet := w->>'subnet';
             -- An OFFER loses while the client holds a live bound lease on another address (another node's ACK):
             -- memory then re-reads the client's rows and offers it that address.
             IF k = 'offer'
                 AND NOT EXISTS (SELECT 1 FROM dhcp_leases WHERE ip = r_ip AND mac = r_mac AND state = 'bound')
                 AND EXISTS (SELECT 1 FROM dhcp_leases WHERE mac = r_mac AND subnet = r_subnet
                   AND ip <> r_ip AND state = 'bound' AND expires_at > r_at) THEN
               won := won || false;
               CONTINUE;
             END IF;
             INSERT INTO dhcp_leases AS l (ip, subnet, mac, state, expires_at, dynamic, hostname, updated_at)
               VALUES (r_ip, r_subnet, r_mac, w->>'state', (w->>'exp')::bigint, (w->>'dyn')::bigint, w->>'host', r_at)
               ON CONFLICT (ip) DO UPDATE SET subnet = excluded.subnet, mac = excluded.mac, state = excluded.state,
                 expires_at = excluded.expires_at, dynamic = excluded.dynamic,
                 hostname = COALESCE(excluded.hostname, l.hostname), updated_at = excluded.updated_at
               WHERE k = 'upsert'
                 OR (k = 'claim' AND (l.mac = excluded.mac OR l.expires_at <= excluded.updated_at))
                 OR (k = 'offer' AND ((l.mac = excluded.mac AND l.state <> 'bound') OR l.expires_at <= excluded.updated_at));
             GET DIAGNOSTICS n = ROW_COUNT;
             IF n = 0 THEN
               ok := k = 'offer' AND EXISTS (SELECT 1 FROM dhcp_leases WHERE ip = r_ip AND mac = r_mac AND state = 'bound');
             ELSIF (w->>'evict')::boolean AND r_mac <> '' THEN
               UPDATE dhcp_leases SET mac = '', state = 'released',
                   expires_at = CASE WHEN expires_at < r_at THEN expires_at ELSE r_at END
                 WHERE mac = r_mac AND subnet = r_subnet AND ip <> r_ip;
             END IF;
           END IF;
           won := won || ok;
         END LOOP;
         RETURN won;
       END $$`,
  },
  // Append new migrations here; never edit one that has shipped. Write them in SQLite's spelling: PostgreSQL
  // runs the same text through ddlFor() (src/store/sql.ts), so one string serves both stores.
];

/** The schema version this rackboot writes (backup/restore checks a file against it). */
export function schemaVersion(): number {
  return MIGRATIONS.length;
}

export function openDb(file: string, durability: 'full' | 'normal' = 'full'): Db {
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // 0600 whatever the umask: SQLite creates -wal and -shm with the database file's own mode.
    ensurePrivateFile(file);
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  if (file !== ':memory:') tightenIfPresent([`${file}-wal`, `${file}-shm`]);
  db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Statement journals and sorts in memory: on disk each was a file created and unlinked in /var/tmp.
  db.pragma('temp_store = MEMORY');
  migrate(db);
  return db;
}

/**
 * Runs the missing migrations. Two processes opening one fresh file at once must not both run one: each
 * migration runs under BEGIN IMMEDIATE (SQLite's write lock) and re-reads the version inside it.
 */
function migrate(db: Db): void {
  const current = () => db.pragma('user_version', { simple: true }) as number;
  for (;;) {
    db.exec('BEGIN IMMEDIATE');
    try {
      const v = current();
      if (v > MIGRATIONS.length) throw new Error(newerSchema(v));
      if (v === MIGRATIONS.length) {
        db.exec('COMMIT');
        return;
      }
      const m = MIGRATIONS[v];
      db.exec(typeof m === 'string' ? m : m.sqlite);
      db.pragma(`user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    }
  }
}

export function newerSchema(version: number): string {
  return `database schema version ${version} is newer than this rackboot (${MIGRATIONS.length}): upgrade rackboot or restore a matching backup`;
}

/** The database of a data dir (rackboot.db) plus its WAL and shared-memory index, in bytes (rackboot_db_bytes, doctor). */
export function databaseBytes(dataDir: string): number {
  let n = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      n += statSync(join(dataDir, `rackboot.db${suffix}`)).size;
    } catch {
      /* not there */
    }
  }
  return n;
}

/** Throws when the connection cannot run a statement (readiness). */
export function ping(db: Db): void {
  db.prepare('SELECT 1').get();
}
