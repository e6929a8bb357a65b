// Sql over one better-sqlite3 connection. Work is synchronous inside; the Promise is the interface's.
// A connection is shared by the whole process, so a transaction holds a gate (SqliteGate): queries from outside
// it wait until it ends instead of slipping into it between two of its awaits.
import type { Db } from './db.ts';
import type { Param, Sql } from './sql.ts';
import { textSafe } from './sql.ts';
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
    return Promise.resolve(this.st.get(query).all(...textSafe(params)) as T[]);
  }
  get<T>(query: string, params: readonly Param[] = []): Promise<T | undefined> {
    return Promise.resolve(this.st.get(query).get(...textSafe(params)) as T | undefined);
  }
  run(query: string, params: readonly Param[] = []): Promise<number> {
    return Promise.resolve(this.st.get(query).run(...textSafe(params)).changes);
  }
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return fn(this);
  }
  lockKey(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Transactions of one process, one at a time, over all its connections to one file: a transaction stays open
 * across awaits, and a second connection's BEGIN IMMEDIATE (or any write) meanwhile would block the thread in
 * SQLite's busy handler while the first can never finish.
 */
export class SqliteGate {
  private tail: Promise<void> = Promise.resolve();
  /** The running transaction's end, while one runs. */
  open: Promise<void> | undefined;
  async take(): Promise<() => void> {
    const prev = this.tail;
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.tail = prev.then(() => mine);
    await prev;
    this.open = mine;
    return () => {
      this.open = undefined;
      release();
    };
  }
  async pass(): Promise<void> {
    while (this.open) await this.open;
  }
}

export class SqliteSql extends SqliteTx {
  constructor(
    readonly db: Db,
    private readonly gate: SqliteGate = new SqliteGate(),
  ) {
    super(new Statements(db));
  }
  override async all<T>(query: string, params: readonly Param[] = []): Promise<T[]> {
    if (this.gate.open) await this.gate.pass();
    return this.st.get(query).all(...textSafe(params)) as T[];
  }
  override async get<T>(query: string, params: readonly Param[] = []): Promise<T | undefined> {
    if (this.gate.open) await this.gate.pass();
    return this.st.get(query).get(...textSafe(params)) as T | undefined;
  }
  override async run(query: string, params: readonly Param[] = []): Promise<number> {
    if (this.gate.open) await this.gate.pass();
    return this.st.get(query).run(...textSafe(params)).changes;
  }
  override async tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const release = await this.gate.take();
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
      release();
    }
  }
}
