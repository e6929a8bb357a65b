// Which UEFI chain a profile's hosts boot (pure part), and the boot.uefiLoaders field's grammar.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseUefiChain } from '../../src/images/uefi-chain.ts';
import { profileSchema } from '../../src/profiles/schema.ts';
import type { ImageFileRecord } from '../../src/images/store.ts';
import type { LoaderFacts } from '../../src/images/efi.ts';

const grubFacts = (over: Partial<NonNullable<LoaderFacts['grub']>> = {}): LoaderFacts => ({
  kind: 'grub',
  signer: 'Red Hat Secure Boot Signing 301',
  signerVendor: 'Red Hat',
  vendor: 'Red Hat',
  grub: {
    perMac: true,
    perMacOver: 'any',
    lookup: 'per-MAC',
    asks: [],
    linuxefi: true,
    http: true,
    kernelCommand: 'linuxefi',
    ...over,
  },
});
const file = (path: string, role: ImageFileRecord['role'], loader?: LoaderFacts): ImageFileRecord => ({
  root: 'tftp',
  path,
  size: 1,
  sha256: 'x',
  role,
  ...(loader ? { loader } : {}),
});
const withLoaders = {
  files: [
    file('rh/vmlinuz', 'kernel'),
    file('rh/EFI/BOOT/BOOTX64.EFI', 'shim', {
      kind: 'shim',
      signer: 'MS',
      signerVendor: 'Microsoft',
      vendor: 'Red Hat',
      trusts: ['Red Hat Secure Boot CA 5'],
    }),
    file('rh/EFI/BOOT/grubx64.efi', 'grub', grubFacts()),
  ],
};
const grubOnly = {
  files: [file('rh/EFI/BOOT/grubx64.efi', 'grub', grubFacts({ http: false, kernelCommand: 'linux' }))],
};
const shimOnly = { files: [file('rh/EFI/BOOT/BOOTX64.EFI', 'shim')] };
const none = { files: [file('rh/vmlinuz', 'kernel')] };
const synced = {
  bootFile: 'grubx64.efi',
  grub: {
    kind: 'grub' as const,
    signer: 'Debian',
    grub: {
      perMac: false,
      lookup: 'prefix only',
      asks: ['/grub/grub.cfg'],
      linuxefi: true,
      http: false,
      kernelCommand: 'linux' as const,
    },
  },
};

test("chooseUefiChain: the image's shim by default and with image; synced with sync, or when the image has no GRUB", () => {
  const pick = (
    img: { files: ImageFileRecord[] } | undefined,
    choice: 'image' | 'sync' | undefined,
    name: string | undefined = 'rh',
  ) => chooseUefiChain(img, name, choice, synced);
  assert.deepEqual(pick(withLoaders, undefined), {
    source: 'image',
    bootFile: 'rh/EFI/BOOT/BOOTX64.EFI',
    http: true,
    grubKernelCommand: 'linuxefi',
    grub: grubFacts().grub,
    reason: "rh's own shim and GRUB",
  });
  assert.equal(pick(withLoaders, 'image').reason, "rh's own shim and GRUB (boot.uefiLoaders: image)");
  const s = pick(withLoaders, 'sync');
  assert.deepEqual(
    [s.source, s.bootFile, s.http, s.grubKernelCommand, s.reason],
    ['sync', 'grubx64.efi', false, 'linux', 'the synced loaders (boot.uefiLoaders: sync)'],
  );
  const g = pick(grubOnly, undefined);
  assert.deepEqual(
    [g.source, g.bootFile, g.http, g.grubKernelCommand],
    ['image', 'rh/EFI/BOOT/grubx64.efi', false, 'linux'],
    'no shim: GRUB itself',
  );
  assert.equal(pick(shimOnly, undefined).source, 'sync', 'a shim with no GRUB beside it boots nothing');
  assert.equal(
    pick(none, 'image').reason,
    'the synced loaders (boot.uefiLoaders: image, but image rh has no EFI/BOOT/ loaders)',
  );
  assert.equal(
    chooseUefiChain(undefined, undefined, undefined, synced).reason,
    'the synced loaders (the profile spells out its image files)',
  );
  assert.equal(
    chooseUefiChain(none, 'rh', undefined, { bootFile: 'grubx64.efi' }).grubKernelCommand,
    'linux',
    'nothing known: linux',
  );
});

test('boot.uefiLoaders: image or sync; anything else is refused naming the field', () => {
  const base = { image: 'rhvh-4.3.8', rootPassword: `$6$f3jJz.m12KbiZn5A$${'a'.repeat(86)}` };
  for (const v of ['image', 'sync', undefined]) {
    const r = profileSchema.safeParse({ ...base, boot: { uefiLoaders: v } });
    assert.ok(r.success, JSON.stringify(r.error?.issues));
    assert.equal(r.data.boot.uefiLoaders, v);
  }
  for (const v of [
    'Image',
    'SYNC',
    '',
    'image\n',
    'image\r',
    'sync\u2028',
    'x'.repeat(100_000),
    1,
    true,
    null,
    ['image'],
    { a: 1 },
  ]) {
    const r = profileSchema.safeParse({ ...base, boot: { uefiLoaders: v } });
    assert.ok(!r.success, JSON.stringify(v).slice(0, 40));
    assert.deepEqual(r.error.issues[0].path, ['boot', 'uefiLoaders']);
    assert.match(r.error.issues[0].message, /must be image .* or sync/);
  }
});
