import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileLibrary, MAX_INCLUDE_DEPTH, type TemplateSource } from '../../src/render/templates.ts';
import { nextLibrary, readTemplateDirs, TemplateCatalog } from '../../src/render/template-catalog.ts';
import { createRenderer, type BuildContext } from '../../src/render/render.ts';
import { templateProbe } from '../../src/render/probe.ts';
import { escapes } from '../../src/render/escape.ts';
import { readProfileDir } from '../../src/profiles/catalog.ts';
import { applyHostParams, loadProfiles } from '../../src/profiles/load.ts';
import { profileSchema } from '../../src/profiles/schema.ts';
import { silentLogger } from '../../src/log.ts';
import type { Mac } from '../../src/net/mac.ts';
import { REPO, tempDir } from '../support/core.ts';
import { assertGolden } from '../support/golden.ts';
import { ksValidate, verifyKickstart } from '../support/kickstart-check.ts';

const SHIPPED = join(REPO, 'templates');
const set = loadProfiles(readProfileDir(join(REPO, 'profiles')));
const images = () => undefined;

function ctx(profileName: string, params: Record<string, string> = {}): BuildContext {
  const r = applyHostParams(set.profiles.get(profileName)!, params, 'rhvh01');
  assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
  return {
    host: {
      mac: '52:54:00:aa:bb:01' as Mac,
      hostname: 'rhvh01',
      ip: '10.99.0.11',
      netmask: '255.255.255.0',
      gateway: '10.99.0.1',
      nameservers: [],
    },
    profileName,
    profile: r.profile as BuildContext['profile'],
    buildId: 42,
    token: 'TESTTOKEN',
    baseUrl: 'http://10.99.0.1:8080',
  };
}

/** A templates directory: a copy of the shipped one, plus the files given (relative path -> text). */
function overlayDir(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

const src = (kind: TemplateSource['kind'], name: string, text: string): TemplateSource => ({
  kind,
  name,
  file: `/ops/templates/${kind === 'snippet' ? 'snippets' : kind}/${name}`,
  origin: 'overlay',
  text,
});

/** A kickstart template of the operator's own: the shipped one with a snippet of theirs added to %post. */
const shippedKs = readFileSync(join(SHIPPED, 'kickstart/rhvh.ks.eta'), 'utf8');
const ownKs = shippedKs.replace(
  'rackboot_step post-done\n',
  "<%~ include('site-motd', it) %>rackboot_step post-done\n",
);
const motd = "echo <%= it.esc.sh('Provisioned by rackboot: ' + it.host.hostname) %> > /etc/motd\n";

test('every shipped snippet renders alone to its golden file, and the kickstarts using it pass ksvalidator', (t) => {
  const lib = nextLibrary(undefined, readTemplateDirs({ shipped: SHIPPED }));
  assert.deepEqual(lib.errors, []);
  const snippets = readdirSync(join(SHIPPED, 'snippets')).filter((f) => f.endsWith('.eta'));
  assert.deepEqual(lib.names('snippet'), snippets.sort());
  // Each snippet with a profile that uses it, as the kickstart would give it.
  const withProfile: Record<string, string> = {
    'custom-layout.eta': 'rhvh-custom-thin',
    'satellite-register.eta': 'rhvh-stig-satellite',
  };
  for (const name of snippets) {
    const c = ctx(withProfile[name] ?? 'rhvh-base');
    const data = {
      esc: escapes,
      layout: c.profile.partitioning,
      profile: c.profile,
      host: c.host,
      network: { fqdn: 'rhvh01.example.com' },
    };
    assertGolden(`snippet-${name.replace(/\.eta$/, '')}.txt`, lib.render('snippet', name, data));
  }
  // The kickstart and boot templates have their goldens in render.test.ts (grub-default here); each shipped file has one.
  const renderer = createRenderer(SHIPPED);
  assertGolden('grub-default.cfg', renderer.defaultConfig('grub', 'unknown machine: booting the local disk'));
  const golden = readdirSync(join(REPO, 'test/golden'));
  for (const f of readdirSync(join(SHIPPED, 'boot'))) {
    const stem = f.replace(/\.eta$/, '');
    assert.ok(
      golden.some((g) => g.startsWith(stem)),
      `boot/${f} has no golden file`,
    );
  }
  assert.ok(golden.some((g) => g.startsWith('kickstart-')));
  const texts = ['rhvh-base', 'rhvh-custom-thin', 'rhvh-stig-satellite'].map((p) => {
    const r = renderer.kickstart(ctx(p));
    assert.ok(r.ok, r.ok ? '' : r.error);
    return r.ok ? r.text : '';
  });
  const r = ksValidate(texts);
  if (r === 'skipped') t.diagnostic('ksvalidator not found');
  else assert.equal(r, undefined, r);
});

test("an operator's templates directory overlays the shipped one; a profile names its own kickstart and snippets", (t) => {
  const overlay = overlayDir({ 'kickstart/site.ks.eta': ownKs, 'snippets/site-motd.eta': motd });
  const lib = nextLibrary(undefined, readTemplateDirs({ shipped: SHIPPED, overlay }));
  assert.deepEqual(lib.errors, []);
  const entry = lib.entries.find((e) => e.name === 'site.ks.eta');
  assert.equal(entry?.origin, 'overlay');
  assert.equal(lib.entries.find((e) => e.name === 'rhvh.ks.eta')?.origin, 'shipped');
  const renderer = createRenderer(() => lib);
  const c = ctx('rhvh-base', { kickstart: 'site.ks.eta' });
  const r = renderer.kickstart(c);
  assert.ok(r.ok, r.ok ? '' : r.error);
  if (!r.ok) return;
  assert.match(r.text, /^echo 'Provisioned by rackboot: rhvh01' > \/etc\/motd$/m);
  const v = ksValidate([r.text]);
  if (v !== 'skipped') assert.equal(v, undefined, v);
  else t.diagnostic('ksvalidator not found');
  // The default kickstart is untouched.
  assert.doesNotMatch((renderer.kickstart(ctx('rhvh-base')) as { text: string }).text, /motd/);

  // An overlay file of the same name replaces the shipped one, and says so.
  const over = overlayDir({ 'boot/pxelinux-local.eta': 'DEFAULT local\nLABEL local\n  LOCALBOOT 0\n# site\n' });
  const lib2 = nextLibrary(undefined, readTemplateDirs({ shipped: SHIPPED, overlay: over }));
  const local = lib2.entries.find((e) => e.name === 'pxelinux-local.eta');
  assert.equal(local?.origin, 'overlay');
  assert.equal(local?.overrides, join(SHIPPED, 'boot/pxelinux-local.eta'));
  assert.match(createRenderer(() => lib2).localConfig('pxelinux', 'x'), /# site/);
});

test('an operator kickstart is held to the syntax and RHVH rules: one that drops nodectl init is refused', () => {
  const lib = compileLibrary([
    ...readTemplateDirs({ shipped: SHIPPED }).sources,
    src('kickstart', 'bad.ks.eta', shippedKs.replace('nodectl init\n', '')),
  ]);
  const r = createRenderer(() => lib).kickstart(ctx('rhvh-base', { kickstart: 'bad.ks.eta' }));
  assert.ok(!r.ok && /bad\.ks\.eta\) fails its check: .*nodectl init/.test(r.error), r.ok ? '' : r.error);
  assert.equal(r.ok ? '' : r.file, '/ops/templates/kickstart/bad.ks.eta');
  // and the shipped one still passes the exact shape check
  const ok = createRenderer(() => lib).kickstart(ctx('rhvh-base'));
  assert.ok(ok.ok && verifyKickstart(ok.text, ctx('rhvh-base').profile).length === 0);
});

test('a template name in a profile is a plain file name: paths, NUL, control characters and huge names are refused', () => {
  const base = set.profiles.get('rhvh-base')!.merged;
  const worst: [string, RegExp][] = [
    ['../../etc/passwd.eta', /is a path/],
    ['/etc/rackboot/x.ks.eta', /is a path/],
    ['..\\x.eta', /is a path/],
    ['x\u0000.eta', /U\+0000 \(null\)/],
    ['x\n.eta', /U\+000A \(line feed\)/],
    ['a'.repeat(5000) + '.eta', /5004 characters long/],
    ['rhvh.ks', /ending in \.eta/],
    ['.hidden.eta', /ending in \.eta/],
    ['', /ending in \.eta/],
  ];
  for (const [value, expected] of worst) {
    const r = profileSchema.safeParse({ ...base, kickstart: value });
    assert.equal(r.success, false, value);
    if (r.success) continue;
    assert.equal(r.error.issues[0].path.join('.'), 'kickstart');
    assert.match(r.error.issues[0].message, expected, `${value.slice(0, 40)}: ${r.error.issues[0].message}`);
  }
  assert.ok(profileSchema.safeParse({ ...base, kickstart: 'my-rhvh.ks.eta' }).success);
  // A host parameter goes through the same grammar.
  const viaParam = applyHostParams(set.profiles.get('rhvh-base')!, { kickstart: '../x.eta' }, 'rhvh01');
  assert.ok(!viaParam.ok && /kickstart.*is a path/.test(viaParam.errors[0]!));
});

test('a profile naming a template that is not loaded is refused with the templates there are', () => {
  const r = createRenderer(SHIPPED).kickstart(ctx('rhvh-base', { kickstart: 'nope.ks.eta' }));
  assert.ok(
    !r.ok && /names the kickstart template nope\.ks\.eta, which is not loaded \(templates: rhvh\.ks\.eta/.test(r.error),
  );
});

test('broken templates are refused with file:line: syntax, JavaScript, a throw, a missing snippet, loops, depth', () => {
  const shipped = readTemplateDirs({ shipped: SHIPPED }).sources;
  const compileErr = (text: string) => compileLibrary([src('snippet', 'x.eta', text)]).errors[0];
  const unclosed = compileErr('line one\nline two <%= it.a \n');
  assert.equal(unclosed?.file, '/ops/templates/snippets/x.eta');
  assert.equal(unclosed?.line, 2);
  assert.match(unclosed!.message, /unclosed tag/);
  const js = compileErr('one\ntwo\n<% if (it.a) { %>\nthree\n<% } } %>\n');
  assert.equal(js?.line, 5, js?.message);
  assert.match(js!.message, /JavaScript in the template: /);
  const js2 = compileErr('one\ntwo\n<% let x = ; %>\nthree\n');
  assert.ok(js2?.line === 3 && /JavaScript in the template: Unexpected token ';'/.test(js2.message), js2?.message);
  const nul = compileErr('a\nb\u0000\n');
  assert.ok(nul?.line === 2 && /NUL/.test(nul.message));
  assert.match(compileErr('x'.repeat(300_000))!.message, /bytes: a template has at most 262144/);

  const render = (snippets: Record<string, string>, ks = "text\n<%~ include('a', it) %>\n") => {
    const lib = compileLibrary([
      ...shipped,
      src('kickstart', 'k.ks.eta', ks),
      ...Object.entries(snippets).map(([n, t]) => src('snippet', `${n}.eta`, t)),
    ]);
    assert.deepEqual(lib.errors, []);
    return createRenderer(() => lib).kickstart(ctx('rhvh-base', { kickstart: 'k.ks.eta' }));
  };
  const throws = render({ a: 'ok\nok\n<% throw new Error("boom") %>\n' });
  assert.ok(!throws.ok && throws.file === '/ops/templates/snippets/a.eta' && throws.line === 3, JSON.stringify(throws));
  assert.match(throws.ok ? '' : throws.error, /snippets\/a\.eta:3: boom/);
  const undef = render({ a: '\n<%= it.nothing.here %>' });
  assert.ok(!undef.ok && /snippets\/a\.eta:2: .*(undefined|reading 'here')/.test(undef.error), JSON.stringify(undef));
  const missing = render({ a: "one\n<%~ include('gone', it) %>" });
  assert.ok(!missing.ok && /snippets\/a\.eta:2: include\("gone"\): there is no snippet gone\.eta/.test(missing.error));
  assert.match(missing.ok ? '' : missing.error, /snippets: custom-layout, netboot-first, satellite-register, a\)/);
  const loop = render({ a: "<%~ include('b', it) %>", b: "\n<%~ include('a', it) %>" });
  assert.ok(
    !loop.ok && /snippets\/b\.eta:2: include\("a"\) loops: k\.ks\.eta -> a\.eta -> b\.eta -> a\.eta/.test(loop.error),
    JSON.stringify(loop),
  );
  const self = render({ a: "<%~ include('a', it) %>" });
  assert.ok(!self.ok && /loops: k\.ks\.eta -> a\.eta -> a\.eta/.test(self.error));
  const chain: Record<string, string> = {};
  for (let i = 0; i < MAX_INCLUDE_DEPTH + 2; i++) chain[i ? `s${i}` : 'a'] = `<%~ include('s${i + 1}', it) %>`;
  chain[`s${MAX_INCLUDE_DEPTH + 2}`] = 'end';
  const deep = render(chain);
  assert.ok(!deep.ok && /nest deeper than 16/.test(deep.error), JSON.stringify(deep));
  const path = render({ a: "<%~ include('../../etc/passwd', it) %>" });
  assert.ok(!path.ok && /snippet name is a path/.test(path.error));
  const huge = render({ a: "<%~ 'x'.repeat(5 * 1024 * 1024) %>" });
  assert.ok(!huge.ok && /rendered more than/.test(huge.error));
});

test('last good: a broken edit keeps serving the previous version of that file, with the error; a fix takes over', () => {
  const shipped = readTemplateDirs({ shipped: SHIPPED }).sources;
  const good = compileLibrary([
    ...shipped,
    src('snippet', 'site-motd.eta', motd),
    src('kickstart', 'site.ks.eta', ownKs),
  ]);
  const c = ctx('rhvh-base', { kickstart: 'site.ks.eta' });
  const broken = nextLibrary(good, {
    sources: [
      ...shipped,
      src('snippet', 'site-motd.eta', 'echo <%= it.esc.sh(\n'),
      src('kickstart', 'site.ks.eta', ownKs),
    ],
    errors: [],
  });
  assert.equal(broken.errors.length, 1);
  assert.equal(broken.errors[0]!.file, '/ops/templates/snippets/site-motd.eta');
  assert.ok(broken.entries.find((e) => e.name === 'site-motd.eta')?.stale);
  const r = createRenderer(() => broken).kickstart(c);
  assert.ok(r.ok && /Provisioned by rackboot/.test(r.text), 'the last good snippet serves');

  // A version that compiles but throws when rendered is refused by the probe, and the last good serves too.
  const probe = templateProbe({
    profiles: () =>
      [...set.profiles.values()].map((p) => ({ ...p, profile: { ...p.profile, kickstart: 'site.ks.eta' } })),
    images,
  });
  const throwing = nextLibrary(
    good,
    {
      sources: [
        ...shipped,
        src('snippet', 'site-motd.eta', 'a\n<% throw new Error("no motd today") %>'),
        src('kickstart', 'site.ks.eta', ownKs),
      ],
      errors: [],
    },
    probe,
  );
  assert.ok(
    throwing.errors.some(
      (e) => e.file === '/ops/templates/snippets/site-motd.eta' && e.line === 2 && /no motd today/.test(e.message),
    ),
    JSON.stringify(throwing.errors),
  );
  assert.ok(throwing.entries.find((e) => e.name === 'site-motd.eta')?.stale);
  const still = createRenderer(() => throwing).kickstart(c);
  assert.ok(still.ok && /Provisioned by rackboot/.test(still.text));

  const fixed = nextLibrary(
    throwing,
    {
      sources: [...shipped, src('snippet', 'site-motd.eta', 'echo fixed\n'), src('kickstart', 'site.ks.eta', ownKs)],
      errors: [],
    },
    probe,
  );
  assert.deepEqual(fixed.errors, []);
  const now = createRenderer(() => fixed).kickstart(c);
  assert.ok(now.ok && /^echo fixed$/m.test(now.text));
});

test('hot reload: an edit on disk is served at the next render; a broken edit is refused with file:line', async () => {
  const shipped = tempDir();
  cpSync(SHIPPED, shipped, { recursive: true });
  const overlay = overlayDir({ 'kickstart/site.ks.eta': ownKs, 'snippets/site-motd.eta': motd });
  const catalog = new TemplateCatalog({ shipped, overlay }, silentLogger());
  catalog.setProbe(templateProbe({ profiles: () => set.profiles.values(), images }));
  await catalog.watch();
  try {
    const renderer = createRenderer(() => catalog.library);
    const c = ctx('rhvh-base', { kickstart: 'site.ks.eta' });
    const until = async (what: string, ok: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!ok()) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    writeFileSync(join(overlay, 'snippets/site-motd.eta'), 'echo second version\n');
    await until('the edit', () => {
      const r = renderer.kickstart(c);
      return r.ok && /^echo second version$/m.test(r.text);
    });
    writeFileSync(join(overlay, 'snippets/site-motd.eta'), 'one\ntwo\n<%= it.esc.sh( %>\n');
    await until('the error', () => catalog.library.errors.length > 0);
    const err = catalog.library.errors[0]!;
    assert.equal(err.file, join(overlay, 'snippets/site-motd.eta'));
    assert.equal(err.line, 3, err.message);
    const r = renderer.kickstart(c);
    assert.ok(r.ok && /^echo second version$/m.test(r.text), 'the last good version keeps serving');
    // A new kickstart template appears without a restart.
    writeFileSync(join(overlay, 'kickstart/other.ks.eta'), ownKs);
    await until('the new file', () => catalog.library.has('kickstart', 'other.ks.eta'));
  } finally {
    await catalog.close();
  }
});

test('effective profile: each value and where it comes from (host parameter, the profile, its parent, the default)', async () => {
  const { effectiveProfile } = await import('../../src/profiles/effective.ts');
  const loaded = set.profiles.get('rhvh-custom-thin')!;
  const params = { 'boot.kernelArgs': 'inst.text', ntpServers: '[ntp1.example.com]' };
  const r = applyHostParams(loaded, params, 'rhvh01');
  assert.ok(r.ok);
  if (!r.ok) return;
  const rows = new Map(effectiveProfile(loaded, r.profile, params, 'rhvh01').map((v) => [v.field, v]));
  assert.deepEqual(rows.get('boot.kernelArgs'), {
    field: 'boot.kernelArgs',
    value: 'inst.text',
    source: 'host',
    from: 'rhvh01 parameter boot.kernelArgs',
  });
  assert.deepEqual(rows.get('ntpServers')?.value, ['ntp1.example.com']);
  assert.equal(rows.get('ntpServers')?.source, 'host');
  assert.equal(rows.get('partitioning.volgroup')?.source, 'profile');
  assert.equal(rows.get('partitioning.volgroup')?.from, 'rhvh-custom-thin');
  assert.equal(rows.get('partitioning.volumes')?.source, 'profile', 'a list is one value');
  assert.equal(rows.get('boot.hostKernelArgs')?.source, 'parent');
  assert.equal(rows.get('boot.hostKernelArgs')?.from, 'rhvh-base');
  assert.equal(rows.get('boot.hostKernelArgs')?.file, join(REPO, 'profiles/rhvh-base.yaml'));
  assert.equal(rows.get('image.kernel')?.source, 'parent');
  assert.deepEqual(
    [rows.get('stig.enabled')?.source, rows.get('stig.enabled')?.value],
    ['default', false],
    'a field no file sets is the default',
  );
  assert.deepEqual([rows.get('kickstart')?.value, rows.get('kickstart')?.source], ['rhvh.ks.eta', 'default']);
  // Without host parameters nothing is "host".
  const plain = effectiveProfile(loaded, loaded.profile);
  assert.ok(plain.every((v) => v.source !== 'host'));
  assert.equal(plain.find((v) => v.field === 'boot.kernelArgs')?.source, 'parent');
});

test('templates list: which profile uses which template, and profiles naming a missing one', async () => {
  const { templateReport, formatTemplateReport } = await import('../../src/render/usage.ts');
  const overlay = overlayDir({ 'kickstart/site.ks.eta': ownKs, 'snippets/site-motd.eta': motd });
  const lib = nextLibrary(undefined, readTemplateDirs({ shipped: SHIPPED, overlay }));
  const profiles = [...set.profiles.values()].map((p) =>
    p.name === 'rhvh-base' ? { ...p, profile: { ...p.profile, kickstart: 'site.ks.eta' } } : p,
  );
  profiles.push({ ...profiles[1]!, name: 'lost', profile: { ...profiles[1]!.profile, kickstart: 'gone.ks.eta' } });
  const r = templateReport(lib, profiles);
  const byName = new Map(r.templates.map((t) => [t.name, t]));
  assert.deepEqual(byName.get('site.ks.eta')?.profiles, ['rhvh-base']);
  assert.deepEqual(byName.get('rhvh.ks.eta')?.profiles, ['rhvh-custom-thin', 'rhvh-stig-satellite']);
  assert.equal(byName.get('site-motd.eta')?.kind, 'snippet');
  assert.deepEqual(r.missing, [{ profile: 'lost', template: 'gone.ks.eta' }]);
  const text = formatTemplateReport(r);
  assert.ok(
    text.out.some((l) => /^kickstart +site\.ks\.eta .*\(overlay\) +used by: rhvh-base$/.test(l)),
    text.out.join('\n'),
  );
  assert.match(text.err.join('\n'), /profile lost names the kickstart template gone\.ks\.eta, which is not loaded/);
});
