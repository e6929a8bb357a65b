import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { encodeAck, encodeError, parsePacket, type TftpOption } from '../../src/tftp/protocol.ts';
import { TransferSession, type SessionOutcome, type SessionParams, type TftpFile } from '../../src/tftp/session.ts';

/** A session wired to a fake clock: every packet it sends is recorded, time moves only when told. */
function harness(file: TftpFile, p: Partial<SessionParams> = {}) {
  let clock = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 1;
  const sent: Buffer[] = [];
  const outcomes: SessionOutcome[] = [];
  const s = new TransferSession(
    { file, blksize: 512, windowsize: 1, timeoutMs: 1000, retries: 3, oack: [], ...p },
    {
      send: (buf, len) => sent.push(Buffer.from(buf.subarray(0, len))),
      now: () => clock,
      timers: {
        set: (fn, ms) => {
          const id = nextId++;
          timers.push({ at: clock + ms, fn, id });
          return id;
        },
        clear: (h) => {
          timers = timers.filter((t) => t.id !== h);
        },
      },
    },
    (o) => outcomes.push(o),
  );
  const advance = (ms: number): void => {
    const end = clock + ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at);
      const t = timers[0];
      if (!t || t.at > end) break;
      timers.shift();
      clock = t.at;
      t.fn();
    }
    clock = end;
  };
  const take = (): { op: string; block?: number; len?: number; code?: number; options?: TftpOption[] }[] => {
    const out = sent.splice(0).map((b) => {
      const r = parsePacket(b);
      assert.ok(r.ok);
      const pk = r.packet;
      if (pk.op === 'DATA') return { op: 'DATA', block: pk.block, len: pk.data.length };
      if (pk.op === 'ERROR') return { op: 'ERROR', code: pk.code };
      if (pk.op === 'OACK') return { op: 'OACK', options: pk.options };
      return { op: pk.op };
    });
    return out;
  };
  return { s, sent, outcomes, advance, take, ack: (n: number) => s.handle(encodeAck(n)) };
}

const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

test('no options: lockstep DATA from block 1, a 512-multiple ends with an empty block', () => {
  const h = harness({ size: 1024, data: bytes(1024) });
  h.s.start();
  assert.deepEqual(h.take(), [{ op: 'DATA', block: 1, len: 512 }]);
  h.ack(1);
  assert.deepEqual(h.take(), [{ op: 'DATA', block: 2, len: 512 }]);
  h.ack(2);
  assert.deepEqual(h.take(), [{ op: 'DATA', block: 3, len: 0 }]);
  assert.equal(h.outcomes.length, 0);
  h.ack(3);
  assert.deepEqual(h.outcomes, [{ kind: 'sent' }]);
  assert.equal(h.s.bytesAcked, 1024);
});

test('OACK first, then a window of blocks after ACK 0; payload is byte-identical', () => {
  const data = bytes(5000);
  const oack = [
    { name: 'tsize', value: '5000' },
    { name: 'blksize', value: '1000' },
    { name: 'windowsize', value: '4' },
  ];
  const h = harness({ size: 5000, data }, { blksize: 1000, windowsize: 4, oack });
  h.s.start();
  assert.deepEqual(h.take(), [{ op: 'OACK', options: oack }]);
  h.ack(0);
  const got: Buffer[] = [];
  const grab = () =>
    h.sent.splice(0).map((b) => {
      got.push(b.subarray(4));
      return b.readUInt16BE(2);
    });
  assert.deepEqual(grab(), [1, 2, 3, 4]);
  h.ack(4);
  assert.deepEqual(grab(), [5, 6]);
  h.ack(6);
  assert.deepEqual(h.outcomes, [{ kind: 'sent' }]);
  assert.deepEqual(Buffer.concat(got), data);
});

test("duplicate ACKs never resend (sorcerer's apprentice)", () => {
  const h = harness({ size: 4096, data: bytes(4096) });
  h.s.start();
  h.ack(1);
  assert.equal(h.take().length, 2); // DATA 1, DATA 2
  // A late duplicate of ACK 1 (the client re-acked after a delay) must not trigger a second DATA 2.
  h.ack(1);
  h.ack(1);
  h.ack(0);
  assert.deepEqual(h.take(), []);
  assert.equal(h.s.duplicateAcks, 3);
  h.ack(2);
  assert.deepEqual(h.take(), [{ op: 'DATA', block: 3, len: 512 }]);
});

test('an ACK inside the window restarts the window after it (RFC 7440)', () => {
  const h = harness(
    { size: 512 * 20, data: bytes(512 * 20) },
    { windowsize: 4, oack: [{ name: 'windowsize', value: '4' }] },
  );
  h.s.start();
  h.take();
  h.ack(0);
  assert.deepEqual(
    h.take().map((p) => p.block),
    [1, 2, 3, 4],
  );
  h.ack(2); // client lost block 3
  assert.deepEqual(
    h.take().map((p) => p.block),
    [3, 4, 5, 6],
  );
  h.ack(2); // duplicate: ignored
  assert.deepEqual(h.take(), []);
  h.ack(6);
  assert.deepEqual(
    h.take().map((p) => p.block),
    [7, 8, 9, 10],
  );
});

test('block numbers roll over past 65535 to 0 and the transfer completes', () => {
  const size = 8 * 65536 + 20; // blocks 1..65539 at blksize 8 (the last one 4 bytes)
  const data = bytes(size);
  const h = harness({ size, data }, { blksize: 8, windowsize: 16 });
  h.s.start();
  const chunks: Buffer[] = [];
  const wire: number[] = [];
  let last = 0;
  while (h.outcomes.length === 0) {
    for (const b of h.sent.splice(0)) {
      wire.push(b.readUInt16BE(2));
      chunks.push(b.subarray(4));
      last = b.readUInt16BE(2);
    }
    h.ack(last);
  }
  assert.deepEqual(h.outcomes, [{ kind: 'sent' }]);
  assert.deepEqual(Buffer.concat(chunks), data);
  assert.equal(wire.length, 65539);
  assert.deepEqual(wire.slice(65533, 65539), [65534, 65535, 0, 1, 2, 3]);
});

test('retransmits on timeout with backoff, then ERROR to the client and a failed outcome', () => {
  const h = harness({ size: 100, data: bytes(100) }, { timeoutMs: 1000, retries: 3 });
  h.s.start();
  assert.equal(h.take().length, 1);
  h.advance(999);
  assert.deepEqual(h.take(), []);
  h.advance(1); // t=1000: first retransmit
  assert.deepEqual(h.take(), [{ op: 'DATA', block: 1, len: 100 }]);
  h.advance(1999);
  assert.deepEqual(h.take(), []);
  h.advance(1); // +2000: second
  assert.equal(h.take().length, 1);
  h.advance(4000); // +4000: third
  assert.equal(h.take().length, 1);
  assert.equal(h.outcomes.length, 0);
  h.advance(8000); // gives up
  assert.deepEqual(h.take(), [{ op: 'ERROR', code: 0 }]);
  assert.equal(h.outcomes.length, 1);
  assert.equal(h.outcomes[0]!.kind, 'failed');
  assert.match((h.outcomes[0] as { error: string }).error, /timeout/);
  assert.equal(h.s.retransmits, 3);
});

test('progress resets the retry count and interval', () => {
  const h = harness({ size: 2048, data: bytes(2048) }, { timeoutMs: 100, retries: 1 });
  h.s.start();
  h.advance(100); // one retransmit used
  assert.equal(h.take().length, 2);
  h.ack(1);
  h.take();
  h.advance(150); // would fail if the retry count had not been reset
  assert.equal(h.outcomes.length, 0);
  assert.deepEqual(h.take(), [{ op: 'DATA', block: 2, len: 512 }]);
});

test('OACK is retransmitted, and ERROR 8 after it is a size probe (EDK2)', () => {
  const oack = [{ name: 'tsize', value: '3' }];
  const h = harness({ size: 3, data: bytes(3) }, { oack, timeoutMs: 500 });
  h.s.start();
  h.advance(500);
  assert.deepEqual(h.take(), [
    { op: 'OACK', options: oack },
    { op: 'OACK', options: oack },
  ]);
  h.s.handle(encodeError(8, 'user abort'));
  assert.deepEqual(h.outcomes, [{ kind: 'probe' }]);
  h.advance(10000);
  assert.deepEqual(h.take(), []); // no retransmits, no ERROR back
});

test('ERROR from the client during data is a failure, not a probe', () => {
  const h = harness({ size: 3000, data: bytes(3000) });
  h.s.start();
  h.ack(1);
  h.s.handle(encodeError(0, 'disk full'));
  assert.equal(h.outcomes[0]!.kind, 'failed');
});

test('garbage from the peer is dropped with a reason and changes nothing', () => {
  const h = harness({ size: 3000, data: bytes(3000) });
  h.s.start();
  h.take();
  for (const g of [
    Buffer.alloc(0),
    Buffer.from([0]),
    Buffer.from([0, 3, 0, 1, 9]),
    Buffer.from([0, 1, 0x41]),
    Buffer.from([9, 9, 9, 9]),
  ]) {
    assert.equal(typeof h.s.handle(g), 'string');
  }
  assert.deepEqual(h.take(), []);
  assert.equal(h.outcomes.length, 0);
  h.ack(1);
  assert.deepEqual(h.take(), [{ op: 'DATA', block: 2, len: 512 }]);
});

test('stream source in small chunks: blocks wait for data and come out byte-identical', async () => {
  const data = bytes(10000);
  const pieces = [] as Buffer[];
  for (let i = 0; i < data.length; i += 333) pieces.push(data.subarray(i, i + 333));
  const h = harness({ size: data.length, open: () => Readable.from(pieces) }, { blksize: 1024, windowsize: 3 });
  h.s.start();
  const got: Buffer[] = [];
  let guard = 0;
  while (h.outcomes.length === 0 && guard++ < 1000) {
    await new Promise((r) => setImmediate(r));
    const pk = h.sent.splice(0);
    for (const b of pk) got.push(b.subarray(4));
    if (pk.length) h.ack(pk[pk.length - 1]!.readUInt16BE(2));
  }
  assert.deepEqual(h.outcomes, [{ kind: 'sent' }]);
  assert.deepEqual(Buffer.concat(got), data);
});

test('a file shorter than its announced size fails with ERROR to the client', async () => {
  const h = harness({ size: 2000, open: () => Readable.from([bytes(700)]) });
  h.s.start();
  for (let i = 0; i < 5 && h.outcomes.length === 0; i++) {
    await new Promise((r) => setImmediate(r));
    const pk = h.sent.splice(0);
    if (pk.length && pk[pk.length - 1]![1] === 3) h.ack(pk[pk.length - 1]!.readUInt16BE(2));
  }
  assert.equal(h.outcomes[0]?.kind, 'failed');
  assert.match((h.outcomes[0] as { error: string }).error, /shorter/);
});

test('a client that ACKs every block but the last (a loader jumping into the kernel) counts as delivered after two retransmits', () => {
  const h = harness({ size: 1500, data: bytes(1500) });
  h.s.start();
  assert.deepEqual(
    h.take().map((p) => p.block),
    [1],
  );
  h.ack(1);
  h.ack(2);
  assert.deepEqual(
    h.take().map((p) => p.block),
    [2, 3],
  );
  h.advance(1000); // first retransmit of the final block
  h.advance(2000); // second
  assert.deepEqual(
    h.take().map((p) => p.block),
    [3, 3],
  );
  assert.equal(h.outcomes.length, 0);
  h.advance(4000);
  assert.deepEqual(
    h.outcomes.map((o) => o.kind),
    ['sent'],
  );
  assert.deepEqual(h.take(), [], 'no ERROR sent to a client that has everything');
});

test('a client silent in the middle of a file still fails after all retries', () => {
  const h = harness({ size: 1500, data: bytes(1500) });
  h.s.start();
  h.take();
  h.ack(1);
  h.advance(60_000);
  assert.equal(h.outcomes[0]?.kind, 'failed');
});
