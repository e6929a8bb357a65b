// Sites: a node started with --site serves boot files, kickstarts and DHCP reservations only to its own site's
// hosts and to hosts of no site; the API still shows and takes every site's hosts (one inventory), and refuses
// a bad site (API, CSV) with an error naming the field, changing nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { startRackboot, type Running } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';
import type { Mac } from '../../src/net/mac.ts';
import request from 'supertest';
import { hashUserPasswordSync } from '../../src/store/users.ts';

const run = promisify(execFile);
const ADMIN = 'sites-test-admin-token';
let dir: string;
let node: Running;
let base: string;
let tftpPort: number;

const HOSTS = [
  { mac: '52:54:00:5e:00:01', hostname: 'dc1-a', profile: 'rhvh-base', site: 'dc1' },
  { mac: '52:54:00:5e:00:02', hostname: 'dc2-a', profile: 'rhvh-base', site: 'dc2' },
  { mac: '52:54:00:5e:00:03', hostname: 'any-a', profile: 'rhvh-base' },
];
const [DC1, DC2, ANY] = HOSTS.map((h) => h.mac as Mac);
const builds: Record<string, { kickstartUrl: string }> = {};

async function api(method: string, path: string, body?: unknown, type = 'application/json') {
  const r = await fetch(base + '/api' + path, {
    method,
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': type },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}

before(async () => {
  dir = tempDir('rackboot-sites-');
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'tftpboot'), { recursive: true });
  tftpPort = await freePort('udp');
  const config = loadConfig(
    {
      listen: '127.0.0.1',
      site: 'dc1',
      'http-port': '0',
      'tftp-port': String(tftpPort),
      'syslog-port': '0',
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
    },
    {},
    dir,
  );
  node = await startRackboot(config, silentLogger(), { RACKBOOT_ADMIN_TOKEN: ADMIN });
  base = `http://127.0.0.1:${node.httpPort}`;
  for (const h of HOSTS) {
    const r = await api('POST', '/hosts', h);
    assert.equal(r.status, 201, r.text);
    const b = await api('POST', `/hosts/${h.mac}/build`);
    assert.equal(b.status, 201, b.text);
    builds[h.mac] = JSON.parse(b.text) as { kickstartUrl: string };
  }
});

after(async () => {
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the API lists every site with its hosts, and GET /api/nodes names this node with its site', async () => {
  const hosts = (JSON.parse((await api('GET', '/hosts')).text) as { items: { mac: string; site?: string }[] }).items;
  assert.deepEqual(
    hosts.map((h) => [h.mac, h.site ?? null]).sort(),
    [
      [DC1, 'dc1'],
      [DC2, 'dc2'],
      [ANY, null],
    ].sort(),
  );
  const nodes = JSON.parse((await api('GET', '/nodes')).text) as { nodes: { site: string; alive: boolean }[] };
  assert.deepEqual(
    nodes.nodes.map((n) => [n.site, n.alive]),
    [['dc1', true]],
  );
});

test('kickstarts: served for dc1 and site-less hosts, refused (421, naming the site) for a dc2 host', async () => {
  for (const mac of [DC1, ANY]) {
    const r = await fetch(builds[mac].kickstartUrl.replace(/^https?:\/\/[^/]+/, base), {
      headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${mac}` },
    });
    assert.equal(r.status, 200, `${mac}: ${await r.text()}`);
  }
  const r = await fetch(builds[DC2].kickstartUrl.replace(/^https?:\/\/[^/]+/, base), {
    headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${DC2}` },
  });
  assert.equal(r.status, 421);
  assert.match(await r.text(), /belongs to site dc2; this node serves site dc1/);
});

test('boot configs over TFTP (curl) and HTTP: per-MAC configs only for this site; DHCP sees a dc2 host as unknown', async () => {
  // Each host at its own loopback address, tied to it as a DHCP lease would: per-MAC configs go to their host only.
  const p = node.core.provisioner;
  const addr: Record<string, string> = { [DC1]: '127.0.0.11', [DC2]: '127.0.0.12', [ANY]: '127.0.0.13' };
  for (const [mac, ip] of Object.entries(addr)) p.learnClient(ip, mac as Mac);
  const tftp = async (mac: string) => {
    const name = `pxelinux.cfg/01-${mac.replace(/:/g, '-')}`;
    const url = `tftp://127.0.0.1:${tftpPort}/${name}`;
    const r = await run('curl', ['-s', '--interface', addr[mac], '-o', '-', url]).catch((e: { stdout: string }) => ({
      stdout: e.stdout,
    }));
    return r.stdout;
  };
  const mine = await tftp(DC1);
  assert.match(mine, /inst\.ks=/, `dc1 host: its install config: ${mine}`);
  assert.match(await tftp(ANY), /inst\.ks=/, 'a host of no site: every node serves it');
  const other = await tftp(DC2);
  assert.doesNotMatch(other, /inst\.ks=/, 'a dc2 host gets no install config from a dc1 node');
  assert.equal(other, '', 'not even a local-boot file: the loader goes on to its next name');
  assert.equal(p.bootState(DC2), undefined);
  assert.equal(p.bootState(DC1)?.inBuild, true);
  assert.equal(p.bootState(ANY)?.inBuild, true);
});

const WORST_SITES: unknown[] = [
  'DC1',
  '-dc1',
  'dc1-',
  'dc 1',
  '../dc1',
  'dc1\n',
  'dc1\u2028',
  'dc1;rm -rf /',
  'dc\u00e91',
  'a'.repeat(33),
  'x'.repeat(100_000),
  42,
  ['dc1'],
  { site: 'dc1' },
];

test('API: a bad site is refused with 422 naming the field, and nothing changes', async () => {
  const before = (await api('GET', '/hosts')).text;
  for (const site of WORST_SITES) {
    const r = await api('POST', '/hosts', {
      mac: '52:54:00:5e:00:99',
      hostname: 'bad-site',
      profile: 'rhvh-base',
      site,
    });
    assert.equal(r.status, 422, `${JSON.stringify(site).slice(0, 40)}: ${r.status} ${r.text.slice(0, 200)}`);
    assert.match(r.text, /site/, r.text.slice(0, 200));
    assert.ok(r.text.length < 2000, 'the error does not echo a huge value');
    const put = await api('PUT', `/hosts/${DC1}`, { ...HOSTS[0], site });
    assert.equal(put.status, 422, `PUT ${JSON.stringify(site).slice(0, 40)}: ${put.text.slice(0, 200)}`);
  }
  assert.equal((await api('GET', '/hosts')).text, before);
});

test('CSV import: a site column; a bad site names its line and the field, and nothing is imported', async () => {
  const good = 'mac,hostname,profile,site\n52:54:00:5e:00:10,csv-a,rhvh-base,dc2\n52:54:00:5e:00:11,csv-b,rhvh-base,\n';
  const bad =
    'mac,hostname,profile,site\n52:54:00:5e:00:12,csv-c,rhvh-base,dc1\n52:54:00:5e:00:13,csv-d,rhvh-base,DC 2\n';
  const before = (await api('GET', '/hosts')).text;
  const r = await api('POST', '/hosts/import', bad, 'text/csv');
  assert.equal(r.status, 422, r.text);
  assert.deepEqual((JSON.parse(r.text) as { error: { problems: string[] } }).error.problems, [
    'line 3: site: "DC 2" is not a site name: 1-32 lower-case letters, digits and dashes, such as dc1 or paris-b',
  ]);
  assert.equal((await api('GET', '/hosts')).text, before);
  const ok = await api('POST', '/hosts/import', good, 'text/csv');
  assert.ok(ok.status === 200 || ok.status === 201, ok.text);
  const hosts = (JSON.parse((await api('GET', '/hosts')).text) as { items: { hostname: string; site?: string }[] })
    .items;
  assert.equal(hosts.find((h) => h.hostname === 'csv-a')?.site, 'dc2');
  assert.equal(hosts.find((h) => h.hostname === 'csv-b')?.site, undefined);
});

test('web: the Nodes page, the site on host pages and forms, the node of each timeline event; a bad site in the form is refused', async () => {
  await node.core.store.users.add('ops', 'admin', hashUserPasswordSync('correct horse battery'));
  const agent = request.agent(base);
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const loginPage = await agent.get('/login');
  const signed = await agent
    .post('/login')
    .type('form')
    .send({ _csrf: csrfOf(loginPage.text), name: 'ops', password: 'correct horse battery', next: '/' });
  assert.equal(signed.status, 303, signed.text);

  const nodes = await agent.get('/nodes');
  assert.equal(nodes.status, 200);
  const self = /<td>([^<]+) <small class="muted">\(this node\)<\/small><\/td>\s*<td>dc1<\/td>\s*<td>alive<\/td>/.exec(
    nodes.text,
  );
  assert.ok(self, nodes.text.slice(nodes.text.indexOf('<table'), nodes.text.indexOf('</table>')));

  const hostPage = await agent.get(`/hosts/${DC1}`);
  assert.match(hostPage.text, /<dt>Site<\/dt><dd>dc1<\/dd>/);
  assert.ok(hostPage.text.includes(`<td>${self[1]}</td>`), 'the timeline names the node that saw each event');
  const list = await agent.get('/hosts');
  assert.match(list.text, /<td>dc2<\/td>/);

  const form = await agent.get(`/hosts/${ANY}/edit`);
  assert.match(form.text, /name="site" value=""/);
  const before = (await api('GET', `/hosts/${ANY}`)).text;
  for (const site of ['<script>', 'DC 1', 'x'.repeat(5000)]) {
    const r = await agent
      .post(`/hosts/${ANY}`)
      .type('form')
      .send({ _csrf: csrfOf(form.text), ...HOSTS[2], site, params: '' });
    assert.equal(r.status, 422, r.text.slice(0, 300));
    assert.match(r.text, /site: /);
    assert.ok(!r.text.includes('<script>'), 'the value is escaped');
  }
  assert.equal((await api('GET', `/hosts/${ANY}`)).text, before, 'nothing changed');
  const ok = await agent
    .post(`/hosts/${ANY}`)
    .type('form')
    .send({ _csrf: csrfOf(form.text), ...HOSTS[2], site: 'dc2', params: '' });
  assert.equal(ok.status, 303, ok.text.slice(0, 300));
  assert.equal((await node.core.hosts.get(ANY))?.site, 'dc2');
});
