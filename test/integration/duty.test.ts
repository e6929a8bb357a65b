// Once-per-database duties (src/ops/duty.ts over src/store/repo/leaders.ts): on SQLite (two connections to one
// file, as two processes have) and on PostgreSQL (two stores on one database, as two nodes have), only one node
// holds a role; a holder that stops renewing (killed) is replaced once its lease ran out; a clean stop hands
// the role over at once; a holder that loses the database stops the duty before its lease runs out.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/index.ts';
import { holdDuty } from '../../src/ops/duty.ts';
import { LeaderRepo } from '../../src/store/repo/leaders.ts';
import { silentLogger } from '../../src/log.ts';
import { storeBackends } from '../support/backends.ts';

const secret = Buffer.alloc(32, 3);
const backends = storeBackends({ secret });

/** Resolves when `check` holds, polling every 20 ms; fails after `ms`. */
async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const b of backends) {
  describe(`duties on ${b.name}`, { skip: b.skip }, () => {
    test('one holder; the other takes the role only once the lease ran out, or at once after a release', async () => {
      const { store: a, again } = await b.open();
      const other = await again();
      let t = 1_000_000;
      // Both nodes read one clock here: the lease is a time in the table, not a session.
      const ra = new LeaderRepo(a.sql, () => t);
      const rb = new LeaderRepo(other.sql, () => t);
      assert.equal(await ra.claim('rollouts', 'node-a', 9000), true);
      assert.equal(await rb.claim('rollouts', 'node-b', 9000), false, 'held by A');
      t += 5000;
      assert.equal(await ra.claim('rollouts', 'node-a', 9000), true, 'A renews');
      t += 8999;
      assert.equal(await rb.claim('rollouts', 'node-b', 9000), false, 'renewed lease still running');
      t += 2;
      assert.equal(await rb.claim('rollouts', 'node-b', 9000), true, 'A stopped renewing: B takes over');
      assert.equal(await ra.claim('rollouts', 'node-a', 9000), false, 'A, back, does not take it back');
      assert.deepEqual(await ra.holder('rollouts'), { node: 'node-b', expiresAt: t + 9000 });
      await ra.release('rollouts', 'node-a');
      assert.equal((await ra.holder('rollouts'))?.node, 'node-b', 'only the holder releases');
      await rb.release('rollouts', 'node-b');
      assert.equal(await ra.claim('rollouts', 'node-a', 9000), true, 'released: A takes it at once');
      assert.equal(await rb.claim('other-role', 'node-b', 9000), true, 'roles are independent');
    });

    test('holdDuty runs the duty on one node; stopping it there starts it on the other', async () => {
      const { store: a, again } = await b.open();
      const other = await again();
      const running = new Set<string>();
      const duty = (store: Store, node: string) =>
        holdDuty({
          leaders: store.leaders,
          role: 'rollouts',
          node,
          ttlMs: 600,
          start: () => running.add(node),
          stop: () => Promise.resolve(void running.delete(node)),
          log: silentLogger(),
        });
      const da = await duty(a, 'node-a');
      const db = await duty(other, 'node-b');
      assert.deepEqual([...running], ['node-a']);
      assert.equal(da.held(), true);
      assert.equal(db.held(), false);
      // Several renewals later it is still A alone.
      await new Promise((r) => setTimeout(r, 700));
      assert.deepEqual([...running], ['node-a']);
      await da.stop();
      assert.equal(running.has('node-a'), false);
      await until('node-b takes the duty', 2000, () => running.has('node-b'));
      assert.deepEqual([...running], ['node-b']);
      await db.stop();
      assert.equal(running.size, 0);
    });
  });
}
