// The Redfish driver against the real sushy-tools emulator over HTTPS (self-signed, made here), directly
// and through a real proxy that adds 5xx, ETags, a Settings object and sessions.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { BmcError, type BmcConfig } from '../../src/bmc/driver.ts';
import { bmcDriver } from '../../src/bmc/index.ts';
import { RedfishDriver } from '../../src/bmc/redfish.ts';
import { startProxy } from '../fixtures/bmc/proxy.ts';
import { freePort, startSushy, sushyMissing, type Sushy } from '../fixtures/bmc/sushy.ts';

const missing = sushyMissing();
const U1 = '00000000-0000-4000-8000-000000000001';
const U2 = '00000000-0000-4000-8000-000000000002';
const U9 = '00000000-0000-4000-8000-000000000009';
const FAST = { timeoutMs: 5000, retries: 2, backoffMs: 50, pollMs: 200, settleMs: 30_000 };

let rack: Sushy; // two systems: discovery must refuse to guess
let single: Sushy; // one system: discovery finds it
const cfg = (over: Partial<BmcConfig> = {}): BmcConfig => ({
  driver: 'redfish',
  address: rack.url,
  username: 'admin',
  password: 'password',
  system: U1,
  verifyTls: false,
  ...over,
});

/** The emulator's own view of a system (straight to sushy, not through the driver under test). */
interface SushyView {
  PowerState: string;
  Boot: Record<string, string>;
}
function sushySystem(s: Sushy, id: string): Promise<SushyView> {
  return new Promise((resolve, reject) => {
    const auth = Buffer.from('admin:password').toString('base64');
    const req = request(
      `${s.url}/redfish/v1/Systems/${id}`,
      { rejectUnauthorized: false, headers: { Authorization: `Basic ${auth}` } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(JSON.parse(text) as SushyView));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('Redfish driver against sushy-emulator', { skip: missing ? `skipped: ${missing}` : false }, () => {
  before(async () => {
    [rack, single] = await Promise.all([
      startSushy([
        {
          uuid: U1,
          name: 'r1-u01',
          power_state: 'Off',
          nics: [{ mac: '52:54:00:00:01:01' }, { mac: '52:54:00:00:02:01' }],
        },
        { uuid: U2, name: 'r1-u02', power_state: 'On', nics: [{ mac: '52:54:00:00:01:02' }] },
      ]),
      startSushy([{ uuid: U9, name: 'lone', power_state: 'On', nics: [{ mac: '52:54:00:00:09:09' }] }]),
    ]);
  });
  after(async () => {
    await Promise.all([rack?.stop(), single?.stop()]);
  });

  test('facts: power state and every NIC MAC the BMC reports', async () => {
    const d = bmcDriver(cfg(), FAST);
    const facts = await d.facts();
    assert.equal(facts.powerState, 'off');
    assert.deepEqual(facts.macs, ['52:54:00:00:01:01', '52:54:00:00:02:01']);
  });

  test('the system is found from /redfish/v1/Systems when there is one, refused with the ids when several', async () => {
    const lone = bmcDriver(cfg({ address: single.url, system: undefined }), FAST);
    assert.deepEqual((await lone.facts()).macs, ['52:54:00:00:09:09']);
    const { system: _s, ...noSystem } = cfg();
    const several = bmcDriver(noSystem, FAST);
    await assert.rejects(several.powerState(), (e: BmcError) => {
      assert.match(e.message, /lists 2 systems/);
      assert.match(e.message, new RegExp(U1));
      assert.match(e.message, /set bmc\.system/);
      assert.equal(e.retryable, false);
      return true;
    });
  });

  test('a system named by its name is followed through the 307 to its id', async () => {
    assert.equal(await bmcDriver(cfg({ system: 'r1-u02' }), FAST).powerState(), 'on');
  });

  test('boot network once: UEFI, then Legacy, as the host firmware needs', async () => {
    await bmcDriver(cfg(), FAST).bootNetworkOnce('uefi');
    let boot = (await sushySystem(rack, U1)).Boot;
    assert.equal(boot.BootSourceOverrideTarget, 'Pxe');
    assert.equal(boot.BootSourceOverrideMode, 'UEFI');
    await bmcDriver(cfg(), FAST).bootNetworkOnce('legacy');
    boot = (await sushySystem(rack, U1)).Boot;
    assert.equal(boot.BootSourceOverrideTarget, 'Pxe');
    assert.equal(boot.BootSourceOverrideMode, 'Legacy');
  });

  test('power on, cycle, and off (graceful first, forced when it does not finish in time)', async () => {
    const proxy = await startProxy(rack.url, rack.tls, {});
    try {
      const d = new RedfishDriver(cfg({ address: proxy.url }), { ...FAST, gracefulOffMs: 1 });
      assert.equal(await d.power('on'), 'on');
      assert.equal((await sushySystem(rack, U1)).PowerState, 'On');
      assert.equal(await d.power('cycle'), 'on');
      assert.equal(await d.power('off'), 'off');
      const resets = proxy.seen.filter((s) => s.path.endsWith('ComputerSystem.Reset')).map((s) => s.body);
      assert.deepEqual(resets, [
        '{"ResetType":"On"}',
        '{"ResetType":"ForceRestart"}',
        '{"ResetType":"GracefulShutdown"}',
        '{"ResetType":"ForceOff"}',
      ]);
      assert.equal(await d.power('off'), 'off', 'off when off is a no-op');
      assert.equal(proxy.seen.filter((s) => s.path.endsWith('ComputerSystem.Reset')).length, 4);
    } finally {
      await proxy.close();
    }
  });

  test('a pinned certificate sha256 is accepted although self-signed; verifyTls alone refuses it', async () => {
    const pinned = bmcDriver(cfg({ verifyTls: true, fingerprint: rack.tls.fingerprint }), FAST);
    assert.equal(await pinned.powerState(), 'off');
    const plain = bmcDriver(cfg({ verifyTls: true }), FAST);
    await assert.rejects(plain.powerState(), (e: BmcError) => {
      assert.ok(e instanceof BmcError);
      assert.match(e.message, /self-signed certificate/);
      assert.match(e.message, new RegExp(`redfish https://127\\.0\\.0\\.1:${rack.port}`));
      assert.equal(e.retryable, false);
      return true;
    });
  });

  test('a wrong pin is refused before any request (and so any credential) reaches the BMC', async () => {
    const proxy = await startProxy(rack.url, rack.tls, {});
    try {
      const wrong = 'AA:' + rack.tls.fingerprint.slice(3);
      const d = bmcDriver(cfg({ address: proxy.url, verifyTls: true, fingerprint: wrong }), FAST);
      await assert.rejects(d.powerState(), /is not the pinned/);
      assert.deepEqual(proxy.seen, []);
    } finally {
      await proxy.close();
    }
  });

  test('wrong password: 401 named with the BMC and what it answered, never the password', async () => {
    const d = bmcDriver(cfg({ password: 'S3cret-wrong' }), FAST);
    const t0 = Date.now();
    await assert.rejects(d.powerState(), (e: BmcError) => {
      assert.equal(e.status, 401);
      assert.equal(e.retryable, false);
      assert.match(e.message, /Incorrect username or password/);
      assert.match(e.message, /127\.0\.0\.1/);
      assert.doesNotMatch(e.message + JSON.stringify(e), /S3cret/);
      return true;
    });
    assert.ok(Date.now() - t0 < 5000, 'a 401 is not retried');
  });

  test('unreachable BMC (a closed port): a clear error within a bounded time', async () => {
    const port = await freePort();
    const d = bmcDriver(cfg({ address: `https://127.0.0.1:${port}` }), { timeoutMs: 1000, retries: 2, backoffMs: 50 });
    const t0 = Date.now();
    await assert.rejects(d.powerState(), (e: BmcError) => {
      assert.match(e.message, /ECONNREFUSED/);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.equal(e.retryable, true);
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  describe('a BMC that accepts connections and never answers', () => {
    let silent: Server;
    const held: Socket[] = [];
    before(async () => {
      silent = createServer((s) => held.push(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    });
    after(async () => {
      held.forEach((s) => s.destroy());
      await new Promise((r) => silent.close(r));
    });

    test('times out per request, retries, and never holds up another BMC', async () => {
      const { port } = silent.address() as { port: number };
      const slow = bmcDriver(cfg({ address: `https://127.0.0.1:${port}` }), {
        timeoutMs: 1500,
        retries: 1,
        backoffMs: 50,
      });
      const t0 = Date.now();
      let fastDoneAt = 0;
      const [slowResult] = await Promise.allSettled([
        slow.powerState(),
        bmcDriver(cfg(), FAST)
          .powerState()
          .then(() => (fastDoneAt = Date.now() - t0)),
      ]);
      const slowTook = Date.now() - t0;
      assert.equal(slowResult.status, 'rejected');
      assert.match(String((slowResult as PromiseRejectedResult).reason), /no answer within 1500 ms/);
      assert.ok(slowTook >= 3000 && slowTook < 6000, `slow BMC took ${slowTook} ms (2 attempts of 1.5 s)`);
      assert.ok(fastDoneAt > 0 && fastDoneAt < slowTook, `the other BMC answered at ${fastDoneAt} ms`);
    });
  });

  test('a BMC that answers 503 three times, then works: retried with backoff', async () => {
    const proxy = await startProxy(rack.url, rack.tls, { failFirst: 3 });
    try {
      const d = bmcDriver(cfg({ address: proxy.url }), { ...FAST, retries: 3 });
      assert.equal(await d.powerState(), 'off');
      assert.deepEqual(
        proxy.seen.slice(0, 4).map((s) => s.status),
        [503, 503, 503, 200],
      );
    } finally {
      await proxy.close();
    }
  });

  test('a BMC that keeps answering 503: the error says so, after the retries', async () => {
    const proxy = await startProxy(rack.url, rack.tls, { failFirst: 100 });
    try {
      const d = bmcDriver(cfg({ address: proxy.url }), { ...FAST, retries: 2 });
      await assert.rejects(d.powerState(), (e: BmcError) => {
        assert.equal(e.status, 503);
        assert.equal(e.retryable, true);
        assert.match(e.message, /HTTP 503: Service temporarily unavailable/);
        return true;
      });
      assert.equal(proxy.seen.length, 3);
    } finally {
      await proxy.close();
    }
  });

  test('a system with a @Redfish.Settings object: the PATCH goes there with its ETag, never to the system', async () => {
    const proxy = await startProxy(rack.url, rack.tls, { settings: true, etag: true });
    try {
      await bmcDriver(cfg({ address: proxy.url, system: U2 }), FAST).bootNetworkOnce('uefi');
      const patches = proxy.seen.filter((s) => s.method === 'PATCH');
      assert.deepEqual(
        patches.map((p) => [p.path, p.status, p.ifMatch]),
        [[`/redfish/v1/Systems/${U2}/Settings`, 202, 'W/"v1"']],
      );
      assert.deepEqual(JSON.parse(patches[0].body!), {
        Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI' },
      });
      assert.equal((await sushySystem(rack, U2)).Boot.BootSourceOverrideTarget, 'Pxe');
    } finally {
      await proxy.close();
    }
  });

  test('ETag: If-Match sent; a 412 (changed meanwhile) is read again and retried once', async () => {
    const proxy = await startProxy(rack.url, rack.tls, { etag: true, staleOnce: true });
    try {
      await bmcDriver(cfg({ address: proxy.url }), FAST).bootNetworkOnce('legacy');
      const patches = proxy.seen.filter((s) => s.method === 'PATCH');
      assert.deepEqual(
        patches.map((p) => [p.status, p.ifMatch]),
        [
          [412, 'W/"v1"'],
          [204, 'W/"v2"'],
        ],
      );
    } finally {
      await proxy.close();
    }
  });

  test('sessions: X-Auth-Token after one login, deleted on close', async () => {
    const proxy = await startProxy(rack.url, rack.tls, { sessions: true });
    try {
      const d = bmcDriver(cfg({ address: proxy.url }), FAST);
      await d.facts();
      await d.close?.();
      const authed = proxy.seen.filter((s) => s.path !== '/redfish/v1/' && !s.path.endsWith('/Sessions'));
      assert.ok(authed.length >= 3);
      assert.ok(
        authed.every((s) => s.auth === 'token'),
        JSON.stringify(authed),
      );
      assert.equal(proxy.sessionsDeleted.length, 1);
      const bad = bmcDriver(cfg({ address: proxy.url, password: 'wrong' }), FAST);
      await assert.rejects(bad.powerState(), /log in: HTTP 401: Invalid username or password/);
    } finally {
      await proxy.close();
    }
  });
});
