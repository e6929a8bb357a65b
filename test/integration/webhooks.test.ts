// Webhooks against a real HTTP receiver on loopback: signed deliveries of build events, retries after a 500, a slow
// receiver and a refused connection that never delay the build's own answers, a queue bound, a restart that loses
// nothing. Real SQLite, the real app over HTTP (supertest), real sockets.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import type { createApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { ConfigError, loadConfig, type WebhookConfig } from '../../src/config.ts';
import { WebhookDispatcher, type WebhookLimits } from '../../src/webhooks/dispatcher.ts';
import { verifySignature, WEBHOOK_EVENTS } from '../../src/webhooks/payload.ts';
import { runCli } from '../../src/cli.ts';
import { makeEnv, SAMPLE_HOST, tempDir, type TestEnv } from '../support/core.ts';
import { appFor } from '../support/web-env.ts';
import type { Mac } from '../../src/net/mac.ts';

const TOKEN = 'test-admin-token';
const auth = { Authorization: `Bearer ${TOKEN}` };
const SECRET = 'whsec-0123456789abcdef-not-in-logs';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** A webhook receiver: each request gets the next behaviour of `plan` (the last one repeats). */
async function receiver(plan: ('ok' | '500' | { delayMs: number })[]) {
  const got: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() });
      const step = plan[Math.min(n++, plan.length - 1)]!;
      if (step === 'ok') res.end('thanks');
      else if (step === '500') res.writeHead(500).end('try later');
      else setTimeout(() => res.end('late'), step.delayMs).unref();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as { port: number }).port;
  return { got, url: `http://127.0.0.1:${port}/hooks/rackboot?token=path-secret` };
}

/** A loopback port nobody listens on. */
async function refusedUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}/hook`;
}

async function setup(hooks: Partial<WebhookConfig>[], limits: Partial<WebhookLimits> = {}) {
  const env: TestEnv = await makeEnv();
  const lines: string[] = [];
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  const full = hooks.map((h) => ({
    url: h.url!,
    secret: SECRET,
    events: h.events ?? [...WEBHOOK_EVENTS],
    timeoutMs: h.timeoutMs ?? 2000,
  }));
  const make = () =>
    new WebhookDispatcher({
      hooks: full,
      store: env.core.webhookDeliveries,
      events: env.core.events,
      changes: env.core.changes,
      node: env.config.nodeId,
      hosts: env.core.hosts,
      builds: env.core.builds,
      log,
      limits: { backoffBaseMs: 50, backoffMaxMs: 200, maxAttempts: 4, ...limits },
    });
  const dispatcher = make();
  dispatcher.start();
  cleanups.push(async () => {
    await dispatcher.stop();
    await env.cleanup();
  });
  // Made when a test asks for it (the CLI test needs no app).
  let app: ReturnType<typeof appFor> | undefined;
  return {
    env,
    get app() {
      return (app ??= appFor(env, TOKEN));
    },
    dispatcher,
    lines,
    make,
  };
}

async function startBuild(app: ReturnType<typeof createApp>, mac = SAMPLE_HOST.mac, hostname = SAMPLE_HOST.hostname) {
  const h = await request(app)
    .post('/api/hosts')
    .set(auth)
    .send({ ...SAMPLE_HOST, mac, hostname, ip: `10.99.0.${100 + (Number.parseInt(mac.slice(-2), 16) % 100)}` });
  assert.equal(h.status, 201, JSON.stringify(h.body));
  const b = await request(app).post(`/api/hosts/${mac}/build`).set(auth);
  assert.equal(b.status, 201, JSON.stringify(b.body));
  const body = b.body as {
    kickstartUrl: string;
    builtUrl: string;
    failedUrl: string;
    eventsUrl: string;
    buildId: number;
  };
  return body;
}

/** The installer fetches its kickstart (from 127.0.0.1, naming its MAC), which ties that address to the host. */
async function fetchKickstart(app: ReturnType<typeof createApp>, b: { kickstartUrl: string }, mac = SAMPLE_HOST.mac) {
  const r = await request(app).get(path(b.kickstartUrl)).set('X-RHN-Provisioning-MAC-0', `eth0 ${mac}`);
  assert.equal(r.status, 200);
}
const path = (url: string) => new URL(url).pathname;

interface Payload {
  id: string;
  timestamp: number;
  event: string;
  host: { mac: string; hostname: string };
  build: { id: number; status: string; finishedAt: string; seconds: number };
}

async function until<T>(what: string, get: () => T | Promise<T>, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('build started and built reach the receiver signed (HMAC-SHA256 over the body, timestamp inside it), recorded on the timeline', async () => {
  const rx = await receiver(['ok']);
  const { env, app, lines } = await setup([{ url: rx.url }]);
  const b = await startBuild(app);
  await fetchKickstart(app, b);
  assert.equal((await request(app).post(path(b.builtUrl))).status, 200);
  await until('two deliveries', () => rx.got.length >= 2);
  const [started, built] = rx.got.map((g) => ({ ...g, json: JSON.parse(g.body) as Payload }));
  assert.equal(started!.json.event, 'build.started');
  assert.equal(built!.json.event, 'build.built');
  for (const r of [started!, built!]) {
    assert.ok(verifySignature(SECRET, r.body, r.headers['x-rackboot-signature'] as string), 'signature verifies');
    assert.ok(!verifySignature('another-secret-of-16+', r.body, r.headers['x-rackboot-signature'] as string));
    assert.ok(
      !verifySignature(SECRET, r.body.replace('"build.', '"xuild.'), r.headers['x-rackboot-signature'] as string),
    );
    assert.equal(r.headers['x-rackboot-timestamp'], String(r.json.timestamp), 'the signed body carries the timestamp');
    assert.ok(Math.abs(Number(r.json.timestamp) - Date.now() / 1000) < 60);
    assert.equal(r.headers['x-rackboot-delivery'], r.json.id);
    assert.equal(r.headers['x-rackboot-event'], r.json.event);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.json.host.mac, SAMPLE_HOST.mac);
    assert.equal(r.json.host.hostname, SAMPLE_HOST.hostname);
    assert.equal(r.json.build.id, b.buildId);
  }
  assert.notEqual(started!.json.id, built!.json.id);
  assert.equal(built!.json.build.status, 'built');
  assert.match(built!.json.build.finishedAt, /^\d{4}-\d\d-\d\dT.*Z$/);
  assert.equal(typeof built!.json.build.seconds, 'number');
  await until(
    'the timeline',
    async () =>
      (await env.core.events.timeline(SAMPLE_HOST.mac as Mac)).filter((e) => e.type === 'webhook.delivered').length ===
      2,
  );
  const tl = (await env.core.events.timeline(SAMPLE_HOST.mac as Mac)).find((e) => e.type === 'webhook.delivered')!;
  assert.equal(tl.status, '200');
  assert.equal(tl.detail?.target, new URL(rx.url).origin, 'the timeline shows the origin, not the path and its token');
  const log = await env.core.webhookDeliveries.list();
  assert.deepEqual(
    log.map((d) => [d.event, d.status, d.attempts, d.lastStatus]),
    [
      ['build.built', 'delivered', 1, 200],
      ['build.started', 'delivered', 1, 200],
    ],
  );
  const all = lines.join('');
  assert.match(all, /webhook delivered/);
  assert.ok(!all.includes(SECRET), 'the secret is never logged');
  assert.ok(!all.includes('path-secret'), 'nor the URL path');
});

test('a receiver that answers 500 then 200 gets the same delivery again after a backoff', async () => {
  const rx = await receiver(['500', 'ok']);
  const { env, app } = await setup([{ url: rx.url, events: ['build.started'] }]);
  await startBuild(app);
  await until('the retry', () => rx.got.length >= 2);
  const [a, b] = rx.got.map((g) => JSON.parse(g.body) as { id: string; timestamp: number });
  assert.equal(a!.id, b!.id, 'one delivery id across attempts: the receiver can tell a retry');
  assert.ok(rx.got[1]!.at - rx.got[0]!.at >= 45, 'after the backoff');
  const [d] = await until('delivered', async () => {
    const l = await env.core.webhookDeliveries.list();
    return l[0]?.status === 'delivered' ? l : undefined;
  });
  assert.equal(d!.attempts, 2);
  const types = (await env.core.events.timeline(SAMPLE_HOST.mac as Mac)).map((e) => e.type);
  assert.ok(types.indexOf('webhook.retrying') < types.indexOf('webhook.delivered'), types.join(' '));
});

test("a slow receiver and a refused connection never delay the build's answers; they time out, retry, fail", async () => {
  const slow = await receiver([{ delayMs: 5000 }]);
  const refused = await refusedUrl();
  const { env, app } = await setup([{ url: slow.url, timeoutMs: 300 }, { url: refused }], { maxAttempts: 2 });
  const t0 = Date.now();
  const b = await startBuild(app);
  await fetchKickstart(app, b);
  const progress = await request(app)
    .post(path(b.eventsUrl))
    .set('Content-Type', 'application/json')
    .send({ step: 'installing' });
  assert.equal(progress.status, 200);
  const failed = await request(app).post(path(b.failedUrl)).set('Content-Type', 'text/plain').send('boom\nlast line');
  assert.equal(failed.status, 200);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 1500, `the build's requests took ${elapsed} ms with a receiver that hangs 5 s`);
  await until('the slow one gets the event', () => slow.got.length >= 1);

  const done = await until('both failed', async () => {
    const l = await env.core.webhookDeliveries.list();
    return l.length === 4 && l.every((d) => d.status === 'failed') ? l : undefined;
  });
  const byUrl = (u: string) => done.filter((d) => d.url === u);
  for (const d of byUrl(slow.url)) assert.equal(d.lastError, 'no answer within 300 ms');
  for (const d of byUrl(refused)) assert.equal(d.lastError, 'ECONNREFUSED');
  assert.ok(done.every((d) => d.attempts === 2));
  const failedTl = (await env.core.events.timeline(SAMPLE_HOST.mac as Mac)).filter((e) => e.type === 'webhook.failed');
  assert.equal(failedTl.length, 4);
  // The failure carries the installer's last words.
  const failure = JSON.parse(slow.got.find((g) => g.body.includes('"build.failed"'))!.body) as {
    failureTail: string[];
  };
  assert.deepEqual(failure.failureTail, ['boom', 'last line']);
});

test('the attempt timeout holds through garbage collection (a collected AbortSignal.any never fired in Node 20)', async () => {
  // Node 20's fetch follows the caller's signal weakly: a composite signal nobody else held was collected, and the
  // attempt then waited for the receiver's late 200 (the flake seen in CI). Collect garbage while the receiver hangs.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const slow = await receiver([{ delayMs: 3000 }]);
  const { env, app } = await setup([{ url: slow.url, timeoutMs: 200, events: ['build.started'] }], {
    maxAttempts: 1,
  });
  await startBuild(app);
  const t0 = Date.now();
  await until('the request', () => slow.got.length >= 1);
  const collect = setInterval(gc, 20);
  cleanups.push(() => clearInterval(collect));
  const [d] = await until(
    'the attempt to time out',
    async () => {
      const l = await env.core.webhookDeliveries.list();
      return l[0]?.status === 'failed' || l[0]?.status === 'delivered' ? l : undefined;
    },
    5000,
  );
  assert.equal(d!.status, 'failed');
  assert.equal(d!.lastError, 'no answer within 200 ms');
  assert.ok(Date.now() - t0 < 2000, `timed out after ${Date.now() - t0} ms, not at the receiver's late answer`);
});

test('the queue is bounded: beyond maxPending a delivery is recorded as dropped, not kept', async () => {
  const refused = await refusedUrl();
  const { env, app } = await setup([{ url: refused }], { maxPending: 2, backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
  for (let i = 0; i < 5; i++) await startBuild(app, `52:54:00:aa:cc:0${i}`, `rhvh-q${i}`);
  const l = await until('five rows', async () => {
    const rows = await env.core.webhookDeliveries.list();
    return rows.length === 5 ? rows : undefined;
  });
  assert.equal(l.filter((d) => d.status === 'pending').length, 2);
  assert.equal(l.filter((d) => d.status === 'dropped').length, 3);
  assert.match(l.find((d) => d.status === 'dropped')!.lastError!, /more than 2 deliveries waiting/);
});

test('a restart loses no delivery: pending ones are sent by the next dispatcher', async () => {
  const refused = await refusedUrl();
  const { env, app, dispatcher, make } = await setup([{ url: refused }], { backoffBaseMs: 20, backoffMaxMs: 20 });
  await startBuild(app);
  await until('one failed attempt', async () => (await env.core.webhookDeliveries.list())[0]?.attempts === 1);
  await dispatcher.stop();
  const before = (await env.core.webhookDeliveries.list())[0]!;
  assert.equal(before.status, 'pending');
  // The receiver comes up on the very port that refused, and rackboot starts again over the same database.
  const port = Number(new URL(refused).port);
  const got: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push(body);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const next = make();
  next.start();
  cleanups.push(() => next.stop());
  await until('the delivery after restart', () => got.length === 1);
  assert.equal((JSON.parse(got[0]!) as { id: string }).id, before.uid);
  await until('delivered', async () => (await env.core.webhookDeliveries.list())[0]?.status === 'delivered');
});

test('config webhooks: worst values are refused naming the field, and the secret is never echoed', () => {
  const dir = tempDir();
  const file = join(dir, 'rackboot.yaml');
  const load = (yaml: string) => {
    writeFileSync(file, yaml);
    return loadConfig({ config: file }, {}, dir);
  };
  const good = `webhooks:\n  - url: https://hooks.example.com/rb\n    secret: ${SECRET}\n`;
  const c = load(good);
  assert.deepEqual(c.webhooks, [
    { url: 'https://hooks.example.com/rb', secret: SECRET, events: [...WEBHOOK_EVENTS], timeoutMs: 10_000 },
  ]);
  const worst: [string, RegExp][] = [
    [`webhooks:\n  - url: ftp://x/y\n    secret: ${SECRET}\n`, /webhooks\.0\.url: must be an http\(s\) URL/],
    [`webhooks:\n  - url: "not a url"\n    secret: ${SECRET}\n`, /webhooks\.0\.url: must be an http\(s\) URL/],
    [`webhooks:\n  - url: https://u:pw@x/y\n    secret: ${SECRET}\n`, /webhooks\.0\.url: must not carry user:password/],
    [
      `webhooks:\n  - url: https://x/${'a'.repeat(3000)}\n    secret: ${SECRET}\n`,
      /webhooks\.0\.url: is longer than 2048/,
    ],
    [`webhooks:\n  - url: https://x/y\n    secret: short\n`, /webhooks\.0\.secret: must be at least 16 characters/],
    [
      `webhooks:\n  - url: https://x/y\n    secret: "has a space in it!!"\n`,
      /webhooks\.0\.secret: must be printable ASCII/,
    ],
    [
      `webhooks:\n  - url: https://x/y\n    secret: "nul\\0inside-0123456789"\n`,
      /webhooks\.0\.secret: must be printable ASCII/,
    ],
    [`webhooks:\n  - url: https://x/y\n    secret: ${'s'.repeat(600)}\n`, /webhooks\.0\.secret: must be at most 512/],
    [
      `webhooks:\n  - url: https://x/y\n    secret: ${SECRET}\n    events: [build.exploded]\n`,
      /webhooks\.0\.events\.0: must be one of build\.started/,
    ],
    [
      `webhooks:\n  - url: https://x/y\n    secret: ${SECRET}\n    events: []\n`,
      /webhooks\.0\.events: must list at least one/,
    ],
    [`webhooks:\n  - url: https://x/y\n    secret: ${SECRET}\n    pasword: x\n`, /webhooks\.0.*pasword/],
    [
      `webhooks:\n  - { url: "https://x/y", secret: ${SECRET} }\n  - { url: "https://x/y", secret: ${SECRET} }\n`,
      /webhooks: lists a URL twice/,
    ],
    [`webhooks:\n  - url: https://x/y\n    secret: ${SECRET}\n    timeout: forever\n`, /webhooks\.0\.timeout/],
  ];
  for (const [yaml, expected] of worst) {
    assert.throws(
      () => load(yaml),
      (err: Error) => {
        assert.ok(err instanceof ConfigError, err.message);
        assert.match(err.message, expected);
        assert.ok(!err.message.includes(SECRET), 'the secret is not in the error');
        return true;
      },
    );
  }
});

test('a cancelled build and a stuck event (from the rollout) are delivered too', async () => {
  const rx = await receiver(['ok']);
  const { env, app } = await setup([{ url: rx.url, events: ['build.cancelled', 'build.stuck'] }]);
  const b = await startBuild(app);
  env.core.events.append({
    mac: SAMPLE_HOST.mac as Mac,
    buildId: b.buildId,
    type: 'stuck',
    status: 'kickstart',
    detail: { stage: 'kickstart', limitSeconds: 900 },
  });
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(auth)).status, 200);
  await until('two deliveries', () => rx.got.length >= 2);
  const got = rx.got.map((g) => JSON.parse(g.body) as Payload & { stuck?: unknown });
  assert.deepEqual(got.map((g) => g.event).sort(), ['build.cancelled', 'build.stuck']);
  const stuck = got.find((g) => g.event === 'build.stuck')!;
  assert.deepEqual(stuck.stuck, { stage: 'kickstart', limitSeconds: 900 });
  assert.equal(got.find((g) => g.event === 'build.cancelled')!.build.status, 'cancelled');
});

test('a build started by another process (the CLI on the same database) is delivered once, by serve', async () => {
  const rx = await receiver(['ok']);
  const { env, dispatcher } = await setup([{ url: rx.url, events: ['build.started', 'build.cancelled'] }]);
  await env.core.hosts.insert({ ...SAMPLE_HOST, mac: SAMPLE_HOST.mac as Mac, nameservers: [], params: {} });
  const flags = ['--data-dir', env.config.dataDir, '--profiles-dir', env.config.profilesDir];
  const cli = async (...args: string[]) => {
    const err: string[] = [];
    const io = { out: () => {}, err: (s: string) => err.push(s), readStdin: async () => '', env: {} };
    const code = await runCli([...args, ...flags, '--node-id', env.config.nodeId], io);
    assert.equal(code, 0, err.join('\n'));
  };
  await cli('hosts', 'build', SAMPLE_HOST.mac);
  await until('the delivery', () => rx.got.length >= 1);
  const first = JSON.parse(rx.got[0]!.body) as Payload;
  assert.equal(first.event, 'build.started');
  assert.equal(first.host.hostname, SAMPLE_HOST.hostname);
  assert.equal(first.build.status, 'pending');
  // Each build change is read twice (at once, and after the other process surely flushed): still one delivery.
  await until('both reads', () => dispatcher.timelinesRead >= 2);
  await dispatcher.idle();
  assert.equal(rx.got.length, 1);

  // Another node's build events are that node's to deliver: a CLI with another --node-id is not sent from here.
  const other = async (...args: string[]) => {
    const io = { out: () => {}, err: () => {}, readStdin: async () => '', env: {} };
    assert.equal(await runCli([...args, ...flags, '--node-id', 'elsewhere:1'], io), 0);
  };
  const reads = dispatcher.timelinesRead;
  await other('hosts', 'cancel', SAMPLE_HOST.mac);
  await until('the reads of the cancel', () => dispatcher.timelinesRead >= reads + 2);
  await dispatcher.idle();
  assert.equal(rx.got.length, 1);
  // While this node's own cancel is (the same host, a new build from this process's CLI, cancelled by it).
  await cli('hosts', 'build', SAMPLE_HOST.mac);
  await cli('hosts', 'cancel', SAMPLE_HOST.mac);
  await until('two more deliveries', () => rx.got.length >= 3);
  const events = rx.got.map((g) => (JSON.parse(g.body) as Payload).event);
  assert.deepEqual(events, ['build.started', 'build.started', 'build.cancelled']);
});
