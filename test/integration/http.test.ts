import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, symlinkSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { makeEnv, SAMPLE_HOST, type TestEnv } from '../support/core.ts';
import { appFor } from '../support/web-env.ts';
import type { Express } from 'express';
import { checkRhvhKickstart } from '../support/kickstart-check.ts';
import type { Mac } from '../../src/net/mac.ts';

const TOKEN = 'test-admin-token';
let env: TestEnv;
let app: Express;
const auth = { Authorization: `Bearer ${TOKEN}` };

function makeApp(e: TestEnv) {
  return appFor(e, TOKEN);
}

beforeEach(async () => {
  env = await makeEnv();
  mkdirSync(env.config.tftpRoot, { recursive: true });
  mkdirSync(join(env.config.imagesDir, 'rhvh-4.3'), { recursive: true });
  app = makeApp(env);
});
afterEach(() => env.cleanup());

/**
 * supertest connects from 127.0.0.1: tie that address to the host the way serve.ts does when the DHCP
 * server hands it out (boot configs with a token and callbacks go only to the host's own address).
 */
function dhcpHandedOut(mac: string, ip = '127.0.0.1') {
  env.core.provisioner.learnClient(ip, mac as Mac);
}

async function addHostAndBuild(host = SAMPLE_HOST) {
  const created = await request(app).post('/api/hosts').set(auth).send(host);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  dhcpHandedOut(host.mac);
  const b = await request(app).post(`/api/hosts/${host.mac}/build`).set(auth);
  assert.equal(b.status, 201, JSON.stringify(b.body));
  return b.body as { token: string; kickstartUrl: string; builtUrl: string; failedUrl: string; expiresAt: string };
}
const path = (url: string) => new URL(url).pathname;

test('the whole build lifecycle: build, boot config, kickstart, progress, built, local boot', async () => {
  const b = await addHostAndBuild();
  assert.match(b.token, /^[A-Za-z0-9_-]{43}$/, '256-bit base64url token');
  assert.equal(b.kickstartUrl, `http://10.99.0.1:8080/ks/${b.token}`);
  assert.ok(Date.parse(b.expiresAt) - Date.now() > 5.9 * 3600e3);

  const pxe = await request(app).get('/tftp/pxelinux.cfg/01-52-54-00-aa-bb-01');
  assert.equal(pxe.status, 200);
  assert.match(pxe.text, new RegExp(`inst\\.ks=${b.kickstartUrl}`));
  assert.equal(
    (await request(app).get('/api/hosts/52-54-00-AA-BB-01').set(auth)).body.state,
    'build',
    'any MAC spelling works',
  );

  const ks = await request(app).get(path(b.kickstartUrl));
  assert.equal(ks.status, 200);
  assert.deepEqual(checkRhvhKickstart(ks.text), []);
  assert.match(ks.text, new RegExp(`curl .*${b.builtUrl}`));

  assert.equal(
    (
      await request(app)
        .post(`/events/${b.token}`)
        .set('Content-Type', 'application/json')
        .send('{"step":"post-started"}')
    ).status,
    200,
  );
  assert.equal(
    (await request(app).post(`/events/${b.token}`).send('{"step":"<script>"}').set('Content-Type', 'application/json'))
      .status,
    400,
  );

  const built = await request(app).get(path(b.builtUrl));
  assert.equal(built.status, 200);
  const again = await request(app).post(path(b.builtUrl));
  assert.equal(again.status, 200, 'a retried built callback succeeds again');

  const view = (await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body;
  assert.equal(view.state, 'built');
  const types = view.events.map((e: { type: string }) => e.type);
  for (const t of ['build.start', 'pxelinux.config', 'kickstart.fetched', 'progress', 'build.built'])
    assert.ok(types.includes(t), `${t} in ${types}`);
  assert.equal(types.filter((t: string) => t === 'build.built').length, 1, 'the retry changed nothing');
  assert.equal(view.events.find((e: { type: string }) => e.type === 'kickstart.fetched').clientIp, '127.0.0.1');

  const after = await request(app).get('/tftp/pxelinux.cfg/01-52-54-00-aa-bb-01');
  assert.match(after.text, /LOCALBOOT 0/);
  assert.doesNotMatch(after.text, /inst\.ks/);
  assert.equal((await request(app).get(path(b.kickstartUrl))).status, 410, 'a finished build serves no kickstart');
});

test('tokens: unknown 404, expired 410 with the reason on the timeline, superseded build refused', async () => {
  assert.equal((await request(app).get('/ks/' + 'x'.repeat(43))).status, 404);
  const first = await addHostAndBuild();
  const second = await request(app).post(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(auth);
  assert.equal(second.status, 201);
  assert.equal((await request(app).get(path(first.kickstartUrl))).status, 410, 'the older build token stops working');
  const r = await request(app).get(path(first.builtUrl));
  assert.equal(r.status, 409, 'a built call for an older build is refused');
  await env.core.store.sql.run('UPDATE builds SET expires_at = ? WHERE id = (SELECT MAX(id) FROM builds)', [
    Date.now() - 1,
  ]);
  // Written behind the repos' back: tell the view, as another process's write reaches it.
  await env.core.store.changes.deliver({ kind: 'build', mac: SAMPLE_HOST.mac });
  const exp = await request(app).get(path(second.body.kickstartUrl));
  assert.equal(exp.status, 410);
  assert.match(exp.text, /expired/);
  const view = (await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body;
  assert.equal(view.state, 'expired');
  const refused = view.events.filter((e: { type: string }) => e.type === 'kickstart.refused');
  assert.ok(
    refused.some(
      (e: { status: string; detail: { reason: string } }) => e.status === 'expired' && /expired/.test(e.detail.reason),
    ),
  );
  assert.doesNotMatch(
    (await request(app).get('/tftp/pxelinux.cfg/01-52-54-00-aa-bb-01')).text,
    /inst\.ks/,
    'an expired build boots local',
  );
});

test('failed callback stores a bounded log; state failed', async () => {
  const b = await addHostAndBuild();
  const log = 'x'.repeat(100 * 1024) + '\nlast line: nodectl init failed';
  assert.equal((await request(app).post(path(b.failedUrl)).set('Content-Type', 'text/plain').send(log)).status, 200);
  const view = (await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body;
  assert.equal(view.state, 'failed');
  assert.equal(view.build.failureLog.length, 64 * 1024);
  assert.match(view.build.failureLog, /nodectl init failed$/);
  assert.equal((await request(app).get(path(b.builtUrl))).status, 409, 'built after failed is refused');
  const huge = await request(app)
    .post(path(b.failedUrl))
    .set('Content-Type', 'text/plain')
    .send('y'.repeat(2 * 1024 * 1024));
  assert.equal(huge.status, 413);
});

test('cancel: the host leaves build, the token dies', async () => {
  const b = await addHostAndBuild();
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(auth)).status, 200);
  assert.equal((await request(app).get(path(b.kickstartUrl))).status, 410);
  assert.equal((await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).body.state, 'idle');
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(auth)).status, 409);
});

test('unknown machines get local boot; per-MAC misses fall through as 404', async () => {
  const def = await request(app).get('/tftp/pxelinux.cfg/default');
  assert.equal(def.status, 200);
  assert.match(def.text, /LOCALBOOT 0/);
  assert.equal((await request(app).get('/tftp/pxelinux.cfg/01-52-54-00-00-00-99')).status, 404);
  assert.match((await request(app).get('/tftp/boot/grub/grub.cfg')).text, /chainloader/);
  assert.match(
    (await request(app).get('/boot/ipxe/52:54:00:00:00:99')).text,
    /^#!ipxe[\s\S]*sanboot --no-describe --drive 0x80 \|\| exit/,
  );
});

test('iPXE and GRUB configs over HTTP for a host in build', async () => {
  await request(app)
    .post('/api/hosts')
    .set(auth)
    .send({ ...SAMPLE_HOST, mac: '52:54:00:aa:bb:02', hostname: 'rhvh02', ip: '10.99.0.12' });
  dhcpHandedOut('52:54:00:aa:bb:02');
  const b = await request(app).post('/api/hosts/52:54:00:aa:bb:02/build').set(auth);
  const ipxe = await request(app).get('/boot/ipxe?mac=52:54:00:aa:bb:02');
  assert.match(ipxe.text, new RegExp(`inst\\.ks=${b.body.kickstartUrl}`));
  const grub = await request(app).get('/tftp/boot/grub/grub.cfg-01-52-54-00-aa-bb-02');
  assert.match(
    grub.text,
    /^\s*linux \/rhvh-4\.3\/vmlinuz /m,
    'no EFI loaders known: the default kernel command, linux',
  );
});

test('static files: HEAD, Range, streaming, traversal and symlink escapes refused', async () => {
  const big = join(env.config.imagesDir, 'rhvh-4.3', 'big.img');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 3 * 1024 * 1024 * 1024);
  closeSync(fd); // sparse 3 GiB: never read whole
  writeFileSync(join(env.config.imagesDir, 'rhvh-4.3', 'small.txt'), '0123456789');
  writeFileSync(join(env.dir, 'secret.txt'), 'secret');
  symlinkSync(join(env.dir, 'secret.txt'), join(env.config.imagesDir, 'escape'));
  const head = await request(app).head('/images/rhvh-4.3/big.img');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(3 * 1024 * 1024 * 1024));
  assert.equal(head.headers['accept-ranges'], 'bytes');
  const tail = await request(app)
    .get('/images/rhvh-4.3/big.img')
    .set('Range', `bytes=${3 * 1024 * 1024 * 1024 - 4}-`);
  assert.equal(tail.status, 206);
  assert.equal(
    tail.headers['content-range'],
    `bytes ${3 * 1024 * 1024 * 1024 - 4}-${3 * 1024 * 1024 * 1024 - 1}/${3 * 1024 * 1024 * 1024}`,
  );
  const part = await request(app).get('/images/rhvh-4.3/small.txt').set('Range', 'bytes=2-4');
  assert.equal(part.status, 206);
  assert.equal(part.text, '234');
  assert.equal((await request(app).get('/images/rhvh-4.3/small.txt').set('Range', 'bytes=50-60')).status, 416);
  for (const p of [
    '/images/../secret.txt',
    '/images/%2e%2e/secret.txt',
    '/images/rhvh-4.3/..%2f..%2fsecret.txt',
    '/images/escape',
    '/tftp/..%5c..%5csecret.txt',
    '/images/rhvh-4.3',
  ]) {
    const r = await request(app).get(p);
    assert.ok(r.status === 403 || r.status === 404 || r.status === 400, `${p} -> ${r.status}`);
    assert.doesNotMatch(r.text ?? '', /^secret$/);
  }
});

test('API: auth, validation messages, conflicts, malformed bodies', async () => {
  assert.equal((await request(app).get('/api/hosts')).status, 401);
  assert.equal((await request(app).get('/api/hosts').set('Authorization', 'Bearer wrong')).status, 401);
  const bad = await request(app).post('/api/hosts').set(auth).send({ mac: 'nope', hostname: 'h1', profile: 'missing' });
  assert.equal(bad.status, 422);
  // The one error shape: a stable code, the message naming each field, the first field named.
  assert.equal(bad.body.error.code, 'invalid');
  assert.equal(bad.body.error.field, 'mac');
  assert.match(bad.body.error.message, /mac: "nope" is not a MAC address/);
  assert.match(bad.body.error.message, /profile: "missing" is not a loaded profile/);
  const unauth = await request(app).get('/api/hosts');
  assert.equal(unauth.body.error.code, 'unauthorized');
  assert.match(unauth.body.error.message, /send Authorization: Bearer <token>/);
  const junk = await request(app).post('/api/hosts').set(auth).set('Content-Type', 'application/json').send('{"mac": ');
  assert.equal(junk.status, 400);
  assert.equal(junk.body.error.code, 'bad_request');
  assert.match(junk.body.error.message, /not valid JSON/);
  const extra = await request(app)
    .post('/api/hosts')
    .set(auth)
    .send({ ...SAMPLE_HOST, extra: 1 });
  assert.equal(extra.status, 422);
  assert.deepEqual(extra.body.error, { code: 'invalid', message: 'extra: unknown field', field: 'extra' });
  assert.equal((await request(app).post('/api/hosts').set(auth).send(SAMPLE_HOST)).status, 201);
  assert.equal((await request(app).post('/api/hosts').set(auth).send(SAMPLE_HOST)).status, 409);
  const dupIp = await request(app)
    .post('/api/hosts')
    .set(auth)
    .send({ ...SAMPLE_HOST, mac: '52:54:00:aa:bb:09', hostname: 'other' });
  assert.equal(dupIp.status, 409);
  assert.equal(dupIp.body.error.code, 'conflict');
  assert.equal(dupIp.body.error.field, 'ip');
  assert.match(dupIp.body.error.message, /IP 10\.99\.0\.11 already belongs to rhvh01/);
  assert.equal((await request(app).get('/api/hosts/zz').set(auth)).status, 400);
  const upd = await request(app).put(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth).send({ profile: 'rhvh-custom-thin' });
  assert.equal(upd.status, 200);
  assert.equal(upd.body.profile, 'rhvh-custom-thin');
  const audit = await env.core.audit.recent();
  assert.deepEqual(audit[0].action, 'host.update');
  assert.match(audit[0].diff ?? '', /rhvh-custom-thin/);
  const profiles = (await request(app).get('/api/profiles').set(auth)).body;
  assert.deepEqual(profiles.profiles.map((p: { name: string }) => p.name).sort(), [
    'rhvh-base',
    'rhvh-custom-thin',
    'rhvh-stig-satellite',
  ]);
  assert.equal((await request(app).delete(`/api/hosts/${SAMPLE_HOST.mac}`).set(auth)).status, 204);
  assert.equal((await request(app).get('/no/such/route')).status, 404);
});

test('rack import: dry run writes nothing; a bad file is refused whole with one line per problem', async () => {
  const csv =
    'mac,hostname,ip,netmask,profile,rack,position\n52:54:00:00:01:01,r1u1,10.99.0.101,255.255.255.0,rhvh-base,R1,U1\n52:54:00:00:01:02,r1u2,10.99.0.102,255.255.255.0,rhvh-base,R1,U2\n';
  const dry = await request(app).post('/api/hosts/import?dryRun=1').set(auth).set('Content-Type', 'text/csv').send(csv);
  assert.equal(dry.status, 200);
  assert.equal(dry.body.hosts.length, 2);
  assert.equal((await env.core.hosts.list()).length, 0);
  const bad = await request(app)
    .post('/api/hosts/import')
    .set(auth)
    .set('Content-Type', 'text/csv')
    .send(csv + '52:54:00:00:01:01,r1u3,10.99.0.103,255.255.255.0,nosuch,R1,U3\n');
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.code, 'invalid');
  assert.equal(bad.body.error.problems.length, 2);
  assert.equal((await env.core.hosts.list()).length, 0, 'nothing written');
  const good = await request(app).post('/api/hosts/import').set(auth).set('Content-Type', 'text/csv').send(csv);
  assert.equal(good.status, 201);
  assert.equal((await env.core.hosts.list()).length, 2);
});

test('secrets: the kickstart carries them only for a live build; previews mask them', async () => {
  await request(app)
    .post('/api/hosts')
    .set(auth)
    .send({ ...SAMPLE_HOST, profile: 'rhvh-stig-satellite' });
  dhcpHandedOut(SAMPLE_HOST.mac);
  const b = (await request(app).post(`/api/hosts/${SAMPLE_HOST.mac}/build`).set(auth)).body;
  const ks = await request(app).get(path(b.kickstartUrl));
  assert.match(ks.text, /--activationkey=rhvh-hosts /);
  assert.match(ks.text, /rootpw --iscrypted \$6\$/);
  const preview = await request(app).get(`/api/hosts/${SAMPLE_HOST.mac}/render/kickstart`).set(auth);
  assert.equal(preview.status, 200);
  assert.doesNotMatch(preview.text, /--activationkey=rhvh-hosts|\$6\$|${b.token}/);
  assert.match(preview.text, /--activationkey='\*{8}'/);
});

test('static files: byte-identical across chunk boundaries, ranges inside, an aborted download frees the server', async () => {
  const { randomBytes, createHash: hash } = await import('node:crypto');
  const { createServer } = await import('node:http');
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  writeFileSync(join(env.config.imagesDir, 'rhvh-4.3', 'rand.img'), data);
  const whole = await request(app)
    .get('/images/rhvh-4.3/rand.img')
    .buffer(true)
    .parse((res, cb) => {
      const c: Buffer[] = [];
      res.on('data', (d: Buffer) => c.push(d));
      res.on('end', () => cb(null, Buffer.concat(c)));
    });
  assert.equal(whole.status, 200);
  assert.equal(
    hash('sha256')
      .update(whole.body as Buffer)
      .digest('hex'),
    hash('sha256').update(data).digest('hex'),
  );
  const from = 1024 * 1024 - 7,
    to = 2 * 1024 * 1024 + 9;
  const part = await request(app)
    .get('/images/rhvh-4.3/rand.img')
    .set('Range', `bytes=${from}-${to}`)
    .buffer(true)
    .parse((res, cb) => {
      const c: Buffer[] = [];
      res.on('data', (d: Buffer) => c.push(d));
      res.on('end', () => cb(null, Buffer.concat(c)));
    });
  assert.equal(part.status, 206);
  assert.ok((part.body as Buffer).equals(data.subarray(from, to + 1)));
  // a client that goes away mid-file: the server keeps serving others
  const server = createServer(app).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  const ctl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/images/rhvh-4.3/rand.img`, { signal: ctl.signal });
  const reader = res.body!.getReader();
  await reader.read();
  ctl.abort();
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  server.close();
});
