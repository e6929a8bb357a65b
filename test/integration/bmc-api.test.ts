// The BMC API (PUT/GET/DELETE /api/hosts/:mac/bmc, POST .../power, POST .../bmc/facts) on the real app,
// with a real admin token and a tech's token, against the real sushy-emulator.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createBmcApi } from '../../src/http/bmc-api.ts';
import type { Mac } from '../../src/net/mac.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { freePort, startSushy, sushyMissing, type Sushy } from '../fixtures/bmc/sushy.ts';
import { makeEnv, type TestEnv } from '../support/core.ts';
import { apiTokenOf, appFor } from '../support/web-env.ts';
import type { Express } from 'express';
import type { ApiDocs } from '../../src/http/openapi.ts';

const missing = sushyMissing();
const ADMIN = 'bmc-admin-token';
const MAC = '52:54:00:00:05:01' as Mac;
const BARE = '52:54:00:00:05:02' as Mac;
const SECRET = 'Sushy-Pa55word';

describe('BMC API', { skip: missing ? `skipped: ${missing}` : false }, () => {
  let env: TestEnv;
  let sushy: Sushy;
  let app: Express;
  let tech: string;
  const admin = { Authorization: `Bearer ${ADMIN}` };
  const techAuth = () => ({ Authorization: `Bearer ${tech}` });
  const good = () => ({
    driver: 'redfish',
    address: sushy.url,
    username: 'admin',
    password: 'password',
    verifyTls: false,
  });
  const auditText = async () => JSON.stringify(await env.core.store.sql.all('SELECT * FROM audit'));

  before(async () => {
    env = await makeEnv();
    sushy = await startSushy(
      [{ uuid: '00000000-0000-4000-8000-000000000051', name: 'api-1', power_state: 'Off', nics: [{ mac: MAC }] }],
      'admin',
      'password',
    );
    for (const [mac, hostname] of [
      [MAC, 'api-1'],
      [BARE, 'api-2'],
    ] as const)
      await env.core.hosts.insert({ mac, hostname, profile: 'rhvh-base', nameservers: [], params: {} });
    await env.core.store.users.add('tom', 'tech', hashUserPasswordSync('a long tech password'));
    const { tokens, token } = await apiTokenOf(env, 'tom');
    tech = token;
    app = appFor(env, ADMIN, {
      userToken: (t) => tokens.authenticate(t),
      bmc: env.core.bmc,
      apiRouters: [
        (docs: ApiDocs) =>
          createBmcApi({
            hosts: env.core.hosts,
            bmc: env.core.bmc,
            power: env.core.power,
            audit: env.core.audit,
            docs,
          }),
      ],
    });
  });
  after(async () => {
    await sushy?.stop();
    await env?.cleanup();
  });

  test('a tech may not set a BMC; a first BMC needs its password; bad values are named; nothing changes', async () => {
    let r = await request(app).put(`/api/hosts/${MAC}/bmc`).set(techAuth()).send(good());
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /bmc: only an admin/);
    const { password: _p, ...noPassword } = good();
    r = await request(app).put(`/api/hosts/${MAC}/bmc`).set(admin).send(noPassword);
    assert.equal(r.status, 422);
    assert.match(r.body.error.message, /bmc\.password: required/);
    for (const [body, want] of [
      [{ ...good(), driver: 'idrac' }, /bmc\.driver: must be "redfish" or "ipmi"/],
      [{ ...good(), address: 'http://127.0.0.1:1' }, /bmc\.address: .*https/],
      [{ ...good(), address: 'https://127.0.0.1:70000' }, /bmc\.address: port "70000"/],
      [{ ...good(), address: 'https://a b' }, /bmc\.address: .*spaces/],
      [{ ...good(), username: 'x'.repeat(10_000) }, /bmc\.username: must be at most 64/],
      [{ ...good(), password: 'x\r\nInjected: 1' }, /bmc\.password: must not contain control/],
      [{ ...good(), admin: true }, /bmc: unknown field\(s\) admin/],
    ] as const) {
      r = await request(app).put(`/api/hosts/${MAC}/bmc`).set(admin).send(body);
      assert.equal(r.status, 422, JSON.stringify(body).slice(0, 80));
      assert.match(r.body.error.message, want);
    }
    r = await request(app).put(`/api/hosts/${MAC}/bmc`).set(admin).set('Content-Type', 'application/json').send('[1]');
    assert.equal(r.status, 400);
    assert.equal(await env.core.bmc.get(MAC), undefined, 'nothing was stored');
  });

  test('an admin sets it; the password is never answered nor audited, and a PUT without it keeps it', async () => {
    let r = await request(app)
      .put(`/api/hosts/${MAC}/bmc`)
      .set(admin)
      .send({ ...good(), password: SECRET });
    assert.equal(r.status, 200);
    assert.equal(r.body.passwordSet, true);
    assert.equal(r.body.password, undefined);
    r = await request(app).get(`/api/hosts/${MAC}/bmc`).set(techAuth());
    assert.equal(r.status, 200);
    assert.equal(r.body.address, sushy.url);
    assert.ok(!JSON.stringify(r.body).includes(SECRET));
    // The real password, sent once; then a change of username-less fields without it keeps it.
    await request(app).put(`/api/hosts/${MAC}/bmc`).set(admin).send(good()).expect(200);
    const { password: _p, ...noPassword } = good();
    r = await request(app).put(`/api/hosts/${MAC}/bmc`).set(admin).send(noPassword);
    assert.equal(r.status, 200);
    assert.equal((await env.core.bmc.bmcConfig(MAC))?.password, 'password');
    const audit = await auditText();
    assert.ok(!audit.includes(SECRET) && !audit.includes('"password"'), audit.slice(0, 300));
    assert.match(audit, /passwordChanged/);
  });

  test('power: status and facts for a tech, off refused to a tech, on for an admin; events and audit', async () => {
    let r = await request(app).post(`/api/hosts/${MAC}/power`).set(techAuth()).send({ action: 'status' });
    assert.deepEqual([r.status, r.body], [200, { powerState: 'off' }]);
    r = await request(app).post(`/api/hosts/${MAC}/power`).set(techAuth()).send({ action: 'off' });
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /tech role may not power a host off/);
    r = await request(app).post(`/api/hosts/${MAC}/bmc/facts`).set(techAuth());
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.macs, [MAC]);
    assert.equal(r.body.macReported, true);
    r = await request(app).post(`/api/hosts/${MAC}/power`).set(admin).send({ action: 'on' });
    assert.deepEqual([r.status, r.body], [200, { powerState: 'on' }]);
    const ev = (await env.core.events.timeline(MAC)).find((e) => e.type === 'bmc.power');
    assert.deepEqual(ev?.detail, { action: 'on', powerState: 'on', by: 'api' });
    assert.match(await auditText(), /host\.power/);
  });

  test('worst power requests: named, 4xx, nothing sent to the BMC', async () => {
    for (const body of [
      {},
      { action: 'reboot' },
      { action: ['on'] },
      { action: 'on', force: true },
      { action: 'x'.repeat(100_000) },
    ]) {
      const r = await request(app).post(`/api/hosts/${MAC}/power`).set(admin).send(body);
      assert.equal(r.status, 422, JSON.stringify(body).slice(0, 60));
      assert.match(r.body.error.message, /action|unknown field/);
      assert.ok(r.body.error.message.length < 300);
    }
    let r = await request(app).post(`/api/hosts/nope/power`).set(admin).send({ action: 'on' });
    assert.equal(r.status, 400);
    r = await request(app).post(`/api/hosts/52:54:00:99:99:99/power`).set(admin).send({ action: 'on' });
    assert.equal(r.status, 404);
    r = await request(app).post(`/api/hosts/${BARE}/power`).set(admin).send({ action: 'status' });
    assert.equal(r.status, 409);
    assert.match(r.body.error.message, /has no BMC/);
    r = await request(app).post(`/api/hosts/${MAC}/power`).send({ action: 'status' });
    assert.equal(r.status, 401, 'no token, no power');
  });

  test('a wrong password and an unreachable BMC: 502 naming the BMC and its answer, an error on the timeline', async () => {
    await request(app)
      .put(`/api/hosts/${BARE}/bmc`)
      .set(admin)
      .send({ ...good(), password: 'Wrong-Pa55' })
      .expect(200);
    let r = await request(app).post(`/api/hosts/${BARE}/power`).set(admin).send({ action: 'status' });
    assert.equal(r.status, 502);
    assert.equal(r.body.error.code, 'bad_gateway');
    assert.equal(r.body.error.bmc, `redfish ${sushy.url}`);
    assert.match(r.body.error.answer, /HTTP 401: Incorrect username or password/);
    assert.equal(r.body.error.retryable, false);
    assert.ok(!JSON.stringify(r.body).includes('Wrong-Pa55'));
    const ev = (await env.core.events.timeline(BARE)).find((e) => e.type === 'bmc.error');
    assert.match(String(ev?.detail?.answer), /401/);

    const port = await freePort();
    await request(app)
      .put(`/api/hosts/${BARE}/bmc`)
      .set(admin)
      .send({ ...good(), address: `https://127.0.0.1:${port}` })
      .expect(200);
    const t0 = Date.now();
    r = await request(app).post(`/api/hosts/${BARE}/power`).set(admin).send({ action: 'status' });
    assert.equal(r.status, 502);
    assert.equal(r.body.error.code, 'bad_gateway');
    assert.match(r.body.error.answer, /ECONNREFUSED/);
    assert.equal(r.body.error.retryable, true);
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
    r = await request(app).delete(`/api/hosts/${BARE}/bmc`).set(techAuth());
    assert.equal(r.status, 403);
    await request(app).delete(`/api/hosts/${BARE}/bmc`).set(admin).expect(204);
    assert.equal(await env.core.bmc.get(BARE), undefined);
  });

  test('the bmc field of POST/PUT /api/hosts: admin only, checked before the host is written, shown without password', async () => {
    const host = { mac: '52:54:00:00:05:03', hostname: 'api-3', profile: 'rhvh-base' };
    let r = await request(app)
      .post('/api/hosts')
      .set(techAuth())
      .send({ ...host, bmc: good() });
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /bmc: only an admin/);
    r = await request(app)
      .post('/api/hosts')
      .set(admin)
      .send({ ...host, bmc: { ...good(), driver: 'ilo' } });
    assert.equal(r.status, 422);
    assert.match(r.body.error.message, /bmc\.driver/);
    assert.equal(await env.core.hosts.get(host.mac as Mac), undefined, 'no host written when its BMC is refused');
    r = await request(app)
      .post('/api/hosts')
      .set(admin)
      .send({ ...host, bmc: { ...good(), password: SECRET } });
    assert.equal(r.status, 201);
    assert.equal(r.body.bmc.passwordSet, true);
    assert.ok(!JSON.stringify(r.body).includes(SECRET));
    r = await request(app).get(`/api/hosts/${host.mac}`).set(techAuth());
    assert.equal(r.body.bmc.driver, 'redfish');
    r = await request(app).get('/api/hosts').set(admin);
    assert.ok(!JSON.stringify(r.body).includes(SECRET));
    assert.equal(r.body.items.find((h: { mac: string }) => h.mac === host.mac).bmc.username, 'admin');
    assert.equal(r.body.items.find((h: { mac: string }) => h.mac === BARE).bmc, null);
    r = await request(app).put(`/api/hosts/${host.mac}`).set(admin).send({ rack: 'R9' });
    assert.equal(r.body.bmc.passwordSet, true, 'a PUT without bmc keeps it');
    r = await request(app).put(`/api/hosts/${host.mac}`).set(admin).send({ bmc: null });
    assert.equal(r.status, 200);
    assert.equal(r.body.bmc, null);
    assert.ok(!(await auditText()).includes(SECRET));
  });

  test('rack import over the API: bmc columns for an admin, refused to a tech', async () => {
    const csv =
      'mac,hostname,profile,bmc.driver,bmc.address,bmc.username,bmc.password,bmc.verifyTls\n' +
      `52:54:00:00:05:04,api-4,rhvh-base,redfish,${sushy.url},admin,password,false\n`;
    let r = await request(app).post('/api/hosts/import').set(techAuth()).set('Content-Type', 'text/csv').send(csv);
    assert.equal(r.status, 403);
    assert.match(r.body.error.problems[0], /only an admin/);
    r = await request(app).post('/api/hosts/import').set(admin).set('Content-Type', 'text/csv').send(csv);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.ok(!JSON.stringify(r.body).includes('password,'));
    r = await request(app).post('/api/hosts/52:54:00:00:05:04/power').set(techAuth()).send({ action: 'status' });
    assert.equal(r.status, 200, 'the imported password opens the BMC');
    assert.equal(r.body.powerState, (await env.core.power.run(MAC, 'status', 'test')).powerState);
  });
});
