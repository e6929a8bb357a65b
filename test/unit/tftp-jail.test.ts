import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { resolveInRoot } from '../../src/tftp/jail.ts';
import { staticFileSource } from '../../src/tftp/static.ts';

let base: string;
let root: string;
before(() => {
  base = mkdtempSync(path.join(tmpdir(), 'rb-jail-'));
  root = path.join(base, 'root');
  mkdirSync(path.join(root, 'boot/grub'), { recursive: true });
  mkdirSync(path.join(root, 'Images/RHVH'), { recursive: true });
  writeFileSync(path.join(root, 'pxelinux.0'), 'loader');
  writeFileSync(path.join(root, 'boot/grub/grub.cfg'), 'cfg');
  writeFileSync(path.join(root, 'Images/RHVH/vmlinuz'), 'kernel!');
  writeFileSync(path.join(base, 'secret'), 'outside');
  symlinkSync('../secret', path.join(root, 'escape'));
  symlinkSync('/etc', path.join(root, 'etc'));
  symlinkSync('pxelinux.0', path.join(root, 'alias.0'));
  symlinkSync('loop', path.join(root, 'loop'));
  symlinkSync('/dev/null', path.join(root, 'null'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  // A sibling directory whose name starts with the root's name must not count as inside.
  mkdirSync(base + '/root-evil');
  writeFileSync(base + '/root-evil/x', 'evil');
  symlinkSync('../root-evil/x', path.join(root, 'sibling'));
});
after(() => rmSync(base, { recursive: true, force: true }));

test('regular files inside the root resolve with their size, symlinks inside are followed', async () => {
  assert.deepEqual(await resolveInRoot(root, 'pxelinux.0'), {
    ok: true,
    realPath: path.join(root, 'pxelinux.0'),
    size: 6,
  });
  assert.deepEqual(await resolveInRoot(root, '/boot//grub/grub.cfg'), {
    ok: true,
    realPath: path.join(root, 'boot/grub/grub.cfg'),
    size: 3,
  });
  assert.deepEqual(await resolveInRoot(root, 'boot\\grub\\grub.cfg'), {
    ok: true,
    realPath: path.join(root, 'boot/grub/grub.cfg'),
    size: 3,
  });
  assert.deepEqual(await resolveInRoot(root, 'alias.0'), {
    ok: true,
    realPath: path.join(root, 'pxelinux.0'),
    size: 6,
  });
});

test('escapes, traversal, directories, devices and fifos are refused', async () => {
  const refused: [string, string][] = [
    ['../secret', 'invalid path'],
    ['boot/../../secret', 'invalid path'],
    ['..\\secret', 'invalid path'],
    ['escape', 'outside root'],
    ['etc/passwd', 'outside root'],
    ['sibling', 'outside root'],
    ['null', 'outside root'],
    ['boot', 'not a regular file'],
    ['fifo', 'not a regular file'],
    ['loop', 'not found'],
    ['missing', 'not found'],
    ['pxelinux.0/x', 'not found'],
    ['', 'invalid path'],
    ['a\0b', 'invalid path'],
  ];
  for (const [p, reason] of refused) {
    const r = await resolveInRoot(root, p);
    assert.equal(r.ok, false, p);
    if (!r.ok) assert.ok(r.reason.startsWith(reason), `${p}: ${r.reason}`);
  }
});

test('static source: streams files, falls back to a case-insensitive match, refuses escapes', async () => {
  const src = staticFileSource(root);
  const client = { address: '127.0.0.1', port: 1 };
  const read = async (p: string): Promise<string | undefined> => {
    const f = await src(p, client);
    if (!f) return undefined;
    if ('data' in f) return f.data.toString();
    const chunks: Buffer[] = [];
    for await (const c of f.open() as AsyncIterable<Buffer>) chunks.push(c);
    assert.equal(Buffer.concat(chunks).length, f.size);
    return Buffer.concat(chunks).toString();
  };
  assert.equal(await read('pxelinux.0'), 'loader');
  assert.equal(await read('PXELINUX.0'), 'loader');
  assert.equal(await read('images/rhvh/VMLINUZ'), 'kernel!');
  assert.equal(await read('escape'), undefined);
  assert.equal(await read('ESCAPE'), undefined);
  assert.equal(await read('boot'), undefined);
  assert.equal(await staticFileSource(root, undefined, { caseInsensitive: false })('PXELINUX.0', client), undefined);
});
