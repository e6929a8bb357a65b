// The checker moved to src/render/kickstart-check.ts (startBuild and the kickstart route run it); tests import it here.
// pykickstart's ksvalidator, when ../shared/tools/ksvalidator exists, checks the same texts (see ksValidate).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO } from './core.ts';

export {
  checkKickstart,
  checkRhvhKickstart,
  verifyKickstart,
  expectedShape,
  words,
} from '../../src/render/kickstart-check.ts';
export type { KsSummary } from '../../src/render/kickstart-check.ts';

// ../shared beside the checkout; a git worktree under /work/wt/NAME has it one level further up.
export const KSVALIDATOR =
  [
    process.env.RACKBOOT_KSVALIDATOR,
    resolve(REPO, '../shared/tools/ksvalidator'),
    resolve(REPO, '../../shared/tools/ksvalidator'),
  ].find((p): p is string => !!p && existsSync(p)) ?? resolve(REPO, '../shared/tools/ksvalidator');
let announced = false;

/**
 * pykickstart's validator for RHEL 7 on each text: undefined when all are valid, else the output of the failing ones.
 * When the tool is absent it says so once on stderr and returns 'skipped' (the project's own checker still ran).
 */
export function ksValidate(texts: string[]): string | undefined | 'skipped' {
  if (!existsSync(KSVALIDATOR)) {
    if (!announced) {
      process.stderr.write(`# ksvalidator not found at ${KSVALIDATOR}: pykickstart check skipped\n`);
      announced = true;
    }
    return 'skipped';
  }
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-ks-'));
  try {
    const files = texts.map((t, i) => {
      const f = join(dir, `ks${i}.cfg`);
      writeFileSync(f, t);
      return f;
    });
    const failures: string[] = [];
    // One process per file: ksvalidator stops at the first invalid file otherwise, and says which only in its text.
    for (const f of files) {
      const r = spawnSync(KSVALIDATOR, ['-v', 'RHEL7', f], { encoding: 'utf8', cwd: dir });
      if (r.error) return `ksvalidator did not run: ${r.error.message}`;
      if (r.status !== 0) failures.push(`${f}: exit ${r.status}\n${r.stdout}${r.stderr}`);
    }
    return failures.length ? failures.join('\n') : undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
