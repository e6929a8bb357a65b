// The store contract, continued: rollouts, webhook deliveries, BMCs and the table change feed, each run on both
// stores (SQLite file, PostgreSQL from test/support/postgres.ts) as in store-contract.test.ts. Each test gets a
// fresh database. Without PostgreSQL binaries the postgres half is skipped with the reason.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Sql } from '../../src/store/sql.ts';
import { parseMac, type Mac } from '../../src/net/mac.ts';
import type { HostFields } from '../../src/store/hosts.ts';
import { storeBackends } from '../support/backends.ts';
import { secretBox } from '../../src/bmc/secret-box.ts';
import { BmcPasswordMissing, type BmcSetting } from '../../src/store/bmc.ts';
import { ROLLOUTS_KEPT } from '../../src/store/rollouts.ts';
import type { AttemptResult, NewDelivery } from '../../src/store/webhooks.ts';
import { TableChangeFeed } from '../../src/store/repo/changes.ts';
import type { Change } from '../../src/store/changes.ts';

const mac = (i: number): Mac =>
  parseMac(`52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`)!;
const host = (i: number, over: Partial<HostFields> = {}): HostFields => ({
  mac: mac(i),
  hostname: `rhvh${i}.lab`,
  profile: 'rhvh',
  ip: `10.0.${i >> 8}.${i & 255}`,
  rack: 'r1',
  position: String(i),
  nameservers: [],
  params: {},
  ...over,
});
const secret = Buffer.alloc(32, 7);
const box = secretBox(Buffer.alloc(32, 9));
/** The worst a name or a note can hold: quotes, a placeholder, a NUL, astral unicode, 16 KB. */
const nasty = `x'); DROP TABLE hosts; -- ?$1 "é" 𝄞 \u0000 ${'ü'.repeat(16 * 1024)}`;
/** What either store gives back for `nasty`: PostgreSQL text cannot hold U+0000, so both keep U+FFFD. */
const nastyStored = nasty.replaceAll('\0', '\ufffd');

const backends = storeBackends({ secret, bmcBox: box });

async function waitFor(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `n` rows from a recursive count, in a spelling both databases take. */
const counted = (n: number) => `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n})`;

const delivery = (i: number, over: Partial<NewDelivery> = {}): NewDelivery => ({
  uid: `uid-${i}`,
  url: `https://hooks.example/${i}`,
  event: 'build.finished',
  mac: mac(i),
  buildId: i,
  payload: { i, note: nasty },
  status: 'pending',
  nextAt: 1000 + i,
  createdAt: 900 + i,
  ...over,
});

const bmc = (over: Partial<BmcSetting> = {}): BmcSetting => ({
  driver: 'redfish',
  address: 'https://10.1.0.1',
  username: 'root',
  verifyTls: true,
  ...over,
});

for (const b of backends) {
  describe(`store contract (rollouts, webhooks, bmc, change feed): ${b.name}`, { skip: b.skip }, () => {
    test('rollouts: create puts hosts in waves; get, hosts, list pages, running', async () => {
      let t = 1_700_000_000_000;
      const { store } = await b.open({ now: () => t });
      const macs = [mac(5), mac(3), mac(1), mac(4), mac(2)];
      const r = await store.rollouts.create({
        actor: nasty,
        scope: 'rack R1 — 𝄞',
        power: true,
        waveSize: 2,
        waveIntervalMs: 60_000,
        macs,
      });
      assert.equal(typeof r.id, 'number');
      assert.equal(r.actor, nastyStored);
      assert.equal(r.scope, 'rack R1 — 𝄞');
      assert.deepEqual(
        { ...r, actor: '' },
        {
          id: r.id,
          createdAt: t,
          actor: '',
          scope: 'rack R1 — 𝄞',
          power: true,
          waveSize: 2,
          waveIntervalMs: 60_000,
          status: 'running',
          nextWave: 0,
          nextWaveAt: t,
        },
        'epoch milliseconds survive (64-bit on PostgreSQL); no finishedAt while running',
      );
      assert.deepEqual(await store.rollouts.get(r.id), r);
      assert.equal(await store.rollouts.get(r.id + 1000), undefined);
      const hosts = await store.rollouts.hosts(r.id);
      assert.deepEqual(
        hosts.map((h) => [h.wave, h.mac, h.step]),
        [
          [0, mac(3), 'queued'],
          [0, mac(5), 'queued'],
          [1, mac(1), 'queued'],
          [1, mac(4), 'queued'],
          [2, mac(2), 'queued'],
        ],
        'host i in wave floor(i / waveSize); within a wave by MAC',
      );
      assert.equal(hosts[0]!.reason, undefined);
      assert.equal(hosts[0]!.buildId, undefined);
      t += 1;
      const r2 = await store.rollouts.create({
        actor: 'a',
        scope: 'hosts',
        power: false,
        waveSize: 10,
        waveIntervalMs: 0,
        macs: [mac(9)],
      });
      assert.equal(r2.power, false);
      assert.ok(r2.id > r.id);
      assert.deepEqual(
        (await store.rollouts.list(10)).map((x) => x.id),
        [r2.id, r.id],
      );
      assert.deepEqual(
        (await store.rollouts.list(1)).map((x) => x.id),
        [r2.id],
      );
      assert.deepEqual(
        (await store.rollouts.list(10, r2.id)).map((x) => x.id),
        [r.id],
        'the next page: older than beforeId',
      );
      assert.deepEqual(
        (await store.rollouts.running()).map((x) => x.id),
        [r.id, r2.id],
      );
    });

    test('rollouts: setStep keeps a build id once set; advance and finish only while running; runningWith', async () => {
      let t = 1_700_000_000_000;
      const { store } = await b.open({ now: () => t });
      const r = await store.rollouts.create({
        actor: 'ops',
        scope: 'hosts',
        power: true,
        waveSize: 1,
        waveIntervalMs: 1000,
        macs: [mac(1), mac(2), mac(3)],
      });
      t += 5;
      await store.rollouts.setStep(r.id, mac(1), 'build-started', undefined, 42);
      t += 5;
      await store.rollouts.setStep(r.id, mac(1), 'failed', `power: ${nasty}`);
      const [h1] = await store.rollouts.hosts(r.id);
      assert.deepEqual(h1, {
        mac: mac(1),
        wave: 0,
        step: 'failed',
        reason: `power: ${nastyStored}`,
        buildId: 42,
        updatedAt: t,
      });
      await store.rollouts.setStep(r.id, mac(7), 'powered');
      assert.equal((await store.rollouts.hosts(r.id)).length, 3, 'a host not in the rollout is not added');

      await store.rollouts.advance(r.id, 1, t + 1000);
      let got = await store.rollouts.get(r.id);
      assert.equal(got?.nextWave, 1);
      assert.equal(got?.nextWaveAt, t + 1000);

      const other = await store.rollouts.create({
        actor: 'ops',
        scope: 'hosts',
        power: false,
        waveSize: 5,
        waveIntervalMs: 0,
        macs: [mac(3), mac(4)],
      });
      assert.deepEqual(
        (await store.rollouts.runningWith([mac(3)])).map((x) => x.id),
        [r.id, other.id],
      );
      assert.deepEqual(
        (await store.rollouts.runningWith([mac(2), mac(9)])).map((x) => x.id),
        [r.id],
      );
      assert.deepEqual(await store.rollouts.runningWith([mac(9)]), []);
      assert.deepEqual(await store.rollouts.runningWith([]), []);

      t += 10;
      assert.equal(await store.rollouts.finish(r.id, 'cancelled'), true);
      assert.equal(await store.rollouts.finish(r.id, 'done'), false, 'not running any more');
      got = await store.rollouts.get(r.id);
      assert.equal(got?.status, 'cancelled');
      assert.equal(got?.finishedAt, t);
      assert.deepEqual(
        (await store.rollouts.hosts(r.id)).map((h) => [h.mac, h.step, h.reason]),
        [
          [mac(1), 'failed', `power: ${nastyStored}`],
          [mac(2), 'cancelled', 'rollout cancelled before this host started'],
          [mac(3), 'cancelled', 'rollout cancelled before this host started'],
        ],
        'only queued hosts are cancelled',
      );
      await store.rollouts.advance(r.id, 2, t + 5000);
      assert.equal((await store.rollouts.get(r.id))?.nextWave, 1, 'a finished rollout does not advance');
      assert.deepEqual(
        (await store.rollouts.runningWith([mac(3)])).map((x) => x.id),
        [other.id],
      );
      assert.equal(await store.rollouts.finish(other.id, 'done'), true);
      assert.deepEqual(
        (await store.rollouts.hosts(other.id)).map((h) => h.step),
        ['queued', 'queued'],
        'done leaves steps as they were',
      );
      assert.deepEqual(await store.rollouts.running(), []);
    });

    test(`rollouts: only the newest ${ROLLOUTS_KEPT} finished ones are kept, a running one never pruned`, async () => {
      const { store } = await b.open();
      const first = await store.rollouts.create({
        actor: 'a',
        scope: 'hosts',
        power: false,
        waveSize: 1,
        waveIntervalMs: 0,
        macs: [mac(1)],
      });
      const done = await store.rollouts.create({
        actor: 'a',
        scope: 'hosts',
        power: false,
        waveSize: 1,
        waveIntervalMs: 0,
        macs: [mac(2)],
      });
      await store.rollouts.finish(done.id, 'done');
      await store.sql.run(
        `${counted(ROLLOUTS_KEPT)} INSERT INTO rollouts (created_at, actor, scope, power, wave_size, wave_interval_ms, status, next_wave, next_wave_at)
         SELECT i, 'bulk', 'hosts', 0, 1, 0, 'done', 0, 0 FROM n`,
      );
      await store.rollouts.create({
        actor: 'a',
        scope: 'hosts',
        power: false,
        waveSize: 1,
        waveIntervalMs: 0,
        macs: [],
      });
      assert.ok(await store.rollouts.get(first.id), 'the running one stays');
      assert.equal(await store.rollouts.get(done.id), undefined, 'the oldest finished one is gone');
      assert.deepEqual(await store.rollouts.hosts(done.id), [], 'with its hosts');
      const n = await store.sql.get<{ n: number }>('SELECT count(*) AS n FROM rollouts');
      assert.equal(Number(n?.n), ROLLOUTS_KEPT + 1);
    });

    test('webhook deliveries: add, pendingCount, due (busy left out), nextDueAt, recordAttempt', async () => {
      const { store } = await b.open();
      const w = store.webhookDeliveries;
      assert.equal(await w.pendingCount(), 0);
      assert.equal(await w.nextDueAt(), undefined);
      const d1 = await w.add(delivery(1, { url: 'https://hooks.example/ü?x=1&y=\0' }));
      assert.equal(typeof d1.id, 'number');
      assert.equal(d1.url, 'https://hooks.example/ü?x=1&y=\ufffd');
      assert.deepEqual(d1.payload, { i: 1, note: nasty }, 'the payload is JSON: even a NUL survives exactly');
      assert.equal(d1.attempts, 0);
      assert.equal(d1.mac, mac(1));
      assert.equal(d1.buildId, 1);
      assert.equal(d1.lastAt, undefined);
      const d2 = await w.add(delivery(2, { mac: undefined, buildId: undefined, nextAt: 1_700_000_000_002 }));
      assert.equal(d2.mac, undefined);
      assert.equal(d2.buildId, undefined);
      const d3 = await w.add(delivery(3, { nextAt: 500 }));
      await w.add(delivery(4, { status: 'dropped', lastError: 'queue full' }));
      await assert.rejects(w.add(delivery(1)), /unique|duplicate/i, 'a uid is delivered once');
      assert.equal(await w.pendingCount(), 3);
      assert.equal(await w.nextDueAt(), 500);

      assert.deepEqual(
        (await w.due(2000, 10, new Set())).map((d) => d.id),
        [d3.id, d1.id],
        'due ones, oldest next_at first',
      );
      assert.deepEqual(
        (await w.due(2000, 1, new Set([d3.id]))).map((d) => d.id),
        [d1.id],
        'busy left out, and still `limit` of the rest',
      );
      assert.deepEqual(await w.due(100, 10, new Set()), []);

      const delivered: AttemptResult = {
        status: 'delivered',
        attempts: 1,
        nextAt: 1000,
        lastAt: 1_700_000_000_100,
        lastStatus: 204,
        lastMs: 12,
      };
      await w.recordAttempt(d1.id, delivered);
      await w.recordAttempt(d3.id, {
        status: 'pending',
        attempts: 1,
        nextAt: 1_700_000_000_500,
        lastAt: 1_700_000_000_100,
        lastError: nasty,
        lastMs: 30_000,
      });
      const [got1] = await w.list({ status: 'delivered' });
      assert.deepEqual({ ...got1, payload: undefined }, { ...d1, payload: undefined, ...delivered });
      const got3 = (await w.list({ mac: mac(3) }))[0]!;
      assert.equal(got3.lastError, nastyStored);
      assert.equal(got3.lastStatus, undefined, 'no answer: no HTTP status');
      assert.equal(got3.nextAt, 1_700_000_000_500);
      assert.equal(await w.pendingCount(), 2);
      assert.equal(await w.nextDueAt(), 1_700_000_000_002);
    });

    test('webhook deliveries: list filters and pages; prune keeps the newest finished and every pending one', async () => {
      const { store } = await b.open();
      const w = store.webhookDeliveries;
      const ids: number[] = [];
      for (let i = 1; i <= 6; i++)
        ids.push((await w.add(delivery(i, { mac: mac(i % 2), status: i <= 4 ? 'failed' : 'pending' }))).id);
      assert.deepEqual(
        (await w.list()).map((d) => d.id),
        [...ids].reverse(),
        'newest first',
      );
      assert.deepEqual(
        (await w.list({ limit: 2 })).map((d) => d.id),
        [ids[5], ids[4]],
      );
      assert.deepEqual(
        (await w.list({ limit: 2, beforeId: ids[4] })).map((d) => d.id),
        [ids[3], ids[2]],
      );
      assert.deepEqual(
        (await w.list({ mac: mac(1), status: 'failed' })).map((d) => d.id),
        [ids[2], ids[0]],
      );
      assert.deepEqual(
        (await w.list({ limit: 0 })).map((d) => d.id),
        [ids[5]],
        'a limit below 1 still reads one',
      );
      assert.equal(await w.prune(10), 0, 'fewer finished than kept: nothing goes');
      assert.equal(await w.prune(1), 3);
      assert.deepEqual(
        (await w.list()).map((d) => d.id),
        [ids[5], ids[4], ids[3]],
        'the newest finished one and both pending ones are left',
      );
      assert.equal(await w.prune(0), 1);
      assert.equal(await w.pendingCount(), 2);
    });

    test('bmc: the password is sealed at rest and never returned; bmcConfig opens it; remove', async () => {
      let t = 1_700_000_000_000;
      const { store } = await b.open({ now: () => t });
      await store.hosts.insert(host(1));
      await store.hosts.insert(host(2));
      const password = `pä\0ss𝄞'--${'x'.repeat(16 * 1024)}`;
      await assert.rejects(store.bmc.set(mac(1), bmc()), BmcPasswordMissing, 'a first BMC needs a password');
      assert.equal(await store.bmc.get(mac(1)), undefined);
      const v = await store.bmc.set(mac(1), bmc({ password, system: '/redfish/v1/Systems/1', fingerprint: 'AB:CD' }));
      assert.deepEqual(v, {
        driver: 'redfish',
        address: 'https://10.1.0.1',
        username: 'root',
        system: '/redfish/v1/Systems/1',
        verifyTls: true,
        fingerprint: 'AB:CD',
        passwordSet: true,
        updatedAt: t,
      });
      assert.ok(!('password' in v));
      const raw = await store.sql.all<Record<string, unknown>>('SELECT * FROM host_bmc');
      assert.equal(raw.length, 1);
      const rawText = JSON.stringify(raw);
      assert.ok(!rawText.includes('ss𝄞'), 'the raw row does not contain the password');
      assert.ok(!rawText.includes('xxxxxxxx'), 'nor any run of it');
      assert.match(String(raw[0]!.password_enc), /^v1:/);
      assert.deepEqual(await store.bmc.get(mac(1)), v);
      assert.deepEqual([...(await store.bmc.list())], [[mac(1), v]]);
      assert.deepEqual(await store.bmc.bmcConfig(mac(1)), {
        driver: 'redfish',
        address: 'https://10.1.0.1',
        username: 'root',
        password,
        system: '/redfish/v1/Systems/1',
        verifyTls: true,
        fingerprint: 'AB:CD',
      });
      assert.equal(await store.bmc.bmcConfig(mac(2)), undefined);

      t += 1;
      const v2 = await store.bmc.set(
        mac(1),
        bmc({ driver: 'ipmi', address: '10.1.0.9', username: 'ädmin', verifyTls: false }),
      );
      assert.equal(v2.passwordSet, true, 'no password given: the stored one is kept');
      assert.equal(v2.system, undefined);
      assert.equal(v2.updatedAt, t);
      const c2 = await store.bmc.bmcConfig(mac(1));
      assert.equal(c2?.password, password);
      assert.equal(c2?.driver, 'ipmi');
      assert.equal(c2?.username, 'ädmin');
      assert.equal(c2?.verifyTls, false);
      await store.bmc.set(mac(2), bmc({ password: 'two' }));
      assert.deepEqual([...(await store.bmc.list()).keys()], [mac(1), mac(2)]);

      assert.equal(await store.bmc.remove(mac(1)), true);
      assert.equal(await store.bmc.remove(mac(1)), false);
      assert.equal(await store.bmc.get(mac(1)), undefined);
      await store.hosts.delete(mac(2));
      assert.equal(await store.bmc.get(mac(2)), undefined, 'deleting the host deletes its BMC');
    });

    test('bmc: another key, a row copied to another host, or no key at all: refused with what to do', async () => {
      const { store, again } = await b.open();
      await store.hosts.insert(host(1));
      await store.hosts.insert(host(2));
      await store.bmc.set(mac(1), bmc({ password: 'secret' }));
      const otherKey = await again({ bmcBox: secretBox(Buffer.alloc(32, 1)) });
      await assert.rejects(otherKey.bmc.bmcConfig(mac(1)), /does not decrypt with this data dir's bmc\.key/);
      const noKey = await again({ bmcBox: undefined });
      assert.equal((await noKey.bmc.get(mac(1)))?.passwordSet, true, 'reading needs no key');
      await assert.rejects(noKey.bmc.bmcConfig(mac(1)), /without the BMC key/);
      await assert.rejects(noKey.bmc.set(mac(1), bmc({ password: 'new' })), /without the BMC key/);
      const sealed = await store.sql.get<{ password_enc: string }>('SELECT password_enc FROM host_bmc WHERE mac = ?', [
        mac(1),
      ]);
      await store.bmc.set(mac(2), bmc({ password: 'x' }));
      await store.sql.run('UPDATE host_bmc SET password_enc = ? WHERE mac = ?', [sealed!.password_enc, mac(2)]);
      await assert.rejects(store.bmc.bmcConfig(mac(2)), /does not decrypt/, 'the MAC is bound into the seal');
    });

    test('change feed: a host created, built and deleted through another connection is heard within a second', async () => {
      const { store, again } = await b.open();
      const errors: unknown[] = [];
      const feed = new TableChangeFeed(store.sql, { onError: (e) => errors.push(e) });
      const seen: { c: Change; at: number }[] = [];
      const off = feed.subscribe((c) => seen.push({ c, at: Date.now() }));
      try {
        await feed.ready();
        const peer = await again();
        const nastyHost = host(1, { hostname: `h-${'é'.repeat(300)}.lab`, params: { note: nasty } });
        const wrote = Date.now();
        await peer.hosts.insert(nastyHost);
        await waitFor('the host', () => seen.some((s) => s.c.kind === 'host' && s.c.mac === mac(1)), 1000);
        assert.ok(seen[0]!.at - wrote < 1000);
        await peer.builds.start(mac(1), 60_000);
        await waitFor('the build', () => seen.some((s) => s.c.kind === 'build' && s.c.mac === mac(1)), 1000);
        await peer.hosts.delete(mac(1));
        await waitFor('the delete', () => seen.some((s) => s.c.kind === 'host.deleted' && s.c.mac === mac(1)), 1000);
        assert.deepEqual(
          seen.map((s) => s.c.kind),
          ['host', 'build', 'host.deleted'],
          'each change once, in order',
        );
        assert.deepEqual(errors, []);
      } finally {
        off();
        feed.close();
      }
    });

    test('change feed: only changes after subscribe; token expiry is a change; local events come at once', async () => {
      const { store, again } = await b.open();
      await store.hosts.insert(host(1));
      await store.hosts.insert(host(2));
      const local = new Set<(e: { mac: string }) => void>();
      const feed = new TableChangeFeed(store.sql, {
        pollMs: 50,
        local: {
          subscribe(l) {
            local.add(l);
            return () => local.delete(l);
          },
        },
      });
      const seen: Change[] = [];
      const off = feed.subscribe((c) => seen.push(c));
      try {
        assert.equal(local.size, 1, 'subscribed to local events with the first listener');
        for (const l of local) l({ mac: mac(2) });
        assert.deepEqual(seen, [{ kind: 'event', mac: mac(2) }], 'a local event needs no poll');
        await feed.ready();
        const peer = await again();
        await peer.builds.start(mac(1), 400);
        await waitFor('the expiry', () => seen.some((c) => c.kind === 'expired'), 3000);
        assert.deepEqual(seen.slice(1), [
          { kind: 'build', mac: mac(1) },
          { kind: 'expired', mac: mac(1) },
        ]);
        await feed.poll();
        await feed.poll();
        assert.equal(seen.filter((c) => c.kind === 'expired').length, 1, 'an expiry is said once');
      } finally {
        off();
        feed.close();
      }
      assert.equal(local.size, 0, 'the last unsubscribe lets go of local events');
    });

    test('change feed: a poll that fails is reported and the next one catches up; polls never overlap', async () => {
      const { store } = await b.open();
      let failing = 0;
      let inFlight = 0;
      let overlapped = false;
      // The real connection, with a fault switch and a watch on how many reads run at once.
      const watched =
        <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
        async (...a: A): Promise<R> => {
          if (failing > 0) {
            failing--;
            throw new Error('connection lost');
          }
          if (++inFlight > 1) overlapped = true;
          try {
            await new Promise((r) => setTimeout(r, 5));
            return await fn(...a);
          } finally {
            inFlight--;
          }
        };
      const sql: Sql = {
        dialect: store.sql.dialect,
        all: watched((q: string, p?: readonly (string | number | null)[]) => store.sql.all(q, p)),
        get: watched((q: string, p?: readonly (string | number | null)[]) => store.sql.get(q, p)),
        run: (q, p) => store.sql.run(q, p),
        tx: (fn) => store.sql.tx(fn),
        lockKey: (k) => store.sql.lockKey(k),
      } as Sql;
      const errors: string[] = [];
      const feed = new TableChangeFeed(sql, { pollMs: 10, onError: (e) => errors.push((e as Error).message) });
      const seen: Change[] = [];
      const off = feed.subscribe((c) => seen.push(c));
      try {
        await feed.ready();
        failing = 3;
        await store.hosts.insert(host(1));
        await Promise.all([feed.poll(), feed.poll(), feed.poll()]);
        await waitFor('the host after the failures', () => seen.some((c) => c.mac === mac(1)), 3000);
        assert.ok(errors.length >= 1 && errors.every((m) => m === 'connection lost'), JSON.stringify(errors));
        assert.equal(seen.filter((c) => c.mac === mac(1)).length, 1, 'heard once');
        assert.equal(overlapped, false, 'never two polls at once');
      } finally {
        off();
        feed.close();
      }
    });

    test('change feed: a backlog bigger than the table keeps says resync once, then carries on', async () => {
      const { store } = await b.open();
      for (let i = 1; i <= 100; i++) await store.hosts.insert(host(i));
      const feed = new TableChangeFeed(store.sql, { pollMs: 3_600_000 });
      const seen: Change[] = [];
      const off = feed.subscribe((c) => seen.push(c));
      try {
        await feed.ready();
        await store.sql.tx(async (sql) => {
          for (let k = 0; k < 101; k++) await sql.run('UPDATE hosts SET position = position');
        });
        await feed.poll();
        assert.deepEqual(seen, [{ kind: 'resync', mac: '' }], 'not 10,000 stale changes, nor a silent loss');
        await store.hosts.delete(mac(1));
        await feed.poll();
        assert.deepEqual(seen.slice(1), [{ kind: 'host.deleted', mac: mac(1) }]);
      } finally {
        off();
        feed.close();
      }
    });

    test('change feed: a change committed after a later one was read is still heard (PostgreSQL ids)', async () => {
      if (b.name !== 'postgres') return; // SQLite has one writer at a time: ids commit in order
      const { store, again } = await b.open();
      const feed = new TableChangeFeed(store.sql, { pollMs: 20 });
      const seen: Change[] = [];
      const off = feed.subscribe((c) => seen.push(c));
      try {
        await feed.ready();
        const peer = await again();
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let inserted!: () => void;
        const insertedP = new Promise<void>((r) => (inserted = r));
        const slow = peer.sql.tx(async (sql) => {
          await sql.run(
            "INSERT INTO hosts (mac, hostname, profile, params, created_at, updated_at) VALUES (?, 'slow.lab', 'rhvh', '{}', 1, 1)",
            [mac(1)],
          );
          inserted();
          await held;
        });
        await insertedP;
        await store.hosts.insert(host(2));
        await waitFor('the later change', () => seen.some((c) => c.mac === mac(2)), 2000);
        release();
        await slow;
        await waitFor('the earlier id, committed last', () => seen.some((c) => c.mac === mac(1)), 2000);
        assert.deepEqual(
          seen.map((c) => c.mac),
          [mac(2), mac(1)],
        );
      } finally {
        off();
        feed.close();
      }
    });
  });
}
