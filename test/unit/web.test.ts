// Pure parts of the web UI: stages, board grouping, diffs, passwords, cookies, redirects, audit views,
// and the proof that the web template engine escapes (autoEscape on) while the boot one does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { buildBoard, chipOf, formatDuration, stageOfEvent, type Chip } from '../../src/web/board.ts';
import { diffHunks, diffLines, unifiedDiff } from '../../src/web/diff.ts';
import { hashUserPassword, verifyUserPassword, checkPassword, checkUserName } from '../../src/store/users.ts';
import { parseCookies, safeNext, tokensEqual, LoginThrottle } from '../../src/web/auth.ts';
import { auditView } from '../../src/web/pages/index.ts';
import { createViews } from '../../src/web/views.ts';
import { createRenderer } from '../../src/render/render.ts';
import type { Host } from '../../src/store/hosts.ts';
import type { Build } from '../../src/store/builds.ts';
import type { HostEvent } from '../../src/store/events.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO } from '../support/core.ts';

const host: Host = {
  mac: '52:54:00:00:00:01' as Mac,
  hostname: 'h1',
  profile: 'p',
  rack: 'R1',
  position: 'U1',
  nameservers: [],
  params: {},
  createdAt: 1000,
  updatedAt: 1000,
};
const build: Build = {
  id: 7,
  mac: host.mac,
  tokenPrefix: 'abcdef',
  status: 'pending',
  createdAt: 10_000,
  expiresAt: 99_000,
};
const ev = (at: number, type: string, extra: Partial<HostEvent> = {}): HostEvent => ({
  id: at,
  mac: host.mac,
  at,
  type,
  ...extra,
});

test('stages: each event type maps to the step of a PXE install', () => {
  const table: [Partial<HostEvent>, string | undefined][] = [
    [{ type: 'build.start' }, 'pending'],
    [{ type: 'dhcp.discover' }, 'dhcp'],
    [{ type: 'dhcp.ack' }, 'dhcp'],
    [{ type: 'pxelinux.config' }, 'loader'],
    [{ type: 'grub.config' }, 'loader'],
    [{ type: 'ipxe.config' }, 'loader'],
    [{ type: 'tftp.sent', detail: { path: 'pxelinux.0' } }, 'loader'],
    [{ type: 'tftp.sent', detail: { path: 'shimx64.efi' } }, 'loader'],
    [{ type: 'tftp.sent', detail: { path: 'rhvh-4.3/vmlinuz' } }, 'kernel'],
    [{ type: 'http.tftpfile', detail: { path: 'rhvh-4.3/initrd.img' } }, 'kernel'],
    [{ type: 'tftp.sent', detail: { path: 'README' } }, undefined],
    [{ type: 'kickstart.fetched' }, 'kickstart'],
    [{ type: 'progress', status: 'post-started' }, 'installing'],
    [{ type: 'kickstart.refused' }, undefined],
  ];
  for (const [e, want] of table) assert.equal(stageOfEvent(e as HostEvent), want, JSON.stringify(e));
});

test('chip: the furthest stage of the current build, with its step and the time it was reached', () => {
  const events = [
    ev(5000, 'kickstart.fetched'),
    ev(10_000, 'build.start', { buildId: 7 }),
    ev(11_000, 'dhcp.ack'),
    ev(12_000, 'tftp.sent', { detail: { path: 'pxelinux.0' } }),
    ev(13_000, 'tftp.sent', { detail: { path: 'rhvh-4.3/vmlinuz' } }),
    ev(14_000, 'dhcp.ack'),
    ev(15_000, 'kickstart.fetched', { buildId: 7 }),
  ];
  let c = chipOf(host, build, 'build', events, 20_000);
  assert.deepEqual(
    [c.stage, c.label, c.since],
    ['kickstart', 'kickstart fetched', 15_000],
    "a later DHCP does not move it back; the old build's kickstart does not count",
  );
  c = chipOf(
    host,
    build,
    'build',
    [
      ...events,
      ev(16_000, 'progress', { status: 'installing', buildId: 7 }),
      ev(17_000, 'progress', { status: 'nodectl-init', buildId: 7 }),
    ],
    20_000,
  );
  assert.deepEqual([c.stage, c.label, c.since], ['installing', 'installing: nodectl-init', 17_000]);
  assert.equal(chipOf(host, build, 'build', [], 20_000).stage, 'pending');
  assert.deepEqual(chipOf(host, { ...build, status: 'built', finishedAt: 18_000 }, 'built', [], 20_000).since, 18_000);
  assert.equal(chipOf(host, build, 'expired', [], 200_000).label, 'token expired');
  assert.equal(chipOf(host, undefined, 'idle', [], 20_000).stage, 'idle');
  assert.equal(chipOf(host, { ...build, status: 'failed', finishedAt: 19_000 }, 'failed', [], 20_000).label, 'failed');
});

test('board: racks in natural order, positions U2 before U10, counts, filters', () => {
  const chip = (rack: string, position: string, state: Chip['state'], profile = 'p'): Chip => ({
    mac: `${rack}${position}`,
    hostname: `${rack}-${position}`,
    rack,
    position,
    profile,
    state,
    stuck: false,
    stateLabel: state,
    stage: 'idle',
    label: '',
    since: 0,
  });
  const chips = [
    chip('R10', 'U1', 'built'),
    chip('R2', 'U10', 'idle'),
    chip('R2', 'U2', 'failed', 'q'),
    chip('', 'U1', 'build'),
  ];
  const b = buildBoard(chips, {});
  assert.deepEqual(
    b.racks.map((r) => r.rack),
    ['R2', 'R10', ''],
  );
  assert.deepEqual(
    b.racks[0].chips.map((c) => c.position),
    ['U2', 'U10'],
  );
  assert.deepEqual(b.counts, { idle: 1, build: 1, built: 1, failed: 1, expired: 0, stuck: 0 });
  assert.deepEqual(b.racks[0].counts.failed, 1);
  assert.equal(buildBoard(chips, { rack: 'R2' }).total, 2);
  assert.equal(buildBoard(chips, { profile: 'q' }).total, 1);
  assert.equal(buildBoard(chips, { state: 'built' }).racks[0].rack, 'R10');
  assert.deepEqual(
    buildBoard(chips, { state: 'built' }).rackNames,
    ['', 'R2', 'R10'].sort(new Intl.Collator('en', { numeric: true }).compare),
    'menus list every rack',
  );
});

test('durations read like a person would say them', () => {
  assert.deepEqual([0, 45e3, 125e3, 3 * 3600e3 + 20 * 60e3, 50 * 3600e3, -5].map(formatDuration), [
    '0s',
    '45s',
    '2m 05s',
    '3h 20m',
    '2d 2h',
    '0s',
  ]);
});

test('diff: minimal line changes, hunks with context, unified text', () => {
  const a = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n';
  const b = 'a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n';
  const all = diffLines(a, b);
  assert.deepEqual(
    all.filter((l) => l.kind !== 'same').map((l) => (l.kind === 'skip' ? 'skip' : `${l.kind}:${l.text}`)),
    ['del:d', 'add:D', 'add:k'],
  );
  const h = diffHunks(a, b, 1);
  assert.deepEqual(
    h.map((l) => (l.kind === 'skip' ? `skip${l.count}` : l.kind === 'same' ? l.text : `${l.kind}${l.text}`)),
    ['skip2', 'c', 'deld', 'addD', 'e', 'skip4', 'j', 'addk'],
  );
  assert.equal(unifiedDiff(a, a), '');
  assert.match(unifiedDiff('x\n', 'y\n', 'old', 'new'), /^--- old\n\+\+\+ new\n-x\n\+y\n$/);
  assert.deepEqual(
    diffLines('', 'one\n').map((l) => l.kind),
    ['add'],
  );
  assert.deepEqual(diffLines('p\nq\nr\n', 'q\nr\np\n').filter((l) => l.kind !== 'same').length, 2);
});

test('passwords: scrypt, salted, self-describing; rules for new ones', async () => {
  const h1 = await hashUserPassword('a good long password');
  const h2 = await hashUserPassword('a good long password');
  assert.match(h1, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.notEqual(h1, h2, 'salted');
  assert.equal(await verifyUserPassword('a good long password', h1), true);
  assert.equal(await verifyUserPassword('a good long passwore', h1), false);
  assert.equal(await verifyUserPassword('x', 'plain'), false);
  assert.equal(
    await verifyUserPassword('x', 'scrypt$99999999$8$1$AAAA$AAAA'),
    false,
    'absurd parameters are refused, not computed',
  );
  assert.match(checkPassword('short') ?? '', /at least 10/);
  assert.match(checkPassword('alice-is-great', 'alice') ?? '', /user name/);
  assert.equal(checkPassword('a good long password'), undefined);
  assert.equal(checkUserName('alice'), undefined);
  assert.ok(checkUserName('<b>'));
});

test('cookies, tokens, redirects, throttling', () => {
  assert.deepEqual(
    [...parseCookies('a=1; rackboot_session=xyz; b="q%20r"; a=2')],
    [
      ['a', '1'],
      ['rackboot_session', 'xyz'],
      ['b', 'q r'],
    ],
  );
  assert.equal(tokensEqual('abc', 'abc'), true);
  assert.equal(tokensEqual('abc', 'abd'), false);
  assert.equal(tokensEqual(undefined, 'abc'), false);
  assert.equal(tokensEqual('', ''), false);
  assert.equal(tokensEqual(['abc'], 'abc'), false);
  for (const bad of [
    '//evil.example',
    'https://evil.example',
    '/\\evil',
    'javascript:alert(1)',
    '/x\r\nSet-Cookie: a=b',
    undefined,
  ])
    assert.equal(safeNext(bad), '/', String(bad));
  assert.equal(safeNext('/hosts/52:54:00:00:00:01?x=1'), '/hosts/52:54:00:00:00:01?x=1');
  let t = 0;
  const th = new LoginThrottle(3, 1000, () => t);
  th.reserve(['ip'])!.fail();
  th.reserve(['ip'])!.fail();
  assert.equal(th.blocked('ip'), false);
  th.reserve(['ip'])!.fail();
  assert.equal(th.blocked('ip'), true);
  assert.equal(th.reserve(['ip']), undefined);
  t = 1001;
  assert.equal(th.blocked('ip'), false);
});

test('audit entries show as a unified diff, field changes, or JSON', () => {
  assert.deepEqual(auditView(null), { kind: 'none' });
  const u = auditView(JSON.stringify({ unified: '--- a\n+++ b\n-x\n+y\n@@ 3 unchanged line(s) @@\n' }));
  assert.equal(u.kind, 'unified');
  assert.deepEqual(u.kind === 'unified' && u.lines.map((l) => l.cls), ['hdr', 'hdr', 'del', 'add', 'skip']);
  const f = auditView(JSON.stringify({ hostname: { from: 'a', to: 'b' }, ip: { to: '10.0.0.1' } }));
  assert.deepEqual(f.kind === 'fields' && f.rows, [
    { field: 'hostname', from: 'a', to: 'b' },
    { field: 'ip', from: '(none)', to: '10.0.0.1' },
  ]);
  assert.equal(auditView(JSON.stringify(['52:54:00:00:00:01'])).kind, 'json');
});

test('two template engines: web pages escape, boot and kickstart text does not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-views-'));
  try {
    writeFileSync(join(dir, 'probe.eta'), '<p title="<%= it.v %>"><%= it.v %></p>');
    const html = createViews(dir).render('probe', { v: `"><img src=x onerror=alert(1)> & <script>` });
    assert.equal(
      html,
      '<p title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;">&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;</p>',
    );
    mkdirSync(join(dir, 'boot'));
    mkdirSync(join(dir, 'kickstart'));
    writeFileSync(join(dir, 'boot', 'ipxe-local.eta'), '<%= it.reason %>');
    assert.equal(createRenderer(dir).localConfig('ipxe', 'a & b <c>'), 'a & b <c>');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The shipped web templates load and never print user data raw: `<%~` only for the layout body and partials.
  const views = createViews(join(REPO, 'templates/web'));
  assert.ok(views.render('error', { title: '<x>', message: '<y>', path: '/' }).includes('&lt;y&gt;'));
});
