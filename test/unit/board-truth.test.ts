// The board tells the truth (issue #14): one wording per state, failed and stuck chips say why in one line,
// stuck filter and counts, sort by time in stage, and a palette whose text meets WCAG 2 AA (4.5:1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildBoard,
  chipOf,
  failureReason,
  stageLabel,
  STATE_LABELS,
  VIEW_LABELS,
  type Chip,
} from '../../src/web/board.ts';
import type { Build } from '../../src/store/builds.ts';
import type { Host } from '../../src/store/hosts.ts';
import type { HostEvent } from '../../src/store/events.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO } from '../support/core.ts';

const mac = '52:54:00:aa:00:01' as Mac;
const host: Host = {
  mac,
  hostname: 'n1',
  profile: 'rhvh-base',
  nameservers: [],
  params: {},
  rack: 'R1',
  position: 'U1',
  createdAt: 0,
  updatedAt: 0,
};
const build: Build = { id: 7, mac, tokenPrefix: 'abcdef', status: 'pending', createdAt: 1000, expiresAt: 99_000 };
const ev = (type: string, at: number, status?: string, detail?: Record<string, unknown>): HostEvent => ({
  id: at,
  mac,
  buildId: 7,
  at,
  type,
  status,
  detail,
});

test('one wording: a progress step that repeats the stage is not said twice ("installing: installing")', () => {
  assert.equal(stageLabel('installing', 'installing'), 'installing');
  assert.equal(stageLabel('installing', 'Installing'), 'installing');
  assert.equal(stageLabel('installing', 'nodectl-init'), 'installing: nodectl-init');
  assert.equal(stageLabel('installing', '  '), 'installing');
  assert.equal(stageLabel('kernel', 'nodectl-init'), 'kernel/initrd', 'a step names only the installing stage');
  const c = chipOf(host, build, 'build', [ev('progress', 2000, 'installing')], 3000);
  assert.equal(c.label, 'installing');
  assert.equal(STATE_LABELS.build, 'in build');
  assert.equal(VIEW_LABELS.stuck, 'stuck');
});

test('a step from the network cannot break the chip line: control characters and line separators go', () => {
  const label = stageLabel('installing', 'a\nb\r\u2028c\u0000d\u001b[31m');
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(label, /[\n\r\u2028\u0000\u001b]/);
  assert.equal(label, 'installing: a b c d [31m');
  assert.ok(stageLabel('installing', 'x'.repeat(10_000)).length <= 160, 'bounded');
});

test('failed chip: the last line the installer said, after the last step it reported', () => {
  const failed: Build = {
    ...build,
    status: 'failed',
    finishedAt: 5000,
    failureLog: 'line one\nnodectl init failed: exit 1\n\n  ',
  };
  const events = [ev('progress', 2000, 'nodectl-init'), ev('build.failed', 5000, 'failed')];
  const c = chipOf(host, failed, 'failed', events, 6000);
  assert.equal(c.label, 'failed');
  assert.equal(c.reason, 'failed at nodectl-init: nodectl init failed: exit 1');
  // No failure log: the syslog tail of the build.failed event.
  const noLog: Build = { ...failed, failureLog: undefined };
  assert.equal(
    failureReason(noLog, [ev('build.failed', 5000, 'failed', { syslogTail: ['anaconda: x', 'disk sda not found'] })]),
    'failed: disk sda not found',
  );
  assert.equal(failureReason(noLog, []), 'failed (the installer sent no log)');
  // Another build's events say nothing about this one.
  assert.equal(
    failureReason(noLog, [{ ...ev('progress', 2000, 'other'), buildId: 6 }]),
    'failed (the installer sent no log)',
  );
  // A hostile log: one line, bounded, no control characters.
  const hostile = failureReason({ ...failed, failureLog: `\u001b]0;pwn\u0007${'A'.repeat(100_000)}` }, []);
  assert.ok(hostile.length <= 160);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(hostile, /[\u0000-\u001f]/);
});

test('stuck chip: "stuck: <stage> for <time>" with the last thing seen; only a host in build is stuck', () => {
  const stuck = { stage: 'kernel', since: 1000, lastSeen: 'tftp.sent vmlinuz from 10.0.0.12' };
  const c = chipOf(host, build, 'build', [], 1000 + 6 * 60_000 + 5000, stuck);
  assert.equal(c.stuck, true);
  assert.equal(c.reason, 'stuck: kernel for 6m 05s; last seen: tftp.sent vmlinuz from 10.0.0.12');
  const built = chipOf(host, { ...build, status: 'built', finishedAt: 2000 }, 'built', [], 9000, stuck);
  assert.equal(built.stuck, false);
  assert.equal(built.reason, undefined);
});

test('board: stuck filter and counts per rack, sort by time in stage, views in one wording', () => {
  const chip = (rack: string, position: string, state: Chip['state'], since: number, stuck = false): Chip => ({
    mac: `${rack}${position}`,
    hostname: `${rack}-${position}`,
    rack,
    position,
    profile: 'p',
    state,
    stuck,
    stateLabel: state,
    stage: 'idle',
    label: '',
    since,
  });
  const chips = [
    chip('R1', 'U1', 'build', 500),
    chip('R1', 'U2', 'build', 100, true),
    chip('R1', 'U3', 'failed', 300),
    chip('R2', 'U1', 'build', 50, true),
  ];
  const b = buildBoard(chips, {});
  assert.equal(b.counts.stuck, 2);
  assert.equal(b.counts.build, 3, 'stuck hosts are in build too');
  assert.equal(b.racks[0]!.counts.stuck, 1);
  const stuck = buildBoard(chips, { state: 'stuck' });
  assert.deepEqual(
    stuck.racks.flatMap((g) => g.chips.map((c) => c.mac)),
    ['R1U2', 'R2U1'],
  );
  const byTime = buildBoard(chips, { sort: 'time' });
  assert.deepEqual(
    byTime.racks[0]!.chips.map((c) => c.position),
    ['U2', 'U3', 'U1'],
    'longest in stage (earliest since) first',
  );
  assert.deepEqual(
    b.views.map((v) => v.label),
    ['in build', 'stuck', 'failed', 'token expired', 'built', 'idle'],
  );
  assert.equal(buildBoard(chips, { state: 'nonsense' }).total, 0, 'an unknown view shows nothing, not everything');
});

// --- contrast (WCAG 2.x relative luminance and contrast ratio) ---------------------------------------
function luminance(hex: string): number {
  const n = hex.replace('#', '');
  const [r, g, b] = [0, 2, 4].map((i) => {
    const v = parseInt(n.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

test('WCAG formula: black on white is 21:1, a colour on itself 1:1, #767676 on white just passes 4.5:1', () => {
  assert.equal(contrast('#000000', '#ffffff'), 21);
  assert.equal(contrast('#123456', '#123456'), 1);
  assert.ok(contrast('#767676', '#ffffff') >= 4.5 && contrast('#777777', '#ffffff') < 4.5);
});

test('every stage colour of app.css, used as text, meets 4.5:1 on every background a chip or tag has', () => {
  const css = readFileSync(join(REPO, 'templates/web/static/app.css'), 'utf8');
  const vars = new Map([...css.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1]!, m[2]!]));
  const stages = [
    'idle',
    'pending',
    'dhcp',
    'loader',
    'kernel',
    'kickstart',
    'installing',
    'built',
    'failed',
    'expired',
  ];
  const texts = [...stages, 'stuck', 'muted', 'fg'];
  // Chip (#fbfcfd), failed chip, stuck chip, hover, the live-update flash, tags on white, the page.
  const backgrounds = ['#fbfcfd', '#fff5f5', '#fff4ec', '#eef3fb', '#fff6d6', '#ffffff', vars.get('bg')!];
  for (const bg of backgrounds)
    assert.ok(css.toLowerCase().includes(bg === '#ffffff' ? '#fff;' : bg), `${bg} is a background app.css uses`);
  const failures: string[] = [];
  for (const name of texts) {
    const colour = vars.get(name);
    assert.ok(colour, `--${name} is defined`);
    for (const bg of backgrounds) {
      const r = contrast(colour, bg);
      if (r < 4.5) failures.push(`--${name} ${colour} on ${bg}: ${r.toFixed(2)}:1`);
    }
  }
  assert.deepEqual(failures, []);
  // Each stage rule colours its text with its own variable (a new stage without a colour would fall back).
  for (const s of stages) assert.match(css, new RegExp(`\\.stage-${s} \\.stage \\{ color: var\\(--${s}\\)`));
});
