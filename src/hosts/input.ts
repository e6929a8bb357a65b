// Validating a host record that a person or a script sends (API JSON, CSV row, CLI). Pure.
import { parseMac, parseIpv4, type Mac } from '../net/mac.ts';
import type { HostFields } from '../store/hosts.ts';
import { checkSnippet, noControl } from '../profiles/grammar.ts';
import { siteProblem } from './site.ts';

export interface HostInput {
  mac?: unknown;
  hostname?: unknown;
  profile?: unknown;
  ip?: unknown;
  netmask?: unknown;
  gateway?: unknown;
  nameservers?: unknown;
  domain?: unknown;
  rack?: unknown;
  position?: unknown;
  uuid?: unknown;
  site?: unknown;
  params?: unknown;
}

export const HOST_FIELDS = [
  'mac',
  'hostname',
  'profile',
  'ip',
  'netmask',
  'gateway',
  'nameservers',
  'domain',
  'rack',
  'position',
  'uuid',
  'site',
  'params',
] as const;

const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const LABEL = /^[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type HostCheck = { ok: true; host: HostFields } | { ok: false; errors: string[] };

const ipNum = (p: number[]) => ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;

export function isNetmask(mask: string): boolean {
  const p = parseIpv4(mask);
  if (!p) return false;
  const n = ipNum(p);
  return n !== 0 && ((~n >>> 0) & ((~n >>> 0) + 1)) === 0;
}

function optString(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

/** `knownProfiles` decides whether the profile exists; the caller passes the live catalog. */
export function checkHostInput(input: HostInput, knownProfiles: (name: string) => boolean): HostCheck {
  const errors: string[] = [];
  // One rule for every value that may reach a rendered file: no control characters or line separators, named.
  // The profile's own grammar checks parameter values again; `post` (shell lines) keeps tab and line feed.
  for (const field of HOST_FIELDS) {
    const v = (input as Record<string, unknown>)[field];
    const values: [string, unknown][] =
      field === 'params' && v && typeof v === 'object' && !Array.isArray(v)
        ? Object.entries(v as Record<string, unknown>).map(([k, x]) => [
            `params.${k}`,
            typeof x === 'object' && x !== null ? JSON.stringify(x) : x,
          ])
        : Array.isArray(v)
          ? v.map((x, i) => [`${field}[${i}]`, x])
          : [[field, v]];
    for (const [name, x] of values) {
      const bad = typeof x === 'string' ? (name === 'params.post' ? checkSnippet(x) : noControl(x)) : undefined;
      if (bad) errors.push(`${name}: ${bad}`);
    }
  }
  if (errors.length) return { ok: false, errors };
  const rawMac = optString(input.mac);
  const mac = rawMac ? parseMac(rawMac) : undefined;
  if (!rawMac) errors.push('mac: required (e.g. 52:54:00:12:34:56)');
  else if (!mac)
    errors.push(`mac: "${rawMac}" is not a MAC address (use aa:bb:cc:dd:ee:ff, aa-bb-..., or aabb.ccdd.eeff)`);

  const hostname = optString(input.hostname);
  if (!hostname) errors.push('hostname: required');
  else if (!DNS_NAME.test(hostname))
    errors.push(`hostname: "${hostname}" is not a valid DNS name (letters, digits, "-", dots between labels)`);

  const profile = optString(input.profile);
  if (!profile) errors.push('profile: required');
  else if (!knownProfiles(profile))
    errors.push(`profile: "${profile}" is not a loaded profile (see GET /api/profiles)`);

  const ip = optString(input.ip);
  const netmask = optString(input.netmask);
  const gateway = optString(input.gateway);
  if (ip && !parseIpv4(ip)) errors.push(`ip: "${ip}" is not an IPv4 address`);
  if (netmask && !isNetmask(netmask)) errors.push(`netmask: "${netmask}" is not a netmask such as 255.255.255.0`);
  if (gateway && !parseIpv4(gateway)) errors.push(`gateway: "${gateway}" is not an IPv4 address`);
  if ((netmask || gateway) && !ip) errors.push('ip: required when netmask or gateway is given');
  if (ip && gateway && netmask && parseIpv4(ip) && parseIpv4(gateway) && isNetmask(netmask)) {
    const m = ipNum(parseIpv4(netmask)!);
    if ((ipNum(parseIpv4(ip)!) & m) !== (ipNum(parseIpv4(gateway)!) & m))
      errors.push(`gateway: ${gateway} is not in the subnet of ${ip}/${netmask}`);
  }

  let nameservers: string[] = [];
  if (input.nameservers !== undefined && input.nameservers !== null && input.nameservers !== '') {
    const list = Array.isArray(input.nameservers)
      ? input.nameservers.map(String)
      : String(input.nameservers)
          .split(/[\s,;]+/)
          .filter(Boolean);
    const bad = list.filter((n) => !parseIpv4(n));
    if (bad.length) errors.push(`nameservers: ${bad.map((b) => `"${b}"`).join(', ')} not IPv4 addresses`);
    nameservers = list;
  }
  const domain = optString(input.domain);
  if (domain && !DNS_NAME.test(domain)) errors.push(`domain: "${domain}" is not a valid DNS name`);
  const rack = optString(input.rack);
  if (rack && !LABEL.test(rack)) errors.push(`rack: "${rack}" must be up to 64 letters, digits, spaces or . _ : / # -`);
  const position = optString(input.position);
  if (position && !LABEL.test(position))
    errors.push(`position: "${position}" must be up to 64 letters, digits, spaces or . _ : / # -`);
  const uuid = optString(input.uuid);
  if (uuid && !UUID.test(uuid)) errors.push(`uuid: "${uuid}" is not a UUID (8-4-4-4-12 hex digits)`);

  // A site is a name, never a number or a list coerced to one.
  const siteGiven = input.site !== undefined && input.site !== null;
  const site = siteGiven && typeof input.site === 'string' ? optString(input.site) : undefined;
  const siteError =
    siteGiven && typeof input.site !== 'string'
      ? `site: must be a string such as "dc1" (got ${Array.isArray(input.site) ? 'a list' : typeof input.site})`
      : site === undefined
        ? undefined
        : siteProblem(site, 'site:');
  if (siteError) errors.push(siteError);

  const params: Record<string, string> = {};
  if (input.params !== undefined && input.params !== null) {
    if (typeof input.params !== 'object' || Array.isArray(input.params))
      errors.push('params: must be an object of "profile.field": "value"');
    else
      for (const [k, v] of Object.entries(input.params as Record<string, unknown>)) {
        if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/.test(k))
          errors.push(`params: "${k}" is not a profile field path such as boot.kernelArgs`);
        else if (typeof v === 'object' && v !== null) params[k] = JSON.stringify(v);
        else params[k] = String(v);
      }
  }
  if (errors.length || !mac || !hostname || !profile) return { ok: false, errors };
  return {
    ok: true,
    host: {
      mac: mac as Mac,
      hostname,
      profile,
      ip,
      netmask,
      gateway,
      nameservers,
      domain,
      rack,
      position,
      uuid: uuid?.toLowerCase(),
      ...(site !== undefined ? { site } : {}),
      params,
    },
  };
}

/** A host as the audit log keeps it: every field, parameters included (AuditRepo masks the secrets). */
export function hostRecord(h: object): Record<string, unknown> {
  return Object.fromEntries(
    HOST_FIELDS.map((k) => [k, (h as Record<string, unknown>)[k]]).filter(([, v]) => v !== undefined),
  );
}

/** Field by field, what changed on a host: the audit log's diff. */
export function hostFieldDiff(a: object, b: object): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of HOST_FIELDS) {
    const x = (a as Record<string, unknown>)[k];
    const y = (b as Record<string, unknown>)[k];
    if (JSON.stringify(x) !== JSON.stringify(y)) out[k] = { from: x, to: y };
  }
  return out;
}
