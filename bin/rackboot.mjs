#!/usr/bin/env node
// rackboot runs the compiled JavaScript in dist/, which `npm ci` builds ("prepare": npm run build).
// In a checkout where a source under src/ is newer than the build, dist/ would run old code: then the
// sources run through tsx (a development dependency), and a line on stderr says so and how to rebuild.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist', 'main.js');
const sources = join(root, 'src');

/** The newest .ts under src/ (path and mtime), or undefined when there is no src/ (an install of dist/ only). */
function newestSource(dir) {
  let newest;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    const found = e.isDirectory()
      ? newestSource(p)
      : e.name.endsWith('.ts')
        ? { path: p, mtimeMs: statSync(p).mtimeMs }
        : undefined;
    if (found && (!newest || found.mtimeMs > newest.mtimeMs)) newest = found;
  }
  return newest;
}

async function fromSources(why) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    return false;
  }
  process.stderr.write(
    `rackboot: ${why}: running the TypeScript sources through tsx (npm run build compiles them to dist/)\n`,
  );
  register();
  await import('../src/main.ts');
  return true;
}

const builtAt = existsSync(built) ? statSync(built).mtimeMs : undefined;
const newest = newestSource(sources);
if (builtAt === undefined) {
  if (!newest || !(await fromSources('dist/ is not built'))) {
    process.stderr.write(
      `rackboot: ${built} is missing and tsx is not installed: run npm ci (it builds dist/) or npm run build in ${root}\n`,
    );
    process.exit(1);
  }
} else if (newest && newest.mtimeMs > builtAt) {
  const why = `${newest.path.slice(root.length)} is newer than dist/`;
  if (!(await fromSources(why))) {
    process.stderr.write(
      `rackboot: ${why}, and tsx is not installed to run the sources: running the older build (npm run build updates it)\n`,
    );
    process.setSourceMapsEnabled(true);
    await import(pathToFileURL(built).href);
  }
} else {
  // Stack traces then name src/*.ts lines (dist/ ships its .map files).
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(built).href);
}
