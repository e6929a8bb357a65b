// The store contract: ONE set of tests, run on both stores (SQLite file, PostgreSQL from test/support/postgres.ts).
// Each test gets a fresh database. Without PostgreSQL binaries the postgres half is skipped with the reason.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreChange } from '../../src/store/index.ts';
import { parseMac, type Mac } from '../../src/net/mac.ts';
import type { HostFields } from '../../src/store/hosts.ts';
import { hashUserPassword } from '../../src/store/users.ts';
import { storeBackends } from '../support/backends.ts';
import { MIGRATIONS } from '../../src/store/db.ts';
import { StoreView } from '../../src/store/view.ts';
import type { LeaseRow } from '../../src/dhcp/leases.ts';

const mac = (i: number): Mac =>
  parseMac(`52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`)!;
const host = (i: number, over: Partial<HostFields> = {}): HostFields => ({
  mac: mac(i),
  hostname: `rhvh${i}.lab`,
  profile: 'rhvh',
  ip: `10.0.0.${i}`,
  nameservers: ['10.0.0.1', '10.0.0.2'],
  uuid: `4c4c4544-0000-0000-0000-${String(i).padStart(12, '0')}`,
  rack: 'r1',
  position: String(i),
  params: { role: 'compute' },
  ...over,
});
const secret = Buffer.alloc(32, 7);

const backends = storeBackends({ secret });

async function waitFor(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const b of backends) {
  describe(`store contract: ${b.name}`, { skip: b.skip }, () => {
    test('hosts: insert, every look-up, update, delete; values an attacker would send round-trip as data', async () => {
      const { store } = await b.open();
      const nasty = `x'); DROP TABLE hosts; -- ?$1 "é" 𝄞`;
      await store.hosts.insert(host(1, { params: { note: nasty } }));
      await store.hosts.insert(host(2, { uuid: 'AA' }));
      const h = await store.hosts.get(mac(1));
      assert.equal(h?.hostname, 'rhvh1.lab');
      assert.deepEqual(h?.nameservers, ['10.0.0.1', '10.0.0.2']);
      assert.equal(h?.params.note, nasty);
      assert.equal(typeof h?.createdAt, 'number');
      assert.ok(h!.createdAt > 1e12, 'epoch milliseconds survive (64-bit on PostgreSQL)');
      assert.equal((await store.hosts.getByIp('10.0.0.2'))?.mac, mac(2));
      assert.equal((await store.hosts.getByHostname('rhvh2.lab'))?.mac, mac(2));
      assert.equal(
        (await store.hosts.getByUuid(host(1).uuid!.toUpperCase()))?.mac,
        mac(1),
        'UUID look-up ignores case',
      );
      assert.deepEqual(
        (await store.hosts.list()).map((x) => x.mac),
        [mac(1), mac(2)],
      );
      const up = await store.hosts.update({ ...host(1), hostname: 'renamed.lab', ip: undefined });
      assert.equal(up.hostname, 'renamed.lab');
      assert.equal(up.ip, undefined);
      assert.equal(await store.hosts.getByIp('10.0.0.1'), undefined);
      assert.equal(await store.hosts.delete(mac(1)), true);
      assert.equal(await store.hosts.delete(mac(1)), false);
      assert.equal(await store.hosts.get(mac(1)), undefined);
    });

    test('hosts: a duplicate hostname or IP is refused by the constraint and changes nothing; insertMany is all or nothing', async () => {
      const { store } = await b.open();
      await store.hosts.insert(host(1));
      await assert.rejects(store.hosts.insert(host(2, { hostname: 'rhvh1.lab' })), /unique|duplicate/i);
      await assert.rejects(store.hosts.insert(host(3, { ip: '10.0.0.1' })), /unique|duplicate/i);
      await assert.rejects(
        store.hosts.insertMany([host(4), host(5), host(6, { hostname: 'rhvh4.lab' })]),
        /unique|duplicate/i,
      );
      assert.deepEqual(
        (await store.hosts.list()).map((x) => x.mac),
        [mac(1)],
        'nothing of the failed import landed',
      );
      await store.hosts.insertMany([host(4), host(5)]);
      assert.equal((await store.hosts.list()).length, 3);
    });

    test('builds: start, token, supersede, built callback (idempotent), cancel, unknown and expired tokens', async () => {
      let now = 1_700_000_000_000;
      const { store } = await b.open({ now: () => now, callbackGraceMs: 60_000 });
      await store.hosts.insert(host(1));
      const first = await store.builds.start(mac(1), 3600_000);
      assert.equal(first.build.status, 'pending');
      assert.equal(await store.builds.tokenOf(first.build), first.token, 'the token is derived again from the nonce');
      assert.equal((await store.builds.checkLive(first.token)).ok, true);
      assert.equal(await store.builds.state(mac(1)), 'build');
      const second = await store.builds.start(mac(1), 3600_000);
      assert.equal((await store.builds.byId(first.build.id))?.status, 'superseded');
      const stale = await store.builds.close(first.token, 'built');
      assert.equal(stale.ok, false);
      assert.equal(!stale.ok && stale.code, 'not-current');
      const wrong = await store.builds.close('A'.repeat(43), 'built');
      assert.equal(!wrong.ok && wrong.code, 'unknown');
      const done = await store.builds.close(second.token, 'built');
      assert.equal(done.ok && done.changed, true);
      const again = await store.builds.close(second.token, 'built');
      assert.equal(again.ok && again.changed, false, 'curl retrying the callback changes nothing');
      const other = await store.builds.close(second.token, 'failed', 'log');
      assert.equal(!other.ok && other.code, 'finished');
      assert.equal(await store.builds.state(mac(1)), 'built');
      assert.equal((await store.builds.history(mac(1))).length, 2);

      const third = await store.builds.start(mac(1), 1000);
      assert.equal((await store.builds.cancel(mac(1)))?.status, 'cancelled');
      assert.equal(await store.builds.cancel(mac(1)), undefined, 'nothing pending to cancel');
      assert.equal(!(await store.builds.checkLive(third.token)).ok, true);

      const fourth = await store.builds.start(mac(1), 1000);
      now += 2000;
      const late = await store.builds.close(fourth.token, 'built');
      assert.equal(!late.ok && late.code, 'expired', 'never fetched its kickstart: no grace');
      const fifth = await store.builds.start(mac(1), 1000);
      await store.builds.markKickstartFetched(fifth.build.id, '10.0.0.1');
      now += 30_000;
      const graced = await store.builds.close(fifth.token, 'failed', 'x'.repeat(100_000));
      assert.equal(graced.ok, true, 'kickstart fetched: the callback grace period applies');
      assert.equal(graced.ok && graced.build.failureLog?.length, 64 * 1024, 'the failure log is bounded');
      assert.equal(graced.ok && graced.build.ksFetchedFrom, '10.0.0.1');
      const latest = await store.builds.latestForAll();
      assert.equal(latest.get(mac(1))?.id, fifth.build.id);
    });

    test('builds: many starts for one host at once leave exactly one pending build (two nodes racing)', async () => {
      const { store, again } = await b.open();
      const peer = b.name === 'postgres' ? await again() : store;
      const starts = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (i % 2 ? peer : store).builds.start(mac(9), 3600_000)),
      );
      const history = await store.builds.history(mac(9));
      assert.equal(history.length, 12);
      assert.equal(history.filter((x) => x.status === 'pending').length, 1);
      let live = 0;
      for (const s of starts) if ((await store.builds.checkLive(s.token)).ok) live++;
      assert.equal(live, 1, "only the pending build's token works");
    });

    test('events: batched appends read back in order, bounded strings, per-host retention', async () => {
      const { store } = await b.open({ eventLimits: { maxPerHost: 5, maxDetailBytes: 512 } });
      for (let i = 0; i < 8; i++)
        store.events.append({
          mac: mac(1),
          type: i === 0 ? 't'.repeat(10_000) : `e${i}`,
          detail: { path: 'p'.repeat(5000) },
        });
      const tl = await store.events.timeline(mac(1));
      assert.equal(tl.length, 8);
      assert.ok(Buffer.byteLength(tl[0].type) <= 64, 'type cut to its bound');
      assert.ok(Buffer.byteLength(JSON.stringify(tl[1].detail)) <= 512);
      assert.deepEqual(
        tl.slice(1).map((e) => e.type),
        ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7'],
      );
      assert.equal(await store.events.prune(), 3);
      assert.deepEqual(
        (await store.events.timeline(mac(1))).map((e) => e.type),
        ['e3', 'e4', 'e5', 'e6', 'e7'],
      );
    });

    test('users, sessions, API tokens: authenticate, disable ends sessions, tokens bounded and revocable', async () => {
      const { store } = await b.open();
      const u = await store.users.add('alice', 'admin', await hashUserPassword('correct horse battery'));
      assert.equal(await store.users.count(), 1);
      assert.equal(await store.users.activeAdmins(), 1);
      assert.equal((await store.users.authenticate('alice', 'correct horse battery'))?.id, u.id);
      assert.equal(await store.users.authenticate('alice', 'wrong password!'), undefined);
      assert.equal(await store.users.authenticate("alice' OR '1'='1", 'x'), undefined);
      await assert.rejects(store.users.add('alice', 'tech', 'h'), /unique|duplicate/i);
      const { id, session } = await store.sessions.create(u);
      assert.equal((await store.sessions.lookup(id))?.csrf, session.csrf);
      assert.equal(await store.sessions.lookup('x'.repeat(101)), undefined);
      const tok = await store.apiTokens.create(u);
      assert.ok('token' in tok);
      assert.equal((await store.apiTokens.authenticate(tok.token))?.name, 'alice');
      assert.equal((await store.apiTokens.list(u)).length, 1);
      await store.users.setDisabled('alice', true);
      assert.equal(await store.sessions.lookup(id), undefined, 'disabling ends the session');
      assert.equal(await store.apiTokens.authenticate(tok.token), undefined);
      assert.equal(await store.users.activeAdmins(), 0);
      await store.users.setDisabled('alice', false);
      for (let i = 1; i < 20; i++) assert.ok('token' in (await store.apiTokens.create(u)));
      assert.ok('error' in (await store.apiTokens.create(u)), 'at most 20 tokens per user');
      assert.equal(await store.apiTokens.revoke(u, tok.info.prefix), true);
      assert.equal(await store.apiTokens.revoke(u, tok.info.prefix), false);
      assert.equal(await store.apiTokens.authenticate(tok.token), undefined);
    });

    test('audit is masked; settings: tech params, first writer wins; images: duplicate refused, replace, remove', async () => {
      const { store } = await b.open();
      await store.audit.record('alice', 'host.update', 'rhvh1', { root_password: 'hunter2', ip: '10.0.0.1' });
      const [entry] = await store.audit.recent(1);
      assert.ok(!entry.diff!.includes('hunter2'), 'secrets never reach the audit table');
      assert.ok(entry.diff!.includes('10.0.0.1'));
      assert.deepEqual(await store.settings.techParams(), []);
      await store.settings.setTechParams(['role', 'site']);
      assert.deepEqual(await store.settings.techParams(), ['role', 'site']);
      assert.equal(await store.settings.putIfAbsent('k', 'first'), 'first');
      assert.equal(await store.settings.putIfAbsent('k', 'second'), 'first');
      const img = {
        name: 'rhvh-4.4',
        version: '4.4.1',
        sourceSha256: 'ab'.repeat(32),
        kernel: 'k',
        initrd: 'i',
        stage2: 's',
        liveimg: 'l',
        files: [{ root: 'tftp' as const, path: 'k', size: 1, sha256: 'cd'.repeat(32), role: 'kernel' as const }],
        importedAt: 1_700_000_000_000,
      };
      await store.images.insert(img);
      await assert.rejects(store.images.insert(img), /unique|duplicate/i);
      await store.images.replace({ ...img, version: '4.4.2' });
      assert.equal((await store.images.get('rhvh-4.4'))?.version, '4.4.2');
      assert.deepEqual(await store.images.resolve('rhvh-4.4'), { kernel: 'k', initrd: 'i', stage2: 's', liveimg: 'l' });
      assert.equal((await store.images.findBySource('ab'.repeat(32))).length, 1);
      assert.equal(await store.images.remove('rhvh-4.4'), true);
      assert.deepEqual(await store.images.list(), []);
    });

    test('discovered: bounded, the least recently seen go first', async () => {
      let now = 1000;
      const { store } = await b.open({ discoveredMaxRows: 20, now: () => now });
      for (let i = 0; i < 250; i++) {
        now++;
        await store.discovered.seen({ mac: mac(i), arch: 7, ipxe: false, uuid: i ? undefined : 'u0' });
      }
      await store.discovered.prune();
      const rows = await store.discovered.list();
      assert.equal(rows.length, 20);
      assert.equal(rows[0].mac, mac(249));
      assert.equal(rows[0].lastSeen, now);
      assert.ok(!rows.some((r) => r.mac === mac(0)));
    });

    test('syslog: ring per build, case-insensitive search with LIKE wildcards taken literally, count, tail', async () => {
      const { store } = await b.open({ syslogLimits: { ringLines: 10, maxTotalLines: 1000, maxQueued: 100 } });
      for (let i = 0; i < 30; i++)
        store.syslog.append({
          buildId: 1,
          mac: mac(1),
          at: 1_700_000_000_000 + i,
          facility: 1,
          severity: i === 29 ? 3 : 6,
          text: `Line ${i}`,
        });
      store.syslog.append({ buildId: 2, mac: mac(2), at: 1, facility: 1, severity: 6, text: '100% done_' });
      assert.equal(await store.syslog.count(1), 10);
      const found = await store.syslog.search({ buildId: 1, q: 'line 2' });
      assert.deepEqual(
        found.map((l) => l.text),
        ['Line 20', 'Line 21', 'Line 22', 'Line 23', 'Line 24', 'Line 25', 'Line 26', 'Line 27', 'Line 28', 'Line 29'],
      );
      assert.equal((await store.syslog.search({ buildId: 1, maxSeverity: 3 })).length, 1);
      assert.equal((await store.syslog.search({ buildId: 2, q: '0% d' })).length, 1);
      assert.equal((await store.syslog.search({ buildId: 2, q: '%' })).length, 1);
      assert.equal((await store.syslog.search({ buildId: 2, q: '_x' })).length, 0, '_ is a literal, not a wildcard');
      assert.deepEqual(await store.syslog.tail(1, 1), [`${new Date(1_700_000_000_029).toISOString()} err Line 29`]);
      assert.equal(await store.syslog.prune(1_700_000_000_100 + 30 * 86_400_000), 11);
    });

    test("leases: bind, the MAC's other address released, release, reclaimable order", async () => {
      const { store } = await b.open();
      const lease = { subnet: '10.0.0.0/24', mac: mac(1), state: 'bound' as const, dynamic: true, now: 100 };
      await store.leases.bind({ ...lease, ip: '10.0.0.50', expiresAt: 1000, hostname: 'a' });
      await store.leases.bind({ ...lease, ip: '10.0.0.51', expiresAt: 2000, now: 200 });
      assert.equal((await store.leases.byMac(mac(1), '10.0.0.0/24'))?.ip, '10.0.0.51');
      const old = await store.leases.byIp('10.0.0.50');
      assert.equal(old?.mac, '');
      assert.equal(old?.state, 'released');
      assert.equal(old?.hostname, 'a');
      assert.equal(await store.leases.byIp('not an ip'), undefined);
      assert.equal(await store.leases.release('10.0.0.51', mac(2), 300), false, 'only the holder releases');
      assert.equal(await store.leases.release('10.0.0.51', mac(1), 300), true);
      assert.equal((await store.leases.byIp('10.0.0.51'))?.expiresAt, 300);
      assert.equal((await store.leases.oldestReclaimable('10.0.0.0/24', 400))?.ip, '10.0.0.50');
      assert.equal((await store.leases.oldestReclaimable('10.0.0.0/24', 400, 1))?.ip, '10.0.0.51');
      await store.leases.markStatic('10.0.0.50');
      assert.equal((await store.leases.oldestReclaimable('10.0.0.0/24', 400))?.ip, '10.0.0.51');
      assert.equal((await store.leases.list()).length, 2);
    });

    test('leases: one batch of every kind of write commits in order and says which took effect', async () => {
      const { store } = await b.open();
      const row = (
        ip: number,
        m: string,
        state: LeaseRow['state'],
        exp: number,
        at: number,
        hostname: string | null = null,
      ) =>
        ({ ip, subnet: 'S', mac: m, state, expires_at: exp, dynamic: 1, hostname, updated_at: at }) satisfies LeaseRow;
      const [a, b2, c] = [mac(1), mac(2), mac(3)];
      await store.leases.commit([
        { kind: 'upsert', row: row(10, a, 'bound', 5000, 100), evict: true },
        { kind: 'upsert', row: row(11, b2, 'offered', 150, 100), evict: true },
        { kind: 'upsert', row: row(12, c, 'bound', 5000, 100), evict: true },
        { kind: 'upsert', row: row(13, a, 'offered', 5000, 50), evict: false },
        { kind: 'upsert', row: row(42, b2, 'offered', 150, 100), evict: false },
      ]);
      const won = await store.leases.commit([
        // Held by a live lease of another client: lost. Ran out (150 <= 200): taken.
        { kind: 'claim', row: row(10, b2, 'bound', 9000, 200), evict: false },
        { kind: 'claim', row: row(11, c, 'bound', 9000, 200), evict: false },
        // An offer over the client's own bound lease changes nothing and stands; releasing that "offer" is lost.
        { kind: 'offer', row: row(12, c, 'offered', 9000, 200), evict: false },
        { kind: 'release', ip: 12, mac: c, now: 200, offeredOnly: true },
        // The same address twice in one batch, in order; a NUL in a hostname is stored as U+FFFD.
        { kind: 'upsert', row: row(20, b2, 'offered', 9000, 200, 'x\0y'), evict: false },
        { kind: 'claim', row: row(20, b2, 'bound', 9999, 201), evict: false },
        { kind: 'static', ip: 13 },
        { kind: 'release', ip: 13, mac: a, now: 300, offeredOnly: false },
        // A winner that evicts: a's other addresses (10 and 13) go back to the pool.
        { kind: 'upsert', row: row(30, a, 'bound', 9000, 400), evict: true },
        // An offer to a client bound to another address (30, live): lost, on a fresh address and on a row alike.
        { kind: 'offer', row: row(40, a, 'offered', 9000, 500), evict: false },
        { kind: 'offer', row: row(42, a, 'offered', 9000, 500), evict: false },
        // (The batch runs in address order: 30 before 40.) c's bound lease on 11 ran out at 9000: an offer of another address then stands.
        { kind: 'offer', row: row(41, c, 'offered', 9500, 9000), evict: false },
      ]);
      assert.deepEqual(won, [false, true, true, false, true, true, true, true, true, false, false, true]);
      const byIp = new Map((await store.leases.loadAll()).map((r) => [r.ip, r]));
      const brief = (ip: number) => {
        const r = byIp.get(ip)!;
        return [r.mac, r.state, r.expires_at, r.dynamic, r.hostname];
      };
      assert.deepEqual(brief(10), ['', 'released', 400, 1, null], 'the lost claim wrote nothing; then evicted');
      assert.deepEqual(brief(11), [c, 'bound', 9000, 1, null]);
      assert.deepEqual(brief(12), [c, 'bound', 5000, 1, null], 'the offer and its release changed nothing');
      assert.deepEqual(brief(13), ['', 'released', 300, 0, null]);
      assert.deepEqual(brief(20), [b2, 'bound', 9999, 1, 'x\ufffdy']);
      assert.deepEqual(brief(30), [a, 'bound', 9000, 1, null]);
      assert.equal(byIp.get(40), undefined, 'the lost offer of a fresh address wrote nothing');
      assert.deepEqual(brief(41), [c, 'offered', 9500, 1, null]);
      assert.deepEqual(brief(42), [b2, 'offered', 150, 1, null], 'the lost offer over a row changed nothing');
    });

    test('changes: a write is published to this node at once and, on PostgreSQL, to another node', async () => {
      const { store, again } = await b.open();
      const seen: StoreChange[] = [];
      store.changes.subscribe((c) => void seen.push(c));
      await store.hosts.insert(host(1));
      assert.deepEqual(seen, [{ kind: 'host', mac: mac(1) }]);
      if (b.name !== 'postgres') return; // other SQLite processes: src/store/changes.ts feeds changes.deliver()
      const peer = await again();
      const remote: StoreChange[] = [];
      peer.changes.subscribe((c) => void remote.push(c));
      await store.builds.start(mac(1), 60_000);
      await waitFor('the other node to hear of the build', () => remote.some((c) => c.kind === 'build'), 2000);
      assert.deepEqual(remote, [{ kind: 'build', mac: mac(1) }], 'a node does not hear its own changes twice');
    });

    test("view: answers from memory, current when a write returns; another node's writes within a second (PostgreSQL)", async () => {
      const { store, again } = await b.open();
      await store.hosts.insert(host(1));
      const view = await StoreView.open(store, { reloadMs: 0 });
      try {
        assert.equal(view.host(mac(1))?.hostname, 'rhvh1.lab');
        assert.equal(view.state(mac(1)), 'idle');
        await store.hosts.insert(host(2, { uuid: host(1).uuid }));
        assert.deepEqual(
          view.hostsByUuid(host(1).uuid!.toUpperCase()).map((h) => h.mac),
          [mac(1), mac(2)],
        );
        await store.builds.start(mac(1), 60_000);
        assert.equal(view.state(mac(1)), 'build', "this node's write is in the view when it returns");
        await store.hosts.update({ ...host(1), ip: '10.0.0.99' });
        assert.equal(view.hostByIp('10.0.0.1'), undefined, 'the old address no longer names the host');
        assert.equal(view.hostByIp('10.0.0.99')?.mac, mac(1));
        await store.hosts.delete(mac(2));
        assert.equal(view.host(mac(2)), undefined);
        if (b.name !== 'postgres') return;
        const peer = await again();
        const { token } = await peer.builds.start(mac(1), 60_000);
        await peer.builds.close(token, 'built');
        await peer.hosts.insert(host(3));
        await waitFor(
          "the view to see the other node's writes",
          () => view.state(mac(1)) === 'built' && !!view.host(mac(3)),
          1000,
        );
      } finally {
        view.close();
      }
    });

    test('view: a reload that read before a write does not undo it', async () => {
      const { store } = await b.open();
      await store.hosts.insert(host(1));
      const view = await StoreView.open(store, { reloadMs: 0 });
      try {
        const reloading = view.reload();
        await store.builds.start(mac(1), 60_000);
        await reloading;
        assert.equal(view.state(mac(1)), 'build');
        assert.equal(view.reloads, 2);
      } finally {
        view.close();
      }
    });

    test('view: a lost LISTEN connection (database restart) is reopened and the view catches up', async () => {
      if (b.name !== 'postgres') return; // SQLite has no connection to lose
      const { store, again } = await b.open();
      const view = await StoreView.open(store, { reloadMs: 0 });
      try {
        const peer = await again();
        const killed = await peer.sql.all<{ ok: boolean }>(
          "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        );
        assert.ok(killed.length >= 1, 'a LISTEN connection was there to kill');
        await peer.hosts.insert(host(7));
        await waitFor('the view to catch up after the listener came back', () => !!view.host(mac(7)), 10_000);
        assert.ok(view.reloads >= 2, 'it reloaded whole: what was said while deaf is not lost');
      } finally {
        view.close();
      }
    });

    test('a NUL or other control character from the network is stored on both stores, the same way', async () => {
      const { store } = await b.open();
      await store.hosts.insert(host(1));
      const { token } = await store.builds.start(mac(1), 60_000);
      const r = await store.builds.close(token, 'failed', 'disk\0error\x01\x7f\u2028end');
      assert.equal(r.ok, true);
      assert.equal((await store.builds.latest(mac(1)))?.failureLog, 'disk\ufffderror\x01\x7f\u2028end');
      store.events.append({
        mac: mac(1),
        type: 'http\0',
        status: '404\0',
        clientIp: '10.0.0.1\0',
        detail: { path: '/\0' },
      });
      const [e] = await store.events.timeline(mac(1));
      assert.equal(e.type, 'http\ufffd');
      assert.equal(e.status, '404\ufffd');
      assert.equal(e.clientIp, '10.0.0.1\ufffd');
      assert.deepEqual(e.detail, { path: '/\0' }, 'JSON escapes it: detail keeps it exactly');
      assert.equal(await store.hosts.getByHostname('rhvh1.lab\0'), undefined);
    });

    test('a database from a newer rackboot is refused with what to do', async () => {
      const { store, again } = await b.open();
      await store.sql.run(
        b.name === 'postgres'
          ? 'UPDATE rackboot_schema SET version = ?'
          : `PRAGMA user_version = ${MIGRATIONS.length + 1}`,
        b.name === 'postgres' ? [MIGRATIONS.length + 1] : [],
      );
      await assert.rejects(again(), /newer than this rackboot .*upgrade rackboot/);
    });
  });
}
