// A profile's effective values and where each comes from: the host's own parameter, the profile's file, a parent it
// extends, or the schema's default. Pure: the GET /api/profiles/:name/effective route and the profile page use it.
import type { LoadedProfile } from './load.ts';
import { DEFAULT_KICKSTART_TEMPLATE, type Profile } from './schema.ts';

export type ValueSource = 'host' | 'profile' | 'parent' | 'default';

export interface EffectiveValue {
  /** Dotted path, as host parameters name it: boot.kernelArgs, partitioning.volumes. */
  field: string;
  value: unknown;
  source: ValueSource;
  /** The profile (profile, parent) or the host parameter (host) the value comes from. */
  from?: string;
  file?: string;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Leaves of the resolved profile: scalars and arrays (a list is one value: a child's list replaces its parent's). */
function leaves(v: unknown, path: string[] = [], out: [string[], unknown][] = []): [string[], unknown][] {
  if (isPlain(v) && Object.keys(v).length) for (const [k, x] of Object.entries(v)) leaves(x, [...path, k], out);
  else out.push([path, v]);
  return out;
}

/** Does this YAML data set the field, or a scalar or list on its way (which the field then lies under)? */
function sets(data: Readonly<Plain>, path: string[]): boolean {
  let cur: unknown = data;
  for (const k of path) {
    if (!isPlain(cur) || !(k in cur)) return false;
    cur = cur[k];
    if (!isPlain(cur)) return true;
  }
  return true;
}

export function effectiveProfile(
  loaded: LoadedProfile,
  resolved: Profile,
  params: Readonly<Record<string, string>> = {},
  hostLabel = 'host',
): EffectiveValue[] {
  const layers = loaded.layers ?? [{ name: loaded.name, file: loaded.file, data: loaded.merged }];
  const out: EffectiveValue[] = [];
  const rows = leaves(resolved);
  if (resolved.kickstart === undefined) rows.push([['kickstart'], DEFAULT_KICKSTART_TEMPLATE]);
  for (const [path, value] of rows) {
    const field = path.join('.');
    const param = Object.keys(params).find(
      (k) => k === field || field.startsWith(`${k}.`) || k.startsWith(`${field}.`),
    );
    if (param !== undefined) {
      out.push({ field, value, source: 'host', from: `${hostLabel} parameter ${param}` });
      continue;
    }
    const i = layers.findIndex((l) => sets(l.data, path));
    if (i < 0) out.push({ field, value, source: 'default' });
    else
      out.push({ field, value, source: i === 0 ? 'profile' : 'parent', from: layers[i]!.name, file: layers[i]!.file });
  }
  return out.sort((a, b) => a.field.localeCompare(b.field));
}
