// Golden files: test/golden/NAME; UPDATE_GOLDEN=1 rewrites them (review the diff before committing).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import assert from 'node:assert/strict';
import { REPO } from './core.ts';

export function assertGolden(name: string, actual: string): void {
  const file = join(REPO, 'test/golden', name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI && !existsSync(file))
      assert.fail(`golden file ${name} is missing: run UPDATE_GOLDEN=1 npm test and commit it`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.equal(
    actual,
    readFileSync(file, 'utf8'),
    `output differs from test/golden/${name} (UPDATE_GOLDEN=1 to accept)`,
  );
}
