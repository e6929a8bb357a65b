// EFI loader facts from bytes: PE sections, Authenticode signers, shim's vendor CA, GRUB's config lookup
// and kernel command. On Debian's real signed files (skipped with a message when absent), a grub-mknetdir
// core.efi built here, and crafted PE files for the flavours Debian does not ship (Red Hat's) and for garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authenticodeSigners, parsePe, shimVendorCerts, formatSigner } from '../../src/images/pe.ts';
import { grubFlavour, grubKernelCommand } from '../../src/images/grub.ts';
import { describeLoader, formatLoaderFacts } from '../../src/images/efi.ts';

const DEB_GRUB = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';
const DEB_SHIM = '/usr/lib/shim/shimx64.efi.signed';
const DEB_MM = '/usr/lib/shim/mmx64.efi.signed';
const missing = (p: string) =>
  existsSync(p)
    ? false
    : `${p} is not installed (apt-get install grub-efi-amd64-signed shim-signed shim-helpers-amd64-signed)`;

// --- crafted files ----------------------------------------------------------------------------------
function elfModule(name: string, rodata = ''): Buffer {
  const shstr = Buffer.from('\0.shstrtab\0.modname\0.rodata\0');
  const modname = Buffer.from(`${name}\0`);
  const ro = Buffer.from(rodata);
  const dataOff = 64;
  const shoff = dataOff + shstr.length + modname.length + ro.length;
  const e = Buffer.alloc(shoff + 4 * 64);
  e.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  e.writeBigUInt64LE(BigInt(shoff), 0x28);
  e.writeUInt16LE(64, 0x3a);
  e.writeUInt16LE(4, 0x3c);
  e.writeUInt16LE(1, 0x3e);
  shstr.copy(e, dataOff);
  modname.copy(e, dataOff + shstr.length);
  ro.copy(e, dataOff + shstr.length + modname.length);
  const sh = (i: number, nameOff: number, off: number, size: number) => {
    const at = shoff + i * 64;
    e.writeUInt32LE(nameOff, at);
    e.writeUInt32LE(1, at + 4);
    e.writeBigUInt64LE(BigInt(off), at + 24);
    e.writeBigUInt64LE(BigInt(size), at + 32);
  };
  sh(1, 1, dataOff, shstr.length);
  sh(2, 11, dataOff + shstr.length, modname.length);
  sh(3, 20, dataOff + shstr.length + modname.length, ro.length);
  return e;
}

function grubMods(opts: { prefix?: string; config?: string; modules?: Buffer[]; memdisk?: string }): Buffer {
  const rec = (type: number, body: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(type, 0);
    h.writeUInt32LE(8 + body.length, 4);
    return Buffer.concat([h, body]);
  };
  const parts = [...(opts.modules ?? []).map((m) => rec(0, m))];
  if (opts.memdisk !== undefined)
    parts.push(rec(1, Buffer.concat([Buffer.alloc(512), Buffer.from(opts.memdisk), Buffer.alloc(512)])));
  if (opts.config !== undefined) parts.push(rec(2, Buffer.from(`${opts.config}\0`)));
  if (opts.prefix !== undefined) parts.push(rec(3, Buffer.from(`${opts.prefix}\0`)));
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(24);
  head.write('mimg', 0, 'latin1');
  head.writeBigUInt64LE(24n, 8);
  head.writeBigUInt64LE(BigInt(24 + body.length), 16);
  return Buffer.concat([head, body]);
}

/** A PE32+ file with these sections and, optionally, a WIN_CERTIFICATE holding `pkcs7`. */
function peFile(sections: { name: string; data: Buffer }[], pkcs7?: Buffer): Buffer {
  const optSize = 240;
  const table = 0x40 + 24 + optSize;
  let off = Math.ceil((table + sections.length * 40) / 512) * 512;
  const placed = sections.map((s) => {
    const at = off;
    off = Math.ceil((off + s.data.length) / 512) * 512;
    return { ...s, at };
  });
  const certAt = off;
  const cert = pkcs7
    ? Buffer.concat([Buffer.alloc(8), pkcs7, Buffer.alloc((8 - ((8 + pkcs7.length) % 8)) % 8)])
    : Buffer.alloc(0);
  if (pkcs7) {
    cert.writeUInt32LE(8 + pkcs7.length, 0);
    cert.writeUInt16LE(0x200, 4);
    cert.writeUInt16LE(2, 6);
  }
  const b = Buffer.alloc(certAt + cert.length);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x40, 0x3c);
  b.write('PE\0\0', 0x40, 'latin1');
  b.writeUInt16LE(0x8664, 0x44);
  b.writeUInt16LE(sections.length, 0x46);
  b.writeUInt16LE(optSize, 0x54);
  const opt = 0x40 + 24;
  b.writeUInt16LE(0x20b, opt);
  if (pkcs7) {
    b.writeUInt32LE(certAt, opt + 112 + 32);
    b.writeUInt32LE(cert.length, opt + 112 + 36);
  }
  placed.forEach((s, i) => {
    const at = table + i * 40;
    b.write(s.name.slice(0, 8), at, 'latin1');
    b.writeUInt32LE(s.data.length, at + 8);
    b.writeUInt32LE(s.data.length, at + 16);
    b.writeUInt32LE(s.at, at + 20);
    s.data.copy(b, s.at);
  });
  cert.copy(b, certAt);
  return b;
}

/** A real CMS SignedData made by openssl with a self-signed certificate of this subject (undefined without openssl). */
function signedBlob(subject: string): Buffer | undefined {
  if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).error) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-pkcs7-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
        '-days',
        '1',
        '-subj',
        subject,
        '-utf8',
      ],
      { stdio: 'ignore' },
    );
    writeFileSync(join(dir, 'data'), 'authenticode stand-in');
    execFileSync(
      'openssl',
      [
        'cms',
        '-sign',
        '-binary',
        '-nodetach',
        '-outform',
        'DER',
        '-in',
        join(dir, 'data'),
        '-signer',
        join(dir, 'c.pem'),
        '-inkey',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'sig.der'),
      ],
      { stdio: 'ignore' },
    );
    return readFileSync(join(dir, 'sig.der'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- Debian's real files ----------------------------------------------------------------------------
test(
  "Debian's signed grubnetx64: prefix /grub, prefix-only lookup from its memdisk config, linux (not linuxefi), TFTP only, Debian-signed",
  { skip: missing(DEB_GRUB) },
  () => {
    const b = readFileSync(DEB_GRUB);
    const f = grubFlavour(b)!;
    assert.equal(f.prefix, '/grub');
    assert.equal(f.embeddedConfig, 'normal (memdisk)/grub.cfg\n');
    assert.equal(f.perMac, false);
    assert.deepEqual(f.asks, ['/grub/x86_64-efi/grub.cfg', '/grub/grub.cfg']);
    assert.match(f.lookup, /^prefix only: \/grub\/x86_64-efi\/grub\.cfg, then \/grub\/grub\.cfg/);
    assert.ok(
      f.modules.includes('tftp') && f.modules.includes('normal') && f.modules.includes('linuxefi'),
      f.modules.join(' '),
    );
    assert.equal(f.http, false);
    assert.equal(f.linuxefi, true);
    // Debian's linuxefi refuses kernels without shim, after reading them: its linux command is the one to use.
    assert.equal(grubKernelCommand(f, 'Debian'), 'linux');
    const facts = describeLoader(b, 'grubx64.efi')!;
    assert.equal(facts.kind, 'grub');
    assert.equal(facts.signerVendor, 'Debian');
    assert.match(facts.signer, /^Debian Secure Boot Signer .*grub2 \(issued by Debian Secure Boot CA\)$/);
    assert.equal(facts.grub?.kernelCommand, 'linux');
    assert.match(
      formatLoaderFacts(facts),
      /signed by Debian Secure Boot Signer.*; prefix only: .*; kernel command linux; TFTP only/,
    );
  },
);

test(
  "Debian's signed shim: Microsoft's signature, trusts Debian's CA; MokManager signed by Debian",
  { skip: missing(DEB_SHIM) || missing(DEB_MM) },
  () => {
    const shim = readFileSync(DEB_SHIM);
    assert.ok(
      parsePe(shim)!.sections.some((s) => s.name === '.vendor_cert'),
      'long section names are read from the COFF string table',
    );
    const signers = authenticodeSigners(shim);
    assert.ok(signers.length >= 1);
    assert.equal(signers[0].vendor, 'Microsoft');
    assert.match(formatSigner(signers[0]), /Microsoft .*UEFI/);
    assert.deepEqual(shimVendorCerts(shim).map(formatSigner), ['Debian Secure Boot CA']);
    const facts = describeLoader(shim, 'BOOTX64.EFI')!;
    assert.deepEqual(
      { kind: facts.kind, vendor: facts.vendor, signerVendor: facts.signerVendor },
      { kind: 'shim', vendor: 'Debian', signerVendor: 'Microsoft' },
    );
    const mm = describeLoader(readFileSync(DEB_MM), 'mmx64.efi')!;
    assert.deepEqual({ kind: mm.kind, vendor: mm.vendor }, { kind: 'mokmanager', vendor: 'Debian' });
  },
);

test(
  'a grub-mknetdir core.efi: per-MAC search (over TFTP), prefix /boot/grub, unsigned',
  {
    skip:
      spawnSync('grub-mknetdir', ['--version'], { stdio: 'ignore' }).error ||
      !existsSync('/usr/lib/grub/x86_64-efi/efinet.mod')
        ? 'grub-mknetdir or grub-efi-amd64-bin is not installed'
        : false,
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'rackboot-mknetdir-'));
    try {
      execFileSync(
        'grub-mknetdir',
        [`--net-directory=${dir}`, '--subdir=boot/grub', '-d', '/usr/lib/grub/x86_64-efi'],
        { stdio: 'ignore' },
      );
      const core = readFileSync(join(dir, 'boot/grub/x86_64-efi/core.efi'));
      const f = grubFlavour(core, [readFileSync(join(dir, 'boot/grub/x86_64-efi/normal.mod'))])!;
      assert.equal(f.prefix, '/boot/grub');
      assert.equal(f.embeddedConfig, undefined);
      assert.equal(f.perMac, true);
      assert.equal(f.perMacOver, 'tftp');
      assert.deepEqual(f.asks, ['/boot/grub/grub.cfg-01-<mac>', '/boot/grub/grub.cfg-<hex ip>', '/boot/grub/grub.cfg']);
      // The names the capture shows this very GRUB asking (test/../shared/captures/tftp-requests-ovmf-grub.pcap).
      assert.match(f.lookup, /^per-MAC: grub\.cfg-01-<mac>.*over TFTP only/);
      const facts = describeLoader(core, 'core.efi')!;
      assert.equal(facts.signer, 'unsigned');
      assert.equal(facts.signerVendor, undefined);
      assert.equal(facts.grub?.kernelCommand, 'linux');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

// --- crafted: the flavours Debian does not ship -----------------------------------------------------
test("Red Hat's GRUB flavour (crafted): no embedded config, net search + $fw_path -> asks beside the loader first; linuxefi", () => {
  const modules = [
    elfModule('normal', 'fw_path\0'),
    elfModule('net', 'net_%s_clientuuid\0'),
    elfModule('linuxefi', 'linuxefi\0initrdefi\0'),
    elfModule('linux'),
    elfModule('http'),
    elfModule('tftp'),
  ];
  const blob = signedBlob('/O=Red Hat, Inc./CN=Red Hat Secure Boot Signing 301');
  const b = peFile(
    [
      { name: '.text', data: Buffer.alloc(64, 0xcc) },
      { name: 'mods', data: grubMods({ prefix: '/EFI/BOOT', modules }) },
    ],
    blob,
  );
  const f = grubFlavour(b)!;
  assert.deepEqual(
    {
      prefix: f.prefix,
      perMac: f.perMac,
      perMacOver: f.perMacOver,
      loaderDirFirst: f.loaderDirFirst,
      http: f.http,
      linuxefi: f.linuxefi,
    },
    { prefix: '/EFI/BOOT', perMac: true, perMacOver: 'any', loaderDirFirst: true, http: true, linuxefi: true },
  );
  assert.deepEqual(f.asks, [
    '<loader dir>/grub.cfg-01-<mac>',
    '<loader dir>/grub.cfg-<hex ip>',
    '<loader dir>/grub.cfg',
    '/EFI/BOOT/grub.cfg-01-<mac>',
    '/EFI/BOOT/grub.cfg-<hex ip>',
    '/EFI/BOOT/grub.cfg',
  ]);
  assert.equal(grubKernelCommand(f, undefined), 'linuxefi');
  if (blob) {
    const facts = describeLoader(b, 'grubx64.efi')!;
    assert.equal(facts.signerVendor, 'Red Hat');
    assert.equal(facts.signer, 'Red Hat Secure Boot Signing 301');
    assert.equal(facts.grub?.kernelCommand, 'linuxefi');
  }
});

test('crafted GRUB with a config that chains to grub.cfg-01-$net_default_mac: per-MAC over any protocol; linux when it has linux', () => {
  const b = peFile([
    {
      name: 'mods',
      data: grubMods({
        prefix: '(tftp)/boot/grub',
        config: 'configfile $prefix/grub.cfg-01-$net_default_mac\n',
        modules: [elfModule('linux'), elfModule('linuxefi')],
      }),
    },
  ]);
  const f = grubFlavour(b)!;
  assert.equal(f.perMac, true);
  assert.equal(f.perMacOver, 'any');
  assert.equal(grubKernelCommand(f, 'Debian'), 'linux');
  assert.equal(grubKernelCommand(f, 'Red Hat'), 'linuxefi');
  assert.equal(
    grubKernelCommand(
      grubFlavour(peFile([{ name: 'mods', data: grubMods({ modules: [elfModule('linuxefi')] }) }]))!,
      undefined,
    ),
    'linuxefi',
    'linuxefi and no linux',
  );
  assert.equal(grubKernelCommand(undefined, 'Red Hat'), 'linux');
});

test('crafted GRUB with a memdisk config sourcing $prefix and $cmdpath: prefix only, in that order', () => {
  const memdisk =
    'if [ -e $prefix/x86_64-efi/grub.cfg ]; then\n\tsource $prefix/x86_64-efi/grub.cfg\nelif [ -e $cmdpath/grub.cfg ]; then\n\tsource "$cmdpath/grub.cfg"\nfi\n';
  const f = grubFlavour(
    peFile([{ name: 'mods', data: grubMods({ prefix: '/EFI/debian', config: 'normal (memdisk)/grub.cfg', memdisk }) }]),
  )!;
  assert.equal(f.perMac, false);
  assert.deepEqual(f.asks, ['/EFI/debian/x86_64-efi/grub.cfg', '<loader dir>/grub.cfg']);
});

test(
  'signer names with control characters and line separators are cleaned; non-GRUB, non-shim PE is "efi"',
  { skip: spawnSync('openssl', ['version'], { stdio: 'ignore' }).error ? 'openssl is not installed' : false },
  () => {
    const blob = signedBlob('/O=Evil\u2028Corp/CN=Line\u2029Break Signer')!;
    const facts = describeLoader(peFile([{ name: '.text', data: Buffer.alloc(16) }], blob), 'x.efi')!;
    assert.equal(facts.kind, 'efi');
    // eslint-disable-next-line no-control-regex -- it asserts there are none
    assert.doesNotMatch(facts.signer, /[\u0000-\u001f\u2028\u2029]/);
    assert.match(facts.signer, /Line.Break Signer/);
  },
);

test('text from the binary (prefix, sourced paths) has no control characters and is bounded', () => {
  const evil = `/gr\nub\x1b[31m\u0085${'x'.repeat(5000)}`;
  const config = `source "$prefix/a\rb.cfg"\n${Array.from({ length: 50 }, (_, i) => `source /f${i}.cfg`).join('\n')}\n`;
  const f = grubFlavour(peFile([{ name: 'mods', data: grubMods({ prefix: evil, config }) }]))!;
  for (const s of [f.prefix!, f.lookup, ...f.asks])
    // eslint-disable-next-line no-control-regex -- it asserts there are none
    assert.doesNotMatch(s, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, JSON.stringify(s).slice(0, 80));
  assert.ok(f.prefix!.length <= 256);
  assert.ok(f.asks.length <= 8 && f.asks.every((a) => a.length <= 256));
});

// --- garbage ------------------------------------------------------------------------------------------
test('garbage, truncation and absurd sizes: undefined or empty lists, never an exception', () => {
  const good = peFile(
    [{ name: 'mods', data: grubMods({ prefix: '/grub', modules: [elfModule('net')] }) }],
    Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
  );
  for (let cut = 0; cut < good.length; cut += 7) {
    const b = good.subarray(0, cut);
    assert.doesNotThrow(() => {
      parsePe(b);
      grubFlavour(b);
      authenticodeSigners(b);
      shimVendorCerts(b);
      describeLoader(b);
    }, `cut at ${cut}`);
  }
  assert.equal(parsePe(Buffer.alloc(0)), undefined);
  assert.equal(parsePe(Buffer.from('MZ' + '\0'.repeat(100))), undefined);
  assert.equal(grubFlavour(Buffer.from('not a PE at all, just text')), undefined);
  assert.deepEqual(authenticodeSigners(good), [], 'a DER length of 4 GiB is refused');
  // Section count, section size, module size and cert table far beyond the file.
  const huge = Buffer.from(good);
  huge.writeUInt16LE(0xffff, 0x46);
  assert.equal(parsePe(huge), undefined);
  const bigMods = peFile([
    {
      name: 'mods',
      data: (() => {
        const m = grubMods({ prefix: '/x' });
        m.writeBigUInt64LE(0xffffffffffffn, 16);
        return m;
      })(),
    },
  ]);
  assert.equal(grubFlavour(bigMods), undefined);
  const zeroLen = peFile([
    {
      name: 'mods',
      data: (() => {
        const m = grubMods({ prefix: '/x', modules: [elfModule('a')] });
        m.writeUInt32LE(0, 28);
        return m;
      })(),
    },
  ]);
  assert.doesNotThrow(() => grubFlavour(zeroLen));
  const certPast = Buffer.from(good);
  certPast.writeUInt32LE(0x7fffffff, 0x40 + 24 + 112 + 32);
  assert.equal(parsePe(certPast)?.certTable, undefined);
  const noise = Buffer.alloc(200_000);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  noise.write('MZ', 0, 'latin1');
  assert.doesNotThrow(() => describeLoader(noise));
});
