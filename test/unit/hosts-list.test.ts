// The Hosts list (search, sort) and "make this a host" from a discovered machine: pure, with worst values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostList, parseHostListQuery, SEARCH_MAX, type HostListRow } from '../../src/web/hosts-list.ts';
import { archLabel, checkFromDiscovered } from '../../src/hosts/from-discovered.ts';
import type { ImportLookups } from '../../src/hosts/csv.ts';
import type { Mac } from '../../src/net/mac.ts';

const row = (
  hostname: string,
  rack: string,
  state: HostListRow['chip']['state'],
  since: number,
  extra: Partial<HostListRow> = {},
): HostListRow => ({
  host: {
    mac: `52:54:00:00:00:${hostname.slice(-2)}` as Mac,
    hostname,
    profile: 'rhvh-base',
    nameservers: [],
    params: {},
    rack,
    position: 'U1',
    createdAt: 0,
    updatedAt: 0,
  },
  chip: {
    mac: '',
    hostname,
    rack,
    position: 'U1',
    profile: 'rhvh-base',
    state,
    stateLabel: state,
    stage: 'idle',
    label: state,
    since,
    stuck: false,
  },
  ...extra,
});
const rows = [
  row('n10', 'R2', 'built', 300, { lastBuild: { id: 3, status: 'built', createdAt: 30 } }),
  row('n02', 'R1', 'failed', 100, { learntIp: '10.9.0.7' }),
  row('n01', 'R1', 'build', 200, { lastBuild: { id: 5, status: 'pending', createdAt: 50 } }),
];
const names = (r: HostListRow[]) => r.map((x) => x.host.hostname);

test('hosts list: sort by rack (default), name, state (what needs someone first), time in stage, last build', () => {
  assert.deepEqual(names(hostList(rows, {})), ['n01', 'n02', 'n10']);
  assert.deepEqual(names(hostList(rows, { sort: 'hostname', desc: true })), ['n10', 'n02', 'n01']);
  assert.deepEqual(names(hostList(rows, { sort: 'state' })), ['n02', 'n01', 'n10']);
  assert.deepEqual(names(hostList(rows, { sort: 'time' })), ['n02', 'n01', 'n10']);
  assert.deepEqual(names(hostList(rows, { sort: 'build' })), ['n01', 'n10', 'n02']);
});

test('hosts list: search any field, any case, the learnt address too; the query is bounded and never a pattern', () => {
  assert.deepEqual(names(hostList(rows, { q: 'R1' })), ['n01', 'n02']);
  assert.deepEqual(names(hostList(rows, { q: '10.9.0' })), ['n02']);
  assert.deepEqual(names(hostList(rows, { q: '52:54:00:00:00:10' })), ['n10']);
  assert.deepEqual(names(hostList(rows, { q: '.*' })), [], 'a regex is text');
  const long = parseHostListQuery({ q: 'x'.repeat(100_000), sort: 'nonsense', dir: 'up' });
  assert.equal(long.q!.length, SEARCH_MAX);
  assert.equal(long.sort, undefined, 'an unknown sort falls back');
  assert.equal(long.desc, false);
  assert.deepEqual(parseHostListQuery({ q: ['a', 'b'], sort: ['time'] }), {
    q: undefined,
    sort: undefined,
    desc: false,
  });
});

const taken = new Set(['52:54:00:00:00:99']);
const lookups: ImportLookups = {
  profileExists: (n) => n === 'rhvh-base',
  macTaken: (m) => taken.has(m),
  ipTaken: (ip) => ip === '10.0.0.99',
  hostnameTaken: (n) => n === 'taken',
  buildProblems: (h) => (h.rack === 'static-rack' && !h.ip ? ['ip: needs an address'] : []),
};
const seen = {
  mac: '52:54:00:00:00:01',
  arch: 7,
  uuid: 'not-a-uuid',
  ipxe: 0,
  ip: '10.0.0.5',
  firstSeen: 1,
  lastSeen: 2,
};

test('make this a host: the MAC from what was seen, a malformed firmware UUID left out, the form checked', () => {
  const ok = checkFromDiscovered(seen, { hostname: 'n1', profile: 'rhvh-base', rack: 'R1', position: 'U3' }, lookups);
  assert.equal(ok.ok, true);
  if (ok.ok) {
    assert.equal(ok.host.mac, '52:54:00:00:00:01');
    assert.equal(ok.host.uuid, undefined);
    assert.equal(ok.host.rack, 'R1');
  }
  const withUuid = checkFromDiscovered(
    { ...seen, uuid: '0f0e0d0c-0b0a-0908-0706-050403020100' },
    { hostname: 'n1', profile: 'rhvh-base' },
    lookups,
  );
  assert.equal(withUuid.ok && withUuid.host.uuid, '0f0e0d0c-0b0a-0908-0706-050403020100');
});

test('make this a host: worst values are refused naming the field, and nothing is made', () => {
  const bad = (form: Record<string, string>, s: typeof seen | undefined = seen) => {
    const r = checkFromDiscovered(s, form, lookups);
    assert.equal(r.ok, false, JSON.stringify(form));
    return r.ok ? { status: 0, errors: [] } : r;
  };
  const gone = checkFromDiscovered(undefined, { hostname: 'n1', profile: 'rhvh-base' }, lookups);
  assert.equal(!gone.ok && gone.status, 404);
  assert.equal(bad({ hostname: 'n1', profile: 'rhvh-base' }, { ...seen, mac: '52:54:00:00:00:99' }).status, 409);
  assert.match(bad({ hostname: '', profile: 'rhvh-base' }).errors.join(), /hostname: required/);
  assert.match(bad({ hostname: 'a\nb', profile: 'rhvh-base' }).errors.join(), /^hostname: /);
  assert.match(bad({ hostname: '<script>', profile: 'rhvh-base' }).errors.join(), /hostname: /);
  assert.match(bad({ hostname: 'n1', profile: '../../etc/passwd' }).errors.join(), /profile: /);
  assert.match(bad({ hostname: 'n1', profile: 'rhvh-base', rack: 'R1\u2028x' }).errors.join(), /rack: /);
  assert.match(bad({ hostname: 'taken', profile: 'rhvh-base' }).errors.join(), /hostname: taken already belongs/);
  assert.match(
    bad({ hostname: 'n1', profile: 'rhvh-base', ip: '10.0.0.99' }).errors.join(),
    /ip: 10\.0\.0\.99 already/,
  );
  assert.match(bad({ hostname: 'n1', profile: 'rhvh-base', ip: '999.1.1.1' }).errors.join(), /ip: /);
  assert.match(
    bad({ hostname: 'n1', profile: 'rhvh-base', rack: 'static-rack' }).errors.join(),
    /ip: needs an address/,
  );
  assert.match(bad({ hostname: 'x'.repeat(300), profile: 'rhvh-base' }).errors.join(), /hostname: /);
});

test('firmware names from DHCP option 93 (RFC 4578)', () => {
  assert.equal(archLabel(0), 'BIOS x86 (0)');
  assert.equal(archLabel(7), 'UEFI x64 (7)');
  assert.equal(archLabel(16), 'UEFI x64 HTTP (16)');
  assert.equal(archLabel(65535), 'other (65535)');
  assert.equal(archLabel(null), 'unknown');
});
