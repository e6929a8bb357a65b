import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readProfileDir, nextSnapshot } from '../../src/profiles/catalog.ts';
import { loadProfiles, formatProfileError, applyHostParams, type ProfileSource } from '../../src/profiles/load.ts';
import { checkCustomLayout } from '../../src/profiles/rhvh-rules.ts';
import { customLayoutSchema } from '../../src/profiles/schema.ts';
import { REPO } from '../support/core.ts';
import { join } from 'node:path';

const samples = () => readProfileDir(join(REPO, 'profiles'));
const HASH =
  '$6$f3jJz.m12KbiZn5A$J/aBsDtbPdTQzyLgQTKIzBoag9bJxlsi5Bw0Rragfj1WYM7/Yknk3JHJbTfixwBu0vJI4k92ooaYW/JwdUjQ2.';
const base = `image:\n  kernel: k/vmlinuz\n  initrd: k/initrd.img\n  stage2: http://x/rhvh\n  liveimg: http://x/rhvh.squashfs.img\nrootPassword: '${HASH}'\n`;
const src = (name: string, text: string): ProfileSource => ({ name, file: `profiles/${name}.yaml`, text });

test('the shipped sample profiles load without errors, with inheritance applied', () => {
  const set = loadProfiles(samples());
  assert.deepEqual(set.errors.map(formatProfileError), []);
  assert.deepEqual([...set.profiles.keys()].sort(), ['rhvh-base', 'rhvh-custom-thin', 'rhvh-stig-satellite']);
  const stig = set.profiles.get('rhvh-stig-satellite')!.profile;
  assert.equal(stig.stig.enabled, true);
  assert.equal(stig.satellite?.repos[0], 'rhel-7-server-rhvh-4-rpms');
  assert.deepEqual(stig.image, set.profiles.get('rhvh-base')!.profile.image, 'image inherited from rhvh-base');
  assert.equal(stig.boot.kernelArgs, 'intel_iommu=on console=tty0 console=ttyS1,115200n8');
  assert.equal(set.profiles.get('rhvh-custom-thin')!.profile.partitioning.layout, 'custom');
  assert.equal(set.profiles.get('rhvh-base')!.profile.partitioning.layout, 'autopart');
});

test('a wrong field type is reported with file, line, field and why', () => {
  const set = loadProfiles([src('p', base + 'stig:\n  enabled: yes please\n')]);
  assert.equal(set.profiles.size, 0);
  const e = set.errors[0];
  assert.equal(e.file, 'profiles/p.yaml');
  assert.equal(e.line, 8);
  assert.equal(e.field, 'stig.enabled');
  assert.match(formatProfileError(e), /^profiles\/p\.yaml:8: stig\.enabled: .*boolean/);
});

test('an unknown (misspelt) field is refused with its line', () => {
  const set = loadProfiles([src('p', base + 'timezon: UTC\n')]);
  assert.equal(set.errors.length, 1);
  assert.equal(set.errors[0].line, 7);
  assert.match(set.errors[0].message, /unknown field "timezon"/);
});

test('YAML syntax errors carry their line', () => {
  const set = loadProfiles([src('p', base + 'boot:\n  kernelArgs: [unclosed\n')]);
  assert.ok(set.errors.length >= 1);
  assert.match(set.errors[0].message, /YAML syntax/);
  assert.ok((set.errors[0].line ?? 0) >= 8);
});

test('a password in clear text is refused with how to make a hash', () => {
  const set = loadProfiles([src('p', base.replace(`'${HASH}'`, 'changeme'))]);
  assert.match(set.errors[0].message, /SHA-512 crypt hash.*hash-password/);
  assert.equal(set.errors[0].line, 6);
});

test('errors in inherited fields point at the file that defines them', () => {
  const set = loadProfiles([
    src('parent', base + 'keyboard: "us de"\n'),
    src('child', 'extends: parent\ndescription: c\n'),
  ]);
  const childErr = set.errors.find((e) => e.profile === 'child')!;
  assert.equal(childErr.file, 'profiles/parent.yaml');
  assert.equal(childErr.line, 7);
});

test('extends: unknown parent and loops are refused', () => {
  const set = loadProfiles([src('a', 'extends: b\n'), src('b', 'extends: a\n'), src('c', 'extends: nope\n')]);
  assert.equal(set.profiles.size, 0);
  assert.ok(set.errors.some((e) => e.profile === 'a' && /loops: a -> b -> a/.test(e.message)));
  assert.ok(set.errors.some((e) => e.profile === 'c' && /"nope" does not exist/.test(e.message) && e.line === 1));
});

test('a child overrides nested fields and replaces arrays', () => {
  const set = loadProfiles([
    src('parent', base + 'ntpServers: [a.example, b.example]\nboot:\n  loader: ipxe\n'),
    src('child', 'extends: parent\nntpServers: [c.example]\nboot:\n  kernelArgs: quiet\n'),
  ]);
  const p = set.profiles.get('child')!.profile;
  assert.deepEqual(p.ntpServers, ['c.example']);
  assert.equal(p.boot.loader, 'ipxe');
  assert.equal(p.boot.kernelArgs, 'quiet');
});

test('host parameters override profile fields and are validated', () => {
  const set = loadProfiles(samples());
  const lp = set.profiles.get('rhvh-base')!;
  const ok = applyHostParams(
    lp,
    { 'boot.kernelArgs': 'console=ttyS0', 'timezone.name': 'Asia/Tokyo', 'stig.enabled': 'true' },
    'h1',
  );
  assert.ok(ok.ok);
  if (ok.ok) {
    assert.equal(ok.profile.boot.kernelArgs, 'console=ttyS0');
    assert.equal(ok.profile.timezone.name, 'Asia/Tokyo');
    assert.equal(ok.profile.stig.enabled, true);
  }
  const bad = applyHostParams(lp, { 'stig.enabled': 'maybe' }, 'h1');
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.match(bad.errors[0], /host h1: parameter stig\.enabled/);
  const unknown = applyHostParams(lp, { 'nosuch.field': 'x' }, 'h1');
  assert.equal(unknown.ok, false);
});

test('values that could break out of a kickstart line are refused', () => {
  for (const [field, value] of [
    ['lang', '"en_US; reboot"'],
    ['boot:\n  kernelArgs', '"a\\nb"'],
    ['keyboard', '"us --foo"'],
  ]) {
    const set = loadProfiles([src('p', base + `${field}: ${value}\n`)]);
    assert.equal(set.profiles.size, 0, `${field} ${value} should be refused`);
  }
});

// --- RHVH custom layout rules (RHVH-PXE.md section 4) ---
const guide = () =>
  customLayoutSchema.parse({
    layout: 'custom',
    reservedPercent: 20,
    thinpool: { size: 40000 },
    volumes: [
      ['/', 'root', 6000],
      ['/var', 'var', 15000],
      ['/var/crash', 'var_crash', 10000],
      ['/var/log', 'var_log', 8000],
      ['/var/log/audit', 'var_audit', 2000],
      ['/home', 'home', 1000],
      ['/tmp', 'tmp', 1000],
    ].map(([mount, name, size]) => ({ mount, name, size })),
  });

test('the guide layout passes the RHVH rules', () => {
  assert.deepEqual(checkCustomLayout(guide()), []);
});

const rules: [string, (l: ReturnType<typeof guide>) => void, RegExp][] = [
  [
    'a separate /usr',
    (l) =>
      l.volumes.push({ mount: '/usr', name: 'usr', size: 5000, fstype: 'ext4', grow: false, fsoptions: 'defaults' }),
    /\/usr makes the RHVH install fail/,
  ],
  [
    '/boot on a thin volume',
    (l) =>
      l.volumes.push({ mount: '/boot', name: 'boot', size: 1000, fstype: 'xfs', grow: false, fsoptions: 'defaults' }),
    /\/boot must be a standard partition/,
  ],
  [
    'a missing /var/log/audit',
    (l) => {
      l.volumes = l.volumes.filter((v) => v.mount !== '/var/log/audit');
    },
    /needs \/var\/log\/audit on a thin logical volume/,
  ],
  [
    'btrfs',
    (l) => {
      l.volumes[1].fstype = 'btrfs';
    },
    /"btrfs" is not supported/,
  ],
  [
    'a too small /var',
    (l) => {
      l.volumes[1].size = 10000;
    },
    /\/var needs at least 15000 MiB/,
  ],
  [
    'a too small /boot',
    (l) => {
      l.boot.size = 500;
    },
    /\/boot needs at least 1000 MiB/,
  ],
  [
    'a growing pool without reserved space',
    (l) => {
      l.reservedPercent = undefined;
    },
    /reservedPercent/,
  ],
  [
    'an over-provisioned fixed pool',
    (l) => {
      l.thinpool.grow = false;
    },
    /20 %/,
  ],
  ['a duplicated mount point', (l) => l.volumes.push({ ...l.volumes[0], name: 'root2' }), /declared twice/],
  [
    'swap below 1 GB',
    (l) => {
      l.swap = { size: 512 };
    },
    /swap needs at least/,
  ],
];
for (const [what, mutate, expected] of rules) {
  test(`custom layout rule: ${what} is refused`, () => {
    const l = guide();
    mutate(l);
    const v = checkCustomLayout(l);
    assert.ok(
      v.some((x) => expected.test(x.message)),
      `expected ${expected} in ${JSON.stringify(v)}`,
    );
  });
}

test('a rule violation in a profile file is reported at its line', () => {
  const text =
    base +
    `partitioning:\n  layout: custom\n  reservedPercent: 20\n  thinpool: { size: 40000 }\n  volumes:\n    - { mount: /, name: root, size: 6000 }\n    - { mount: /usr, name: usr, size: 5000 }\n`;
  const set = loadProfiles([src('p', text)]);
  const usr = set.errors.find((e) => /\/usr/.test(e.message))!;
  assert.equal(usr.line, 13);
  assert.equal(usr.field, 'partitioning.volumes[1].mount');
});

test('a broken edit keeps the last good version serving and shows the error', () => {
  const good = nextSnapshot(undefined, [src('p', base)], 1);
  assert.ok(good.profiles.has('p'));
  const broken = nextSnapshot(good, [src('p', base + 'bogus: 1\n')], 2);
  assert.equal(broken.profiles.get('p'), good.profiles.get('p'));
  assert.deepEqual(broken.stale, ['p']);
  assert.equal(broken.errors.length, 1);
  const fixed = nextSnapshot(broken, [src('p', base + 'keyboard: de\n')], 3);
  assert.equal(fixed.profiles.get('p')!.profile.keyboard, 'de');
  assert.deepEqual(fixed.stale, []);
  const removed = nextSnapshot(fixed, [], 4);
  assert.equal(removed.profiles.size, 0, 'a deleted file stops serving');
});
