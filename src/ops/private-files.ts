// The data directory holds the build-token secret, password hashes, session hashes and every host's
// record: 0700, and each file in it 0600, whatever the umask of whoever started rackboot (chmod and
// fchmod are not subject to the umask; open()'s mode is).
import { chmodSync, closeSync, existsSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ours = (uid: number) => typeof process.getuid !== 'function' || uid === process.getuid();

/** Creates the directory 0700, or takes group/world access away from one that is ours. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if ((st.mode & 0o077) !== 0 && ours(st.uid)) chmodSync(dir, 0o700);
}

/** Makes `file` 0600: created empty if missing (so SQLite, which gives -wal/-shm its database's mode, starts from it). */
export function ensurePrivateFile(file: string): void {
  if (!existsSync(file)) {
    const fd = openSync(file, 'a', 0o600);
    try {
      fchmodSync(fd, 0o600);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0 && ours(st.uid)) chmodSync(file, 0o600);
}

/** 0600 on the files that exist of a list (SQLite's -wal and -shm come and go). */
export function tightenIfPresent(files: string[]): void {
  for (const f of files) {
    try {
      if ((statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    } catch {
      /* not there */
    }
  }
}

/**
 * The fix for a secret.key that others can read, or undefined when it is private (or not made yet).
 * Anyone who reads it can mint every build token, and so fetch any host's kickstart.
 */
export function secretKeyProblem(dataDir: string): string | undefined {
  const file = join(dataDir, 'secret.key');
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  return (
    `${file} is readable by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): anyone who reads it can forge build tokens. ` +
    `Fix: chmod 600 ${file} (and, if others could read it, delete it to invalidate every build token in flight).`
  );
}
