// The secret build tokens are derived from (src/store/builds.ts), kept in the settings table so every node
// sharing the database derives the same tokens: a kickstart rendered by node A carries a token whose built
// callback node B accepts. The price: whoever reads the database can mint build tokens, so a database backup
// is as secret as secret.key was (README, "Several nodes").
import { randomBytes } from 'node:crypto';
import type { Db } from './db.ts';
import type { Sql } from './sql.ts';

const KEY = 'build_token_secret';

/**
 * The database's build token secret, created once. `seed` gives the first value: the data dir's secret.key,
 * so tokens handed out before the upgrade keep working. Under BEGIN IMMEDIATE, so two nodes starting at
 * once agree on one secret (the second waits for the first's commit, then reads it).
 */
export function sharedBuildSecret(db: Db, seed: () => Buffer = () => randomBytes(32)): Buffer {
  const read = db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?');
  const insert = db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)');
  const hex = db
    .transaction(() => {
      const row = read.get(KEY);
      if (row) return row.value;
      const value = seed().toString('hex');
      insert.run(KEY, value);
      return value;
    })
    .immediate();
  return checked(hex);
}

/**
 * The same on either store (src/store/sql.ts): the first node's INSERT wins and every later one (or one racing
 * it) reads the winner's value, since ON CONFLICT DO NOTHING lets the table's key decide.
 */
export async function loadBuildSecret(sql: Sql, seed: () => Buffer = () => randomBytes(32)): Promise<Buffer> {
  await sql.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [
    KEY,
    seed().toString('hex'),
  ]);
  const row = await sql.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [KEY]);
  return checked(row?.value ?? '');
}

function checked(hex: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new Error(
      `the database's build token secret (settings.${KEY}) is damaged (expected 64 hex digits): restore a backup, or delete the row to invalidate every build token`,
    );
  return Buffer.from(hex, 'hex');
}
