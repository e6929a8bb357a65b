// The real process: graceful SIGTERM (stop accepting, abort TFTP cleanly, bounded wait for HTTP
// downloads, store closed), backup while serving, restore refused while serving and done when stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';
import { checkDatabaseFile } from '../../src/ops/backup.ts';

const BIN = join(REPO, 'bin/rackboot.mjs');
const TOKEN = 'lifecycle-admin-token';

test(
  'SIGTERM: stops accepting, aborts TFTP with an ERROR, cuts a stalled download after the grace period, closes the store; backup and restore',
  { timeout: 90_000 },
  async () => {
    const dir = tempDir('rackboot-life-');
    cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
    mkdirSync(join(dir, 'tftpboot'), { recursive: true });
    mkdirSync(join(dir, 'images'), { recursive: true });
    writeFileSync(join(dir, 'tftpboot/big.bin'), randomBytes(2 * 1024 * 1024));
    writeFileSync(join(dir, 'images/big.img'), Buffer.alloc(64 * 1024 * 1024, 1));
    const [httpPort, tftpPort, syslogPort] = [await freePort('tcp'), await freePort('udp'), await freePort('udp')];
    writeFileSync(
      join(dir, 'rackboot.yaml'),
      [
        'listen: 127.0.0.1',
        `httpPort: ${httpPort}`,
        `tftpPort: ${tftpPort}`,
        'serverIp: 127.0.0.1',
        'dataDir: data',
        'profilesDir: profiles',
        'tftpRoot: tftpboot',
        'imagesDir: images',
        'shutdownGrace: 2s',
        `syslog: { port: ${syslogPort} }`,
        '',
      ].join('\n'),
    );
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args, '--config', join(dir, 'rackboot.yaml')], {
        encoding: 'utf8',
        env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN },
      });
    const start = async (): Promise<{ proc: ChildProcess; out: () => string }> => {
      const proc = spawn(process.execPath, [BIN, 'serve', '--config', join(dir, 'rackboot.yaml')], {
        env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      proc.stdout!.on('data', (d) => {
        out += d;
      });
      proc.stderr!.on('data', (d) => {
        out += d;
      });
      const end = Date.now() + 20_000;
      while (!out.includes('rackboot serving')) {
        if (proc.exitCode !== null || Date.now() > end) throw new Error(`did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return { proc, out: () => out };
    };
    const base = `http://127.0.0.1:${httpPort}`;
    const api = (method: string, path: string, body?: unknown) =>
      fetch(base + '/api' + path, {
        method,
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    let s = await start();
    assert.ok(existsSync(join(dir, 'data/serve.pid')));
    assert.equal(
      (await api('POST', '/hosts', { mac: '52:54:00:d0:00:01', hostname: 'life1', profile: 'rhvh-base' })).status,
      201,
    );
    assert.equal((await api('POST', '/hosts/52:54:00:d0:00:01/build')).status, 201);
    assert.equal((await fetch(base + '/readyz')).status, 200);

    // backup while serving; restore refused while serving
    const backup = cli('backup', join(dir, 'backups/one.db'));
    assert.equal(backup.status, 0, backup.stderr);
    assert.match(backup.stdout, /1 host\(s\), 1 build\(s\)/);
    assert.ok(checkDatabaseFile(join(dir, 'backups/one.db')).ok);
    const refused = cli('restore', join(dir, 'backups/one.db'));
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /rackboot serve \(pid \d+\) is using .*: stop it first/);
    writeFileSync(join(dir, 'not-a-db.db'), 'hello');
    assert.match(
      cli('restore', join(dir, 'not-a-db.db'), '--force').stderr,
      /refusing to restore: .*not a readable SQLite database|refusing to restore/,
    );
    assert.equal(
      (await api('POST', '/hosts', { mac: '52:54:00:d0:00:02', hostname: 'life2', profile: 'rhvh-base' })).status,
      201,
    );

    // a stalled HTTP download and a TFTP transfer that never ACKs
    let resumeDownload = () => {};
    const download = new Promise<{ bytes: number; ended: string }>((resolve) => {
      const req = http.get(base + '/images/big.img', (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.pause(); // stalled: the server's writes back up (a paused stream sees the server's close only once drained)
        resumeDownload = () => res.resume();
        res.on('end', () => resolve({ bytes, ended: res.complete ? 'end' : 'cut' }));
        res.on('error', () => resolve({ bytes, ended: 'cut' }));
        res.on('close', () => resolve({ bytes, ended: res.complete ? 'end' : 'cut' }));
      });
      req.on('error', () => resolve({ bytes: 0, ended: 'error' }));
    });
    const tftp = dgram.createSocket('udp4');
    await new Promise<void>((r) => tftp.bind(0, '127.0.0.1', () => r()));
    const tftpPackets: Buffer[] = [];
    tftp.on('message', (m) => tftpPackets.push(m));
    tftp.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('big.bin\0octet\0')]), tftpPort, '127.0.0.1');
    const until = Date.now() + 5000;
    while (!tftpPackets.some((p) => p.readUInt16BE(0) === 3) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      tftpPackets.some((p) => p.readUInt16BE(0) === 3),
      'TFTP DATA started',
    );
    await new Promise((r) => setTimeout(r, 300));

    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const refusedConn = await new Promise<boolean>((resolve) => {
      const c = net.connect(httpPort, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        resolve(false);
      });
      c.on('error', () => resolve(true));
    });
    assert.ok(refusedConn, 'no new connections once SIGTERM arrived');
    const [code] = (await once(s.proc, 'exit')) as [number];
    const took = Date.now() - t0;
    assert.equal(code, 0, s.out());
    assert.ok(
      took >= 1500 && took < 10_000,
      `waited for the download up to the grace period, then stopped (${took} ms)`,
    );
    resumeDownload();
    const d = await download;
    assert.equal(d.ended, 'cut', 'the stalled download was cut, not left hanging');
    const err = tftpPackets.find((p) => p.readUInt16BE(0) === 5);
    assert.ok(err, 'the TFTP client got an ERROR packet, not silence');
    assert.match(err.subarray(4).toString(), /shutting down/);
    tftp.close();
    assert.match(s.out(), /shutting down/);
    assert.match(s.out(), /stopped: store closed/);
    assert.ok(!existsSync(join(dir, 'data/serve.pid')), 'pid file removed on a clean stop');
    assert.ok(
      !existsSync(join(dir, 'data/rackboot.db-wal')) ||
        spawnSync('stat', ['-c%s', join(dir, 'data/rackboot.db-wal')], { encoding: 'utf8' }).stdout.trim() === '0',
      'the WAL was checkpointed on close',
    );

    // restore the backup (one host) over the current database (two hosts)
    const restored = cli('restore', join(dir, 'backups/one.db'));
    assert.equal(restored.status, 0, restored.stderr);
    assert.match(restored.stdout, /the replaced database is kept as .*before-restore-/);
    assert.equal(readdirSync(join(dir, 'data')).filter((f) => f.includes('before-restore')).length, 1);
    s = await start();
    try {
      const hosts = ((await (await api('GET', '/hosts')).json()) as { items: { mac: string; state: string }[] }).items;
      assert.deepEqual(
        hosts.map((h) => [h.mac, h.state]),
        [['52:54:00:d0:00:01', 'build']],
      );
      assert.equal((await fetch(base + '/readyz')).status, 200);
    } finally {
      s.proc.kill('SIGTERM');
      await once(s.proc, 'exit');
    }
  },
);
