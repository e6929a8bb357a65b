// DHCP configuration: the `dhcp:` slice of the config file, and the single-subnet flags.
import { z } from 'zod';
import { ipToInt, intToIp } from './packet.ts';
import { siteProblem } from '../hosts/site.ts';

const ipv4 = z
  .string()
  .refine((s) => ipToInt(s) !== undefined, { message: 'must be an IPv4 address such as 10.99.0.1' });

export interface Cidr {
  network: number;
  prefix: number;
  mask: number;
  broadcast: number;
}

export function parseCidr(s: string): Cidr | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m) return undefined;
  const ip = ipToInt(m[1]);
  const prefix = Number(m[2]);
  if (ip === undefined || prefix > 32 || prefix < 1) return undefined;
  const mask = prefix === 32 ? 0xffffffff : ~(0xffffffff >>> prefix) >>> 0;
  const network = (ip & mask) >>> 0;
  return { network, prefix, mask, broadcast: (network | (~mask >>> 0)) >>> 0 };
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return (ip & c.mask) >>> 0 === c.network;
}

const cidrString = z
  .string()
  .refine((s) => parseCidr(s) !== undefined, { message: 'must be a subnet in CIDR form such as 10.99.0.0/24' });

export function parseRange(s: string): { start: string; end: string } | undefined {
  const m = /^\s*([0-9.]+)\s*-\s*([0-9.]+)\s*$/.exec(s);
  if (!m) return undefined;
  const a = ipToInt(m[1]),
    b = ipToInt(m[2]);
  if (a === undefined || b === undefined || a > b) return undefined;
  return { start: m[1], end: m[2] };
}

const rangeSchema = z.union([
  z.string().transform((s, ctx) => {
    const r = parseRange(s);
    if (!r) {
      ctx.addIssue({
        code: 'custom',
        message: `range "${s}" must be FIRST-LAST such as 10.99.0.100-10.99.0.150 with FIRST <= LAST`,
      });
      return z.NEVER;
    }
    return r;
  }),
  z.object({ start: ipv4, end: ipv4 }),
]);

const ipList = z.union([ipv4.transform((s) => [s]), z.array(ipv4)]);

export const subnetSchema = z
  .object({
    /** The subnet, e.g. 10.99.0.0/24; chosen by the receiving interface's address or the relay's giaddr. */
    cidr: cidrString,
    /** Dynamic pool(s): "10.99.0.100-10.99.0.150" or {start, end}. Empty: reservations only. */
    ranges: z.array(rangeSchema).default([]),
    router: ipv4.optional(),
    dns: ipList.default([]),
    domain: z.string().min(1).optional(),
    ntp: ipList.default([]),
    leaseTimeSec: z.number().int().min(10).max(31_536_000).default(3600),
    /** Our address as seen from this subnet (server identifier, next-server). Default: our interface address in it, else dhcp.serverIp. */
    serverIp: ipv4.optional(),
    mtu: z.number().int().min(68).max(65535).optional(),
    /** The site whose nodes answer this subnet (src/hosts/site.ts); unset: every node. */
    site: z
      .string()
      .refine((v) => siteProblem(v, 'site') === undefined, {
        message: 'must be a site name: 1-32 lower-case letters, digits and dashes, such as dc1',
      })
      .optional(),
  })
  .strict();

export const dhcpConfigSchema = z
  .object({
    /** off (default: a rogue DHCP server is an incident), proxy (PXE answers beside the site's DHCP), authoritative. */
    mode: z.enum(['off', 'proxy', 'authoritative']).default('off'),
    /** Interface(s) to serve, comma-separated ("eth1" or "eth1,eth2"). Each gets its own socket bound to the device. */
    interface: z.string().min(1).optional(),
    /** Our address written as server identifier and next-server when no subnet-specific one applies. */
    serverIp: ipv4.optional(),
    port: z.number().int().min(1).max(65535).default(67),
    proxyPort: z.number().int().min(1).max(65535).default(4011),
    /** Where direct replies go (68; tests may change it). */
    clientPort: z.number().int().min(1).max(65535).default(68),
    subnets: z.array(subnetSchema).default([]),
    /** How long an OFFER holds an address for the client before another may get it. */
    offerHoldSec: z.number().int().min(1).max(3600).default(30),
    /** How long a DECLINEd address stays out of the pool (RFC 2131 3.1.5: it is in use by someone else). */
    declineHoldSec: z.number().int().min(1).default(3600),
    /**
     * Other rackboot nodes answer these subnets from the same database (authoritative mode on several nodes):
     * offers claim their address in the lease table, so no two nodes offer or ACK one address (src/dhcp/leases.ts).
     */
    sharedLeases: z.boolean().default(false),
    /** auto: bind sockets to the interface (SO_BINDTOIFINDEX) when possible; required: fail to start otherwise; off: one wildcard socket. */
    bindToDevice: z.enum(['auto', 'required', 'off']).default('auto'),
  })
  .strict()
  .superRefine((c, ctx) => {
    c.subnets.forEach((s, i) => {
      const cidr = parseCidr(s.cidr)!;
      for (const [j, r] of s.ranges.entries()) {
        for (const ip of [r.start, r.end]) {
          if (!cidrContains(cidr, ipToInt(ip)!))
            ctx.addIssue({
              code: 'custom',
              path: ['subnets', i, 'ranges', j],
              message: `${ip} is outside subnet ${s.cidr}`,
            });
        }
        if (ipToInt(r.start)! > ipToInt(r.end)!)
          ctx.addIssue({
            code: 'custom',
            path: ['subnets', i, 'ranges', j],
            message: `range start ${r.start} is after end ${r.end}`,
          });
      }
      if (s.router && !cidrContains(cidr, ipToInt(s.router)!))
        ctx.addIssue({
          code: 'custom',
          path: ['subnets', i, 'router'],
          message: `router ${s.router} is outside subnet ${s.cidr}`,
        });
    });
    if (c.mode === 'authoritative' && c.subnets.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['subnets'],
        message: 'authoritative mode needs at least one subnet (config dhcp.subnets, or --dhcp-subnet)',
      });
    }
  });

export type DhcpConfig = z.output<typeof dhcpConfigSchema>;
export type DhcpConfigInput = z.input<typeof dhcpConfigSchema>;
export type SubnetConfig = z.output<typeof subnetSchema>;

export interface DhcpFlags {
  mode?: string;
  interface?: string;
  subnet?: string;
  range?: string;
  router?: string;
  dns?: string;
  serverIp?: string;
}

export type DhcpConfigResult = { ok: true; config: DhcpConfig } | { ok: false; error: string };

/**
 * The common single-subnet case from command-line flags, over an optional config-file slice.
 * Flags win. Errors name the flag and show a valid value.
 */
export function dhcpConfigFromFlags(flags: DhcpFlags, base: DhcpConfigInput = {}): DhcpConfigResult {
  const out: DhcpConfigInput = { ...base, subnets: [...(base.subnets ?? [])] };
  if (flags.mode !== undefined) {
    if (!['off', 'proxy', 'authoritative'].includes(flags.mode))
      return { ok: false, error: `--dhcp-mode "${flags.mode}" must be off, proxy or authoritative` };
    out.mode = flags.mode as DhcpConfig['mode'];
  }
  if (flags.interface !== undefined) {
    if (!/^[A-Za-z0-9_.:@-]{1,15}(,[A-Za-z0-9_.:@-]{1,15})*$/.test(flags.interface))
      return {
        ok: false,
        error: `--dhcp-interface "${flags.interface}" must be an interface name such as eth1 (or eth1,eth2)`,
      };
    out.interface = flags.interface;
  }
  if (flags.serverIp !== undefined) {
    if (ipToInt(flags.serverIp) === undefined)
      return { ok: false, error: `--server-ip "${flags.serverIp}" must be an IPv4 address such as 10.99.0.1` };
    out.serverIp = flags.serverIp;
  }
  const subnetFlags = flags.range !== undefined || flags.router !== undefined || flags.dns !== undefined;
  if (flags.subnet === undefined && subnetFlags) {
    const which =
      flags.range !== undefined ? '--dhcp-range' : flags.router !== undefined ? '--dhcp-router' : '--dhcp-dns';
    return { ok: false, error: `${which} needs --dhcp-subnet (for example --dhcp-subnet 10.99.0.0/24)` };
  }
  if (flags.subnet !== undefined) {
    const cidr = parseCidr(flags.subnet);
    if (!cidr)
      return { ok: false, error: `--dhcp-subnet "${flags.subnet}" must be a subnet in CIDR form such as 10.99.0.0/24` };
    const cidrText = `${intToIp(cidr.network)}/${cidr.prefix}`;
    const existing = (out.subnets ?? []).findIndex((s) => s.cidr === cidrText || s.cidr === flags.subnet);
    const subnet: z.input<typeof subnetSchema> = existing >= 0 ? { ...out.subnets![existing] } : { cidr: cidrText };
    if (flags.range !== undefined) {
      const ranges: { start: string; end: string }[] = [];
      for (const part of flags.range.split(',')) {
        const r = parseRange(part);
        if (!r)
          return { ok: false, error: `--dhcp-range "${part}" must be FIRST-LAST such as 10.99.0.100-10.99.0.150` };
        for (const ip of [r.start, r.end]) {
          if (!cidrContains(cidr, ipToInt(ip)!))
            return { ok: false, error: `--dhcp-range: ${ip} is outside --dhcp-subnet ${cidrText}` };
        }
        ranges.push(r);
      }
      subnet.ranges = ranges;
    }
    if (flags.router !== undefined) {
      const r = ipToInt(flags.router);
      if (r === undefined)
        return { ok: false, error: `--dhcp-router "${flags.router}" must be an IPv4 address such as 10.99.0.1` };
      if (!cidrContains(cidr, r))
        return { ok: false, error: `--dhcp-router ${flags.router} is outside --dhcp-subnet ${cidrText}` };
      subnet.router = flags.router;
    }
    if (flags.dns !== undefined) {
      const list = flags.dns
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = list.find((s) => ipToInt(s) === undefined);
      if (bad !== undefined || list.length === 0)
        return {
          ok: false,
          error: `--dhcp-dns "${flags.dns}" must be IPv4 addresses separated by commas, such as 10.99.0.1,10.99.0.2`,
        };
      subnet.dns = list;
    }
    if (existing >= 0) out.subnets![existing] = subnet;
    else out.subnets!.push(subnet);
  }
  const parsed = dhcpConfigSchema.safeParse(out);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = ['dhcp', ...issue.path].join('.');
    return { ok: false, error: `${path}: ${issue.message}` };
  }
  return { ok: true, config: parsed.data };
}

/** The interface names of `interface` ("eth1,eth2" -> ["eth1","eth2"]). */
export function interfacesOf(c: DhcpConfig): string[] {
  return c.interface
    ? c.interface
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}
