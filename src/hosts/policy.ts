// Who may set which host parameter, whether parameters fit the profile, and what a secret is. Pure.
// A host parameter overrides a profile field, so it decides what runs as root on the host: a tech
// (who builds racks) may set only what an admin put on the allow-list, and never what changes the
// installed code, the credentials or where the host registers, whatever the list says.
import type { Role } from '../store/users.ts';
import type { LoadedProfile } from '../profiles/load.ts';
import { applyHostParams } from '../profiles/load.ts';
import { profileSchema } from '../profiles/schema.ts';
import { parse as parseYaml } from 'yaml';

export const PARAM_PATH = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/;

/**
 * Never open to techs: %post shell code, the root password and ssh keys (who gets in), Satellite
 * (whose CA RPM runs as root and who gets the activation key), STIG (hardening switched off), the
 * image (what hypervisor is installed) and kernel arguments (a second inst.ks= replaces the kickstart).
 */
export const TECH_NEVER = ['post', 'rootPassword', 'sshKeys', 'satellite', 'stig', 'image', 'boot.kernelArgs'] as const;

export const MAX_TECH_PARAMS = 64;

/** The forbidden path that `key` is, sits under or contains (`boot` contains boot.kernelArgs), or undefined. */
export function neverForTech(key: string): string | undefined {
  for (const f of TECH_NEVER) {
    if (key === f || key.startsWith(`${f}.`) || f.startsWith(`${key}.`)) return f;
    if (f === 'image' && /^image/i.test(key)) return f;
  }
  return undefined;
}

/** Checks an allow-list an admin proposes; every problem names the entry and why. */
export function checkTechParamList(input: unknown): { ok: true; list: string[] } | { ok: false; errors: string[] } {
  if (!Array.isArray(input))
    return {
      ok: false,
      errors: ['techParams: send a JSON array of profile field paths, e.g. ["timezone.name", "ntpServers"]'],
    };
  const errors: string[] = [];
  if (input.length > MAX_TECH_PARAMS)
    errors.push(`techParams: at most ${MAX_TECH_PARAMS} entries (got ${input.length})`);
  const top = new Set(Object.keys(profileSchema.shape));
  const list: string[] = [];
  input.slice(0, MAX_TECH_PARAMS).forEach((raw, i) => {
    if (typeof raw !== 'string') {
      errors.push(
        `techParams[${i}]: must be a string such as "timezone.name" (got ${raw === null ? 'null' : typeof raw})`,
      );
      return;
    }
    const key = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (!PARAM_PATH.test(key) || key.length > 128) {
      errors.push(
        `techParams[${i}]: ${JSON.stringify(raw.slice(0, 80))} is not a profile field path such as timezone.name`,
      );
      return;
    }
    if (!top.has(key.split('.')[0])) {
      errors.push(`techParams[${i}]: "${key}" is not a profile field (known: ${[...top].join(', ')})`);
      return;
    }
    const never = neverForTech(key);
    if (never) {
      errors.push(
        `techParams[${i}]: "${key}" can never be opened to techs (${never} changes what is installed or who can log in); set it on the host as an admin`,
      );
      return;
    }
    if (!list.includes(key)) list.push(key);
  });
  return errors.length ? { ok: false, errors } : { ok: true, list };
}

/** The parameter keys whose value differs between two parameter sets (added, removed or changed). */
export function changedParamKeys(
  before: Readonly<Record<string, string>>,
  after: Readonly<Record<string, string>>,
): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}

/**
 * Problems when `role` changes a host's parameters from `before` to `after`: each names the field.
 * Removing a parameter is a change too (a tech must not drop an admin's STIG override either).
 */
export function paramRoleProblems(
  role: Role,
  before: Readonly<Record<string, string>>,
  after: Readonly<Record<string, string>>,
  allowed: readonly string[],
): string[] {
  if (role === 'admin') return [];
  return changedParamKeys(before, after)
    .map((k) => {
      const never = neverForTech(k);
      if (never)
        return `params.${k}: the tech role can never set this parameter (${never} changes what is installed or who can log in); ask an admin`;
      if (!allowed.includes(k)) {
        return `params.${k}: the tech role may not set this parameter; ${allowed.length ? `techs may set only ${allowed.join(', ')}` : 'no parameters are open to techs'} (an admin can open harmless ones under Settings)`;
      }
      return undefined;
    })
    .filter((x): x is string => x !== undefined);
}

/**
 * Parameters checked against the profile they will be applied to, at save time: each one alone (so the
 * error names the parameter), then all together. Errors read `params.<key>: ...`.
 */
export function checkParamsAgainstProfile(loaded: LoadedProfile, params: Readonly<Record<string, string>>): string[] {
  const errors: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    const r = applyHostParams(loaded, { [key]: value }, 'x');
    if (!r.ok) errors.push(`params.${key}: ${r.errors.map((e) => explain(e, key)).join('; ')}`);
  }
  if (errors.length) return errors;
  const all = applyHostParams(loaded, { ...params }, 'x');
  return all.ok ? [] : all.errors.map((e) => `params: ${e.replace(/^host x: /, '')}`);
}

function explain(error: string, key: string): string {
  const e = error.replace(/^host x: /, '');
  if (/Unrecognized key/i.test(e))
    return `not a field of the profile (check the spelling of "${key}"; see profiles/README.md)`;
  return e.replace(/^parameter [^ ]* \(profile ([^)]*)\): /, 'does not fit profile $1: ');
}

// --- secrets ---------------------------------------------------------------------------------------

export const MASK = '********';

/** A field that holds a credential: the root hash, activation keys, BMC passwords, tokens. */
export function isSecretKey(key: string): boolean {
  const last = key.split('.').pop() ?? key;
  return (
    /^(rootPassword|activationKey|password|passwd|secret|token|apiToken|adminToken|metricsToken)$/i.test(last) ||
    /(password|secret|token)$/i.test(last)
  );
}

/** A copy with every secret field (at any depth, or a dotted parameter key) replaced by MASK. */
export function maskDeep<T>(value: T, key = ''): T {
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, key)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        isSecretKey(k) && v !== null && v !== undefined && typeof v !== 'object' ? MASK : maskDeep(v, k),
      ]),
    ) as T;
  }
  return value;
}

/** The values of secret fields in a record (nested objects and dotted parameter keys alike). */
export function secretValues(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) for (const v of value) secretValues(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      // Short values would mask innocent text everywhere ("on", "1"); real secrets are long.
      if (isSecretKey(k) && (typeof v === 'string' || typeof v === 'number') && String(v).length >= 6)
        out.add(String(v));
      else secretValues(v, out);
    }
  }
  return out;
}

/** Every occurrence of a secret value in free text (a failure log, a YAML file) replaced by MASK. */
export function maskText(text: string, secrets: Iterable<string>): string {
  let out = text;
  // Longest first: a secret that contains another is masked whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (s) out = out.replaceAll(s, MASK);
  return out;
}

/**
 * A profile's YAML as a tech may see it: values of secret keys masked, whether or not they parse
 * (a broken file still shows on the profile page).
 */
export function maskYamlText(text: string, parsed: unknown): string {
  const masked = maskText(text, secretValues(parsed));
  const keyLine = /^(\s*-?\s*["']?([A-Za-z][A-Za-z0-9_]*)["']?\s*:[ \t]*)(.*)$/;
  let blockIndent = -1;
  return masked
    .split('\n')
    .map((line) => {
      const indent = /^ */.exec(line)![0].length;
      // The lines of a block scalar (`key: |` or `key: >-`) under a secret key are the secret.
      if (blockIndent >= 0) {
        if (line.trim() === '' || indent > blockIndent)
          return line.trim() === '' ? line : `${' '.repeat(indent)}${MASK}`;
        blockIndent = -1;
      }
      const m = keyLine.exec(line);
      if (!m || !isSecretKey(m[2])) return line;
      const value = m[3].trim();
      if (/^[|>][-+0-9]*\s*(#.*)?$/.test(value)) {
        blockIndent = indent;
        return line;
      }
      if (value === '' || value.startsWith('#') || value.replace(/^["']/, '').startsWith(MASK)) return line;
      return `${m[1]}${MASK}`;
    })
    .join('\n');
}

function yamlOrEmpty(text: string): unknown {
  try {
    return parseYaml(text) ?? {};
  } catch {
    return {};
  }
}

export const MASK_CHANGED = `${MASK} (changed)`;

/**
 * Two versions of a profile for the audit diff: secrets masked on both sides; a secret value that is
 * new on the after side reads MASK_CHANGED, so the diff shows that it changed without showing it.
 */
export function maskYamlPair(before: string, after: string): [string, string] {
  const old = secretValues(yamlOrEmpty(before));
  const fresh = secretValues(yamlOrEmpty(after));
  let a = maskText(
    after,
    [...fresh].filter((v) => old.has(v)),
  );
  for (const v of [...fresh].filter((x) => !old.has(x)).sort((x, y) => y.length - x.length))
    a = a.replaceAll(v, MASK_CHANGED);
  return [maskYamlText(before, yamlOrEmpty(before)), maskYamlText(a, {})];
}

export interface ParamGuard {
  role: Role;
  /** The admin-kept allow-list (SettingsRepo.techParams). */
  allowed: readonly string[];
  /** The profile the host will use, from the live catalog; undefined skips the schema check (checkHostInput refused it already). */
  profile: (name: string) => LoadedProfile | undefined;
}

/**
 * The one check of a host's parameters at save time, on every path (API, CSV, web forms):
 * 403 when the role may not make the change, 400 when a parameter does not fit the profile.
 */
export function guardHostParams(
  g: ParamGuard,
  before: Readonly<Record<string, string>>,
  host: { profile: string; params: Readonly<Record<string, string>> },
): { status: 403 | 400; errors: string[] } | undefined {
  const forbidden = paramRoleProblems(g.role, before, host.params, g.allowed);
  if (forbidden.length) return { status: 403, errors: forbidden };
  const loaded = g.profile(host.profile);
  const invalid = loaded ? checkParamsAgainstProfile(loaded, host.params) : [];
  return invalid.length ? { status: 400, errors: invalid } : undefined;
}

/** The secret values a host's rendered files and logs may contain: from its profile and its own parameters. */
export function hostSecretValues(
  loaded: LoadedProfile | undefined,
  params: Readonly<Record<string, string>>,
): Set<string> {
  const out = secretValues(params);
  if (!loaded) return out;
  const applied = applyHostParams(loaded, { ...params }, 'x');
  secretValues(applied.ok ? applied.profile : loaded.profile, out);
  return out;
}
