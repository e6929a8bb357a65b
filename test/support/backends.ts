// The two stores for tests that run on both: a SQLite file in a temp directory and a database on a throw-away
// PostgreSQL (test/support/postgres.ts). Call storeBackends() at the top of a test file: it registers the after()
// hook that closes every store it opened, stops PostgreSQL and removes the temp directories. PostgreSQL starts
// on the first postgres database a test asks for (once per file), so a run filtered to SQLite never starts it.
// Without the PostgreSQL binaries the postgres backend carries the reason to skip.
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.ts';
import { postgresMissing, startPostgres, type TestPostgres } from './postgres.ts';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Why this backend cannot run here, for `{ skip }`, or false. */
  skip: string | false;
  /** A new empty database: a SQLite file path or a postgres:// URL, for StoreOptions.database. */
  database(): Promise<string>;
  /** A store on `database`, closed after the file's tests. `o` merges over the file's base options. */
  openOn(database: string, o?: Partial<StoreOptions>): Promise<Store>;
  /** A store on a new database; `again` opens another on the same database (another process or node). */
  open(o?: Partial<StoreOptions>): Promise<{ store: Store; again: (o?: Partial<StoreOptions>) => Promise<Store> }>;
}

/** `base`: what every store of the file is opened with (dataDir defaults to one that is never used). */
export function storeBackends(base: Partial<StoreOptions> & { secret: Buffer }): Backend[] {
  const missing = postgresMissing();
  let pg: Promise<TestPostgres> | undefined;
  const dirs: string[] = [];
  const stores: Store[] = [];
  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    if (pg) (await pg.catch(() => undefined))?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const make = (name: Backend['name'], skip: string | false, database: () => Promise<string>): Backend => {
    const openOn = async (db: string, o: Partial<StoreOptions> = {}) => {
      const s = await openStore({ dataDir: '/nonexistent', ...base, ...o, database: db });
      stores.push(s);
      return s;
    };
    return {
      name,
      skip,
      database,
      openOn,
      async open(o = {}) {
        const db = await database();
        const again = (o2: Partial<StoreOptions> = {}) => openOn(db, { ...o, ...o2 });
        return { store: await again(), again };
      },
    };
  };

  return [
    make('sqlite', false, () => {
      const dir = mkdtempSync(join(tmpdir(), 'rb-store-'));
      dirs.push(dir);
      return Promise.resolve(join(dir, 'rackboot.db'));
    }),
    make('postgres', missing ?? false, async () => {
      pg ??= startPostgres();
      return (await pg).createDatabase();
    }),
  ];
}
