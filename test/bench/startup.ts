// Start-to-ready and idle footprint of `rackboot serve` on the defaults (SQLite in ./data, the sample
// profiles in ./profiles, ./tftpboot, ./images; only the ports are moved to free ones on 127.0.0.1 so the
// bench can run beside other tests). Ready is the first 200 from /readyz, polled every 5 ms from spawn.
// It also prints the CPU time (user + system) the server used until ready, which a loaded machine moves far less.
// Not part of npm test. Usage:
//   node --import tsx test/bench/startup.ts [--runs 7] [--idle-ms 3000] [--bin bin/rackboot.mjs]
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../support/ports.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    'idle-ms': { type: 'string', default: '3000' },
    bin: { type: 'string', default: 'bin/rackboot.mjs' },
  },
});
const RUNS = Number(values.runs);
const IDLE_MS = Number(values['idle-ms']);
const BIN = resolve(REPO, values.bin);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}
/** CPU seconds (user + system) the process has used: under load this moves far less than the wall clock. */
function cpuSeconds(pid: number): number {
  // /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised command name.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
function status(url: string): Promise<number> {
  return new Promise((res) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('error', () => res(0));
    req.on('timeout', () => {
      req.destroy();
      res(0);
    });
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const cwd = mkdtempSync(join(tmpdir(), 'rackboot-startup-'));
symlinkSync(join(REPO, 'profiles'), join(cwd, 'profiles'));

async function once(): Promise<{ readyMs: number; cpu: number; rss: number; stderr: string }> {
  const [httpPort, tftpPort] = [await freePort('tcp'), await freePort('udp')];
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    [BIN, 'serve', '--listen', '127.0.0.1', '--http-port', String(httpPort), '--tftp-port', String(tftpPort)],
    { cwd, env: { ...process.env, RACKBOOT_ADMIN_TOKEN: 'startup-bench-token' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => {
    stderr += d;
  });
  try {
    const deadline = t0 + 30_000;
    while ((await status(`http://127.0.0.1:${httpPort}/readyz`)) !== 200) {
      if (proc.exitCode !== null) throw new Error(`serve exited ${proc.exitCode}: ${stderr}`);
      if (performance.now() > deadline) throw new Error(`not ready after 30 s: ${stderr}`);
      await sleep(5);
    }
    const readyMs = performance.now() - t0;
    const cpu = cpuSeconds(proc.pid!);
    await sleep(IDLE_MS);
    return { readyMs, cpu, rss: rssMiB(proc.pid!), stderr };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

try {
  const first = await once(); // creates ./data: migrations, the admin token; not counted
  if (first.stderr.trim()) console.log(`stderr of the first start:\n${first.stderr.trim()}`);
  const ready: number[] = [];
  const rss: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await once();
    ready.push(r.readyMs);
    rss.push(r.rss);
    cpu.push(r.cpu);
  }
  console.log(
    `${values.bin}: ${RUNS} starts; start-to-ready median ${median(ready).toFixed(0)} ms (min ${Math.min(...ready).toFixed(0)}, max ${Math.max(...ready).toFixed(0)});` +
      ` CPU to ready median ${(median(cpu) * 1000).toFixed(0)} ms;` +
      ` idle RSS after ${IDLE_MS} ms median ${median(rss).toFixed(1)} MiB (min ${Math.min(...rss).toFixed(1)}, max ${Math.max(...rss).toFixed(1)})`,
  );
} finally {
  rmSync(cwd, { recursive: true, force: true });
}
