// loaders sync against the Debian packages installed by .ci/run (pxelinux, syslinux-common, ipxe,
// grub-efi-amd64-bin, grub-efi-amd64-signed, shim-signed), grub-mknetdir when no signed GRUB exists,
// a fake RHEL/Rocky root; and doctor against a stopped and a running rackboot.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import dgram from 'node:dgram';
import net from 'node:net';
import { syncLoaders, formatSyncReport } from '../../src/images/loaders.ts';
import { runDoctor, formatDoctor } from '../../src/images/doctor.ts';
import { importIso } from '../../src/images/import.ts';
import { imageViewOf } from '../../src/images/store.ts';
import { runCli } from '../../src/cli.ts';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';
import { startRackboot } from '../../src/serve.ts';
import { buildRhvhIso, efiSourcesMissing, isoToolsMissing } from '../fixtures/images/rhvh-iso.ts';
import { makeEnv, tempDir } from '../support/core.ts';

const DEFAULT_LOADERS = { bios: 'pxelinux.0', uefi: 'grubx64.efi', ipxeBios: 'undionly.kpxe', ipxeUefi: 'ipxe.efi' };
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const debianLoaders = [
  '/usr/lib/PXELINUX/pxelinux.0',
  '/usr/lib/syslinux/modules/bios/ldlinux.c32',
  '/usr/lib/ipxe/undionly.kpxe',
  '/usr/lib/ipxe/ipxe.efi',
];
const noDebian = debianLoaders.find((p) => !existsSync(p));
const haveSignedGrub = existsSync('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed');
const haveShim = existsSync('/usr/lib/shim/shimx64.efi.signed');
const haveGrubModules = existsSync('/usr/lib/grub/x86_64-efi/efinet.mod');

const dirs: string[] = [];
const tmp = (prefix?: string) => {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function put(root: string, path: string, content: string) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

describe('loaders sync', () => {
  test(
    'Debian packages: every loader copied byte for byte under the config.loaders names; a second sync changes nothing',
    { skip: noDebian ? `${noDebian} is missing (apt-get install pxelinux syslinux-common ipxe)` : false },
    async () => {
      const dir = tmp();
      const tftpRoot = join(dir, 'tftpboot');
      const r = await syncLoaders({ tftpRoot, loaders: DEFAULT_LOADERS });
      const text = formatSyncReport(r, tftpRoot).join('\n');
      assert.equal(r.family, 'debian');
      const expected: Record<string, string> = {
        'pxelinux.0': '/usr/lib/PXELINUX/pxelinux.0',
        'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
        'ipxe.efi': '/usr/lib/ipxe/ipxe.efi',
        ...Object.fromEntries(
          ['ldlinux', 'libutil', 'libcom32', 'menu', 'chain'].map((m) => [
            `${m}.c32`,
            `/usr/lib/syslinux/modules/bios/${m}.c32`,
          ]),
        ),
      };
      if (haveSignedGrub) expected['grubx64.efi'] = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';
      if (haveShim) expected['shimx64.efi'] = '/usr/lib/shim/shimx64.efi.signed';
      for (const [dest, from] of Object.entries(expected)) {
        assert.equal(sha(join(tftpRoot, dest)), sha(from), `${dest} <- ${from}\n${text}`);
        assert.ok(
          r.lines.some((l) => l.dest === dest && l.kind === 'copied'),
          text,
        );
      }
      if (haveSignedGrub && haveShim) {
        assert.ok(r.ok, text);
        assert.match(text, /grubx64\.efi\s+<- \/usr\/lib\/grub\/x86_64-efi-signed\/grubnetx64\.efi\.signed, signed/);
        assert.match(text, /Secure Boot: .*loaders: \{ uefi: shimx64\.efi \}/);
      }
      const again = await syncLoaders({ tftpRoot, loaders: DEFAULT_LOADERS });
      assert.ok(
        again.lines.filter((l) => l.kind !== 'missing').every((l) => l.kind === 'unchanged'),
        formatSyncReport(again, tftpRoot).join('\n'),
      );

      // Through the CLI, with a config file that points UEFI clients at the shim.
      const cfg = join(dir, 'rackboot.yaml');
      writeFileSync(cfg, 'loaders:\n  bios: bios/pxelinux.0\n  uefi: efi/shimx64.efi\n');
      const out: string[] = [],
        err: string[] = [];
      const code = await runCli(
        ['loaders', 'sync', '--config', cfg, '--tftp-root', join(dir, 't2'), '--data-dir', join(dir, 'data')],
        { out: (s) => out.push(s), err: (s) => err.push(s), readStdin: async () => '', env: {} },
      );
      if (haveSignedGrub && haveShim) {
        assert.equal(code, 0, out.concat(err).join('\n'));
        for (const f of [
          'bios/pxelinux.0',
          'bios/ldlinux.c32',
          'bios/menu.c32',
          'efi/shimx64.efi',
          'efi/grubx64.efi',
          'undionly.kpxe',
          'ipxe.efi',
        ])
          assert.ok(existsSync(join(dir, 't2', f)), f);
        assert.doesNotMatch(out.join('\n'), /Secure Boot: UEFI clients are told to boot/);
        // Per loader: who signed it and how that GRUB finds its config; the vendor mismatch against RHVH's Red Hat kernel.
        const said = out.join('\n');
        assert.match(said, /efi\/shimx64\.efi .*\n\s+signed by Microsoft .*; trusts Debian Secure Boot CA\n/);
        assert.match(
          said,
          /efi\/grubx64\.efi .*\n\s+signed by Debian Secure Boot Signer [^\n]*; prefix only: \/grub\/x86_64-efi\/grub\.cfg, then \/grub\/grub\.cfg[^\n]*; kernel command linux/,
        );
        assert.match(
          said,
          /note: Secure Boot: the synced shim trusts Debian, but the (RHVH kernel is|images in use are) signed by Red Hat: .* install shim-x64 and grub2-efi-x64/,
        );
        assert.match(
          said,
          /note: efi\/grubx64\.efi asks only a fixed config \(\/grub\/x86_64-efi\/grub\.cfg, \/grub\/grub\.cfg\), never grub\.cfg-01-<mac>/,
        );
        const sameVendor = await syncLoaders({
          tftpRoot: join(dir, 't2'),
          loaders: { ...DEFAULT_LOADERS, uefi: 'efi/shimx64.efi' },
          imageVendors: ['Debian'],
        });
        assert.doesNotMatch(formatSyncReport(sameVendor, tftpRoot).join('\n'), /the synced shim trusts/);
        const nobodyUsesIt = await syncLoaders({
          tftpRoot: join(dir, 't2'),
          loaders: { ...DEFAULT_LOADERS, uefi: 'efi/shimx64.efi' },
          imageVendors: [],
        });
        assert.doesNotMatch(
          formatSyncReport(nobodyUsesIt, tftpRoot).join('\n'),
          /the synced shim trusts/,
          'no profile boots through the synced UEFI loaders',
        );
        const mixed = await syncLoaders({
          tftpRoot: join(dir, 't2'),
          loaders: { ...DEFAULT_LOADERS, uefi: 'efi/shimx64.efi' },
          imageVendors: ['Debian', 'Red Hat'],
        });
        assert.match(
          formatSyncReport(mixed, tftpRoot).join('\n'),
          /the synced shim trusts Debian, but the images in use are signed by Red Hat/,
        );
      }
    },
  );

  test(
    'no signed GRUB: grub-mknetdir builds an unsigned network GRUB; missing pieces are listed with their packages',
    { skip: haveGrubModules ? false : 'grub-efi-amd64-bin is not installed' },
    async () => {
      const dir = tmp();
      const root = join(dir, 'root');
      put(root, 'etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
      mkdirSync(join(root, 'usr/lib/grub'), { recursive: true });
      symlinkSync('/usr/lib/grub/x86_64-efi', join(root, 'usr/lib/grub/x86_64-efi'));
      const tftpRoot = join(dir, 'tftpboot');
      const r = await syncLoaders({ tftpRoot, loaders: DEFAULT_LOADERS, fsRoot: root });
      const text = formatSyncReport(r, tftpRoot).join('\n');
      const core = join(tftpRoot, 'boot/grub/x86_64-efi/core.efi');
      assert.ok(existsSync(core), text);
      assert.equal(sha(join(tftpRoot, 'grubx64.efi')), sha(core));
      assert.ok(
        existsSync(join(tftpRoot, 'boot/grub/x86_64-efi/efinet.mod')),
        'modules beside core.efi, where its prefix points',
      );
      assert.match(text, /grubx64\.efi\s+<- grub-mknetdir .*unsigned/);
      assert.match(text, /GRUB is unsigned/);
      assert.equal(r.ok, false);
      assert.match(text, /missing\s+pxelinux\.0 .*Debian\/Ubuntu package pxelinux; RHEL\/Rocky package syslinux/);
      assert.match(text, /missing\s+ldlinux\.c32 .*syslinux-common/);
      assert.match(
        text,
        /missing\s+undionly\.kpxe .*Debian\/Ubuntu package ipxe; RHEL\/Rocky package ipxe-bootimgs-x86/,
      );
      assert.match(text, /shimx64\.efi .*\(optional\)/);
      assert.match(text, /install pxelinux, syslinux-common, shim-signed, ipxe, then run rackboot loaders sync again/);
    },
  );

  test('RHEL/Rocky paths; loaders in subdirectories; nothing found names the RHEL packages', async () => {
    const dir = tmp();
    const root = join(dir, 'root');
    put(root, 'etc/os-release', 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n');
    for (const f of ['pxelinux.0', 'ldlinux.c32', 'libutil.c32', 'libcom32.c32', 'menu.c32', 'chain.c32'])
      put(root, `usr/share/syslinux/${f}`, `rhel ${f}`);
    put(root, 'boot/efi/EFI/rocky/shimx64.efi', 'rocky shim');
    put(root, 'boot/efi/EFI/rocky/grubx64.efi', 'rocky grub');
    put(root, 'usr/share/ipxe/undionly.kpxe', 'rhel undionly');
    put(root, 'usr/share/ipxe/ipxe-x86_64.efi', 'rhel ipxe efi');
    const tftpRoot = join(dir, 'tftpboot');
    const loaders = {
      bios: 'bios/pxelinux.0',
      uefi: 'efi/shimx64.efi',
      ipxeBios: 'ipxe/undionly.kpxe',
      ipxeUefi: 'ipxe/ipxe.efi',
    };
    const r = await syncLoaders({ tftpRoot, loaders, fsRoot: root, grubMknetdir: '' });
    const text = formatSyncReport(r, tftpRoot).join('\n');
    assert.equal(r.family, 'rhel');
    assert.ok(r.ok, text);
    const got = (p: string) => readFileSync(join(tftpRoot, p), 'utf8');
    assert.equal(got('bios/pxelinux.0'), 'rhel pxelinux.0');
    assert.equal(got('bios/chain.c32'), 'rhel chain.c32');
    assert.equal(got('efi/shimx64.efi'), 'rocky shim');
    assert.equal(got('efi/grubx64.efi'), 'rocky grub', 'shim loads grubx64.efi from its own directory');
    assert.equal(got('ipxe/undionly.kpxe'), 'rhel undionly');
    assert.equal(got('ipxe/ipxe.efi'), 'rhel ipxe efi');

    const empty = join(dir, 'empty');
    put(empty, 'etc/os-release', 'ID="rhel"\n');
    const none = await syncLoaders({
      tftpRoot: join(dir, 't3'),
      loaders: DEFAULT_LOADERS,
      fsRoot: empty,
      grubMknetdir: '',
    });
    const noneText = formatSyncReport(none, join(dir, 't3')).join('\n');
    assert.equal(none.ok, false);
    assert.match(
      noneText,
      /install syslinux \(syslinux-tftpboot on EL8\+\), syslinux-nonlinux \(EL8\+\) or syslinux, shim-x64, grub2-efi-x64, ipxe-bootimgs-x86/,
    );
  });
});

describe('doctor', () => {
  test('a fresh machine: loaders, images and the public URL are reported with their fixes; exit 1', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const closedPort = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const e = await makeEnv({ 'http-port': String(closedPort), 'tftp-port': '0' });
    try {
      writeFileSync(join(e.config.profilesDir, 'imported.yaml'), 'extends: rhvh-base\nimage: rhvh-9.9\n');
      e.core.catalog.reload();
      const r = await runDoctor({
        config: { ...e.config, publicUrl: `http://127.0.0.1:${closedPort}` },
        images: imageViewOf(e.core.view),
        profiles: e.core.catalog.snapshot,
        timeoutMs: 1000,
      });
      const text = formatDoctor(r).join('\n');
      assert.equal(r.ok, false);
      assert.match(text, /FAIL boot loaders missing in .*pxelinux\.0.*\n\s+fix: run rackboot loaders sync/);
      assert.match(
        text,
        /FAIL profile imported uses image rhvh-9\.9, which is not imported\n\s+fix: rackboot image import \/path\/to\/RHVH\.iso --name rhvh-9\.9/,
      );
      assert.match(text, /FAIL profile rhvh-base: missing .*rhvh-4\.3\/vmlinuz/);
      assert.match(text, new RegExp(`FAIL public URL http://127\\.0\\.0\\.1:${closedPort} is a loopback address`));
      assert.match(text, new RegExp(`FAIL public URL http://127\\.0\\.0\\.1:${closedPort}/healthz: ECONNREFUSED`));
      assert.match(text, /WARN TFTP is off/);
      assert.match(text, /ok {3}database .*rackboot\.db \(with its WAL\): \d+\.\d MiB/);
      assert.match(text, /problem\(s\) to fix/);

      const out: string[] = [];
      const code = await runCli(
        [
          'doctor',
          '--data-dir',
          e.config.dataDir,
          '--profiles-dir',
          e.config.profilesDir,
          '--tftp-root',
          e.config.tftpRoot,
          '--images-dir',
          e.config.imagesDir,
          '--listen',
          '127.0.0.1',
          '--http-port',
          String(closedPort),
          '--tftp-port',
          '0',
          '--public-url',
          `http://127.0.0.1:${closedPort}`,
        ],
        { out: (s) => out.push(s), err: (s) => out.push(s), readStdin: async () => '', env: {} },
      );
      assert.equal(code, 1);
      assert.match(out.join('\n'), /fix: run rackboot loaders sync/);
    } finally {
      await e.cleanup();
    }
  });

  test(
    'a running rackboot with loaders and the image: ports answer, everything is present, /healthz answers',
    { skip: isoToolsMissing() ?? (noDebian ? 'Debian loader packages missing' : false) },
    async () => {
      const e = await makeEnv();
      const work = tmp('rackboot-iso-');
      try {
        const iso = buildRhvhIso(work, { payload: 'gzip' });
        const imp = await importIso(
          iso.iso,
          {},
          { store: e.core.images, tftpRoot: e.config.tftpRoot, imagesDir: e.config.imagesDir },
        );
        assert.ok(imp.ok, JSON.stringify(imp));
        await syncLoaders({ tftpRoot: e.config.tftpRoot, loaders: DEFAULT_LOADERS });
        for (const f of ['rhvh-base.yaml', 'rhvh-custom-thin.yaml', 'rhvh-stig-satellite.yaml']) {
          const p = join(e.config.profilesDir, f);
          writeFileSync(p, readFileSync(p, 'utf8').replace(/^image:\n(  .*\n)+/m, 'image: rhvh-4.3.8\n'));
        }
        await e.core.close();
        let running: Awaited<ReturnType<typeof startRackboot>> | undefined;
        let flags: Record<string, string> = {};
        let tftpPort = 0;
        for (let attempt = 0; !running; attempt++) {
          const s = dgram.createSocket('udp4');
          await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
          tftpPort = s.address().port;
          s.close();
          flags = {
            'data-dir': e.config.dataDir,
            'profiles-dir': e.config.profilesDir,
            'tftp-root': e.config.tftpRoot,
            'images-dir': e.config.imagesDir,
            listen: '127.0.0.1',
            'tftp-port': String(tftpPort),
            'log-level': 'error',
          };
          try {
            running = await startRackboot(loadConfig({ ...flags, 'http-port': '0' }, {}, e.dir), silentLogger(), {
              RACKBOOT_ADMIN_TOKEN: 't',
            });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 4) throw err;
          }
        }
        try {
          const config = loadConfig(
            { ...flags, 'http-port': String(running.httpPort), 'public-url': `http://127.0.0.1:${running.httpPort}` },
            {},
            e.dir,
          );
          const { openCore } = await import('../../src/serve.ts');
          const core = await openCore(config, silentLogger());
          try {
            const r = await runDoctor({
              config,
              images: imageViewOf(core.view),
              profiles: core.catalog.snapshot,
              timeoutMs: 2000,
            });
            const text = formatDoctor(r).join('\n');
            assert.match(text, new RegExp(`ok   HTTP port ${running.httpPort}: rackboot answers /healthz`));
            assert.match(text, new RegExp(`ok   TFTP port ${tftpPort}: a TFTP server answers`));
            assert.match(text, /ok   boot loaders present/);
            assert.match(
              text,
              /ok   profile rhvh-base: image rhvh-4\.3\.8 \(RHVH 4\.3\.8-20200123\.0\.el7_7\) is imported and complete/,
            );
            assert.match(text, /ok   public URL http:\/\/127\.0\.0\.1:\d+ answers \/healthz/);
            // On loopback the only failure left is the loopback public URL itself.
            assert.deepEqual(
              r.findings.filter((f) => f.level === 'fail').map((f) => f.what),
              [
                `public URL http://127.0.0.1:${running.httpPort} is a loopback address: installing hosts cannot reach it`,
              ],
              text,
            );
            if (!efiSourcesMissing()) {
              // UEFI: the image's own (Debian-signed stand-in) chain, and the prefix-only GRUB it carries.
              assert.match(
                text,
                /ok   profile rhvh-base: UEFI hosts boot rhvh-4\.3\.8's own shim and GRUB \(rhvh-4\.3\.8\/EFI\/BOOT\/BOOTX64\.EFI\), Debian-signed like its kernel/,
              );
              assert.match(
                text,
                /WARN UEFI hosts of profile\(s\) rhvh-base, rhvh-custom-thin, rhvh-stig-satellite boot a GRUB \(rhvh-4\.3\.8\/EFI\/BOOT\/BOOTX64\.EFI\) that asks only \/grub\/x86_64-efi\/grub\.cfg, \/grub\/grub\.cfg, never grub\.cfg-01-<mac>: .*tie their address to the host/,
              );
              // An image without EFI/BOOT/ (its kernel counts as Red Hat's) through Debian's synced shim: Secure Boot would refuse it.
              const bare = buildRhvhIso(work, { seed: 'noefi', withEfi: false });
              assert.ok(
                (
                  await importIso(
                    bare.iso,
                    { name: 'noefi' },
                    { store: core.images, tftpRoot: config.tftpRoot, imagesDir: config.imagesDir },
                  )
                ).ok,
              );
              writeFileSync(
                join(config.profilesDir, 'noefi.yaml'),
                'extends: rhvh-base\nimage: noefi\nboot:\n  uefiLoaders: image\n',
              );
              core.catalog.reload();
              const again = formatDoctor(
                await runDoctor({
                  config,
                  images: imageViewOf(core.view),
                  profiles: core.catalog.snapshot,
                  timeoutMs: 2000,
                }),
              ).join('\n');
              assert.match(
                again,
                /WARN profile noefi says boot\.uefiLoaders: image, but image noefi has no EFI\/BOOT\/ loaders: its UEFI hosts boot the synced grubx64\.efi/,
              );
              assert.match(
                again,
                /WARN profile noefi: UEFI hosts boot the synced loaders, whose shim trusts Debian; the kernel of noefi is signed by Red Hat: with Secure Boot on, it is refused\n\s+fix: use the image's own loaders .* install RHEL's shim-x64 and grub2-efi-x64/,
              );
            }
          } finally {
            await core.close();
          }
        } finally {
          await running.close();
        }
      } finally {
        await e.cleanup();
      }
    },
  );
});
