// Two nodes starting together on one fresh database: exactly one runs each migration, both start, the schema is whole.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS } from '../../src/store/db.ts';
import { parseDatabase, redactUrl } from '../../src/store/index.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../support/postgres.ts';

const missing = postgresMissing();
let pg: TestPostgres | undefined;
const dir = mkdtempSync(join(tmpdir(), 'rb-migrate-'));
before(async () => {
  if (!missing) pg = await startPostgres();
});
after(() => {
  pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Child {
  ready: Promise<void>;
  go(): void;
  done: Promise<{ code: number | null; out: string; err: string }>;
}

function child(database: string): Child {
  const p = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, '../support/open-store.ts'), database],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    p.on('close', (code) => {
      onReady();
      resolve({ code, out: out.replace(/^ready\n/, '').trim(), err });
    }),
  );
  return { ready, go: () => p.stdin.end('go\n'), done };
}

/** Three processes, loaded and waiting, told to open the store at the same moment. */
async function race(database: string): Promise<void> {
  const children = [child(database), child(database), child(database)];
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.go();
  for (const r of await Promise.all(children.map((c) => c.done))) {
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, String(MIGRATIONS.length));
  }
}

test('SQLite: three processes migrating one fresh file at once all start on the whole schema', async () => {
  await race(join(dir, 'race.db'));
});

test(
  'PostgreSQL: three nodes migrating one fresh database at once all start (advisory lock)',
  { skip: missing ?? false },
  async () => {
    await race(await pg!.createDatabase('race'));
  },
);

test('--database: postgres URL, file path, default, and refusals that name the field without the password', () => {
  assert.deepEqual(parseDatabase(undefined, '/var/lib/rackboot'), {
    dialect: 'sqlite',
    file: '/var/lib/rackboot/rackboot.db',
  });
  assert.deepEqual(parseDatabase('', '/d'), { dialect: 'sqlite', file: '/d/rackboot.db' });
  assert.deepEqual(parseDatabase('/srv/rb.db', '/d'), { dialect: 'sqlite', file: '/srv/rb.db' });
  assert.deepEqual(parseDatabase('sqlite:///srv/rb.db', '/d'), { dialect: 'sqlite', file: '/srv/rb.db' });
  assert.equal(parseDatabase('postgres://rb@db1/rackboot', '/d').dialect, 'postgres');
  assert.equal(parseDatabase('postgresql://rb:pw@db1:5433/rackboot?sslmode=require', '/d').dialect, 'postgres');
  assert.throws(
    () => parseDatabase('mysql://root:hunter2@db/rb', '/d'),
    (e: Error) => {
      assert.match(e.message, /^--database: /);
      assert.ok(!e.message.includes('hunter2'), 'the password is not echoed');
      return true;
    },
  );
  assert.throws(
    () => parseDatabase('postgres://a:hunter2@[zz/x', '/d'),
    (e: Error) => {
      assert.match(e.message, /--database: .*not a valid postgres:\/\/ URL/);
      assert.ok(!e.message.includes('hunter2'));
      return true;
    },
  );
  assert.throws(() => parseDatabase('/tmp/a\nb.db', '/d'), /--database: .*control character/);
  assert.equal(redactUrl('postgres://rb:s3cret@db/x'), 'postgres://rb:***@db/x');
});
