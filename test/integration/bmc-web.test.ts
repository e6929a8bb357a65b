// The host's BMC page: power buttons by role, the admin's BMC form (password never shown), errors named,
// against the real ipmi_sim.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import type { Mac } from '../../src/net/mac.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import type { WebRouter } from '../../src/web/pages/index.ts';
import { ipmiMissing, startIpmiSim, type IpmiSim } from '../fixtures/bmc/ipmi-sim.ts';
import { makeEnv, type TestEnv } from '../support/core.ts';
import { appFor, loginForm, webRouterFor } from '../support/web-env.ts';

const missing = ipmiMissing();
const PW = 'correct horse battery';
const MAC = '52:54:00:00:07:01' as Mac;
const BMC_PW = 'Ipmi-Pw-07';

describe('host BMC page', { skip: missing ? `skipped: ${missing}` : false }, () => {
  let env: TestEnv;
  let sim: IpmiSim;
  let web: WebRouter;
  let app: Express;
  const login = (name: string) => loginForm(app, name, PW);

  before(async () => {
    env = await makeEnv();
    sim = await startIpmiSim(0, 'admin', BMC_PW);
    await env.core.hosts.insert({ mac: MAC, hostname: 'web-1', profile: 'rhvh-base', nameservers: [], params: {} });
    const users = env.core.store.users;
    await users.add('alice', 'admin', hashUserPasswordSync(PW));
    await users.add('tom', 'tech', hashUserPasswordSync(PW));
    web = webRouterFor(env, { bmc: env.core.bmc, power: env.core.power });
    app = appFor(env, 'x', { routers: [web] });
  });
  after(async () => {
    web?.close();
    await sim?.stop();
    await env?.cleanup();
  });

  test('an admin adds the BMC: bad values named and nothing saved, then saved; the password is never shown', async () => {
    const { agent, csrf } = await login('alice');
    let page = await agent.get(`/hosts/${MAC}/bmc`);
    assert.equal(page.status, 200);
    assert.match(page.text, /Add a BMC/);
    const form = { _csrf: csrf, driver: 'ipmi', address: sim.address, username: 'admin', verifyTls: 'on' };
    let r = await agent
      .post(`/hosts/${MAC}/bmc`)
      .type('form')
      .send({ ...form, address: 'https://10.0.0.1 ; reboot', password: BMC_PW });
    assert.equal(r.status, 422);
    assert.match(r.text, /bmc\.address: .*spaces/);
    assert.ok(!r.text.includes(BMC_PW), 'the password is not sent back in the form');
    r = await agent.post(`/hosts/${MAC}/bmc`).type('form').send(form);
    assert.equal(r.status, 422);
    assert.match(r.text, /bmc\.password: required/);
    assert.equal(await env.core.bmc.get(MAC), undefined);
    r = await agent
      .post(`/hosts/${MAC}/bmc`)
      .type('form')
      .send({ ...form, password: BMC_PW });
    assert.equal(r.status, 303);
    page = await agent.get(`/hosts/${MAC}/bmc`);
    assert.match(page.text, /<dd id="bmc-password">set<\/dd>/);
    assert.match(page.text, /Change password/);
    assert.ok(!page.text.includes(BMC_PW));
    assert.match(page.text, /Power off/, 'an admin may power off');
    // Saving again without a password keeps it.
    await agent.post(`/hosts/${MAC}/bmc`).type('form').send(form).expect(303);
    assert.equal((await env.core.bmc.bmcConfig(MAC))?.password, BMC_PW);
    assert.match((await agent.get(`/hosts/${MAC}`)).text, /href="\/hosts\/52:54:00:00:07:01\/bmc"/);
  });

  test('a tech: status, on and cycle buttons, no off and no BMC form; power runs and says what the BMC said', async () => {
    const { agent, csrf } = await login('tom');
    const page = await agent.get(`/hosts/${MAC}/bmc`);
    assert.equal(page.status, 200);
    assert.match(page.text, /Power status/);
    assert.match(page.text, /Power cycle/);
    assert.doesNotMatch(page.text, /Power off/);
    assert.doesNotMatch(page.text, /Save BMC/);
    let r = await agent.post(`/hosts/${MAC}/power`).type('form').send({ _csrf: csrf, action: 'off' });
    assert.equal(r.status, 403);
    r = await agent.post(`/hosts/${MAC}/bmc`).type('form').send({ _csrf: csrf, driver: 'ipmi', address: '10.0.0.9' });
    assert.equal(r.status, 403);
    assert.equal((await env.core.bmc.get(MAC))?.address, sim.address, 'nothing changed');
    r = await agent.post(`/hosts/${MAC}/power`).type('form').send({ _csrf: csrf, action: 'on' });
    assert.equal(r.status, 303);
    const after = await agent.get(`/hosts/${MAC}/bmc`);
    assert.match(after.text, /Power on: web-1 is on\./);
    assert.match(after.text, /bmc\.power/);
    assert.equal(sim.power(), '1');
    r = await agent.post(`/hosts/${MAC}/power`).type('form').send({ action: 'on' });
    assert.equal(r.status, 403, 'no CSRF token, no power');
  });
});
