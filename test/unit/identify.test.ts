// Address -> host resolution (src/boot/identify.ts) and the config names each GRUB flavour asks for (src/boot/paths.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ClientIdentifier,
  decideIdentity,
  describeIdentity,
  IDENTITY_MAP_LIMIT,
  NEIGHBOUR_CACHE_MS,
  type IdentitySources,
} from '../../src/boot/identify.ts';
import { parseConfigPath } from '../../src/boot/paths.ts';
import { normalizeRequestPath } from '../../src/tftp/protocol.ts';
import { parseArpTable } from '../../src/net/neighbors.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO } from '../support/core.ts';

const A = '52:54:00:00:00:0a' as Mac;
const B = '52:54:00:00:00:0b' as Mac;
const C = '52:54:00:00:00:0c' as Mac;

// The neighbour source reads a real /proc/net/arp text (the kernel's format), as macFromArp does.
const ARP = `IP address       HW type     Flags       HW address            Mask     Device
10.99.0.30       0x1         0x2         52:54:00:00:00:0c     *        br0
10.99.0.31       0x1         0x0         00:00:00:00:00:00     *        br0
10.99.0.20       0x1         0x2         52:54:00:00:00:0a     *        br0
`;

function identifier(over: Partial<IdentitySources> = {}, now = () => 1_000_000) {
  const leases = new Map<string, Mac>([['10.99.0.10', A]]);
  const statics = new Map<string, Mac>([
    ['10.99.0.20', B],
    ['10.99.0.40', B],
  ]);
  const arp = parseArpTable(ARP);
  let arpReads = 0;
  const id = new ClientIdentifier(
    {
      lease: (ip) => leases.get(ip),
      staticHost: (ip) => statics.get(ip),
      neighbour: (ip) => {
        arpReads++;
        return arp.get(ip);
      },
      ...over,
    },
    now,
  );
  return { id, arpReads: () => arpReads };
}

test('identify: lease, learnt, neighbour and static each tie an address to one MAC, and say which', () => {
  const { id } = identifier();
  id.learn('10.99.0.50', C);
  assert.deepEqual(id.resolve('10.99.0.10'), { known: true, mac: A, via: 'lease' });
  assert.deepEqual(id.resolve('10.99.0.50'), { known: true, mac: C, via: 'learnt' });
  assert.deepEqual(id.resolve('10.99.0.30'), { known: true, mac: C, via: 'neighbour' });
  assert.deepEqual(id.resolve('10.99.0.40'), { known: true, mac: B, via: 'static' });
  // Sources that agree: the most authoritative one is named.
  id.learn('10.99.0.10', A);
  assert.deepEqual(id.resolve('10.99.0.10'), { known: true, mac: A, via: 'lease' });
  id.learn('10.99.0.30', C);
  assert.deepEqual(id.resolve('10.99.0.30'), { known: true, mac: C, via: 'learnt' });
});

test('identify: an unknown address, and an incomplete ARP entry, are unknown with the reason', () => {
  const { id } = identifier();
  for (const ip of [
    '10.99.0.99',
    '10.99.0.31',
    '',
    '::1',
    'x'.repeat(100_000),
    '10.99.0.10\r\n',
    '10.99.0.10\u2028',
    '10.99.0.10\0',
  ]) {
    const r = id.resolve(ip);
    assert.equal(r.known, false, JSON.stringify(ip.slice(0, 20)));
    assert.ok(!r.known && /no DHCP lease, learnt address, neighbour entry or host static IP/.test(r.reason));
  }
  assert.match(
    describeIdentity('10.99.0.99', id.resolve('10.99.0.99')),
    /^requester 10\.99\.0\.99 resolves to no host \(/,
  );
  assert.equal(
    describeIdentity('10.99.0.10', id.resolve('10.99.0.10')),
    `requester 10.99.0.10 resolves to ${A} (lease)`,
  );
});

test('identify: two hosts claiming one address are neither', () => {
  const { id } = identifier();
  // 10.99.0.20 is B's static IP, but the kernel saw A answer for it (a forged ARP reply, or B's address reused).
  const r = id.resolve('10.99.0.20');
  assert.equal(r.known, false);
  assert.ok(!r.known && r.reason.includes(`${A} (neighbour) and ${B} (static)`), !r.known ? r.reason : '');
  // A learnt address against our own lease.
  id.learn('10.99.0.10', C);
  const l = id.resolve('10.99.0.10');
  assert.ok(!l.known && l.reason.includes(`${A} (lease) and ${C} (learnt)`), !l.known ? l.reason : '');
  // Pure form: order of claims does not matter, duplicates of one MAC are agreement.
  assert.deepEqual(
    decideIdentity('1.2.3.4', [
      { mac: B, via: 'static' },
      { mac: B, via: 'learnt' },
    ]),
    { known: true, mac: B, via: 'learnt' },
  );
  assert.equal(
    decideIdentity('1.2.3.4', [
      { mac: B, via: 'static' },
      { mac: C, via: 'static' },
    ]).known,
    false,
  );
});

test('identify: the neighbour table is read at most once per address per 5 s, hits and misses alike', () => {
  let t = 1_000_000;
  const { id, arpReads } = identifier({}, () => t);
  for (let i = 0; i < 100; i++) {
    id.resolve('10.99.0.99');
    id.resolve('10.99.0.30');
  }
  assert.equal(arpReads(), 2);
  t += NEIGHBOUR_CACHE_MS + 1;
  id.resolve('10.99.0.99');
  assert.equal(arpReads(), 3);
});

test('identify: the learnt map and the neighbour cache are bounded', () => {
  let t = 0;
  const { id, arpReads } = identifier({}, () => t);
  id.learn('10.0.0.1', A);
  for (let i = 0; i < IDENTITY_MAP_LIMIT + 10; i++) id.learn(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, B);
  assert.equal(
    id.resolve('10.0.0.1').known,
    false,
    'a flood of learnt addresses pushed the oldest out instead of growing',
  );
  const before = arpReads();
  for (let i = 0; i < IDENTITY_MAP_LIMIT + 10; i++) id.resolve(`12.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  assert.equal(arpReads() - before, IDENTITY_MAP_LIMIT + 10, 'every new address read once');
  t += 1;
  // After the clear the cache holds at most the limit: an early address is read again.
  id.resolve('12.0.0.0');
  assert.equal(arpReads() - before, IDENTITY_MAP_LIMIT + 10 + 1);
});

const rrq = JSON.parse(readFileSync(join(REPO, 'test/fixtures/tftp/rrq-names.json'), 'utf8')) as Record<
  string,
  { client: string; names: string[] }
>;
const norm = (raw: string) => {
  const r = normalizeRequestPath(raw);
  assert.ok(r.ok);
  return r.path;
};

test('config names: grub-mknetdir GRUB under OVMF (capture) asks its per-MAC file; nothing else it asks is a config', () => {
  const { names } = rrq['tftp-requests-ovmf-grub.pcap'];
  assert.equal(names.length, 39);
  const configs = names.map((n) => [n, parseConfigPath(norm(n))] as const).filter(([, c]) => c);
  assert.ok(configs.length >= 2);
  for (const [raw, c] of configs) {
    assert.equal(raw, '/boot/grub/grub.cfg-01-52-54-00-12-34-56');
    assert.deepEqual(c, {
      loader: 'grub',
      key: { kind: 'mac', mac: '52:54:00:12:34:56' },
      name: 'boot/grub/grub.cfg-01-52-54-00-12-34-56',
    });
  }
  for (const n of names.filter((x) => !x.includes('grub.cfg'))) assert.equal(parseConfigPath(norm(n)), undefined, n);
});

test('config names: pxelinux (capture) asks 01-<mac>; its loader files are not configs', () => {
  const { names } = rrq['tftp-requests-pxelinux.pcap'];
  for (const n of names) {
    const c = parseConfigPath(norm(n));
    if (n.startsWith('pxelinux.cfg/'))
      assert.deepEqual(c, { loader: 'pxelinux', key: { kind: 'mac', mac: '52:54:00:12:34:56' }, name: n });
    else assert.equal(c, undefined, n);
  }
});

// Debian's signed grubnetx64.efi (what `loaders sync` installs as grubx64.efi) never asks a per-MAC name: its
// built-in config reads $prefix/x86_64-efi/grub.cfg if it exists, else $prefix/grub.cfg, with prefix /grub.
const DEBIAN_GRUBNET = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';
test('config names: Debian signed grubnetx64 reads only $prefix/grub.cfg (prefix /grub; x86_64-efi/grub.cfg if it could see it): default names', (t) => {
  if (existsSync(DEBIAN_GRUBNET)) {
    const bin = readFileSync(DEBIAN_GRUBNET).toString('latin1');
    assert.ok(
      bin.includes('source $prefix/x86_64-efi/grub.cfg') && bin.includes('source $prefix/grub.cfg'),
      'built-in config as described',
    );
    assert.ok(bin.includes('\0/grub\0'), 'prefix /grub');
  } else t.diagnostic(`${DEBIAN_GRUBNET} not installed (grub-efi-amd64-signed): checked the names only`);
  for (const raw of ['/grub/x86_64-efi/grub.cfg', '/grub/grub.cfg']) {
    assert.deepEqual(parseConfigPath(norm(raw)), { loader: 'grub', key: { kind: 'default' }, name: raw.slice(1) });
  }
});

test('config names: every generic name, with or without a leading "/", is a default; look-alikes are not', () => {
  const generic = [
    'grub.cfg',
    'grub/grub.cfg',
    'EFI/BOOT/grub.cfg',
    'boot/grub/grub.cfg',
    'EFI/redhat/grub.cfg',
    'EFI/debian/grub.cfg',
    'efi/boot/grub.cfg',
  ];
  for (const name of generic) {
    for (const raw of [name, `/${name}`, `//${name}`, name.replace(/\//g, '\\')]) {
      assert.deepEqual(parseConfigPath(norm(raw)), { loader: 'grub', key: { kind: 'default' }, name }, raw);
    }
  }
  for (const raw of ['pxelinux.cfg/default', '/pxelinux.cfg/default', 'bios/pxelinux.cfg/default']) {
    assert.deepEqual(parseConfigPath(norm(raw))?.key, { kind: 'default' }, raw);
  }
  for (const raw of [
    'grub.cfg.bak',
    'grub.cfg-',
    'grub.cfg-default',
    'xgrub.cfg',
    'grub.cfg/x',
    'pxelinux.cfg/defaults',
    'pxelinux.cfg/default\r',
    'grub.cfg\u2028',
    'grub.cfg-01-52-54-00-12-34',
  ]) {
    assert.equal(parseConfigPath(raw), undefined, JSON.stringify(raw));
  }
});

test('inst.ks.sendmac headers: "<ifname> <mac>" per NIC; anything else ignored; at most 32 read', async () => {
  const { sendmacHeaders, SENDMAC_HEADER_LIMIT } = await import('../../src/http/app.ts');
  assert.deepEqual(
    sendmacHeaders({
      'x-rhn-provisioning-mac-0': 'eth0 52:54:00:00:00:0A',
      'x-rhn-provisioning-mac-1': 'ens3\t52-54-00-00-00-0b',
      host: 'x',
    }),
    [A, B],
  );
  assert.deepEqual(
    sendmacHeaders({ 'x-rhn-provisioning-mac-0': ['eth0 52:54:00:00:00:0a', 'eth1 52:54:00:00:00:0a'] }),
    [A],
    'duplicates once',
  );
  for (const bad of [
    '52:54:00:00:00:0a',
    'eth0',
    '',
    ' ',
    'eth0 52:54:00:00:00:0a x',
    'eth0 52:54:00:00:00:0a\r\nX-Other: 1',
    'eth0 52:54:00:00:00:0a\u2028',
    'eth0\u000052:54:00:00:00:0a',
    'eth0 52:54:00:00:00',
    'eth0 zz:54:00:00:00:0a',
    `${'e'.repeat(100_000)} 52:54:00:00:00:0a`,
    'eth0 ' + '5'.repeat(100_000),
  ]) {
    assert.deepEqual(sendmacHeaders({ 'x-rhn-provisioning-mac-0': bad }), [], JSON.stringify(bad.slice(0, 40)));
  }
  for (const name of [
    'x-rhn-provisioning-mac',
    'x-rhn-provisioning-mac-a',
    'x-rhn-provisioning-mac-0000',
    'x-rhn-provisioning-mac-0 ',
    'y-rhn-provisioning-mac-0',
  ]) {
    assert.deepEqual(sendmacHeaders({ [name]: 'eth0 52:54:00:00:00:0a' }), [], name);
  }
  const many: Record<string, string> = {};
  for (let i = 0; i < 500; i++)
    many[`x-rhn-provisioning-mac-${i}`] =
      `eth${i} 52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  assert.equal(sendmacHeaders(many).length, SENDMAC_HEADER_LIMIT);
});
