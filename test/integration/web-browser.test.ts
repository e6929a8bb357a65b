// The web UI in a real browser: Debian's chromium driven by playwright-core, against a real
// `startRackboot` (HTTP on 127.0.0.1, the profiles watcher on). Screenshots go to test/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startRackboot, type Running } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import type { Mac } from '../../src/net/mac.ts';
import { loopbackConfig } from '../support/server-env.ts';
import { ARTIFACTS, BROWSER_MISSING, launchBrowser } from '../support/browser.ts';

const SKIP = BROWSER_MISSING;
const PW = 'correct horse battery';

let dir: string;
let running: Running;
let ctx: BrowserContext;
let page: Page;
let base: string;
const dialogs: string[] = [];

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

before(async () => {
  if (SKIP) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  const made = loopbackConfig('rackboot-web-');
  dir = made.dir;
  const config = made.config;
  running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: 'browser-test' });
  base = `http://127.0.0.1:${running.httpPort}`;
  const { core } = running;
  await core.store.users.add('alice', 'admin', hashUserPasswordSync(PW));
  const racks: [string, string, string][] = [
    ['R1', 'U1', '01'],
    ['R1', 'U2', '02'],
    ['R1', 'U3', '03'],
    ['R1', 'U4', '04'],
    ['R2', 'U1', '11'],
    ['R2', 'U2', '12'],
  ];
  for (const [rack, position, n] of racks) {
    await core.hosts.insert({
      mac: `52:54:00:00:00:${n}` as Mac,
      hostname: `rhvh${n}`,
      profile: n === '12' ? 'rhvh-stig-satellite' : 'rhvh-base',
      ip: `10.99.0.${Number(n) + 10}`,
      netmask: '255.255.255.0',
      rack,
      position,
      nameservers: [],
      params: {},
    });
  }
  const p = core.provisioner;
  const s2 = await p.startBuild('52:54:00:00:00:02' as Mac, 'seed');
  const s3 = await p.startBuild('52:54:00:00:00:03' as Mac, 'seed');
  const s4 = await p.startBuild('52:54:00:00:00:04' as Mac, 'seed');
  const s11 = await p.startBuild('52:54:00:00:00:11' as Mac, 'seed');
  assert.ok(s2.ok && s3.ok && s4.ok && s11.ok);
  p.event({ mac: '52:54:00:00:00:02' as Mac, type: 'dhcp.ack', clientIp: '10.99.0.12', status: 'ok' });
  await p.kickstart(s3.value.token, '10.99.0.13');
  await p.progress(s3.value.token, 'nodectl-init', '10.99.0.13');
  await p.callback(
    s4.value.token,
    'failed',
    '10.99.0.14',
    'Traceback: nodectl init failed\n/var/log/imgbased.log: no space left on device\n',
  );
  await p.callback(s11.value.token, 'built', '10.99.0.21');
  // Hostile text, stored behind validation's back: pages must show it, never run it.
  await core.hosts.insert({
    mac: '52:54:00:00:00:66' as Mac,
    hostname: '<script>alert(1)</script>"><img src=x onerror=alert(2)>',
    profile: 'rhvh-base',
    rack: 'R2',
    position: 'U9',
    nameservers: [],
    params: {},
  });
  p.event({ mac: '52:54:00:00:00:66' as Mac, type: 'progress', status: '"><img src=x onerror=alert(3)>' });

  ({ ctx, page } = await launchBrowser(dir, dialogs));
});

after(async () => {
  if (SKIP) return;
  await ctx?.close();
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('sign in', { skip: SKIP }, async () => {
  await page.goto(`${base}/profiles`);
  assert.match(page.url(), /\/login\?next=%2Fprofiles$/);
  await page.fill('#name', 'alice');
  await page.fill('#password', 'wrong password!');
  await page.press('#password', 'Enter');
  await page.getByText('Wrong user name or password').waitFor();
  await shot('01-login-refused');
  await page.fill('#password', PW);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/profiles`);
  const cookies = await ctx.cookies(base);
  const session = cookies.find((c) => c.name === 'rackboot_session');
  assert.ok(session?.httpOnly && session.sameSite === 'Strict');
  await shot('02-profiles');
});

test('board: racks, counts, stages; hostile hostnames stay text', { skip: SKIP }, async () => {
  await page.goto(`${base}/`);
  await page.locator('#live-status.on').waitFor();
  assert.equal(await page.textContent('[data-count="built"]'), '1');
  assert.equal(await page.textContent('[data-count="failed"]'), '1');
  assert.equal(await page.textContent('[data-count="build"]'), '2');
  assert.match(
    (await page.locator('.chip[data-mac="52:54:00:00:00:03"] .stage').textContent()) ?? '',
    /installing: nodectl-init/,
  );
  assert.equal(await page.locator('img').count(), 0, 'no injected <img>');
  assert.match(
    (await page.locator('.chip[data-mac="52:54:00:00:00:66"] .name').textContent()) ?? '',
    /<script>alert\(1\)<\/script>/,
  );
  await shot('03-board');
  await page.goto(`${base}/hosts/52:54:00:00:00:66`);
  assert.equal(await page.locator('img').count(), 0);
  await page.goto(`${base}/hosts/52:54:00:00:00:04`);
  await page.locator('.failed-log').getByText('no space left on device').waitFor();
  assert.match(
    (await page.textContent('#host-state')) ?? '',
    /failed — failed: \/var\/log\/imgbased.log: no space left/,
    'the state says why in one line',
  );
  await shot('04-host-failed');
  assert.deepEqual(dialogs, [], 'no script ran');
});

test(
  'profile edit: a broken one is refused with its line, a good one is saved and served',
  { skip: SKIP },
  async () => {
    const file = join(dir, 'profiles', 'rhvh-base.yaml');
    const before = readFileSync(file, 'utf8');
    await page.goto(`${base}/profiles/rhvh-base/edit`);
    const text = await page.inputValue('#p-text');
    assert.equal(text, before);
    await page.fill('#p-text', text.replace('loader: native', 'loader: floppy'));
    await page.click('button[value=save]');
    await page.getByText('Refused: nothing was saved.').waitFor();
    assert.match((await page.locator('.flash.error ul.errors').textContent()) ?? '', /boot\.loader/);
    assert.ok((await page.locator('.badline').count()) >= 1);
    await shot('05-profile-refused');
    assert.equal(readFileSync(file, 'utf8'), before);
    // "line N" selects that line in the editor.
    await page.locator('a[data-line]').first().click();
    const selected = await page.$eval('#p-text', (t) => {
      const ta = t as HTMLTextAreaElement;
      return ta.value.slice(ta.selectionStart, ta.selectionEnd);
    });
    assert.match(selected, /loader: floppy/);

    await page.fill('#p-text', before.replace('console=ttyS1,115200n8', 'console=ttyS0,115200n8'));
    await page.click('button[value=check]');
    await page.getByText('Valid. Review the diff, then save.').waitFor();
    assert.match((await page.locator('pre.diff').textContent()) ?? '', /console=ttyS0/);
    await shot('06-profile-diff');
    await page.click('button[value=save]');
    await page.waitForURL(`${base}/profiles/rhvh-base`);
    await page.getByText('Profile rhvh-base saved').waitFor();
    await shot('07-profile-saved');
    assert.match(readFileSync(file, 'utf8'), /console=ttyS0,115200n8/);
    const deadline = Date.now() + 3000;
    while (!/ttyS0/.test(running.core.catalog.get('rhvh-base')?.profile.boot.kernelArgs ?? '') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.match(running.core.catalog.get('rhvh-base')!.profile.boot.kernelArgs, /ttyS0/);
  },
);

test('rack import: preview with per-row errors, then import', { skip: SKIP }, async () => {
  await page.goto(`${base}/hosts/import`);
  const bad =
    'mac,hostname,profile,ip,rack,position\n52:54:00:00:03:01,r3a,rhvh-base,10.99.0.31,R3,U1\n52:54:00:00:03:02,rhvh01,rhvh-base,,R3,U2\nxx:yy,r3c,rhvh-base,,R3,U3\n';
  await page.fill('#csv', bad);
  await page.click('button[value=preview]');
  await page.getByText('The import is refused: 2 problem(s)').waitFor();
  assert.equal(await page.locator('tr.bad').count(), 2);
  assert.equal(await page.locator('button[value=import]').count(), 0);
  await shot('08-import-refused');
  await page.fill('#csv', bad.replace(',rhvh01,', ',r3b,').replace('xx:yy', '52:54:00:00:03:03'));
  await page.click('button[value=preview]');
  await page.getByText('All 3 row(s) are valid').waitFor();
  await shot('09-import-preview');
  await page.click('button[value=import]');
  await page.waitForURL(`${base}/`);
  await page.getByText('Imported 3 host(s).').waitFor();
  assert.equal(await page.locator('section.rack[data-rack="R3"] .chip').count(), 3);
  assert.ok(await running.core.hosts.get('52:54:00:00:03:02' as Mac));
});

test('rebuild a built host from its page', { skip: SKIP }, async () => {
  await page.goto(`${base}/hosts/52:54:00:00:00:11`);
  await page.click('button:has-text("Rebuild")');
  await page.getByText(/Build \d+ started for rhvh11/).waitFor();
  assert.equal(running.core.provisioner.state('52:54:00:00:00:11' as Mac), 'build');
  assert.match((await page.textContent('#host-state')) ?? '', /build/);
  await page.locator('details summary', { hasText: 'pxelinux config' }).click();
  assert.match(
    (await page.locator('details[open] pre').textContent()) ?? '',
    /inst\.ks=http:\/\/127\.0\.0\.1:8080\/ks\/TOKEN/,
  );
  await shot('10-host-rebuild');
});

test('the board updates live when a host calls back built', { skip: SKIP }, async () => {
  const started = await running.core.provisioner.startBuild('52:54:00:00:00:01' as Mac, 'test');
  assert.ok(started.ok);
  // The callback below comes from 127.0.0.1: tie it to the host as the DHCP server would (only the host's address may call back).
  running.core.provisioner.learnClient('127.0.0.1', '52:54:00:00:00:01' as Mac);
  await page.goto(`${base}/?rack=R1`);
  await page.locator('#live-status.on').waitFor();
  const chip = page.locator('.chip[data-mac="52:54:00:00:00:01"]');
  assert.match((await chip.getAttribute('class')) ?? '', /stage-pending/);
  const builtBefore = Number(await page.textContent('[data-count="built"]'));
  const t0 = Date.now();
  const res = await fetch(new URL(new URL(started.value.builtUrl).pathname, base));
  assert.equal(res.status, 200);
  await page.waitForSelector('.chip[data-mac="52:54:00:00:00:01"].stage-built', { timeout: 1000 });
  const ms = Date.now() - t0;
  assert.ok(ms < 1000, `chip flipped after ${ms} ms`);
  assert.equal(await chip.locator('.stage').textContent(), 'built');
  assert.equal(Number(await page.textContent('[data-count="built"]')), builtBefore + 1);
  await shot('11-board-live-built');
  assert.deepEqual(dialogs, []);
});

test(
  'every other page renders: hosts, host form, profiles with a broken file, audit, users',
  { skip: SKIP },
  async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      join(dir, 'profiles', 'rhvh-custom-thin.yaml'),
      readFileSync(join(dir, 'profiles', 'rhvh-custom-thin.yaml'), 'utf8').replace('size: 6000', 'size: 60'),
    );
    running.core.catalog.reload();
    const pages: [string, string][] = [
      ['/hosts', '12-hosts'],
      ['/hosts/new', '13-host-new'],
      ['/profiles', '14-profiles-broken'],
      ['/profiles/rhvh-custom-thin/edit', '15-profile-broken-edit'],
      ['/audit', '16-audit'],
      ['/users', '17-users'],
    ];
    for (const [path, name] of pages) {
      const res = await page.goto(`${base}${path}`);
      assert.equal(res?.status(), 200, path);
      await shot(name);
    }
    await page.goto(`${base}/profiles`);
    await page.getByText('broken on disk').waitFor();
    await page.goto(`${base}/audit`);
    await page.locator('details summary', { hasText: 'diff' }).first().click();
    assert.match((await page.locator('details[open] pre.diff').textContent()) ?? '', /ttyS0/);
    await shot('16-audit');
    // Keyboard: the sign-out button is reachable with Tab from the top of the page (skip link, brand, 9 nav links, ...).
    await page.goto(`${base}/`);
    let found = false;
    for (let i = 0; i < 16 && !found; i++) {
      await page.keyboard.press('Tab');
      found = await page.evaluate(() => document.activeElement?.textContent?.trim() === 'Sign out');
    }
    assert.ok(found, 'Sign out reachable by keyboard');
    assert.deepEqual(dialogs, []);
  },
);
