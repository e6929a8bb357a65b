// A native dump of the store: JSON Lines, one header then one line per row, table by table in an order that
// satisfies the foreign keys. It is how `rackboot backup` works on PostgreSQL (one consistent snapshot: REPEATABLE
// READ) and how `restore` fills either store, so it also moves an installation from SQLite to PostgreSQL.
// Nothing in it is trusted on restore: the table and column names must be ours, the schema not newer than ours,
// and the whole restore is one transaction (a bad line changes nothing).
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { MIGRATIONS } from './db.ts';
import type { Param, Sql } from './sql.ts';

/** Every table, parents first, with the key that orders it. New tables go here too (see src/store/index.ts). */
export const BACKUP_TABLES: readonly { table: string; key: string; then?: string; identity?: boolean }[] = [
  { table: 'users', key: 'id', identity: true },
  { table: 'sessions', key: 'id_hash' },
  { table: 'api_tokens', key: 'id', identity: true },
  { table: 'hosts', key: 'mac' },
  { table: 'builds', key: 'id', identity: true },
  { table: 'events', key: 'id', identity: true },
  { table: 'audit', key: 'id', identity: true },
  { table: 'discovered', key: 'mac' },
  { table: 'settings', key: 'key' },
  { table: 'images', key: 'name' },
  { table: 'syslog', key: 'id', identity: true },
  { table: 'dhcp_leases', key: 'ip' },
  { table: 'host_bmc', key: 'mac' },
  { table: 'rollouts', key: 'id', identity: true },
  // Keyed by (rollout_id, mac): `then` is the second key column, so a page border inside one rollout loses no row.
  { table: 'rollout_hosts', key: 'rollout_id', then: 'mac' },
  { table: 'webhook_deliveries', key: 'id', identity: true },
  { table: 'nodes', key: 'id' },
];

const HEADER = 'rackboot-store-dump';
const PAGE = 2000;
/** Longest line read back: a row is a few KiB (events detail 4 KiB, failure log 64 KiB). */
const MAX_LINE = 1024 * 1024;

export interface DumpCounts {
  schema: number;
  rows: Record<string, number>;
}

async function schemaVersion(sql: Sql): Promise<number> {
  if (sql.dialect === 'postgres')
    return (await sql.get<{ version: number }>('SELECT version FROM rackboot_schema'))!.version;
  return (await sql.get<{ user_version: number }>('PRAGMA user_version'))!.user_version;
}

/** Writes the store to `file` (0600) from one snapshot. */
export async function dumpStore(sql: Sql, file: string): Promise<DumpCounts> {
  const out = createWriteStream(file, { mode: 0o600 });
  const write = async (line: unknown) => {
    if (!out.write(JSON.stringify(line) + '\n')) await once(out, 'drain');
  };
  try {
    const counts = await sql.tx(async (tx) => {
      if (tx.dialect === 'postgres') await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const schema = await schemaVersion(tx);
      await write({ format: HEADER, schema, dialect: tx.dialect, at: new Date().toISOString() });
      const rows: Record<string, number> = {};
      for (const { table, key, then } of BACKUP_TABLES) {
        rows[table] = 0;
        const cols = then === undefined ? key : `${key}, ${then}`;
        const past = then === undefined ? `${key} > ?` : `(${key}, ${then}) > (?, ?)`;
        let after: Param[] | undefined;
        for (;;) {
          const page = await tx.all<Record<string, Param>>(
            `SELECT * FROM ${table}${after === undefined ? '' : ` WHERE ${past}`} ORDER BY ${cols} LIMIT ${PAGE}`,
            after ?? [],
          );
          for (const row of page) await write({ t: table, r: row });
          rows[table] += page.length;
          if (page.length < PAGE) break;
          const last = page[page.length - 1];
          after = then === undefined ? [last[key]] : [last[key], last[then]];
        }
      }
      return { schema, rows };
    });
    out.end();
    await once(out, 'finish');
    return counts;
  } catch (e) {
    out.destroy();
    throw e;
  }
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/** Whether a file starts like a dump (restore also takes SQLite files: see src/ops/backup.ts). */
export async function isDumpFile(file: string): Promise<boolean> {
  const rl = createInterface({ input: createReadStream(file, { end: 4096 }), crlfDelay: Infinity });
  try {
    for await (const line of rl) return line.includes(`"${HEADER}"`);
    return false;
  } finally {
    rl.close();
  }
}

/**
 * Replaces everything in the store by the dump, in one transaction. The store must be migrated (openStore did);
 * a dump of an older schema fits (later columns take their defaults), a newer one is refused.
 */
export async function restoreStore(sql: Sql, file: string): Promise<DumpCounts> {
  const known = new Map(BACKUP_TABLES.map((t) => [t.table, t]));
  return sql.tx(async (tx) => {
    let lineNo = 0;
    let schema: number | undefined;
    const rows: Record<string, number> = {};
    const columnsOf = new Map<string, Set<string>>();
    for (const { table } of [...BACKUP_TABLES].reverse()) await tx.run(`DELETE FROM ${table}`);
    // Created right before the loop: lines a readline emits before its iterator is taken are lost.
    const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of rl) {
      lineNo++;
      const where = `${file}:${lineNo}`;
      if (line.length > MAX_LINE) throw new Error(`${where}: line longer than ${MAX_LINE} bytes`);
      if (!line.trim()) continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        throw new Error(`${where}: not JSON`);
      }
      if (schema === undefined) {
        const h = v as { format?: unknown; schema?: unknown };
        if (h.format !== HEADER || !Number.isInteger(h.schema))
          throw new Error(`${where}: not a rackboot store dump (no header)`);
        schema = h.schema as number;
        if (schema > MIGRATIONS.length)
          throw new Error(
            `${where}: schema version ${schema} is newer than this rackboot (${MIGRATIONS.length}): upgrade rackboot first`,
          );
        continue;
      }
      const { t, r } = v as { t?: unknown; r?: unknown };
      if (typeof t !== 'string' || !known.has(t))
        throw new Error(`${where}: unknown table ${JSON.stringify(t).slice(0, 80)}`);
      if (!r || typeof r !== 'object' || Array.isArray(r)) throw new Error(`${where}: row of ${t} is not an object`);
      let cols = columnsOf.get(t);
      if (!cols) {
        cols = await tableColumns(tx, t);
        columnsOf.set(t, cols);
      }
      const entries = Object.entries(r as Record<string, unknown>);
      for (const [k, x] of entries) {
        if (!IDENT.test(k) || !cols.has(k))
          throw new Error(`${where}: table ${t} has no column ${JSON.stringify(k).slice(0, 80)}`);
        if (x !== null && typeof x !== 'string' && typeof x !== 'number')
          throw new Error(`${where}: ${t}.${k} is neither text, a number nor null`);
      }
      await tx.run(
        `INSERT INTO ${t} (${entries.map(([k]) => k).join(', ')}) VALUES (${entries.map(() => '?').join(', ')})`,
        entries.map(([, x]) => x as Param),
      );
      rows[t] = (rows[t] ?? 0) + 1;
    }
    if (schema === undefined) throw new Error(`${file}: empty, not a rackboot store dump`);
    // Identity columns go on after the highest restored id (PostgreSQL; SQLite's AUTOINCREMENT follows max(rowid)).
    if (tx.dialect === 'postgres')
      for (const { table, key, identity } of BACKUP_TABLES)
        if (identity)
          await tx.run(
            `SELECT setval(pg_get_serial_sequence('${table}', '${key}'), COALESCE((SELECT MAX(${key}) FROM ${table}), 0) + 1, false)`,
          );
    return { schema, rows };
  });
}

async function tableColumns(sql: Sql, table: string): Promise<Set<string>> {
  const rows =
    sql.dialect === 'postgres'
      ? await sql.all<{ name: string }>(
          'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?',
          [table],
        )
      : await sql.all<{ name: string }>(`SELECT name FROM pragma_table_info(?)`, [table]);
  return new Set(rows.map((r) => r.name));
}
