// Pure rules: which parameters a tech may never set, what counts as a secret and how it is masked, the Host parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  changedParamKeys,
  checkTechParamList,
  isSecretKey,
  MASK,
  maskDeep,
  maskText,
  maskYamlPair,
  maskYamlText,
  neverForTech,
  paramRoleProblems,
} from '../../src/hosts/policy.ts';
import { hostOfHeader } from '../../src/http/surface.ts';

test('neverForTech: the forbidden paths, what sits under them, and what contains them', () => {
  for (const k of [
    'post',
    'rootPassword',
    'sshKeys',
    'satellite',
    'satellite.server',
    'satellite.repos',
    'stig',
    'stig.enabled',
    'image',
    'image.liveimg',
    'imageFoo',
    'boot.kernelArgs',
    'boot',
  ]) {
    assert.ok(neverForTech(k), k);
  }
  for (const k of ['timezone.name', 'ntpServers', 'boot.loader', 'keyboard', 'lang', 'postfix', 'network.domain'])
    assert.equal(neverForTech(k), undefined, k);
});

test('paramRoleProblems: an admin may do anything; a tech only changes allowed keys, removal included', () => {
  assert.deepEqual(paramRoleProblems('admin', {}, { post: 'x' }, []), []);
  assert.deepEqual(
    paramRoleProblems('tech', { post: 'x' }, { post: 'x', 'timezone.name': 'UTC' }, ['timezone.name']),
    [],
    'an unchanged admin parameter stays',
  );
  assert.match(paramRoleProblems('tech', { post: 'x' }, {}, [])[0], /^params\.post: the tech role can never/);
  assert.match(paramRoleProblems('tech', {}, { lang: 'de_DE.UTF-8' }, [])[0], /no parameters are open to techs/);
  assert.match(
    paramRoleProblems('tech', {}, { lang: 'de_DE.UTF-8' }, ['timezone.name'])[0],
    /techs may set only timezone\.name/,
  );
  assert.deepEqual(changedParamKeys({ a: '1', b: '2' }, { b: '3', c: '4' }), ['a', 'b', 'c']);
});

test('checkTechParamList: worst values are refused naming the entry; duplicates fold', () => {
  for (const bad of [
    null,
    'x',
    {},
    42,
    [null],
    [['a']],
    ['timezone.name\n'],
    ['\u2028'],
    ['a'.repeat(10_000)],
    ['timezone..name'],
    ['1abc'],
    ['rootPassword'],
    ['constructor'],
    ['__proto__'],
  ]) {
    const r = checkTechParamList(bad);
    assert.equal(r.ok, false, JSON.stringify(bad).slice(0, 40));
    if (!r.ok) assert.match(r.errors[0], /^techParams/);
  }
  assert.deepEqual(checkTechParamList(['timezone.name', ' timezone.name ', 'ntpServers']), {
    ok: true,
    list: ['timezone.name', 'ntpServers'],
  });
});

test('secrets: keys, deep masking, free text, YAML (broken too), and the audit pair', () => {
  for (const k of ['rootPassword', 'satellite.activationKey', 'bmc.password', 'token', 'apiToken', 'clientSecret'])
    assert.ok(isSecretKey(k), k);
  for (const k of ['sshKeys', 'keyboard', 'tokenPrefix', 'passwordless', 'hostname'])
    assert.equal(isSecretKey(k), false, k);
  assert.deepEqual(
    maskDeep({
      a: { rootPassword: 'h', n: 1 },
      params: { 'satellite.activationKey': 'k', x: 'y' },
      l: [{ password: 'p' }],
    }),
    { a: { rootPassword: MASK, n: 1 }, params: { 'satellite.activationKey': MASK, x: 'y' }, l: [{ password: MASK }] },
  );
  assert.equal(maskText('key abcdef and abcdefgh', ['abcdef', 'abcdefgh']), `key ${MASK} and ${MASK}`);
  const broken = 'rootPassword: "$6$abc\nsatellite: [\n  activationKey: hunter22\n';
  const masked = maskYamlText(broken, {});
  assert.ok(!masked.includes('$6$abc') && !masked.includes('hunter22'), masked);
  assert.equal(maskYamlText('timezone:\n  name: UTC\n', {}), 'timezone:\n  name: UTC\n');
  const block = maskYamlText(
    'rootPassword: >-\n  $6$folded\n  hash\nsatellite: {\n  activationKey: |\n    multi-line-key\nlang: en_US\n',
    {},
  );
  assert.ok(!block.includes('$6$folded') && !block.includes('multi-line-key'), block);
  assert.match(block, /^lang: en_US$/m, 'what follows the block shows');
  const [b, a] = maskYamlPair(
    'satellite:\n  activationKey: old-key-1\nrootPassword: "$6$same"\n',
    'satellite:\n  activationKey: new-key-2\nrootPassword: "$6$same"\n',
  );
  assert.ok(!`${b}${a}`.includes('old-key-1') && !`${b}${a}`.includes('new-key-2') && !`${b}${a}`.includes('$6$same'));
  assert.match(a, /activationKey: \*{8} \(changed\)/);
  assert.match(a, /rootPassword: "\*{8}"$/m);
});

test('hostOfHeader: ports, IPv6, case, a trailing dot; garbage is undefined', () => {
  assert.equal(hostOfHeader('Rackboot.Example.com:8080'), 'rackboot.example.com');
  assert.equal(hostOfHeader('[::1]:8080'), '::1');
  assert.equal(hostOfHeader('10.99.0.1'), '10.99.0.1');
  assert.equal(hostOfHeader('name.example.'), 'name.example');
  for (const bad of [undefined, '', 'evil.example/path', 'a b', '[', 'x\u2028y', 'é.example', 'a'.repeat(300)])
    assert.equal(hostOfHeader(bad), undefined, String(bad));
});

test('config: --allowed-hosts, --metrics-token, --tls-cert/--tls-key are checked, naming the setting', async () => {
  const { loadConfig, ConfigError } = await import('../../src/config.ts');
  const base = { 'public-url': 'http://Rackboot.Example.com:8080', 'server-ip': '10.99.0.1' };
  const c = loadConfig({ ...base, 'allowed-hosts': 'ui.example.com, 10.99.0.1' }, {}, '/tmp');
  assert.deepEqual([...c.allowedHosts].sort(), [
    '10.99.0.1',
    '127.0.0.1',
    '::1',
    'localhost',
    'rackboot.example.com',
    'ui.example.com',
  ]);
  assert.equal(c.tls, undefined);
  assert.equal(loadConfig(base, { RACKBOOT_METRICS_TOKEN: 'm'.repeat(24) }, '/tmp').metricsToken, 'm'.repeat(24));
  const t = loadConfig({ ...base, 'tls-cert': 'c.pem', 'tls-key': 'k.pem' }, {}, '/tmp');
  assert.deepEqual(t.tls, { cert: '/tmp/c.pem', key: '/tmp/k.pem', port: 8443 });
  const bad: [Record<string, string>, RegExp][] = [
    [{ 'allowed-hosts': 'http://x.example' }, /--allowed-hosts: "http:\/\/x\.example"/],
    [{ 'allowed-hosts': 'a\u2028b' }, /--allowed-hosts/],
    [{ 'allowed-hosts': 'a b' }, /--allowed-hosts/],
    [{ 'metrics-token': 'short' }, /--metrics-token must be 16-256/],
    [{ 'metrics-token': 'x'.repeat(20) + ' y' }, /--metrics-token/],
    [{ 'tls-cert': 'c.pem' }, /--tls-key is missing/],
    [{ 'tls-key': 'k.pem' }, /--tls-cert is missing/],
    [
      { 'tls-cert': 'c', 'tls-key': 'k', 'https-port': '8080', 'http-port': '8080' },
      /--https-port 8080 is the HTTP port too/,
    ],
    [{ 'tls-cert': 'c', 'tls-key': 'k', 'https-port': '99999' }, /--https-port "99999" must be a port/],
  ];
  for (const [flags, want] of bad)
    assert.throws(
      () => loadConfig({ ...base, ...flags }, {}, '/tmp'),
      (e: Error) => e instanceof ConfigError && want.test(e.message),
      JSON.stringify(flags),
    );
});
