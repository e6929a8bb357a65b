// Sql over a node-postgres pool. BIGINT (epoch ms, ids, counts) comes back as a JS number: every value rackboot
// stores is far below 2^53.
import pg from 'pg';
import type { Param, Sql } from './sql.ts';
import { textSafe, toPostgresPlaceholders } from './sql.ts';

const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary'
      ? Number
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

class PgTx implements Sql {
  readonly dialect = 'postgres' as const;
  constructor(protected readonly q: Queryable) {}
  async all<T>(query: string, params: readonly Param[] = []): Promise<T[]> {
    return (await this.q.query(toPostgresPlaceholders(query), textSafe(params))).rows as T[];
  }
  async get<T>(query: string, params: readonly Param[] = []): Promise<T | undefined> {
    return (await this.all<T>(query, params))[0];
  }
  async run(query: string, params: readonly Param[] = []): Promise<number> {
    return (await this.q.query(toPostgresPlaceholders(query), textSafe(params))).rowCount ?? 0;
  }
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async lockKey(key: string): Promise<void> {
    await this.q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
  }
}

export class PgSql extends PgTx {
  readonly pool: pg.Pool;
  /**
   * `relaxed`: commits return before the WAL reaches disk (synchronous_commit=off): the timeline's analogue of
   * SQLite's synchronous=NORMAL, never for the build lifecycle. A crash loses at most the last moment of events,
   * never consistency.
   */
  constructor(
    readonly url: string,
    poolSize = 10,
    relaxed = false,
  ) {
    // application_name: restore counts the other nodes connected before it replaces their data.
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      types,
      application_name: 'rackboot',
      ...(relaxed ? { options: '-c synchronous_commit=off' } : {}),
    });
    super(pool);
    this.pool = pool;
    // An idle client losing its server (restart, failover) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
  }
  override async tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      try {
        const v = await fn(new PgTx(client));
        await client.query('COMMIT');
        return v;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      }
    } finally {
      client.release();
    }
  }
  /** A dedicated connection for LISTEN (a pooled one would drop its subscriptions when released). */
  async listen(channel: string, onNotify: (payload: string) => void, onError: (e: Error) => void): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url, types, application_name: 'rackboot' });
    client.on('error', onError);
    client.on('notification', (n) => {
      if (n.channel === channel) onNotify(n.payload ?? '');
    });
    await client.connect();
    await client.query(`LISTEN ${channel}`);
    return client;
  }
  close(): Promise<void> {
    return this.pool.end();
  }
}
