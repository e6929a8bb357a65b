// PostgreSQL schema: the same MIGRATIONS as SQLite (src/store/db.ts) through ddlFor(), versioned in
// rackboot_schema. Nodes starting together take a session-level advisory lock first, so exactly one of them
// runs each migration and the others find it done.
import type pg from 'pg';
import { MIGRATIONS, newerSchema } from './db.ts';
import { ddlFor } from './sql.ts';

/** Arbitrary but fixed: the advisory lock key every rackboot node migrates under. */
export const MIGRATION_LOCK = 0x7261636b; // "rack"

export async function migratePostgres(pool: pg.Pool): Promise<{ from: number; to: number }> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS rackboot_schema (version BIGINT NOT NULL)');
      const r = await client.query<{ version: number }>('SELECT version FROM rackboot_schema');
      if (!r.rows.length) await client.query('INSERT INTO rackboot_schema (version) VALUES (0)');
      const from = Number(r.rows[0]?.version ?? 0);
      if (from > MIGRATIONS.length) throw new Error(newerSchema(from));
      for (let v = from; v < MIGRATIONS.length; v++) {
        await client.query('BEGIN');
        try {
          await client.query(ddlFor('postgres', MIGRATIONS[v]));
          await client.query('UPDATE rackboot_schema SET version = $1', [v + 1]);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK');
          throw new Error(`PostgreSQL migration ${v + 1} failed: ${(e as Error).message}`, { cause: e });
        }
      }
      return { from, to: MIGRATIONS.length };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}
