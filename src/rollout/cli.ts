// rackboot rack build|cancel, rackboot rollout show|list|cancel. The CLI records the rollout in the database and
// the running `rackboot serve` carries it out (its runner polls every second). Why not call serve's API: the CLI
// works on the data dir like every other command, needs no token and no URL, and the rollout is durable before
// the command returns, the same row a restarted serve resumes from. Power is then sent by one process only.
import type { Io } from '../cli.ts';
import type { Core } from '../serve.ts';
import { runningServer } from '../ops/backup.ts';
import { parseRackName, parseRolloutBody } from './request.ts';

export interface RolloutFlags {
  power: boolean;
  wave?: string;
  interval?: string;
  confirm: boolean;
  dataDir: string;
}

const asNumber = (v: string | undefined) => (v === undefined ? undefined : /^\d{1,9}$/.test(v) ? Number(v) : v);

export async function rackCommand(core: Core, io: Io, args: string[], f: RolloutFlags): Promise<number> {
  const [sub, rackArg] = args;
  if ((sub !== 'build' && sub !== 'cancel') || rackArg === undefined) {
    io.err('rackboot rack build RACK [--power] [--wave N] [--interval SECONDS] [--confirm] | rack cancel RACK');
    return 2;
  }
  const rack = parseRackName(rackArg);
  if (!rack.ok) {
    io.err(`rackboot rack ${sub}: ${rack.errors.join('; ')}`);
    return 2;
  }
  const s = core.rolloutService;
  const hosts = await s.rackHosts(rack.value);
  if (!hosts.length) {
    io.err(`rackboot rack ${sub}: rack ${rack.value} has no hosts (rackboot hosts list shows each host's rack)`);
    return 1;
  }
  if (sub === 'cancel') {
    const r = await s.cancelHosts(
      hosts.map((h) => h.mac),
      'cli',
    );
    io.out(
      `rack ${rack.value}: ${r.builds.length} build(s) cancelled${r.rollouts.length ? `, rollout(s) ${r.rollouts.join(', ')} cancelled` : ''}`,
    );
    return 0;
  }
  const o = parseRolloutBody(
    { power: f.power, waveSize: asNumber(f.wave), waveIntervalSeconds: asNumber(f.interval), confirm: f.confirm },
    false,
  );
  if (!o.ok) {
    const named = o.errors.map((e) =>
      e.replace(/^waveSize:/, '--wave:').replace(/^waveIntervalSeconds:/, '--interval:'),
    );
    io.err(`rackboot rack build: ${named.join('; ')}`);
    return 2;
  }
  const r = await s.start(
    `rack ${rack.value}`,
    hosts.map((h) => h.mac),
    o.value.options,
    'cli',
  );
  if (!r.ok) {
    io.err(`rackboot rack build: ${r.message.replace('"confirm": true (CLI: --confirm)', '--confirm')}`);
    for (const w of r.rebuild ?? []) io.err(`  ${w.hostname} (${w.mac}): ${w.wipes}`);
    return 1;
  }
  const v = (await s.show(r.value.id))!;
  io.out(
    `rollout ${v.id}: ${v.hostCount} host(s) of rack ${rack.value}${v.power ? `, powered through their BMCs in ${v.waves} wave(s) of up to ${v.waveSize}, ${v.waveIntervalSeconds} s apart` : ', builds only (no --power)'}`,
  );
  io.out(
    runningServer(f.dataDir)
      ? `rackboot serve carries it out now: rackboot rollout show ${v.id}`
      : `rackboot serve is not running on ${f.dataDir}: it carries the rollout out when it starts (rackboot rollout show ${v.id})`,
  );
  return 0;
}

export async function rolloutCommand(core: Core, io: Io, args: string[]): Promise<number> {
  const [sub, idArg] = args;
  const s = core.rolloutService;
  if (sub === 'list') {
    for (const r of await s.list(50))
      io.out([r.id, r.status, r.scope, `${r.hostCount} host(s)`, r.createdAt, JSON.stringify(r.steps)].join('\t'));
    return 0;
  }
  if ((sub !== 'show' && sub !== 'cancel') || idArg === undefined) {
    io.err('rackboot rollout list | show ID | cancel ID');
    return 2;
  }
  if (!/^[1-9]\d{0,15}$/.test(idArg)) {
    io.err(`rackboot rollout ${sub}: "${idArg.slice(0, 32)}" is not a rollout id (rackboot rollout list)`);
    return 2;
  }
  const id = Number(idArg);
  if (sub === 'cancel') {
    const r = await s.cancel(id, 'cli');
    if (!r.ok) {
      io.err(`rackboot rollout cancel: ${r.message}`);
      return 1;
    }
  }
  const v = await s.show(id);
  if (!v) {
    io.err(`rackboot rollout show: no rollout ${id} (rackboot rollout list)`);
    return 1;
  }
  io.out(
    `rollout ${v.id} ${v.status}: ${v.scope}, ${v.hostCount} host(s), ${v.power ? `power on, waves of ${v.waveSize}, ${v.waveIntervalSeconds} s apart` : 'no power'}, by ${v.actor} at ${v.createdAt}`,
  );
  for (const h of v.hosts)
    io.out(
      [
        `wave ${h.wave + 1}`,
        h.mac,
        h.hostname ?? '-',
        h.step,
        h.state,
        h.stuck ? h.stuck.text : '',
        h.reason ?? '',
      ].join('\t'),
    );
  return 0;
}
