// What a rollout request may say (API body, CLI flags): pure checks, every number bounded, errors name the field.
import { parseMac, type Mac } from '../net/mac.ts';

export interface RolloutOptions {
  power: boolean;
  waveSize: number;
  waveIntervalMs: number;
  /** A rebuild of built hosts wipes their disks: asked for explicitly. */
  confirm: boolean;
}

export const WAVE_SIZE_MAX = 256;
export const WAVE_INTERVAL_MAX_S = 3600;
/** Hosts one request may name (POST /api/hosts/build). A rack is bounded by the host table. */
export const MACS_MAX = 10_000;
export const DEFAULTS = { waveSize: 8, waveIntervalSeconds: 20 } as const;

export type Parsed<T> = { ok: true; value: T } | { ok: false; errors: string[] };

const KNOWN = new Set(['power', 'waveSize', 'waveIntervalSeconds', 'confirm', 'macs']);

function intIn(errors: string[], name: string, v: unknown, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    errors.push(`${name}: must be a whole number from ${min} to ${max} (got ${describe(v)})`);
    return dflt;
  }
  return v;
}

function bool(errors: string[], name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') errors.push(`${name}: must be true or false (got ${describe(v)})`);
  return v === true;
}

function describe(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v) ?? typeof v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** The options of a rollout from a JSON body; `withMacs` for POST /api/hosts/build (then `macs` is required). */
export function parseRolloutBody(
  body: unknown,
  withMacs: boolean,
): Parsed<{ options: RolloutOptions; macs: Mac[] | undefined }> {
  if (body === undefined || body === null) body = {};
  if (typeof body !== 'object' || Array.isArray(body))
    return { ok: false, errors: ['the body must be a JSON object such as {"power": true, "waveSize": 8}'] };
  const b = body as Record<string, unknown>;
  const errors: string[] = [];
  for (const k of Object.keys(b))
    if (!KNOWN.has(k) || (k === 'macs' && !withMacs))
      errors.push(
        `${describe(k)}: not a rollout field (use ${withMacs ? 'macs, ' : ''}power, waveSize, waveIntervalSeconds, confirm)`,
      );
  const options: RolloutOptions = {
    power: bool(errors, 'power', b.power),
    waveSize: intIn(errors, 'waveSize', b.waveSize, 1, WAVE_SIZE_MAX, DEFAULTS.waveSize),
    waveIntervalMs:
      intIn(
        errors,
        'waveIntervalSeconds',
        b.waveIntervalSeconds,
        0,
        WAVE_INTERVAL_MAX_S,
        DEFAULTS.waveIntervalSeconds,
      ) * 1000,
    confirm: bool(errors, 'confirm', b.confirm),
  };
  let macs: Mac[] | undefined;
  if (withMacs) {
    const r = parseMacList(b.macs);
    if (r.ok) macs = r.value;
    else errors.push(...r.errors);
  }
  return errors.length ? { ok: false, errors } : { ok: true, value: { options, macs } };
}

export function parseMacList(v: unknown): Parsed<Mac[]> {
  if (!Array.isArray(v) || v.length === 0)
    return { ok: false, errors: ['macs: must be a list of 1 or more MAC addresses, e.g. ["52:54:00:00:00:01"]'] };
  if (v.length > MACS_MAX) return { ok: false, errors: [`macs: at most ${MACS_MAX} per request (got ${v.length})`] };
  const errors: string[] = [];
  const seen = new Set<Mac>();
  const out: Mac[] = [];
  v.forEach((m, i) => {
    const mac = typeof m === 'string' ? parseMac(m) : undefined;
    if (!mac) {
      if (errors.length < 20) errors.push(`macs[${i}]: ${describe(m)} is not a MAC address`);
      return;
    }
    if (seen.has(mac)) {
      if (errors.length < 20) errors.push(`macs[${i}]: ${mac} is listed twice`);
      return;
    }
    seen.add(mac);
    out.push(mac);
  });
  return errors.length ? { ok: false, errors } : { ok: true, value: out };
}

/** A rack name as the host records keep it (src/hosts/input.ts): printable, short. */
export function parseRackName(v: string): Parsed<string> {
  // eslint-disable-next-line no-control-regex
  if (!v || v.length > 64 || /[\u0000-\u001f\u007f\u2028\u2029]/.test(v))
    return { ok: false, errors: [`rack: ${describe(v)} is not a rack name (1-64 printable characters)`] };
  return { ok: true, value: v };
}
