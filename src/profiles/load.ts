// Profiles from YAML text: parse, resolve `extends`, validate, apply the RHVH rules. Pure: files come in as text.
import { isMap, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { profileSchema, type Profile } from './schema.ts';
import { checkCustomLayout } from './rhvh-rules.ts';

export interface ProfileSource {
  name: string;
  file: string;
  text: string;
}

export interface ProfileError {
  profile: string;
  file: string;
  line?: number;
  field: string;
  message: string;
}

export interface LoadedProfile {
  name: string;
  file: string;
  extends?: string;
  /** The merged YAML data before defaults, so host parameters can be laid on top and validated again. */
  merged: Record<string, unknown>;
  profile: Profile;
  /** The YAML data of each file of the inheritance chain, this profile first, then its parent, ... (effective.ts). */
  layers?: readonly ProfileLayer[];
}

export interface ProfileLayer {
  name: string;
  file: string;
  data: Readonly<Record<string, unknown>>;
}

export interface ProfileSet {
  profiles: ReadonlyMap<string, LoadedProfile>;
  errors: readonly ProfileError[];
}

export const PROFILE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function formatProfileError(e: ProfileError): string {
  return `${e.file}${e.line ? `:${e.line}` : ''}: ${e.field ? `${e.field}: ` : ''}${e.message}`;
}

interface Parsed {
  src: ProfileSource;
  doc: Document;
  lines: LineCounter;
  data: Record<string, unknown>;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; arrays and scalars from the child replace the parent's. */
export function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  return out;
}

export function fieldName(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

function lineOf(p: Parsed, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = p.doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return p.lines.linePos(node.range[0]).line;
  }
  return undefined;
}

function parseOne(src: ProfileSource, errors: ProfileError[]): Parsed | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(src.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    for (const err of doc.errors) {
      errors.push({
        profile: src.name,
        file: src.file,
        line: lines.linePos(err.pos[0]).line,
        field: '',
        message: `YAML syntax: ${err.message.split('\n')[0]}`,
      });
    }
    return undefined;
  }
  if (!isMap(doc.contents)) {
    errors.push({
      profile: src.name,
      file: src.file,
      line: 1,
      field: '',
      message: 'a profile must be a YAML mapping of fields (image:, boot:, partitioning:, ...)',
    });
    return undefined;
  }
  return { src, doc, lines, data: doc.toJS() as Plain };
}

/** Which file in the chain defines this field: the error points there, not at the child that inherited it. */
function definingFile(chain: Parsed[], path: readonly PropertyKey[]): Parsed {
  for (const p of chain) if (p.doc.hasIn(path as unknown[])) return p;
  return chain[0];
}

export function zodErrors(chain: Parsed[], issues: readonly z.core.$ZodIssue[], profile: string): ProfileError[] {
  return issues.map((iss) => {
    const p = definingFile(chain, iss.path);
    let message = iss.message;
    if (iss.code === 'unrecognized_keys')
      message = `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}: check the spelling (see profiles/README.md)`;
    else if (iss.code === 'invalid_type' && iss.message.includes('received undefined'))
      message = `required: ${iss.message.replace(/^Invalid input: /, '')}`;
    const path = iss.code === 'unrecognized_keys' ? [...iss.path, iss.keys[0]] : iss.path;
    return { profile, file: p.src.file, line: lineOf(p, path), field: fieldName(iss.path), message };
  });
}

/** Validates merged data; on success the result has all defaults filled in. */
export function validateMerged(
  merged: Plain,
  chain: Parsed[],
  profile: string,
): { ok: true; profile: Profile } | { ok: false; errors: ProfileError[] } {
  const parsed = profileSchema.safeParse(merged);
  if (!parsed.success) return { ok: false, errors: zodErrors(chain, parsed.error.issues, profile) };
  const p = parsed.data;
  if (p.partitioning.layout === 'custom') {
    const violations = checkCustomLayout(p.partitioning);
    if (violations.length) {
      return {
        ok: false,
        errors: violations.map((v) => {
          const at = definingFile(chain, v.path);
          return { profile, file: at.src.file, line: lineOf(at, v.path), field: fieldName(v.path), message: v.message };
        }),
      };
    }
  }
  return { ok: true, profile: p };
}

export function loadProfiles(sources: ProfileSource[]): ProfileSet & { chains: ReadonlyMap<string, Parsed[]> } {
  const errors: ProfileError[] = [];
  const parsed = new Map<string, Parsed>();
  for (const src of sources) {
    if (!PROFILE_NAME.test(src.name)) {
      errors.push({
        profile: src.name,
        file: src.file,
        field: '',
        message: 'profile file names must be lower-case letters, digits, ".", "_" or "-" (e.g. rhvh-base.yaml)',
      });
      continue;
    }
    const p = parseOne(src, errors);
    if (p) parsed.set(src.name, p);
  }

  const profiles = new Map<string, LoadedProfile>();
  const chains = new Map<string, Parsed[]>();
  for (const [name, p] of parsed) {
    const chain: Parsed[] = [];
    let cur: Parsed | undefined = p;
    let broken: ProfileError | undefined;
    while (cur) {
      if (chain.includes(cur)) {
        broken = {
          profile: name,
          file: p.src.file,
          line: lineOf(p, ['extends']),
          field: 'extends',
          message: `inheritance loops: ${[...chain, cur].map((c) => c.src.name).join(' -> ')}`,
        };
        break;
      }
      chain.push(cur);
      const parent = cur.data.extends;
      if (parent === undefined) break;
      if (typeof parent !== 'string') {
        broken = {
          profile: name,
          file: cur.src.file,
          line: lineOf(cur, ['extends']),
          field: 'extends',
          message: 'extends must be the name of another profile',
        };
        break;
      }
      cur = parsed.get(parent);
      if (!cur) {
        const known = [...parsed.keys()].join(', ') || 'none';
        broken = {
          profile: name,
          file: chain.at(-1)!.src.file,
          line: lineOf(chain.at(-1)!, ['extends']),
          field: 'extends',
          message: `profile "${parent}" does not exist or does not load (loaded: ${known})`,
        };
      }
    }
    if (broken) {
      errors.push(broken);
      continue;
    }
    let merged: Plain = {};
    for (const link of [...chain].reverse()) {
      const { extends: _parent, ...fields } = link.data;
      merged = deepMerge(merged, fields);
    }
    const result = validateMerged(merged, chain, name);
    if (!result.ok) {
      errors.push(...result.errors);
      continue;
    }
    chains.set(name, chain);
    profiles.set(name, {
      name,
      file: p.src.file,
      extends: typeof p.data.extends === 'string' ? p.data.extends : undefined,
      merged,
      profile: result.profile,
      layers: chain.map((c) => ({ name: c.src.name, file: c.src.file, data: c.data })),
    });
  }
  return { profiles, errors, chains };
}

/** Host parameters override profile fields by dotted path ("boot.kernelArgs", "timezone.name"); values are YAML scalars. */
export function applyHostParams(
  loaded: LoadedProfile,
  params: Record<string, string>,
  hostLabel: string,
): { ok: true; profile: Profile } | { ok: false; errors: string[] } {
  if (Object.keys(params).length === 0) return { ok: true, profile: loaded.profile };
  let merged: Plain = loaded.merged;
  for (const [key, raw] of Object.entries(params)) {
    if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/.test(key))
      return {
        ok: false,
        errors: [`host ${hostLabel}: parameter "${key}" is not a profile field path such as boot.kernelArgs`],
      };
    const value = parseParamValue(raw);
    const over: Plain = {};
    let cursor = over;
    const parts = key.split('.');
    parts.forEach((part, i) => {
      if (i === parts.length - 1) cursor[part] = value;
      else cursor = (cursor[part] = {}) as Plain;
    });
    merged = deepMerge(merged, over);
  }
  const parsed = profileSchema.safeParse(merged);
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map(
        (i) => `host ${hostLabel}: parameter ${fieldName(i.path)} (profile ${loaded.name}): ${i.message}`,
      ),
    };
  }
  if (parsed.data.partitioning.layout === 'custom') {
    const v = checkCustomLayout(parsed.data.partitioning);
    if (v.length) return { ok: false, errors: v.map((x) => `host ${hostLabel}: ${fieldName(x.path)}: ${x.message}`) };
  }
  return { ok: true, profile: parsed.data };
}

function parseParamValue(raw: string): unknown {
  const t = raw.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^-?\d+$/.test(t)) return Number(t);
  if (t.startsWith('[')) {
    try {
      const doc = parseDocument(t);
      if (!doc.errors.length) return doc.toJS();
    } catch {
      /* fall through: keep the string */
    }
  }
  return raw;
}
