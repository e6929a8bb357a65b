// Prints the rack bench table from the simulator's JSON results and the servers' /proc figures.
// Usage: node --import tsx report.ts REF_SIM.json REF_PROC.json RB_SIM.json RB_PROC.json [RB_API.json]
import { readFileSync } from 'node:fs';

interface Sim {
  label: string;
  hosts: number;
  initrd: string;
  wallSec: number;
  built: number;
  failures: number;
  distinctIps: number;
  bytes: number;
  retries: { dhcp: number; tftp: number; http: number; busy: number };
  phaseStats: Record<string, { n: number; p50: number | null; p95: number | null; max: number | null }>;
  failed: { mac: string; error?: string }[];
}
interface Proc {
  name: string;
  cpuSec: number;
  sysSec?: number;
  hwmMB: number;
  startupHwmMB?: number;
}
interface Api {
  built: number;
  total: number;
  timelineTypes?: string[];
}

const [refSim, refProc, rbSim, rbProc, rbApi] = process.argv
  .slice(2)
  .map((p) => (p ? JSON.parse(readFileSync(p, 'utf8')) : undefined)) as [Sim, Proc, Sim, Proc, Api | undefined];
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
const row = (name: string, rb: string, ref: string, r = ''): string =>
  `| ${name.padEnd(38)} | ${rb.padStart(14)} | ${ref.padStart(15)} | ${r.padStart(7)} |`;

const lines = [
  `Rack simulation: ${rbSim.hosts} PXE hosts at once, kernel+initrd over ${rbSim.initrd}, same run, same machine (${(await import('node:os')).cpus().length} cores)`,
  row('', 'rackboot', 'dnsmasq+nginx', 'ratio'),
  `|${'-'.repeat(40)}|${'-'.repeat(16)}|${'-'.repeat(17)}|${'-'.repeat(9)}|`,
  row(
    'wall time until all built (s)',
    rbSim.wallSec.toFixed(2),
    refSim.wallSec.toFixed(2),
    ratio(rbSim.wallSec, refSim.wallSec),
  ),
  row('built / hosts', `${rbSim.built}/${rbSim.hosts}`, `${refSim.built}/${refSim.hosts}`),
  row('failures', String(rbSim.failures), String(refSim.failures)),
  row('distinct client IPs seen', String(rbSim.distinctIps), String(refSim.distinctIps)),
  row(
    'retries dhcp/tftp/http',
    `${rbSim.retries.dhcp}/${rbSim.retries.tftp}/${rbSim.retries.http}`,
    `${refSim.retries.dhcp}/${refSim.retries.tftp}/${refSim.retries.http}`,
  ),
  row('TFTP "server busy" errors', String(rbSim.retries.busy), String(refSim.retries.busy)),
  row('boot files delivered (GB)', (rbSim.bytes / 1e9).toFixed(2), (refSim.bytes / 1e9).toFixed(2)),
  row(
    'server CPU during the run (s)',
    rbProc.cpuSec.toFixed(2),
    refProc.cpuSec.toFixed(2),
    ratio(rbProc.cpuSec, refProc.cpuSec),
  ),
  row('  of which kernel (stime) (s)', (rbProc.sysSec ?? NaN).toFixed(2), (refProc.sysSec ?? NaN).toFixed(2)),
  row(
    'server peak RSS, VmHWM (MB)',
    rbProc.hwmMB.toFixed(1),
    refProc.hwmMB.toFixed(1),
    ratio(rbProc.hwmMB, refProc.hwmMB),
  ),
];
if (rbProc.startupHwmMB !== undefined)
  lines.push(row('  rackboot VmHWM before the run (MB)', rbProc.startupHwmMB.toFixed(1), ''));
lines.push(row('per-phase duration p50 / max (s)', '', ''));
for (const p of Object.keys(rbSim.phaseStats)) {
  const a = rbSim.phaseStats[p],
    b = refSim.phaseStats[p];
  // A phase no host reached (every one failed before it) has no figures.
  const cell = (s?: { p50: number | null; max: number | null }): string =>
    s?.p50 == null || s.max == null ? '-' : `${s.p50.toFixed(2)} / ${s.max.toFixed(2)}`;
  lines.push(row(`  ${p}`, cell(a), cell(b)));
}
if (rbApi) lines.push(row('rackboot API: hosts in state built', `${rbApi.built}/${rbApi.total}`, ''));
console.log(lines.join('\n'));
if (rbApi?.timelineTypes) console.log(`rackboot timeline of the first host: ${rbApi.timelineTypes.join(', ')}`);
const goal =
  rbSim.failures === 0 &&
  refSim.failures === 0 &&
  rbSim.wallSec <= refSim.wallSec &&
  rbProc.cpuSec <= 1.2 * refProc.cpuSec;
console.log(
  `goal (all built, zero failures, wall time <= 1.0x the reference, server CPU <= 1.2x): ${goal ? 'MET' : 'NOT MET'}`,
);
for (const f of rbSim.failed.slice(0, 5)) console.log(`  rackboot failure ${f.mac}: ${f.error}`);
for (const f of refSim.failed.slice(0, 5)) console.log(`  reference failure ${f.mac}: ${f.error}`);
process.exit(goal ? 0 : 1);
