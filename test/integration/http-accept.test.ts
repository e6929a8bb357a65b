// A burst of connections is let in within one event-loop turn (src/http/accept.ts), and the sockets
// taken that way behave like Node's own: peer address, keep-alive, connection counts, server.close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { spawnSync } from 'node:child_process';
import { acceptBursts } from '../../src/http/accept.ts';

const BURST = 100;

/** Connections waiting in the listen queue of 127.0.0.1:port (Recv-Q of a listening socket in ss). */
function listenQueue(port: number): number {
  const out = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim();
  return Number(out.split(/\s+/)[1] ?? 0);
}

function readResponses(sock: Socket, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const bodies: string[] = [];
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      for (;;) {
        const head = buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, head))![1]);
        if (buf.length < head + 4 + len) return;
        bodies.push(buf.slice(head + 4, head + 4 + len));
        buf = buf.slice(head + 4 + len);
        if (bodies.length === count) resolve(bodies);
      }
    });
  });
}

test('a burst of 100 connections is taken in one turn; those sockets keep peer address, keep-alive and counts', async () => {
  const server = createServer((req, res) => res.end(`${req.socket.remotePort} ${req.url}`));
  const stats = acceptBursts(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  // net.connect issues connect(2) on the next tick; the kernel completes the handshakes on its own. Until
  // all 100 wait in the listen queue (ss shows its length as Recv-Q), this process is held in spawnSync,
  // so the server's loop cannot take a single one before the burst is complete.
  const clients = Array.from({ length: BURST }, () => connect(port, '127.0.0.1'));
  await new Promise((r) => process.nextTick(r));
  for (let i = 0; i < 500 && listenQueue(port) < BURST; i++) spawnSync('sleep', ['0.01']);
  assert.equal(listenQueue(port), BURST, 'all connections wait in the listen queue');
  const answers = clients.map((c) => readResponses(c, 2));
  for (const c of clients) c.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n');
  const bodies = await Promise.all(answers);
  assert.equal(stats.adopted, BURST - 1, 'Node accepted one, the rest came from the queue in the same turn');
  bodies.forEach((b, i) => assert.deepEqual(b, [`${clients[i].localPort} /one`, `${clients[i].localPort} /two`]));
  assert.equal(await new Promise((r) => server.getConnections((_e, n) => r(n))), BURST);
  const closed = new Promise((r) => server.close(r)); // fires only when every connection, adopted ones too, is gone
  for (const c of clients) c.end();
  await closed;
  assert.equal(await new Promise((r) => server.getConnections((_e, n) => r(n))), 0);
});

test('garbage on sockets taken from the queue gets 400 and a close; the server goes on serving', async () => {
  const server = createServer((_req, res) => res.end('fine'));
  const stats = acceptBursts(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const clients = Array.from({ length: 20 }, () => connect(port, '127.0.0.1'));
  await new Promise((r) => process.nextTick(r));
  for (let i = 0; i < 500 && listenQueue(port) < 20; i++) spawnSync('sleep', ['0.01']);
  const replies = clients.map(
    (c) =>
      new Promise<string>((resolve) => {
        let b = '';
        c.on('data', (d: Buffer) => (b += d.toString()));
        c.on('close', () => resolve(b));
        c.on('error', () => {});
      }),
  );
  clients.forEach((c, i) =>
    c.write(i % 2 ? '\x00\xff GARBAGE / HTTP/9.9\r\n\r\n' : 'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
  );
  const got = await Promise.all(replies);
  assert.equal(stats.adopted, 19);
  got.forEach((b, i) =>
    assert.match(b, i % 2 ? /^HTTP\/1.1 400 Bad Request/ : /^HTTP\/1.1 200 OK[\s\S]*fine$/, `client ${i}`),
  );
  const after = await fetch(`http://127.0.0.1:${port}/again`);
  assert.equal(await after.text(), 'fine');
  await new Promise((r) => server.close(r));
});

test('maxConnections is honoured for queued connections too: the rest are dropped as Node drops them', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  server.maxConnections = 10;
  const stats = acceptBursts(server);
  let dropped = 0;
  const allDropped = new Promise<void>((r) =>
    server.on('drop', () => {
      if (++dropped === 20) r();
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const clients = Array.from({ length: 30 }, () => connect(port, '127.0.0.1'));
  clients.forEach((c) => c.on('error', () => {}));
  await new Promise((r) => process.nextTick(r));
  for (let i = 0; i < 500 && listenQueue(port) < 30; i++) spawnSync('sleep', ['0.01']);
  await allDropped; // every connection beyond the tenth reached Node's own accept and was closed there
  assert.equal(stats.adopted, 9);
  assert.equal(await new Promise<number>((r) => server.getConnections((_e, n) => r(n))), 10);
  for (const c of clients) c.destroy();
  await new Promise((r) => server.close(r));
});
