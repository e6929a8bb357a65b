// The live set of profiles: read profiles/*.yaml, watch for edits, swap in a new frozen snapshot.
// A profile whose new version is broken keeps serving its last good version; the error stays visible.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { watch } from 'chokidar';
import type { Logger } from '../log.ts';
import { formatProfileError, loadProfiles, type LoadedProfile, type ProfileError, type ProfileSource } from './load.ts';

export interface ProfileSnapshot {
  profiles: ReadonlyMap<string, LoadedProfile>;
  /** Errors of the files on disk now; a profile listed here may still serve its last good version. */
  errors: readonly ProfileError[];
  /** Profiles serving an older version because the file on disk is broken. */
  stale: readonly string[];
  loadedAt: number;
}

export function readProfileDir(dir: string): ProfileSource[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new Error(`cannot read the profiles directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return names
    .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))
    .sort()
    .map((n) => ({
      name: n.replace(/\.ya?ml$/, ''),
      file: join(dir, n),
      text: readFileSync(join(dir, n), 'utf8'),
    }));
}

/** Combines a fresh load with the previous snapshot: broken profiles keep their last good version. */
export function nextSnapshot(
  prev: ProfileSnapshot | undefined,
  sources: ProfileSource[],
  now: number,
): ProfileSnapshot {
  const fresh = loadProfiles(sources);
  const onDisk = new Set(sources.map((s) => s.name));
  const profiles = new Map(fresh.profiles);
  const stale: string[] = [];
  for (const [name, old] of prev?.profiles ?? []) {
    if (!profiles.has(name) && onDisk.has(name)) {
      profiles.set(name, old);
      stale.push(name);
    }
  }
  return Object.freeze({
    profiles,
    errors: Object.freeze([...fresh.errors]),
    stale: Object.freeze(stale),
    loadedAt: now,
  });
}

export class ProfileCatalog {
  private snap: ProfileSnapshot;
  private watcher?: ReturnType<typeof watch>;
  private readonly listeners = new Set<(s: ProfileSnapshot) => void>();

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    this.snap = nextSnapshot(undefined, readProfileDir(dir), Date.now());
    this.report();
  }

  get snapshot(): ProfileSnapshot {
    return this.snap;
  }
  get(name: string): LoadedProfile | undefined {
    return this.snap.profiles.get(name);
  }

  reload(): ProfileSnapshot {
    try {
      this.snap = nextSnapshot(this.snap, readProfileDir(this.dir), Date.now());
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'profile reload failed; keeping the last good profiles');
      return this.snap;
    }
    this.report();
    for (const l of this.listeners) l(this.snap);
    return this.snap;
  }

  onChange(l: (s: ProfileSnapshot) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Watches the directory; editors that save by rename (vim, the UI's atomic save) are covered by awaitWriteFinish. */
  async watch(): Promise<void> {
    this.watcher = watch(this.dir, {
      ignoreInitial: true,
      depth: 0,
      awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 },
    });
    this.watcher.on('all', (_event, path) => {
      if (/\.ya?ml$/.test(path)) this.reload();
    });
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    await this.watcher?.close();
  }

  private report(): void {
    const s = this.snap;
    this.log.info({ profiles: [...s.profiles.keys()], errors: s.errors.length, stale: s.stale }, 'profiles loaded');
    for (const e of s.errors) {
      const keeping = s.stale.includes(e.profile) ? ' (still serving its last good version)' : '';
      this.log.error(
        { profile: e.profile, file: e.file, line: e.line, field: e.field },
        `profile error: ${formatProfileError(e)}${keeping}`,
      );
    }
  }
}
