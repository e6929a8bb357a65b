// Web UI over supertest: sign-in, sessions, CSRF, roles, every page, inert user text, live board (SSE).
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest, createServer, type Server } from 'node:http';
import request from 'supertest';
import type { WebRouter } from '../../src/web/pages/index.ts';
import { silentLogger } from '../../src/log.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import { appFor, csrfOf, loginForm, webRouterFor } from '../support/web-env.ts';
import type { Express } from 'express';
import type { Mac } from '../../src/net/mac.ts';

let env: TestEnv;
let web: WebRouter;
let app: Express;
let clock: number;
const PW = 'correct horse battery';
const XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>'];

function makeApp(e: TestEnv, publicUrl = 'http://10.99.0.1:8080') {
  web = webRouterFor(e, {
    publicUrl,
    now: () => clock,
    sessionPolicy: { idleMs: 3600e3, absoluteMs: 8 * 3600e3 },
    liveIntervalMs: 50,
  });
  return appFor(e, 't', {
    routers: [web],
  });
}

// Cheap hashes are not an option (the cost is in the stored hash); hash once per test file.
const HASH = hashUserPasswordSync(PW);

beforeEach(async () => {
  clock = Date.now();
  env = await makeEnv();
  const users = env.core.store.users;
  await users.add('alice', 'admin', HASH);
  await users.add('tom', 'tech', HASH);
  app = makeApp(env);
});
afterEach(async () => {
  web.close();
  await env.cleanup();
});

const login = (name: string, a = app) => loginForm(a, name, PW);

function addHost(h: Partial<typeof SAMPLE_HOST> & { mac: string; hostname: string } = SAMPLE_HOST) {
  return env.core.hosts.insert({ profile: 'rhvh-base', nameservers: [], params: {}, ...h, mac: h.mac as Mac });
}

test('pages need a session: GET goes to the login page, POST is refused and changes nothing', async () => {
  const r = await request(app).get('/hosts?x=1');
  assert.equal(r.status, 303);
  assert.equal(r.headers.location, '/login?next=%2Fhosts%3Fx%3D1');
  const p = await request(app)
    .post('/hosts')
    .type('form')
    .send({ mac: SAMPLE_HOST.mac, hostname: 'x', profile: 'rhvh-base' });
  assert.equal(p.status, 401);
  assert.equal((await env.core.hosts.list()).length, 0);
  assert.equal((await request(app).get('/board/stream')).status, 401);
});

test('sign-in: wrong password refused; cookies HttpOnly + SameSite=Strict; Secure under https; logout ends the session', async () => {
  const agent = request.agent(app);
  const page = await agent.get('/login');
  const bad = await agent
    .post('/login')
    .type('form')
    .send({ _csrf: csrfOf(page.text), name: 'alice', password: 'nope-nope-nope' });
  assert.equal(bad.status, 401);
  assert.match(bad.text, /Wrong user name or password/);
  const noToken = await agent.post('/login').type('form').send({ name: 'alice', password: PW });
  assert.equal(noToken.status, 403, 'the login form has a CSRF token too');

  const { agent: a, csrf, cookie } = await login('alice');
  assert.match(cookie, /rackboot_session=[A-Za-z0-9_-]{43}/);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.doesNotMatch(cookie, /Secure/);
  const stored = await env.core.store.sql.all<{ id_hash: string }>('SELECT id_hash FROM sessions');
  assert.equal(stored.length, 1);
  assert.ok(!cookie.includes(stored[0].id_hash), 'only the hash of the session id is stored');

  assert.equal((await a.post('/logout').type('form').send({})).status, 403, 'logout needs the token too');
  assert.equal((await a.get('/')).status, 200);
  const out = await a.post('/logout').type('form').send({ _csrf: csrf });
  assert.equal(out.status, 303);
  assert.equal((await a.get('/')).status, 303, 'signed out');
  assert.equal(Number((await env.core.store.sql.get<{ n: number }>('SELECT count(*) AS n FROM sessions'))!.n), 0);

  web.close();
  const httpsApp = makeApp(env, 'https://rackboot.example.com');
  // superagent keeps Secure cookies to itself over http, so the cookies go back by hand here.
  const lp = await request(httpsApp).get('/login');
  assert.match(
    String(lp.headers['set-cookie']),
    /rackboot_login=.*HttpOnly.*Secure.*SameSite=Strict|rackboot_login=.*Secure/,
  );
  const loginCookie = /rackboot_login=([^;]+)/.exec(String(lp.headers['set-cookie']))![1];
  const s = await request(httpsApp)
    .post('/login')
    .set('Cookie', `rackboot_login=${loginCookie}`)
    .type('form')
    .send({ _csrf: csrfOf(lp.text), name: 'alice', password: PW });
  assert.equal(s.status, 303);
  assert.match(String(s.headers['set-cookie']), /rackboot_session=[^;]+;.*Secure/);
});

test('sessions expire after idling, and at the absolute limit however busy', async () => {
  const { agent } = await login('tom');
  clock += 59 * 60e3;
  assert.equal((await agent.get('/')).status, 200, 'still inside the idle window');
  clock += 59 * 60e3;
  assert.equal((await agent.get('/')).status, 200, 'each request slides the idle window');
  for (let i = 0; i < 7; i++) {
    clock += 50 * 60e3;
    assert.equal((await agent.get('/')).status, 200);
  }
  clock += 20 * 60e3;
  const r = await agent.get('/');
  assert.equal(r.status, 303, 'past the 8 h absolute limit');
  const { agent: b } = await login('tom');
  clock += 61 * 60e3;
  assert.equal((await b.get('/')).status, 303, 'idle past one hour');
});

test('without the CSRF token (or with a wrong one) a POST changes nothing', async () => {
  const { agent, csrf } = await login('alice');
  await addHost();
  const cases: [string, Record<string, string>][] = [
    ['/hosts', { mac: '52:54:00:aa:bb:09', hostname: 'new1', profile: 'rhvh-base' }],
    [`/hosts/${SAMPLE_HOST.mac}/build`, {}],
    [`/hosts/${SAMPLE_HOST.mac}/delete`, {}],
    ['/profiles/rhvh-base', { text: 'broken: [', action: 'save', base: '' }],
    ['/users', { name: 'eve', role: 'admin', password: 'long enough password', password2: 'long enough password' }],
    ['/hosts/import', { csv: 'mac,hostname,profile\n52:54:00:aa:bb:0a,new2,rhvh-base\n', action: 'import' }],
  ];
  const before = readFileSync(join(env.config.profilesDir, 'rhvh-base.yaml'), 'utf8');
  for (const [path, body] of cases) {
    for (const token of [undefined, 'x'.repeat(43), csrf.slice(0, -1)]) {
      const r = await agent
        .post(path)
        .type('form')
        .send(token === undefined ? body : { ...body, _csrf: token });
      assert.equal(r.status, 403, `${path} with token ${token}`);
      assert.match(r.text, /Nothing was changed/);
    }
  }
  assert.equal((await env.core.hosts.list()).length, 1);
  assert.equal(env.core.provisioner.state(SAMPLE_HOST.mac as Mac), 'idle');
  assert.equal(readFileSync(join(env.config.profilesDir, 'rhvh-base.yaml'), 'utf8'), before);
  assert.equal(await env.core.store.users.get('eve'), undefined);
  assert.equal((await env.core.audit.recent()).length, 0);
});

test('a tech views everything, builds, cancels and imports, but cannot edit profiles, hosts or users', async () => {
  const { agent, csrf } = await login('tom');
  await addHost();
  for (const path of [
    '/',
    '/hosts',
    `/hosts/${SAMPLE_HOST.mac}`,
    '/profiles',
    '/profiles/rhvh-base',
    '/audit',
    '/hosts/import',
  ]) {
    assert.equal((await agent.get(path)).status, 200, path);
  }
  for (const path of [
    '/profiles/rhvh-base/edit',
    '/profiles/new',
    '/hosts/new',
    `/hosts/${SAMPLE_HOST.mac}/edit`,
    `/hosts/${SAMPLE_HOST.mac}/delete`,
    '/users',
  ]) {
    assert.equal((await agent.get(path)).status, 403, path);
  }
  const before = readFileSync(join(env.config.profilesDir, 'rhvh-base.yaml'), 'utf8');
  const edit = await agent
    .post('/profiles/rhvh-base')
    .type('form')
    .send({ _csrf: csrf, text: before + '\n# tech was here\n', base: before, action: 'save' });
  assert.equal(edit.status, 403);
  assert.match(edit.text, /needs the admin role/);
  assert.equal(readFileSync(join(env.config.profilesDir, 'rhvh-base.yaml'), 'utf8'), before);
  assert.equal(
    (
      await agent
        .post('/hosts')
        .type('form')
        .send({ _csrf: csrf, mac: '52:54:00:aa:bb:09', hostname: 'n', profile: 'rhvh-base' })
    ).status,
    403,
  );
  assert.equal((await agent.post(`/hosts/${SAMPLE_HOST.mac}/delete`).type('form').send({ _csrf: csrf })).status, 403);
  assert.equal(
    (
      await agent
        .post('/users')
        .type('form')
        .send({ _csrf: csrf, name: 'eve', role: 'admin', password: 'x'.repeat(12), password2: 'x'.repeat(12) })
    ).status,
    403,
  );
  assert.equal((await env.core.hosts.list()).length, 1);

  const b = await agent.post(`/hosts/${SAMPLE_HOST.mac}/build`).type('form').send({ _csrf: csrf });
  assert.equal(b.status, 303);
  assert.equal(env.core.provisioner.state(SAMPLE_HOST.mac as Mac), 'build');
  const page = await agent.get(`/hosts/${SAMPLE_HOST.mac}`);
  assert.match(page.text, /Build \d+ started for rhvh01/);
  assert.match(page.text, /Cancel build/);
  assert.equal((await agent.post(`/hosts/${SAMPLE_HOST.mac}/cancel`).type('form').send({ _csrf: csrf })).status, 303);
  assert.equal(env.core.provisioner.state(SAMPLE_HOST.mac as Mac), 'idle');
  const audit = await env.core.audit.recent();
  assert.deepEqual(
    audit.map((a) => [a.actor, a.action]),
    [
      ['web:tom', 'build.cancel'],
      ['web:tom', 'build.start'],
    ],
  );

  const imp = await agent
    .post('/hosts/import')
    .type('form')
    .send({ _csrf: csrf, csv: 'mac,hostname,profile,rack\n52:54:00:aa:bb:0a,new2,rhvh-base,R2\n', action: 'import' });
  assert.equal(imp.status, 303);
  assert.equal((await env.core.hosts.list()).length, 2);
});

test('host page: details, parameters, timeline, failure log, masked previews; rebuild', async () => {
  const { agent, csrf } = await login('tom');
  await addHost({ ...SAMPLE_HOST, params: { 'boot.kernelArgs': 'console=ttyS0' } } as never);
  const started = await env.core.provisioner.startBuild(SAMPLE_HOST.mac as Mac, 'test');
  assert.ok(started.ok);
  await env.core.provisioner.progress(started.value.token, 'nodectl-init', '10.99.0.11');
  await env.core.provisioner.callback(started.value.token, 'failed', '10.99.0.11', 'nodectl: error: cannot mount /var');
  const page = await agent.get(`/hosts/${SAMPLE_HOST.mac}`);
  assert.equal(page.status, 200);
  assert.match(page.text, /boot\.kernelArgs/);
  assert.match(page.text, /Failure log/);
  assert.match(page.text, /cannot mount \/var/);
  assert.match(page.text, /nodectl-init/);
  assert.match(page.text, /build\.failed/);
  assert.match(page.text, /Rebuild/);
  assert.ok(!page.text.includes(started.value.token), 'the token never reaches the page');
  assert.match(page.text, /rootpw --iscrypted \*{8}/, 'the root hash is masked');
  assert.ok(!page.text.includes('$6$'), 'no password hash on the page');
  const rb = await agent.post(`/hosts/${SAMPLE_HOST.mac}/build`).type('form').send({ _csrf: csrf });
  assert.equal(rb.status, 303);
  assert.equal(env.core.provisioner.state(SAMPLE_HOST.mac as Mac), 'build');
  const after = await agent.get(`/hosts/${SAMPLE_HOST.mac}`);
  assert.match(
    after.text,
    /inst\.ks=http:\/\/10\.99\.0\.1:8080\/ks\/TOKEN/,
    'boot config preview with the token masked',
  );
});

test('board: grouped by rack, counts per state, filters, stages from events', async () => {
  const { agent } = await login('tom');
  await addHost();
  // Static IPs: the kickstart and the callback below come from these addresses, and only a host's own address may speak for its build.
  await addHost({ mac: '52:54:00:aa:bb:02', hostname: 'rhvh02', rack: 'R1', position: 'U2', ip: '10.99.0.12' });
  await addHost({ mac: '52:54:00:aa:bb:03', hostname: 'rhvh03', rack: 'R2', position: 'U1', ip: '10.99.0.13' });
  const s = await env.core.provisioner.startBuild('52:54:00:aa:bb:02' as Mac, 'test');
  assert.ok(s.ok);
  await env.core.provisioner.kickstart(s.value.token, '10.99.0.12');
  const s3 = await env.core.provisioner.startBuild('52:54:00:aa:bb:03' as Mac, 'test');
  assert.ok(s3.ok);
  await env.core.provisioner.callback(s3.value.token, 'built', '10.99.0.13');
  const board = await agent.get('/');
  assert.match(board.text, /Rack R1/);
  assert.match(board.text, /Rack R2/);
  assert.match(board.text, /data-count="idle">1</);
  assert.match(board.text, /data-count="build">1</);
  assert.match(board.text, /data-count="built">1</);
  assert.match(board.text, /stage-kickstart[^>]*data-mac="52:54:00:aa:bb:02"/);
  assert.match(board.text, /kickstart fetched/);
  const onlyR2 = await agent.get('/?rack=R2');
  assert.doesNotMatch(onlyR2.text, /rhvh01/);
  assert.match(onlyR2.text, /rhvh03/);
  const built = await agent.get('/?state=built');
  assert.match(built.text, /data-count="total">1</);
  assert.match(built.text, /rhvh03/);
  assert.doesNotMatch(built.text, /rhvh02/);
});

test('hosts: add with validation, edit, delete (admin)', async () => {
  const { agent, csrf } = await login('alice');
  const bad = await agent
    .post('/hosts')
    .type('form')
    .send({ _csrf: csrf, mac: 'zz', hostname: 'bad_name', profile: 'nope', ip: '10.0.0.300', params: 'oops' });
  assert.equal(bad.status, 422);
  for (const m of [
    /mac: &quot;zz&quot; is not a MAC/,
    /hostname/,
    /profile: &quot;nope&quot;/,
    /ip: &quot;10.0.0.300&quot;/,
  ])
    assert.match(bad.text, m);
  assert.match(bad.text, /value="bad_name"/, 'the form keeps what was typed');
  assert.equal((await env.core.hosts.list()).length, 0);

  const ok = await agent.post('/hosts').type('form').send({
    _csrf: csrf,
    mac: '52-54-00-AA-BB-05',
    hostname: 'rhvh05',
    profile: 'rhvh-base',
    ip: '10.99.0.15',
    netmask: '255.255.255.0',
    rack: 'R3',
    params: 'boot.kernelArgs = console=ttyS0\n',
  });
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.location, '/hosts/52:54:00:aa:bb:05');
  assert.deepEqual((await env.core.hosts.get('52:54:00:aa:bb:05' as Mac))?.params, {
    'boot.kernelArgs': 'console=ttyS0',
  });
  const dup = await agent
    .post('/hosts')
    .type('form')
    .send({ _csrf: csrf, mac: '52:54:00:aa:bb:06', hostname: 'rhvh05', profile: 'rhvh-base' });
  assert.equal(dup.status, 422);
  assert.match(dup.text, /hostname: rhvh05 already belongs to 52:54:00:aa:bb:05/);

  const form = await agent.get('/hosts/52:54:00:aa:bb:05/edit');
  assert.match(form.text, /boot\.kernelArgs = console=ttyS0/);
  const upd = await agent.post('/hosts/52:54:00:aa:bb:05').type('form').send({
    _csrf: csrf,
    mac: 'ignored',
    hostname: 'rhvh05b',
    profile: 'rhvh-custom-thin',
    ip: '10.99.0.15',
    netmask: '255.255.255.0',
    rack: 'R3',
    params: '',
  });
  assert.equal(upd.status, 303);
  assert.equal((await env.core.hosts.get('52:54:00:aa:bb:05' as Mac))?.hostname, 'rhvh05b');
  const audit = await agent.get('/audit');
  assert.match(audit.text, /host\.update/);
  assert.match(audit.text, /rhvh05b/);
  assert.match(audit.text, /rhvh-custom-thin/);

  assert.equal((await agent.get('/hosts/52:54:00:aa:bb:05/delete')).status, 200);
  const del = await agent.post('/hosts/52:54:00:aa:bb:05/delete').type('form').send({ _csrf: csrf });
  assert.equal(del.status, 303);
  assert.equal((await env.core.hosts.list()).length, 0);
  assert.equal((await agent.get('/hosts/52:54:00:aa:bb:05')).status, 404);
});

test('rack import: the preview shows every row with its problems and writes nothing; a clean file imports', async () => {
  const { agent, csrf } = await login('tom');
  await addHost();
  const csv = [
    'mac,hostname,profile,ip,rack,position',
    '52:54:00:aa:cc:01,r2a,rhvh-base,10.99.0.21,R2,U1',
    'not-a-mac,r2b,rhvh-base,,R2,U2',
    '52:54:00:aa:cc:03,rhvh01,rhvh-base,,R2,U3',
    '52:54:00:aa:cc:04,r2d,nope,,R2,U4',
  ].join('\n');
  const pv = await agent.post('/hosts/import').type('form').send({ _csrf: csrf, csv, action: 'preview' });
  assert.equal(pv.status, 422);
  assert.match(pv.text, /The import is refused: 3 problem/);
  assert.match(pv.text, /&quot;not-a-mac&quot; is not a MAC/);
  assert.match(pv.text, /hostname rhvh01 already belongs to an existing host/);
  assert.match(pv.text, /profile: &quot;nope&quot;/);
  assert.equal((pv.text.match(/<tr class="bad">/g) ?? []).length, 3);
  assert.equal((pv.text.match(/<tr class="good">/g) ?? []).length, 1);
  assert.doesNotMatch(pv.text, /value="import"/, 'no import button while there are problems');
  const forced = await agent.post('/hosts/import').type('form').send({ _csrf: csrf, csv, action: 'import' });
  assert.equal(forced.status, 422);
  assert.equal((await env.core.hosts.list()).length, 1, 'nothing written');

  const good = [
    'mac,hostname,profile,ip,rack,position',
    '52:54:00:aa:cc:01,r2a,rhvh-base,10.99.0.21,R2,U1',
    '52:54:00:aa:cc:02,r2b,rhvh-base,,R2,U2',
  ].join('\r\n');
  const pv2 = await agent.post('/hosts/import').type('form').send({ _csrf: csrf, csv: good, action: 'preview' });
  assert.equal(pv2.status, 200);
  assert.match(pv2.text, /Import 2 host\(s\)/);
  assert.equal((await env.core.hosts.list()).length, 1, 'a preview writes nothing');
  const imp = await agent.post('/hosts/import').type('form').send({ _csrf: csrf, csv: good, action: 'import' });
  assert.equal(imp.status, 303);
  assert.equal((await env.core.hosts.list()).length, 3);
  assert.match((await agent.get('/')).text, /Imported 2 host/);
});

test('profile editor: refuses a broken edit with line numbers and a diff, saves a good one atomically', async () => {
  const { agent, csrf } = await login('alice');
  const file = join(env.config.profilesDir, 'rhvh-base.yaml');
  const before = readFileSync(file, 'utf8');
  const edit = await agent.get('/profiles/rhvh-base/edit');
  assert.equal(edit.status, 200);
  const broken = before.replace('loader: native', 'loader: floppy');
  const lineNo = broken.split('\n').findIndex((l) => l.includes('floppy')) + 1;
  const r = await agent
    .post('/profiles/rhvh-base')
    .type('form')
    .send({ _csrf: csrf, text: broken, base: before, action: 'save' });
  assert.equal(r.status, 422);
  assert.match(r.text, /Refused: nothing was saved/);
  assert.match(r.text, new RegExp(`line ${lineNo}</a>: <code>rhvh-base\\.yaml:${lineNo}: boot\\.loader`));
  assert.match(r.text, /class="line del">.*loader: native/);
  assert.match(r.text, /class="line add">.*loader: floppy/);
  assert.match(r.text, new RegExp(`id="L${lineNo}" class="line badline"`));
  assert.equal(readFileSync(file, 'utf8'), before);

  // A parent edit that breaks a child is refused too.
  const noImage = before.replace(/^image:\n(  .*\n)+/m, '');
  const r2 = await agent
    .post('/profiles/rhvh-base')
    .type('form')
    .send({ _csrf: csrf, text: noImage, base: before, action: 'save' });
  assert.equal(r2.status, 422);
  assert.match(r2.text, /image/);
  assert.equal(readFileSync(file, 'utf8'), before);

  const good = before.replace('console=ttyS1,115200n8', 'console=ttyS0,115200n8');
  const check = await agent
    .post('/profiles/rhvh-base')
    .type('form')
    .send({ _csrf: csrf, text: good, base: before, action: 'check' });
  assert.equal(check.status, 200);
  assert.match(check.text, /Valid\. Review the diff/);
  assert.equal(readFileSync(file, 'utf8'), before, 'check does not save');
  const saved = await agent
    .post('/profiles/rhvh-base')
    .type('form')
    .send({ _csrf: csrf, text: good.replace(/\n/g, '\r\n'), base: before, action: 'save' });
  assert.equal(saved.status, 303);
  assert.equal(readFileSync(file, 'utf8'), good, 'CRLF from the browser is stored as LF');
  assert.deepEqual(
    readdirSync(env.config.profilesDir).filter((f) => f.startsWith('.')),
    [],
    'no temp file left',
  );
  assert.match(env.core.catalog.get('rhvh-base')!.profile.boot.kernelArgs, /ttyS0/, 'serving the new version');
  const audit = (await env.core.audit.recent())[0];
  assert.equal(audit.action, 'profile.update');
  assert.match(audit.diff!, /-.*ttyS1.*\\n\+.*ttyS0/);

  // Someone else changed the file meanwhile: refused, diff against what is there now.
  const stale = await agent
    .post('/profiles/rhvh-base')
    .type('form')
    .send({ _csrf: csrf, text: good + '# mine\n', base: before, action: 'save' });
  assert.equal(stale.status, 409);
  assert.match(stale.text, /changed on disk since you opened it/);

  const created = await agent
    .post('/profiles')
    .type('form')
    .send({ _csrf: csrf, name: 'rack-r9', text: 'extends: rhvh-base\ndescription: rack 9\n', action: 'save' });
  assert.equal(created.status, 303);
  assert.ok(env.core.catalog.get('rack-r9'));
  const again = await agent
    .post('/profiles')
    .type('form')
    .send({ _csrf: csrf, name: 'rack-r9', text: 'extends: rhvh-base\n', action: 'save' });
  assert.equal(again.status, 409);
});

test('a profile broken on disk shows as broken while its last good version serves', async () => {
  const { agent } = await login('tom');
  const file = join(env.config.profilesDir, 'rhvh-custom-thin.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('size: 6000', 'size: 6000\n    bogus: [\n'));
  env.core.catalog.reload();
  const list = await agent.get('/profiles');
  assert.match(list.text, /broken on disk/);
  assert.match(list.text, /the last good version keeps serving/);
  assert.match(list.text, /rhvh-custom-thin\.yaml:\d+: YAML syntax/);
  const one = await agent.get('/profiles/rhvh-custom-thin');
  assert.match(one.text, /The file on disk is broken; the last good version of rhvh-custom-thin keeps serving/);
});

test('users page: an admin adds a tech; disabling ends their sessions; the last admin is kept', async () => {
  const { agent, csrf } = await login('alice');
  const weak = await agent
    .post('/users')
    .type('form')
    .send({ _csrf: csrf, name: 'bob', role: 'tech', password: 'short', password2: 'short' });
  assert.equal(weak.status, 422);
  assert.match(weak.text, /at least 10 characters/);
  const add = await agent
    .post('/users')
    .type('form')
    .send({ _csrf: csrf, name: 'bob', role: 'tech', password: 'a long password 1', password2: 'a long password 1' });
  assert.equal(add.status, 303);
  const { agent: tom } = await login('tom');
  assert.equal((await tom.get('/')).status, 200);
  assert.equal((await agent.post('/users/tom').type('form').send({ _csrf: csrf, action: 'disable' })).status, 303);
  assert.equal((await tom.get('/')).status, 303, 'a disabled user is signed out at once');
  const self = await agent.post('/users/alice').type('form').send({ _csrf: csrf, action: 'disable' });
  assert.equal(self.status, 422);
  const demote = await agent.post('/users/alice').type('form').send({ _csrf: csrf, action: 'role', role: 'tech' });
  assert.equal(demote.status, 422);
  assert.match(demote.text, /last admin/);
  assert.match((await agent.get('/audit')).text, /user\.disable/);
});

test('user text is inert on every page: hostname, profile name, YAML content, event text', async () => {
  const { agent, csrf } = await login('alice');
  // Stored directly: validation would refuse these, so this proves the pages, not the validation.
  const mac = '52:54:00:aa:bb:66' as Mac;
  await env.core.hosts.insert({
    mac,
    hostname: XSS.join(''),
    profile: XSS[1],
    rack: XSS[0],
    position: XSS[1],
    nameservers: [],
    params: { [XSS[0]]: XSS[1] },
  });
  env.core.events.append({
    mac,
    type: 'progress',
    status: XSS[0],
    clientIp: XSS[1],
    detail: { reason: XSS.join(' ') },
  });
  env.core.events.append({ mac, type: XSS[1], status: 'x' });
  await env.core.audit.record(XSS[0], XSS[1], XSS[0], { unified: `--- a\n+++ b\n+${XSS[0]}\n-${XSS[1]}\n` });
  await env.core.audit.record('x', 'host.update', XSS[1], { hostname: { from: XSS[0], to: XSS[1] } });
  const base = readFileSync(join(env.config.profilesDir, 'rhvh-base.yaml'), 'utf8');
  writeFileSync(
    join(env.config.profilesDir, 'rhvh-base.yaml'),
    base.replace(/^description: .*$/m, `description: '${XSS[1].replace(/'/g, "''")} ${XSS[0]}'`),
  );
  writeFileSync(
    join(env.config.profilesDir, 'rhvh-custom-thin.yaml'),
    `# ${XSS[0]}\nextends: rhvh-base\ndescription: "${XSS[0]}"\nbogus: '${XSS[1]}'\n`,
  );
  writeFileSync(join(env.config.profilesDir, '"><img src=x onerror=alert(1)>.yaml'), 'description: x\n');
  env.core.catalog.reload();
  const editPost = await agent
    .post('/profiles/rhvh-base')
    .type('form')
    .send({ _csrf: csrf, text: `${XSS[0]}\n${XSS[1]}: [`, base: 'x', action: 'check' });
  const newProfile = await agent
    .post('/profiles')
    .type('form')
    .send({ _csrf: csrf, name: XSS[1], text: XSS[0], action: 'save' });
  const hostForm = await agent
    .post('/hosts')
    .type('form')
    .send({ _csrf: csrf, mac: XSS[1], hostname: XSS[0], profile: XSS[1], params: XSS[0] });
  const imp = await agent
    .post('/hosts/import')
    .type('form')
    .send({ _csrf: csrf, csv: `mac,hostname,profile\n${JSON.stringify(XSS[1])},${XSS[0]},x\n`, action: 'preview' });
  const pages = [
    ['board', await agent.get('/')],
    ['board filtered', await agent.get(`/?rack=${encodeURIComponent(XSS[0])}&profile=${encodeURIComponent(XSS[1])}`)],
    ['hosts', await agent.get('/hosts')],
    ['host', await agent.get(`/hosts/${mac}`)],
    ['host edit', await agent.get(`/hosts/${mac}/edit`)],
    ['host delete', await agent.get(`/hosts/${mac}/delete`)],
    ['profiles', await agent.get('/profiles')],
    ['profile', await agent.get('/profiles/rhvh-base')],
    ['profile edit', await agent.get('/profiles/rhvh-base/edit')],
    ['broken profile edit', await agent.get('/profiles/rhvh-custom-thin/edit')],
    ['profile 404', await agent.get(`/profiles/${encodeURIComponent(XSS[1])}`)],
    ['audit', await agent.get(`/audit?q=${encodeURIComponent(XSS[1])}`)],
    ['audit all', await agent.get('/audit')],
    ['editor check', editPost],
    ['new profile', newProfile],
    ['host form', hostForm],
    ['import', imp],
    ['login next', await request(app).get(`/login?next=${encodeURIComponent('/"><script>alert(1)</script>')}`)],
  ] as const;
  for (const [name, res] of pages) {
    assert.ok(res.status < 500, `${name}: ${res.status}`);
    assert.ok(!/<script>alert/i.test(res.text), `${name}: raw <script> on the page`);
    assert.ok(!/<img src=x/i.test(res.text), `${name}: raw <img> on the page`);
    assert.ok(!/"><img/.test(res.text), `${name}: broke out of an attribute`);
    assert.match(res.headers['content-security-policy'] ?? '', /script-src 'self'/, name);
  }
  for (const [name, res] of pages.slice(0, 14)) {
    if (name === 'profile 404' || name === 'host delete' || name === 'profiles' || name === 'board filtered') continue;
    assert.ok(/&lt;script&gt;|&lt;img/.test(res.text), `${name}: the text is shown, escaped`);
  }
});

test('live board: a built callback reaches an open stream within a second', async () => {
  await addHost();
  const started = await env.core.provisioner.startBuild(SAMPLE_HOST.mac as Mac, 'test');
  assert.ok(started.ok);
  const { cookie } = await login('tom');
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const sid = /rackboot_session=([^;]+)/.exec(cookie)![1];
  try {
    const got = await new Promise<{ data: string; ms: number }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/board/stream', headers: { Cookie: `rackboot_session=${sid}` } },
        (res) => {
          assert.equal(res.statusCode, 200);
          assert.match(String(res.headers['content-type']), /text\/event-stream/);
          let buf = '';
          let t0 = 0;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            if (!t0 && buf.includes(': live')) {
              t0 = Date.now();
              env.core.provisioner.callback(started.value.token, 'built', '10.99.0.11').then((r) => {
                if (!r.ok) reject(new Error(`callback refused: ${r.message}`));
              }, reject);
            }
            const m = /event: chip\ndata: (.*)\n\n/.exec(buf);
            if (m) {
              resolve({ data: m[1], ms: Date.now() - t0 });
              req.destroy();
            }
          });
        },
      );
      req.on('error', (e) => {
        if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e);
      });
      req.setTimeout(3000, () => reject(new Error('no chip within 3 s')));
      req.end();
    });
    const chip = JSON.parse(got.data) as { mac: string; stage: string; state: string };
    assert.equal(chip.mac, SAMPLE_HOST.mac);
    assert.equal(chip.stage, 'built');
    assert.ok(got.ms < 1000, `took ${got.ms} ms`);
  } finally {
    web.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('login: throttled after repeated failures; next= never leaves the site', async () => {
  const agent = request.agent(app);
  const page = await agent.get('/login?next=//evil.example/x');
  assert.match(page.text, /name="next" value="\/"/);
  const token = csrfOf(page.text);
  for (let i = 0; i < 10; i++)
    await agent.post('/login').type('form').send({ _csrf: token, name: 'alice', password: 'wrong password' });
  const blocked = await agent.post('/login').type('form').send({ _csrf: token, name: 'alice', password: PW });
  assert.equal(blocked.status, 429);
  clock += 11 * 60e3;
  const ok = await agent
    .post('/login')
    .type('form')
    .send({ _csrf: token, name: 'alice', password: PW, next: 'https://evil.example/' });
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.location, '/');
});

test('rackboot users: add (password on stdin only), list, disable, passwd; never a default password', async () => {
  const { runCli } = await import('../../src/cli.ts');
  const dataDir = join(env.dir, 'cli-data');
  const run = async (args: string[], stdin = '') => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...args, '--data-dir', dataDir, '--profiles-dir', env.config.profilesDir], {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      readStdin: async () => stdin,
      env: {},
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const none = await run(['users', 'list']);
  assert.equal(none.code, 0);
  assert.match(none.err, /no users yet/);
  assert.equal(
    (await run(['users', 'add', 'root', '--role', 'admin'])).code,
    2,
    'no password without --password-stdin',
  );
  assert.match(
    (await run(['users', 'add', 'root', '--role', 'admin', '--password-stdin'], 'short\n')).err,
    /at least 10/,
  );
  assert.equal((await run(['users', 'add', 'root', '--role', 'boss', '--password-stdin'], PW)).code, 2);
  assert.equal((await run(['users', 'add', 'Bad Name', '--role', 'admin', '--password-stdin'], PW)).code, 2);
  const add = await run(['users', 'add', 'root', '--role', 'admin', '--password-stdin'], `${PW}\n`);
  assert.equal(add.code, 0, add.err);
  assert.equal((await run(['users', 'add', 'root', '--role', 'admin', '--password-stdin'], PW)).code, 1, 'exists');
  assert.match((await run(['users', 'list'])).out, /^root\tadmin\tactive\t/);
  assert.equal((await run(['users', 'passwd', 'root', '--password-stdin'], 'another long one')).code, 0);
  assert.equal((await run(['users', 'disable', 'root'])).code, 0);
  assert.match((await run(['users', 'list'])).out, /root\tadmin\tdisabled/);
  assert.equal((await run(['users', 'disable', 'nobody'])).code, 1);
  assert.equal((await run(['users', 'frobnicate'])).code, 2);
});

test('serve: the UI is mounted, and shutdown ends open live streams instead of hanging', async () => {
  const { startRackboot } = await import('../../src/serve.ts');
  const { loadConfig } = await import('../../src/config.ts');
  const config = loadConfig(
    {
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': '0',
      'data-dir': join(env.dir, 'serve-data'),
      'profiles-dir': env.config.profilesDir,
      'tftp-root': env.config.tftpRoot,
      'images-dir': env.config.imagesDir,
    },
    {},
    env.dir,
  );
  const running = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: 'x' });
  let closed = false;
  try {
    await running.core.store.users.add('alice', 'admin', HASH);
    const base = `http://127.0.0.1:${running.httpPort}`;
    const lp = await fetch(`${base}/login`);
    assert.equal(lp.status, 200);
    const loginCookie = /rackboot_login=([^;]+)/.exec(lp.headers.get('set-cookie') ?? '')![1];
    const signed = await fetch(`${base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `rackboot_login=${loginCookie}` },
      body: new URLSearchParams({ _csrf: csrfOf(await lp.text()), name: 'alice', password: PW }),
    });
    assert.equal(signed.status, 303);
    const sid = /rackboot_session=([^;]+)/.exec(signed.headers.get('set-cookie') ?? '')![1];
    const stream = await fetch(`${base}/board/stream`, { headers: { Cookie: `rackboot_session=${sid}` } });
    assert.equal(stream.status, 200);
    const t0 = Date.now();
    await running.close();
    closed = true;
    assert.ok(Date.now() - t0 < 3000, `close took ${Date.now() - t0} ms`);
    await stream.body?.cancel().catch(() => {});
  } finally {
    if (!closed) await running.close();
  }
});

test('account: a tech changes their own password with the current one, and signs in again', async () => {
  const { agent, csrf } = await login('tom');
  assert.equal((await agent.get('/account')).status, 200);
  const wrong = await agent.post('/account').type('form').send({
    _csrf: csrf,
    current: 'not it at all',
    password: 'a brand new password',
    password2: 'a brand new password',
  });
  assert.equal(wrong.status, 422);
  assert.match(wrong.text, /current password is wrong/);
  const ok = await agent
    .post('/account')
    .type('form')
    .send({ _csrf: csrf, current: PW, password: 'a brand new password', password2: 'a brand new password' });
  assert.equal(ok.status, 303);
  assert.equal((await agent.get('/')).status, 303, 'signed out by the change');
  assert.ok(await env.core.store.users.authenticate('tom', 'a brand new password'));
});
