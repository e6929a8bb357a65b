// `rackboot backup` / `restore` for either store. SQLite keeps its online backup (a .db file, src/ops/backup.ts).
// PostgreSQL gets the native dump (src/store/dump.ts: JSON Lines from one REPEATABLE READ snapshot; pg_dump works
// too, see the README). Restore into PostgreSQL takes a dump or a SQLite backup file, so moving an installation
// from SQLite to PostgreSQL is `backup` on the old node and `restore` with --database on the new one.
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { openPostgresStore, openSqliteStore, type Store } from '../store/index.ts';
import { dumpStore, isDumpFile, restoreStore, type DumpCounts } from '../store/dump.ts';
import { backupDatabase, checkDatabaseFile, restoreDatabase, type OpsResult } from './backup.ts';

/** Only the dump needs no secret: build tokens are derived later, by the serving nodes. */
const NO_SECRET = Buffer.alloc(32);

function summary(c: DumpCounts): string {
  return `schema ${c.schema}, ${c.rows.hosts ?? 0} host(s), ${c.rows.builds ?? 0} build(s), ${Object.values(c.rows).reduce((a, b) => a + b, 0)} row(s)`;
}

function isSqliteFile(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(16);
    return readSync(fd, b, 0, 16, 0) === 16 && b.toString('latin1') === 'SQLite format 3\0';
  } finally {
    closeSync(fd);
  }
}

export async function backupStore(config: Config, file: string): Promise<OpsResult> {
  if (config.database.dialect === 'sqlite') return backupDatabase(config.dataDir, file);
  const target = resolve(file);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  let store: Store | undefined;
  try {
    store = await openPostgresStore(config.database.url, { dataDir: config.dataDir, secret: NO_SECRET, poolSize: 2 });
    const counts = await dumpStore(store.sql, tmp);
    renameSync(tmp, target);
    return {
      ok: true,
      message: `backed up ${store.location} to ${target} (${summary(counts)}, ${statSync(target).size} bytes). Keep ${join(config.dataDir, 'secret.key')} and the profiles directory with it.`,
    };
  } catch (e) {
    rmSync(tmp, { force: true });
    return { ok: false, message: `backup failed: ${(e as Error).message}` };
  } finally {
    await store?.close();
  }
}

/** Other rackboot nodes connected to the database (restore pulls it from under them). */
async function otherNodes(store: Store): Promise<number> {
  const r = await store.sql.get<{ n: number }>(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'rackboot' AND pid <> pg_backend_pid() AND usename = current_user",
  );
  // This store's own pool and LISTEN connection count too.
  return Math.max(0, (r?.n ?? 0) - 2);
}

export async function restoreStoreFile(
  config: Config,
  file: string,
  opts: { force?: boolean } = {},
): Promise<OpsResult> {
  if (config.database.dialect === 'sqlite') {
    if (!(await isDumpFile(resolve(file)).catch(() => false))) return restoreDatabase(config.dataDir, file, opts);
    // A dump into SQLite: fill a fresh file from it, then restore that file the SQLite way (checks, atomic swap).
    const dir = mkdtempSync(join(tmpdir(), 'rackboot-restore-'));
    try {
      const db = join(dir, 'rackboot.db');
      const s = openSqliteStore(db, { dataDir: dir, secret: NO_SECRET });
      try {
        await restoreStore(s.sql, resolve(file));
      } catch (e) {
        return { ok: false, message: `refusing to restore: ${(e as Error).message}` };
      } finally {
        await s.close();
      }
      return restoreDatabase(config.dataDir, db, opts);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  let store: Store | undefined;
  const work = mkdtempSync(join(tmpdir(), 'rackboot-restore-'));
  try {
    const source = resolve(file);
    let dump = source;
    if (isSqliteFile(source)) {
      const check = checkDatabaseFile(source);
      if (!check.ok) return { ok: false, message: `refusing to restore: ${check.message}` };
      // Migrate a copy to this version, then dump it: the same path as any dump from here on.
      const copy = join(work, 'source.db');
      copyFileSync(source, copy);
      const s = openSqliteStore(copy, { dataDir: work, secret: NO_SECRET });
      try {
        dump = join(work, 'source.jsonl');
        await dumpStore(s.sql, dump);
      } finally {
        await s.close();
      }
    }
    store = await openPostgresStore(config.database.url, { dataDir: config.dataDir, secret: NO_SECRET, poolSize: 2 });
    const others = await otherNodes(store);
    if (others > 0 && !opts.force)
      return {
        ok: false,
        message: `${others} other rackboot connection(s) use ${store.location}: stop every node first (systemctl stop rackboot), then restore`,
      };
    const counts = await restoreStore(store.sql, dump);
    return { ok: true, message: `restored ${source} into ${store.location} (${summary(counts)})` };
  } catch (e) {
    return { ok: false, message: `refusing to restore: ${(e as Error).message}` };
  } finally {
    await store?.close();
    rmSync(work, { recursive: true, force: true });
  }
}
