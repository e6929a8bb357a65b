import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  ackBlock,
  DEFAULT_LIMITS,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodeRequest,
  negotiateOptions,
  normalizeRequestPath,
  parsePacket,
  type TftpOption,
} from '../../src/tftp/protocol.ts';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/tftp/${name}`, import.meta.url));
const opt = (name: string, value: string): TftpOption => ({ name, value });

test('golden firmware requests parse to the options each firmware asked for', () => {
  const table: [string, string, TftpOption[]][] = [
    ['pxelinux-loader.rrq', 'pxelinux.0', [opt('blksize', '1432'), opt('tsize', '0')]],
    ['pxelinux-ldlinux.rrq', 'ldlinux.c32', [opt('tsize', '0'), opt('blksize', '1408')]],
    ['pxelinux-cfg-mac.rrq', 'pxelinux.cfg/01-52-54-00-12-34-56', [opt('tsize', '0'), opt('blksize', '1408')]],
    ['pxelinux-initrd.rrq', 'images/rhvh-e2e/initrd.img', [opt('tsize', '0'), opt('blksize', '1408')]],
    [
      'edk2-probe.rrq',
      'boot/grub/x86_64-efi/core.efi',
      [opt('tsize', '0'), opt('blksize', '1468'), opt('windowsize', '4')],
    ],
    ['edk2-retry.rrq', 'boot/grub/x86_64-efi/core.efi', [opt('blksize', '1468'), opt('windowsize', '4')]],
    ['grub-module.rrq', '/boot/grub/x86_64-efi/normal.mod', [opt('blksize', '1024'), opt('tsize', '0')]],
    ['grub-cfg-mac.rrq', '/boot/grub/grub.cfg-01-52-54-00-12-34-56', [opt('blksize', '1024'), opt('tsize', '0')]],
    ['grub-initrd.rrq', '/images/rhvh-e2e/initrd.img', [opt('blksize', '1024'), opt('tsize', '0')]],
  ];
  for (const [file, filename, options] of table) {
    const bytes = fixture(file);
    const r = parsePacket(bytes);
    assert.ok(r.ok, file);
    assert.deepEqual(r.packet, { op: 'RRQ', filename, mode: 'octet', options }, file);
    // Re-encoding reproduces the firmware's bytes exactly.
    assert.deepEqual(encodeRequest('RRQ', filename, 'octet', options), bytes, file);
  }
});

test('golden requests negotiate what dnsmasq-era firmware expects', () => {
  const size = 123456;
  const probe = parsePacket(fixture('edk2-probe.rrq'));
  assert.ok(probe.ok && probe.packet.op === 'RRQ');
  const n = negotiateOptions(probe.packet.options, size);
  assert.deepEqual(n.oack, [opt('tsize', '123456'), opt('blksize', '1468'), opt('windowsize', '4')]);
  assert.equal(n.blksize, 1468);
  assert.equal(n.windowsize, 4);
  const grub = parsePacket(fixture('grub-module.rrq'));
  assert.ok(grub.ok && grub.packet.op === 'RRQ');
  assert.deepEqual(negotiateOptions(grub.packet.options, 7).oack, [opt('blksize', '1024'), opt('tsize', '7')]);
  assert.deepEqual(normalizeRequestPath(grub.packet.filename), { ok: true, path: 'boot/grub/x86_64-efi/normal.mod' });
});

test('round trips of every packet type', () => {
  const cases = [
    encodeRequest('RRQ', 'a/b.c', 'octet', [opt('blksize', '1400')]),
    encodeRequest('WRQ', 'x', 'netascii'),
    encodeData(65535, Buffer.from('hello')),
    encodeData(0, Buffer.alloc(0)),
    encodeAck(0),
    encodeAck(65535),
    encodeError(5, 'unknown transfer ID'),
    encodeOack([opt('tsize', '99'), opt('blksize', '8')]),
  ];
  const expected = [
    { op: 'RRQ', filename: 'a/b.c', mode: 'octet', options: [opt('blksize', '1400')] },
    { op: 'WRQ', filename: 'x', mode: 'netascii', options: [] },
    { op: 'DATA', block: 65535, data: Buffer.from('hello') },
    { op: 'DATA', block: 0, data: Buffer.alloc(0) },
    { op: 'ACK', block: 0 },
    { op: 'ACK', block: 65535 },
    { op: 'ERROR', code: 5, message: 'unknown transfer ID' },
    { op: 'OACK', options: [opt('tsize', '99'), opt('blksize', '8')] },
  ];
  cases.forEach((bytes, i) => {
    const r = parsePacket(bytes);
    assert.ok(r.ok, `case ${i}`);
    assert.deepEqual(r.packet, expected[i]);
  });
  assert.deepEqual([...encodeAck(0x1234)], [0, 4, 0x12, 0x34]);
  assert.deepEqual([...encodeError(1, 'x')], [0, 5, 0, 1, 0x78, 0]);
  assert.equal(ackBlock(encodeAck(4660)), 4660);
  assert.equal(ackBlock(encodeData(1, Buffer.alloc(1))), -1);
  assert.equal(ackBlock(Buffer.from([0, 4, 1])), -1);
});

test('malformed packets give a reason, never an exception', () => {
  const bad: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([0])],
    ['bad opcode', Buffer.from([0, 9, 1, 2])],
    ['opcode 0', Buffer.from([0, 0])],
    ['RRQ no NUL', Buffer.from('\x00\x01file', 'latin1')],
    ['RRQ no mode', Buffer.from('\x00\x01file\x00', 'latin1')],
    ['RRQ mode no NUL', Buffer.from('\x00\x01file\x00octet', 'latin1')],
    ['RRQ empty filename', Buffer.from('\x00\x01\x00octet\x00', 'latin1')],
    ['RRQ empty option name', Buffer.from('\x00\x01f\x00octet\x00\x00x\x00', 'latin1')],
    [
      'RRQ huge',
      Buffer.concat([Buffer.from('\x00\x01f\x00octet\x00', 'latin1'), Buffer.alloc(5000, 0x41), Buffer.from([0])]),
    ],
    [
      'RRQ too many options',
      Buffer.concat([Buffer.from('\x00\x01f\x00octet\x00', 'latin1'), Buffer.from('a\x001\x00'.repeat(100), 'latin1')]),
    ],
    ['ACK short', Buffer.from([0, 4, 0])],
    ['DATA short', Buffer.from([0, 3, 0])],
    ['ERROR short', Buffer.from([0, 5, 0])],
  ];
  for (const [name, b] of bad) {
    const r = parsePacket(b);
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.ok(r.reason.length > 0);
  }
  // Lenient where real clients are sloppy: ERROR without NUL, option name without value.
  const e = parsePacket(Buffer.from('\x00\x05\x00\x08abort', 'latin1'));
  assert.deepEqual(e.ok && e.packet, { op: 'ERROR', code: 8, message: 'abort' });
  const odd = parsePacket(Buffer.from('\x00\x01f\x00OCTET\x00tsize\x00', 'latin1'));
  assert.deepEqual(odd.ok && odd.packet, { op: 'RRQ', filename: 'f', mode: 'octet', options: [] });
});

test('random bytes never throw from the parser', () => {
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.alloc(rnd() % 64);
    for (let j = 0; j < b.length; j++) b[j] = rnd();
    if (b.length >= 2 && i % 2 === 0) {
      b[0] = 0;
      b[1] = rnd() % 7;
    }
    parsePacket(b);
  }
});

test('option negotiation table', () => {
  const L = DEFAULT_LIMITS;
  type Row = [
    string,
    TftpOption[],
    Partial<typeof L>,
    { blksize: number; windowsize: number; timeoutMs: number; oack: TftpOption[] },
  ];
  const rows: Row[] = [
    ['no options: RFC 1350 defaults, no OACK', [], {}, { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] }],
    [
      'tftp-hpa unknown option ignored',
      [opt('foo', '1')],
      {},
      { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] },
    ],
    ['blksize below 8 ignored', [opt('blksize', '7')], {}, { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] }],
    [
      'blksize 8 accepted',
      [opt('blksize', '8')],
      {},
      { blksize: 8, windowsize: 1, timeoutMs: 1000, oack: [opt('blksize', '8')] },
    ],
    [
      'blksize above 65464 clamped',
      [opt('blksize', '70000')],
      {},
      { blksize: 65464, windowsize: 1, timeoutMs: 1000, oack: [opt('blksize', '65464')] },
    ],
    [
      'blksize clamped to path MTU',
      [opt('blksize', '9000')],
      { maxBlksize: 1468 },
      { blksize: 1468, windowsize: 1, timeoutMs: 1000, oack: [opt('blksize', '1468')] },
    ],
    [
      'blksize non-numeric ignored',
      [opt('blksize', '1k')],
      {},
      { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] },
    ],
    [
      'tsize answered with the real size',
      [opt('tsize', '0')],
      {},
      { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [opt('tsize', '4242')] },
    ],
    [
      'timeout 1..255 accepted',
      [opt('timeout', '3')],
      {},
      { blksize: 512, windowsize: 1, timeoutMs: 3000, oack: [opt('timeout', '3')] },
    ],
    ['timeout 0 ignored', [opt('timeout', '0')], {}, { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] }],
    ['timeout 256 ignored', [opt('timeout', '256')], {}, { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] }],
    [
      'timeout 10 (the cap) accepted',
      [opt('timeout', '10')],
      {},
      { blksize: 512, windowsize: 1, timeoutMs: 10000, oack: [opt('timeout', '10')] },
    ],
    [
      'timeout 11 above the cap ignored, other options kept',
      [opt('timeout', '11'), opt('tsize', '0')],
      {},
      { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [opt('tsize', '4242')] },
    ],
    [
      'timeout 255 ignored (slot exhaustion, issue #13)',
      [opt('timeout', '255')],
      {},
      { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] },
    ],
    [
      'timeout cap configurable',
      [opt('timeout', '30')],
      { maxTimeoutSec: 30 },
      { blksize: 512, windowsize: 1, timeoutMs: 30000, oack: [opt('timeout', '30')] },
    ],
    [
      'windowsize accepted',
      [opt('windowsize', '8')],
      {},
      { blksize: 512, windowsize: 8, timeoutMs: 1000, oack: [opt('windowsize', '8')] },
    ],
    ['windowsize 0 ignored', [opt('windowsize', '0')], {}, { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] }],
    [
      'windowsize capped',
      [opt('windowsize', '65535')],
      {},
      { blksize: 512, windowsize: 64, timeoutMs: 1000, oack: [opt('windowsize', '64')] },
    ],
    [
      'window bytes bounded',
      [opt('blksize', '65464'), opt('windowsize', '64')],
      {},
      { blksize: 65464, windowsize: 16, timeoutMs: 1000, oack: [opt('blksize', '65464'), opt('windowsize', '16')] },
    ],
    [
      'first duplicate wins',
      [opt('blksize', '1024'), opt('blksize', '2048')],
      {},
      { blksize: 1024, windowsize: 1, timeoutMs: 1000, oack: [opt('blksize', '1024')] },
    ],
    [
      'default timeout from the server',
      [],
      { defaultTimeoutMs: 250 },
      { blksize: 512, windowsize: 1, timeoutMs: 250, oack: [] },
    ],
  ];
  for (const [name, options, limits, want] of rows) {
    assert.deepEqual(negotiateOptions(options, 4242, { ...L, ...limits }), want, name);
  }
});

test('request path normalisation', () => {
  const rows: [string, ReturnType<typeof normalizeRequestPath>][] = [
    ['pxelinux.0', { ok: true, path: 'pxelinux.0' }],
    ['/boot/grub/grub.cfg', { ok: true, path: 'boot/grub/grub.cfg' }],
    ['\\boot\\x86\\pxelinux.0', { ok: true, path: 'boot/x86/pxelinux.0' }],
    ['a//b///c', { ok: true, path: 'a/b/c' }],
    ['./a/./b', { ok: true, path: 'a/b' }],
    ['../etc/passwd', { ok: false, reason: "'..' in path" }],
    ['a/../../etc/passwd', { ok: false, reason: "'..' in path" }],
    ['..\\..\\etc\\passwd', { ok: false, reason: "'..' in path" }],
    ['a/..', { ok: false, reason: "'..' in path" }],
    ['...', { ok: true, path: '...' }],
    ['/', { ok: false, reason: 'empty path' }],
  ];
  for (const [raw, want] of rows) assert.deepEqual(normalizeRequestPath(raw), want, raw);
});
