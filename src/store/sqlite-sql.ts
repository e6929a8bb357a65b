// Sql over one better-sqlite3 connection. Work is synchronous inside; the Promise is the interface's.
// One connection is shared by the whole process, so a transaction holds a gate: queries from outside it wait
// until it ends instead of slipping into it between two of its awaits.
import type { Db } from './db.ts';
import type { Param, Sql } from './sql.ts';
import type { Statement } from 'better-sqlite3';

class Statements {
  private readonly cache = new Map<string, Statement>();
  constructor(readonly db: Db) {}
  get(query: string): Statement {
    let s = this.cache.get(query);
    if (!s) {
      s = this.db.prepare(query);
      if (this.cache.size < 1024) this.cache.set(query, s);
    }
    return s;
  }
}

class SqliteTx implements Sql {
  readonly dialect = 'sqlite' as const;
  constructor(protected readonly st: Statements) {}
  all<T>(query: string, params: readonly Param[] = []): Promise<T[]> {
    return Promise.resolve(this.st.get(query).all(...params) as T[]);
  }
  get<T>(query: string, params: readonly Param[] = []): Promise<T | undefined> {
    return Promise.resolve(this.st.get(query).get(...params) as T | undefined);
  }
  run(query: string, params: readonly Param[] = []): Promise<number> {
    return Promise.resolve(this.st.get(query).run(...params).changes);
  }
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return fn(this);
  }
  lockKey(): Promise<void> {
    return Promise.resolve();
  }
}

export class SqliteSql extends SqliteTx {
  private gate: Promise<void> | undefined;
  constructor(readonly db: Db) {
    super(new Statements(db));
  }
  private async pass(): Promise<void> {
    while (this.gate) await this.gate;
  }
  override async all<T>(query: string, params: readonly Param[] = []): Promise<T[]> {
    if (this.gate) await this.pass();
    return this.st.get(query).all(...params) as T[];
  }
  override async get<T>(query: string, params: readonly Param[] = []): Promise<T | undefined> {
    if (this.gate) await this.pass();
    return this.st.get(query).get(...params) as T | undefined;
  }
  override async run(query: string, params: readonly Param[] = []): Promise<number> {
    if (this.gate) await this.pass();
    return this.st.get(query).run(...params).changes;
  }
  override async tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    await this.pass();
    let open!: () => void;
    this.gate = new Promise<void>((r) => (open = r));
    try {
      // IMMEDIATE: the write lock at BEGIN, so another process's transaction waits (busy_timeout) rather than failing at COMMIT.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const v = await fn(new SqliteTx(this.st));
        this.db.exec('COMMIT');
        return v;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    } finally {
      this.gate = undefined;
      open();
    }
  }
}
