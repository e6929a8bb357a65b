// Validating a host's BMC as an admin sends it (API JSON, host form, rack CSV bmc.* columns). Pure.
// Every error names its field (bmc.address, ...) and says what would be accepted.
import { z } from 'zod';
import type { BmcSetting } from '../store/bmc.ts';
import { parseIpv4 } from '../net/mac.ts';
import { noControl } from '../profiles/grammar.ts';

export const BMC_FIELDS = ['driver', 'address', 'username', 'password', 'system', 'verifyTls', 'fingerprint'] as const;

const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
// A spreadsheet runs a cell that starts with these as a formula when the value is exported again.
const FORMULA_START = /^[=+\-@\t\r]/;

const text = (max: number) =>
  z
    .string({ error: 'must be a string' })
    .max(max, { error: `must be at most ${max} characters` })
    .refine((s) => noControl(s) === undefined, { error: 'must not contain control characters or line breaks' });

/** true/false, and in CSV or forms "true"/"false"/"yes"/"no"/"1"/"0"/"on"; empty means true. */
const flag = z.preprocess(
  (v) => {
    if (v === undefined || v === null || v === '') return true;
    if (typeof v !== 'string') return v;
    const s = v.trim().toLowerCase();
    return ['true', 'yes', '1', 'on'].includes(s) ? true : ['false', 'no', '0', 'off'].includes(s) ? false : v;
  },
  z.boolean({ error: 'must be true or false' }),
);

const schema = z.strictObject(
  {
    driver: z.enum(['redfish', 'ipmi'], { error: 'must be "redfish" or "ipmi"' }),
    address: text(255).refine((s) => s.trim() !== '', { error: 'required' }),
    username: text(64)
      .refine((s) => s.trim() !== '', { error: 'required' })
      .refine((s) => !FORMULA_START.test(s) && !/\s/.test(s), {
        error: 'must not start with = + - @ or contain spaces',
      }),
    password: text(256).optional(),
    system: text(128)
      .refine((s) => s === '' || /^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(s), {
        error: 'must be a Redfish system id: letters, digits and . _ : - (e.g. System.Embedded.1)',
      })
      .optional(),
    verifyTls: flag.optional(),
    fingerprint: text(128)
      .refine((s) => s === '' || /^[0-9a-f]{64}$/i.test(s.replace(/:/g, '')), {
        error: 'must be the certificate sha256: 64 hex digits, colons allowed',
      })
      .optional(),
  },
  { error: (i) => (i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : 'must be an object') },
);

function hostPort(s: string): { host: string; port?: string } | undefined {
  const v6 = /^\[([^\]]+)\](?::([^:]*))?$/.exec(s);
  if (v6) return IPV6.test(v6[1]) && v6[1].includes(':') ? { host: v6[1], port: v6[2] } : undefined;
  const m = /^([^:/?#@\s[\]]+)(?::([^:]*))?$/.exec(s);
  return m ? { host: m[1], port: m[2] } : undefined;
}

/** Why the address is not one for that driver, or undefined when it is. */
export function addressProblem(driver: 'redfish' | 'ipmi', raw: string): string | undefined {
  const s = raw.trim();
  if (/\s/.test(s)) return `"${s.slice(0, 80)}" must not contain spaces`;
  let rest = s.replace(/\/$/, '');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (scheme) {
    if (driver === 'ipmi') return `"${s.slice(0, 80)}": IPMI takes host[:port] (UDP, default 623), no scheme`;
    if (scheme[1].toLowerCase() !== 'https') {
      return `"${s.slice(0, 80)}": Redfish needs https:// (the password would cross the network in clear text)`;
    }
    rest = rest.slice(scheme[0].length);
  }
  if (/[/?#@]/.test(rest)) return `"${s.slice(0, 80)}" must be only a host and port: no path, query or user`;
  const hp = hostPort(rest);
  if (!hp) return `"${s.slice(0, 80)}" is not host[:port]`;
  const isIp = parseIpv4(hp.host) !== undefined || hp.host.includes(':');
  if (!isIp && (/^[\d.]+$/.test(hp.host) || !DNS_NAME.test(hp.host))) {
    return `"${hp.host.slice(0, 80)}" is not an IPv4 address, [IPv6] address or DNS name`;
  }
  if (hp.port !== undefined) {
    const n = /^\d{1,5}$/.test(hp.port) ? Number(hp.port) : NaN;
    if (!(n >= 1 && n <= 65535)) return `port "${hp.port.slice(0, 20)}" must be a number from 1 to 65535`;
  }
  return undefined;
}

export type BmcCheck = { ok: true; bmc: BmcSetting } | { ok: false; errors: string[] };

/** `raw` from JSON (`host.bmc`) or collected from bmc.* CSV cells / form fields (all strings). */
export function checkBmcInput(raw: unknown): BmcCheck {
  const clean =
    raw && typeof raw === 'object' && !Array.isArray(raw)
      ? Object.fromEntries(
          Object.entries(raw as Record<string, unknown>).filter(
            ([k, v]) => !(k !== 'driver' && (v === '' || v === null)),
          ),
        )
      : raw;
  const r = schema.safeParse(clean);
  if (!r.success) {
    return {
      ok: false,
      errors: r.error.issues.map((i) => `bmc${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`),
    };
  }
  const v = r.data;
  const errors: string[] = [];
  const bad = addressProblem(v.driver, v.address);
  if (bad) errors.push(`bmc.address: ${bad}`);
  // IPMI 2.0 (section 13.31): user names are at most 16 bytes, passwords at most 20.
  if (v.driver === 'ipmi' && Buffer.byteLength(v.username) > 16)
    errors.push('bmc.username: IPMI allows at most 16 bytes');
  if (v.driver === 'ipmi' && v.password !== undefined && Buffer.byteLength(v.password) > 20) {
    errors.push('bmc.password: IPMI 2.0 allows at most 20 bytes');
  }
  if (v.driver === 'ipmi' && v.system)
    errors.push('bmc.system: only Redfish BMCs have systems; leave it empty for IPMI');
  if (errors.length) return { ok: false, errors };
  const address =
    v.driver === 'redfish' && !/^https:\/\//i.test(v.address) ? `https://${v.address.trim()}` : v.address.trim();
  return {
    ok: true,
    bmc: {
      driver: v.driver,
      address: address.replace(/\/$/, ''),
      username: v.username,
      ...(v.password !== undefined ? { password: v.password } : {}),
      ...(v.system ? { system: v.system } : {}),
      verifyTls: v.verifyTls ?? true,
      ...(v.fingerprint ? { fingerprint: v.fingerprint.replace(/:/g, '').toLowerCase() } : {}),
    },
  };
}
