// `rackboot users ...` on either store: the first admin of a PostgreSQL installation comes from the same command.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.ts';
import { openPostgresStore } from '../../src/store/index.ts';
import { usersCommand } from '../../src/web/users-cli.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../support/postgres.ts';

const missing = postgresMissing();
let pg: TestPostgres | undefined;
before(async () => {
  if (!missing) pg = await startPostgres();
});
after(() => pg?.stop());

test(
  'users add / list / disable on PostgreSQL (--database), audited; disabling the last admin warns',
  { skip: missing ?? false },
  async () => {
    const url = await pg!.createDatabase();
    const config = loadConfig({ 'data-dir': '/nonexistent', database: url }, {});
    const out: string[] = [];
    const err: string[] = [];
    const io = (stdin = '') => ({
      out: (s: string) => void out.push(s),
      err: (s: string) => void err.push(s),
      readStdin: () => Promise.resolve(stdin),
    });
    assert.equal(
      await usersCommand(config, io('correct horse battery'), ['add', 'alice'], { role: 'admin', passwordStdin: true }),
      0,
      err.join('\n'),
    );
    assert.equal(await usersCommand(config, io(), ['list'], {}), 0);
    assert.match(out.join('\n'), /^alice\tadmin\tactive\t/m);
    assert.equal(await usersCommand(config, io(), ['disable', 'alice'], {}), 0);
    assert.match(err.join('\n'), /alice was the last active admin/);
    assert.equal(await usersCommand(config, io(), ['enable', 'alice'], {}), 0);
    const store = await openPostgresStore(url, { dataDir: '/nonexistent', secret: Buffer.alloc(32) });
    try {
      assert.equal((await store.users.authenticate('alice', 'correct horse battery'))?.role, 'admin');
      assert.deepEqual(
        (await store.audit.recent()).map((a) => [a.actor, a.action, a.target]),
        [
          ['cli', 'user.enable', 'alice'],
          ['cli', 'user.disable', 'alice'],
          ['cli', 'user.create', 'alice'],
        ],
      );
    } finally {
      await store.close();
    }
  },
);
