// The UEFI chain on a real serve: an ISO with EFI/BOOT/ imported, a profile using it, hosts in build.
// The boot decision names the image's shim (PXE) or its URL (HTTP boot); the shim's GRUB and the config
// names that GRUB asks are served over TFTP (curl tftp://) and HTTP, under /tftp/ and at the root paths a
// GRUB with root (http,server) asks; boot.uefiLoaders: sync switches to the synced loaders.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';
import { loadSecret, startRackboot } from '../../src/serve.ts';
import { importIso } from '../../src/images/import.ts';
import { openStore } from '../../src/store/index.ts';
import { decideBoot } from '../../src/boot/decide.ts';
import type { Mac } from '../../src/net/mac.ts';
import { buildRhvhIso, efiSourcesMissing, isoToolsMissing, type BuiltIso } from '../fixtures/images/rhvh-iso.ts';
import { REPO, tempDir } from '../support/core.ts';

const execFileAsync = promisify(execFile);
const skip = isoToolsMissing() ?? efiSourcesMissing() ?? false;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MAC_IMAGE = '52:54:00:ee:00:01' as Mac;
const MAC_SYNC = '52:54:00:ee:00:02' as Mac;

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  s.close();
  return port;
}

let work: string;
let iso: BuiltIso;
before(() => {
  if (skip) return;
  work = tempDir('rackboot-uefi-');
  iso = buildRhvhIso(work);
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('UEFI chain', { skip }, () => {
  test("the image's shim per host (PXE and HTTP boot), its GRUB and configs over TFTP and HTTP, boot.uefiLoaders: sync", async () => {
    const dir = tempDir();
    try {
      cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
      const dirs = {
        'data-dir': join(dir, 'data'),
        'profiles-dir': join(dir, 'profiles'),
        'tftp-root': join(dir, 'tftpboot'),
        'images-dir': join(dir, 'images'),
      };
      mkdirSync(dirs['data-dir'], { recursive: true });
      // The synced loaders: Debian's signed GRUB as loaders.uefi (what loaders sync installs).
      mkdirSync(dirs['tftp-root'], { recursive: true });
      copyFileSync('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed', join(dirs['tftp-root'], 'grubx64.efi'));
      {
        const store = await openStore({ dataDir: dirs['data-dir'], secret: loadSecret(dirs['data-dir']) });
        const r = await importIso(
          iso.iso,
          {},
          { store: store.images, tftpRoot: dirs['tftp-root'], imagesDir: dirs['images-dir'] },
        );
        await store.close();
        assert.ok(r.ok, r.ok ? '' : r.error);
      }
      writeFileSync(join(dirs['profiles-dir'], 'own.yaml'), 'extends: rhvh-base\nimage: rhvh-4.3.8\n');
      writeFileSync(
        join(dirs['profiles-dir'], 'synced.yaml'),
        'extends: rhvh-base\nimage: rhvh-4.3.8\nboot:\n  uefiLoaders: sync\n',
      );
      let running: Awaited<ReturnType<typeof startRackboot>> | undefined;
      for (let attempt = 0; !running; attempt++) {
        const config = loadConfig(
          {
            ...dirs,
            listen: '127.0.0.1',
            'http-port': '0',
            'tftp-port': String(await freeUdpPort()),
            'public-url': 'http://127.0.0.1:1',
            'log-level': 'error',
          },
          {},
          dir,
        );
        try {
          running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: 'uefi-test' });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 4) throw err;
        }
      }
      try {
        const { core } = running;
        assert.ok(core.catalog.get('own') && core.catalog.get('synced'), JSON.stringify(core.catalog.snapshot.errors));
        await core.hosts.insert({
          mac: MAC_IMAGE,
          hostname: 'uefi01',
          profile: 'own',
          ip: '127.0.0.1',
          netmask: '255.0.0.0',
          gateway: '127.0.0.1',
          nameservers: [],
          params: {},
        } as never);
        await core.hosts.insert({
          mac: MAC_SYNC,
          hostname: 'uefi02',
          profile: 'synced',
          ip: '127.0.0.2',
          netmask: '255.0.0.0',
          gateway: '127.0.0.1',
          nameservers: [],
          params: {},
        } as never);
        const p = core.provisioner;
        const loaders = { bios: 'pxelinux.0', uefi: 'grubx64.efi', ipxeBios: 'undionly.kpxe', ipxeUefi: 'ipxe.efi' };
        const decide = (mac: Mac, arch: number) =>
          decideBoot({
            client: { mac, arch, ipxe: false },
            host: p.bootState(mac),
            loaders,
            httpBase: 'http://127.0.0.1:1',
            answerUnknown: true,
          });
        const fileOf = (d: ReturnType<typeof decide>) =>
          d.action === 'none' ? 'none' : d.file.kind === 'tftp' ? d.file.path : d.file.url;

        // Not in build: the image's shim all the same (its GRUB then gets the local-boot config).
        assert.equal(fileOf(decide(MAC_IMAGE, 7)), 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI');
        assert.ok((await p.startBuild(MAC_IMAGE, 'test')).ok);
        assert.ok((await p.startBuild(MAC_SYNC, 'test')).ok);
        const own = decide(MAC_IMAGE, 9);
        assert.equal(own.action, 'install');
        assert.equal(fileOf(own), 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI');
        assert.match('reason' in own ? own.reason : '', /rhvh-4\.3\.8's own shim and GRUB/);
        assert.equal(fileOf(decide(MAC_IMAGE, 0)), 'pxelinux.0', 'BIOS keeps pxelinux');
        // Debian's grubnetx64 (standing in for Red Hat's) has no http module: HTTP boot goes through iPXE, and says why.
        const httpBoot = decide(MAC_IMAGE, 16);
        assert.equal(fileOf(httpBoot), 'http://127.0.0.1:1/tftp/ipxe.efi');
        assert.match(httpBoot.action !== 'none' ? httpBoot.reason : '', /no http module/);
        const synced = decide(MAC_SYNC, 7);
        assert.equal(fileOf(synced), 'grubx64.efi');
        assert.match(synced.action !== 'none' ? synced.reason : '', /synced loaders \(boot\.uefiLoaders: sync\)/);

        const tftp = async (path: string) => {
          const dest = join(dir, `got-${Math.random().toString(36).slice(2)}`);
          await execFileAsync('curl', [
            '-sS',
            '--max-time',
            '20',
            '-o',
            dest,
            `tftp://127.0.0.1:${running!.tftpPort}/${path}`,
          ]);
          return readFileSync(dest);
        };
        const base = `http://127.0.0.1:${running.httpPort}`;
        // The shim and the GRUB it loads from its own directory, over TFTP and HTTP, byte for byte.
        for (const [name, path] of [
          ['BOOTX64.EFI', 'rhvh-4.3.8/EFI/BOOT/BOOTX64.EFI'],
          ['grubx64.efi', 'rhvh-4.3.8/EFI/BOOT/grubx64.efi'],
        ]) {
          assert.equal(sha(await tftp(path)), iso.efi![name], `tftp ${path}`);
          assert.equal(
            sha(Buffer.from(await (await fetch(`${base}/tftp/${path}`)).arrayBuffer())),
            iso.efi![name],
            `http ${path}`,
          );
        }
        // Per-MAC names under the shim's directory (Red Hat's GRUB asks there first) and the fixed prefix: the host's install config.
        const pxeName = `01-${MAC_IMAGE.replace(/:/g, '-')}`;
        for (const path of [
          `rhvh-4.3.8/EFI/BOOT/grub.cfg-${pxeName}`,
          `EFI/BOOT/grub.cfg-${pxeName}`,
          `/grub/grub.cfg-${pxeName}`,
        ]) {
          const cfg = (await tftp(path)).toString();
          assert.match(cfg, /^\s*linux \/rhvh-4\.3\.8\/vmlinuz inst\.stage2=/m, path);
          assert.match(cfg, /^\s*initrd \/rhvh-4\.3\.8\/initrd\.img$/m, path);
          assert.doesNotMatch(cfg, /^\s*(linuxefi|initrdefi|if|else)\b/m, 'Debian-signed GRUB: linux, once');
          const overHttp = await (await fetch(`${base}/tftp/${path.replace(/^\//, '')}`)).text();
          assert.equal(overHttp, cfg, `http /tftp/${path}`);
        }
        // GRUB with root (http,server) asks at the root, without /tftp/: configs and the kernel are answered there too.
        const atRoot = await fetch(`${base}/EFI/BOOT/grub.cfg-${pxeName}`);
        assert.equal(atRoot.status, 200);
        assert.match(await atRoot.text(), /linux \/rhvh-4\.3\.8\/vmlinuz/);
        const kernel = await fetch(`${base}/rhvh-4.3.8/vmlinuz`);
        assert.equal(kernel.status, 200);
        assert.equal(sha(Buffer.from(await kernel.arrayBuffer())), iso.sha.kernel);
        assert.equal((await fetch(`${base}/rhvh-4.3.8/no-such-file`)).status, 404);
        assert.equal((await fetch(`${base}/%2e%2e/%2e%2e/etc/passwd`)).status, 404);
        assert.equal((await fetch(`${base}/healthz`)).status, 200, 'routes before the fallback are not shadowed');
        assert.equal((await fetch(`${base}/api/hosts`)).status, 401, 'the API keeps its token check');
      } finally {
        await running.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
