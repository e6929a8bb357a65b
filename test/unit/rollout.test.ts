// Rollouts, pure parts: request checks (worst values), firmware from the timeline, stuck stages and actions, rebuild wipe text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMacList, parseRackName, parseRolloutBody, MACS_MAX } from '../../src/rollout/request.ts';
import { firmwareOf, type TimelineEntry } from '../../src/rollout/firmware.ts';
import {
  currentStuck,
  DEFAULT_STUCK_LIMITS,
  formatDuration,
  stuckAction,
  stuckAt,
  type StuckLimits,
} from '../../src/rollout/stuck.ts';
import { wipeText } from '../../src/rollout/service.ts';
import { StuckWatch } from '../../src/rollout/stuck-watch.ts';
import type { FirmwareGuess } from '../../src/rollout/firmware.ts';
import { silentLogger } from '../../src/log.ts';
import type { Mac } from '../../src/net/mac.ts';

test('rollout body: defaults, and every bound refused with the field named', () => {
  const ok = parseRolloutBody({ power: true }, false);
  assert.ok(ok.ok);
  assert.deepEqual(ok.value.options, { power: true, waveSize: 8, waveIntervalMs: 20_000, confirm: false });
  assert.ok(parseRolloutBody(undefined, false).ok, 'no body: the defaults');
  const bad: [unknown, RegExp][] = [
    [{ waveSize: 0 }, /^waveSize: must be a whole number from 1 to 256/],
    [{ waveSize: -1 }, /^waveSize:/],
    [{ waveSize: 257 }, /^waveSize:/],
    [{ waveSize: 1e300 }, /^waveSize:/],
    [{ waveSize: 2.5 }, /^waveSize:/],
    [{ waveSize: '8' }, /^waveSize: .*got "8"/],
    [{ waveSize: null }, /^waveSize:/],
    [{ waveIntervalSeconds: -1 }, /^waveIntervalSeconds: must be a whole number from 0 to 3600/],
    [{ waveIntervalSeconds: 3601 }, /^waveIntervalSeconds:/],
    [{ waveIntervalSeconds: [20] }, /^waveIntervalSeconds:/],
    [{ power: 'yes' }, /^power: must be true or false/],
    [{ power: 1 }, /^power:/],
    [{ confirm: 'true' }, /^confirm:/],
    [{ macs: ['52:54:00:00:00:01'] }, /^"macs": not a rollout field/],
    [{ __proto__x: 1 }, /not a rollout field/],
    [{ ['x'.repeat(10_000)]: 1 }, /^"x{30,}…: not a rollout field/],
    [[], /must be a JSON object/],
    ['power', /must be a JSON object/],
    [42, /must be a JSON object/],
  ];
  for (const [body, re] of bad) {
    const r = parseRolloutBody(body, false);
    assert.ok(!r.ok, JSON.stringify(body)?.slice(0, 60));
    assert.match(r.errors.join('\n'), re);
    assert.ok(
      r.errors.every((e) => e.length < 300),
      'an error never echoes a huge value',
    );
  }
  const several = parseRolloutBody({ waveSize: 0, waveIntervalSeconds: 'x', power: 2 }, false);
  assert.ok(!several.ok);
  assert.equal(several.errors.length, 3, 'every problem at once');
});

test('macs: a list of distinct MACs, bounded; the index of each bad one named', () => {
  assert.deepEqual(parseMacList(['52-54-00-00-00-01', '5254.0000.0002']), {
    ok: true,
    value: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
  });
  const cases: [unknown, RegExp][] = [
    [undefined, /^macs: must be a list of 1 or more/],
    [[], /^macs: must be a list of 1 or more/],
    ['52:54:00:00:00:01', /^macs: must be a list/],
    [{ 0: '52:54:00:00:00:01' }, /^macs: must be a list/],
    [['zz:zz:zz:zz:zz:zz'], /^macs\[0\]: "zz:zz:zz:zz:zz:zz" is not a MAC address/],
    [['52:54:00:00:00:01', 7], /^macs\[1\]: 7 is not/],
    [['52:54:00:00:00:01', '52-54-00-00-00-01'], /^macs\[1\]: 52:54:00:00:00:01 is listed twice/],
    [['52:54:00:00:00:01\n'.repeat(3)], /^macs\[0\]:/],
    [Array.from({ length: MACS_MAX + 1 }, () => '52:54:00:00:00:01'), /^macs: at most 10000/],
  ];
  for (const [v, re] of cases) {
    const r = parseMacList(v);
    assert.ok(!r.ok);
    assert.match(r.errors[0]!, re);
  }
  const many = parseMacList(Array.from({ length: 500 }, () => 'nope'));
  assert.ok(!many.ok && many.errors.length === 20, 'bounded error list');
  assert.ok(parseRolloutBody({ macs: ['52:54:00:00:00:01'] }, true).ok);
  assert.ok(!parseRolloutBody({}, true).ok, 'POST /api/hosts/build needs macs');
});

test('rack names: printable, 1-64 characters', () => {
  assert.ok(parseRackName('R1').ok);
  for (const bad of ['', 'a'.repeat(65), 'R1\n', 'R\u0000', 'R\u2028'])
    assert.match((parseRackName(bad) as { errors: string[] }).errors[0]!, /^rack: /);
});

const ev = (type: string, at: number, extra: Partial<TimelineEntry> = {}): TimelineEntry => ({ type, at, ...extra });

test('firmware: the newest DHCP architecture, else the loader config, else discovery, else UEFI assumed', () => {
  assert.equal(firmwareOf([ev('dhcp.discover', 1, { detail: { arch: 0 } })]).mode, 'legacy');
  assert.equal(firmwareOf([ev('dhcp.discover', 1, { detail: { arch: 7 } })]).mode, 'uefi');
  assert.equal(
    firmwareOf([ev('dhcp.discover', 1, { detail: { arch: 7 } }), ev('dhcp.request', 2, { detail: { arch: 0 } })]).mode,
    'legacy',
    'the newest wins',
  );
  assert.equal(firmwareOf([ev('pxelinux.config', 1)]).mode, 'legacy');
  assert.equal(firmwareOf([ev('grub.config', 1)]).mode, 'uefi');
  assert.equal(firmwareOf([], 0).mode, 'legacy');
  const none = firmwareOf([ev('build.start', 1)]);
  assert.equal(none.mode, 'uefi');
  assert.match(none.why, /assumed/);
  assert.equal(
    firmwareOf([ev('dhcp.discover', 1, { detail: { arch: '0' } })]).mode,
    'uefi',
    'a forged string arch is not an arch',
  );
});

/** A bmc.power event as src/bmc/power.ts, the runner and the watcher write it. */
const pw = (at: number, action: 'on' | 'cycle' | 'off', auto = false) =>
  ev('bmc.power', at, { status: 'on', detail: { action, ...(auto ? { auto: true } : {}) } });

const L: StuckLimits = {
  dhcpAfterPowerOnMs: 100,
  kernelAfterLoaderMs: 200,
  kickstartAfterKernelMs: 300,
  builtAfterKickstartMs: 400,
};

test('stuck: each stage against its own limit, from its latest milestone', () => {
  const powered = [ev('build.start', 0), pw(10, 'on')];
  assert.equal(stuckAt(powered, 109, L), undefined, 'within the limit');
  const s = stuckAt(powered, 110, L)!;
  assert.equal(s.stage, 'power-on');
  assert.equal(s.waitingFor, 'dhcp');
  assert.equal(s.forMs, 100);
  assert.equal(s.lastSeen?.type, 'bmc.power');
  assert.equal(stuckAt([ev('build.start', 0)], 1e9, L), undefined, 'no milestone: nobody said when it was powered on');
  const loading = [...powered, ev('dhcp.ack', 20), ev('grub.config', 30)];
  assert.equal(stuckAt(loading, 229, L), undefined);
  assert.equal(stuckAt(loading, 230, L)?.stage, 'loader');
  const kernel = [...loading, ev('tftp.sent', 40, { detail: { path: 'rhvh-4.3/vmlinuz' } })];
  assert.equal(stuckAt(kernel, 339, L), undefined);
  assert.equal(stuckAt(kernel, 340, L)?.waitingFor, 'kickstart');
  const ks = [
    ...kernel,
    ev('http.tftpfile', 41, { detail: { path: '/rhvh-4.3/initrd.img' } }),
    ev('kickstart.fetched', 50),
  ];
  assert.equal(stuckAt(ks, 449, L), undefined);
  assert.equal(stuckAt(ks, 450, L)?.stage, 'kickstart');
  assert.equal(stuckAt([...ks, ev('build.built', 60)], 1e9, L), undefined, 'built: never stuck');
  // A machine that DHCPs again while loading is still loading (furthest stage counts) ...
  assert.equal(stuckAt([...kernel, ev('dhcp.ack', 45)], 340, L)?.stage, 'kernel');
  // ... but a power-on starts over.
  assert.equal(stuckAt([...kernel, pw(300, 'cycle', true)], 399, L), undefined);
  assert.equal(DEFAULT_STUCK_LIMITS.builtAfterKickstartMs, 3_600_000);
});

test('stuck action: one automatic power-cycle with a BMC, then the mark, once per stage; none without a BMC', () => {
  const powered = [pw(0, 'on')];
  assert.equal(stuckAction(powered, 50, L, true).kind, 'none');
  assert.equal(stuckAction(powered, 100, L, true).kind, 'cycle');
  assert.equal(stuckAction(powered, 100, L, false).kind, 'mark');
  const cycled = [...powered, pw(100, 'cycle', true)];
  assert.equal(stuckAction(cycled, 150, L, true).kind, 'none', 'the cycle restarts the clock');
  assert.equal(stuckAction(cycled, 200, L, true).kind, 'mark', 'one automatic cycle per build');
  const marked = [...cycled, ev('stuck', 200, { detail: { stage: 'power-on', since: 100, waitingFor: 'dhcp' } })];
  assert.equal(stuckAction(marked, 5000, L, true).kind, 'none', 'marked once');
  // A cycle the rollout or a person sent is not the automatic one; an off is no power-on.
  assert.equal(stuckAction([pw(0, 'cycle')], 100, L, true).kind, 'cycle');
  assert.equal(stuckAction([pw(0, 'off')], 1e9, L, true).kind, 'none');
});

test('stuck watch: a build younger than the shortest limit is not read; an older one past its limit is marked', async () => {
  const now = 10_000;
  const read: string[] = [];
  const marked: string[] = [];
  const powered = (since: number) => [ev('build.start', since), pw(since, 'on')];
  const builds = [
    { mac: '52:54:00:00:00:01' as Mac, buildId: 1, since: now - 99 }, // younger than 100 ms: cannot be stuck yet
    { mac: '52:54:00:00:00:02' as Mac, buildId: 2, since: now - 100 }, // powered on 100 ms ago, no DHCP: stuck
  ];
  const watch = new StuckWatch({
    inBuild: () => builds,
    timeline: async (mac) => {
      read.push(mac);
      return powered(builds.find((b) => b.mac === mac)!.since);
    },
    bmcFor: async () => undefined,
    firmwareOf: async (): Promise<FirmwareGuess> => ({ mode: 'uefi', why: 'assumed' }),
    event: (e) => marked.push(`${e.mac} ${e.type} ${e.status}`),
    limits: L,
    log: silentLogger(),
    now: () => now,
    checkEveryMs: 60_000,
  });
  await watch.check();
  assert.deepEqual(read, ['52:54:00:00:00:02']);
  assert.deepEqual(marked, ['52:54:00:00:00:02 stuck power-on']);
});

test('stuck view: the mark until a milestone comes after it; one line of text', () => {
  const marked = [
    pw(0, 'on'),
    pw(100, 'cycle', true),
    ev('stuck', 200, {
      detail: { stage: 'power-on', since: 100, waitingFor: 'dhcp', lastSeen: { type: 'bmc.power', at: 100 } },
    }),
  ];
  const v = currentStuck(marked, 100 + 6 * 60_000)!;
  assert.equal(v.text, 'stuck: power-on for 6m');
  assert.equal(v.waitingFor, 'dhcp');
  assert.equal(v.autoCycled, true);
  assert.equal(v.lastSeen?.type, 'bmc.power');
  assert.equal(currentStuck([...marked, ev('dhcp.ack', 300)], 1e6), undefined, 'it moved on');
  assert.equal(currentStuck([...marked, ev('bmc.boot', 300)], 1e6)?.stage, 'power-on', 'not a milestone');
  assert.equal(
    currentStuck([ev('stuck', 1, { detail: { stage: 42 } })], 2)?.stage,
    'unknown',
    'a damaged detail still reads',
  );
  assert.deepEqual(
    [formatDuration(5_000), formatDuration(61_000), formatDuration(3_600_000), formatDuration(5_400_000)],
    ['5s', '1m 1s', '1h', '1h 30m'],
  );
});

test('rebuild wipe text names the disks, or says every disk when the profile limits none', () => {
  assert.match(wipeText({ layout: 'autopart' }), /every disk the installer sees, SAN LUNs included/);
  assert.match(wipeText({ layout: 'autopart', disks: ['sda', 'sdb'] }), /^disks sda, sdb are cleared .*autopart thin/);
  assert.match(wipeText(undefined), /profile does not resolve/);
});
