// Build a rack from the UI: one confirmation page with the count and what a rebuild wipes, worst form values
// refused with nothing started, CSRF required, the rollout page with steps and a cancel that returns a rebuilt host
// to built. Real web router, real SQLite, HTTP through supertest.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import type { createApp } from '../../src/http/app.ts';
import type { WebRouter } from '../../src/web/pages/index.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { makeEnv, type TestEnv } from '../support/core.ts';
import { appFor, webRouterFor } from '../support/web-env.ts';
import type { Mac } from '../../src/net/mac.ts';

const PW = 'correct horse battery';
const HASH = hashUserPasswordSync(PW);
let env: TestEnv;
let web: WebRouter;
let app: ReturnType<typeof createApp>;

beforeEach(async () => {
  env = await makeEnv();
  await env.core.store.users.add('tom', 'tech', HASH);
  web = webRouterFor(env, { rollouts: env.core.rolloutService });
  app = appFor(env, 't', { routers: [web] });
  for (let i = 1; i <= 3; i++)
    await env.core.hosts.insert({
      mac: `52:54:00:72:00:0${i}` as Mac,
      hostname: `wr0${i}`,
      profile: 'rhvh-base',
      rack: 'R7',
      nameservers: [],
      params: {},
    });
});
afterEach(async () => {
  web.close();
  await env.cleanup();
});

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
async function login() {
  const agent = request.agent(app);
  const page = await agent.get('/login');
  await agent
    .post('/login')
    .type('form')
    .send({ _csrf: csrfOf(page.text), name: 'tom', password: PW, next: '/' });
  return agent;
}

test('build rack: one confirmation with the count; a rebuild needs its box ticked; the rollout page; cancel', async () => {
  const p = env.core.provisioner;
  const b = await p.startBuild('52:54:00:72:00:01' as Mac, 'test');
  assert.ok(b.ok && (await env.core.builds.close(b.value.token, 'built')).ok);
  const agent = await login();
  const confirm = await agent.get('/racks/R7/build');
  assert.equal(confirm.status, 200);
  assert.match(confirm.text, /Build rack R7: 3 hosts/);
  assert.match(confirm.text, /1 of them are built: a rebuild wipes them/);
  assert.match(confirm.text, /wr01 .*every disk the installer sees/);
  const csrf = csrfOf(confirm.text);
  // Without the box: refused, nothing started.
  const refused = await agent.post('/racks/R7/build').type('form').send({ _csrf: csrf, power: 'on', waveSize: '8' });
  assert.equal(refused.status, 409);
  assert.match(refused.text, /Nothing was started: .*rebuilding wipes their disks/);
  assert.equal((await env.core.rollouts.list(10)).length, 0);
  // Worst values: refused with the field named, nothing started.
  for (const [field, value] of [
    ['waveSize', '0'],
    ['waveSize', '1e9'],
    ['waveSize', '<script>'],
    ['waveIntervalSeconds', '-5'],
    ['waveIntervalSeconds', '99999'],
  ]) {
    const r = await agent
      .post('/racks/R7/build')
      .type('form')
      .send({ _csrf: csrf, confirm: 'on', [field]: value });
    assert.equal(r.status, 400, `${field}=${value}`);
    assert.match(r.text, new RegExp(`Nothing was started: ${field}: must be a whole number`));
    assert.ok(!r.text.includes('<script>'), 'escaped');
  }
  const noCsrf = await agent.post('/racks/R7/build').type('form').send({ confirm: 'on' });
  assert.equal(noCsrf.status, 403);
  assert.equal((await env.core.rollouts.list(10)).length, 0, 'nothing recorded');
  assert.equal((await agent.get('/racks/R%0A7/build')).status, 404);
  assert.equal((await agent.get('/racks/NOPE/build')).status, 404);
  // Confirmed: a rollout, and its page (no runner here: the steps stay queued).
  const ok = await agent
    .post('/racks/R7/build')
    .type('form')
    .send({ _csrf: csrf, power: 'on', confirm: 'on', waveSize: '2', waveIntervalSeconds: '5' });
  assert.equal(ok.status, 303, ok.text);
  const [rollout] = await env.core.rollouts.list(1);
  assert.equal(ok.headers.location, `/rollouts/${rollout!.id}`);
  assert.equal(rollout!.waveSize, 2);
  const page = await agent.get(ok.headers.location as string);
  assert.match(page.text, /Rollout \d+: rack R7 \(running\)/);
  assert.equal(page.text.match(/<td>queued<\/td>/g)?.length, 3);
  // The rollout's first wave started (as the runner would): then cancel returns the rebuilt host to built.
  const rebuilt = await p.startBuild('52:54:00:72:00:01' as Mac, `rollout ${rollout!.id}`);
  assert.ok(rebuilt.ok);
  await env.core.rollouts.setStep(rollout!.id, '52:54:00:72:00:01' as Mac, 'powered', 'test', rebuilt.value.buildId);
  const cancel = await agent
    .post(`/rollouts/${rollout!.id}/cancel`)
    .type('form')
    .send({ _csrf: csrfOf(page.text) });
  assert.equal(cancel.status, 303);
  const after = await agent.get(`/rollouts/${rollout!.id}`);
  assert.match(after.text, /\(cancelled\)/);
  assert.match(after.text, /cancelled: hosts not started stay out/);
  assert.equal(p.state('52:54:00:72:00:01' as Mac), 'built', 'a cancelled rebuild leaves the host built');
  assert.equal((await agent.get('/rollouts/abc')).status, 404);
});
