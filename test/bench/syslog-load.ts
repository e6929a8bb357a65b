// Load: N hosts stream installer logs at R lines/s each for D seconds into a real `rackboot serve`.
// Reports what was sent, accepted, dropped by reason (rackboot's counters), lost in the kernel (UDP
// receive buffer, /proc/net/snmp), stored per build vs the ring bound, and the server's peak RSS.
// Not part of npm test. Usage:
//   node --import tsx test/bench/syslog-load.ts [--hosts 200] [--rate 100] [--seconds 120] [--ring N] [--tcp]
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { cpSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '200' },
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '120' },
    ring: { type: 'string' },
    tcp: { type: 'boolean', default: false },
  },
});
const HOSTS = Number(values.hosts),
  RATE = Number(values.rate),
  SECONDS = Number(values.seconds);
const TOKEN = 'syslog-load-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
function udpSnmp(): { inErrors: number; rcvbufErrors: number } {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const [head, vals] = [lines[0].split(/\s+/), lines[1].split(/\s+/).map(Number)];
  return { inErrors: vals[head.indexOf('InErrors')], rcvbufErrors: vals[head.indexOf('RcvbufErrors')] };
}
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
function get(url: string, localAddress?: string, auth = false): Promise<{ status: number; text: string }> {
  return new Promise((res, rej) => {
    http
      .get(url, { localAddress, agent: false, headers: auth ? { Authorization: `Bearer ${TOKEN}` } : {} }, (r) => {
        let t = '';
        r.on('data', (c) => {
          t += c;
        });
        r.on('end', () => res({ status: r.statusCode!, text: t }));
      })
      .on('error', rej);
  });
}
async function api(base: string, method: string, path: string, body?: unknown) {
  const r = await fetch(base + '/api' + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return r.json() as Promise<Record<string, unknown>>;
}

const dir = mkdtempSync(join(tmpdir(), 'rackboot-syslog-load-'));
cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
mkdirSync(join(dir, 'tftpboot'), { recursive: true });
const [httpPort, syslogPort] = [await freePort(), await freePort()];
writeFileSync(
  join(dir, 'rackboot.yaml'),
  `listen: 127.0.0.1\nhttpPort: ${httpPort}\ntftpPort: 0\nserverIp: 127.0.0.1\ndataDir: data\nprofilesDir: profiles\ntftpRoot: tftpboot\nimagesDir: images\nlogFormat: json\nsyslog: { port: ${syslogPort}${values.ring ? `, ringLines: ${values.ring}` : ''} }\n`,
);
const proc = spawn(
  process.execPath,
  [join(REPO, 'bin/rackboot.mjs'), 'serve', '--config', join(dir, 'rackboot.yaml')],
  { env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] },
);
let out = '';
proc.stdout!.on('data', (d) => {
  out += d;
  if (out.length > 1e6) out = out.slice(-1e5);
});
while (!out.includes('rackboot serving')) {
  if (proc.exitCode !== null) throw new Error('serve exited');
  await sleep(50);
}
const base = `http://127.0.0.1:${httpPort}`;

// hosts in build, each known by its own source address (127.0.1.x, 127.0.2.x: all of 127/8 is local)
const ipOf = (n: number) => `127.0.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;
const macOf = (n: number) =>
  `52:54:00:1a:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
for (let n = 0; n < HOSTS; n++) {
  await api(base, 'POST', '/hosts', { mac: macOf(n), hostname: `load${n}`, profile: 'rhvh-base' });
  const b = await api(base, 'POST', `/hosts/${macOf(n)}/build`);
  const ks = await get(String(b.kickstartUrl), ipOf(n));
  if (ks.status !== 200) throw new Error(`kickstart ${ks.status}`);
}
console.log(
  `${HOSTS} hosts in build; streaming ${RATE} lines/s each for ${SECONDS}s over ${values.tcp ? 'TCP' : 'UDP'} to :${syslogPort}`,
);

const snmp0 = udpSnmp();
const line = (n: number, seq: number) =>
  `<30>May  1 10:00:00 localhost anaconda[${1000 + n}]: host ${n} line ${seq} ` + 'x'.repeat(60 + (seq % 80));
let sent = 0;
let peakRss = rssMiB(proc.pid!);
const senders: ((k: number, seq: number) => void)[] = [];
for (let n = 0; n < HOSTS; n++) {
  if (values.tcp) {
    const c = net.connect({ host: '127.0.0.1', port: syslogPort, localAddress: ipOf(n) });
    await new Promise((r) => c.once('connect', r));
    senders.push((k, seq) => {
      let s = '';
      for (let i = 0; i < k; i++) s += line(n, seq + i) + '\n';
      c.write(s);
      sent += k;
    });
  } else {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, ipOf(n), () => r()));
    senders.push((k, seq) => {
      for (let i = 0; i < k; i++) {
        s.send(line(n, seq + i), syslogPort, '127.0.0.1');
        sent++;
      }
    });
  }
}
const t0 = performance.now();
const TICK = 100;
const perTick = (RATE * TICK) / 1000;
let tick = 0;
while (performance.now() - t0 < SECONDS * 1000) {
  for (let n = 0; n < HOSTS; n++) senders[n](perTick, tick * perTick);
  tick++;
  if (tick % 10 === 0) peakRss = Math.max(peakRss, rssMiB(proc.pid!));
  if (tick % 100 === 0)
    console.log(
      `  ${Math.round((performance.now() - t0) / 1000)}s: sent ${sent}, server RSS ${rssMiB(proc.pid!).toFixed(0)} MiB`,
    );
  const next = t0 + tick * TICK;
  await sleep(Math.max(0, next - performance.now()));
}
const sendSeconds = (performance.now() - t0) / 1000;
await sleep(2000);
peakRss = Math.max(peakRss, rssMiB(proc.pid!));
const snmp1 = udpSnmp();
const metrics = (await get(base + '/metrics')).text;
const metric = (re: RegExp) => [...metrics.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
const accepted = metric(/^rackboot_syslog_lines_total\{[^}]*\} (\d+)/gm);
const dropped: Record<string, number> = {};
for (const m of metrics.matchAll(/^rackboot_syslog_dropped_total\{reason="([^"]+)"[^}]*\} (\d+)/gm))
  dropped[m[1]] = (dropped[m[1]] ?? 0) + Number(m[2]);
let stored = 0,
  maxPerBuild = 0,
  minPerBuild = Infinity;
for (let n = 0; n < HOSTS; n++) {
  const r = await get(`${base}/api/hosts/${macOf(n)}/logs?limit=1&format=json`, undefined, true);
  void r;
}
// counts per build straight from the store (the API pages 5000 at most)
const counts = await new Promise<string>((res) => {
  const p = spawn(process.execPath, [
    '-e',
    `const D=require(${JSON.stringify(join(REPO, 'node_modules/better-sqlite3'))});const d=new D(${JSON.stringify(join(dir, 'data/rackboot.db'))},{readonly:true});console.log(JSON.stringify(d.prepare('SELECT build_id b, COUNT(*) n FROM syslog GROUP BY build_id').all()))`,
  ]);
  let t = '';
  p.stdout.on('data', (d) => {
    t += d;
  });
  p.on('close', () => res(t));
});
for (const { n } of JSON.parse(counts) as { n: number }[]) {
  stored += n;
  maxPerBuild = Math.max(maxPerBuild, n);
  minPerBuild = Math.min(minPerBuild, n);
}
const ring = Number(values.ring ?? 20000);
const expectedPerHost = Math.round(RATE * SECONDS);
const evictionBound = Math.max(0, expectedPerHost - ring) * HOSTS;
const kernelDrops = snmp1.rcvbufErrors - snmp0.rcvbufErrors;
console.log(
  JSON.stringify(
    {
      hosts: HOSTS,
      linesPerSecondPerHost: RATE,
      seconds: Number(sendSeconds.toFixed(1)),
      transport: values.tcp ? 'tcp' : 'udp',
      sent,
      accepted,
      droppedByRackboot: dropped,
      kernelUdpRcvbufErrors: kernelDrops,
      kernelUdpInErrors: snmp1.inErrors - snmp0.inErrors,
      unaccounted: sent - accepted - Object.values(dropped).reduce((a, b) => a + b, 0) - (values.tcp ? 0 : kernelDrops),
      stored,
      ringLines: ring,
      perBuild: { min: minPerBuild, max: maxPerBuild },
      evictedByRingAtMost: evictionBound,
      serverPeakRssMiB: Number(peakRss.toFixed(0)),
    },
    null,
    2,
  ),
);
proc.kill('SIGTERM');
await new Promise((r) => proc.once('exit', r));
