// Every table of the schema is in the PostgreSQL dump: a table added by a migration but missing from BACKUP_TABLES
// would be silently left out of `rackboot backup` on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/store/db.ts';
import { BACKUP_TABLES } from '../../src/store/dump.ts';

test('BACKUP_TABLES names every table the migrations create, and only those', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-tables-'));
  try {
    const db = openDb(join(dir, 'rackboot.db'));
    const tables = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
      .all()
      .map((r) => (r as { name: string }).name);
    db.close();
    // `changes` is the change feed's recent window (src/store/changes.ts): triggers refill it on restore.
    // `leaders` holds leases of live nodes (src/store/repo/leaders.ts): a restored one would only delay a takeover.
    assert.deepEqual(
      [...BACKUP_TABLES.map((t) => t.table)].sort(),
      tables.filter((t) => t !== 'changes' && t !== 'leaders'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
