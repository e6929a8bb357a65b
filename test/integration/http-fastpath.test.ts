// The kickstart fast path (src/http/app.ts kickstartFastPath) on a real HTTP server over a real SQLite core:
// it answers /ks/<token> as the express route does, hands anything unusual to express, and when the store
// fails it answers the same 500 as the express error handler, with the details in the log only.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { kickstartFastPath } from '../../src/http/app.ts';
import type { Mac } from '../../src/net/mac.ts';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import { appFor } from '../support/web-env.ts';

let env: TestEnv;
let server: Server;
let base: string;
const counted: number[] = [];
const logged: string[] = [];
let expressSaw: string[] = [];

beforeEach(async () => {
  env = await makeEnv();
  counted.length = 0;
  logged.length = 0;
  expressSaw = [];
  const log = createLogger({
    level: 'error',
    destination: new Writable({
      write(chunk: Buffer, _enc, done) {
        logged.push(chunk.toString());
        done();
      },
    }),
  });
  const app = appFor(env, 'fastpath-token', {
    middleware: [
      (req, _res, next) => {
        expressSaw.push(req.url);
        next();
      },
    ],
  });
  const fast = kickstartFastPath(env.core.provisioner, (_route, _method, status) => counted.push(status), log);
  server = createServer((req, res) => {
    if (!fast(req, res)) app(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await env.cleanup();
});

async function liveBuild() {
  await env.core.hosts.insert({ ...SAMPLE_HOST, mac: SAMPLE_HOST.mac as Mac, nameservers: [], params: {} });
  env.core.provisioner.learnClient('127.0.0.1', SAMPLE_HOST.mac as Mac);
  const r = await env.core.provisioner.startBuild(SAMPLE_HOST.mac as Mac, 'test');
  assert.ok(r.ok, r.ok ? '' : r.message);
  return new URL(r.value.kickstartUrl).pathname;
}

test('the fast path serves the kickstart, the same text as the express route, and counts it', async () => {
  const path = await liveBuild();
  const fast = await fetch(base + path);
  assert.equal(fast.status, 200);
  assert.equal(fast.headers.get('cache-control'), 'no-store');
  const text = await fast.text();
  assert.match(text, /^%post/m);
  assert.deepEqual(expressSaw, [], 'express never saw it');
  assert.deepEqual(counted, [200]);
  // A query string goes through express: the same kickstart (the same address fetches it again).
  const slow = await fetch(`${base}${path}?x=1`);
  assert.equal(slow.status, 200);
  assert.equal(await slow.text(), text);
  assert.deepEqual(expressSaw, [`${path}?x=1`]);
  assert.deepEqual(counted, [200], 'the express route is counted by the metrics middleware, not here');
});

test('an unknown token: 404 from the fast path, counted', async () => {
  const r = await fetch(`${base}/ks/${'x'.repeat(43)}`);
  assert.equal(r.status, 404);
  assert.equal(await r.text(), '# rackboot: unknown token\n');
  assert.deepEqual(counted, [404]);
});

test('the store away: 500 with no details, the error in the log, the server keeps answering', async () => {
  const path = await liveBuild();
  await env.core.store.close();
  const r = await fetch(base + path);
  assert.equal(r.status, 500);
  const body = await r.text();
  assert.equal(body, '# rackboot: internal error (the server log has the details)\n');
  assert.deepEqual(counted, [500]);
  assert.equal(logged.length, 1, logged.join(''));
  assert.match(logged[0]!, /request failed/);
  assert.doesNotMatch(logged[0]!, new RegExp(path.slice('/ks/'.length)), 'the token never reaches the log');
  assert.equal((await fetch(`${base}/healthz`)).status, 200, 'still serving');
});
