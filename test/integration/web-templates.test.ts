// The templates page, the effective-profile page and the webhook delivery log, over supertest with real sessions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import type { WebRouter } from '../../src/web/pages/index.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { makeEnv, type TestEnv } from '../support/core.ts';
import { appFor, loginForm, webRouterFor } from '../support/web-env.ts';
import type { Express } from 'express';
import type { Mac } from '../../src/net/mac.ts';

const PW = 'correct horse battery';
const XSS = '<script>alert(1)</script>';
let env: TestEnv;
let web: WebRouter;
let app: Express;

before(async () => {
  env = await makeEnv();
  const users = env.core.store.users;
  const hash = hashUserPasswordSync(PW);
  await users.add('alice', 'admin', hash);
  await users.add('tom', 'tech', hash);
  web = webRouterFor(env, {
    templates: () => env.core.templates.library,
    webhookDeliveries: env.core.webhookDeliveries,
  });
  app = appFor(env, 't', {
    routers: [web],
  });
  await env.core.hosts.insert({
    mac: '52:54:00:aa:bb:21' as Mac,
    hostname: 'sat21',
    profile: 'rhvh-stig-satellite',
    ip: '10.99.0.21',
    netmask: '255.255.255.0',
    nameservers: [],
    params: { 'satellite.activationKey': 'host-only-key-4242', description: XSS },
  });
  await env.core.webhookDeliveries.add({
    uid: 'd-1',
    url: 'https://hooks.example.com/secret-path?token=abc',
    event: 'build.failed',
    mac: '52:54:00:aa:bb:21' as Mac,
    buildId: 7,
    payload: { event: 'build.failed' },
    status: 'pending',
    nextAt: Date.now() + 60_000,
    createdAt: Date.now(),
    lastError: `ECONNREFUSED ${XSS}`,
  });
});
after(async () => {
  web.close();
  await env.cleanup();
});

const login = async (name: string) => (await loginForm(app, name, PW)).agent;

test('templates page: every template, where it comes from, which profiles use it; in the navigation', async () => {
  const tom = await login('tom');
  const r = await tom.get('/templates');
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /<code>rhvh\.ks\.eta<\/code>/);
  assert.match(r.text, /<code>custom-layout\.eta<\/code>/);
  for (const p of ['rhvh-base', 'rhvh-custom-thin', 'rhvh-stig-satellite'])
    assert.match(r.text, new RegExp(`<a class="tag" href="/profiles/${p}">${p}</a>`));
  assert.match(r.text, /<a href="\/templates" aria-current="page">Templates<\/a>/);
  assert.equal((await request(app).get('/templates')).status, 303, 'a session is needed');
});

test('effective profile page: values with their source; a host adds its parameters; techs see secrets masked; user text is inert', async () => {
  const alice = await login('alice');
  const plain = await alice.get('/profiles/rhvh-stig-satellite/effective');
  assert.equal(plain.status, 200, plain.text);
  assert.match(
    plain.text,
    /<code>network\.mode<\/code><\/td>\s*<td><code>static<\/code><\/td>\s*<td[^>]*><span class="tag">profile<\/span> <a href="\/profiles\/rhvh-stig-satellite">/,
  );
  assert.match(
    plain.text,
    /<code>boot\.kernelArgs<\/code><\/td>\s*<td><code>[^<]*<\/code><\/td>\s*<td[^>]*><span class="tag">parent<\/span> <a href="\/profiles\/rhvh-base">/,
  );
  assert.match(
    plain.text,
    /<code>kickstart<\/code><\/td>\s*<td><code>rhvh\.ks\.eta<\/code><\/td>\s*<td[^>]*><span class="muted">default/,
  );
  const withHost = await alice.get('/profiles/rhvh-stig-satellite/effective?mac=52:54:00:aa:bb:21');
  assert.equal(withHost.status, 200);
  assert.match(
    withHost.text,
    /<code>satellite\.activationKey<\/code><\/td>\s*<td><code>host-only-key-4242<\/code><\/td>\s*<td[^>]*><span class="tag">host<\/span> sat21 parameter/,
  );
  assert.ok(!withHost.text.includes(XSS), 'a host parameter is HTML-escaped');
  assert.ok(withHost.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));

  const tom = await login('tom');
  const masked = await tom.get('/profiles/rhvh-stig-satellite/effective?mac=52:54:00:aa:bb:21');
  assert.equal(masked.status, 200);
  assert.ok(!masked.text.includes('host-only-key-4242'), 'a tech does not see the activation key');
  assert.ok(!masked.text.includes('$6$'), 'nor the root password hash');
  assert.match(masked.text, /<code>satellite\.activationKey<\/code><\/td>\s*<td><code>\*{8}<\/code>/);

  for (const [url, status] of [
    ['/profiles/nope/effective', 404],
    ['/profiles/rhvh-stig-satellite/effective?mac=zz', 400],
    ['/profiles/rhvh-stig-satellite/effective?mac=52:54:00:00:00:99', 404],
    ['/profiles/rhvh-base/effective?mac=52:54:00:aa:bb:21', 409],
  ] as const) {
    const r = await tom.get(url);
    assert.equal(r.status, status, url);
  }
  // The profile page links to it.
  assert.match((await tom.get('/profiles/rhvh-base')).text, /href="\/profiles\/rhvh-base\/effective"/);
});

test('webhooks page: the delivery log, origins only, inert text; a bad status filter is refused', async () => {
  const tom = await login('tom');
  const r = await tom.get('/webhooks');
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /<code>build\.failed<\/code>/);
  assert.match(r.text, /https:\/\/hooks\.example\.com</);
  assert.ok(!r.text.includes('secret-path') && !r.text.includes('token=abc'), 'the URL path and query stay hidden');
  assert.ok(!r.text.includes(XSS));
  assert.equal((await tom.get('/webhooks?status=pending')).status, 200);
  assert.doesNotMatch((await tom.get('/webhooks?status=delivered')).text, /build\.failed/);
  assert.equal((await tom.get('/webhooks?status=%3Cscript%3E')).status, 400);
});
