// A throw-away PostgreSQL for tests: initdb + pg_ctl from the Debian `postgresql` package in a temp directory,
// listening only on a Unix socket in that directory (no TCP port to collide with). Run as root, the server runs
// as `nobody` (PostgreSQL refuses root). Without the binaries, startPostgres() returns a reason to skip.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** postgres:// URL of the `rackboot` database (superuser `rackboot`, trust auth on the socket). */
  url: string;
  dir: string;
  /** A new empty database; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): void;
}

function binDir(): string | undefined {
  const candidates = ['/usr/lib/postgresql'].flatMap((root) =>
    existsSync(root)
      ? readdirSync(root)
          .sort((a, b) => Number(b) - Number(a))
          .map((v) => join(root, v, 'bin'))
      : [],
  );
  for (const d of [...candidates, '/usr/local/bin', '/usr/bin'])
    if (existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) return d;
  return undefined;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  return binDir() ? undefined : 'PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql';
}

let counter = 0;

/** `durable`: fsync and synchronous commit on, as in production (benchmarks); tests leave them off. */
export async function startPostgres(o: { durable?: boolean } = {}): Promise<TestPostgres> {
  const bin = binDir();
  if (!bin) throw new Error(postgresMissing());
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : join(bin, cmd), asRoot ? ['-u', 'nobody', '--', join(bin, cmd), ...args] : args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: dir,
      timeout: 120_000,
    });
  if (asRoot) chownSync(dir, 65534, 65534);
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'rackboot', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  // Tests need no durability: fsync off keeps a loaded CI machine fast. Sockets only, in our directory.
  const fast = o.durable ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off';
  const opts = `-k ${dir} -c listen_addresses=''${fast} -c max_connections=200`;
  run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '120', 'start']);
  // A test process killed by a timeout must not leave a server behind: stop it on the way out, however we go.
  const stopNow = () => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      /* already stopped */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    stopNow();
    process.kill(process.pid, sig);
  };
  process.once('exit', stopNow);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const url = (db: string) => `postgres://rackboot@/${db}?host=${encodeURIComponent(dir)}`;
  const admin = new pg.Client({ connectionString: url('postgres') });
  await admin.connect();
  await admin.query('CREATE DATABASE rackboot');
  await admin.end();
  return {
    url: url('rackboot'),
    dir,
    async createDatabase(name = `t${process.pid}_${++counter}`) {
      const c = new pg.Client({ connectionString: url('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    stop() {
      process.off('exit', stopNow);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      stopNow();
    },
  };
}
