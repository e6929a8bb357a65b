// The respond()/engine table for both modes: every request is real bytes through decode -> lease
// store (in-memory SQLite) -> boot decision -> respond -> encode, and the reply is decoded back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { optIp, optStr, parseEncap } from '../../src/dhcp/packet.ts';
import { HTTP_UEFI, IPXE_BIOS, PXE_BIOS, PXE_UEFI, reqIp, sid, testEngine } from '../fixtures/dhcp/helpers.ts';

const SUBNET = {
  cidr: '10.99.0.0/24',
  ranges: ['10.99.0.100-10.99.0.150'],
  router: '10.99.0.1',
  dns: ['10.99.0.1', '10.99.0.2'],
  domain: 'lab.example',
  ntp: '10.99.0.3',
  leaseTimeSec: 600,
};
const AUTH = {
  mode: 'authoritative' as const,
  serverIp: '10.99.0.1',
  subnets: [SUBNET, { cidr: '10.50.0.0/24', ranges: ['10.50.0.10-10.50.0.11'], router: '10.50.0.1' }],
};
const M1 = '52:54:00:00:00:01',
  M2 = '52:54:00:00:00:02',
  M3 = '52:54:00:00:00:03';
const inBuild = { inBuild: true, loader: 'native' as const };

test('authoritative table: what each kind of client is offered', () => {
  const rows: {
    name: string;
    opts: [number, Uint8Array][];
    host?: { inBuild: boolean; loader: 'native' | 'ipxe' };
    file?: string;
    o67?: string;
    o60?: string;
    ipxe175?: boolean;
  }[] = [
    { name: 'BIOS PXE in build', opts: PXE_BIOS, host: inBuild, file: 'pxelinux.0', o67: 'pxelinux.0' },
    { name: 'UEFI x64 PXE in build', opts: PXE_UEFI, host: inBuild, file: 'grubx64.efi', o67: 'grubx64.efi' },
    {
      name: 'BIOS PXE, profile wants iPXE: chainload undionly.kpxe',
      opts: PXE_BIOS,
      host: { inBuild: true, loader: 'ipxe' },
      file: 'undionly.kpxe',
    },
    {
      name: 'iPXE client, profile wants iPXE: HTTP script + 175.176',
      opts: IPXE_BIOS,
      host: { inBuild: true, loader: 'ipxe' },
      file: `http://10.99.0.1:8080/boot/ipxe/${encodeURIComponent(M1)}`,
      ipxe175: true,
    },
    {
      name: 'UEFI HTTP boot: URL + option 60 HTTPClient',
      opts: HTTP_UEFI,
      host: inBuild,
      file: 'http://10.99.0.1:8080/tftp/ipxe.efi',
      o60: 'HTTPClient',
    },
    {
      name: 'BIOS PXE not in build still gets the loader (its config boots the disk)',
      opts: PXE_BIOS,
      host: { inBuild: false, loader: 'native' },
      file: 'pxelinux.0',
    },
    {
      name: 'plain DHCP client (udhcpc): no boot fields',
      opts: [[60, optStr('udhcp 1.35.0')]],
      host: inBuild,
      file: '',
    },
  ];
  for (const r of rows) {
    const t = testEngine({ config: AUTH, hosts: r.host ? { [M1]: r.host } : {} });
    const { reply, drop } = t.send({ type: 1, mac: M1, opts: r.opts });
    assert.ok(reply, `${r.name}: ${drop}`);
    assert.equal(reply.type, 2, r.name);
    assert.equal(reply.p.yiaddr, '10.99.0.100', r.name);
    assert.equal(reply.p.file, r.file, r.name);
    assert.equal(reply.p.siaddr, r.file ? '10.99.0.1' : '0.0.0.0', r.name);
    if (r.o67) {
      assert.equal(reply.str(67), r.o67, r.name);
      assert.equal(reply.str(66), '10.99.0.1', r.name);
    }
    if (!r.file) {
      assert.equal(reply.opt(67), undefined, r.name);
      assert.equal(reply.opt(66), undefined, r.name);
    }
    assert.equal(reply.str(60), r.o60, r.name);
    assert.equal(reply.opt(43), undefined, `${r.name}: no PXE vendor options from a DHCP server that is not a proxy`);
    assert.equal(!!reply.opt(175), !!r.ipxe175, r.name);
    if (r.ipxe175) assert.deepEqual([...parseEncap(reply.opt(175)!)!.get(176)!], [1]);
    assert.equal(reply.str(54) && [...reply.opt(54)!].join('.'), '10.99.0.1');
    assert.deepEqual([...reply.opt(51)!], [0, 0, 2, 88], 'lease time 600');
    assert.deepEqual([...reply.opt(58)!], [0, 0, 1, 44]);
    assert.deepEqual([...reply.opt(1)!], [255, 255, 255, 0]);
    assert.deepEqual([...reply.opt(3)!], [10, 99, 0, 1]);
    assert.deepEqual([...reply.opt(6)!], [10, 99, 0, 1, 10, 99, 0, 2]);
    assert.equal(reply.str(15), 'lab.example');
    assert.deepEqual([...reply.opt(42)!], [10, 99, 0, 3]);
    assert.deepEqual(reply.to, { address: '255.255.255.255', port: 68 }, r.name);
  }
});

test('DORA: OFFER holds, REQUEST commits, events on the timeline, same MAC gets the same address', () => {
  let now = 1_000_000;
  const t = testEngine({ config: AUTH, hosts: { [M1]: inBuild }, now: () => now });
  const offer = t.send({ type: 1, mac: M1, opts: PXE_BIOS, xid: 77, flags: 0x8000 }).reply;
  assert.equal(offer.p.xid, 77);
  assert.equal(offer.p.flags, 0x8000, 'broadcast flag echoed');
  assert.equal(t.leases.byIp('10.99.0.100', now)?.state, 'offered');
  const ack = t.send({ type: 3, mac: M1, opts: [...PXE_BIOS, sid('10.99.0.1'), reqIp('10.99.0.100')] }).reply;
  assert.equal(ack.type, 5);
  assert.equal(ack.p.yiaddr, '10.99.0.100');
  assert.equal(ack.p.file, 'pxelinux.0');
  const l = t.leases.byIp('10.99.0.100', now)!;
  assert.equal(l.state, 'bound');
  assert.equal(l.mac, M1);
  assert.equal(l.expiresAt, now + 600_000);
  assert.deepEqual(
    t.events.map((e) => e.type),
    ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack'],
  );
  assert.equal(t.events[1].ip, '10.99.0.100');
  assert.match(t.events[1].detail!, /install pxelinux.0/);
  now += 5000;
  assert.equal(t.send({ type: 1, mac: M1 }).reply.p.yiaddr, '10.99.0.100', 'sticky');
  assert.equal(t.send({ type: 1, mac: M2 }).reply.p.yiaddr, '10.99.0.101');
});

test('REQUEST for another server: silent, and our held offer goes back to the pool', () => {
  const t = testEngine({ config: AUTH });
  t.send({ type: 1, mac: M1 });
  const r = t.send({ type: 3, mac: M1, opts: [sid('10.99.0.9'), reqIp('10.99.0.100')] });
  assert.equal(r.reply, undefined);
  assert.match(r.drop!, /not us/);
  assert.equal(t.leases.byIp('10.99.0.100'), undefined, 'the offer hold is gone');
  assert.equal(t.send({ type: 1, mac: M2 }).reply.p.yiaddr, '10.99.0.101', 'fresh addresses first');
});

test('NAK: wrong address, foreign network, address of another client; broadcast; via relay with broadcast bit', () => {
  const t = testEngine({ config: AUTH });
  t.send({ type: 1, mac: M1 });
  const wrong = t.send({ type: 3, mac: M1, opts: [sid('10.99.0.1'), reqIp('10.99.0.120')] }).reply;
  assert.equal(wrong.type, 6);
  assert.equal(wrong.p.yiaddr, '0.0.0.0');
  assert.match(wrong.str(56)!, /not offered/);
  assert.deepEqual(wrong.to, { address: '255.255.255.255', port: 68 });
  assert.equal(wrong.opt(51), undefined);
  const foreign = t.send({ type: 3, mac: M1, opts: [reqIp('192.168.1.5')] }).reply;
  assert.equal(foreign.type, 6);
  assert.match(foreign.str(56)!, /not on this network/);
  t.send({ type: 3, mac: M1, opts: [sid('10.99.0.1'), reqIp('10.99.0.100')] });
  const stolen = t.send({ type: 3, mac: M2, opts: [reqIp('10.99.0.100')] }).reply;
  assert.equal(stolen.type, 6);
  assert.match(stolen.str(56)!, /another client/);
  const relayed = t.send({ type: 3, mac: M2, giaddr: '10.50.0.1', opts: [reqIp('10.99.0.100')] }).reply;
  assert.equal(relayed.type, 6);
  assert.equal(relayed.p.flags & 0x8000, 0x8000);
  assert.deepEqual(relayed.to, { address: '10.50.0.1', port: 67 });
});

test('INIT-REBOOT and RENEW: own address ACKed (renew unicast to ciaddr), free pool address ACKed after a restart', () => {
  const t = testEngine({ config: AUTH });
  t.send({ type: 1, mac: M1 });
  t.send({ type: 3, mac: M1, opts: [sid('10.99.0.1'), reqIp('10.99.0.100')] });
  const reboot = t.send({ type: 3, mac: M1, opts: [reqIp('10.99.0.100')] }).reply;
  assert.equal(reboot.type, 5);
  const renew = t.send({ type: 3, mac: M1, ciaddr: '10.99.0.100' }).reply;
  assert.equal(renew.type, 5);
  assert.equal(renew.p.ciaddr, '10.99.0.100');
  assert.deepEqual(renew.to, { address: '10.99.0.100', port: 68 });
  const unknownButFree = t.send({ type: 3, mac: M2, opts: [reqIp('10.99.0.140')] }).reply;
  assert.equal(unknownButFree.type, 5, 'authoritative: a free pool address is confirmed');
  const outsidePool = t.send({ type: 3, mac: M3, opts: [reqIp('10.99.0.20')] }).reply;
  assert.equal(outsidePool.type, 6);
  assert.equal(t.send({ type: 3, mac: M3 }).reply, undefined, 'REQUEST with nothing to go on is dropped');
});

test('RELEASE frees, DECLINE quarantines (the decliner gets another address), INFORM answered without a lease', () => {
  let now = 5_000_000;
  const t = testEngine({ config: AUTH, now: () => now });
  t.send({ type: 1, mac: M1 });
  t.send({ type: 3, mac: M1, opts: [sid('10.99.0.1'), reqIp('10.99.0.100')] });
  assert.equal(t.send({ type: 7, mac: M1, ciaddr: '10.99.0.100', opts: [sid('10.99.0.1')] }).reply, undefined);
  assert.equal(t.leases.byIp('10.99.0.100')?.state, 'released');
  assert.match(
    t.send({ type: 7, mac: M2, ciaddr: '10.99.0.100' }).drop!,
    /does not hold/,
    'cannot release what you do not hold',
  );
  now += 1;
  // M1 comes back and gets its address again; then declines it (ARP found a conflict).
  assert.equal(t.send({ type: 1, mac: M1 }).reply.p.yiaddr, '10.99.0.100');
  t.send({ type: 3, mac: M1, opts: [sid('10.99.0.1'), reqIp('10.99.0.100')] });
  assert.match(t.send({ type: 4, mac: M2, opts: [reqIp('10.99.0.100'), sid('10.99.0.1')] }).drop!, /not given to/);
  assert.equal(t.send({ type: 4, mac: M1, opts: [reqIp('10.99.0.100'), sid('10.99.0.1')] }).reply, undefined);
  assert.equal(t.leases.byIp('10.99.0.100')?.state, 'declined');
  assert.equal(t.send({ type: 1, mac: M1 }).reply.p.yiaddr, '10.99.0.101');
  const inf = t.send({ type: 8, mac: M3, ciaddr: '10.99.0.33', opts: PXE_BIOS }).reply;
  assert.equal(inf.type, 5);
  assert.equal(inf.p.yiaddr, '0.0.0.0');
  assert.equal(inf.opt(51), undefined);
  assert.deepEqual(inf.to, { address: '10.99.0.33', port: 68 });
  assert.deepEqual([...inf.opt(3)!], [10, 99, 0, 1]);
});

test('reservations: static address and hostname; never handed to another client from the pool', () => {
  const hosts = { [M1]: { ...inBuild, ip: '10.99.0.100', hostname: 'rhvh-01' } };
  const t = testEngine({ config: AUTH, hosts });
  const other = t.send({ type: 1, mac: M2, opts: PXE_BIOS }).reply;
  assert.equal(other.p.yiaddr, '10.99.0.101', 'reserved .100 is skipped by the pool');
  const r = t.send({ type: 1, mac: M1, opts: PXE_BIOS }).reply;
  assert.equal(r.p.yiaddr, '10.99.0.100');
  assert.equal(r.str(12), 'rhvh-01');
  const ack = t.send({ type: 3, mac: M1, opts: [sid('10.99.0.1'), reqIp('10.99.0.100')] }).reply;
  assert.equal(ack.type, 5);
  assert.equal(ack.str(12), 'rhvh-01');
  assert.equal(
    t.send({ type: 3, mac: M1, opts: [reqIp('10.99.0.130')] }).reply.type,
    6,
    'a reserved host asking for another address is NAKed',
  );
  assert.equal(t.discovered.length, 1, 'only the unknown machine is reported');
  assert.equal(t.discovered[0].mac, M2);
});

test('unknown PXE machines are reported as discovered with arch and UUID', () => {
  const t = testEngine({ config: AUTH });
  t.send({ type: 1, mac: M1, opts: PXE_UEFI });
  assert.equal(t.discovered.length, 1);
  assert.equal(t.discovered[0].arch, 7);
  assert.equal(t.discovered[0].ip, '10.99.0.100');
  assert.equal(t.discovered[0].uuid, '01020304-0506-0708-090a-0b0c0d0e0f10');
});

test('relay: giaddr selects the subnet, reply unicast to the relay on port 67, option 82 echoed last', () => {
  const t = testEngine({ config: AUTH });
  const rai = Uint8Array.of(1, 4, 0x65, 0x74, 0x68, 0x30);
  const r = t.send({ type: 1, mac: M1, giaddr: '10.50.0.1', opts: [...PXE_BIOS, [82, rai]] }).reply;
  assert.equal(r.p.yiaddr, '10.50.0.10');
  assert.equal(r.p.giaddr, '10.50.0.1');
  assert.deepEqual(r.to, { address: '10.50.0.1', port: 67 });
  assert.deepEqual([...r.opt(82)!], [...rai]);
  assert.deepEqual([...r.opt(3)!], [10, 50, 0, 1]);
  assert.equal(t.send({ type: 1, mac: M2, giaddr: '172.16.0.1' }).reply, undefined);
});

test('pool exhaustion: no offer (quickly), NAK for a request, address comes back after the offer hold', () => {
  let now = 9_000_000;
  const t = testEngine({ config: { ...AUTH, offerHoldSec: 30 }, now: () => now });
  assert.equal(t.send({ type: 1, mac: M1, giaddr: '10.50.0.1' }).reply.p.yiaddr, '10.50.0.10');
  assert.equal(t.send({ type: 1, mac: M2, giaddr: '10.50.0.1' }).reply.p.yiaddr, '10.50.0.11');
  const started = performance.now();
  for (let i = 0; i < 1000; i++) {
    const r = t.send({ type: 1, mac: M3, giaddr: '10.50.0.1' });
    assert.equal(r.reply, undefined);
    assert.match(r.drop!, /exhausted/);
  }
  assert.ok(performance.now() - started < 2000, 'exhausted pool answers fast');
  now += 31_000;
  assert.equal(
    t.send({ type: 1, mac: M3, giaddr: '10.50.0.1' }).reply.p.yiaddr,
    '10.50.0.10',
    'oldest expired hold reclaimed',
  );
});

test('a large pool stays fast: 20,000 distinct clients, no slowdown as leases pile up', async () => {
  const t = testEngine({
    config: {
      mode: 'authoritative',
      serverIp: '10.99.0.1',
      subnets: [{ cidr: '10.96.0.0/14', ranges: ['10.96.0.10-10.99.255.250'] }],
    },
    localAddresses: [{ name: 'eth0', address: '10.99.0.1', prefix: 14 }],
  });
  // Best of several short windows, so a busy neighbour on the machine does not decide the result.
  // Each window ends with its commit, as a loop turn of the server does.
  const rate = async (from: number, n: number) => {
    let best = 0;
    for (let w = from; w < from + n; w += 500) {
      const s = performance.now();
      for (let i = w; i < w + 500; i++) {
        const mac = `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
        const o = t.send({ type: 1, mac }).reply;
        assert.ok(o, 'offer');
        t.send({ type: 3, mac, opts: [sid('10.99.0.1'), reqIp(o.p.yiaddr)] });
      }
      assert.ok((await t.commit()).every(Boolean), 'every bind committed');
      best = Math.max(best, 500 / (performance.now() - s));
    }
    return best;
  };
  const first = await rate(0, 2000);
  await rate(2000, 16000);
  const last = await rate(18000, 2000);
  assert.ok(last > first * 0.4, `rate fell from ${first.toFixed(1)}/ms to ${last.toFixed(1)}/ms`);
  assert.equal((await t.leases.list(30_000)).length, 20_000);
});

test('proxy table: PXE only, no address, PXEClient, option 43 for BIOS/iPXE, none for UEFI (it asks on 4011)', () => {
  const PROXY = { mode: 'proxy' as const, serverIp: '10.99.0.1' };
  const t = testEngine({
    config: PROXY,
    hosts: { [M1]: inBuild, [M2]: inBuild, [M3]: { inBuild: true, loader: 'ipxe' } },
  });
  const bios = t.send({ type: 1, mac: M1, opts: PXE_BIOS }).reply;
  assert.equal(bios.type, 2);
  assert.equal(bios.p.yiaddr, '0.0.0.0');
  assert.equal(bios.p.siaddr, '10.99.0.1');
  assert.equal(bios.str(60), 'PXEClient');
  assert.equal(bios.p.file, 'pxelinux.0');
  assert.equal(bios.opt(51), undefined);
  assert.equal(bios.opt(1), undefined);
  assert.deepEqual([...parseEncap(bios.opt(43)!)!.get(6)!], [8], 'discovery control: boot from this file');
  const uefi = t.send({ type: 1, mac: M2, opts: PXE_UEFI }).reply;
  assert.equal(uefi.opt(43), undefined, 'UEFI ignores bypass offers: leave 43 out, it asks on 4011');
  assert.deepEqual([...uefi.opt(97)!], [...PXE_UEFI[2][1]], 'GUID echoed');
  assert.equal(uefi.p.sname, '10.99.0.1');
  const item = Uint8Array.of(71, 4, 0x80, 0x00, 0x00, 0x00, 255);
  const boot = t.send(
    { type: 3, mac: M2, ciaddr: '10.99.0.77', opts: [...PXE_UEFI, [43, item]] },
    { port: 4011, from: { address: '10.99.0.77', port: 68 } },
  ).reply;
  assert.equal(boot.type, 5);
  assert.equal(boot.p.file, 'grubx64.efi');
  assert.equal(boot.p.siaddr, '10.99.0.1');
  assert.deepEqual(boot.to, { address: '10.99.0.77', port: 68 });
  assert.deepEqual([...parseEncap(boot.opt(43)!)!.get(71)!], [0x80, 0, 0, 0]);
  const ipxe = t.send({ type: 1, mac: M3, opts: IPXE_BIOS }).reply;
  assert.match(ipxe.p.file, /^http:\/\/10\.99\.0\.1:8080\/boot\/ipxe\//);
  assert.ok(ipxe.opt(175));
  assert.ok(ipxe.opt(43));
  // Not for us: plain clients, unknown machines, the site's own REQUEST, DISCOVER on 4011.
  assert.match(t.send({ type: 1, mac: M1, opts: [[60, optStr('udhcp 1.35.0')]] }).drop!, /only PXE/);
  assert.match(t.send({ type: 1, mac: '52:54:00:00:00:99', opts: PXE_BIOS }).drop!, /no boot answer/);
  assert.match(
    t.send({ type: 3, mac: M1, opts: [...PXE_BIOS, sid('10.99.0.254'), reqIp('10.99.0.50')] }).drop!,
    /site DHCP/,
  );
  assert.match(t.send({ type: 1, mac: M1, opts: PXE_BIOS }, { port: 4011 }).drop!, /not a boot server request/);
  const http = t.send({ type: 1, mac: M1, opts: HTTP_UEFI }).reply;
  assert.equal(http.str(60), 'HTTPClient');
  assert.equal(http.p.file, 'http://10.99.0.1:8080/tftp/ipxe.efi');
  assert.equal(http.opt(43), undefined);
});

test('mode off answers nothing; options longer than 548 bytes never exceed what the client accepts', () => {
  const off = testEngine({ config: { mode: 'off' } });
  assert.match(off.send({ type: 1, mac: M1, opts: PXE_BIOS }).drop!, /off/);
  const big = testEngine({
    config: {
      ...AUTH,
      subnets: [{ ...SUBNET, dns: Array.from({ length: 60 }, (_, i) => `10.99.0.${i + 1}`), domain: 'd'.repeat(200) }],
    },
    hosts: { [M1]: inBuild },
  });
  const r = big.send({ type: 1, mac: M1, opts: [...PXE_BIOS, [57, Uint8Array.of(2, 64)]] }).reply;
  assert.ok(r.bytes.length <= 548, `reply is ${r.bytes.length} bytes`);
  assert.equal(r.type, 2);
  assert.ok(r.opt(54));
  assert.ok(r.opt(51));
  assert.deepEqual(optIp('1.2.3.4').length, 4);
});

test("per-host UEFI chain: the image's shim as boot file (authoritative, proxy + 4011), its URL for UEFI HTTP boot; BIOS unchanged", () => {
  const shim = 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI';
  const own = { inBuild: true, loader: 'native' as const, uefi: { bootFile: shim, http: true } };
  const local = { inBuild: false, loader: 'native' as const, uefi: { bootFile: shim, http: true } };
  const noHttp = { inBuild: true, loader: 'native' as const, uefi: { bootFile: shim, http: false } };
  const auth = testEngine({ config: AUTH, hosts: { [M1]: own, [M2]: local, [M3]: noHttp } });
  const pxe = auth.send({ type: 1, mac: M1, opts: PXE_UEFI }).reply;
  assert.equal(pxe.p.file, shim);
  assert.equal(pxe.str(67), shim);
  assert.equal(pxe.str(66), '10.99.0.1');
  assert.equal(pxe.p.siaddr, '10.99.0.1');
  assert.equal(
    auth.send({ type: 1, mac: M2, opts: PXE_UEFI }).reply.p.file,
    shim,
    'not in build: same loader, its config boots the disk',
  );
  assert.equal(auth.send({ type: 1, mac: M1, opts: PXE_BIOS }).reply.p.file, 'pxelinux.0');
  const http = auth.send({ type: 1, mac: M1, opts: HTTP_UEFI }).reply;
  assert.equal(http.str(67), `http://10.99.0.1:8080/tftp/${shim}`);
  assert.equal(http.p.file, `http://10.99.0.1:8080/tftp/${shim}`, 'short enough for the file field too');
  assert.equal(http.str(60), 'HTTPClient', 'UEFI spec 24.7.2: HTTP boot clients take only HTTPClient offers');
  assert.equal(
    auth.send({ type: 1, mac: M3, opts: HTTP_UEFI }).reply.str(67),
    'http://10.99.0.1:8080/tftp/ipxe.efi',
    'a GRUB without http: iPXE',
  );
  // The timeline says which chain and why (UEFI only; BIOS events keep their short form).
  const said = auth.events
    .filter((e) => e.mac === M3 && e.type === 'dhcp.offer')
    .map((e) => e.detail)
    .pop();
  assert.match(
    said ?? '',
    /^install http:\/\/10\.99\.0\.1:8080\/tftp\/ipxe\.efi: host is in build; its GRUB has no http module, so UEFI HTTP boot goes through iPXE$/,
  );
  // proxy-DHCP: UEFI gets no option 43 in the offer and takes the file from the 4011 ACK.
  const proxy = testEngine({ config: { mode: 'proxy' as const, serverIp: '10.99.0.1' }, hosts: { [M1]: own } });
  const offer = proxy.send({ type: 1, mac: M1, opts: PXE_UEFI }).reply;
  assert.equal(offer.p.file, shim);
  assert.equal(offer.opt(43), undefined);
  const item = Uint8Array.of(71, 4, 0x80, 0x00, 0x00, 0x00, 255);
  const ack = proxy.send(
    { type: 3, mac: M1, ciaddr: '10.99.0.77', opts: [...PXE_UEFI, [43, item]] },
    { port: 4011, from: { address: '10.99.0.77', port: 68 } },
  ).reply;
  assert.equal(ack.p.file, shim);
  const proxyHttp = proxy.send({ type: 1, mac: M1, opts: HTTP_UEFI }).reply;
  assert.equal(proxyHttp.str(67), `http://10.99.0.1:8080/tftp/${shim}`);
  assert.equal(proxyHttp.str(60), 'HTTPClient');
});
