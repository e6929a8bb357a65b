// Image import end to end: a synthetic RHVH ISO built here (rpmbuild + xorriso), imported with bsdtar,
// then every file fetched over HTTP and TFTP (curl tftp://) from a real serve and compared by sha256.
// Failure cases leave nothing behind: a corrupt ISO, an ISO without the image-update RPM, a full disk.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
  closeSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';
import { startRackboot } from '../../src/serve.ts';
import { runCli } from '../../src/cli.ts';
import { importIso } from '../../src/images/import.ts';
import type { ImageRecord } from '../../src/images/store.ts';
import { openStore } from '../../src/store/index.ts';
import { buildRhvhIso, efiSourcesMissing, isoToolsMissing, type BuiltIso } from '../fixtures/images/rhvh-iso.ts';
import { imageEfiLoaders } from '../../src/images/store.ts';
import { makeEnv, tempDir, type TestEnv } from '../support/core.ts';

const missing = isoToolsMissing();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const TOKEN = 'images-test-token';
const execFileAsync = promisify(execFile);

let work: string;
let good: BuiltIso;
before(() => {
  if (missing) return;
  work = tempDir('rackboot-iso-');
  good = buildRhvhIso(work);
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function cliIo() {
  const out: string[] = [],
    err: string[] = [];
  return {
    io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), readStdin: async () => '', env: {} },
    out,
    err,
  };
}

function flags(e: TestEnv): string[] {
  return [
    '--data-dir',
    e.config.dataDir,
    '--profiles-dir',
    e.config.profilesDir,
    '--tftp-root',
    e.config.tftpRoot,
    '--images-dir',
    e.config.imagesDir,
  ];
}

/** Nothing an import writes is left: no rows, and the two roots hold no entries (temp dirs included). */
async function assertNothingImported(store: { list(): Promise<ImageRecord[]> }, tftpRoot: string, imagesDir: string) {
  assert.deepEqual(await store.list(), []);
  for (const root of [tftpRoot, imagesDir])
    if (existsSync(root)) assert.deepEqual(readdirSync(root), [], `${root} should be empty`);
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  s.close();
  return port;
}

describe('image import', { skip: missing }, () => {
  test('import via the CLI, then every file over HTTP and TFTP matches, the API lists it, profiles can use it', async () => {
    const e = await makeEnv();
    try {
      const { io, out, err } = cliIo();
      const t0 = Date.now();
      const code = await runCli(['image', 'import', good.iso, ...flags(e)], io);
      assert.equal(code, 0, err.join('\n'));
      assert.match(out.join('\n'), /imported rhvh-4\.3\.8: RHVH 4\.3\.8-20200123\.0\.el7_7/);
      assert.match(err.join('\n'), /extracting ISO: 100%/, 'plain progress lines when not on a terminal');
      assert.ok(Date.now() - t0 < 20_000);

      const rec = await e.core.images.get('rhvh-4.3.8');
      assert.ok(rec);
      assert.equal(rec.version, '4.3.8-20200123.0.el7_7');
      assert.equal(rec.sourceSha256, sha(readFileSync(good.iso)));
      assert.deepEqual(await e.core.images.resolve('rhvh-4.3.8'), {
        kernel: 'rhvh-4.3.8/vmlinuz',
        initrd: 'rhvh-4.3.8/initrd.img',
        stage2: 'rhvh-4.3.8',
        liveimg: `rhvh-4.3.8/${good.liveimgName}`,
      });
      // The two squashfs files are never confused: the liveimg is the RPM's payload, stage2 the ISO's LiveOS.
      const byRole = (r: string) => rec.files.find((f) => f.role === r)!;
      assert.equal(byRole('liveimg').sha256, good.sha.hypervisor);
      assert.equal(byRole('stage2').sha256, good.sha.stage2);
      assert.equal(byRole('stage2').path, 'rhvh-4.3.8/LiveOS/squashfs.img');
      assert.equal(byRole('kernel').sha256, good.sha.kernel);
      assert.equal(byRole('initrd').sha256, good.sha.initrd);
      assert.equal(byRole('treeinfo').sha256, good.sha.treeinfo);
      assert.equal(byRole('iso').root, 'source');
      for (const f of rec.files.filter((x) => x.root !== 'source')) {
        const full = join(f.root === 'tftp' ? e.config.tftpRoot : e.config.imagesDir, f.path);
        assert.equal(sha(readFileSync(full)), f.sha256, full);
        assert.equal(statSync(full).size, f.size);
      }

      // A profile naming the image renders with its URLs.
      writeFileSync(
        join(e.config.profilesDir, 'imported.yaml'),
        'extends: rhvh-base\ndescription: uses the imported image\nimage: rhvh-4.3.8\n',
      );
      e.core.catalog.reload();
      assert.ok(e.core.catalog.get('imported'), JSON.stringify(e.core.catalog.snapshot.errors));
      // The image came from another core (the CLI's): this one's view sees the images table change (every 2 s in serve).
      await e.core.view.checkImages();
      assert.ok(e.core.view.image('rhvh-4.3.8'), 'the view has the image imported by another process');
      await e.core.hosts.insert({
        mac: '52:54:00:aa:bb:07',
        hostname: 'rhvh07',
        profile: 'imported',
        ip: '10.99.0.17',
        netmask: '255.255.255.0',
        gateway: '10.99.0.1',
        nameservers: [],
        params: {},
      } as never);
      const ks = await e.core.provisioner.preview('52:54:00:aa:bb:07' as never, 'kickstart', { maskSecrets: true });
      assert.ok(ks.ok, ks.ok ? '' : ks.message);
      assert.match(
        ks.value,
        new RegExp(
          `liveimg --url=http://10\\.99\\.0\\.1:8080/images/rhvh-4\\.3\\.8/${good.liveimgName.replace(/\./g, '\\.')}`,
        ),
      );
      const started = await e.core.provisioner.startBuild('52:54:00:aa:bb:07' as never, 'test');
      assert.ok(started.ok, started.ok ? '' : started.message);
      const pxe = await e.core.provisioner.preview('52:54:00:aa:bb:07' as never, 'pxelinux', { maskSecrets: true });
      assert.ok(pxe.ok);
      assert.match(pxe.value, /rhvh-4\.3\.8\/vmlinuz/);
      assert.match(pxe.value, /inst\.stage2=http:\/\/10\.99\.0\.1:8080\/images\/rhvh-4\.3\.8(\s|$)/);

      // remove is refused while a profile uses the image, and names it.
      const rm1 = cliIo();
      assert.equal(await runCli(['image', 'remove', 'rhvh-4.3.8', ...flags(e)], rm1.io), 1);
      assert.match(rm1.err.join('\n'), /used by profile\(s\) imported/);

      // Serve it for real and fetch every file.
      await e.core.close();
      // Another process may take a free port between our probe and the bind: try a few.
      let running: Awaited<ReturnType<typeof startRackboot>> | undefined;
      for (let attempt = 0; !running; attempt++) {
        const tftpPort = await freeUdpPort();
        const config = loadConfig(
          {
            'data-dir': e.config.dataDir,
            'profiles-dir': e.config.profilesDir,
            'tftp-root': e.config.tftpRoot,
            'images-dir': e.config.imagesDir,
            listen: '127.0.0.1',
            'http-port': '0',
            'tftp-port': String(tftpPort),
            'public-url': 'http://127.0.0.1:1',
            'log-level': 'error',
          },
          {},
          e.dir,
        );
        try {
          running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: TOKEN });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 4) throw err;
        }
      }
      try {
        const base = `http://127.0.0.1:${running.httpPort}`;
        for (const f of rec.files.filter((x) => x.root !== 'source')) {
          const url = `${base}/${f.root === 'tftp' ? 'tftp' : 'images'}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
          const res = await fetch(url);
          assert.equal(res.status, 200, url);
          assert.equal(sha(Buffer.from(await res.arrayBuffer())), f.sha256, url);
        }
        // Anaconda reads the liveimg with Range requests.
        const ranged = await fetch(`${base}/images/${rec.liveimg}`, { headers: { Range: 'bytes=100-199' } });
        assert.equal(ranged.status, 206);
        assert.equal(Buffer.from(await ranged.arrayBuffer()).length, 100);
        for (const f of rec.files.filter((x) => x.root === 'tftp')) {
          const dest = join(e.dir, 'tftp-got');
          // Async: the TFTP server runs in this process, a spawnSync would stall it.
          await execFileAsync('curl', [
            '-sS',
            '--max-time',
            '20',
            '-o',
            dest,
            `tftp://127.0.0.1:${running.tftpPort}/${f.path}`,
          ]);
          assert.equal(sha(readFileSync(dest)), f.sha256, `tftp ${f.path}`);
        }
        const api = await fetch(`${base}/api/images`, { headers: { Authorization: `Bearer ${TOKEN}` } });
        assert.equal(api.status, 200);
        const list = (await api.json()) as {
          name: string;
          version: string;
          usedBy: string[];
          liveimg: string;
          files: unknown[];
        }[];
        assert.equal(list.length, 1);
        assert.equal(list[0].name, 'rhvh-4.3.8');
        assert.equal(list[0].version, '4.3.8-20200123.0.el7_7');
        assert.deepEqual(list[0].usedBy, ['imported']);
        if (good.efi) {
          const efi = (
            list[0] as unknown as {
              efiLoaders: {
                shim: { path: string; facts: { vendor: string } };
                grub: { facts: { grub: { perMac: boolean } } };
              };
            }
          ).efiLoaders;
          assert.equal(efi.shim.path, 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI');
          assert.equal(efi.shim.facts.vendor, 'Debian');
          assert.equal(efi.grub.facts.grub.perMac, false);
        }
        assert.equal((await fetch(`${base}/api/images`)).status, 401);
      } finally {
        await running.close();
      }

      // Once no profile uses it, remove takes the row and both directories.
      rmSync(join(e.config.profilesDir, 'imported.yaml'));
      const rm2 = cliIo();
      assert.equal(await runCli(['image', 'remove', 'rhvh-4.3.8', ...flags(e)], rm2.io), 0, rm2.err.join('\n'));
      const store = await openStore({ dataDir: e.config.dataDir, secret: Buffer.alloc(32) });
      try {
        await assertNothingImported(store.images, e.config.tftpRoot, e.config.imagesDir);
      } finally {
        await store.close();
      }
    } finally {
      await e.cleanup();
    }
  });

  test('the same ISO again is a no-op; a different ISO under the same name is refused; --force replaces it', async () => {
    const e = await makeEnv();
    try {
      const d = { store: e.core.images, tftpRoot: e.config.tftpRoot, imagesDir: e.config.imagesDir };
      const first = await importIso(good.iso, { name: 'lab' }, d);
      assert.ok(first.ok && first.status === 'imported', JSON.stringify(first));
      const mtime = statSync(join(e.config.imagesDir, 'lab', good.liveimgName)).mtimeMs;
      const again = await importIso(good.iso, { name: 'lab' }, d);
      assert.ok(again.ok && again.status === 'unchanged');
      assert.equal(statSync(join(e.config.imagesDir, 'lab', good.liveimgName)).mtimeMs, mtime, 'files untouched');

      const other = buildRhvhIso(work, {
        seed: 'other',
        version: '4.3.9',
        release: '20200324.0.el7_8',
        payload: 'gzip',
      });
      const refused = await importIso(other.iso, { name: 'lab' }, d);
      assert.ok(!refused.ok);
      assert.match(refused.error, /already imported from a different ISO.*--force/);
      assert.equal((await e.core.images.get('lab'))!.version, '4.3.8-20200123.0.el7_7');
      assert.deepEqual(readdirSync(e.config.imagesDir), ['lab']);

      const replaced = await importIso(other.iso, { name: 'lab', replace: true }, d);
      assert.ok(replaced.ok && replaced.status === 'imported', JSON.stringify(replaced));
      assert.equal((await e.core.images.get('lab'))!.version, '4.3.9-20200324.0.el7_8');
      assert.deepEqual(
        readdirSync(join(e.config.imagesDir, 'lab')).filter((n) => n.endsWith('.squashfs.img')),
        [other.liveimgName],
      );
      assert.equal(sha(readFileSync(join(e.config.tftpRoot, 'lab', 'vmlinuz'))), other.sha.kernel);
      assert.deepEqual(readdirSync(e.config.imagesDir), ['lab'], 'the old tree is gone, no temp dirs left');
      assert.deepEqual(readdirSync(e.config.tftpRoot), ['lab']);

      // The default name comes from the RPM header's version.
      const named = await importIso(other.iso, {}, d);
      assert.ok(named.ok && named.image.name === 'rhvh-4.3.9');
      assert.ok(named.ok && named.warnings.some((w) => /also imported as lab/.test(w)));
    } finally {
      await e.cleanup();
    }
  });

  test('a corrupt ISO (random bytes, truncated, damaged RPM payload) gives a clear error and leaves nothing', async () => {
    const e = await makeEnv();
    try {
      const d = { store: e.core.images, tftpRoot: e.config.tftpRoot, imagesDir: e.config.imagesDir };
      const junk = join(work, 'junk.iso');
      writeFileSync(junk, Buffer.alloc(300_000, 7));
      const r1 = await importIso(junk, {}, d);
      assert.ok(!r1.ok);
      assert.match(r1.error, /is not an ISO 9660 image/);

      const whole = readFileSync(good.iso);
      const truncated = join(work, 'truncated.iso');
      writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length * 0.6)));
      const r2 = await importIso(truncated, {}, d);
      assert.ok(!r2.ok);
      assert.match(r2.error, /cannot be read as an ISO 9660 image|damaged|Truncated/i);
      assert.match(r2.error, /nothing was imported/);
      await assertNothingImported(e.core.images, e.config.tftpRoot, e.config.imagesDir);

      // Overwrite the middle of the RPM's compressed payload: the ISO lists fine, the header parses,
      // the payload does not decompress.
      const damaged = join(work, 'damaged.iso');
      copyFileSync(good.iso, damaged);
      const rpmAt = whole.indexOf(Buffer.from([0xed, 0xab, 0xee, 0xdb]));
      assert.ok(rpmAt > 0);
      const fd = openSync(damaged, 'r+');
      writeSync(fd, Buffer.alloc(4096, 0x55), 0, 4096, rpmAt + 200_000);
      closeSync(fd);
      const r3 = await importIso(damaged, {}, d);
      assert.ok(!r3.ok, 'a damaged payload must fail');
      assert.match(r3.error, /hypervisor image|RPM|damaged/);
      assert.match(r3.error, /nothing was imported/);
      await assertNothingImported(e.core.images, e.config.tftpRoot, e.config.imagesDir);

      const nofile = await importIso(join(work, 'nope.iso'), {}, d);
      assert.ok(!nofile.ok);
      assert.match(nofile.error, /no such file/);
    } finally {
      await e.cleanup();
    }
  });

  test(
    'EFI/BOOT/: shim, GRUB and MokManager copied under the names shim asks, recorded with signer and lookup, shown by import, list and the API',
    { skip: efiSourcesMissing() ?? false },
    async () => {
      const e = await makeEnv();
      try {
        const { io, out, err } = cliIo();
        assert.equal(await runCli(['image', 'import', good.iso, ...flags(e)], io), 0, err.join('\n'));
        const said = out.join('\n');
        assert.match(
          said,
          /\n  shim +\S+\/rhvh-4\.3\.8\/EFI\/BOOT\/BOOTX64\.EFI: signed by Microsoft [^\n]*; trusts Debian Secure Boot CA\n/,
        );
        assert.match(
          said,
          /\n  grub +\S+\/rhvh-4\.3\.8\/EFI\/BOOT\/grubx64\.efi: signed by Debian Secure Boot Signer [^\n]*; prefix only: \/grub\/x86_64-efi\/grub\.cfg, then \/grub\/grub\.cfg[^\n]*; kernel command linux/,
        );
        assert.match(said, /\n  mokmgr +\S+\/rhvh-4\.3\.8\/EFI\/BOOT\/mmx64\.efi: signed by Debian/);
        assert.match(said, /UEFI hosts of profiles using this image boot its shim/);
        const rec = (await e.core.images.get('rhvh-4.3.8'))!;
        const efi = imageEfiLoaders(rec)!;
        assert.equal(efi.shim?.path, 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI');
        assert.equal(efi.grub?.path, 'rhvh-4.3.8/EFI/BOOT/grubx64.efi');
        assert.equal(efi.mokmanager?.path, 'rhvh-4.3.8/EFI/BOOT/mmx64.efi');
        assert.deepEqual(
          { kind: efi.shim?.facts?.kind, vendor: efi.shim?.facts?.vendor },
          { kind: 'shim', vendor: 'Debian' },
        );
        assert.deepEqual(
          {
            perMac: efi.grub?.facts?.grub?.perMac,
            cmd: efi.grub?.facts?.grub?.kernelCommand,
            vendor: efi.grub?.facts?.signerVendor,
          },
          { perMac: false, cmd: 'linux', vendor: 'Debian' },
        );
        for (const [name, role] of [
          ['BOOTX64.EFI', 'shim'],
          ['grubx64.efi', 'grub'],
          ['mmx64.efi', 'mokmanager'],
        ] as const) {
          const f = rec.files.find((x) => x.role === role)!;
          assert.equal(f.sha256, good.efi![name], name);
          assert.equal(sha(readFileSync(join(e.config.tftpRoot, f.path))), good.efi![name]);
        }
        // Only the loaders: nothing else of EFI/BOOT/ (a real ISO's grub.cfg is its CD menu) is served from the tftp root.
        assert.deepEqual(readdirSync(join(e.config.tftpRoot, 'rhvh-4.3.8/EFI/BOOT')).sort(), [
          'BOOTX64.EFI',
          'grubx64.efi',
          'mmx64.efi',
        ]);
        const list = cliIo();
        assert.equal(await runCli(['image', 'list', ...flags(e)], list.io), 0);
        assert.match(list.out.join('\n'), /EFI LOADERS/);
        assert.match(list.out.join('\n'), /\tshim \+ GRUB \(Debian; GRUB prefix only\)\t/);

        // An image recorded before EFI/BOOT/ was copied: importing the same ISO again says how to get the loaders.
        await e.core.images.replace({
          ...rec,
          files: rec.files.filter((f) => f.role !== 'shim' && f.role !== 'grub' && f.role !== 'mokmanager'),
        });
        const again = cliIo();
        assert.equal(await runCli(['image', 'import', good.iso, ...flags(e)], again.io), 0, again.err.join('\n'));
        assert.match(again.out.join('\n'), /already imported from this ISO/);
        assert.match(
          again.err.join('\n'),
          /warning: rhvh-4\.3\.8 was imported before rackboot copied the ISO's EFI\/BOOT\/ loaders.*run rackboot image remove rhvh-4\.3\.8, then import again/,
        );

        // Plain ISO 9660 names (GRUBX64.EFI): found without case, written as shim asks for them.
        const upper = buildRhvhIso(work, { seed: 'upper', efiUpperCase: true });
        const u = cliIo();
        assert.equal(
          await runCli(['image', 'import', upper.iso, '--name', 'upper', ...flags(e)], u.io),
          0,
          u.err.join('\n'),
        );
        assert.deepEqual(readdirSync(join(e.config.tftpRoot, 'upper/EFI/BOOT')).sort(), [
          'BOOTX64.EFI',
          'grubx64.efi',
          'mmx64.efi',
        ]);
        assert.equal(imageEfiLoaders((await e.core.images.get('upper'))!)?.grub?.facts?.kind, 'grub');

        // No EFI/BOOT/: no loaders recorded, and the output says where UEFI hosts get theirs.
        const bare = buildRhvhIso(work, { seed: 'noefi', withEfi: false });
        const b = cliIo();
        assert.equal(
          await runCli(['image', 'import', bare.iso, '--name', 'noefi', ...flags(e)], b.io),
          0,
          b.err.join('\n'),
        );
        assert.match(
          b.out.join('\n'),
          /EFI +none in EFI\/BOOT\/: UEFI hosts of this image boot the loaders from rackboot loaders sync/,
        );
        assert.equal(imageEfiLoaders((await e.core.images.get('noefi'))!), undefined);
        assert.equal(existsSync(join(e.config.tftpRoot, 'noefi/EFI')), false);
      } finally {
        await e.cleanup();
      }
    },
  );

  test('an ISO without the image-update RPM is refused by name', async () => {
    const e = await makeEnv();
    try {
      const noRpm = buildRhvhIso(work, { withRpm: false, seed: 'norpm' });
      const { io, err } = cliIo();
      assert.equal(await runCli(['image', 'import', noRpm.iso, '--name', 'x', ...flags(e)], io), 1);
      assert.match(
        err.join('\n'),
        /has no Packages\/redhat-virtualization-host-image-update-\*\.rpm.*hypervisor image/,
      );
      await assertNothingImported(e.core.images, e.config.tftpRoot, e.config.imagesDir);
      const bad = cliIo();
      assert.equal(await runCli(['image', 'import', good.iso, '--name', 'Bad Name', ...flags(e)], bad.io), 1);
      assert.match(bad.err.join('\n'), /image name "Bad Name"/);
    } finally {
      await e.cleanup();
    }
  });

  const isRoot = process.getuid?.() === 0;
  test(
    'a full disk (a small tmpfs): refused before copying, and ENOSPC in the middle of a copy, leave nothing',
    { skip: isRoot ? false : 'needs root to mount a tmpfs' },
    async (t) => {
      const e = await makeEnv();
      const mnt = join(e.dir, 'small');
      mkdirSync(mnt);
      const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1500k', 'tmpfs', mnt]);
      if (m.status !== 0) {
        t.skip(`cannot mount a tmpfs here: ${m.stderr.toString().trim()}`);
        await e.cleanup();
        return;
      }
      try {
        const d = { store: e.core.images, tftpRoot: join(mnt, 'tftpboot'), imagesDir: join(mnt, 'images') };
        const r1 = await importIso(good.iso, {}, d);
        assert.ok(!r1.ok);
        assert.match(r1.error, /not enough space under .*images.*free/);
        await assertNothingImported(e.core.images, d.tftpRoot, d.imagesDir);

        const r2 = await importIso(good.iso, {}, { ...d, checkSpace: false });
        assert.ok(!r2.ok);
        assert.match(r2.error, /no space left on the device while extracting/);
        await assertNothingImported(e.core.images, d.tftpRoot, d.imagesDir);
      } finally {
        execFileSync('umount', [mnt]);
        await e.cleanup();
      }
    },
  );
});
