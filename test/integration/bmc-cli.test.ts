// rackboot hosts import with bmc.* columns, then rackboot power / bmc facts, against real BMCs
// (sushy-emulator for Redfish, ipmi_sim for IPMI): the password sealed at rest, the timeline and audit written.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../src/cli.ts';
import type { Mac } from '../../src/net/mac.ts';
import { ipmiMissing, startIpmiSim, type IpmiSim } from '../fixtures/bmc/ipmi-sim.ts';
import { startSushy, sushyMissing, type Sushy } from '../fixtures/bmc/sushy.ts';
import { makeEnv, type TestEnv } from '../support/core.ts';

const missing = sushyMissing() ?? ipmiMissing();
const RF = '52:54:00:00:01:01' as Mac;
const IP = '52:54:00:00:01:02' as Mac;
const LOST = '52:54:00:00:01:03' as Mac;

describe('rackboot power and bmc facts', { skip: missing ? `skipped: ${missing}` : false }, () => {
  let env: TestEnv;
  let sushy: Sushy;
  let sim: IpmiSim;
  let flags: string[];
  const cli = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...args, ...flags], {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      readStdin: async () => '',
      env: {},
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };

  before(async () => {
    env = await makeEnv();
    [sushy, sim] = await Promise.all([
      startSushy([
        {
          uuid: '00000000-0000-4000-8000-000000000001',
          name: 'r1-u01',
          power_state: 'Off',
          nics: [{ mac: RF }],
        },
      ]),
      startIpmiSim(0),
    ]);
    flags = ['--data-dir', env.config.dataDir, '--profiles-dir', env.config.profilesDir];
    const csv = join(env.dir, 'rack.csv');
    writeFileSync(
      csv,
      'mac,hostname,profile,rack,bmc.driver,bmc.address,bmc.username,bmc.password,bmc.verifyTls\n' +
        `${RF},r1-u01,rhvh-base,R1,redfish,${sushy.url},admin,password,false\n` +
        `${IP},r1-u02,rhvh-base,R1,ipmi,${sim.address},admin,password,\n` +
        `${LOST},r1-u03,rhvh-base,R1,ipmi,${sim.address},admin,Wr0ng-Passw0rd,\n`,
    );
    const r = await cli('hosts', 'import', csv);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /imported 3 host\(s\), 3 with a BMC/);
  });
  after(async () => {
    await Promise.all([sushy?.stop(), sim?.stop()]);
    await env?.cleanup();
  });

  test('the passwords are sealed: not in the database file, not in any view', async () => {
    await env.core.store.sql.all('PRAGMA wal_checkpoint(TRUNCATE)');
    const db = readFileSync(join(env.config.dataDir, 'rackboot.db'));
    assert.ok(!db.includes('Wr0ng-Passw0rd'));
    const view = await env.core.bmc.get(LOST);
    assert.equal(view?.passwordSet, true);
    assert.ok(!JSON.stringify(view).includes('Wr0ng'));
  });

  test('power status and on over IPMI; the action is on the timeline and in the audit', async () => {
    assert.deepEqual(await cli('power', IP, 'status'), { code: 0, out: 'off', err: '' });
    const on = await cli('power', IP, 'on');
    assert.equal(on.code, 0, on.err);
    assert.equal(on.out, 'on');
    assert.equal(sim.power(), '1');
    const ev = (await env.core.events.timeline(IP)).find((e) => e.type === 'bmc.power');
    assert.equal(ev?.status, 'on');
    assert.deepEqual(ev?.detail, { action: 'on', powerState: 'on', by: 'cli' });
    assert.ok((await env.core.audit.recent(10)).some((a) => a.action === 'host.power' && a.target === IP));
  });

  test('bmc facts over Redfish: the host MAC is among the NICs the BMC reports', async () => {
    const r = await cli('bmc', 'facts', RF);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /power: off/);
    assert.match(r.out, new RegExp(`macs: ${RF}`));
  });

  test('a wrong password: exit 1, the BMC named, an error on the host timeline, no password anywhere', async () => {
    const r = await cli('power', LOST, 'cycle');
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`BMC ipmi 127\\.0\\.0\\.1:${sim.port}: .*wrong username or password`));
    assert.doesNotMatch(r.err + r.out, /Wr0ng/);
    const ev = (await env.core.events.timeline(LOST)).find((e) => e.type === 'bmc.error');
    assert.match(String(ev?.detail?.answer), /wrong username or password/);
    assert.equal(ev?.detail?.action, 'power cycle');
    assert.doesNotMatch(JSON.stringify(await env.core.events.timeline(LOST)), /Wr0ng/);
  });

  test('usage errors: exit 2 naming what is wrong', async () => {
    assert.match((await cli('power', 'nope', 'on')).err, /"nope" is not a MAC address/);
    assert.equal((await cli('power', IP, 'reboot')).code, 2);
    assert.match((await cli('power', IP, 'reboot')).err, /unknown action "reboot"/);
    const none = await cli('power', '52:54:00:00:09:09', 'status');
    assert.equal(none.code, 1);
    assert.match(none.err, /no host with MAC/);
  });
});
