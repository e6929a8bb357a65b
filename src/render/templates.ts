// The template library: boot configs, kickstarts and snippets, compiled once per (re)load. Pure over sources: the
// files come in as text (template-catalog.ts reads and watches the disk). A template reaches other templates only by
// name through this library, never through the file system, so an include cannot name a path.
import { Script } from 'node:vm';
import { Eta } from 'eta';
import { EscapeError } from './escape.ts';
import { checkTemplateName } from '../profiles/grammar.ts';

export type TemplateKind = 'boot' | 'kickstart' | 'snippet';
/** The sub-directory of a templates directory that holds each kind. */
export const TEMPLATE_SUBDIRS: Record<TemplateKind, string> = {
  boot: 'boot',
  kickstart: 'kickstart',
  snippet: 'snippets',
};
export type TemplateOrigin = 'shipped' | 'overlay';

export interface TemplateSource {
  kind: TemplateKind;
  /** The file name, e.g. rhvh.ks.eta. */
  name: string;
  /** Where it was read from, for errors. */
  file: string;
  origin: TemplateOrigin;
  text: string;
}

export interface TemplateError {
  file: string;
  line?: number;
  message: string;
}

export { DEFAULT_KICKSTART_TEMPLATE } from '../profiles/schema.ts';
/** Largest template file read (bytes): a kickstart template is a few KiB. */
export const MAX_TEMPLATE_BYTES = 256 * 1024;
/** Templates per kind: a directory of thousands is a mistake, not a library. */
export const MAX_TEMPLATES_PER_KIND = 500;
/** Includes nested deeper than this are refused (a loop is refused at once). */
export const MAX_INCLUDE_DEPTH = 16;
/** Largest text one render may produce. */
export const MAX_RENDERED_BYTES = 4 * 1024 * 1024;

export { checkTemplateName };

/** A failure inside a template, with the file and line it happened at. */
export class TemplateFault extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${reason}`);
  }
}

type Compiled = (this: Eta, data: object, options: object) => string;

export interface TemplateEntry {
  kind: TemplateKind;
  name: string;
  file: string;
  origin: TemplateOrigin;
  /** The shipped file this one replaces, when an overlay file has the same name. */
  overrides?: string;
  /** Serving the last good version: the file on disk is broken (its error is in `errors`). */
  stale: boolean;
}

export interface TemplateLibrary {
  readonly entries: readonly TemplateEntry[];
  readonly errors: readonly TemplateError[];
  has(kind: TemplateKind, name: string): boolean;
  names(kind: TemplateKind): string[];
  /** Renders one template; throws TemplateFault (file:line) or EscapeError. */
  render(kind: TemplateKind, name: string, data: object): string;
}

interface Meta {
  chain?: string[];
  filepath?: string;
}

interface Item {
  entry: TemplateEntry;
  text: string;
  fn: Compiled;
}

const keyOf = (kind: TemplateKind, name: string) => `${kind}:${name}`;

/** An include names a snippet: "custom-layout", "@custom-layout" and "custom-layout.eta" are the same one. */
function snippetName(ref: string): string {
  const bare = ref.replace(/^@/, '');
  return bare.endsWith('.eta') ? bare : `${bare}.eta`;
}

function newEngine(): Eta {
  // autoEscape off: these are not HTML (an "&" in a URL stays "&"). debug keeps the line of each tag for errors.
  const eta = new Eta({ autoEscape: false, autoTrim: false, cache: false, debug: true });
  eta.RuntimeErr = (orig: Error, _str: string, line: number, file: string) => {
    if (orig instanceof TemplateFault || orig instanceof EscapeError) throw orig;
    throw new TemplateFault(file, line, orig.message);
  };
  return eta;
}

/** The template line of a JavaScript syntax error in a compiled template (eta says none). */
function syntaxErrorLine(eta: Eta, text: string): number | undefined {
  const body = `(function (it, options) {\n${eta.compileToString(text)}\n})`;
  try {
    new Script(body, { filename: 'template.js' });
    return undefined;
  } catch (err) {
    const m = /template\.js:(\d+)/.exec((err as Error).stack ?? '');
    if (!m) return undefined;
    const lines = body.split('\n').slice(0, Number(m[1]));
    for (let i = lines.length - 1; i >= 0; i--) {
      const tag = /^__eta\.line=(\d+)$/.exec(lines[i]!);
      if (tag) return Number(tag[1]);
    }
    return 1;
  }
}

function compileOne(eta: Eta, src: TemplateSource): { ok: true; fn: Compiled } | { ok: false; error: TemplateError } {
  const bytes = Buffer.byteLength(src.text);
  if (bytes > MAX_TEMPLATE_BYTES)
    return {
      ok: false,
      error: { file: src.file, message: `is ${bytes} bytes: a template has at most ${MAX_TEMPLATE_BYTES}` },
    };
  if (src.text.includes('\u0000'))
    return {
      ok: false,
      error: { file: src.file, line: lineAt(src.text, src.text.indexOf('\u0000')), message: 'contains a NUL byte' },
    };
  try {
    return { ok: true, fn: eta.compile(src.text) as unknown as Compiled };
  } catch (err) {
    const message = (err as Error).message;
    const parse = /^([^\n]*?) at line (\d+) col \d+/.exec(message);
    if (parse)
      return { ok: false, error: { file: src.file, line: Number(parse[2]), message: `template syntax: ${parse[1]}` } };
    const js = /^Bad template syntax\n\n([^\n]*)/.exec(message);
    if (js)
      return {
        ok: false,
        error: {
          file: src.file,
          line: syntaxErrorLine(eta, src.text),
          message: `JavaScript in the template: ${js[1]}`,
        },
      };
    return { ok: false, error: { file: src.file, message } };
  }
}

function lineAt(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

/** Overlay files replace shipped ones of the same kind and name. */
function overlaid(sources: readonly TemplateSource[]): { chosen: TemplateSource[]; overrides: Map<string, string> } {
  const byKey = new Map<string, TemplateSource>();
  const overrides = new Map<string, string>();
  for (const s of [...sources].sort((a, b) => (a.origin === b.origin ? 0 : a.origin === 'shipped' ? -1 : 1))) {
    const k = keyOf(s.kind, s.name);
    const prev = byKey.get(k);
    if (prev && s.origin === 'overlay' && prev.origin === 'shipped') overrides.set(k, prev.file);
    byKey.set(k, s);
  }
  return { chosen: [...byKey.values()], overrides };
}

/**
 * Compiles a set of sources. A file that does not compile keeps its version from `prev` when there is one (the last
 * good rule of profiles); `refuse` names files whose new version must not serve either (a probe render failed).
 */
export function compileLibrary(
  sources: readonly TemplateSource[],
  prev?: TemplateLibrary,
  refuse: ReadonlyMap<string, TemplateError> = new Map(),
): TemplateLibrary {
  const eta = newEngine();
  const errors: TemplateError[] = [];
  const items = new Map<string, Item>();
  const previous = prev ? itemsOf(prev) : new Map<string, Item>();
  const { chosen, overrides } = overlaid(sources);
  const counts = new Map<TemplateKind, number>();
  for (const src of chosen) {
    const k = keyOf(src.kind, src.name);
    const nameProblem = checkTemplateName(src.name);
    if (nameProblem) {
      errors.push({ file: src.file, message: `the file name ${nameProblem}` });
      continue;
    }
    const n = (counts.get(src.kind) ?? 0) + 1;
    counts.set(src.kind, n);
    if (n > MAX_TEMPLATES_PER_KIND) {
      errors.push({ file: src.file, message: `more than ${MAX_TEMPLATES_PER_KIND} ${src.kind} templates: left out` });
      continue;
    }
    const entry: TemplateEntry = { kind: src.kind, name: src.name, file: src.file, origin: src.origin, stale: false };
    if (overrides.has(k)) entry.overrides = overrides.get(k);
    const refused = refuse.get(src.file);
    const compiled = refused ? undefined : compileOne(eta, src);
    if (compiled?.ok) {
      items.set(k, { entry, text: src.text, fn: compiled.fn });
      continue;
    }
    errors.push(refused ?? (compiled as { error: TemplateError }).error);
    const old = previous.get(k);
    if (old) items.set(k, { ...old, entry: { ...old.entry, stale: true } });
  }

  const render = (kind: TemplateKind, name: string, data: object, meta: Meta = {}): string => {
    const item = items.get(keyOf(kind, name));
    if (!item) throw new Error(`no ${kind} template named "${name}"`);
    const chain = meta.chain ?? [];
    const out = item.fn.call(eta, data, { ...meta, chain: [...chain, item.entry.file], filepath: item.entry.file });
    if (out.length > MAX_RENDERED_BYTES)
      throw new TemplateFault(item.entry.file, undefined, `rendered more than ${MAX_RENDERED_BYTES} bytes`);
    return out;
  };
  // A template's include(name, data) calls eta.render(name, data, options): it resolves to a snippet (or boot template).
  eta.render = ((ref: unknown, data: object, meta: Meta) => {
    if (typeof ref !== 'string') throw new Error('include() takes the name of a snippet of templates/snippets/');
    const name = snippetName(ref);
    const problem = checkTemplateName(name);
    if (problem) throw new Error(`include("${ref.slice(0, 120)}"): the snippet name ${problem}`);
    // Boot templates include each other (grub-default.eta includes grub-local): a snippet first, then a boot template.
    const item = items.get(keyOf('snippet', name)) ?? items.get(keyOf('boot', name));
    if (!item) {
      const known = [...items.values()]
        .filter((i) => i.entry.kind === 'snippet')
        .map((i) => i.entry.name.replace(/\.eta$/, ''));
      throw new Error(
        `include("${ref}"): there is no snippet ${name} in templates/snippets/ (snippets: ${known.join(', ') || 'none'})`,
      );
    }
    const chain = meta.chain ?? [];
    if (chain.includes(item.entry.file))
      throw new Error(`include("${ref}") loops: ${[...chain, item.entry.file].map(baseName).join(' -> ')}`);
    if (chain.length >= MAX_INCLUDE_DEPTH)
      throw new Error(`include("${ref}"): includes nest deeper than ${MAX_INCLUDE_DEPTH}`);
    return render(item.entry.kind, name, data, meta);
  }) as Eta['render'];

  const entries = Object.freeze(
    [...items.values()].map((i) => i.entry).sort((a, b) => keyOf(a.kind, a.name).localeCompare(keyOf(b.kind, b.name))),
  );
  const lib: TemplateLibrary & { [ITEMS]: Map<string, Item> } = {
    [ITEMS]: items,
    entries,
    errors: Object.freeze(errors),
    has: (kind, name) => items.has(keyOf(kind, name)),
    names: (kind) => entries.filter((e) => e.kind === kind).map((e) => e.name),
    render: (kind, name, data) => render(kind, name, data),
  };
  return Object.freeze(lib);
}

const ITEMS = Symbol('items');
function itemsOf(lib: TemplateLibrary): Map<string, Item> {
  return (lib as TemplateLibrary & { [ITEMS]?: Map<string, Item> })[ITEMS] ?? new Map();
}

function baseName(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1);
}
