import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadProfiles, formatProfileError, applyHostParams, type ProfileSource } from '../../src/profiles/load.ts';
import { readProfileDir } from '../../src/profiles/catalog.ts';
import * as g from '../../src/profiles/grammar.ts';
import { checkHostInput } from '../../src/hosts/input.ts';
import { REPO } from '../support/core.ts';

const HASH =
  '$6$f3jJz.m12KbiZn5A$J/aBsDtbPdTQzyLgQTKIzBoag9bJxlsi5Bw0Rragfj1WYM7/Yknk3JHJbTfixwBu0vJI4k92ooaYW/JwdUjQ2.';
const base = `image:\n  kernel: k/vmlinuz\n  initrd: k/initrd.img\n  stage2: http://x/rhvh\n  liveimg: http://x/rhvh.squashfs.img\nrootPassword: '${HASH}'\n`;
const src = (name: string, text: string): ProfileSource => ({ name, file: `profiles/${name}.yaml`, text });
const samples = loadProfiles(readProfileDir(join(REPO, 'profiles')));
const satellite = samples.profiles.get('rhvh-stig-satellite')!;
const custom = samples.profiles.get('rhvh-custom-thin')!;

/** The worst characters: each one a line break to some parser, or invisible in an error message. */
const HOSTILE: [string, string][] = [
  ['\r', 'U+000D (carriage return)'],
  ['\n', 'U+000A (line feed)'],
  ['\u0000', 'U+0000 (null)'],
  ['\u007f', 'U+007F (delete)'],
  ['\u0085', 'U+0085 (next line)'],
  ['\u2028', 'U+2028 (line separator)'],
  ['\u2029', 'U+2029 (paragraph separator)'],
  ['\u001b', 'U+001B (escape)'],
  ['\u000b', 'U+000B (vertical tab)'],
  ['\u000c', 'U+000C (form feed)'],
  ['\u001e', 'U+001E (record separator)'],
  ['\t', 'U+0009 (tab)'],
  ['\u009b', 'U+009B (control character)'],
];

/** Text fields (dotted path as a host parameter) with a value that is valid on its own, to splice the character into. */
const FIELDS: [string, string, typeof satellite][] = [
  ['satellite.org', 'Example_Org', satellite],
  ['satellite.activationKey', 'rhvh-hosts', satellite],
  ['satellite.server', 'sat.example.com', satellite],
  ['satellite.repos', '[rhel-7-server-rhvh-4-rpms]', satellite],
  ['boot.kernelArgs', 'console=ttyS0', satellite],
  ['boot.hostKernelArgs', 'intel_iommu=on', satellite],
  ['sshKeys', '[ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcWxYk9u9m9r1r9bq7v3nKk ops@example]', satellite],
  ['timezone.name', 'Asia/Tokyo', satellite],
  ['keyboard', 'de', satellite],
  ['lang', 'de_DE.UTF-8', satellite],
  ['ntpServers', '[ntp.example.com]', satellite],
  ['network.domain', 'example.org', satellite],
  ['network.nameservers', '[192.0.2.1]', satellite],
  ['stig.profile', 'xccdf_org.ssgproject.content_profile_stig', satellite],
  ['description', 'a profile', satellite],
  ['partitioning.disks', '[sda]', satellite],
  ['partitioning.volgroup', 'HostVG', custom],
  ['partitioning.disk', 'sda', custom],
  ['partitioning.thinpool.name', 'HostPool', custom],
  ['image.stage2', 'http://mirror.example/rhvh', satellite],
  ['image.kernel', 'k/vmlinuz', satellite],
];

/** Puts the character inside the value (inside the first list element for lists). */
function spliced(value: string, ch: string): string {
  return value.startsWith('[')
    ? `[${JSON.stringify(value.slice(1, -1).replace(/^(.)/, `$1${ch}`))}]`
    : value.replace(/^(.)/, `$1${ch}`);
}

for (const [field, good, lp] of FIELDS) {
  test(`${field}: every control character and line separator is refused, naming the field and the character`, () => {
    const plain = applyHostParams(lp, { [field]: good }, 'h1');
    assert.ok(plain.ok, `the valid value must pass first: ${plain.ok ? '' : plain.errors.join('; ')}`);
    for (const [ch, name] of HOSTILE) {
      const r = applyHostParams(lp, { [field]: spliced(good, ch) }, 'h1');
      assert.equal(r.ok, false, `${field} with ${name} must be refused`);
      if (!r.ok) {
        const msg = r.errors.join('; ');
        assert.match(
          msg,
          new RegExp(
            `parameter ${field.replace(/\./g, '\\.')}(\\[0\\])? .*character ${name.replace(/[()+]/g, '\\$&')} is not allowed`,
          ),
          msg,
        );
      }
    }
  });
}

test('profile files: a carriage return in an org is refused at its line, as "satellite.org: character U+000D (carriage return) is not allowed"', () => {
  const set = loadProfiles([
    src('p', `${base}satellite:\n  server: sat.example.com\n  org: "Example\\rOrg"\n  activationKey: k\n`),
  ]);
  assert.equal(set.profiles.size, 0, 'nothing loaded');
  assert.equal(
    formatProfileError(set.errors[0]),
    'profiles/p.yaml:9: satellite.org: character U+000D (carriage return) is not allowed',
  );
  for (const [ch, name] of HOSTILE) {
    const esc = `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`;
    const s2 = loadProfiles([src('p', base.replace('stage2: http://x/rhvh', `stage2: "http://x/rh${esc}vh"`))]);
    assert.equal(s2.profiles.size, 0);
    assert.equal(formatProfileError(s2.errors[0]), `profiles/p.yaml:4: image.stage2: character ${name} is not allowed`);
  }
});

test('huge values are refused with their length, wrong types with the type', () => {
  const lp = satellite;
  const huge = applyHostParams(lp, { 'satellite.org': 'a'.repeat(100_000) }, 'h1');
  assert.ok(!huge.ok && /satellite\.org.*100000 characters long; at most 255/.test(huge.errors.join()));
  const hugePost = applyHostParams(lp, { post: 'echo x\n'.repeat(20_000) }, 'h1');
  assert.ok(!hugePost.ok && /post.*at most 65536/.test(hugePost.errors.join()));
  for (const field of ['boot.kernelArgs', 'boot.hostKernelArgs']) {
    const args = applyHostParams(lp, { [field]: 'a=b '.repeat(1000) }, 'h1');
    assert.ok(!args.ok && new RegExp(`${field.replace('.', '\\.')} .*at most 1024`).test(args.errors.join()), field);
  }
  for (const [field, value, name] of [
    ['rootPassword', `${HASH}\r`, 'U+000D'],
    ['image', 'rhvh\u2028', 'U+2028'],
  ]) {
    const r = applyHostParams(lp, { [field]: value }, 'h1');
    assert.ok(!r.ok && r.errors.join().includes(`character ${name}`), `${field}: ${r.ok ? '' : r.errors.join()}`);
  }
  const tooMany = applyHostParams(
    lp,
    { 'partitioning.disks': `[${Array.from({ length: 65 }, (_, i) => `disk/by-id/d${i}`).join(',')}]` },
    'h1',
  );
  assert.ok(!tooMany.ok && /partitioning\.disks/.test(tooMany.errors.join()));
  for (const [field, value] of [
    ['satellite.org', '42'],
    ['boot.kernelArgs', 'true'],
    ['sshKeys', 'ssh-ed25519 AAAA'],
    ['partitioning.disks', 'sda'],
    ['boot.keepNetbootFirst', 'yes'],
  ]) {
    const r = applyHostParams(lp, { [field]: value }, 'h1');
    assert.equal(r.ok, false, `${field}=${value}`);
    if (!r.ok)
      assert.match(
        r.errors.join(),
        new RegExp(`parameter ${field.replace('.', '\\.')} .*(expected|Invalid)`),
        r.errors.join(),
      );
  }
  const deep = loadProfiles([
    src('p', `${base}satellite: { server: s.example.com, org: { nested: 1 }, activationKey: k }\n`),
  ]);
  assert.equal(deep.errors[0].field, 'satellite.org');
});

test('repo ids: only letters, digits and _ . : -', () => {
  assert.equal(g.checkRepoId('rhel-7-server-rhvh-4-rpms'), undefined);
  assert.equal(g.checkRepoId('Default_Organization:custom:repo.1'), undefined);
  for (const bad of [
    'a;reboot',
    'a|b',
    'a&b',
    'a<b',
    'a>b',
    '{a}',
    'a b',
    "a'",
    'a"',
    '$(x)',
    '`x`',
    'a\\b',
    '*',
    '',
  ]) {
    assert.match(g.checkRepoId(bad) ?? '', /repository id|character/, bad);
  }
});

test('kernel arguments: words of a grammar that carries no GRUB, iPXE or shell syntax, and no rackboot-owned key', () => {
  for (const ok of [
    'intel_iommu=on console=tty0 console=ttyS1,115200n8',
    'rd.driver.blacklist=nouveau',
    'inst.repo=http://m/x?a=1&b=2',
    'ip=[fe80::1]::[fe80::2]:64:h:eth0:none',
    '',
  ]) {
    assert.equal(g.checkKernelArgs(ok), undefined, ok);
  }
  for (const bad of [
    'a;b',
    'a #b',
    'x={y}',
    'x=${y}',
    'x="a b"',
    "x='a'",
    'a&&b',
    'a||b',
    'x=`id`',
    'a\\b',
    'a|b',
    'a<b',
    'a>b',
  ]) {
    assert.match(g.checkKernelArgs(bad) ?? '', /contains/, bad);
  }
  for (const owned of [
    'inst.ks=http://evil/ks',
    'ks=http://evil/ks',
    'inst.stage2=http://evil/',
    'BOOTIF=01-00-00-00-00-00-01',
    'inst.syslog=evil:514',
    'initrd=evil.img',
    'inst.ks.sendmac',
  ]) {
    assert.match(g.checkKernelArgs(`quiet ${owned}`) ?? '', /set by rackboot itself/, owned);
  }
});

test('snippets: a line starting with a kickstart section keyword is refused, wherever its indentation', () => {
  for (const kw of g.KICKSTART_SECTION_KEYWORDS) {
    for (const line of [kw, `  ${kw} --foo`, `\t${kw}`, `\u00a0${kw}`]) {
      const r = g.checkSnippet(`echo one\n${line}\necho two`);
      assert.match(r ?? '', /line 2 starts with "%"/, JSON.stringify(line));
    }
  }
  assert.match(g.checkSnippet('%weird') ?? '', /would be read as kickstart syntax/);
  assert.equal(g.checkSnippet("echo '%end' 100%\nprintf '%s\\n' x\n\tindented"), undefined);
  assert.match(g.checkSnippet('echo a\r%end') ?? '', /U\+000D \(carriage return\)/);
  assert.match(g.checkSnippet('echo a\u2028%end') ?? '', /U\+2028/);
});

test('disk specs: sdX, vdX, nvme, by-id, by-path; nothing else', () => {
  for (const ok of [
    'sda',
    'vdb',
    'sdaa',
    'xvda',
    'hda',
    'nvme0n1',
    'nvme12n3',
    'mmcblk0',
    '/dev/sda',
    'disk/by-id/wwn-0x5000c500a1b2c3d4',
    '/dev/disk/by-path/pci-0000:00:1f.2-ata-1',
    'disk/by-id/scsi-36000c29f1b2c3d4e5f',
  ]) {
    assert.equal(g.checkDiskSpec(ok), undefined, ok);
  }
  for (const bad of [
    'sda1',
    'nvme0n1p1',
    'sda,sdb',
    'disk/by-id/../../etc',
    'disk/by-uuid/x',
    'disk/by-id/a b',
    '/dev/../sda',
    'sd',
    'SDA',
    '',
    'disk/by-id/x;y',
  ]) {
    assert.ok(g.checkDiskSpec(bad), bad);
  }
  const r = applyHostParams(samples.profiles.get('rhvh-base')!, { 'partitioning.disks': '[sda, sda1]' }, 'h1');
  assert.ok(
    !r.ok && /parameter partitioning\.disks\[1\].*must be a whole disk/.test(r.errors.join()),
    r.ok ? '' : r.errors.join(),
  );
  const twice = applyHostParams(samples.profiles.get('rhvh-base')!, { 'partitioning.disks': '[sda, sda]' }, 'h1');
  assert.ok(!twice.ok && /lists a disk twice/.test(twice.errors.join()));
  const outside = applyHostParams(custom, { 'partitioning.disks': '[sda]', 'partitioning.disk': 'sdb' }, 'h1');
  assert.ok(
    !outside.ok && /partitioning\.disk: disk sdb .*not in partitioning\.disks/.test(outside.errors.join()),
    outside.ok ? '' : outside.errors.join(),
  );
});

test('URLs: an & in a query is fine, what a boot loader reads as syntax is not', () => {
  assert.equal(g.checkUrl('http://mirror.example/rhvh?a=1&b=2'), undefined);
  for (const bad of [
    'http://x/a b',
    'http://x/${net}',
    'http://x/a;b',
    'http://x/#frag',
    'http://x/{a}',
    "http://x/'",
    'http://x/a&&b',
    'ftp://x/',
    'http://x/a|b',
  ]) {
    assert.ok(g.checkUrl(bad), bad);
  }
});

test('the custom layout may not declare /boot/efi or biosboot: reqpart makes them', () => {
  const r = applyHostParams(
    custom,
    {
      'partitioning.volumes': JSON.stringify([
        ...(custom.profile.partitioning.layout === 'custom' ? custom.profile.partitioning.volumes : []),
        { mount: '/boot/efi', name: 'efi', size: 600 },
      ]),
    },
    'h1',
  );
  assert.ok(!r.ok && /\/boot\/efi is made by rackboot \(reqpart\)/.test(r.errors.join()), r.ok ? '' : r.errors.join());
});

test('host records: control characters are refused in every field, named; a line feed in params.post is allowed', () => {
  const known = () => true;
  const good = { mac: '52:54:00:00:00:01', hostname: 'h1', profile: 'rhvh-base' };
  for (const [field, value] of [
    ['hostname', 'h1\rx'],
    ['domain', 'example.com\u2028'],
    ['rack', 'R1\u0085'],
    ['position', 'U1\n'],
    ['profile', 'rhvh-base\u0000'],
  ] as const) {
    const r = checkHostInput({ ...good, [field]: value }, known);
    assert.equal(r.ok, false);
    if (!r.ok)
      assert.match(
        r.errors.join(),
        new RegExp(`^${field}: character U\\+[0-9A-F]{4} .* is not allowed`),
        r.errors.join(),
      );
  }
  const ns = checkHostInput({ ...good, nameservers: ['192.0.2.1', '192.0.2.2\r'] }, known);
  assert.ok(!ns.ok && /nameservers\[1\]: character U\+000D/.test(ns.errors.join()));
  const p = checkHostInput({ ...good, params: { 'satellite.org': 'Org\rX' } }, known);
  assert.ok(
    !p.ok && /params\.satellite\.org: character U\+000D \(carriage return\) is not allowed/.test(p.errors.join()),
  );
  assert.ok(checkHostInput({ ...good, params: { post: 'echo a\necho b' } }, known).ok);
  const pct = checkHostInput({ ...good, params: { post: 'echo a\n%end' } }, known);
  assert.ok(!pct.ok && /params\.post: line 2 starts with "%"/.test(pct.errors.join()));
});
