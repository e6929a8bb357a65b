// A board that never lies (issue #14), in a real browser: Debian's chromium driven by playwright-core against a
// real `startRackboot`, and the real `rackboot` CLI as a second process on the same data dir. A host imported
// and built from the CLI appears and flips live; token expiry and stuck show without reload; the page says
// "Offline" when its stream is down; the installer log is live with a severity filter; a discovered machine
// becomes a host in one form; the import reports every problem at once. Screenshots go to test/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import type { Config } from '../../src/config.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO } from '../support/core.ts';
import { loopbackConfig } from '../support/server-env.ts';
import { ARTIFACTS, BROWSER_MISSING, launchBrowser } from '../support/browser.ts';

const SKIP = BROWSER_MISSING;
const BIN = join(REPO, 'bin/rackboot.mjs');
const PW = 'correct horse battery';

let dir: string;
let config: Config;
let running: Running;
let ctx: BrowserContext;
let page: Page;
let base: string;
const dialogs: string[] = [];

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

function cli(...args: string[]): Promise<{ code: number; out: string; exitedAt: number }> {
  const flags = ['--data-dir', config.dataDir, '--profiles-dir', config.profilesDir, '--public-url', config.publicUrl];
  const proc = spawn(process.execPath, [BIN, ...args, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ code: code ?? -1, out, exitedAt: Date.now() })));
}

before(async () => {
  if (SKIP) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ dir, config } = loopbackConfig('rackboot-board-'));
  running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: 'board-browser-test' });
  base = `http://127.0.0.1:${running.httpPort}`;
  await running.core.store.users.add('alice', 'admin', hashUserPasswordSync(PW));
  await running.core.hosts.insert({
    mac: '52:54:00:ee:00:01' as Mac,
    hostname: 'seed01',
    profile: 'rhvh-base',
    rack: 'R1',
    position: 'U1',
    nameservers: [],
    params: {},
  });
  ({ ctx, page } = await launchBrowser(dir, dialogs));
  await page.goto(`${base}/login`);
  await page.fill('#name', 'alice');
  await page.fill('#password', PW);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/`);
});

after(async () => {
  if (SKIP) return;
  await ctx?.close();
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

test(
  'a host imported and built from the CLI appears and flips live; its token expiry shows',
  { skip: SKIP },
  async () => {
    await page.goto(`${base}/`);
    await page.locator('#live-status.on').waitFor();
    assert.equal(await page.textContent('#live-status'), 'Live');
    const csv = join(dir, 'r9.csv');
    writeFileSync(csv, 'mac,hostname,profile,rack,position\n52:54:00:ee:09:01,cli91,rhvh-base,R9,U1\n');
    const imp = await cli('hosts', 'import', csv);
    assert.equal(imp.code, 0, imp.out);
    const chip = page.locator('.chip[data-mac="52:54:00:ee:09:01"]');
    await chip.waitFor({ timeout: 2000 });
    const appeared = Date.now() - imp.exitedAt;
    assert.ok(appeared < 1500, `appeared ${appeared} ms after the CLI exited`);
    assert.equal(await page.locator('section.rack[data-rack="R9"] .chip').count(), 1, 'in a new rack section');
    assert.equal(await chip.locator('.name').textContent(), 'cli91');
    assert.equal(await page.textContent('[data-count="idle"]'), '2');

    const build = await cli('hosts', 'build', '52:54:00:ee:09:01', '--token-ttl', '4s');
    assert.equal(build.code, 0, build.out);
    await page.waitForSelector('.chip[data-mac="52:54:00:ee:09:01"][data-state="build"]', { timeout: 2000 });
    assert.ok(Date.now() - build.exitedAt < 1500);
    assert.equal(await chip.locator('.stage').textContent(), 'build pending');
    assert.equal(await page.textContent('[data-count="build"]'), '1');
    await shot('board-01-cli-build-live');

    const expiresAt = (await running.core.builds.latest('52:54:00:ee:09:01' as Mac))!.expiresAt;
    await page.waitForSelector('.chip[data-mac="52:54:00:ee:09:01"][data-state="expired"]', {
      timeout: expiresAt - Date.now() + 2000,
    });
    const late = Date.now() - expiresAt;
    assert.ok(late < 1500, `expiry shown ${late} ms after expires_at`);
    assert.equal(await chip.locator('.stage').textContent(), 'token expired');
    assert.equal(await page.textContent('[data-count="expired"]'), '1');
    await shot('board-02-token-expired-live');
    assert.deepEqual(dialogs, []);
  },
);

test(
  'stuck shows without reload: the chip says where and for how long, the stuck count and filter',
  { skip: SKIP },
  async () => {
    const mac = '52:54:00:ee:05:01' as Mac;
    await running.core.hosts.insert({
      mac,
      hostname: 'stuck51',
      profile: 'rhvh-base',
      rack: 'R5',
      position: 'U1',
      nameservers: [],
      params: {},
    });
    const p = running.core.provisioner;
    assert.ok((await p.startBuild(mac, 'test')).ok);
    p.event({ mac, type: 'tftp.sent', clientIp: '10.99.0.55', detail: { path: 'rhvh/vmlinuz' } });
    await page.goto(`${base}/`);
    await page.locator('#live-status.on').waitFor();
    const chip = page.locator(`.chip[data-mac="${mac}"]`);
    assert.equal(await chip.locator('.stage').textContent(), 'kernel/initrd');
    // What the rollout's stuck watcher (src/rollout/stuck-watch.ts) records past a stage's time limit.
    const since = Date.now() - 6 * 60_000;
    p.event({
      mac,
      type: 'stuck',
      status: 'kernel',
      detail: {
        stage: 'kernel',
        waitingFor: 'kickstart',
        since,
        forSeconds: 360,
        lastSeen: { type: 'tftp.sent', at: since, status: 'ok' },
      },
    });
    await page.waitForSelector(`.chip.stuck[data-mac="${mac}"]`, { timeout: 1500 });
    assert.match(
      (await chip.locator('.reason').textContent()) ?? '',
      /^stuck: kernel for 6m \d\ds; last seen: tftp\.sent ok at /,
    );
    assert.equal(await page.textContent('[data-count="stuck"]'), '1');
    assert.match((await page.locator('section.rack[data-rack="R5"] h2 small').textContent()) ?? '', /1 stuck/);
    await shot('board-09-stuck-live');
    await page.goto(`${base}/?state=stuck`);
    assert.equal(await page.locator('.chip').count(), 1);
    assert.equal(await page.locator(`.chip[data-mac="${mac}"]`).count(), 1);
    // The next milestone clears it, live.
    await page.goto(`${base}/`);
    await page.locator('#live-status.on').waitFor();
    p.event({ mac, type: 'kickstart.fetched', clientIp: '10.99.0.55' });
    await page.waitForSelector(`.chip[data-mac="${mac}"]:not(.stuck)`, { timeout: 1500 });
    assert.equal(await page.textContent('[data-count="stuck"]'), '0');
    await p.cancelBuild(mac, 'test');
  },
);

test('a failed build says why on its chip, live', { skip: SKIP }, async () => {
  const p = running.core.provisioner;
  const started = await p.startBuild('52:54:00:ee:00:01' as Mac, 'test');
  assert.ok(started.ok);
  p.learnClient('10.99.0.51', '52:54:00:ee:00:01' as Mac);
  await page.goto(`${base}/`);
  await page.locator('#live-status.on').waitFor();
  await p.progress(started.value.token, 'nodectl-init', '10.99.0.51');
  await page.waitForSelector('.chip[data-mac="52:54:00:ee:00:01"] .stage:text("installing: nodectl-init")');
  await p.callback(started.value.token, 'failed', '10.99.0.51', 'Traceback\nimgbased: no space left on device\n');
  const chip = page.locator('.chip[data-mac="52:54:00:ee:00:01"][data-state="failed"]');
  await chip.waitFor({ timeout: 1500 });
  assert.equal(
    await chip.locator('.reason').textContent(),
    'failed at nodectl-init: imgbased: no space left on device',
  );
  await page.goto(`${base}/?state=failed`);
  assert.equal(await page.locator('.chip').count(), 1, 'the failed filter');
  await shot('board-03-failed-reason');
});

/**
 * A TCP proxy on loopback in front of the server: "stall" keeps every connection open but passes nothing more
 * (a proxy or NAT that dropped the stream without a reset: EventSource sees no error), "pass" forwards again.
 */
function stallingProxy(port: number) {
  let mode: 'pass' | 'stall' = 'pass';
  const pairs = new Set<{ client: Socket; up?: Socket }>();
  const server = createNetServer((client) => {
    const pair: { client: Socket; up?: Socket } = { client };
    pairs.add(pair);
    client.on('close', () => {
      pair.up?.destroy();
      pairs.delete(pair);
    });
    client.on('error', () => {});
    if (mode === 'stall') return; // accepted, never answered
    const up = connect(port, '127.0.0.1');
    pair.up = up;
    up.on('error', () => client.destroy());
    up.on('close', () => client.destroy());
    client.pipe(up);
    up.pipe(client);
  });
  return {
    listen: () =>
      new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port))),
    stall() {
      mode = 'stall';
      for (const p of pairs) p.up?.unpipe(p.client);
    },
    pass() {
      mode = 'pass';
    },
    close() {
      for (const p of pairs) p.client.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

test(
  'a stream that goes silent shows "Offline — reconnecting", never "Live", and comes back by itself',
  { skip: SKIP },
  async () => {
    const proxy = stallingProxy(running.httpPort);
    const via = `http://127.0.0.1:${await proxy.listen()}`;
    try {
      await page.goto(`${via}/`);
      await page.locator('#live-status.on').waitFor();
      const t0 = Date.now();
      proxy.stall();
      // No error reaches EventSource: only the missed heartbeats (3 x 5 s) tell.
      await page.locator('#live-status.off').waitFor({ timeout: 25_000 });
      assert.equal(await page.textContent('#live-status'), 'Offline — reconnecting');
      assert.ok(Date.now() - t0 < 20_000, 'noticed within 3 heartbeats and a bit');
      await shot('board-04-offline');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await page.textContent('#live-status'), 'Offline — reconnecting', 'still not "Live" while down');
      proxy.pass();
      await page.locator('#live-status.on').waitFor({ timeout: 25_000 });
      assert.equal(await page.textContent('#live-status'), 'Live');
    } finally {
      await proxy.close();
    }
  },
);

test('the installer log on the host page is live, with a severity filter', { skip: SKIP }, async () => {
  const mac = '52:54:00:ee:00:01' as Mac;
  const started = await running.core.provisioner.startBuild(mac, 'test');
  assert.ok(started.ok);
  const line = (severity: number, text: string) =>
    running.core.syslog.append({ buildId: started.value.buildId, mac, at: Date.now(), facility: 1, severity, text });
  line(6, 'anaconda starting');
  await running.core.syslog.flush();
  await page.goto(`${base}/hosts/${mac}`);
  await page.locator('#log-lines .line', { hasText: 'anaconda starting' }).waitFor();
  line(3, 'disk sda: I/O error <img src=x onerror=alert(1)>');
  line(6, 'copying image 40%');
  await page.locator('#log-lines .line', { hasText: 'copying image 40%' }).waitFor({ timeout: 2000 });
  await page.selectOption('#log-severity', 'err');
  await page.locator('#log-lines .line', { hasText: 'I/O error' }).waitFor();
  assert.equal(await page.locator('#log-lines .line', { hasText: 'copying image' }).count(), 0, 'info is filtered');
  line(6, 'more info');
  line(2, 'kernel panic');
  await page.locator('#log-lines .line', { hasText: 'kernel panic' }).waitFor({ timeout: 2000 });
  assert.equal(await page.locator('#log-lines .line', { hasText: 'more info' }).count(), 0);
  assert.equal(await page.locator('img').count(), 0, 'log text stays text');
  // BMC trouble shows on the same page (src/bmc records it on the timeline).
  running.core.provisioner.event({
    mac,
    type: 'bmc.error',
    status: '401',
    detail: { action: 'power cycle', bmc: 'https://10.99.0.250', answer: '401 Unauthorized' },
  });
  await page.reload();
  assert.match(
    (await page.locator('#power').textContent()) ?? '',
    /power cycle at https:\/\/10\.99\.0\.250: 401 Unauthorized/,
  );
  await shot('board-05-installer-log');
  assert.deepEqual(dialogs, []);
});

test(
  'a discovered machine becomes a host in one form; a bad value is refused naming its field',
  { skip: SKIP },
  async () => {
    await running.core.store.discovered.seen({
      mac: '52:54:00:ee:0d:01' as Mac,
      arch: 7,
      ipxe: false,
      ip: '10.99.0.77',
    });
    await page.goto(`${base}/discovered`);
    const row = page.locator('tr[data-mac="52:54:00:ee:0d:01"]');
    assert.match((await row.textContent()) ?? '', /UEFI x64/);
    await row.locator('summary').click();
    await row.locator('input[name=hostname]').fill('bad name!');
    await row.locator('button[type=submit]').click();
    await page.locator('.flash.error', { hasText: 'hostname:' }).waitFor();
    assert.equal(await running.core.hosts.get('52:54:00:ee:0d:01' as Mac), undefined, 'nothing made');
    await shot('board-06-discovered-refused');
    const again = page.locator('tr[data-mac="52:54:00:ee:0d:01"]');
    await again.locator('input[name=hostname]').fill('disc01');
    await again.locator('input[name=rack]').fill('R4');
    await again.locator('button[type=submit]').click();
    await page.waitForURL(`${base}/hosts/52:54:00:ee:0d:01`);
    assert.equal((await running.core.hosts.get('52:54:00:ee:0d:01' as Mac))?.rack, 'R4');
    await page.goto(`${base}/discovered`);
    assert.equal(await page.locator('tr[data-mac="52:54:00:ee:0d:01"]').count(), 0, 'a host is no longer listed');
  },
);

test(
  'rack import: one unknown column and bad rows are all reported at once, no row marked ok',
  { skip: SKIP },
  async () => {
    await page.goto(`${base}/hosts/import`);
    await page.fill(
      '#csv',
      'mac,hostname,profile,rackk,ip\n52:54:00:ee:0c:01,c1,rhvh-stig-satellite,R5,\nnot-a-mac,c2,rhvh-base,R5,\n52:54:00:ee:0c:03,c3,rhvh-base,R5,\n',
    );
    await page.click('button[value=preview]');
    const errors = (await page.locator('.preview').textContent()) ?? '';
    assert.match(errors, /unknown column "rackk"/);
    assert.match(errors, /ip: profile rhvh-stig-satellite uses a static network/);
    assert.match(errors, /mac: "not-a-mac"/);
    assert.equal(await page.locator('tr.bad').count(), 2);
    assert.equal(await page.locator('td:text-is("ok")').count(), 0, 'no row is "ok" in a refused file');
    assert.equal(await page.locator('button[value=import]').count(), 0);
    await shot('board-07-import-one-pass');
  },
);

test(
  'hosts list: state colours, search and sort, learnt address, last build, time in stage',
  { skip: SKIP },
  async () => {
    await page.goto(`${base}/hosts?q=cli91`);
    assert.equal(await page.locator('table.hosts tbody tr').count(), 1);
    await page.goto(`${base}/hosts?sort=state`);
    const first = page.locator('table.hosts tbody tr').first();
    assert.match((await first.textContent()) ?? '', /cli91/, 'what needs someone first: the expired token');
    assert.match((await page.locator('tr[data-mac="52:54:00:ee:00:01"]').textContent()) ?? '', /10\.99\.0\.51/);
    assert.match((await page.locator('tr[data-mac="52:54:00:ee:00:01"]').textContent()) ?? '', /#\d+ pending/);
    await shot('board-08-hosts-list');
  },
);

test(
  'bulk build of a rack from the board: one confirmation with the count and what it wipes, then live',
  { skip: SKIP },
  async () => {
    const p = running.core.provisioner;
    const macs = ['52:54:00:ee:08:01', '52:54:00:ee:08:02', '52:54:00:ee:08:03'] as Mac[];
    for (const [i, mac] of macs.entries())
      await running.core.hosts.insert({
        mac,
        hostname: `r8n${i + 1}`,
        profile: 'rhvh-base',
        rack: 'R8',
        position: `U${i + 1}`,
        nameservers: [],
        params: {},
      });
    const b = await p.startBuild(macs[0]!, 'seed');
    assert.ok(b.ok);
    p.learnClient('10.99.0.81', macs[0]!);
    await p.callback(b.value.token, 'built', '10.99.0.81');
    await page.goto(`${base}/?state=built`);
    // The rack's button counts every host of the rack, not only the ones this filter shows.
    const link = page.locator('section.rack[data-rack="R8"] .rack-build a');
    assert.match((await link.textContent()) ?? '', /Build rack R8 \(3\)/);
    await link.click();
    await page.waitForURL(`${base}/racks/R8/build`);
    assert.match((await page.textContent('h1')) ?? '', /Build rack R8: 3 hosts/);
    assert.match((await page.textContent('main')) ?? '', /1 of them are built[\s\S]*r8n1[\s\S]*clearpart --all/);
    await shot('board-10-rack-build-confirm');
    // Worst values: refused naming the field, nothing started.
    await page.fill('#waveSize', '0');
    await page.click('form[action="/racks/R8/build"] button[type=submit]');
    await page.locator('.flash.error', { hasText: 'waveSize' }).waitFor();
    assert.equal(p.state(macs[1]!), 'idle', 'nothing was started');
    await page.fill('#waveSize', '2');
    await page.fill('#waveIntervalSeconds', '3');
    await page.uncheck('input[name=power]');
    await page.click('form[action="/racks/R8/build"] button[type=submit]');
    await page.locator('.flash.error', { hasText: 'confirm' }).waitFor();
    assert.equal(p.state(macs[1]!), 'idle', 'a rebuild is never started unconfirmed');
    await page.fill('#waveSize', '2');
    await page.fill('#waveIntervalSeconds', '3');
    await page.uncheck('input[name=power]');
    await page.check('input[name=confirm]');
    await page.click('form[action="/racks/R8/build"] button[type=submit]');
    await page.getByText(/Rollout \d+: 3 host\(s\) of rack R8/).waitFor();
    await page.goto(`${base}/?rack=R8`);
    await page.locator('#live-status.on').waitFor();
    const atLoad = await page.locator('.chip[data-state="build"]').count();
    // serve's runner carries the rollout out a wave at a time; the later wave flips without a reload.
    const deadline = Date.now() + 15_000;
    for (const mac of macs) {
      while ((await page.locator(`.chip[data-mac="${mac}"][data-state="build"]`).count()) === 0) {
        if (Date.now() > deadline) assert.fail(`${mac} not shown in build; the store says ${p.state(mac)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(atLoad < 3, `some of the rack flipped live (${atLoad} were in build at load)`);
    await shot('board-11-rack-build-live');
    assert.deepEqual(dialogs, []);
  },
);
