// Machines that PXE-boot without being hosts join the discovered list from TFTP and HTTP too (issue #14), so proxy
// mode (where rackboot answers no DHCP) lists them as well: a real `startRackboot` with DHCP off, real curl over
// tftp:// and HTTP. A host's own requests never make it "discovered"; a later sighting without an arch keeps the one
// seen before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';

const run = promisify(execFile);
const TOKEN = 'sightings-test';
let dir: string;
let running: Running;

before(async () => {
  dir = tempDir('rackboot-sightings-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  const config = loadConfig(
    {
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': String(await freePort('udp')),
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
      'public-url': 'http://127.0.0.1:8080',
    },
    {},
    dir,
  );
  running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: TOKEN });
});
after(async () => {
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

const api = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`http://127.0.0.1:${running.httpPort}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, json: (await r.json().catch(() => undefined)) as Record<string, unknown> };
};
const discovered = async () =>
  (await api('GET', '/api/discovered')).json.items as { mac: string; arch?: number; ipxe: boolean; ip?: string }[];
/** curl over TFTP; a missing file is curl's error, which is what an unknown machine's per-MAC name gets. */
const tftp = (name: string) =>
  run('curl', ['-sS', '--max-time', '10', `tftp://127.0.0.1:${running.tftpPort}/${name}`]).then(
    () => true,
    () => false,
  );

test('TFTP and HTTP sightings of machines that are not hosts are listed; a host is not', async () => {
  assert.deepEqual(await discovered(), []);
  // pxelinux (BIOS) asks for its per-MAC name, GRUB (UEFI) for grub.cfg-01-<mac>, iPXE for its script by MAC.
  await tftp('pxelinux.cfg/01-52-54-00-d1-00-01');
  await tftp('grub.cfg-01-52-54-00-d1-00-02');
  const ipxe = await fetch(`http://127.0.0.1:${running.httpPort}/boot/ipxe/52:54:00:d1:00:03`);
  assert.equal(ipxe.status, 200, 'an unknown machine still gets a script (boot local)');
  const seen = new Map((await discovered()).map((m) => [m.mac, m]));
  assert.equal(seen.get('52:54:00:d1:00:01')?.arch, 0, 'pxelinux: BIOS');
  assert.equal(seen.get('52:54:00:d1:00:02')?.arch, 7, 'GRUB: x86-64 UEFI');
  assert.equal(seen.get('52:54:00:d1:00:03')?.ipxe, true);
  assert.equal(seen.get('52:54:00:d1:00:01')?.ip, '127.0.0.1');

  // Seen again by iPXE (no arch): the arch seen before stays.
  await fetch(`http://127.0.0.1:${running.httpPort}/boot/ipxe/52:54:00:d1:00:01`);
  assert.equal((await discovered()).find((m) => m.mac === '52:54:00:d1:00:01')?.arch, 0);

  // A host's own requests never list it; making a discovered machine a host takes it off the list.
  const add = await api('POST', '/api/hosts', { mac: '52:54:00:d1:00:02', hostname: 'seen02', profile: 'rhvh-base' });
  assert.equal(add.status, 201, JSON.stringify(add.json));
  await api('POST', '/api/hosts', { mac: '52:54:00:d1:00:09', hostname: 'host09', profile: 'rhvh-base' });
  await tftp('pxelinux.cfg/01-52-54-00-d1-00-09');
  const macs = (await discovered()).map((m) => m.mac).sort();
  assert.deepEqual(macs, ['52:54:00:d1:00:01', '52:54:00:d1:00:03']);

  // A malformed per-MAC name is no sighting.
  await tftp('pxelinux.cfg/01-zz-54-00-d1-00-04');
  assert.equal((await discovered()).length, 2);
});
