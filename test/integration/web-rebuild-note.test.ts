// The host page says when a rebuild of a UEFI host cannot be honoured without a boot-order or BMC change.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { WebRouter } from '../../src/web/pages/index.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import { appFor, loginForm, webRouterFor } from '../support/web-env.ts';
import type { Express } from 'express';
import type { Mac } from '../../src/net/mac.ts';

let env: TestEnv;
let web: WebRouter;
let app: Express;
const PW = 'correct horse battery';
const HASH = hashUserPasswordSync(PW);
const MAC = SAMPLE_HOST.mac as Mac;

async function setup() {
  env = await makeEnv();
  await env.core.store.users.add('tom', 'tech', HASH);
  web = webRouterFor(env);
  app = appFor(env, 't', {
    routers: [web],
  });
}
beforeEach(setup);
afterEach(async () => {
  web.close();
  await env.cleanup();
});

async function hostPage(): Promise<string> {
  const { agent } = await loginForm(app, 'tom', PW);
  const page = await agent.get(`/hosts/${MAC}`);
  assert.equal(page.status, 200);
  return page.text;
}

async function installOnce(params: Record<string, string>, kind: 'grub' | 'pxelinux') {
  await env.core.hosts.insert({
    mac: MAC,
    hostname: SAMPLE_HOST.hostname,
    profile: 'rhvh-base',
    ip: SAMPLE_HOST.ip,
    netmask: SAMPLE_HOST.netmask,
    nameservers: [],
    params,
  });
  const b = await env.core.provisioner.startBuild(MAC, 'test');
  assert.ok(b.ok);
  if (!b.ok) return;
  env.core.provisioner.bootConfig(kind, await env.core.hosts.get(MAC), SAMPLE_HOST.ip, 'tftp');
  assert.ok((await env.core.provisioner.callback(b.value.token, 'built', SAMPLE_HOST.ip)).ok);
}

test('a UEFI host whose profile turns boot.keepNetbootFirst off: the page says a rebuild needs a boot-order or BMC change', async () => {
  await installOnce({ 'boot.keepNetbootFirst': 'false' }, 'grub');
  const text = await hostPage();
  assert.match(
    text,
    /id="rebuild-note"[^>]*>This UEFI host boots its installed OS first \(profile rhvh-base has boot\.keepNetbootFirst off\)/,
  );
  assert.match(text, /one-time PXE boot/);
});

test('no note with the netboot step on (the default), nor for a BIOS host', async () => {
  await installOnce({}, 'grub');
  assert.doesNotMatch(await hostPage(), /rebuild-note/);
  web.close();
  await env.cleanup();
  await setup();
  await installOnce({ 'boot.keepNetbootFirst': 'false' }, 'pxelinux');
  assert.doesNotMatch(await hostPage(), /rebuild-note/);
});
