// 200 simultaneous transfers of a 16 MiB file (the default cap), each verified by checksum; prints peak RSS.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { startTftpServer, type TftpTransferEvent } from '../../src/tftp/server.ts';
import { staticFileSource } from '../../src/tftp/static.ts';
import { have, makeTree, run } from '../fixtures/tftp/harness.ts';

const N = 200;
const SIZE = 16 * 1024 * 1024;

test(`${N} simultaneous transfers of a 16 MiB file all complete byte-identical`, async (t) => {
  if (!(await have('curl')) || !(await have('cmp'))) return t.skip('curl or cmp missing');
  const tree = makeTree({ big: SIZE });
  const events: TftpTransferEvent[] = [];
  const rssBefore = process.memoryUsage().rss;
  const srv = await startTftpServer({
    address: '127.0.0.1',
    port: 0,
    files: staticFileSource(tree.root),
    log: silentLogger(),
    maxTransfers: N,
    maxPerClient: N,
    onTransfer: (e) => events.push(e),
  });
  let peak = 0;
  let peakRss = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, srv.activeTransfers());
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  try {
    // One shell starts all clients at once (a mix of block sizes and windows), each piping into sha256sum.
    const script = path.join(tree.root, '..', path.basename(tree.root) + '-many.sh');
    const big = path.join(tree.root, 'big.bin');
    const lines = ['#!/bin/sh', 'set -u'];
    for (let i = 0; i < N; i++) {
      const bs = [8192, 16384, 32768, 65464][i % 4];
      // cmp against the original: a checksum per client would cost more CPU than the transfers.
      lines.push(
        `(curl -sS --max-time 170 --tftp-blksize ${bs} tftp://127.0.0.1:${srv.port}/big.bin 2>${script}.${i}.err | cmp -s - ${big} && echo ok > ${script}.${i}) &`,
      );
    }
    lines.push('wait');
    writeFileSync(script, lines.join('\n') + '\n', { mode: 0o755 });
    const t0 = performance.now();
    const r = await run(script, [], { timeoutMs: 180000 });
    const secs = (performance.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    const { readFileSync } = await import('node:fs');
    let ok = 0;
    const curlErrors = new Set<string>();
    for (let i = 0; i < N; i++) {
      let res = '';
      try {
        res = readFileSync(`${script}.${i}`, 'utf8').trim();
      } catch {
        /* no ok file: failed */
      }
      if (res === 'ok') ok++;
      const err = readFileSync(`${script}.${i}.err`, 'utf8').trim();
      if (err) curlErrors.add(err);
      rmSync(`${script}.${i}`, { force: true });
      rmSync(`${script}.${i}.err`, { force: true });
    }
    for (const e of curlErrors) t.diagnostic(`curl: ${e}`);
    rmSync(script, { force: true });
    const sent = events.filter((e) => e.type === 'tftp.sent' && e.bytes === SIZE).length;
    const mb = (n: number): string => (n / 1048576).toFixed(0);
    t.diagnostic(
      `${ok}/${N} byte-identical in ${secs.toFixed(1)} s (${((N * SIZE) / 1048576 / secs).toFixed(0)} MB/s aggregate), peak ${peak} concurrent transfers`,
    );
    t.diagnostic(
      `peak RSS ${mb(peakRss)} MiB (process before server: ${mb(rssBefore)} MiB, maxRSS ${mb(process.resourceUsage().maxRSS * 1024)} MiB)`,
    );
    for (const e of events.filter((x) => x.type !== 'tftp.sent').slice(0, 5)) t.diagnostic(JSON.stringify(e));
    assert.equal(ok, N);
    assert.equal(sent, N);
    assert.ok(peak >= N * 0.9, `only ${peak} transfers ran at the same time`);
    assert.equal(srv.activeTransfers(), 0);
  } finally {
    clearInterval(sampler);
    await srv.close();
    rmSync(tree.root, { recursive: true, force: true });
  }
});
