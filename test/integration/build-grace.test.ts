// Built after expiry (issue #13): a build whose kickstart was fetched takes built/failed/progress for a grace
// period after its token expired; the kickstart itself stays expired. Real SQLite, the real app over HTTP.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import { appFor } from '../support/web-env.ts';
import type { Express } from 'express';
import { parseMac } from '../../src/net/mac.ts';

const TOKEN = 'test-admin-token';
const auth = { Authorization: `Bearer ${TOKEN}` };
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

async function setup(flags: Record<string, string> = {}) {
  env = await makeEnv(flags);
  const e = env;
  const app = appFor(e, TOKEN);
  return { app, e };
}
const path = (url: string) => new URL(url).pathname;

async function startBuild(app: Express) {
  assert.equal((await request(app).post('/api/hosts').set(auth).send(SAMPLE_HOST)).status, 201);
  const b = await request(app).post(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(auth);
  assert.equal(b.status, 201, JSON.stringify(b.body));
  return b.body as { token: string; kickstartUrl: string; builtUrl: string; failedUrl: string; buildId: number };
}

async function expire(e: TestEnv, agoMs: number) {
  await e.core.store.sql.run('UPDATE builds SET expires_at = ? WHERE id = (SELECT MAX(id) FROM builds)', [
    Date.now() - agoMs,
  ]);
  // Written behind the repos' back: tell the view, as another process's write reaches it.
  await e.core.store.changes.deliver({ kind: 'build', mac: SAMPLE_HOST.mac });
}

test('kickstart fetched, token expired an hour ago: progress and built are accepted, the kickstart stays 410', async () => {
  const { app, e } = await setup();
  const b = await startBuild(app);
  assert.equal(
    (await request(app).get(path(b.kickstartUrl)).set('X-RHN-Provisioning-MAC-0', `eth0 ${SAMPLE_HOST.mac}`)).status,
    200,
  );
  await expire(e, 3600_000);
  assert.equal(
    (await request(app).get(path(b.kickstartUrl)).set('X-RHN-Provisioning-MAC-0', `eth0 ${SAMPLE_HOST.mac}`)).status,
    410,
    'the kickstart itself stays expired',
  );
  const progress = await request(app)
    .post(`/events/${b.token}`)
    .set('Content-Type', 'application/json')
    .send('{"step":"post-started"}');
  assert.equal(progress.status, 200, progress.text);
  const built = await request(app).get(path(b.builtUrl));
  assert.equal(built.status, 200, built.text);
  const view = (await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body;
  assert.equal(view.state, 'built');
  assert.ok(view.events.some((ev: { type: string }) => ev.type === 'build.built'));
});

test('failed within the grace period is recorded too', async () => {
  const { app, e } = await setup();
  const b = await startBuild(app);
  assert.equal(
    (await request(app).get(path(b.kickstartUrl)).set('X-RHN-Provisioning-MAC-0', `eth0 ${SAMPLE_HOST.mac}`)).status,
    200,
  );
  await expire(e, 23 * 3600_000);
  assert.equal(
    (await request(app).post(path(b.failedUrl)).set('Content-Type', 'text/plain').send('nodectl init failed')).status,
    200,
  );
  assert.equal((await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body.state, 'failed');
});

test('kickstart never fetched: callbacks after expiry get 410 as before, nothing changes', async () => {
  const { app, e } = await setup();
  const b = await startBuild(app);
  // The callbacks come from the host's own address (as DHCP would have tied it): refused for expiry, not for being a stranger.
  e.core.provisioner.learnClient('127.0.0.1', parseMac(SAMPLE_HOST.mac)!);
  await expire(e, 1000);
  const built = await request(app).get(path(b.builtUrl));
  assert.equal(built.status, 410);
  assert.match(built.text, /never fetched/);
  assert.equal(
    (await request(app).post(`/events/${b.token}`).set('Content-Type', 'application/json').send('{"step":"x"}')).status,
    410,
  );
  assert.equal((await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body.state, 'expired');
});

test('after the grace period the callback is refused and names --token-grace', async () => {
  const { app, e } = await setup({ 'token-grace': '2h' });
  assert.equal(e.config.tokenGraceMs, 2 * 3600_000);
  const b = await startBuild(app);
  assert.equal(
    (await request(app).get(path(b.kickstartUrl)).set('X-RHN-Provisioning-MAC-0', `eth0 ${SAMPLE_HOST.mac}`)).status,
    200,
  );
  await expire(e, 2 * 3600_000 + 1000);
  const built = await request(app).get(path(b.builtUrl));
  assert.equal(built.status, 410);
  assert.match(built.text, /--token-grace/);
  assert.equal((await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body.state, 'expired');
});

test('--token-grace: default 24h, 0 turns it off, bad values name the setting', () => {
  assert.equal(loadConfig({}, {}).tokenGraceMs, 24 * 3600_000);
  assert.equal(loadConfig({ 'token-grace': '0' }, {}).tokenGraceMs, 0);
  assert.equal(loadConfig({}, { RACKBOOT_TOKEN_GRACE: '90m' }).tokenGraceMs, 90 * 60_000);
  for (const bad of ['-1', '1y', '24 h', '\r24h', '24h\u2028', '9'.repeat(400)]) {
    assert.throws(
      () => loadConfig({ 'token-grace': bad }, {}),
      (err: Error) => err instanceof ConfigError && /--token-grace/.test(err.message),
      bad,
    );
  }
});
