// Real firmware, real GRUB: OVMF PXE-boots Debian's signed shim + grubnetx64.efi (what `loaders sync` installs as
// grubx64.efi: prefix /grub, reads only $prefix/grub.cfg) over QEMU's user-mode TFTP, which serves the grub.cfg
// rackboot renders for a client it cannot tie to a host (templates/boot/grub-default.eta). Proves the file finds
// grub.cfg-01-<mac> from GRUB's own $net_default_mac, and boots the local disk when there is none.
// Needs no root (no namespace, no tap): QEMU's slirp is the DHCP and TFTP server. ~1-2 min per boot under TCG.
// Run: node --import tsx --test test/e2e/grub-default.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { createRenderer } from '../../src/render/render.ts';
import { REPO, tempDir } from '../support/core.ts';

const FILES = {
  shim: '/usr/lib/shim/shimx64.efi.signed',
  grub: '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed',
  code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
};
const missing = [
  ...Object.values(FILES).filter((f) => !existsSync(f)),
  ...(spawnSync('qemu-system-x86_64', ['--version']).error ? ['qemu-system-x86_64'] : []),
];
const skip = missing.length
  ? `needs ${missing.join(', ')} (Debian: shim-signed, grub-efi-amd64-signed, ovmf, qemu-system-x86)`
  : false;
const MAC = '52:54:00:12:34:56';

async function boot(dir: string, stopOn: RegExp, timeoutSec = 300): Promise<string> {
  copyFileSync(FILES.vars, join(dir, 'vars.fd'));
  const qemu = spawn(
    'qemu-system-x86_64',
    [
      '-machine',
      'q35,accel=tcg',
      '-m',
      '512',
      '-nographic',
      '-no-reboot',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${FILES.code}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${join(dir, 'vars.fd')}`,
      '-netdev',
      `user,id=n0,tftp=${join(dir, 'tftp')},bootfile=shimx64.efi`,
      '-device',
      `virtio-net-pci,netdev=n0,mac=${MAC},romfile=`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  // eslint-disable-next-line no-control-regex -- ESC starts the terminal sequences it removes
  const clean = () => out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ' ');
  return new Promise((resolve) => {
    const timer = setTimeout(() => qemu.kill('SIGKILL'), timeoutSec * 1000);
    const seen = (d: Buffer) => {
      out += d;
      if (stopOn.test(clean())) qemu.kill('SIGKILL');
    };
    qemu.stdout.on('data', seen);
    qemu.stderr.on('data', seen);
    qemu.on('exit', () => {
      clearTimeout(timer);
      resolve(clean());
    });
  });
}

test(
  "Debian signed grubnetx64 under OVMF: rackboot's default grub.cfg chains to grub.cfg-01-<mac>, else boots local",
  { skip },
  async (t) => {
    const dir = tempDir('rackboot-grubdefault-');
    try {
      mkdirSync(join(dir, 'tftp/grub'), { recursive: true });
      copyFileSync(FILES.shim, join(dir, 'tftp/shimx64.efi'));
      copyFileSync(FILES.grub, join(dir, 'tftp/grubx64.efi'));
      writeFileSync(
        join(dir, 'tftp/grub/grub.cfg'),
        createRenderer(join(REPO, 'templates')).defaultConfig('grub', 'this address is not tied to a host'),
      );
      const perMac = join(dir, 'tftp/grub/grub.cfg-01-52-54-00-12-34-56');
      writeFileSync(perMac, 'echo "RB-CHAIN-OK mac=$net_default_mac prefix=$prefix"\nsleep 5\nhalt\n');

      const t0 = Date.now();
      const chained = await boot(dir, /RB-CHAIN-OK mac=\S+ prefix=\S+/);
      t.diagnostic(`chained in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      assert.match(
        chained,
        /RB-CHAIN-OK mac=52:54:00:12:34:56 prefix=\(tftp,10\.0\.2\.2\)\/grub/,
        'GRUB loaded the per-MAC file named from $net_default_mac',
      );

      renameSync(perMac, `${perMac}.away`);
      const t1 = Date.now();
      const local = await boot(dir, /no EFI loader on a local disk/);
      t.diagnostic(`local fallback in ${((Date.now() - t1) / 1000).toFixed(0)} s`);
      assert.match(local, /rackboot: no EFI loader on a local disk/, 'without a per-MAC file: the local-boot entry');
      assert.doesNotMatch(local, /RB-CHAIN-OK/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
