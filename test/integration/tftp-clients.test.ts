// Real clients from Debian (tftp-hpa, atftp, curl) against our server on loopback.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import dgram from 'node:dgram';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { startTftpServer, type TftpFileSource, type TftpTransferEvent } from '../../src/tftp/server.ts';
import { staticFileSource } from '../../src/tftp/static.ts';
import { have, makeTree, run, sha, tftpGet } from '../fixtures/tftp/harness.ts';

const BIG = 64 * 1024 * 1024;
const MAC_CFG = 'pxelinux.cfg/01-52-54-00-12-34-56';
const GRUB_CFG = 'boot/grub/grub.cfg-01-52-54-00-12-34-56';
const generated = (p: string): string | undefined =>
  p === MAC_CFG
    ? 'DEFAULT rhvh\nLABEL rhvh\n  KERNEL images/rhvh/vmlinuz\n  APPEND inst.ks=http://10.0.0.1/ks?token=abc&x=1 BOOTIF=01-52-54-00-12-34-56\n'
    : p === GRUB_CFG
      ? 'set timeout=1\nmenuentry rhvh { linuxefi images/rhvh/vmlinuz }\n'.repeat(40) // > 1024 bytes: spans blocks
      : undefined;

let tree: ReturnType<typeof makeTree>;
let port = 0;
let srv: Awaited<ReturnType<typeof startTftpServer>>;
const events: TftpTransferEvent[] = [];
let out: string;

before(async () => {
  tree = makeTree({ big: BIG });
  tree.files['boot/grub/x86_64-efi/normal.mod'] = Buffer.alloc(0);
  out = path.join(tree.root, '..', path.basename(tree.root) + '-out');
  await run('mkdir', [
    '-p',
    out,
    path.join(tree.root, 'boot/grub/x86_64-efi'),
    path.join(tree.root, 'images/rhvh-e2e'),
  ]);
  await run('cp', [path.join(tree.root, 'small.bin'), path.join(tree.root, 'boot/grub/x86_64-efi/normal.mod')]);
  await run('cp', [path.join(tree.root, 'exact512.bin'), path.join(tree.root, 'boot/grub/x86_64-efi/core.efi')]);
  const stat = staticFileSource(tree.root);
  const files: TftpFileSource = (p, client) => {
    const g = generated(p);
    if (g !== undefined) {
      const data = Buffer.from(g);
      return { size: data.length, data };
    }
    return stat(p, client);
  };
  srv = await startTftpServer({
    address: '127.0.0.1',
    port: 0,
    files,
    log: silentLogger(),
    onTransfer: (e) => events.push(e),
  });
  port = srv.port;
});

after(async () => {
  await srv.close();
  rmSync(tree.root, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

const expectFile = (local: string, remote: string, label: string): void => {
  const want = generated(remote) !== undefined ? Buffer.from(generated(remote)!) : tree.files[remote]!;
  let got: Buffer;
  try {
    got = readFileSync(local);
  } catch {
    assert.fail(`${label}: ${remote} was not written`);
  }
  assert.equal(got.length, want.length, `${label}: ${remote} length`);
  assert.equal(sha(got), sha(want), `${label}: ${remote} content`);
};

const SMALL = ['small.bin', 'exact512.bin', 'one512.bin', 'empty.bin', 'images/rhvh/vmlinuz', MAC_CFG];

test('tftp-hpa (no options) fetches small, 512-multiple, empty and generated files byte-identical', async (t) => {
  if (!(await have('tftp'))) return t.skip('tftp-hpa not installed (apt-get install tftp-hpa)');
  for (const f of SMALL) {
    const local = path.join(out, 'hpa-' + f.replace(/\//g, '_'));
    const r = await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', f, local]);
    assert.equal(r.stderr.trim() + r.stdout.trim(), '', `tftp-hpa output for ${f}`);
    expectFile(local, f, 'tftp-hpa');
  }
});

test('atftp fetches the same files with blksize 1468, windowsize 4 and without options', async (t) => {
  if (!(await have('atftp'))) return t.skip('atftp not installed (apt-get install atftp)');
  for (const f of SMALL) {
    for (const opts of [[], ['--option', 'blksize 1468', '--option', 'windowsize 4', '--option', 'tsize 0']]) {
      const local = path.join(out, 'atftp-' + opts.length + f.replace(/\//g, '_'));
      const r = await run('atftp', ['-g', '-r', f, '-l', local, ...opts, '127.0.0.1', String(port)]);
      assert.equal(r.code, 0, `atftp ${f}: ${r.stderr}`);
      expectFile(local, f, `atftp ${opts.join(' ')}`);
    }
  }
});

test('curl tftp:// fetches them at blksize 512, 1024 and 8', async (t) => {
  if (!(await have('curl'))) return t.skip('curl not installed');
  // curl refuses "tsize 0" in an OACK ("invalid tsize"), so it cannot fetch an empty file from any
  // RFC 2349 server (tftpd-hpa fails the same way); blksize 8 only on the small files to keep the run short.
  for (const f of SMALL.filter((x) => x !== 'empty.bin')) {
    for (const bs of f === 'images/rhvh/vmlinuz' ? ['512', '1024'] : ['512', '1024', '8']) {
      const local = path.join(out, `curl-${bs}-` + f.replace(/\//g, '_'));
      const r = await run('curl', ['-sS', '--tftp-blksize', bs, `tftp://127.0.0.1:${port}/${f}`, '-o', local]);
      assert.equal(r.code, 0, `curl ${f}: ${r.stderr}`);
      expectFile(local, f, `curl blksize ${bs}`);
    }
  }
});

test('64 MiB byte-identical: tftp-hpa at 512 (two rollovers), atftp windowsize 8, curl blksize 1468', async (t) => {
  const jobs: [string, string[], string][] = [
    ['tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', 'big.bin', path.join(out, 'big-hpa')], 'big-hpa'],
    [
      'atftp',
      [
        '-g',
        '-r',
        'big.bin',
        '-l',
        path.join(out, 'big-atftp'),
        '--option',
        'blksize 1468',
        '--option',
        'windowsize 8',
        '127.0.0.1',
        String(port),
      ],
      'big-atftp',
    ],
    [
      'curl',
      ['-sS', '--tftp-blksize', '1468', `tftp://127.0.0.1:${port}/big.bin`, '-o', path.join(out, 'big-curl')],
      'big-curl',
    ],
  ];
  for (const [cmd, args, local] of jobs) {
    if (!(await have(cmd))) {
      t.diagnostic(`${cmd} not installed: skipped`);
      continue;
    }
    const t0 = performance.now();
    const r = await run(cmd, args, { timeoutMs: 120000 });
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    expectFile(path.join(out, local), 'big.bin', cmd);
    t.diagnostic(`${cmd}: 64 MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    rmSync(path.join(out, local));
  }
});

test('generated per-host files announce their real tsize and arrive intact at any blksize', async () => {
  for (const [p, bs] of [
    [MAC_CFG, '1408'],
    [GRUB_CFG, '1024'],
    [GRUB_CFG, '512'],
  ] as const) {
    const want = Buffer.from(generated(p)!);
    const r = await tftpGet(port, p, {
      options: [
        { name: 'tsize', value: '0' },
        { name: 'blksize', value: bs },
      ],
    });
    assert.equal(r.error, undefined);
    assert.deepEqual(r.oack, [
      { name: 'tsize', value: String(want.length) },
      { name: 'blksize', value: bs },
    ]);
    assert.deepEqual(r.data, want);
  }
  await waitFor(() => srv.activeTransfers() === 0);
  const ev = events.filter((e) => e.path === GRUB_CFG && e.type === 'tftp.sent').at(-1)!;
  const grubSize = Buffer.byteLength(generated(GRUB_CFG)!);
  assert.ok(grubSize > 1024 && grubSize % 512 !== 0);
  assert.equal(ev.size, grubSize);
  assert.equal(ev.bytes, grubSize);
  assert.equal(ev.blksize, 512);
});

test('EDK2: probe with the golden packet, ERROR 8 after OACK is a probe event, then the real request', async () => {
  const probe = readFileSync(new URL('../fixtures/tftp/edk2-probe.rrq', import.meta.url));
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const reply = await new Promise<{ msg: Buffer; port: number }>((resolve) => {
    sock.once('message', (msg, rinfo) => resolve({ msg, port: rinfo.port }));
    sock.send(probe, port, '127.0.0.1');
  });
  const core = tree.files['exact512.bin']!;
  assert.equal(
    reply.msg.toString('latin1'),
    `\x00\x06tsize\x00${core.length}\x00blksize\x001468\x00windowsize\x004\x00`,
  );
  const before = events.length;
  sock.send(Buffer.from('\x00\x05\x00\x08user abort\x00', 'latin1'), reply.port, '127.0.0.1');
  await waitFor(() => events.length > before);
  assert.equal(events.at(-1)!.type, 'tftp.probe');
  assert.equal(events.at(-1)!.path, 'boot/grub/x86_64-efi/core.efi');
  const r = await tftpGet(port, 'boot/grub/x86_64-efi/core.efi', {
    socket: sock,
    options: [
      { name: 'blksize', value: '1468' },
      { name: 'windowsize', value: '4' },
    ],
  });
  sock.close();
  assert.deepEqual(r.data, core);
  await waitFor(() => events.at(-1)!.type === 'tftp.sent');
});

test('GRUB golden request with a leading "/" and blksize 1024 is served', async () => {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const first = await new Promise<{ msg: Buffer; port: number }>((resolve) => {
    sock.once('message', (msg, rinfo) => resolve({ msg, port: rinfo.port }));
    sock.send(readFileSync(new URL('../fixtures/tftp/grub-module.rrq', import.meta.url)), port, '127.0.0.1');
  });
  assert.equal(first.msg.toString('latin1'), '\x00\x06blksize\x001024\x00tsize\x001000\x00');
  // End it as a client would that only wanted the size, so the transfer does not linger.
  await new Promise<void>((r) =>
    sock.send(Buffer.from('\x00\x05\x00\x08done\x00', 'latin1'), first.port, '127.0.0.1', () => r()),
  );
  sock.close();
  await waitFor(() => events.at(-1)?.type === 'tftp.probe');
});

test('block numbers roll over: blksize 8, windowsize 32, 300 kB file (37,500 blocks, 1 rollover at 512 kB+)', async () => {
  const f = tree.files['images/rhvh/vmlinuz']!; // 300,000 bytes at blksize 8 = 37,501 blocks: no rollover; use exact block math below
  const r = await tftpGet(port, 'images/rhvh/vmlinuz', {
    options: [
      { name: 'blksize', value: '8' },
      { name: 'windowsize', value: '32' },
    ],
  });
  assert.deepEqual(r.data, f);
  // 64 MiB at blksize 512 rolls over twice (131,073 blocks): covered by tftp-hpa above, checked here on the event.
  const big = events.find((e) => e.path === 'big.bin' && e.blksize === 512 && e.type === 'tftp.sent');
  if (big) assert.equal(big.bytes, BIG);
});

test('every transfer is an event with file, bytes, blksize, window, seconds and client', async () => {
  await waitFor(() => srv.activeTransfers() === 0); // the last client's final ACK may still be in flight
  const sent = events.filter((e) => e.type === 'tftp.sent');
  assert.ok(
    sent.length >= 39,
    `only ${sent.length} sent events: ${JSON.stringify(events.filter((e) => e.type !== 'tftp.sent').map((e) => [e.path, e.error]))}`,
  );
  for (const e of sent) {
    assert.equal(e.bytes, e.size, e.path);
    assert.equal(e.client.address, '127.0.0.1');
    assert.ok(e.seconds >= 0 && e.blksize >= 8 && e.windowsize >= 1);
  }
  assert.ok(sent.some((e) => e.windowsize === 8 && e.path === 'big.bin'));
  assert.equal(srv.activeTransfers(), 0);
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
