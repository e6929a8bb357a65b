// The live template library: the shipped templates/ directory with the operator's own (templatesDir) laid over it,
// watched for edits. A file whose new version does not compile, or fails its probe render, keeps serving its last
// good version and its error (file:line) stays visible, as profiles do (src/profiles/catalog.ts).
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { watch } from 'chokidar';
import type { Logger } from '../log.ts';
import {
  compileLibrary,
  MAX_TEMPLATE_BYTES,
  MAX_TEMPLATES_PER_KIND,
  TEMPLATE_SUBDIRS,
  type TemplateError,
  type TemplateKind,
  type TemplateLibrary,
  type TemplateOrigin,
  type TemplateSource,
} from './templates.ts';

/** Renders what a library can render (each kickstart with the profiles that name it) and returns what failed. */
export type TemplateProbe = (lib: TemplateLibrary) => TemplateError[];

export interface TemplateDirs {
  shipped: string;
  overlay?: string;
}

/** Reads boot/, kickstart/ and snippets/ of each directory; a missing overlay sub-directory is simply empty. */
export function readTemplateDirs(dirs: TemplateDirs): { sources: TemplateSource[]; errors: TemplateError[] } {
  const sources: TemplateSource[] = [];
  const errors: TemplateError[] = [];
  const roots: [string, TemplateOrigin][] = [[dirs.shipped, 'shipped']];
  if (dirs.overlay) roots.push([dirs.overlay, 'overlay']);
  for (const [root, origin] of roots) {
    for (const kind of Object.keys(TEMPLATE_SUBDIRS) as TemplateKind[]) {
      const dir = join(root, TEMPLATE_SUBDIRS[kind]);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names
        .filter((n) => n.endsWith('.eta') && !n.startsWith('.'))
        .sort()
        .slice(0, MAX_TEMPLATES_PER_KIND + 1)) {
        const file = join(dir, name);
        try {
          const st = lstatSync(file);
          if (!st.isFile()) {
            errors.push({ file, message: 'is not a regular file (a symlink or a directory): left out' });
            continue;
          }
          if (st.size > MAX_TEMPLATE_BYTES) {
            errors.push({ file, message: `is ${st.size} bytes: a template has at most ${MAX_TEMPLATE_BYTES}` });
            continue;
          }
          sources.push({ kind, name, file, origin, text: readFileSync(file, 'utf8') });
        } catch (err) {
          errors.push({ file, message: `cannot be read: ${(err as Error).message}` });
        }
      }
    }
  }
  return { sources, errors };
}

/** A fresh library over `sources`: files whose probe render fails are refused one by one and keep their last good. */
export function nextLibrary(
  prev: TemplateLibrary | undefined,
  read: { sources: TemplateSource[]; errors: TemplateError[] },
  probe?: TemplateProbe,
): TemplateLibrary {
  const refuse = new Map<string, TemplateError>();
  let lib = compileLibrary(read.sources, prev, refuse);
  const files = new Set(read.sources.map((s) => s.file));
  for (let round = 0; probe && round < read.sources.length; round++) {
    const faults = probe(lib).filter((f) => files.has(f.file) && !refuse.has(f.file));
    if (!faults.length) break;
    for (const f of faults) refuse.set(f.file, f);
    lib = compileLibrary(read.sources, prev, refuse);
  }
  if (!read.errors.length) return lib;
  return Object.freeze({ ...lib, errors: Object.freeze([...read.errors, ...lib.errors]) });
}

export function formatTemplateError(e: TemplateError): string {
  return `${e.file}${e.line ? `:${e.line}` : ''}: ${e.message}`;
}

export class TemplateCatalog {
  private lib: TemplateLibrary;
  private watcher?: ReturnType<typeof watch>;
  private probe?: TemplateProbe;
  private readonly listeners = new Set<(l: TemplateLibrary) => void>();

  constructor(
    private readonly dirs: TemplateDirs,
    private readonly log: Logger,
  ) {
    this.lib = nextLibrary(undefined, readTemplateDirs(dirs));
    this.report();
  }

  get library(): TemplateLibrary {
    return this.lib;
  }

  get directories(): TemplateDirs {
    return this.dirs;
  }

  /** Sets the probe (it needs the renderer and the profiles, made after this) and reloads with it. */
  setProbe(probe: TemplateProbe): void {
    this.probe = probe;
    this.reload();
  }

  reload(): TemplateLibrary {
    try {
      this.lib = nextLibrary(this.lib, readTemplateDirs(this.dirs), this.probe);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'template reload failed; keeping the last good templates');
      return this.lib;
    }
    this.report();
    for (const l of this.listeners) l(this.lib);
    return this.lib;
  }

  onChange(l: (lib: TemplateLibrary) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Watches boot/, kickstart/ and snippets/ of both directories (editors that save by rename included). */
  async watch(): Promise<void> {
    const roots = [this.dirs.shipped, ...(this.dirs.overlay ? [this.dirs.overlay] : [])];
    this.watcher = watch(roots, {
      ignoreInitial: true,
      depth: 1,
      awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 },
    });
    this.watcher.on('all', (_event, path) => {
      if (path.endsWith('.eta') && !/[/\\]web[/\\]/.test(path)) this.reload();
    });
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    await this.watcher?.close();
  }

  private report(): void {
    const l = this.lib;
    this.log.info(
      {
        templates: l.entries.length,
        errors: l.errors.length,
        stale: l.entries.filter((e) => e.stale).map((e) => e.file),
      },
      'templates loaded',
    );
    for (const e of l.errors) {
      const keeping = l.entries.some((x) => x.file === e.file && x.stale)
        ? ' (still serving its last good version)'
        : '';
      this.log.error({ file: e.file, line: e.line }, `template error: ${formatTemplateError(e)}${keeping}`);
    }
  }
}
