// Live-board streams (issue #13): at most 4 per session (a new tab ends the oldest), a global cap, and
// logout ends the session's streams at once. Real HTTP servers on loopback, real sessions in SQLite.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, createServer, type Server, type ClientRequest } from 'node:http';
import express from 'express';
import type { WebRouter } from '../../src/web/pages/index.ts';
import { LiveBoard } from '../../src/web/live.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { makeEnv, type TestEnv } from '../support/core.ts';
import { appFor, loginForm, webRouterFor } from '../support/web-env.ts';

const PW = 'correct horse battery';
const HASH = hashUserPasswordSync(PW);
let env: TestEnv;
let web: WebRouter;
let app: express.Express;
let server: Server;
let port: number;

beforeEach(async () => {
  env = await makeEnv();
  await env.core.store.users.add('tom', 'tech', HASH);
  web = webRouterFor(env, {
    liveIntervalMs: 50,
  });
  app = appFor(env, 't', {
    routers: [web],
  });
  server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
afterEach(async () => {
  web.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await env.cleanup();
});

async function login() {
  const { agent, csrf, cookie } = await loginForm(app, 'tom', PW);
  return { agent, csrf, sid: /rackboot_session=([^;]+)/.exec(cookie)![1]! };
}

interface Stream {
  req: ClientRequest;
  status: Promise<number>;
  text: () => string;
  ended: Promise<string>;
}
function openStream(path: string, headers: Record<string, string> = {}): Stream {
  let buf = '';
  let resolveStatus!: (n: number) => void;
  let resolveEnd!: (s: string) => void;
  const status = new Promise<number>((r) => {
    resolveStatus = r;
  });
  const ended = new Promise<string>((r) => {
    resolveEnd = r;
  });
  const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
    resolveStatus(res.statusCode!);
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
    });
    res.on('end', () => resolveEnd(buf));
    res.on('close', () => resolveEnd(buf));
  });
  req.on('error', () => resolveEnd(buf));
  req.end();
  return { req, status, text: () => buf, ended };
}
async function waitFor(cond: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const opened = (s: Stream) => s.text().includes(': live');

test('one session holds at most 4 streams: a 5th and 6th tab end the two oldest', async () => {
  const { sid } = await login();
  const streams: Stream[] = [];
  for (let i = 0; i < 6; i++) {
    const s = openStream('/board/stream', { Cookie: `rackboot_session=${sid}` });
    assert.equal(await s.status, 200);
    await waitFor(() => opened(s), 3000, `stream ${i} opened`);
    streams.push(s);
  }
  const firstTwo = await Promise.all(streams.slice(0, 2).map((s) => s.ended));
  for (const t of firstTwo) assert.match(t, /event: replaced/);
  let stillOpen = 0;
  for (const s of streams.slice(2)) {
    const done = await Promise.race([s.ended.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))]);
    if (!done) stillOpen++;
  }
  assert.equal(stillOpen, 4);
  for (const s of streams) s.req.destroy();
});

test("logout ends the session's streams at once; another session's stream keeps going", async () => {
  const a = await login();
  const b = await login();
  const mine = [0, 1].map(() => openStream('/board/stream', { Cookie: `rackboot_session=${a.sid}` }));
  const other = openStream('/board/stream', { Cookie: `rackboot_session=${b.sid}` });
  for (const s of [...mine, other]) await waitFor(() => opened(s), 3000, 'opened');
  const t0 = Date.now();
  assert.equal((await a.agent.post('/logout').type('form').send({ _csrf: a.csrf })).status, 303);
  const texts = await Promise.all(mine.map((s) => s.ended));
  assert.ok(Date.now() - t0 < 1000, 'ended by the logout, not by the 20 s heartbeat');
  for (const t of texts) assert.match(t, /event: logout/);
  const stillOpen = await Promise.race([
    other.ended.then(() => false),
    new Promise((r) => setTimeout(() => r(true), 200)),
  ]);
  assert.equal(stillOpen, true);
  other.req.destroy();
});

test('global cap: past maxStreams a new stream is refused with 503 and a clear message', async () => {
  const board = new LiveBoard({ subscribe: () => () => {}, chip: () => undefined, maxStreams: 3, maxPerSession: 4 });
  const small = express();
  small.get('/s', (req, res) => {
    board.open(res, () => true, String(req.query.session));
  });
  const srv = createServer(small);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const p = (srv.address() as { port: number }).port;
  const get = (session: string) => {
    const prev = port;
    port = p;
    try {
      return openStream(`/s?session=${session}`);
    } finally {
      port = prev;
    }
  };
  try {
    const held = ['a', 'b', 'c'].map(get);
    for (const s of held) await waitFor(() => opened(s), 3000, 'opened');
    const refused = get('d');
    assert.equal(await refused.status, 503);
    assert.match(await refused.ended, /3 streams are open \(the limit\)/);
    assert.equal(board.size, 3);
    held[0]!.req.destroy();
    await waitFor(() => board.size === 2, 3000, 'a closed stream frees its place');
    const next = get('d');
    assert.equal(await next.status, 200);
    assert.equal(board.endSession('d'), 1);
    assert.match(await next.ended, /event: logout/);
    for (const s of held) s.req.destroy();
  } finally {
    board.close();
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
  }
});
