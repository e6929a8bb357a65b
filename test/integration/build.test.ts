// The run-time build: `npm run build` (bin/build.mjs) bundles src/ and its packages into dist/, and bin/rackboot.mjs runs
// dist/ when it is current. Each case is a package root of its own in a temp dir (bin/, dist/, templates/,
// native/, node_modules/), so what runs is decided by what is there, as in a user's install.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';

const TOKEN = 'build-test-token';
let dist = '';
const roots: string[] = [];

before(() => {
  dist = join(tempDir('rackboot-dist-'), 'dist');
  const r = spawnSync(process.execPath, [join(REPO, 'bin/build.mjs'), dist], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
after(() => {
  for (const d of [...roots, join(dist, '..')]) rmSync(d, { recursive: true, force: true });
});

/** A package root: bin/ copied (it finds dist/ and src/ relative to itself), the rest linked from the repo. */
// The packages with native code, which the bundle leaves out, and what they load at run time.
const NATIVE_PACKAGES = ['better-sqlite3', 'bindings', 'file-uri-to-path', 'sockopt', 'node-gyp-build'];

function packageRoot(opts: { dist: boolean; src: boolean; tsx: boolean; nativeOnly?: boolean }): string {
  const root = tempDir('rackboot-root-');
  roots.push(root);
  cpSync(join(REPO, 'bin'), join(root, 'bin'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(root, 'package.json'));
  for (const d of ['templates', 'native']) symlinkSync(join(REPO, d), join(root, d));
  if (opts.dist) cpSync(dist, join(root, 'dist'), { recursive: true });
  if (opts.src) symlinkSync(join(REPO, 'src'), join(root, 'src'));
  if (opts.nativeOnly) {
    mkdirSync(join(root, 'node_modules'));
    for (const e of NATIVE_PACKAGES) symlinkSync(join(REPO, 'node_modules', e), join(root, 'node_modules', e));
  } else if (opts.tsx) symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  else {
    // What `npm prune --omit=dev` leaves, as far as the bin can tell: every package but tsx.
    mkdirSync(join(root, 'node_modules'));
    for (const e of readdirSync(join(REPO, 'node_modules')))
      if (e !== 'tsx' && e !== '.bin') symlinkSync(join(REPO, 'node_modules', e), join(root, 'node_modules', e));
  }
  return root;
}

const run = (root: string, ...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/rackboot.mjs'), ...args], { encoding: 'utf8', timeout: 60_000 });

test('build: dist/ is one bundle with its source map, and PostgreSQL in a chunk of its own', () => {
  assert.ok(existsSync(join(dist, 'main.js')) && existsSync(join(dist, 'main.js.map')));
  const files = readdirSync(dist).filter((f) => f.endsWith('.js'));
  // The PostgreSQL store is a chunk of its own: a SQLite node never loads it.
  assert.ok(
    files.some((f) => f.startsWith('pg-sql-')),
    files.join(' '),
  );
  const map = JSON.parse(readFileSync(join(dist, 'main.js.map'), 'utf8')) as { sources: string[] };
  assert.ok(
    map.sources.some((s) => s.endsWith('src/serve.ts')),
    'the map names the TypeScript sources',
  );
});

test('build: dist/ with only the native packages (no src/, no tsx, no other package) serves: templates, the web UI, the API', async () => {
  const root = packageRoot({ dist: true, src: false, tsx: false, nativeOnly: true });
  const dir = tempDir();
  roots.push(dir);
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  const [http, tftp] = [await freePort('tcp'), await freePort('udp')];
  const proc = spawn(
    process.execPath,
    [
      join(root, 'bin/rackboot.mjs'),
      'serve',
      '--listen',
      '127.0.0.1',
      '--http-port',
      String(http),
      '--tftp-port',
      String(tftp),
    ],
    { cwd: dir, env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    err += d;
  });
  try {
    const deadline = Date.now() + 30_000;
    while (!out.includes('rackboot serving')) {
      if (proc.exitCode !== null) throw new Error(`rackboot exited ${proc.exitCode}: ${out}${err}`);
      if (Date.now() > deadline) throw new Error(`rackboot did not start: ${out}${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.doesNotMatch(err, /tsx/);
    const base = `http://127.0.0.1:${http}`;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const def = await (await fetch(`${base}/tftp/pxelinux.cfg/default`)).text();
    assert.match(def, /LOCALBOOT 0/);
    const login = await fetch(`${base}/login`);
    assert.equal(login.status, 200);
    assert.match(await login.text(), /<form/);
    const api = (path: string, init: RequestInit = {}) =>
      fetch(base + path, {
        ...init,
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      });
    assert.equal(
      (
        await api('/api/hosts', {
          method: 'POST',
          body: JSON.stringify({ mac: '52:54:00:00:0b:01', hostname: 'b1', profile: 'rhvh-base' }),
        })
      ).status,
      201,
    );
    const b = (await (await api('/api/hosts/52:54:00:00:0b:01/build', { method: 'POST' })).json()) as {
      kickstartUrl: string;
    };
    const ks = await fetch(b.kickstartUrl.replace(/^http:\/\/[^/]+/, base), {
      headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 52:54:00:00:0b:01' },
    });
    assert.equal(ks.status, 200);
    assert.match(await ks.text(), /^liveimg --url=/m);
  } finally {
    proc.kill('SIGTERM');
    if (proc.exitCode === null) await once(proc, 'exit');
  }
});

test('build: a source newer than dist/ runs through tsx, and says so on stderr', () => {
  const root = packageRoot({ dist: true, src: true, tsx: true });
  utimesSync(join(root, 'dist/main.js'), new Date('2000-01-01'), new Date('2000-01-01'));
  const r = run(root, 'help');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: rackboot/);
  assert.match(
    r.stderr,
    /^rackboot: src\/\S+\.ts is newer than dist\/: running the TypeScript sources through tsx \(npm run build compiles them to dist\/\)\n$/,
  );
});

test('build: a current dist/ runs without a word, even with src/ and tsx beside it', () => {
  const root = packageRoot({ dist: true, src: true, tsx: true });
  const future = new Date(Date.now() + 3600_000);
  utimesSync(join(root, 'dist/main.js'), future, future);
  const r = run(root, 'help');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('build: without tsx, a stale dist/ still runs (with a warning), and a missing one is an error naming the fix', () => {
  const stale = packageRoot({ dist: true, src: true, tsx: false });
  utimesSync(join(stale, 'dist/main.js'), new Date('2000-01-01'), new Date('2000-01-01'));
  const s = run(stale, 'help');
  assert.equal(s.status, 0, s.stderr);
  assert.match(
    s.stderr,
    /is newer than dist\/, and tsx is not installed to run the sources: running the older build \(npm run build updates it\)/,
  );
  const missing = packageRoot({ dist: false, src: true, tsx: false });
  const m = run(missing, 'help');
  assert.equal(m.status, 1);
  assert.equal(m.stdout, '');
  assert.match(
    m.stderr,
    /dist\/main\.js is missing and tsx is not installed: run npm ci \(it builds dist\/\) or npm run build in /,
  );
});

test('build: no dist/ in a dev checkout runs the sources through tsx with a note', () => {
  const root = packageRoot({ dist: false, src: true, tsx: true });
  const r = run(root, 'help');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^rackboot: dist\/ is not built: running the TypeScript sources through tsx/);
});
