// Slot exhaustion (issue #13): 640 requests with timeout=255 used to hold all 600 transfer slots for ~25
// minutes. Now the timeout option is capped (ignored above 10 s), a full table evicts the transfer silent
// longest, and no transfer holds its slot past maxTransferSec. Real sockets on loopback, real clients.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { encodeRequest, parsePacket, type TftpOption } from '../../src/tftp/protocol.ts';
import { startTftpServer, type TftpServerOptions, type TftpTransferEvent } from '../../src/tftp/server.ts';
import { staticFileSource } from '../../src/tftp/static.ts';
import { have, makeTree, run, sha, tftpGet } from '../fixtures/tftp/harness.ts';

let tree: ReturnType<typeof makeTree>;
const servers: { close(): Promise<void> }[] = [];
before(() => {
  tree = makeTree();
});
after(async () => {
  for (const s of servers) await s.close();
  rmSync(tree.root, { recursive: true, force: true });
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

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Attacker {
  sock: dgram.Socket;
  first?: Buffer;
}

/** `n` sockets spread over `addresses` loopback source addresses, each keeping the first reply it gets (and never ACKing). */
async function openAttackers(n: number, addresses: number): Promise<Attacker[]> {
  const out: Attacker[] = [];
  for (let i = 0; i < n; i++) {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, `127.0.1.${1 + (i % addresses)}`, r));
    const a: Attacker = { sock };
    sock.on('message', (m) => {
      a.first ??= m;
    });
    out.push(a);
  }
  return out;
}

/** Sends each attacker's RRQ, again every 200 ms to those not answered yet (as a client does: the kernel drops a burst past the receive buffer). */
async function sendUntilAnswered(
  attackers: Attacker[],
  port: number,
  options: TftpOption[],
  ms: number,
): Promise<void> {
  const req = encodeRequest('RRQ', 'images/rhvh/vmlinuz', 'octet', options);
  const end = Date.now() + ms;
  for (;;) {
    const waiting = attackers.filter((a) => a.first === undefined);
    if (!waiting.length) return;
    if (Date.now() > end) throw new Error(`${waiting.length} attackers unanswered after ${ms} ms`);
    for (const a of waiting) a.sock.send(req, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
  }
}

const optionsOf = (m: Buffer | undefined): TftpOption[] | undefined => {
  const p = m && parsePacket(m);
  return p && p.ok && p.packet.op === 'OACK' ? p.packet.options : undefined;
};

test('640 RRQs with timeout=255 from 80 addresses: no OACK grants 255 s, a real client still gets its file, the slots drain', async (t) => {
  // The shipped defaults (src/config.ts): 600 slots, 8 per client address; a short hold cap so the drain is seen quickly.
  const { srv, port, events } = await serve({ maxTransfers: 600, maxPerClient: 8, maxTransferSec: 6 });
  const options = [
    { name: 'timeout', value: '255' },
    { name: 'tsize', value: '0' },
  ];
  const attacking = await openAttackers(640, 80);
  t.after(() => {
    for (const a of attacking) a.sock.close();
  });
  await sendUntilAnswered(attacking, port, options, 10_000);
  const oacks = attacking.map((a) => optionsOf(a.first)).filter((o) => o !== undefined);
  assert.ok(oacks.length >= 590, `most attackers got a slot (${oacks.length})`);
  for (const o of oacks) {
    assert.equal(
      o.find((x) => x.name === 'timeout'),
      undefined,
      'timeout=255 is left out of the OACK (RFC 2349: it cannot be lowered)',
    );
    assert.equal(o.find((x) => x.name === 'tsize')?.value, String(tree.files['images/rhvh/vmlinuz']!.length));
  }
  assert.ok(srv.activeTransfers() <= 600);
  // Every attacker has been silent for at least the eviction threshold (1 s) once this has passed.
  await new Promise((r) => setTimeout(r, 1200));
  const out = mkdtempSync(path.join(tmpdir(), 'rb-tftp-dl-'));
  try {
    if (await have('tftp')) {
      const started = Date.now();
      const r = await run(
        'tftp',
        ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', 'images/rhvh/vmlinuz', path.join(out, 'hpa')],
        { timeoutMs: 30_000 },
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(
        sha(readFileSync(path.join(out, 'hpa'))),
        sha(tree.files['images/rhvh/vmlinuz']!),
        'tftp-hpa got the whole file during the attack',
      );
      t.diagnostic(`tftp-hpa during the attack: ${Date.now() - started} ms`);
    } else t.diagnostic('tftp-hpa missing: the scripted client only');
    const own = await tftpGet(port, 'small.bin', { options: [{ name: 'blksize', value: '1428' }] });
    assert.deepEqual(own.data, tree.files['small.bin'], 'a second legitimate client is served too');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  assert.ok(srv.evictions() >= 1, 'the legitimate requests took slots from silent attackers');
  const evicted = events.filter((e) => /slot given to a new request/.test(e.error ?? ''));
  assert.ok(evicted.length >= 1);
  // No slot is held past maxTransferSec, whatever the client asked.
  await waitFor(() => srv.activeTransfers() === 0, 12_000, 'all attack transfers freed');
});

test('a transfer is ended after maxTransferSec even while its client keeps ACKing slowly', async () => {
  const { srv, port, events } = await serve({ maxTransferSec: 0.5 });
  const r = await tftpGet(port, 'images/rhvh/vmlinuz', { ackDelayMs: 20, timeoutMs: 5000 });
  assert.match(r.error?.message ?? '', /still running after 0.5 s/);
  assert.ok(r.data.length < tree.files['images/rhvh/vmlinuz']!.length);
  await waitFor(() => srv.activeTransfers() === 0, 2000, 'slot freed');
  assert.match(events.at(-1)?.error ?? '', /limit per transfer/);
});

test('timeout=10 is honoured, timeout=11 falls back to the server default', async () => {
  const { port } = await serve();
  const ten = await tftpGet(port, 'small.bin', { options: [{ name: 'timeout', value: '10' }] });
  assert.deepEqual(ten.oack, [{ name: 'timeout', value: '10' }]);
  const eleven = await tftpGet(port, 'small.bin', {
    options: [
      { name: 'timeout', value: '11' },
      { name: 'blksize', value: '1024' },
    ],
  });
  assert.deepEqual(eleven.oack, [{ name: 'blksize', value: '1024' }]);
  assert.deepEqual(eleven.data, tree.files['small.bin']);
});

test('a client that ACKs is never evicted: a full table refuses the newcomer instead', async () => {
  const { srv, port } = await serve({ maxTransfers: 1, evictSilentMs: 1000 });
  let refused: { code: number; message: string } | undefined;
  let asked = false;
  const r = await tftpGet(port, 'images/rhvh/vmlinuz', {
    ackDelayMs: 2,
    onData: (block) => {
      if (block === 50 && !asked) {
        asked = true;
        void tftpGet(port, 'small.bin', { host: '127.0.0.1' }).then((x) => {
          refused = x.error;
        });
      }
    },
  });
  assert.deepEqual(r.data, tree.files['images/rhvh/vmlinuz'], 'the active transfer finished');
  await waitFor(() => refused !== undefined, 3000, 'newcomer answered');
  assert.match(refused!.message, /server busy/);
  assert.equal(srv.evictions(), 0);
});
