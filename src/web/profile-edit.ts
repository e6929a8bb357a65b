// The profile editor's file side: check a proposed text against every other profile on disk (a
// change to a parent can break its children), and save atomically (temp file, fsync, rename) so the
// catalog's watcher only ever sees a whole file.
import {
  closeSync,
  existsSync,
  fchmodSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readProfileDir } from '../profiles/catalog.ts';
import { loadProfiles, PROFILE_NAME, type ProfileError } from '../profiles/load.ts';

export interface EditCheck {
  /** Errors in the edited profile itself. */
  errors: ProfileError[];
  /** Other profiles that load now but would not after this change (children of the edited one). */
  breaks: ProfileError[];
}

/** The file of a profile on disk (name.yaml, or name.yml if that is what exists). */
export function profileFile(dir: string, name: string): string {
  const yml = join(dir, `${name}.yml`);
  return existsSync(yml) && !existsSync(join(dir, `${name}.yaml`)) ? yml : join(dir, `${name}.yaml`);
}

export function readProfileText(dir: string, name: string): string | undefined {
  if (!PROFILE_NAME.test(name)) return undefined;
  try {
    return readFileSync(profileFile(dir, name), 'utf8');
  } catch {
    return undefined;
  }
}

export function checkProfileEdit(dir: string, name: string, text: string): EditCheck {
  if (!PROFILE_NAME.test(name)) {
    return {
      errors: [
        {
          profile: name,
          file: `${name}.yaml`,
          field: 'name',
          message:
            'a profile name must be lower-case letters, digits, ".", "_" or "-" (up to 63), starting with a letter or digit',
        },
      ],
      breaks: [],
    };
  }
  const current = readProfileDir(dir);
  const file = profileFile(dir, name);
  const proposed = current.filter((s) => s.name !== name).concat([{ name, file, text }]);
  const before = loadProfiles(current);
  const after = loadProfiles(proposed);
  const errors = after.errors.filter((e) => e.profile === name);
  const breaks = after.errors.filter((e) => e.profile !== name && before.profiles.has(e.profile));
  return { errors, breaks };
}

/** Writes name.yaml through a hidden temp file in the same directory, then renames it over the old one. */
export function saveProfileAtomic(dir: string, name: string, text: string): string {
  if (!PROFILE_NAME.test(name)) throw new Error(`"${name}" is not a profile name`);
  const file = profileFile(dir, name);
  // A leading dot and no .yaml suffix: neither readProfileDir nor the watcher's filter ever sees the temp file.
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  // Profiles hold the root hash and activation keys: never world-readable. Group read stays (0640) when
  // the file had it, so the group that manages profiles in git or config management can still read them.
  let mode = 0o640;
  try {
    mode = statSync(file).mode & 0o660;
  } catch {
    /* a new profile */
  }
  const fd = openSync(tmp, 'wx', mode);
  try {
    fchmodSync(fd, mode); // the umask must not decide it
    const data = Buffer.from(text.endsWith('\n') ? text : text + '\n', 'utf8');
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  // The rename itself survives power loss only once the directory is synced.
  try {
    const d = openSync(dir, 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    /* not every filesystem allows it */
  }
  return file;
}

/** Textarea input comes with CRLF line ends; files keep LF. */
export function normaliseText(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}
