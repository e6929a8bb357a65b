// Fuzz: 100,000+ random and mutated packets at the request port and at live transfer ports. The server
// must drop them (one debug line each, no error logs), keep live transfers intact and serve afterwards.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest } from '../../src/tftp/protocol.ts';
import { startTftpServer, type TftpTransferEvent } from '../../src/tftp/server.ts';
import { staticFileSource } from '../../src/tftp/static.ts';
import { have, makeTree, run, sha, tftpGet } from '../fixtures/tftp/harness.ts';

const tree = makeTree();
after(() => rmSync(tree.root, { recursive: true, force: true }));

let seed = Number(process.env.TFTP_FUZZ_SEED ?? 20240601);
const rnd = (n: number): number => {
  // xorshift32: reproducible from the seed printed in the test output
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const randomBytes = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rnd(256);
  return b;
};

const fixtures = readdirSync(new URL('../fixtures/tftp/', import.meta.url))
  .filter((f) => f.endsWith('.rrq'))
  .map((f) => readFileSync(new URL(`../fixtures/tftp/${f}`, import.meta.url)));
const seeds: Buffer[] = [
  ...fixtures,
  encodeRequest('RRQ', 'small.bin', 'octet', [
    { name: 'blksize', value: '1468' },
    { name: 'windowsize', value: '8' },
    { name: 'tsize', value: '0' },
  ]),
  encodeRequest('RRQ', 'images/rhvh/vmlinuz', 'netascii', [{ name: 'tsize', value: '0' }]),
  encodeRequest('WRQ', 'x', 'octet'),
  encodeAck(1),
  encodeAck(65535),
  encodeData(1, Buffer.from('data')),
  encodeError(8, 'abort'),
  encodeOack([{ name: 'blksize', value: '512' }]),
];

// A client may legally ask for a 255 s timeout and hold its transfer that long; the fuzz keeps honoured
// timeouts at 1 s so every transfer it starts is gone within seconds and a leak shows as a nonzero count.
const TIMEOUTS = ['0', '1', '256', '300', 'abc', '-1', ''];

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (rnd(8)) {
    case 0: // bit flips
      for (let i = rnd(4) + 1; i > 0 && out.length; i--) out[rnd(out.length)]! ^= 1 << rnd(8);
      return out;
    case 1: // truncate
      return out.subarray(0, rnd(out.length + 1));
    case 2: // replace bytes with NUL or 0xff
      for (let i = rnd(4) + 1; i > 0 && out.length; i--) out[rnd(out.length)] = rnd(2) ? 0 : 0xff;
      return out;
    case 3: {
      // insert random bytes
      const at = rnd(out.length + 1);
      return Buffer.concat([out.subarray(0, at), randomBytes(rnd(32) + 1), out.subarray(at)]);
    }
    case 4: // huge option lists
      return Buffer.concat([
        out,
        Buffer.from('opt\x00' + '9'.repeat(rnd(10)) + '\x00', 'latin1')
          .fill(0x61, 0, 3)
          .subarray(0, 0),
        Buffer.from(Array.from({ length: rnd(400) }, (_, i) => `o${i}\x00${i}\x00`).join(''), 'latin1'),
      ]);
    case 5: // opcode swap
      if (out.length >= 2) out[1] = rnd(8);
      return out;
    case 6: // option values out of range
      return Buffer.concat([
        out.subarray(0, Math.max(2, out.indexOf(0, 2) + 1)),
        Buffer.from(
          `octet\x00blksize\x00${['0', '7', '65465', '99999999999', '-1', '', 'abc'][rnd(7)]}\x00windowsize\x00${rnd(70000)}\x00timeout\x00${TIMEOUTS[rnd(TIMEOUTS.length)]}\x00`,
          'latin1',
        ),
      ]);
    default: // duplicate the packet into itself
      return Buffer.concat([out, out]).subarray(0, 2048 + rnd(2000));
  }
}

function nextPacket(): Buffer {
  const k = rnd(10);
  if (k < 3) return randomBytes(rnd(k === 0 ? 4 : 700));
  if (k < 4) return Buffer.concat([Buffer.from([0, rnd(7)]), randomBytes(rnd(64))]);
  return mutate(seeds[rnd(seeds.length)]!);
}

test('100,000+ random and mutated packets: no crash, no error logs, live transfers intact, serves afterwards', async (t) => {
  t.diagnostic(`seed ${seed} (TFTP_FUZZ_SEED to replay)`);
  let debugLines = 0;
  let errorLines = 0;
  let infoLines = 0;
  const stats = new Map<string, number>();
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        const lvl = (JSON.parse(line) as { level: number }).level;
        if (lvl === 20) debugLines++;
        if (process.env.FUZZ_STATS) {
          const m = (JSON.parse(line) as { msg: string }).msg;
          stats.set(m, (stats.get(m) ?? 0) + 1);
        }
        if (lvl === 30) infoLines++;
        if (lvl >= 50) errorLines++;
      }
      cb();
    },
  });
  const events: TftpTransferEvent[] = [];
  const srv = await startTftpServer({
    address: '127.0.0.1',
    port: 0,
    files: staticFileSource(tree.root),
    log: createLogger({ level: 'debug', destination: sink }),
    retries: 1,
    defaultTimeoutSec: 0.1,
    maxTransfers: 200,
    maxPerClient: 200,
    onTransfer: (e) => events.push(e),
  });
  const fuzzers: dgram.Socket[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      s.on('message', () => {});
      fuzzers.push(s);
    }
    // Live transfer ports: learn them from replies, then aim part of the fuzz at them.
    const livePorts: number[] = [];
    for (const s of fuzzers)
      s.on('message', (_m, r) => {
        if (r.port !== srv.port && !livePorts.includes(r.port)) livePorts.push(r.port);
      });

    // A genuine slow transfer runs throughout; strangers and its own peer port are fuzzed.
    let sent = 0;
    const fire = async (count: number, target: () => number, from: () => dgram.Socket): Promise<void> => {
      for (let i = 0; i < count; i++) {
        from().send(nextPacket(), target(), '127.0.0.1');
        sent++;
        if (i % 20 === 19) await new Promise((r) => setImmediate(r));
      }
    };
    const genuinePeerGarbage: Buffer[] = [];
    let genuinePort: number | undefined;
    let genuineDone = false;
    const genuine = tftpGet(srv.port, 'images/rhvh/vmlinuz', {
      options: [
        { name: 'blksize', value: '512' },
        { name: 'windowsize', value: '4' },
        { name: 'timeout', value: '2' },
      ],
      ackDelayMs: 40,
      onData: (block, sock, serverPort) => {
        if (block % 16 === 0) {
          // Garbage from the real peer's own port: must be dropped by the session, not end it.
          for (const g of [
            Buffer.alloc(0),
            Buffer.from([0]),
            randomBytes(3),
            Buffer.from([0, 3, 1, 2, 3]),
            Buffer.from([0, 9, 0, 0]),
            Buffer.from([0, 1, 0x41, 0]),
          ]) {
            sock.send(g, serverPort, '127.0.0.1');
            genuinePeerGarbage.push(g);
          }
          genuinePort = serverPort;
        }
      },
    });
    const pick = (): dgram.Socket => fuzzers[rnd(fuzzers.length)]!;
    void genuine.finally(() => {
      genuineDone = true;
    });
    // Both streams at once, so the genuine transfer and fuzz-started transfers are alive while hit.
    const recentLive = (): number => livePorts[livePorts.length - 1 - rnd(Math.min(8, livePorts.length))]!;
    await Promise.all([
      fire(60000, () => srv.port, pick),
      fire(
        45000,
        () => (genuinePort && !genuineDone && rnd(2) ? genuinePort : livePorts.length ? recentLive() : srv.port),
        pick,
      ),
    ]);
    const g = await genuine;
    assert.equal(sha(g.data), sha(tree.files['images/rhvh/vmlinuz']!), 'genuine transfer under fuzz');
    assert.ok(genuinePeerGarbage.length > 0);
    assert.ok(sent >= 100000);
    t.diagnostic(
      `sent ${sent} fuzz packets, ${livePorts.length} live ports seen, ${events.length} transfer events, ${debugLines} debug and ${infoLines} info lines`,
    );

    // Transfers the fuzz started die by timeout (retries 1 x 0.1 s); then the server must be idle and serve.
    const end = Date.now() + 10000;
    while (srv.activeTransfers() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal(srv.activeTransfers(), 0);
    const after = await tftpGet(srv.port, 'exact512.bin', { options: [{ name: 'tsize', value: '0' }] });
    assert.deepEqual(after.data, tree.files['exact512.bin']);
    if (await have('curl')) {
      const r = await run('curl', [
        '-sS',
        '--tftp-blksize',
        '1468',
        `tftp://127.0.0.1:${srv.port}/images/rhvh/vmlinuz`,
      ]);
      assert.equal(r.code, 0);
    }
    if (process.env.FUZZ_STATS) t.diagnostic(JSON.stringify([...stats]));
    assert.equal(errorLines, 0, 'no error-level log lines');
    assert.ok(debugLines > 10000, `dropped packets are logged at debug (${debugLines})`);
  } finally {
    for (const s of fuzzers) s.close();
    await srv.close();
  }
});
