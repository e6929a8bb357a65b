// Pure parts of image management: RPM header, bsdtar listings, progress output, distro family, loader names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRpmHeader } from '../../src/images/rpm-header.ts';
import { parseListing, bsdtarMessage } from '../../src/images/archive.ts';
import { barLine, createProgress, formatBytes } from '../../src/images/progress.ts';
import { detectFamily, loaderItems } from '../../src/images/loaders.ts';
import { profilesUsingImage } from '../../src/images/store.ts';

/** lead + signature header (empty) + main header with string tags. */
function rpm(tags: Record<number, string>): Buffer {
  const lead = Buffer.alloc(96);
  lead.writeUInt32BE(0xedabeedb, 0);
  const header = (entries: [number, string][]) => {
    const data = Buffer.concat(entries.map(([, v]) => Buffer.from(v + '\0')));
    const head = Buffer.alloc(16);
    head.writeUInt32BE(0x8eade801, 0);
    head.writeUInt32BE(entries.length, 8);
    head.writeUInt32BE(data.length, 12);
    let off = 0;
    const index = Buffer.concat(
      entries.map(([tag, v]) => {
        const e = Buffer.alloc(16);
        e.writeUInt32BE(tag, 0);
        e.writeUInt32BE(6, 4);
        e.writeUInt32BE(off, 8);
        e.writeUInt32BE(1, 12);
        off += Buffer.byteLength(v) + 1;
        return e;
      }),
    );
    return Buffer.concat([head, index, data]);
  };
  const sig = header([]);
  const pad = Buffer.alloc((8 - (sig.length % 8)) % 8);
  return Buffer.concat([lead, sig, pad, header(Object.entries(tags).map(([k, v]) => [Number(k), v]))]);
}

test('RPM header: name, version, release, arch; truncated asks for more; garbage is an error', () => {
  const b = rpm({
    1000: 'redhat-virtualization-host-image-update',
    1001: '4.3.8',
    1002: '20200123.0.el7_7',
    1022: 'noarch',
  });
  assert.deepEqual(parseRpmHeader(b), {
    ok: true,
    info: {
      name: 'redhat-virtualization-host-image-update',
      version: '4.3.8',
      release: '20200123.0.el7_7',
      arch: 'noarch',
    },
  });
  const short = parseRpmHeader(b.subarray(0, 120));
  assert.ok(!short.ok && 'needMore' in short && short.needMore > 120);
  assert.deepEqual(parseRpmHeader(Buffer.alloc(200)), { ok: false, error: 'not an RPM package (bad lead magic)' });
  const noVersion = parseRpmHeader(rpm({ 1000: 'x' }));
  assert.ok(!noVersion.ok && 'error' in noVersion && /no name, version or release/.test(noVersion.error));
  const bad = Buffer.from(b);
  bad.writeUInt32BE(0xdeadbeef, 96);
  assert.ok(!parseRpmHeader(bad).ok);
});

test('bsdtar -tv listings: files, dirs, symlinks, ./ prefixes, names with spaces', () => {
  const text = [
    'drwxr-xr-x  5 0      0        2048 Nov 25 22:54 .',
    'drwxr-xr-x  2 0      0        2048 Nov 25 22:54 LiveOS',
    '-r--r--r--  1 0      0      150000 Nov 25  2019 LiveOS/squashfs.img',
    '-rw-r--r--  1 root   root   300000 Jan  1 10:00 ./usr/share/redhat-virtualization-host/image/redhat-virtualization-host-4.3.8.squashfs.img',
    'lrwxrwxrwx  1 0      0           0 Nov 25 22:54 EFI/BOOT/link -> ../grub.cfg',
    '-rw-r--r--  1 0      0          12 Nov 25 22:54 a name with spaces.txt',
  ].join('\n');
  assert.deepEqual(parseListing(text), [
    { path: 'LiveOS', type: 'dir', size: 2048 },
    { path: 'LiveOS/squashfs.img', type: 'file', size: 150000 },
    {
      path: 'usr/share/redhat-virtualization-host/image/redhat-virtualization-host-4.3.8.squashfs.img',
      type: 'file',
      size: 300000,
    },
    { path: 'EFI/BOOT/link', type: 'symlink', size: 0, target: '../grub.cfg' },
    { path: 'a name with spaces.txt', type: 'file', size: 12 },
  ]);
  assert.equal(
    bsdtarMessage(
      'x .\nx a.img: Write failed: No space left on device\nbsdtar: Error exit delayed from previous errors.\n',
    ),
    'x a.img: Write failed: No space left on device',
  );
  assert.equal(
    bsdtarMessage('bsdtar: Error opening archive: Unrecognized archive format\n'),
    'Error opening archive: Unrecognized archive format',
  );
});

test('progress: a bar redrawn with \\r on a terminal, a line every 10 % otherwise', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(1024 * 1024 * 1024 * 3), '3.0 GiB');
  assert.equal(barLine('x', 50, 100, 10), 'x [#####.....]  50% 50 B/100 B');
  const plain: string[] = [];
  const p = createProgress({ isTTY: false, write: (s) => plain.push(s) });
  const ph = p.phase('copy', 1000);
  for (let i = 0; i <= 1000; i += 50) ph.update(i);
  ph.finish();
  assert.equal(plain.length, 11);
  assert.equal(plain[0], 'copy: 0% (0 B of 1000 B)\n');
  assert.equal(plain.at(-1), 'copy: 100% (1000 B of 1000 B)\n');
  let t = 0;
  const tty: string[] = [];
  const q = createProgress({ isTTY: true, write: (s) => tty.push(s) }, () => t);
  const qh = q.phase('copy', 100);
  qh.update(10); // throttled: same instant
  t += 200;
  qh.update(40);
  qh.finish();
  assert.ok(tty.every((s) => s.startsWith('\r') || s === '\n'));
  assert.match(tty.join(''), /\rcopy \[#+\.*\]  40%/);
  assert.match(tty.at(-2)!, /100% 100 B\/100 B/);
  assert.equal(tty.at(-1), '\n');
});

test('distro family from os-release', () => {
  assert.equal(detectFamily('ID=debian\n'), 'debian');
  assert.equal(detectFamily('ID=ubuntu\nID_LIKE=debian\n'), 'debian');
  assert.equal(detectFamily('ID="rocky"\nID_LIKE="rhel centos fedora"\n'), 'rhel');
  assert.equal(detectFamily('ID="rhel"\n'), 'rhel');
  assert.equal(detectFamily('ID=alpine\n'), undefined);
  assert.equal(detectFamily(undefined), undefined);
});

test('loader targets follow config.loaders; shim and GRUB share a directory', () => {
  const dests = (l: Parameters<typeof loaderItems>[0]) =>
    loaderItems(l).map((i) => `${i.dest}${i.required ? '' : '?'}`);
  assert.deepEqual(
    dests({ bios: 'pxelinux.0', uefi: 'grubx64.efi', ipxeBios: 'undionly.kpxe', ipxeUefi: 'ipxe.efi' }),
    [
      'pxelinux.0',
      'ldlinux.c32',
      'libutil.c32',
      'libcom32.c32',
      'menu.c32',
      'chain.c32',
      'shimx64.efi?',
      'grubx64.efi',
      'undionly.kpxe',
      'ipxe.efi',
    ],
  );
  assert.deepEqual(
    dests({ bios: 'bios/pxelinux.0', uefi: 'efi/shimx64.efi', ipxeBios: 'undionly.kpxe', ipxeUefi: 'ipxe.efi' }),
    [
      'bios/pxelinux.0',
      'bios/ldlinux.c32',
      'bios/libutil.c32',
      'bios/libcom32.c32',
      'bios/menu.c32',
      'bios/chain.c32',
      'efi/shimx64.efi',
      'efi/grubx64.efi',
      'undionly.kpxe',
      'ipxe.efi',
    ],
  );
  assert.ok(
    dests({ bios: 'pxelinux.0', uefi: 'bootx64.efi', ipxeBios: 'undionly.kpxe', ipxeUefi: 'ipxe.efi' }).includes(
      'bootx64.efi',
    ),
  );
});

test('profiles using an image: by name only, sorted', () => {
  const ps = [
    { name: 'b', profile: { image: 'rhvh-4.3.8' } },
    { name: 'a', profile: { image: 'rhvh-4.3.8' } },
    { name: 'c', profile: { image: { kernel: 'k', initrd: 'i', stage2: 's', liveimg: 'l' } } },
    { name: 'd', profile: { image: 'rhvh-4.4' } },
  ];
  assert.deepEqual(profilesUsingImage(ps, 'rhvh-4.3.8'), ['a', 'b']);
  assert.deepEqual(profilesUsingImage(ps, 'none'), []);
});
