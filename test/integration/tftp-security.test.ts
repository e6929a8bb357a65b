// Jail, write refusal, TIDs, caps, timeouts and duplicate requests, on loopback with raw packets and real clients.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { encodeAck, encodeRequest, parsePacket } from '../../src/tftp/protocol.ts';
import { startTftpServer, type TftpServerOptions, type TftpTransferEvent } from '../../src/tftp/server.ts';
import { staticFileSource } from '../../src/tftp/static.ts';
import { have, makeTree, run, tftpGet } from '../fixtures/tftp/harness.ts';

let tree: ReturnType<typeof makeTree>;
let outside: string;
const servers: { close(): Promise<void> }[] = [];

before(() => {
  tree = makeTree();
  outside = tree.root + '-outside';
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret'), 'do not serve');
  symlinkSync(path.join(outside, 'secret'), path.join(tree.root, 'escape-abs'));
  symlinkSync('../' + path.basename(outside) + '/secret', path.join(tree.root, 'escape-rel'));
  symlinkSync(outside, path.join(tree.root, 'escape-dir'));
  symlinkSync('/dev/zero', path.join(tree.root, 'zero'));
});
after(async () => {
  for (const s of servers) await s.close();
  rmSync(tree.root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

async function serve(extra: Partial<TftpServerOptions> = {}) {
  const events: TftpTransferEvent[] = [];
  const srv = await startTftpServer({
    address: '127.0.0.1',
    port: 0,
    files: staticFileSource(tree.root),
    log: silentLogger(),
    onTransfer: (e) => events.push(e),
    ...extra,
  });
  servers.push(srv);
  return { srv, port: srv.port, events };
}

/** Sends one packet from a fresh socket and returns the first reply (or undefined after ms). */
async function exchange(
  port: number,
  pkt: Buffer,
  ms = 2000,
): Promise<{ msg: Buffer; port: number; sock: dgram.Socket } | undefined> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    sock.once('message', (msg, rinfo) => {
      clearTimeout(t);
      resolve({ msg, port: rinfo.port, sock });
    });
    sock.send(pkt, port, '127.0.0.1');
  });
}

const asError = (b: Buffer | undefined): { code: number; message: string } | undefined => {
  const p = b && parsePacket(b);
  return p && p.ok && p.packet.op === 'ERROR' ? { code: p.packet.code, message: p.packet.message } : undefined;
};

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('path traversal is refused with ERROR 2; symlink escapes, devices and directories are not found', async () => {
  const { port, events } = await serve();
  for (const p of [
    '../etc/passwd',
    '/../../../etc/passwd',
    '..\\..\\etc\\passwd',
    'images/../../etc/passwd',
    'images/..',
  ]) {
    const r = await tftpGet(port, p);
    assert.equal(r.error?.code, 2, p);
    assert.equal(r.data.length, 0);
  }
  for (const p of ['escape-abs', 'escape-rel', 'escape-dir/secret', 'ESCAPE-ABS', 'zero', 'images', '/', 'missing']) {
    const r = await tftpGet(port, p);
    assert.ok(r.error && (r.error.code === 1 || r.error.code === 2), `${p}: ${JSON.stringify(r.error)}`);
    assert.equal(r.data.length, 0);
  }
  assert.ok(events.every((e) => e.type === 'tftp.failed'));
});

test('real clients cannot leave the root', async (t) => {
  const { port } = await serve();
  const out = tree.root + '-dl';
  mkdirSync(out, { recursive: true });
  if (await have('tftp')) {
    await run('tftp', [
      '127.0.0.1',
      String(port),
      '-m',
      'binary',
      '-c',
      'get',
      '../../../../etc/passwd',
      path.join(out, 'p1'),
    ]);
    await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', 'escape-abs', path.join(out, 'p2')]);
  } else t.diagnostic('tftp-hpa missing');
  if (await have('curl')) {
    await run('curl', ['-sS', '--path-as-is', `tftp://127.0.0.1:${port}/../../etc/passwd`, '-o', path.join(out, 'p3')]);
  }
  for (const f of readdirSync(out)) {
    // tftp-hpa creates the local file before it asks; it must stay empty.
    const content = (await import('node:fs')).readFileSync(path.join(out, f), 'utf8');
    assert.ok(!content.includes('root:') && !content.includes('do not serve'), f);
  }
  rmSync(out, { recursive: true, force: true });
});

test('write requests are refused with ERROR 2 and nothing is written', async (t) => {
  const { port } = await serve();
  const r = await exchange(port, encodeRequest('WRQ', 'upload.bin', 'octet', [{ name: 'tsize', value: '10' }]));
  assert.equal(asError(r?.msg)?.code, 2);
  r?.sock.close();
  if (await have('tftp')) {
    const src = path.join(tree.root, '..', 'rb-upload-src');
    writeFileSync(src, 'payload');
    const res = await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'put', src, 'uploaded.bin']);
    assert.match(res.stdout + res.stderr, /Error code 2/);
    rmSync(src);
  } else t.diagnostic('tftp-hpa missing');
  assert.equal(existsSync(path.join(tree.root, 'upload.bin')), false);
  assert.equal(existsSync(path.join(tree.root, 'uploaded.bin')), false);
});

test('unsupported mode gets ERROR 4; netascii is served as-is', async () => {
  const { port } = await serve();
  const r = await exchange(port, encodeRequest('RRQ', 'small.bin', 'mail'));
  assert.equal(asError(r?.msg)?.code, 4);
  r?.sock.close();
  const n = await tftpGet(port, 'small.bin', { mode: 'NetASCII' });
  assert.deepEqual(n.data, tree.files['small.bin']);
});

test('packets from a foreign TID get ERROR 5 and the transfer goes on', async () => {
  const { port } = await serve();
  const stranger = dgram.createSocket('udp4');
  await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', r));
  const strangerGot: Buffer[] = [];
  stranger.on('message', (m) => strangerGot.push(m));
  let fired = false;
  const r = await tftpGet(port, 'images/rhvh/vmlinuz', {
    onData: (block, _sock, serverPort) => {
      if (block === 3 && !fired) {
        fired = true;
        // A stranger ACKs ahead; it must not move the real transfer.
        for (const b of [3, 4, 50, 0]) stranger.send(encodeAck(b), serverPort, '127.0.0.1');
        stranger.send(Buffer.from([1, 2, 3]), serverPort, '127.0.0.1');
      }
    },
  });
  assert.deepEqual(r.data, tree.files['images/rhvh/vmlinuz']);
  await waitFor(() => strangerGot.length >= 5);
  for (const m of strangerGot) assert.equal(asError(m)?.code, 5);
  stranger.close();
});

test('a resent request from the same port does not start a second transfer', async () => {
  const { port, events } = await serve();
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const sources = new Set<number>();
  sock.on('message', (_m, rinfo) => sources.add(rinfo.port));
  const req = encodeRequest('RRQ', 'small.bin', 'octet', [{ name: 'tsize', value: '0' }]);
  sock.send(req, port, '127.0.0.1');
  sock.send(req, port, '127.0.0.1');
  sock.send(req, port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sources.size, 1);
  sock.close();
  void events;
});

test('caps: past maxTransfers and maxPerClient the client gets a clear ERROR', async () => {
  const { srv, port } = await serve({ maxTransfers: 3, maxPerClient: 2, defaultTimeoutSec: 5, evictSilentMs: 600_000 }); // eviction: tftp-bounds.test.ts
  const held: dgram.Socket[] = [];
  // Two stalled transfers from 127.0.0.1 (never ACKed).
  for (let i = 0; i < 2; i++) {
    const r = await exchange(port, encodeRequest('RRQ', 'small.bin'));
    assert.equal(parsePacket(r!.msg).ok && r!.msg[1], 3);
    held.push(r!.sock);
  }
  const third = await exchange(port, encodeRequest('RRQ', 'small.bin'));
  assert.match(asError(third?.msg)?.message ?? '', /too many transfers from 127\.0\.0\.1 \(max 2\)/);
  third?.sock.close();
  // Another client address (127.0.0.2 is loopback too) fits under the global cap once, then is refused.
  const other = dgram.createSocket('udp4');
  await new Promise<void>((r) => other.bind(0, '127.0.0.2', r));
  const replies: Buffer[] = [];
  other.on('message', (m) => replies.push(m));
  other.send(encodeRequest('RRQ', 'small.bin'), port, '127.0.0.1');
  await waitFor(() => replies.length >= 1);
  const other2 = dgram.createSocket('udp4');
  await new Promise<void>((r) => other2.bind(0, '127.0.0.2', r));
  const replies2: Buffer[] = [];
  other2.on('message', (m) => replies2.push(m));
  other2.send(encodeRequest('RRQ', 'small.bin'), port, '127.0.0.1');
  await waitFor(() => replies2.length >= 1);
  assert.match(asError(replies2[0])?.message ?? '', /server busy/);
  assert.equal(srv.activeTransfers(), 3);
  for (const s of [...held, other, other2]) s.close();
});

test('after the last retry: ERROR to the client, a failed event, and the transfer is freed', async () => {
  const { srv, port, events } = await serve({ defaultTimeoutSec: 0.05, retries: 2 });
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  sock.send(encodeRequest('RRQ', 'small.bin'), port, '127.0.0.1');
  await waitFor(() => events.length === 1, 3000);
  const ev = events[0]!;
  assert.equal(ev.type, 'tftp.failed');
  assert.match(ev.error!, /timeout: no ACK for block 1 after 2 retransmissions/);
  assert.equal(ev.path, 'small.bin');
  await waitFor(() => got.length === 4);
  assert.deepEqual(
    got.map((m) => m[1]),
    [3, 3, 3, 5],
  ); // DATA, 2 retransmits, ERROR
  assert.equal(srv.activeTransfers(), 0);
  sock.close();
});

test('a file source that throws answers ERROR 0 and the server keeps serving', async () => {
  const { port, events } = await serve({
    files: (p) => {
      if (p === 'boom') throw new Error('database is locked');
      return { size: 3, data: Buffer.from('abc') };
    },
  });
  const r = await tftpGet(port, 'boom');
  assert.equal(r.error?.code, 0);
  assert.match(events[0]!.error!, /database is locked/);
  const ok = await tftpGet(port, 'fine');
  assert.equal(ok.data.toString(), 'abc');
});

test('the file source sees the normalised path and the client', async () => {
  const seen: string[] = [];
  const { port } = await serve({
    files: (p, c) => {
      seen.push(`${p}@${c.address}`);
      return undefined;
    },
  });
  await tftpGet(port, '\\Boot\\\\x86//pxelinux.0');
  await tftpGet(port, '/boot/grub/./grub.cfg');
  assert.deepEqual(seen, ['Boot/x86/pxelinux.0@127.0.0.1', 'boot/grub/grub.cfg@127.0.0.1']);
});
