// rackboot backup FILE / rackboot restore FILE: the SQLite online backup API (a consistent copy
// while the server runs), and a restore that checks the copy before it replaces anything.
import Database from 'better-sqlite3';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { openDb, schemaVersion } from '../store/db.ts';
import { ensurePrivateDir } from './private-files.ts';

export type OpsResult = { ok: true; message: string } | { ok: false; message: string };

const PID_FILE = 'serve.pid';

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Checks that a file is a whole rackboot database: integrity_check, the tables, a schema this version knows. */
export function checkDatabaseFile(file: string): OpsResult & { version?: number; hosts?: number; builds?: number } {
  if (!existsSync(file)) return { ok: false, message: `${file}: no such file` };
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    if (integrity !== 'ok') return { ok: false, message: `${file}: integrity_check failed: ${integrity}` };
    const version = db.pragma('user_version', { simple: true }) as number;
    const known = schemaVersion();
    if (version > known)
      return {
        ok: false,
        message: `${file}: schema version ${version} is newer than this rackboot (${known}): upgrade rackboot first`,
      };
    const tables = new Set(
      db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((r) => r.name),
    );
    for (const t of ['hosts', 'builds', 'events', 'settings'])
      if (!tables.has(t)) return { ok: false, message: `${file}: not a rackboot database (no table ${t})` };
    const hosts = db.prepare<[], { n: number }>('SELECT COUNT(*) n FROM hosts').get()!.n;
    const builds = db.prepare<[], { n: number }>('SELECT COUNT(*) n FROM builds').get()!.n;
    return { ok: true, message: `schema ${version}, ${hosts} host(s), ${builds} build(s)`, version, hosts, builds };
  } catch (err) {
    return { ok: false, message: `${file}: not a readable SQLite database: ${(err as Error).message}` };
  } finally {
    db?.close();
  }
}

/** Copies the live database to `file` (through a temporary file, then an atomic rename), and checks the copy. */
export async function backupDatabase(dataDir: string, file: string): Promise<OpsResult> {
  const src = join(dataDir, 'rackboot.db');
  if (!existsSync(src)) return { ok: false, message: `no database at ${src} (is --data-dir right?)` };
  const target = resolve(file);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  const db = new Database(src, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    return { ok: false, message: `backup of ${src} failed: ${(err as Error).message}` };
  } finally {
    db.close();
  }
  // The copy holds everything the database does (password and token hashes): 0600, whatever the umask.
  chmodSync(tmp, 0o600);
  const check = checkDatabaseFile(tmp);
  if (!check.ok) {
    rmSync(tmp, { force: true });
    return { ok: false, message: `the copy does not check out: ${check.message}` };
  }
  fsyncPath(tmp);
  renameSync(tmp, target);
  return {
    ok: true,
    message: `backed up ${src} to ${target} (${check.message}, ${statSync(target).size} bytes). Keep ${join(dataDir, 'secret.key')}, ${join(dataDir, 'bmc.key')} (it opens the BMC passwords) and the profiles directory with it.`,
  };
}

/** The pid of a `rackboot serve` that holds this data dir, if one is running. */
export function runningServer(dataDir: string): number | undefined {
  const f = join(dataDir, PID_FILE);
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  return pid === process.pid ? undefined : pid;
}

/** serve writes its pid so restore can refuse to pull the database from under it; removed on a clean stop. */
export function writePidFile(dataDir: string): () => void {
  const f = join(dataDir, PID_FILE);
  ensurePrivateDir(dataDir);
  writeFileSync(f, `${process.pid}\n`, { mode: 0o600 });
  chmodSync(f, 0o600);
  return () => {
    try {
      if (readFileSync(f, 'utf8').trim() === String(process.pid)) rmSync(f);
    } catch {
      /* gone */
    }
  };
}

/**
 * Replaces the data dir's database with `file`. Refuses while a server runs on it; checks the file
 * first; keeps the replaced database as rackboot.db.before-restore-<time>; swaps with an atomic rename.
 */
export function restoreDatabase(
  dataDir: string,
  file: string,
  opts: { force?: boolean; now?: number } = {},
): OpsResult {
  const pid = runningServer(dataDir);
  if (pid && !opts.force)
    return {
      ok: false,
      message: `rackboot serve (pid ${pid}) is using ${dataDir}: stop it first (systemctl stop rackboot), then restore`,
    };
  const check = checkDatabaseFile(resolve(file));
  if (!check.ok) return { ok: false, message: `refusing to restore: ${check.message}` };
  ensurePrivateDir(dataDir);
  const live = join(dataDir, 'rackboot.db');
  const tmp = join(dataDir, `.rackboot.db.restore-${process.pid}`);
  copyFileSync(resolve(file), tmp);
  chmodSync(tmp, 0o600);
  fsyncPath(tmp);
  const recheck = checkDatabaseFile(tmp);
  if (!recheck.ok) {
    rmSync(tmp, { force: true });
    return { ok: false, message: `refusing to restore: the copy in ${dataDir} does not check out: ${recheck.message}` };
  }
  let kept = '';
  if (existsSync(live)) {
    // Fold the WAL into the old file first: a -wal left beside the restored file would be replayed onto it.
    const old = new Database(live);
    try {
      old.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      old.close();
    }
    kept = `${live}.before-restore-${new Date(opts.now ?? Date.now()).toISOString().replace(/[:.]/g, '-')}`;
    renameSync(live, kept);
  }
  for (const ext of ['-wal', '-shm']) rmSync(live + ext, { force: true });
  renameSync(tmp, live);
  fsyncPath(dataDir);
  // Bring the schema up to this version now, so the first start does not surprise anyone.
  openDb(live, 'full').close();
  return {
    ok: true,
    message: `restored ${resolve(file)} to ${live} (${check.message})${kept ? `; the replaced database is kept as ${kept}` : ''}`,
  };
}
