// --database like every other setting: flag, RACKBOOT_DATABASE, config file; the default SQLite file; refusals
// that name the setting and never echo a password.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config.ts';

test('database: default is <data-dir>/rackboot.db; flag, environment and file each name it; flags win', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rb-cfg-db-'));
  try {
    assert.deepEqual(loadConfig({ 'data-dir': '/var/lib/rb' }, {}, dir).database, {
      dialect: 'sqlite',
      file: '/var/lib/rb/rackboot.db',
    });
    assert.deepEqual(loadConfig({ database: 'postgres://rb@db1/rackboot' }, {}, dir).database, {
      dialect: 'postgres',
      url: 'postgres://rb@db1/rackboot',
    });
    assert.deepEqual(loadConfig({}, { RACKBOOT_DATABASE: 'postgresql://rb:pw@db2:5433/rb' }, dir).database, {
      dialect: 'postgres',
      url: 'postgresql://rb:pw@db2:5433/rb',
    });
    const file = join(dir, 'rackboot.yaml');
    writeFileSync(file, 'database: state/rb.db\n');
    assert.deepEqual(loadConfig({ config: file }, {}, '/').database, {
      dialect: 'sqlite',
      file: join(dir, 'state/rb.db'),
    });
    assert.equal(
      loadConfig({ config: file, database: 'postgres://rb@db1/x' }, {}, dir).database.dialect,
      'postgres',
      'the flag wins over the file',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('database: worst values are refused naming --database, without the password', () => {
  for (const bad of [
    'mysql://root:hunter2@db/rb',
    'postgres://u:hunter2@db/rb x',
    'postgres://u:hunter2@[::1/x',
    '/tmp/a\nb.db',
  ])
    assert.throws(
      () => loadConfig({ database: bad }, {}),
      (e: Error) => e instanceof ConfigError && /^--database: /.test(e.message) && !e.message.includes('hunter2'),
      bad,
    );
});
