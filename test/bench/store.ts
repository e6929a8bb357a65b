// Store throughput, SQLite (one file, FULL) vs PostgreSQL (local, fsync on), same run, same work:
// - kickstart: what one kickstart fetch asks of the store (token check, host, kickstart-fetched mark, an event);
// - DORA: the one durable write of a DISCOVER/OFFER/REQUEST/ACK exchange (the bind; offers are held in memory).
// `concurrency` requests in flight, as a rack booting at once. Prints per-second figures and PG/SQLite ratios.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgresStore, openSqliteStore, type Store } from '../../src/store/index.ts';
import { parseMac, type Mac } from '../../src/net/mac.ts';
import { startPostgres } from '../support/postgres.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const HOSTS = 200;
const secret = Buffer.alloc(32, 1);
const mac = (i: number): Mac =>
  parseMac(`52:54:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`)!;

async function run(name: string, work: (i: number) => Promise<void>): Promise<number> {
  let done = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; Date.now() < end; i += concurrency) {
        await work(i);
        done++;
      }
    }),
  );
  const rate = done / seconds;
  console.log(`${name.padEnd(28)} ${rate.toFixed(0).padStart(8)} /s`);
  return rate;
}

async function bench(label: string, store: Store): Promise<{ ks: number; dora: number }> {
  const tokens: string[] = [];
  for (let i = 0; i < HOSTS; i++) {
    await store.hosts.insert({ mac: mac(i), hostname: `b${i}.lab`, profile: 'rhvh', nameservers: [], params: {} });
    tokens.push((await store.builds.start(mac(i), 3600_000)).token);
  }
  const ks = await run(`${label} kickstarts`, async (i) => {
    const check = await store.builds.checkLive(tokens[i % HOSTS]);
    if (!check.ok) throw new Error(check.message);
    await store.hosts.get(check.build.mac);
    await store.builds.markKickstartFetched(check.build.id, '10.0.0.1');
    store.events.append({ mac: check.build.mac, buildId: check.build.id, type: 'kickstart', status: '200' });
  });
  const dora = await run(`${label} DORA leases`, async (i) => {
    const n = i % 50_000;
    await store.leases.bind({
      ip: `10.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`,
      subnet: '10.100.0.0/16',
      mac: mac(i % 60_000),
      state: 'bound',
      expiresAt: Date.now() + 3600_000,
      dynamic: true,
      now: Date.now(),
    });
  });
  await store.close();
  return { ks, dora };
}

const dir = mkdtempSync(join(tmpdir(), 'rb-bench-store-'));
const pg = await startPostgres({ durable: true });
try {
  const lite = await bench('SQLite', openSqliteStore(join(dir, 'rackboot.db'), { dataDir: dir, secret }));
  const post = await bench(
    'PostgreSQL',
    await openPostgresStore(await pg.createDatabase(), { dataDir: dir, secret, poolSize: 16 }),
  );
  console.log(
    `ratio PostgreSQL/SQLite: kickstarts ${(post.ks / lite.ks).toFixed(2)}x, DORA ${(post.dora / lite.dora).toFixed(2)}x (goal >= 0.7x)`,
  );
} finally {
  pg.stop();
  rmSync(dir, { recursive: true, force: true });
}
