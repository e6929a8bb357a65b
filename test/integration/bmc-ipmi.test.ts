// The IPMI driver (ipmitool -I lanplus) against OpenIPMI's real ipmi_sim on 127.0.0.1, a UDP port of its own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BmcError, type BmcConfig } from '../../src/bmc/driver.ts';
import { bmcDriver } from '../../src/bmc/index.ts';
import { IpmiDriver } from '../../src/bmc/ipmi.ts';
import { freeUdpPort, ipmiMissing, startIpmiSim, type IpmiSim } from '../fixtures/bmc/ipmi-sim.ts';

const missing = ipmiMissing();
const FAST = { timeoutMs: 10_000, retries: 1, backoffMs: 50, pollMs: 100, settleMs: 10_000 };

describe('IPMI driver against ipmi_sim', { skip: missing ? `skipped: ${missing}` : false }, () => {
  let sim: IpmiSim;
  const cfg = (over: Partial<BmcConfig> = {}): BmcConfig => ({
    driver: 'ipmi',
    address: sim.address,
    username: 'admin',
    password: 'password',
    verifyTls: true,
    ...over,
  });
  before(async () => {
    sim = await startIpmiSim(0);
  });
  after(async () => {
    await sim?.stop();
  });

  test('status, network boot once (UEFI), on, cycle, graceful off', async () => {
    const d = bmcDriver(cfg(), FAST);
    assert.equal(await d.powerState(), 'off');
    await d.bootNetworkOnce('uefi');
    assert.ok(sim.calls().includes('set boot pxe'), sim.calls().join('; '));
    assert.equal(await d.power('on'), 'on');
    assert.equal(sim.power(), '1');
    assert.equal(await d.power('on'), 'on', 'on when on is a no-op');
    const before = sim.calls().length;
    assert.equal(await d.power('cycle'), 'on');
    const cycle = sim.calls().slice(before);
    assert.ok(cycle.indexOf('set power 0') < cycle.lastIndexOf('set power 1'), cycle.join('; '));
    assert.equal(await d.power('off'), 'off');
    assert.ok(sim.calls().includes('set shutdown 1'), 'soft off first');
    assert.ok(!sim.calls().slice(-5).includes('set power 0'), 'no forced off when the soft one worked');
  });

  test('off is forced when the host ignores the soft power button in time', async () => {
    const d = new IpmiDriver(cfg(), { ...FAST, gracefulOffMs: 500 });
    assert.equal(await d.power('on'), 'on');
    sim.ignoreSoftOff();
    const before = sim.calls().length;
    assert.equal(await d.power('off'), 'off');
    const calls = sim.calls().slice(before);
    assert.ok(calls.indexOf('set shutdown 1') < calls.indexOf('set power 0'), calls.join('; '));
  });

  test('facts: the power state; IPMI reports no host NIC MACs', async () => {
    const facts = await bmcDriver(cfg(), FAST).facts();
    assert.equal(facts.powerState, 'off');
    assert.deepEqual(facts.macs, []);
  });

  test('wrong password: named, not retried, the password nowhere in the error', async () => {
    const t0 = Date.now();
    await assert.rejects(
      bmcDriver(cfg({ password: 'S3cret-wrong' }), { ...FAST, retries: 3 }).powerState(),
      (e: BmcError) => {
        assert.ok(e instanceof BmcError);
        assert.match(e.message, /wrong username or password/);
        assert.match(e.message, new RegExp(`ipmi 127\\.0\\.0\\.1:${sim.port}`));
        assert.equal(e.retryable, false);
        assert.doesNotMatch(e.message + JSON.stringify(e), /S3cret/);
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  test('unreachable BMC (nothing on that UDP port): a clear error within a bounded time, others go on', async () => {
    const port = await freeUdpPort();
    const dead = bmcDriver(cfg({ address: `127.0.0.1:${port}` }), { timeoutMs: 8000, retries: 1, backoffMs: 50 });
    const t0 = Date.now();
    let liveAt = 0;
    const [r] = await Promise.allSettled([
      dead.powerState(),
      bmcDriver(cfg(), FAST)
        .powerState()
        .then(() => (liveAt = Date.now() - t0)),
    ]);
    const took = Date.now() - t0;
    assert.equal(r.status, 'rejected');
    const e = (r as PromiseRejectedResult).reason as BmcError;
    assert.match(e.message, /no answer on UDP/);
    assert.equal(e.retryable, true);
    assert.ok(took < 15_000, `took ${took} ms`);
    assert.ok(liveAt > 0 && liveAt < took, `the live BMC answered at ${liveAt} ms of ${took}`);
  });
});
