import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMac, macToPxeName, ipToHex, type Mac } from '../../src/net/mac.ts';
import { decideBoot, type DecideInput } from '../../src/boot/decide.ts';
import { parseConfigPath } from '../../src/boot/paths.ts';
import { sha512Crypt, hashPassword, verifyPassword } from '../../src/secrets/sha512crypt.ts';
import { checkRackCsv, parseCsv } from '../../src/hosts/csv.ts';
import { checkHostInput } from '../../src/hosts/input.ts';

test('parseMac accepts the common spellings and refuses the rest', () => {
  for (const s of [
    '52:54:00:AA:bb:01',
    '52-54-00-aa-bb-01',
    '5254.00aa.bb01',
    '525400aabb01',
    '01-52-54-00-aa-bb-01',
    ' 52:54:00:aa:bb:01 ',
  ]) {
    assert.equal(parseMac(s), '52:54:00:aa:bb:01', s);
  }
  for (const s of [
    '',
    '52:54:00:aa:bb',
    '52:54:00:aa:bb:01:02',
    'zz:54:00:aa:bb:01',
    '5:254:00:aa:bb:01',
    '52:54-00:aa:bb:01x',
    '../../etc',
  ]) {
    assert.equal(parseMac(s), undefined, s);
  }
  assert.equal(macToPxeName('52:54:00:aa:bb:01' as Mac), '01-52-54-00-aa-bb-01');
  assert.equal(ipToHex('10.99.0.11'), '0A63000B');
  assert.equal(ipToHex('10.99.0.256'), undefined);
  assert.equal(ipToHex('010.1.1.1'), undefined);
});

const loaders = { bios: 'pxelinux.0', uefi: 'grubx64.efi', ipxeBios: 'undionly.kpxe', ipxeUefi: 'ipxe.efi' };
const mac = '52:54:00:aa:bb:01' as Mac;
const decide = (over: Partial<DecideInput> & { arch?: number; ipxe?: boolean }) =>
  decideBoot({
    client: { mac, arch: over.arch, ipxe: over.ipxe ?? false },
    host: over.host,
    loaders,
    httpBase: 'http://10.99.0.1:8080',
    answerUnknown: over.answerUnknown ?? true,
  });

test('decideBoot: the loader per firmware, install only in build', () => {
  const inBuild = { inBuild: true, loader: 'native' as const };
  const table: [Partial<DecideInput> & { arch?: number; ipxe?: boolean }, string, string][] = [
    [{ arch: 0, host: inBuild }, 'install', 'tftp:pxelinux.0'],
    [{ arch: undefined, host: inBuild }, 'install', 'tftp:pxelinux.0'],
    [{ arch: 7, host: inBuild }, 'install', 'tftp:grubx64.efi'],
    [{ arch: 9, host: inBuild }, 'install', 'tftp:grubx64.efi'],
    [{ arch: 0, ipxe: true, host: inBuild }, 'install', 'tftp:pxelinux.0'],
    [{ arch: 0, host: { inBuild: true, loader: 'ipxe' } }, 'install', 'tftp:undionly.kpxe'],
    [{ arch: 7, host: { inBuild: true, loader: 'ipxe' } }, 'install', 'tftp:ipxe.efi'],
    [
      { arch: 0, ipxe: true, host: { inBuild: true, loader: 'ipxe' } },
      'install',
      'http:http://10.99.0.1:8080/boot/ipxe/52%3A54%3A00%3Aaa%3Abb%3A01',
    ],
    [{ arch: 16, host: inBuild }, 'install', 'http:http://10.99.0.1:8080/tftp/ipxe.efi'],
    // UEFI iPXE (a NIC ROM, or the ipxe.efi HTTP boot got) asking as arch 7: its script over HTTP, never shim under iPXE.
    [
      { arch: 7, ipxe: true, host: inBuild },
      'install',
      'http:http://10.99.0.1:8080/boot/ipxe/52%3A54%3A00%3Aaa%3Abb%3A01',
    ],
    [
      { arch: 7, ipxe: true, host: { inBuild: false, loader: 'native' } },
      'local',
      'http:http://10.99.0.1:8080/boot/ipxe/52%3A54%3A00%3Aaa%3Abb%3A01',
    ],
    [{ arch: 0, host: { inBuild: false, loader: 'native' } }, 'local', 'tftp:pxelinux.0'],
    [{ arch: 7, host: undefined }, 'local', 'tftp:grubx64.efi'],
  ];
  for (const [input, action, file] of table) {
    const d = decide(input);
    assert.equal(d.action, action, JSON.stringify(input));
    if (d.action !== 'none')
      assert.equal(d.file.kind === 'tftp' ? `tftp:${d.file.path}` : `http:${d.file.url}`, file, JSON.stringify(input));
  }
  assert.equal(decide({ arch: 0, host: undefined, answerUnknown: false }).action, 'none');
  assert.equal(decide({ arch: 2, host: inBuild }).action, 'none', 'Itanium has no loader here');
});

test("decideBoot: a UEFI host boots its own chain (the image's shim); UEFI HTTP boot loads it by URL when its GRUB has http", () => {
  const imageShim = {
    bootFile: 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI',
    http: true,
    reason: "rhvh-4.3.8's own shim and GRUB",
  };
  const tftpOnly = {
    bootFile: 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI',
    http: false,
    reason: "rhvh-4.3.8's own shim and GRUB",
  };
  const file = (d: ReturnType<typeof decide>) =>
    d.action === 'none' ? 'none' : d.file.kind === 'tftp' ? `tftp:${d.file.path}` : `http:${d.file.url}`;
  const table: [Partial<DecideInput> & { arch?: number; ipxe?: boolean }, string, string][] = [
    // UEFI PXE, in build and not: the image's shim either way (its config then says install or local boot).
    [
      { arch: 7, host: { inBuild: true, loader: 'native', uefi: imageShim } },
      'install',
      'tftp:rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI',
    ],
    [
      { arch: 9, host: { inBuild: false, loader: 'native', uefi: imageShim } },
      'local',
      'tftp:rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI',
    ],
    // BIOS is untouched by the UEFI chain.
    [{ arch: 0, host: { inBuild: true, loader: 'native', uefi: imageShim } }, 'install', 'tftp:pxelinux.0'],
    // The synced chain under another name.
    [
      { arch: 7, host: { inBuild: true, loader: 'native', uefi: { bootFile: 'efi/shimx64.efi', http: false } } },
      'install',
      'tftp:efi/shimx64.efi',
    ],
    // UEFI HTTP boot (arch 16), native loader, GRUB with http: shim by URL, not iPXE.
    [
      { arch: 16, host: { inBuild: true, loader: 'native', uefi: imageShim } },
      'install',
      'http:http://10.99.0.1:8080/tftp/rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI',
    ],
    [
      { arch: 16, host: { inBuild: false, loader: 'native', uefi: imageShim } },
      'local',
      'http:http://10.99.0.1:8080/tftp/rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI',
    ],
    [
      { arch: 19, host: { inBuild: true, loader: 'native', uefi: imageShim } },
      'install',
      'http:http://10.99.0.1:8080/tftp/rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI',
    ],
    // A GRUB that cannot fetch over HTTP, an iPXE profile, an unknown machine: iPXE EFI, as before.
    [
      { arch: 16, host: { inBuild: true, loader: 'native', uefi: tftpOnly } },
      'install',
      'http:http://10.99.0.1:8080/tftp/ipxe.efi',
    ],
    [
      { arch: 16, host: { inBuild: true, loader: 'ipxe', uefi: imageShim } },
      'install',
      'http:http://10.99.0.1:8080/tftp/ipxe.efi',
    ],
    [{ arch: 16, host: undefined }, 'local', 'http:http://10.99.0.1:8080/tftp/ipxe.efi'],
    // iPXE profile on UEFI PXE keeps iPXE.
    [{ arch: 7, host: { inBuild: true, loader: 'ipxe', uefi: imageShim } }, 'install', 'tftp:ipxe.efi'],
  ];
  for (const [input, action, want] of table) {
    const d = decide(input);
    assert.equal(d.action, action, JSON.stringify(input));
    assert.equal(file(d), want, JSON.stringify(input));
  }
  const viaImage = decide({ arch: 7, host: { inBuild: true, loader: 'native', uefi: imageShim } });
  assert.ok(viaImage.action !== 'none' && /UEFI: rhvh-4\.3\.8's own shim and GRUB/.test(viaImage.reason));
  const fallback = decide({ arch: 16, host: { inBuild: true, loader: 'native', uefi: tftpOnly } });
  assert.ok(
    fallback.action !== 'none' &&
      /its GRUB has no http module, so UEFI HTTP boot goes through iPXE/.test(fallback.reason),
    fallback.action !== 'none' ? fallback.reason : '',
  );
});

test('parseConfigPath: pxelinux and GRUB per-host names', () => {
  assert.deepEqual(parseConfigPath('pxelinux.cfg/01-52-54-00-aa-bb-01'), {
    loader: 'pxelinux',
    key: { kind: 'mac', mac },
    name: 'pxelinux.cfg/01-52-54-00-aa-bb-01',
  });
  assert.deepEqual(parseConfigPath('pxelinux.cfg/0A63000B'), {
    loader: 'pxelinux',
    key: { kind: 'ip', hex: '0A63000B' },
    name: 'pxelinux.cfg/0A63000B',
  });
  assert.deepEqual(parseConfigPath('pxelinux.cfg/0A6'), {
    loader: 'pxelinux',
    key: { kind: 'ip', hex: '0A6' },
    name: 'pxelinux.cfg/0A6',
  });
  assert.deepEqual(parseConfigPath('pxelinux.cfg/default'), {
    loader: 'pxelinux',
    key: { kind: 'default' },
    name: 'pxelinux.cfg/default',
  });
  assert.deepEqual(parseConfigPath('pxelinux.cfg/564D1A2B-0000-1111-2222-333344445555'), {
    loader: 'pxelinux',
    key: { kind: 'uuid', uuid: '564d1a2b-0000-1111-2222-333344445555' },
    name: 'pxelinux.cfg/564D1A2B-0000-1111-2222-333344445555',
  });
  assert.deepEqual(parseConfigPath('boot/grub/grub.cfg-01-52-54-00-aa-bb-01'), {
    loader: 'grub',
    key: { kind: 'mac', mac },
    name: 'boot/grub/grub.cfg-01-52-54-00-aa-bb-01',
  });
  assert.deepEqual(parseConfigPath('grub.cfg-0A63000B'), {
    loader: 'grub',
    key: { kind: 'ip', hex: '0A63000B' },
    name: 'grub.cfg-0A63000B',
  });
  assert.deepEqual(parseConfigPath('boot/grub/grub.cfg'), {
    loader: 'grub',
    key: { kind: 'default' },
    name: 'boot/grub/grub.cfg',
  });
  for (const p of [
    'pxelinux.0',
    'pxelinux.cfg/../x',
    'pxelinux.cfg/01-zz',
    'grub.cfg-default',
    'ldlinux.c32',
    'rhvh/vmlinuz',
  ])
    assert.equal(parseConfigPath(p), undefined, p);
});

test('sha512Crypt matches glibc/openssl crypt(3) outputs', () => {
  // Reference values printed by `openssl passwd -6 -salt saltstring 'hello world'` and Python's crypt.crypt.
  assert.equal(
    sha512Crypt('hello world', 'saltstring'),
    '$6$saltstring$cdoy.dm3uLGgWGVdNDyV8u6q6pgJY7.rTDiq.L9dvz4Z842rPHqxXPFVYrKZ8Dz0OubhvaeARvKVmiiCOusmI1',
  );
  assert.equal(
    sha512Crypt('Hello world!', 'saltstring', 10000),
    '$6$rounds=10000$saltstring$buk9gc9MDdd3Z11.ZzxK8sKnFNbxNdTnCf.XHjjiTHcgFuFgkKvBQPLIaUn4Ixl3TLN8ZgCk52MPgbWjATwhH0',
  );
  const h = hashPassword('s3cret pass');
  assert.match(h, /^\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/);
  assert.ok(verifyPassword('s3cret pass', h));
  assert.ok(!verifyPassword('s3cret pasS', h));
  assert.notEqual(hashPassword('x'), hashPassword('x'), 'salts are random');
});

test('parseCsv handles quotes, CRLF and reports an unclosed quote', () => {
  const r = parseCsv('a,b\r\n"x, y","he said ""hi"""\n\n1,2');
  assert.deepEqual(
    r.rows.map((x) => x.cells),
    [
      ['a', 'b'],
      ['x, y', 'he said "hi"'],
      ['1', '2'],
    ],
  );
  assert.deepEqual(
    r.rows.map((x) => x.line),
    [1, 2, 4],
  );
  assert.match(parseCsv('a,b\n"open,2\n').error ?? '', /line 2: a quoted field is never closed/);
});

const none = {
  profileExists: (n: string) => n === 'rhvh-base',
  macTaken: () => false,
  ipTaken: (ip: string) => ip === '10.0.0.99',
  hostnameTaken: () => false,
};

test('rack CSV: a clean file gives hosts; every problem is listed with its line', () => {
  const ok = checkRackCsv(
    'mac,hostname,ip,netmask,profile,rack,position,param.boot.kernelArgs\n52:54:00:00:00:01,h1,10.0.0.1,255.255.255.0,rhvh-base,R1,U1,console=ttyS0\n5254.0000.0002,h2,,,rhvh-base,R1,U2,\n',
    none,
  );
  assert.ok(ok.ok);
  if (ok.ok) {
    assert.equal(ok.hosts.length, 2);
    assert.equal(ok.hosts[1].mac, '52:54:00:00:00:02');
    assert.deepEqual(ok.hosts[0].params, { 'boot.kernelArgs': 'console=ttyS0' });
  }
  const bad = checkRackCsv(
    [
      'mac,hostname,ip,profile',
      '52:54:00:00:00:01,h1,10.0.0.1,rhvh-base',
      '52:54:00:00:00:01,h2,10.0.0.2,rhvh-base',
      'nonsense,h3,10.0.0.3,rhvh-base',
      '52:54:00:00:00:04,h1,10.0.0.1,nosuch',
      '52:54:00:00:00:05,h5,10.0.0.99,rhvh-base',
      '52:54:00:00:00:06,h6,10.0.0.300,rhvh-base',
      '52:54:00:00:00:07,h7',
    ].join('\n'),
    none,
  );
  assert.equal(bad.ok, false);
  if (bad.ok) return;
  const p = bad.problems.join('\n');
  assert.match(p, /line 3: mac 52:54:00:00:00:01 is also on line 2/);
  assert.match(p, /line 4: mac: "nonsense" is not a MAC address/);
  assert.match(p, /line 5: profile: "nosuch" is not a loaded profile/);
  assert.match(p, /line 6: ip 10\.0\.0\.99 already belongs to an existing host/);
  assert.match(p, /line 7: ip: "10\.0\.0\.300" is not an IPv4 address/);
  assert.match(p, /line 8: 2 fields, but the header has 4/);
  assert.equal(checkRackCsv('', none).ok, false);
  assert.equal(checkRackCsv('mac,name\n', none).ok, false);
});

test('host input: gateway outside the subnet, bad netmask, hostname with markup', () => {
  const r = checkHostInput(
    {
      mac: '52:54:00:00:00:01',
      hostname: '<script>',
      profile: 'rhvh-base',
      ip: '10.0.0.5',
      netmask: '255.0.255.0',
      gateway: '10.1.0.1',
    },
    none.profileExists,
  );
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.ok(r.errors.some((e) => /hostname: "<script>" is not a valid DNS name/.test(e)));
  assert.ok(r.errors.some((e) => /netmask/.test(e)));
  const g = checkHostInput(
    {
      mac: '52:54:00:00:00:01',
      hostname: 'h',
      profile: 'rhvh-base',
      ip: '10.0.0.5',
      netmask: '255.255.255.0',
      gateway: '10.1.0.1',
    },
    none.profileExists,
  );
  assert.ok(!g.ok && g.errors.some((e) => /not in the subnet/.test(e)));
});

test('parseArpTable: complete entries only', async () => {
  const { parseArpTable } = await import('../../src/net/neighbors.ts');
  const t = parseArpTable(
    [
      'IP address       HW type     Flags       HW address            Mask     Device',
      '10.99.0.160      0x1         0x2         52:54:00:e2:04:01     *        rbbr0',
      '10.99.0.161      0x1         0x0         00:00:00:00:00:00     *        rbbr0',
      '10.99.0.162      0x1         0x2         52:54:00:E2:04:02     *        rbbr0',
    ].join('\n'),
  );
  assert.deepEqual(
    [...t.entries()],
    [
      ['10.99.0.160', '52:54:00:e2:04:01'],
      ['10.99.0.162', '52:54:00:e2:04:02'],
    ],
  );
});

test('arpEntry reads one line and agrees with parseArpTable on every address', async () => {
  const { arpEntry, parseArpTable } = await import('../../src/net/neighbors.ts');
  const text = [
    'IP address       HW type     Flags       HW address            Mask     Device',
    '10.99.0.1        0x1         0x2         52:54:00:e2:04:01     *        rbbr0',
    '10.99.0.10       0x1         0x0         00:00:00:00:00:00     *        rbbr0',
    '10.99.0.100      0x1         0x2         52:54:00:E2:04:64     *        rbbr0',
    '10.99.0.7        0x1         0x2         00:00:00:00:00:00     *        rbbr0',
    '10.99.0.8        0x1         0x2         52:54:00:e2:04:08     *        rbbr0',
    '10.99.0.8        0x1         0x2         52:54:00:e2:04:18     *        rbbr1',
  ].join('\n');
  const all = parseArpTable(text);
  for (const ip of ['10.99.0.1', '10.99.0.10', '10.99.0.100', '10.99.0.7', '10.99.0.8', '10.99.0.2', '10.99.0', ''])
    assert.equal(arpEntry(text, ip), all.get(ip), ip);
  assert.equal(arpEntry(text, '10.99.0.1'), '52:54:00:e2:04:01'); // not 10.99.0.10's or 10.99.0.100's line
  assert.equal(arpEntry(text, 'IP'), undefined); // the header is no entry
  assert.equal(arpEntry('', '10.99.0.1'), undefined);
});

test('arpReader: a found address is answered from a read up to ARP_SNAPSHOT_MS old, a missing one from a fresh read', async () => {
  const { arpReader, ARP_SNAPSHOT_MS } = await import('../../src/net/neighbors.ts');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'rb-arp-'));
  try {
    const file = join(dir, 'arp');
    const header = 'IP address       HW type     Flags       HW address            Mask     Device\n';
    const line = (ip: string, mac: string) => `${ip}        0x1         0x2         ${mac}     *        rbbr0\n`;
    writeFileSync(file, header + line('10.0.0.5', '52:54:00:00:00:05'));
    let t = 1000;
    const lookup = arpReader(file, () => t);
    assert.equal(lookup('10.0.0.5'), '52:54:00:00:00:05');
    // The kernel learns a new client and moves 10.0.0.5 (a forged answer, say).
    writeFileSync(file, header + line('10.0.0.5', '52:54:00:00:00:99') + line('10.0.0.6', '52:54:00:00:00:06'));
    t += 10;
    assert.equal(lookup('10.0.0.6'), '52:54:00:00:00:06', 'a miss reads the table again at once');
    writeFileSync(file, header + line('10.0.0.5', '52:54:00:00:00:aa'));
    t += ARP_SNAPSHOT_MS - 1;
    assert.equal(lookup('10.0.0.5'), '52:54:00:00:00:99', 'a hit within the snapshot age reuses the last read');
    t += 1;
    assert.equal(lookup('10.0.0.5'), '52:54:00:00:00:aa', 'an older read is not used');
    rmSync(file);
    t += ARP_SNAPSHOT_MS;
    assert.equal(lookup('10.0.0.5'), undefined, 'an unreadable table answers nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
