// Templates and webhooks through `serve` as an operator sets them up: a config file with templatesDir (their own
// kickstart and snippet) and webhooks:, a profile naming the kickstart; then the kickstart over HTTP, a hot edit,
// a broken edit refused with file:line while the last good serves, the API views, the delivery log, the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { runCli } from '../../src/cli.ts';
import { verifySignature } from '../../src/webhooks/payload.ts';
import { REPO, tempDir } from '../support/core.ts';

const ADMIN = 'templates-serve-admin-token';
const SECRET = 'serve-test-secret-0123456789';
const MAC = '52:54:00:ee:00:01';
let dir: string;
let configFile: string;
let run: Running;
let base: string;
let receiver: Server;
const received: { body: string; signature: string }[] = [];

async function api(method: string, path: string, body?: unknown) {
  const r = await fetch(`${base}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

async function until<T>(what: string, get: () => Promise<T> | T, ms = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const ownKs = readFileSync(join(REPO, 'templates/kickstart/rhvh.ks.eta'), 'utf8').replace(
  'rackboot_step post-done\n',
  "<%~ include('site-motd', it) %>rackboot_step post-done\n",
);

before(async () => {
  dir = tempDir('rackboot-templates-serve-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  writeFileSync(
    join(dir, 'profiles/site.yaml'),
    'extends: rhvh-base\ndescription: our own kickstart\nkickstart: site.ks.eta\n',
  );
  mkdirSync(join(dir, 'own/kickstart'), { recursive: true });
  mkdirSync(join(dir, 'own/snippets'), { recursive: true });
  writeFileSync(join(dir, 'own/kickstart/site.ks.eta'), ownKs);
  writeFileSync(join(dir, 'own/snippets/site-motd.eta'), 'echo first > /etc/motd\n');
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body, signature: String(req.headers['x-rackboot-signature']) });
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook/s3cr3t-path`;
  configFile = join(dir, 'rackboot.yaml');
  writeFileSync(
    configFile,
    `templatesDir: own\nwebhooks:\n  - url: ${hookUrl}\n    secret: ${SECRET}\n    events: [build.started]\n`,
  );
  const config = loadConfig(
    {
      config: configFile,
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': '0',
      'syslog-port': '0',
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
    },
    {},
    dir,
  );
  assert.equal(config.templatesOverlayDir, join(dir, 'own'));
  run = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: ADMIN });
  base = `http://127.0.0.1:${run.httpPort}`;
  const h = await api('POST', '/hosts', {
    mac: MAC,
    hostname: 'site01',
    profile: 'site',
    params: { 'boot.kernelArgs': 'inst.text' },
  });
  assert.equal(h.status, 201, JSON.stringify(h.json));
});

after(async () => {
  await run?.close();
  receiver?.closeAllConnections();
  await new Promise<void>((r) => receiver?.close(() => r()));
});

async function kickstart(): Promise<{ status: number; text: string }> {
  const b = await api('POST', `/hosts/${MAC}/build`);
  assert.equal(b.status, 201, JSON.stringify(b.json));
  const url = (b.json as unknown as { kickstartUrl: string }).kickstartUrl;
  const r = await fetch(`${base}${new URL(url).pathname}`, { headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${MAC}` } });
  const text = await r.text();
  assert.equal((await api('DELETE', `/hosts/${MAC}/build`)).status, 200);
  return { status: r.status, text };
}

test("serve: the profile's own kickstart from templatesDir, with its snippet; an edit is served without a restart", async () => {
  const first = await kickstart();
  assert.equal(first.status, 200, first.text);
  assert.match(first.text, /^echo first > \/etc\/motd$/m);
  writeFileSync(join(dir, 'own/snippets/site-motd.eta'), 'echo second > /etc/motd\n');
  await until('the edit served', async () => /^echo second/m.test((await kickstart()).text));
});

test('serve: a broken edit is refused with file:line, the last good keeps serving; templates list and the API say so', async () => {
  writeFileSync(join(dir, 'own/snippets/site-motd.eta'), 'echo third\n<% if (it.x) { %>\n');
  const t = await until('the error', async () => {
    const r = await api('GET', '/templates');
    return (r.json.errors as unknown[]).length ? r : undefined;
  });
  const err = (t.json.errors as { file: string; line?: number; text: string }[])[0]!;
  assert.equal(err.file, join(dir, 'own/snippets/site-motd.eta'));
  assert.match(err.text, /site-motd\.eta:\d+: JavaScript in the template/);
  const ks = await kickstart();
  assert.equal(ks.status, 200);
  assert.match(ks.text, /^echo second > \/etc\/motd$/m, 'the last good snippet serves');
  const rows = t.json.templates as { name: string; origin: string; stale: boolean; profiles: string[] }[];
  const site = rows.find((r) => r.name === 'site.ks.eta')!;
  assert.deepEqual([site.origin, site.profiles], ['overlay', ['site']]);
  assert.equal(rows.find((r) => r.name === 'site-motd.eta')?.stale, true);
  assert.deepEqual(rows.find((r) => r.name === 'rhvh.ks.eta')?.profiles, [
    'rhvh-base',
    'rhvh-custom-thin',
    'rhvh-stig-satellite',
  ]);

  const out: string[] = [];
  const errs: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => errs.push(s), readStdin: async () => '', env: {} };
  const code = await runCli(
    [
      'templates',
      'list',
      '--config',
      configFile,
      '--data-dir',
      join(dir, 'data'),
      '--profiles-dir',
      join(dir, 'profiles'),
    ],
    io,
  );
  assert.equal(code, 1, 'a broken template makes templates list exit 1');
  assert.ok(
    out.some((l) => /^kickstart +site\.ks\.eta .*\(overlay[;)].* +used by: site$/.test(l)),
    out.join('\n'),
  );
  assert.match(errs.join('\n'), /site-motd\.eta:\d+: JavaScript in the template/);
  writeFileSync(join(dir, 'own/snippets/site-motd.eta'), 'echo fixed > /etc/motd\n');
  await until('the fix', async () => !((await api('GET', '/templates')).json.errors as unknown[]).length);
});

test('serve: the effective profile shows each value and where it came from; worst queries are refused', async () => {
  const e = await api('GET', `/profiles/site/effective?mac=${MAC}`);
  assert.equal(e.status, 200, JSON.stringify(e.json));
  const values = new Map(
    (e.json.values as unknown as { field: string; source: string; from?: string }[]).map((v) => [v.field, v]),
  );
  assert.deepEqual(values.get('kickstart'), {
    field: 'kickstart',
    value: 'site.ks.eta',
    source: 'profile',
    from: 'site',
    file: join(dir, 'profiles/site.yaml'),
  });
  assert.equal(values.get('boot.kernelArgs')?.source, 'host');
  assert.equal(values.get('boot.hostKernelArgs')?.source, 'parent');
  assert.equal(values.get('stig.enabled')?.source, 'default');
  const plain = await api('GET', '/profiles/site/effective');
  assert.equal(
    (plain.json.values as unknown as { field: string; source: string }[]).find((v) => v.field === 'boot.kernelArgs')
      ?.source,
    'parent',
  );
  for (const [path, status, message] of [
    ['/profiles/nope/effective', 404, /no profile named "nope"/],
    ['/profiles/..%2F..%2Fetc%2Fpasswd/effective', 404, /no profile named/],
    ['/profiles/site/effective?mac=zz', 400, /mac: "zz" is not a MAC address/],
    ['/profiles/site/effective?mac=52:54:00:00:00:99', 404, /no host with MAC/],
    ['/profiles/rhvh-base/effective?mac=' + MAC, 409, /uses profile site, not rhvh-base/],
    ['/webhooks/deliveries?limit=0', 400, /limit must be/],
    ['/webhooks/deliveries?limit=99999999999', 400, /limit must be/],
    ['/webhooks/deliveries?status=bogus', 400, /status must be one of/],
    ['/webhooks/deliveries?mac=%00', 400, /not a MAC/],
  ] as const) {
    const r = await api('GET', path);
    assert.equal(r.status, status, `${path}: ${JSON.stringify(r.json)}`);
    assert.match(String(r.json.error), message);
  }
});

test('serve: webhooks from the config file are delivered signed and listed in the delivery log (origin only)', async () => {
  await until('a delivery', () => received.length > 0);
  assert.ok(verifySignature(SECRET, received[0]!.body, received[0]!.signature));
  const log = await until('the log', async () => {
    const r = await api('GET', '/webhooks/deliveries?status=delivered&limit=5');
    return (r.json as unknown as unknown[]).length ? r : undefined;
  });
  const row = (log.json as unknown as { event: string; target: string; mac: string; attempts: number }[])[0]!;
  assert.equal(row.event, 'build.started');
  assert.equal(row.mac, MAC);
  assert.match(row.target, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.doesNotMatch(JSON.stringify(log.json), /s3cr3t-path|serve-test-secret/);
});
