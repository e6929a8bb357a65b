// The OpenAPI document against the server itself: every route of the API router is described, and every answer
// this suite gets (successes and errors, admin and tech tokens) validates against the document with a real JSON
// Schema 2020-12 validator (ajv). Also: paging and filters with the worst values, and the one error shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type express from 'express';
import request from 'supertest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { createLogsApi } from '../../src/ops/routes.ts';
import { createBmcApi } from '../../src/http/bmc-api.ts';
import { createRolloutApi } from '../../src/rollout/api.ts';
import { createTemplatesApi } from '../../src/http/api/templates.ts';
import { createNodesApi } from '../../src/ops/nodes.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import type { ApiDocs } from '../../src/http/openapi.ts';
import { encodeCursor } from '../../src/http/paging.ts';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import { appFor } from '../support/web-env.ts';
import type { Mac } from '../../src/net/mac.ts';

const ADMIN = 'openapi-admin-token';
const admin = { Authorization: `Bearer ${ADMIN}` };
let tech: { Authorization: string };
let env: TestEnv;
let app: express.Express;

interface Seen {
  method: string;
  path: string;
  status: number;
  type: string;
  body: unknown;
}
const seen: Seen[] = [];

before(async () => {
  env = await makeEnv();
  const { users, apiTokens: tokens, nodes } = env.core.store;
  const tom = await users.add('tom', 'tech', hashUserPasswordSync('a long enough password'));
  const made = await tokens.create(tom);
  assert.ok(!('error' in made));
  tech = { Authorization: `Bearer ${made.token}` };
  await nodes.register({
    id: 'node-a',
    version: '0.1.0',
    address: '10.99.0.1',
    publicUrl: 'http://10.99.0.1:8080',
    ports: { http: 8080, dhcp: [67] },
  });
  // Every /api answer, as sent: what the document must describe.
  const record: express.RequestHandler = (req, res, next) => {
    if (!req.path.startsWith('/api')) return next();
    const path = req.path; // the mounted API router rewrites req.url
    const send = res.send.bind(res);
    let sent = false;
    // An answer without a body (204) never passes through send().
    res.on('finish', () => {
      if (!sent)
        seen.push({ method: req.method.toLowerCase(), path, status: res.statusCode, type: '', body: undefined });
    });
    res.send = (body?: unknown) => {
      const type = String(res.getHeader('content-type') ?? '');
      sent = true;
      seen.push({
        method: req.method.toLowerCase(),
        path,
        status: res.statusCode,
        type,
        body: type.startsWith('application/json') && typeof body === 'string' ? JSON.parse(body) : body,
      });
      return send(body as never);
    };
    next();
  };
  app = appFor(env, ADMIN, {
    middleware: [record],
    userToken: (t) => tokens.authenticate(t),
    settings: env.core.store.settings,
    bmc: env.core.bmc,
    apiRouters: [
      (docs: ApiDocs) =>
        createBmcApi({ hosts: env.core.hosts, bmc: env.core.bmc, power: env.core.power, audit: env.core.audit, docs }),
      (docs: ApiDocs) =>
        createLogsApi({ hosts: env.core.hosts, builds: env.core.builds, syslog: env.core.syslog, docs }),
      createTemplatesApi({
        templates: () => env.core.templates.library,
        profiles: () => env.core.catalog.snapshot,
        hosts: env.core.hosts,
        deliveries: env.core.webhookDeliveries,
      }),
      createRolloutApi({ service: env.core.rolloutService }),
      createNodesApi({ nodes, self: 'node-a' }),
    ],
  });
});
after(() => env.cleanup());

const MAC2 = '52:54:00:aa:bb:02';

test('the API answers, successes and errors, on every route', async () => {
  const get = (path: string, who = admin) => request(app).get(path).set(who);
  assert.equal((await request(app).get('/api/openapi.json')).status, 200, 'the document needs no token');
  assert.equal((await request(app).post('/api/hosts').set(admin).send(SAMPLE_HOST)).status, 201);
  assert.equal(
    (
      await request(app)
        .post('/api/hosts')
        .set(tech)
        .send({ ...SAMPLE_HOST, mac: MAC2, hostname: 'rhvh02', ip: '10.99.0.12', rack: 'R2' })
    ).status,
    201,
  );
  for (const q of ['', '?rack=R1', '?state=idle', '?profile=rhvh-base', '?limit=1', '?state=built'])
    assert.equal((await get(`/api/hosts${q}`)).status, 200, q);
  assert.equal((await get('/api/hosts', tech)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}`)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}`, tech)).status, 200);
  assert.equal((await request(app).put(`/api/hosts/${MAC2}`).set(admin).send({ position: 'U9' })).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}/render/kickstart`)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}/logs`)).status, 404, 'no build yet');
  env.core.provisioner.learnClient('127.0.0.1', SAMPLE_HOST.mac as Mac);
  assert.equal((await request(app).post(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(admin)).status, 201);
  const build = (await env.core.builds.latest(SAMPLE_HOST.mac as Mac))!;
  env.core.syslog.append({
    buildId: build.id,
    mac: SAMPLE_HOST.mac as Mac,
    at: Date.now(),
    severity: 6,
    facility: 1,
    app: 'anaconda',
    clientIp: '127.0.0.1',
    text: 'Running pre-installation scripts',
  });
  const first = await get(`/api/hosts/${SAMPLE_HOST.mac}/logs`);
  assert.equal(first.status, 200);
  // Following a log: the cursor gives only the lines after the last one seen.
  env.core.syslog.append({
    buildId: build.id,
    mac: SAMPLE_HOST.mac as Mac,
    at: Date.now(),
    severity: 6,
    facility: 1,
    app: 'anaconda',
    clientIp: '127.0.0.1',
    text: 'Running post-installation scripts',
  });
  const newer = await get(`/api/hosts/${SAMPLE_HOST.mac}/logs?cursor=${first.body.nextCursor as string}`);
  assert.equal(newer.status, 200);
  assert.deepEqual(
    newer.body.lines.map((l: { text: string }) => l.text),
    ['Running post-installation scripts'],
  );
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}/logs?severity=err&q=pre`)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}/logs?format=text`)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}/builds/${build.id}/logs`)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}/events`)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}/events?limit=1`, tech)).status, 200);
  assert.equal((await get(`/api/hosts/${SAMPLE_HOST.mac}`)).status, 200, 'a host in build: its build summary');
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(admin)).status, 200);
  const csv = 'mac,hostname,profile,rack\n52:54:00:aa:bc:01,r3a,rhvh-base,R3\n';
  const text = { 'Content-Type': 'text/csv' };
  assert.equal((await request(app).post('/api/hosts/import?dryRun=1').set(admin).set(text).send(csv)).status, 200);
  assert.equal((await request(app).post('/api/hosts/import').set(admin).set(text).send(csv)).status, 201);
  assert.equal((await request(app).post('/api/hosts/import').set(admin).set(text).send(csv)).status, 422);
  assert.equal((await get('/api/settings/tech-params')).status, 200);
  assert.equal(
    (
      await request(app)
        .put('/api/settings/tech-params')
        .set(admin)
        .send({ techParams: ['timezone.name'] })
    ).status,
    200,
  );
  assert.equal((await get('/api/profiles')).status, 200);
  assert.equal((await get('/api/images')).status, 200);
  const discovered = env.core.store.discovered;
  await discovered.seen({ mac: '52:54:00:dd:00:01' as Mac, arch: 7, ipxe: false });
  await discovered.seen({ mac: '52:54:00:dd:00:02' as Mac, ipxe: true, ip: '10.99.0.200', uuid: 'u' });
  assert.equal((await get('/api/discovered')).status, 200);
  assert.equal((await get('/api/discovered?limit=1')).status, 200);
  // BMCs: set, shown without the password, removed; power and facts of a host without one: 409.
  const bmc = { driver: 'redfish', address: 'https://127.0.0.1:9', username: 'admin', password: 'Secret-Pa55' };
  assert.equal((await request(app).put(`/api/hosts/${MAC2}/bmc`).set(admin).send(bmc)).status, 200);
  assert.equal((await get(`/api/hosts/${MAC2}/bmc`)).status, 200);
  assert.equal((await get(`/api/hosts/${MAC2}`)).status, 200, 'a host with its BMC');
  assert.equal((await get('/api/hosts')).status, 200, 'hosts with their BMCs');
  assert.equal((await request(app).put(`/api/hosts/${MAC2}/bmc`).set(tech).send(bmc)).status, 403);
  assert.equal((await request(app).delete(`/api/hosts/${MAC2}/bmc`).set(admin)).status, 204);
  assert.equal((await get(`/api/hosts/${MAC2}/bmc`)).status, 404);
  assert.equal((await request(app).post(`/api/hosts/${MAC2}/power`).set(admin).send({ action: 'status' })).status, 409);
  assert.equal((await request(app).post(`/api/hosts/${MAC2}/power`).set(admin).send({ action: 'reboot' })).status, 422);
  assert.equal((await request(app).post(`/api/hosts/${MAC2}/bmc/facts`).set(admin)).status, 409);

  // Rollouts, templates, effective profiles, webhook deliveries, nodes.
  const post = (path: string, body?: object, who = admin) =>
    body === undefined ? request(app).post(path).set(who) : request(app).post(path).set(who).send(body);
  const started = await post('/api/racks/R2/build', { waveSize: 1, waveIntervalSeconds: 0 });
  assert.equal(started.status, 202, started.text);
  assert.equal(started.headers.location, `/api/rollouts/${started.body.id}`);
  const cancelled = await post(`/api/rollouts/${started.body.id}/cancel`);
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.equal(cancelled.body.status, 'cancelled');
  const again = await post(`/api/rollouts/${started.body.id}/cancel`);
  assert.equal(again.status, 409, again.text);
  assert.equal(again.body.error.code, 'conflict');
  const byHosts = await post('/api/hosts/build', { macs: [MAC2] });
  assert.equal(byHosts.status, 202, byHosts.text);
  assert.equal((await post('/api/hosts/cancel', { macs: [MAC2] })).status, 200);
  assert.equal((await post('/api/racks/R2/cancel')).status, 200);
  const rollouts = await get('/api/rollouts?limit=1');
  assert.equal(rollouts.status, 200);
  assert.equal(rollouts.body.items[0].id, byHosts.body.id, 'newest first');
  const older = await get(`/api/rollouts?limit=1&cursor=${rollouts.body.nextCursor as string}`);
  assert.deepEqual(
    older.body.items.map((r: { id: number }) => r.id),
    [started.body.id],
  );
  assert.equal(older.body.nextCursor, null);
  assert.match(older.body.items[0].createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.match(older.body.items[0].finishedAt, /Z$/);
  assert.equal((await get(`/api/rollouts/${started.body.id}`)).status, 200);
  assert.equal((await get(`/api/rollouts/${started.body.id}`, tech)).status, 200);
  assert.equal((await get('/api/templates')).status, 200);
  assert.equal((await get('/api/profiles/rhvh-base/effective')).status, 200);
  assert.equal((await get(`/api/profiles/rhvh-base/effective?mac=${MAC2}`, tech)).status, 200);
  for (const i of [1, 2, 3])
    await env.core.webhookDeliveries.add({
      uid: `d${i}`,
      url: 'https://127.0.0.1:9/hook?token=secret',
      event: 'build.done',
      mac: MAC2 as Mac,
      payload: {},
      status: i === 3 ? 'pending' : 'failed',
      nextAt: Date.now() + 60_000,
      createdAt: Date.now(),
    });
  const deliveries = await get('/api/webhooks/deliveries?limit=2');
  assert.equal(deliveries.status, 200);
  assert.deepEqual(
    deliveries.body.items.map((x: { id: string }) => x.id),
    ['d3', 'd2'],
  );
  assert.equal(deliveries.body.items[0].target, 'https://127.0.0.1:9', 'the origin only: no token');
  assert.match(deliveries.body.items[0].nextAttemptAt, /Z$/);
  const rest = await get(`/api/webhooks/deliveries?limit=2&cursor=${deliveries.body.nextCursor as string}`);
  assert.deepEqual(
    rest.body.items.map((x: { id: string }) => x.id),
    ['d1'],
  );
  assert.equal(rest.body.nextCursor, null);
  assert.equal((await get(`/api/webhooks/deliveries?status=failed&mac=${MAC2}`)).body.items.length, 2);
  const nodeList = await get('/api/nodes');
  assert.equal(nodeList.status, 200);
  assert.equal(nodeList.body.self, 'node-a');
  assert.match(nodeList.body.nodes[0].lastHeartbeat, /Z$/);

  // Errors: each status the API answers with.
  const errors: [Promise<request.Response>, number, string, string?][] = [
    [request(app).get('/api/hosts'), 401, 'unauthorized'],
    [request(app).get('/api/hosts').set('Authorization', 'Bearer nope'), 401, 'unauthorized'],
    [request(app).delete(`/api/hosts/${MAC2}`).set(tech), 403, 'forbidden'],
    [get('/api/hosts/zz'), 400, 'bad_request', 'mac'],
    [get('/api/hosts/52:54:00:00:00:99'), 404, 'not_found'],
    [get('/api/nosuch'), 404, 'not_found'],
    [request(app).post('/api/hosts').set(admin).send(SAMPLE_HOST), 409, 'conflict', 'mac'],
    [
      request(app)
        .post('/api/hosts')
        .set(admin)
        .send({ ...SAMPLE_HOST, mac: 'x' }),
      422,
      'invalid',
      'mac',
    ],
    [
      request(app)
        .post('/api/hosts')
        .set(admin)
        .send({ ...SAMPLE_HOST, hostname: 7 }),
      422,
      'invalid',
      'hostname',
    ],
    [request(app).post('/api/hosts').set(admin).send([SAMPLE_HOST]), 400, 'bad_request'],
    [
      request(app)
        .post('/api/hosts')
        .set(admin)
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ ...SAMPLE_HOST, params: { post: 'x'.repeat(300_000) } })),
      413,
      'too_large',
    ],
    [get(`/api/hosts/${SAMPLE_HOST.mac}/render/nosuch`), 400, 'bad_request', 'kind'],
    [get(`/api/hosts/${SAMPLE_HOST.mac}/builds/abc/logs`), 400, 'bad_request', 'id'],
    [get(`/api/hosts/${SAMPLE_HOST.mac}/builds/999999/logs`), 404, 'not_found'],
    // The build was cancelled above: ?build= names it (the latest build leaves cancelled ones out).
    [get(`/api/hosts/${SAMPLE_HOST.mac}/logs?build=${build.id}&severity=loud`), 400, 'bad_request', 'severity'],
    [request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(admin), 409, 'conflict'],
    [request(app).post('/api/racks/NOPE/build').set(admin), 404, 'not_found'],
    [request(app).post('/api/racks/R2/build').set(admin).send({ waveSize: 0 }), 422, 'invalid', 'waveSize'],
    [request(app).post('/api/racks/R2/build').set(admin).send({ wipe: true }), 422, 'invalid', 'wipe'],
    [request(app).post('/api/racks/R2/build').set(admin).send([1]), 400, 'bad_request'],
    [request(app).post('/api/racks/NOPE/cancel').set(admin), 404, 'not_found'],
    [
      request(app)
        .post('/api/hosts/build')
        .set(admin)
        .send({ macs: ['zz'] }),
      422,
      'invalid',
      'macs[0]',
    ],
    [request(app).post('/api/hosts/build').set(admin).send({ macs: [] }), 422, 'invalid', 'macs'],
    [
      request(app)
        .post('/api/hosts/build')
        .set(admin)
        .send({ macs: [MAC2, '52-54-00-AA-BB-02'] }),
      422,
      'invalid',
      'macs[1]',
    ],
    [
      request(app)
        .post('/api/hosts/build')
        .set(admin)
        .send({ macs: ['52:54:00:00:00:99'] }),
      404,
      'not_found',
    ],
    [
      request(app)
        .post('/api/hosts/cancel')
        .set(admin)
        .send({ macs: [MAC2], all: true }),
      422,
      'invalid',
      'all',
    ],
    [get('/api/rollouts/0'), 400, 'bad_request', 'id'],
    [get('/api/rollouts/99999999999999999999'), 400, 'bad_request', 'id'],
    [get('/api/rollouts/999999'), 404, 'not_found'],
    [request(app).post('/api/rollouts/abc/cancel').set(admin), 400, 'bad_request', 'id'],
    [request(app).post('/api/rollouts/999999/cancel').set(admin), 404, 'not_found'],
    [get('/api/profiles/nope/effective'), 404, 'not_found'],
    [get('/api/profiles/rhvh-base/effective?mac=zz'), 400, 'bad_request', 'mac'],
    [get('/api/profiles/rhvh-base/effective?mac=52:54:00:00:00:99'), 404, 'not_found', 'mac'],
    [get('/api/profiles/rhvh-base/effective?host=x'), 400, 'bad_request', 'host'],
    [get('/api/webhooks/deliveries?status=bogus'), 400, 'bad_request', 'status'],
    [get('/api/webhooks/deliveries?mac=%00'), 400, 'bad_request', 'mac'],
    [
      request(app)
        .put('/api/settings/tech-params')
        .set(admin)
        .send({ techParams: ['rootPassword'] }),
      400,
      'bad_request',
      'techParams',
    ],
  ];
  for (const [pending, status, code, field] of errors) {
    const r = await pending;
    assert.equal(r.status, status, `${status} ${code}: ${r.text}`);
    assert.equal(r.body.error.code, code, r.text);
    assert.equal(typeof r.body.error.message, 'string');
    if (field) assert.equal(r.body.error.field, field, r.text);
    assert.deepEqual(Object.keys(r.body), ['error'], 'nothing but the error');
  }
  assert.equal((await get('/api/rollouts')).body.items.length, 2, 'no refused request recorded a rollout');
});

test('paging and filters with the worst values: 400 naming the field, never a 500, never a partial answer', async () => {
  const get = (path: string) => request(app).get(path).set(admin);
  const hostsCursor = (await get('/api/hosts?limit=1')).body.nextCursor as string;
  assert.ok(hostsCursor, 'more than one host: a cursor');
  const discoveredCursor = (await get('/api/discovered?limit=1')).body.nextCursor as string;
  const eventsCursor = (await get(`/api/hosts/${SAMPLE_HOST.mac}/events?limit=1`)).body.nextCursor as string;
  const buildId = (await env.core.builds.history(SAMPLE_HOST.mac as Mac))[0]!.id;
  const bad: [string, string][] = [
    ['/api/hosts?limit=-1', 'limit'],
    ['/api/hosts?limit=0', 'limit'],
    ['/api/hosts?limit=1001', 'limit'],
    ['/api/hosts?limit=99999999999999999999999', 'limit'],
    ['/api/hosts?limit=1e2', 'limit'],
    ['/api/hosts?limit=abc', 'limit'],
    ['/api/hosts?limit=1&limit=2', 'limit'],
    ['/api/hosts?limit=', 'limit'],
    ['/api/hosts?cursor=garbage!', 'cursor'],
    [`/api/hosts?cursor=${'A'.repeat(5000)}`, 'cursor'],
    [`/api/hosts?cursor=${discoveredCursor}`, 'cursor'],
    [`/api/discovered?cursor=${hostsCursor}`, 'cursor'],
    [`/api/hosts/${MAC2}/events?cursor=${eventsCursor}`, 'cursor'],
    [`/api/hosts/${SAMPLE_HOST.mac}/events?cursor=${encodeCursor(`events:${SAMPLE_HOST.mac}`, ['x'])}`, 'cursor'],
    [`/api/hosts/${SAMPLE_HOST.mac}/events?cursor=${encodeCursor(`events:${SAMPLE_HOST.mac}`, [-5])}`, 'cursor'],
    ['/api/hosts?state=exploded', 'state'],
    ['/api/hosts?rack=' + 'R'.repeat(65), 'rack'],
    ['/api/hosts?rack=a%0Ab', 'rack'],
    ['/api/hosts?rack=R1&rack=R2', 'rack'],
    ['/api/hosts?rak=R1', 'rak'],
    ['/api/hosts?site=' + 'S'.repeat(200), 'site'],
    ['/api/hosts?site=a%0Ab', 'site'],
    [`/api/hosts/${SAMPLE_HOST.mac}/logs?build=${buildId}&cursor=${hostsCursor}`, 'cursor'],
    [`/api/hosts/${SAMPLE_HOST.mac}/logs?build=${buildId}&limit=0`, 'limit'],
    [`/api/hosts/${SAMPLE_HOST.mac}/logs?build=-1`, 'build'],
    ['/api/rollouts?limit=0', 'limit'],
    ['/api/rollouts?limit=1001', 'limit'],
    [`/api/rollouts?cursor=${hostsCursor}`, 'cursor'],
    ['/api/rollouts?cursor=garbage!', 'cursor'],
    [`/api/rollouts?cursor=${encodeCursor('rollouts', ['x'])}`, 'cursor'],
    [`/api/rollouts?cursor=${encodeCursor('rollouts', [-1])}`, 'cursor'],
    [`/api/rollouts?cursor=${encodeCursor('rollouts', [1.5])}`, 'cursor'],
    [`/api/webhooks/deliveries?cursor=${encodeCursor('webhook-deliveries', ['1'])}`, 'cursor'],
    ['/api/webhooks/deliveries?limit=0', 'limit'],
    ['/api/webhooks/deliveries?limit=99999999999', 'limit'],
    [`/api/webhooks/deliveries?cursor=${hostsCursor}`, 'cursor'],
  ];
  for (const [path, field] of bad) {
    const r = await get(path);
    assert.equal(r.status, 400, `${path.slice(0, 120)}: ${r.text}`);
    assert.equal(r.body.error.field, field, `${path.slice(0, 120)}: ${r.text}`);
    assert.match(r.body.error.message, new RegExp(`^${field}: `));
  }
  // Filters narrow; pages walk all of it once.
  const r1 = (await get('/api/hosts?rack=R1')).body as { items: { rack: string }[] };
  assert.deepEqual(
    r1.items.map((h) => h.rack),
    ['R1'],
  );
  const all: string[] = [];
  let cursor = '';
  for (let i = 0; i < 10; i++) {
    const page = (await get(`/api/hosts?limit=1${cursor}`)).body as { items: { mac: string }[]; nextCursor: string };
    all.push(...page.items.map((h) => h.mac));
    if (!page.nextCursor) break;
    cursor = `&cursor=${page.nextCursor}`;
  }
  assert.equal(all.length, 3);
  assert.equal(new Set(all).size, 3);
  // ISO 8601 UTC everywhere.
  const h = (await get(`/api/hosts/${MAC2}`)).body as {
    createdAt: string;
    updatedAt: string;
    events: { at: string }[];
  };
  for (const t of [h.createdAt, h.updatedAt]) assert.match(t, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const d = (await get('/api/discovered')).body as { items: { firstSeen: string; lastSeen: string }[] };
  assert.match(d.items[0]!.lastSeen, /Z$/);
  // The events stream: the cursor given with the last page brings only newer events.
  const ev = (await get(`/api/hosts/${SAMPLE_HOST.mac}/events?limit=1000`)).body as {
    items: { id: number }[];
    nextCursor: string;
  };
  const none = (await get(`/api/hosts/${SAMPLE_HOST.mac}/events?cursor=${ev.nextCursor}`)).body as {
    items: unknown[];
    nextCursor: string;
  };
  assert.deepEqual(none.items, []);
  assert.equal(none.nextCursor, ev.nextCursor);
  assert.equal((await request(app).post(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(admin)).status, 201);
  const newer = (await get(`/api/hosts/${SAMPLE_HOST.mac}/events?cursor=${ev.nextCursor}`)).body as {
    items: { id: number; type: string }[];
  };
  assert.deepEqual(
    newer.items.map((e) => e.type),
    ['build.start'],
  );
  assert.ok(newer.items[0]!.id > ev.items.at(-1)!.id);
});

test('every route of the API router is described, and every answer above validates against the document', async () => {
  const docs = app.locals.apiDocs as ApiDocs;
  const mounted = new Set<string>();
  const walk = (
    stack: { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[],
  ) => {
    for (const layer of stack) {
      if (layer.route) for (const m of Object.keys(layer.route.methods)) mounted.add(`${m} ${layer.route.path}`);
      else if (layer.handle?.stack) walk(layer.handle.stack as never);
    }
  };
  for (const r of app.locals.apiRouters as { stack: never[] }[]) walk(r.stack);
  const described = new Set(docs.routes().map((r) => `${r.method} ${r.path}`));
  assert.ok(mounted.size >= 16, `found the routes: ${[...mounted].join(', ')}`);
  assert.deepEqual(
    [...mounted].filter((r) => !described.has(r)),
    [],
    'mounted but not described',
  );
  assert.deepEqual(
    [...described].filter((r) => !mounted.has(r)),
    [],
    'described but not mounted',
  );

  const doc = (await request(app).get('/api/openapi.json')).body as {
    openapi: string;
    paths: Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>
    >;
    components: { schemas: Record<string, object> };
  };
  assert.equal(doc.openapi, '3.1.0');
  const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true, validateFormats: false });
  ajv.addKeyword('components');
  ajv.addSchema({ $id: 'https://rackboot.invalid/openapi.json', components: doc.components });
  const templates = Object.keys(doc.paths).map((p) => ({
    p,
    re: new RegExp('^' + p.replace(/\{[^}]+\}/g, '[^/]+') + '$'),
    literal: p.split('{').length,
  }));
  const covered = new Set<string>();
  const failures: string[] = [];
  for (const s of seen) {
    const t = templates
      .filter((x) => x.re.test(s.path) && doc.paths[x.p]![s.method])
      .sort((a, b) => a.literal - b.literal)[0];
    if (!t) {
      // No route: the 404 of the API's catch-all, in the one error shape.
      assert.equal(s.status, 404, `${s.method} ${s.path} ${s.status} is not in the document`);
      continue;
    }
    const op = doc.paths[t.p]![s.method]!;
    covered.add(`${s.method} ${t.p}`);
    const response = op.responses[String(s.status)] ?? op.responses.default!;
    const content = response.content;
    if (!content) {
      assert.equal(s.body === undefined || s.body === '', true, `${s.method} ${s.path} ${s.status}: no body described`);
      continue;
    }
    const described = Object.entries(content).find(([t]) => s.type.startsWith(t));
    assert.ok(described, `${s.method} ${s.path} ${s.status}: ${s.type}, described ${Object.keys(content).join(', ')}`);
    const [type, media] = described;
    if (type !== 'application/json') continue;
    const validate = ajv.compile({ $ref: `https://rackboot.invalid/openapi.json#${pointer(media.schema)}` } as never);
    if (!validate(s.body))
      failures.push(`${s.method.toUpperCase()} ${s.path} ${s.status}: ${ajv.errorsText(validate.errors)}`);
  }
  assert.deepEqual(failures, []);
  const all = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
  assert.deepEqual(
    all.filter((o) => !covered.has(o)),
    [],
    'every operation was exercised',
  );
});

/** A schema of the document as a JSON pointer into it: its $ref, or (inline) found by identity. */
function pointer(schema: object): string {
  const ref = (schema as { $ref?: string }).$ref;
  if (ref) return ref.slice(1);
  throw new Error(`an inline response schema: ${JSON.stringify(schema).slice(0, 80)}`);
}
