// The host page says when a rebuild of a UEFI host cannot be honoured without a boot-order or BMC change.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { createApp } from '../../src/http/app.ts';
import { createWebRouter, type WebRouter } from '../../src/web/pages/index.ts';
import { silentLogger } from '../../src/log.ts';
import { UserStore, hashUserPasswordSync } from '../../src/store/users.ts';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import type { Mac } from '../../src/net/mac.ts';

let env: TestEnv;
let web: WebRouter;
let app: ReturnType<typeof createApp>;
const PW = 'correct horse battery';
const HASH = hashUserPasswordSync(PW);
const MAC = SAMPLE_HOST.mac as Mac;

function setup() {
  env = makeEnv();
  new UserStore(env.core.db).add('tom', 'tech', HASH);
  web = createWebRouter({
    provisioner: env.core.provisioner,
    hosts: env.core.hosts,
    builds: env.core.builds,
    events: env.core.events,
    audit: env.core.audit,
    db: env.core.db,
    catalog: env.core.catalog,
    profilesDir: env.config.profilesDir,
    templatesDir: env.config.templatesDir,
    publicUrl: 'http://10.99.0.1:8080',
    log: silentLogger(),
  });
  app = createApp({
    provisioner: env.core.provisioner,
    hosts: env.core.hosts,
    audit: env.core.audit,
    db: env.core.db,
    profiles: () => env.core.catalog.snapshot,
    tftpRoot: env.config.tftpRoot,
    imagesDir: env.config.imagesDir,
    adminTokenHash: createHash('sha256').update('t').digest('hex'),
    log: silentLogger(),
    routers: [web],
  });
}
beforeEach(setup);
afterEach(() => {
  web.close();
  env.cleanup();
});

async function hostPage(): Promise<string> {
  const agent = request.agent(app);
  const login = await agent.get('/login');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(login.text)?.[1] ?? '';
  assert.equal(
    (await agent.post('/login').type('form').send({ _csrf: csrf, name: 'tom', password: PW, next: '/' })).status,
    303,
  );
  const page = await agent.get(`/hosts/${MAC}`);
  assert.equal(page.status, 200);
  return page.text;
}

function installOnce(params: Record<string, string>, kind: 'grub' | 'pxelinux') {
  env.core.hosts.insert({
    mac: MAC,
    hostname: SAMPLE_HOST.hostname,
    profile: 'rhvh-base',
    ip: SAMPLE_HOST.ip,
    netmask: SAMPLE_HOST.netmask,
    nameservers: [],
    params,
  });
  const b = env.core.provisioner.startBuild(MAC, 'test');
  assert.ok(b.ok);
  if (!b.ok) return;
  env.core.provisioner.bootConfig(kind, env.core.hosts.get(MAC), SAMPLE_HOST.ip, 'tftp');
  assert.ok(env.core.provisioner.callback(b.value.token, 'built', SAMPLE_HOST.ip).ok);
}

test('a UEFI host whose profile turns boot.keepNetbootFirst off: the page says a rebuild needs a boot-order or BMC change', async () => {
  installOnce({ 'boot.keepNetbootFirst': 'false' }, 'grub');
  const text = await hostPage();
  assert.match(
    text,
    /id="rebuild-note"[^>]*>This UEFI host boots its installed OS first \(profile rhvh-base has boot\.keepNetbootFirst off\)/,
  );
  assert.match(text, /one-time PXE boot/);
});

test('no note with the netboot step on (the default), nor for a BIOS host', async () => {
  installOnce({}, 'grub');
  assert.doesNotMatch(await hostPage(), /rebuild-note/);
  web.close();
  env.cleanup();
  setup();
  installOnce({ 'boot.keepNetbootFirst': 'false' }, 'pxelinux');
  assert.doesNotMatch(await hostPage(), /rebuild-note/);
});
