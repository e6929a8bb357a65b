import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodePacket,
  encodePacket,
  maxReplySize,
  Opt,
  optStr,
  parseEncap,
  type DhcpPacket,
} from '../../src/dhcp/packet.ts';
import { classifyClient, clientMac } from '../../src/dhcp/pxe.ts';
import { fixture, fixtureDir, mkReq, macBytes } from '../fixtures/dhcp/helpers.ts';

const index = JSON.parse(readFileSync(join(fixtureDir, 'index.json'), 'utf8')) as { file: string; srcPort: number }[];

const str = (p: DhcpPacket, c: number) => {
  const v = p.options.get(c);
  return v && Buffer.from(v).toString('latin1');
};

test('every captured packet decodes; requests come from port 68, replies are BOOTREPLY', () => {
  assert.equal(index.length, 28);
  for (const e of index) {
    const r = decodePacket(fixture(e.file));
    assert.ok(r.ok, `${e.file}: ${!r.ok && r.reason}`);
    assert.equal(r.packet.op, e.srcPort === 68 ? 1 : 2, e.file);
    assert.equal(clientMac(r.packet), '52:54:00:12:34:56');
  }
});

test('golden: SeaBIOS+iPXE DISCOVER', () => {
  const r = decodePacket(fixture('dhcp-seabios-ipxe-and-udhcpc-01.bin'));
  assert.ok(r.ok);
  const p = r.packet;
  assert.equal(p.options.get(Opt.MessageType)![0], 1);
  assert.equal(str(p, 60), 'PXEClient:Arch:00000:UNDI:002001');
  assert.equal(str(p, 77), 'iPXE');
  assert.deepEqual([...p.options.get(93)!], [0, 0]);
  assert.deepEqual([...p.options.get(57)!], [0x05, 0xc0]);
  assert.equal(maxReplySize(p), 1472 - 28); // option 57 counts IP+UDP headers
  assert.equal(p.options.get(97)!.length, 17);
  // iPXE's option 175 carries its feature sub-options (176.. etc.)
  const enc = parseEncap(p.options.get(175)!);
  assert.ok(enc && enc.has(0xeb), 'iPXE encapsulated options parse');
  const c = classifyClient(p);
  assert.deepEqual(
    { pxe: c.pxe, ipxe: c.ipxe, arch: c.arch, uuid: c.uuid, undi: c.undi, boot: c.bootClient },
    { pxe: true, ipxe: true, arch: 0, uuid: undefined, undi: { major: 2, minor: 1 }, boot: true },
  );
});

test('golden: OVMF DISCOVER (broadcast flag, arch 7) and its REQUEST with option 57 = 65280', () => {
  const d = decodePacket(fixture('dhcp-ovmf-uefi-01.bin'));
  assert.ok(d.ok);
  assert.equal(d.packet.flags, 0x8000);
  const c = classifyClient(d.packet);
  assert.equal(c.arch, 7);
  assert.equal(c.pxe, true);
  assert.equal(c.ipxe, false);
  assert.equal(c.uuid, undefined);
  const q = decodePacket(fixture('dhcp-ovmf-uefi-03.bin'));
  assert.ok(q.ok);
  assert.equal(maxReplySize(q.packet), 1472, 'capped at an Ethernet frame (1500 - 28)');
  assert.equal(str(q.packet, 50) && [...q.packet.options.get(50)!].join('.'), '10.99.0.111');
});

test('golden: udhcpc DISCOVER is not a boot client; dnsmasq replies keep file field and option 67', () => {
  const d = decodePacket(fixture('dhcp-seabios-ipxe-and-udhcpc-05.bin'));
  assert.ok(d.ok);
  const c = classifyClient(d.packet);
  assert.equal(c.bootClient, false);
  assert.equal(c.vendorClass, 'udhcp 1.35.0');
  assert.equal(c.arch, undefined);
  assert.equal(str(d.packet, 12), 'pxelab');
  const off = decodePacket(fixture('dhcp-seabios-ipxe-and-udhcpc-06.bin'));
  assert.ok(off.ok);
  assert.equal(off.packet.file, 'pxelinux.0');
  assert.equal(off.packet.yiaddr, '10.99.0.111');
  assert.equal(off.packet.siaddr, '10.99.0.1');
  const ipxeOffer = decodePacket(fixture('dhcp-ipxe-chainload-02.bin'));
  assert.ok(ipxeOffer.ok);
  assert.equal(str(ipxeOffer.packet, 67), 'http://10.99.0.1:8080/boot.ipxe\0');
});

test('round trip: decode -> encode -> decode keeps header and every option, for all captures', () => {
  for (const e of index) {
    const a = decodePacket(fixture(e.file));
    assert.ok(a.ok);
    const bytes = encodePacket(a.packet, 1500).bytes;
    const b = decodePacket(bytes);
    assert.ok(b.ok, e.file);
    const strip = (p: DhcpPacket) => ({
      ...p,
      options: [...p.options].map(([k, v]) => [k, [...v]]).sort((x, y) => (x[0] as number) - (y[0] as number)),
    });
    assert.deepEqual(strip(b.packet), strip(a.packet), e.file);
  }
});

test('decode refuses bad input with a reason and never throws', () => {
  const good = fixture('dhcp-seabios-ipxe-and-udhcpc-01.bin');
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /shorter than/],
    ['short', good.subarray(0, 239), /shorter than/],
    [
      'no cookie',
      (() => {
        const b = Buffer.from(good);
        b[236] = 0;
        return b;
      })(),
      /magic cookie/,
    ],
    [
      'bad op',
      (() => {
        const b = Buffer.from(good);
        b[0] = 9;
        return b;
      })(),
      /op 9/,
    ],
    [
      'hlen 17',
      (() => {
        const b = Buffer.from(good);
        b[2] = 17;
        return b;
      })(),
      /hlen 17/,
    ],
    ['option overruns', Buffer.concat([good.subarray(0, 240), Buffer.from([60, 200, 1, 2, 3])]), /claims 200 bytes/],
    ['no length byte', Buffer.concat([good.subarray(0, 240), Buffer.from([60])]), /no length byte/],
    ['bad overload', Buffer.concat([good.subarray(0, 240), Buffer.from([52, 1, 7, 255])]), /overload/],
  ];
  for (const [name, bytes, re] of cases) {
    const r = decodePacket(bytes);
    assert.equal(r.ok, false, name);
    assert.match((r as { reason: string }).reason, re, name);
  }
});

test('pad, end, unknown options kept as bytes, repeated options concatenated (RFC 3396)', () => {
  const head = Buffer.from(fixture('dhcp-seabios-ipxe-and-udhcpc-05.bin').subarray(0, 240));
  const opts = Buffer.from([0, 0, 53, 1, 1, 250, 3, 9, 8, 7, 0, 60, 2, 0x61, 0x62, 60, 1, 0x63, 255, 99, 99, 99]);
  const r = decodePacket(Buffer.concat([head, opts]));
  assert.ok(r.ok);
  assert.deepEqual([...r.packet.options.get(250)!], [9, 8, 7]);
  assert.equal(str(r.packet, 60), 'abc');
  assert.equal(r.packet.options.has(99), false, 'nothing after End is read');
});

test('option overload (52): options in file then sname are read; encoder uses them when needed', () => {
  const p = mkReq({ type: 1, mac: '52:54:00:00:00:01' });
  // ~370 bytes of options cannot fit 548 with the 240-byte header: the encoder must spill into file/sname.
  for (let c = 200; c < 203; c++) p.options.set(c, new Uint8Array(100).fill(c));
  p.options.set(210, optStr('x'.repeat(60)));
  p.options.set(211, optStr('y'.repeat(50)));
  const enc = encodePacket(p, 548);
  assert.ok(enc.bytes.length <= 548, `size ${enc.bytes.length}`);
  const r = decodePacket(enc.bytes);
  assert.ok(r.ok);
  const kept = [200, 201, 202, 210, 211].filter((c) => r.packet.options.has(c));
  assert.deepEqual(enc.dropped, []);
  assert.equal(kept.length, 5, `kept ${kept}`);
  assert.equal(r.packet.file, ''); // field used for options
  for (const c of kept) assert.deepEqual([...r.packet.options.get(c)!], [...p.options.get(c)!]);
});

test('long option values are split into 255-byte pieces and joined back', () => {
  const p = mkReq({ type: 1, mac: '52:54:00:00:00:02' });
  p.options.set(
    43,
    new Uint8Array(600).map((_, i) => i & 255),
  );
  const r = decodePacket(encodePacket(p, 1500).bytes);
  assert.ok(r.ok);
  assert.deepEqual([...r.packet.options.get(43)!], [...p.options.get(43)!]);
});

test('encode: 53 and 54 first, 82 last, padded to 300 bytes (BOOTP minimum)', () => {
  const p = mkReq({ type: 2, mac: '52:54:00:00:00:03' });
  p.options = new Map([
    [82, Uint8Array.of(1, 2, 0x61, 0x62)],
    [1, Uint8Array.of(255, 255, 255, 0)],
    [54, Uint8Array.of(10, 0, 0, 1)],
    [53, Uint8Array.of(2)],
  ]);
  const b = encodePacket(p).bytes;
  assert.equal(b.length, 300);
  assert.deepEqual([...b.subarray(240, 246)], [53, 1, 2, 54, 4, 10]);
  const i82 = b.indexOf(82, 250);
  assert.equal(b[i82 + 6], 255, 'option 82 is followed by End');
});

test('non-Ethernet hardware (InfiniBand htype 32, hlen 0) decodes without a MAC', () => {
  const p = mkReq({ type: 1, mac: '00:00:00:00:00:00' });
  p.htype = 32;
  p.hlen = 0;
  p.chaddr = new Uint8Array(16);
  const r = decodePacket(encodePacket(p).bytes);
  assert.ok(r.ok);
  assert.equal(r.packet.htype, 32);
  assert.equal(clientMac(r.packet), undefined);
});

test('macBytes helper sanity', () => assert.equal(macBytes('aa:bb:cc:dd:ee:ff')[5], 0xff));

test('golden: ISC dhclient DISCOVER (captured in the netns test lab): hostname, parameter list, no vendor class', () => {
  const r = decodePacket(fixture('dhcp-dhclient-discover.bin'));
  assert.ok(r.ok);
  const p = r.packet;
  assert.equal(p.options.get(53)![0], 1);
  assert.equal(clientMac(p), '52:54:00:12:34:57');
  assert.equal(p.options.has(60), false);
  assert.deepEqual([...p.options.get(55)!], [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]);
  assert.equal(classifyClient(p).bootClient, false);
  const back = decodePacket(encodePacket(p).bytes);
  assert.ok(back.ok);
  assert.deepEqual([...back.packet.options.keys()].sort(), [...p.options.keys()].sort());
});
