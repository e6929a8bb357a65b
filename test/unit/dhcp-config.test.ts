import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dhcpConfigFromFlags, dhcpConfigSchema, interfacesOf, parseCidr } from '../../src/dhcp/config.ts';

test('defaults: mode off, ports 67/4011, no subnets', () => {
  const c = dhcpConfigSchema.parse({});
  assert.equal(c.mode, 'off');
  assert.equal(c.port, 67);
  assert.equal(c.proxyPort, 4011);
  assert.deepEqual(c.subnets, []);
  const f = dhcpConfigFromFlags({});
  assert.ok(f.ok);
  assert.equal(f.config.mode, 'off');
});

test('the single-subnet flags map onto one subnet', () => {
  const r = dhcpConfigFromFlags({
    mode: 'authoritative',
    interface: 'eth1',
    subnet: '10.99.0.0/24',
    range: '10.99.0.100-10.99.0.150',
    router: '10.99.0.1',
    dns: '10.99.0.1, 10.99.0.2',
    serverIp: '10.99.0.1',
  });
  assert.ok(r.ok, !r.ok ? r.error : '');
  assert.deepEqual(r.config.subnets, [
    {
      cidr: '10.99.0.0/24',
      ranges: [{ start: '10.99.0.100', end: '10.99.0.150' }],
      router: '10.99.0.1',
      dns: ['10.99.0.1', '10.99.0.2'],
      ntp: [],
      leaseTimeSec: 3600,
    },
  ]);
  assert.equal(r.config.interface, 'eth1');
  assert.equal(r.config.serverIp, '10.99.0.1');
  // A host address in --dhcp-subnet is normalised to the network.
  const n = dhcpConfigFromFlags({ mode: 'authoritative', subnet: '10.99.0.7/24' });
  assert.ok(n.ok);
  assert.equal(n.config.subnets[0].cidr, '10.99.0.0/24');
});

test('flags override the config file slice; the matching subnet is updated, not duplicated', () => {
  const base = {
    mode: 'proxy' as const,
    subnets: [{ cidr: '10.99.0.0/24', ranges: ['10.99.0.10-10.99.0.20'], domain: 'lab' }],
  };
  const r = dhcpConfigFromFlags({ mode: 'authoritative', subnet: '10.99.0.0/24', router: '10.99.0.254' }, base);
  assert.ok(r.ok);
  assert.equal(r.config.mode, 'authoritative');
  assert.equal(r.config.subnets.length, 1);
  assert.equal(r.config.subnets[0].router, '10.99.0.254');
  assert.equal(r.config.subnets[0].domain, 'lab');
  assert.deepEqual(r.config.subnets[0].ranges, [{ start: '10.99.0.10', end: '10.99.0.20' }]);
});

test('errors name the flag and show a valid value', () => {
  const cases: [Parameters<typeof dhcpConfigFromFlags>[0], RegExp][] = [
    [{ mode: 'on' }, /--dhcp-mode "on" must be off, proxy or authoritative/],
    [{ mode: 'authoritative' }, /authoritative mode needs at least one subnet/],
    [{ subnet: '10.99.0.0' }, /--dhcp-subnet "10.99.0.0" must be a subnet in CIDR form such as 10.99.0.0\/24/],
    [{ range: '10.99.0.1-10.99.0.9' }, /--dhcp-range needs --dhcp-subnet/],
    [{ subnet: '10.99.0.0/24', range: '10.99.0.9-10.99.0.1' }, /--dhcp-range "10.99.0.9-10.99.0.1" must be FIRST-LAST/],
    [
      { subnet: '10.99.0.0/24', range: '10.98.0.1-10.98.0.9' },
      /--dhcp-range: 10.98.0.1 is outside --dhcp-subnet 10.99.0.0\/24/,
    ],
    [{ subnet: '10.99.0.0/24', router: '10.1.1.1' }, /--dhcp-router 10.1.1.1 is outside --dhcp-subnet/],
    [{ subnet: '10.99.0.0/24', router: 'gw' }, /--dhcp-router "gw" must be an IPv4 address/],
    [{ subnet: '10.99.0.0/24', dns: '10.0.0.1,x' }, /--dhcp-dns "10.0.0.1,x" must be IPv4 addresses/],
    [{ serverIp: '300.1.1.1' }, /--server-ip "300.1.1.1" must be an IPv4 address/],
    [{ interface: 'eth 1' }, /--dhcp-interface "eth 1" must be an interface name/],
  ];
  for (const [flags, re] of cases) {
    const r = dhcpConfigFromFlags(flags);
    assert.equal(r.ok, false, JSON.stringify(flags));
    assert.match((r as { error: string }).error, re);
  }
});

test('config file errors carry the path (dhcp.subnets.0.ranges.0)', () => {
  const r = dhcpConfigFromFlags(
    {},
    { mode: 'authoritative', subnets: [{ cidr: '10.99.0.0/24', ranges: ['10.99.1.1-10.99.1.5'] }] },
  );
  assert.equal(r.ok, false);
  assert.match(
    (r as { error: string }).error,
    /^dhcp\.subnets\.0\.ranges\.0: 10\.99\.1\.1 is outside subnet 10\.99\.0\.0\/24/,
  );
  assert.equal(
    dhcpConfigSchema.safeParse({ mode: 'proxy', bogus: 1 }).success,
    false,
    'unknown keys are refused (typos)',
  );
});

test('cidr math and interface lists', () => {
  assert.deepEqual(parseCidr('10.99.0.0/24'), {
    network: 0x0a630000,
    prefix: 24,
    mask: 0xffffff00,
    broadcast: 0x0a6300ff,
  });
  assert.equal(parseCidr('10.99.0.0/33'), undefined);
  assert.deepEqual(interfacesOf(dhcpConfigSchema.parse({ interface: 'eth1, eth2' })), ['eth1', 'eth2']);
});
