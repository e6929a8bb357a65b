// One validated, frozen Config from defaults < config file < environment < flags (flags win).
// A bad setting is reported once, naming the setting and a valid value; main exits 2 on it.
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_STUCK_LIMITS, type StuckLimits } from './rollout/stuck.ts';
import { nodeIdProblem, servesSite, siteProblem } from './hosts/site.ts';
import { parseDatabase, type DatabaseTarget } from './store/target.ts';
import { dhcpConfigFromFlags, dhcpConfigSchema, type DhcpConfig, type DhcpFlags } from './dhcp/config.ts';
import { WEBHOOK_EVENTS, type WebhookEvent } from './webhooks/payload.ts';

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const duration = z
  .union([
    z.number().int().positive(),
    z.string().regex(/^\d+(ms|s|m|h|d)$/, 'must be a duration such as 90m, 6h or 2d'),
  ])
  .transform((v) =>
    typeof v === 'number'
      ? v * 1000
      : Number(v.replace(/\D+$/, '')) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[v.replace(/^\d+/, '') as 'ms'],
  );
const stageLimit = duration.refine((ms) => ms >= 1000 && ms <= 7 * 86_400_000, 'must be from 1s to 7d');
const port = z.number().int().min(0).max(65535);

/** An http(s) URL without user:password in it (the URL is shown in the delivery log; a secret goes in `secret`). */
function webhookUrlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be an http(s) URL such as https://hooks.example.com/rackboot';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return 'must be an http(s) URL such as https://hooks.example.com/rackboot';
  if (u.username || u.password)
    return 'must not carry user:password: the receiver checks the signature made with `secret`';
  return undefined;
}

const webhookSchema = z.strictObject({
  url: z
    .string()
    .max(2048, 'is longer than 2048 characters')
    .superRefine((v, ctx) => {
      const bad = webhookUrlProblem(v);
      if (bad) ctx.addIssue({ code: 'custom', message: bad });
    }),
  // The HMAC key: never logged, never shown; printable ASCII so it survives YAML and shell as written.
  secret: z
    .string()
    .min(16, 'must be at least 16 characters (make one with: openssl rand -hex 32)')
    .max(512, 'must be at most 512 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces (make one with: openssl rand -hex 32)'),
  events: z
    .array(z.enum(WEBHOOK_EVENTS, { message: `must be one of ${WEBHOOK_EVENTS.join(', ')}` }))
    .min(1, 'must list at least one event (leave it out for all of them)')
    .max(WEBHOOK_EVENTS.length)
    .optional(),
  /** How long one delivery attempt may take, headers included. */
  timeout: duration.optional(),
});

const fileSchema = z.strictObject({
  listen: z.string().optional(),
  site: z.string().optional(),
  nodeId: z.string().optional(),
  nodeHeartbeat: duration.refine((ms) => ms >= 1000 && ms <= 60_000, 'must be from 1s to 60s').optional(),
  httpPort: port.optional(),
  tftpPort: port.optional(),
  publicUrl: z.string().optional(),
  serverIp: z.string().optional(),
  dataDir: z.string().optional(),
  database: z.string().optional(),
  profilesDir: z.string().optional(),
  tftpRoot: z.string().optional(),
  imagesDir: z.string().optional(),
  templatesDir: z.string().optional(),
  tokenTtl: z.union([z.number(), z.string()]).optional(),
  tokenGrace: z.union([z.number(), z.string()]).optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).optional(),
  loaders: z
    .strictObject({ bios: z.string(), uefi: z.string(), ipxeBios: z.string(), ipxeUefi: z.string() })
    .partial()
    .optional(),
  tftp: z
    .strictObject({
      maxTransfers: z.number().int().positive(),
      maxPerClient: z.number().int().positive(),
      maxTransferSec: z.number().int().min(10).max(86_400),
      maxTimeoutSec: z.number().int().min(1).max(255),
    })
    .partial()
    .optional(),
  dhcp: z.record(z.string(), z.unknown()).optional(),
  http: z
    .strictObject({
      maxConnections: z.number().int().min(16).max(1_000_000),
      maxConnectionsPerAddress: z.number().int().min(1).max(1_000_000),
      headersTimeout: duration,
      requestTimeout: duration,
      idleTimeout: duration,
    })
    .partial()
    .optional(),
  logFormat: z.enum(['json', 'pretty', 'auto']).optional(),
  shutdownGrace: z.union([z.number(), z.string()]).optional(),
  metricsToken: z.string().optional(),
  allowedHosts: z.union([z.string(), z.array(z.string())]).optional(),
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  httpsPort: port.optional(),
  syslog: z
    .strictObject({
      port: port,
      ringLines: z.number().int().min(10).max(1_000_000),
      maxTotalLines: z.number().int().min(1000).max(100_000_000),
      ratePerSec: z.number().int().positive(),
      burst: z.number().int().positive(),
      maxLineBytes: z.number().int().min(256).max(65536),
      maxAge: duration,
      maxConnectionsPerSource: z.number().int().min(1).max(1024),
    })
    .partial()
    .optional(),
  webhooks: z
    .array(webhookSchema)
    .max(32, 'at most 32 webhooks')
    .refine((hooks) => new Set(hooks.map((h) => h.url)).size === hooks.length, 'lists a URL twice')
    .optional(),
  events: z
    .strictObject({
      maxAge: duration,
      maxPerHost: z.number().int().min(50).max(10_000_000),
      ratePerHost: z.number().min(0.1).max(100_000),
      burstPerHost: z.number().int().min(10).max(1_000_000),
      // 0: every repeat is written (within the rate).
      repeatWindow: z.union([z.literal(0), duration.refine((ms) => ms <= 3_600_000, 'must be at most 1h')]),
      maxDetailBytes: z
        .number()
        .int()
        .min(512)
        .max(1 << 20),
    })
    .partial()
    .optional(),
  // Stage time limits of stuck detection (src/rollout/stuck.ts); at most a week each.
  stuck: z
    .strictObject({
      dhcpAfterPowerOn: stageLimit,
      kernelAfterLoader: stageLimit,
      kickstartAfterKernel: stageLimit,
      builtAfterKickstart: stageLimit,
      checkEvery: duration.refine((ms) => ms >= 1000 && ms <= 3_600_000, 'must be from 1s to 1h'),
    })
    .partial()
    .optional(),
});

export interface WebhookConfig {
  url: string;
  secret: string;
  events: readonly WebhookEvent[];
  timeoutMs: number;
}

export interface Config {
  listen: string;
  /** The site this node serves (its hosts and subnets, plus those of no site); undefined: every site. */
  site?: string;
  /** This node's name in the nodes table (default <hostname>:<http port>). */
  nodeId: string;
  /** How often this node heartbeats into the nodes table; a node is dead after 3 missed beats (use one value on every node). */
  nodeHeartbeatMs: number;
  httpPort: number;
  /** 0 turns the TFTP server off. */
  tftpPort: number;
  publicUrl: string;
  serverIp: string;
  dataDir: string;
  /** Where the store is: a postgres:// URL (several nodes) or the SQLite file (default <dataDir>/rackboot.db). */
  database: DatabaseTarget;
  profilesDir: string;
  tftpRoot: string;
  imagesDir: string;
  /** The shipped templates (boot, kickstart, snippets, web). */
  templatesDir: string;
  /** Build events POSTed, signed, to these URLs (src/webhooks/). */
  webhooks: readonly WebhookConfig[];
  /** The operator's own templates directory (setting templatesDir): its boot/, kickstart/ and snippets/ files overlay the shipped ones. */
  templatesOverlayDir?: string;
  tokenTtlMs: number;
  /** After the token expired, how long a build whose kickstart was fetched still takes built/failed/progress. */
  tokenGraceMs: number;
  logLevel: string;
  loaders: { bios: string; uefi: string; ipxeBios: string; ipxeUefi: string };
  /** maxTransferSec: longest one transfer holds its slot; maxTimeoutSec: largest RFC 2349 timeout honoured. */
  tftp: { maxTransfers: number; maxPerClient: number; maxTransferSec: number; maxTimeoutSec: number };
  dhcp: DhcpConfig;
  /**
   * Connection bounds of the HTTP server (src/http/accept.ts). maxConnections is lowered at start when the
   * process descriptor limit cannot hold it beside TFTP and syslog.
   */
  http: {
    maxConnections: number;
    maxConnectionsPerAddress: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    idleTimeoutMs: number;
  };
  /** json (machines), pretty (people), auto: pretty when stdout is a terminal. */
  logFormat: 'json' | 'pretty' | 'auto';
  /** The installer log receiver (src/ops/syslog-server.ts); port 0 turns it off. */
  /** maxAgeMs: lines older are pruned; maxConnectionsPerSource: TCP connections one address may hold. */
  syslog: {
    port: number;
    ringLines: number;
    maxTotalLines: number;
    ratePerSec: number;
    burst: number;
    maxLineBytes: number;
    maxAgeMs: number;
    maxConnectionsPerSource: number;
  };
  /** Timeline retention and field bounds (src/store/events.ts). */
  events: {
    maxAgeMs: number;
    maxPerHost: number;
    maxDetailBytes: number;
    ratePerHost: number;
    burstPerHost: number;
    repeatWindowMs: number;
  };
  /** Stuck detection (src/rollout/stuck.ts): the stage time limits, and how often hosts in build are checked. */
  stuck: StuckLimits & { checkEveryMs: number };
  /** On SIGTERM, how long HTTP transfers in flight may run before their connections are closed. */
  shutdownGraceMs: number;
  /** When set, GET /metrics needs it as a bearer token. */
  metricsToken?: string;
  /** Host names the UI and API answer for (the boot paths answer any): the public URL's host, loopback, and --allowed-hosts. */
  allowedHosts: string[];
  /** HTTPS for the UI and API on a second listener; plain HTTP keeps the boot paths and redirects the rest. */
  tls?: { cert: string; key: string; port: number };
}

export interface Flags {
  config?: string;
  listen?: string;
  site?: string;
  'node-id'?: string;
  'http-port'?: string;
  'tftp-port'?: string;
  'public-url'?: string;
  'server-ip'?: string;
  'data-dir'?: string;
  database?: string;
  'profiles-dir'?: string;
  'tftp-root'?: string;
  'images-dir'?: string;
  'token-ttl'?: string;
  'token-grace'?: string;
  'log-level'?: string;
  'dhcp-mode'?: string;
  'dhcp-interface'?: string;
  'dhcp-subnet'?: string;
  'dhcp-range'?: string;
  'dhcp-router'?: string;
  'dhcp-dns'?: string;
  'log-format'?: string;
  'syslog-port'?: string;
  'syslog-ring'?: string;
  'metrics-token'?: string;
  'allowed-hosts'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  'https-port'?: string;
}

export const SERVE_FLAGS: Record<keyof Flags, string> = {
  config: 'FILE      YAML config file (settings below in camelCase; flags win over it)',
  listen: 'ADDR      address to bind HTTP and TFTP (default 0.0.0.0)',
  site: "NAME        serve only this site's hosts and DHCP subnets (and those without a site); default: every site",
  'node-id': "ID      this node's name in GET /api/nodes (default <hostname>:<http port>)",
  'http-port': 'N      HTTP port (default 8080)',
  'tftp-port': 'N      TFTP port (default 6969; 69 in production; 0 turns TFTP off)',
  'public-url': 'URL   base URL written into boot configs and kickstarts (default http://<server-ip>:<http-port>)',
  'server-ip': "IP     this server's address on the provisioning network (next-server, default URLs)",
  'data-dir': 'DIR     SQLite database and secrets (default ./data)',
  database:
    'URL     postgres://user@host/db to share one store between nodes (password: RACKBOOT_DATABASE or ~/.pgpass); default the SQLite file <data-dir>/rackboot.db',
  'profiles-dir': 'DIR host profiles, *.yaml (default ./profiles)',
  'tftp-root': 'DIR    boot loaders and kernels (default ./tftpboot)',
  'images-dir': 'DIR   stage2 trees and squashfs images served at /images/ (default ./images)',
  'token-ttl': 'DUR     how long a build token lives (default 6h)',
  'token-grace':
    'DUR   after expiry, how long a build whose kickstart was fetched still takes built/failed (default 24h)',
  'log-level': 'LEVEL  trace|debug|info|warn|error (default info)',
  'log-format': 'FMT   json | pretty | auto (default: pretty on a terminal, JSON otherwise)',
  'syslog-port': 'N    installer log receiver, UDP and TCP (default 5514; 514 in production; 0 turns it off)',
  'syslog-ring': 'N    installer log lines kept per build, the newest (default 20000)',
  'metrics-token': 'T  GET /metrics needs Authorization: Bearer T (prefer RACKBOOT_METRICS_TOKEN: flags show in ps)',
  'allowed-hosts': "A,B  host names the UI/API answer for, besides the public URL's host, localhost and 127.0.0.1",
  'tls-cert': 'FILE    PEM certificate (chain): serve the UI and API over HTTPS; plain HTTP keeps only the boot paths',
  'tls-key': 'FILE     PEM private key of --tls-cert',
  'https-port': 'N     HTTPS port of the UI and API when --tls-cert is set (default 8443)',
  'dhcp-mode': 'MODE   off (default) | proxy | authoritative',
  'dhcp-interface': 'IF  interface(s) to answer DHCP on, e.g. eth1',
  'dhcp-subnet': 'CIDR  subnet for authoritative mode, e.g. 10.99.0.0/24',
  'dhcp-range': 'A-B     dynamic pool, e.g. 10.99.0.100-10.99.0.150',
  'dhcp-router': 'IP    default gateway handed out',
  'dhcp-dns': 'IP[,IP]  DNS servers handed out',
};

export class ConfigError extends Error {}

const ENV: Partial<Record<keyof Flags, string>> = {
  listen: 'RACKBOOT_LISTEN',
  site: 'RACKBOOT_SITE',
  'node-id': 'RACKBOOT_NODE_ID',
  'http-port': 'RACKBOOT_HTTP_PORT',
  'tftp-port': 'RACKBOOT_TFTP_PORT',
  'public-url': 'RACKBOOT_PUBLIC_URL',
  'server-ip': 'RACKBOOT_SERVER_IP',
  'data-dir': 'RACKBOOT_DATA_DIR',
  database: 'RACKBOOT_DATABASE',
  'profiles-dir': 'RACKBOOT_PROFILES_DIR',
  'tftp-root': 'RACKBOOT_TFTP_ROOT',
  'images-dir': 'RACKBOOT_IMAGES_DIR',
  'token-ttl': 'RACKBOOT_TOKEN_TTL',
  'token-grace': 'RACKBOOT_TOKEN_GRACE',
  'log-level': 'RACKBOOT_LOG_LEVEL',
  'dhcp-mode': 'RACKBOOT_DHCP_MODE',
  'log-format': 'RACKBOOT_LOG_FORMAT',
  'syslog-port': 'RACKBOOT_SYSLOG_PORT',
  'syslog-ring': 'RACKBOOT_SYSLOG_RING',
  'metrics-token': 'RACKBOOT_METRICS_TOKEN',
  'allowed-hosts': 'RACKBOOT_ALLOWED_HOSTS',
  'tls-cert': 'RACKBOOT_TLS_CERT',
  'tls-key': 'RACKBOOT_TLS_KEY',
  'https-port': 'RACKBOOT_HTTPS_PORT',
};

function intSetting(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 65535)
    throw new ConfigError(`${name} "${value}" must be a port number 0-65535`);
  return Number(value);
}

/** The machine's host name made a valid node id prefix (a name with odd characters must not stop serve). */
function defaultNodeName(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '')
      .slice(0, 50) || 'node'
  );
}

function firstLanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

export function loadConfig(
  flagsIn: Flags,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Readonly<Config> {
  const flags: Flags = { ...flagsIn };
  for (const [flag, name] of Object.entries(ENV)) {
    const f = flag as keyof Flags;
    if (flags[f] === undefined && env[name!] !== undefined && env[name!] !== '') flags[f] = env[name!];
  }
  let file: z.infer<typeof fileSchema> = {};
  let base = cwd;
  if (flags.config) {
    let text: string;
    try {
      text = readFileSync(flags.config, 'utf8');
    } catch (err) {
      throw new ConfigError(`--config ${flags.config}: ${(err as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError(`--config ${flags.config}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new ConfigError(
        `${flags.config}: setting ${i.path.join('.') || (i as { keys?: string[] }).keys?.join(', ')}: ${i.message}`,
      );
    }
    file = parsed.data;
    base = dirname(resolve(flags.config));
  }
  const dir = (flag: string | undefined, fromFile: string | undefined, dflt: string) =>
    flag !== undefined ? resolve(cwd, flag) : fromFile !== undefined ? resolve(base, fromFile) : resolve(cwd, dflt);

  const httpPort = intSetting('--http-port', flags['http-port']) ?? file.httpPort ?? 8080;
  const tftpPort = intSetting('--tftp-port', flags['tftp-port']) ?? file.tftpPort ?? 6969;
  const listen = flags.listen ?? file.listen ?? '0.0.0.0';
  const serverIp =
    flags['server-ip'] ??
    file.serverIp ??
    (listen !== '0.0.0.0' && listen !== '::' ? listen : (firstLanAddress() ?? '127.0.0.1'));
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(serverIp))
    throw new ConfigError(`--server-ip "${serverIp}" must be an IPv4 address such as 10.99.0.1`);
  let publicUrl = (flags['public-url'] ?? file.publicUrl ?? `http://${serverIp}:${httpPort}`).replace(/\/+$/, '');
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    if (/[\s"'`]/.test(publicUrl)) throw new Error('spaces or quotes');
  } catch {
    throw new ConfigError(`--public-url "${publicUrl}" must be an http(s) URL such as http://10.99.0.1:8080`);
  }
  publicUrl = publicUrl.replace(/\/+$/, '');
  const ttlRaw = flags['token-ttl'] ?? file.tokenTtl ?? '6h';
  const ttl = duration.safeParse(typeof ttlRaw === 'string' && /^\d+$/.test(ttlRaw) ? Number(ttlRaw) : ttlRaw);
  if (!ttl.success) throw new ConfigError(`--token-ttl "${ttlRaw}" must be a duration such as 90m, 6h or 2d`);
  const graceCbRaw = flags['token-grace'] ?? file.tokenGrace ?? '24h';
  // 0 turns the grace period off (callbacks end with the token, as before).
  const tokenGrace =
    String(graceCbRaw) === '0'
      ? { success: true as const, data: 0 }
      : duration.safeParse(
          typeof graceCbRaw === 'string' && /^\d+$/.test(graceCbRaw) ? Number(graceCbRaw) : graceCbRaw,
        );
  if (!tokenGrace.success)
    throw new ConfigError(`--token-grace "${graceCbRaw}" must be a duration such as 90m, 24h or 2d`);
  const logLevel = flags['log-level'] ?? file.logLevel ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(logLevel))
    throw new ConfigError(`--log-level "${logLevel}" must be trace, debug, info, warn or error`);

  const logFormat = flags['log-format'] ?? file.logFormat ?? 'auto';
  if (!['json', 'pretty', 'auto'].includes(logFormat))
    throw new ConfigError(`--log-format "${logFormat}" must be json, pretty or auto`);
  const graceRaw = file.shutdownGrace ?? '10s';
  const grace = duration.safeParse(
    typeof graceRaw === 'string' && /^\d+$/.test(graceRaw) ? Number(graceRaw) : graceRaw,
  );
  if (!grace.success) throw new ConfigError(`shutdownGrace "${graceRaw}" must be a duration such as 10s or 1m`);
  const syslogPort = intSetting('--syslog-port', flags['syslog-port']) ?? file.syslog?.port ?? 5514;
  const ringText = flags['syslog-ring'];
  if (ringText !== undefined && (!/^\d+$/.test(ringText) || Number(ringText) < 10 || Number(ringText) > 1_000_000))
    throw new ConfigError(`--syslog-ring "${ringText}" must be a number of lines from 10 to 1000000`);
  const { maxAge: syslogMaxAge, ...syslogFile } = file.syslog ?? {};
  const syslog = {
    ratePerSec: 1000,
    burst: 5000,
    maxLineBytes: 4096,
    maxTotalLines: 5_000_000,
    ringLines: 20_000,
    maxConnectionsPerSource: 4,
    ...syslogFile,
    maxAgeMs: syslogMaxAge ?? 30 * 86_400_000,
    port: syslogPort,
    ...(ringText !== undefined ? { ringLines: Number(ringText) } : {}),
  };

  const dhcpBase = dhcpConfigSchema.safeParse(file.dhcp ?? {});
  if (!dhcpBase.success) {
    const i = dhcpBase.error.issues[0];
    throw new ConfigError(`setting dhcp.${i.path.join('.')}: ${i.message}`);
  }
  const dhcpFlags: DhcpFlags = {
    mode: flags['dhcp-mode'],
    interface: flags['dhcp-interface'],
    subnet: flags['dhcp-subnet'],
    range: flags['dhcp-range'],
    router: flags['dhcp-router'],
    dns: flags['dhcp-dns'],
    serverIp: flags['server-ip'] ?? (file.dhcp?.serverIp as string | undefined) ?? serverIp,
  };
  const dhcp = dhcpConfigFromFlags(dhcpFlags, (file.dhcp ?? {}) as never);
  if (!dhcp.ok) throw new ConfigError(dhcp.error);
  const site = flags.site ?? file.site;
  const siteError = site === undefined ? undefined : siteProblem(site, '--site');
  if (siteError) throw new ConfigError(siteError);
  // A node answers its own site's subnets and those of no site: one config file can serve every site's nodes.
  const dhcpConfig = { ...dhcp.config, subnets: dhcp.config.subnets.filter((s) => servesSite(site, s.site)) };
  if (dhcpConfig.mode === 'authoritative' && dhcpConfig.subnets.length === 0)
    throw new ConfigError(
      `setting dhcp.subnets: no subnet for site ${site} (each has another dhcp.subnets[].site): give this site a subnet, or a subnet no site`,
    );

  const metricsToken = flags['metrics-token'] ?? file.metricsToken;
  if (metricsToken !== undefined && !/^[\x21-\x7e]{16,256}$/.test(metricsToken)) {
    throw new ConfigError(
      '--metrics-token must be 16-256 printable characters without spaces (e.g. openssl rand -hex 24)',
    );
  }
  const extraHosts =
    flags['allowed-hosts'] !== undefined
      ? flags['allowed-hosts'].split(',')
      : typeof file.allowedHosts === 'string'
        ? file.allowedHosts.split(',')
        : (file.allowedHosts ?? []);
  const allowedHosts = new Set([
    'localhost',
    '127.0.0.1',
    '::1',
    new URL(publicUrl).hostname.replace(/^\[|\]$/g, '').toLowerCase(),
  ]);
  for (const raw of extraHosts) {
    const h = raw.trim().toLowerCase();
    if (!h) continue;
    if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(h) && !/^[0-9a-f:]{2,39}$/.test(h))
      throw new ConfigError(
        `--allowed-hosts: "${raw.slice(0, 80)}" is not a host name or IP address (give names without scheme or port, comma-separated)`,
      );
    allowedHosts.add(h);
  }
  const certFile = flags['tls-cert'] ?? file.tlsCert;
  const keyFile = flags['tls-key'] ?? file.tlsKey;
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError(
      `--tls-cert and --tls-key go together: ${certFile === undefined ? '--tls-cert' : '--tls-key'} is missing`,
    );
  const httpsPort = intSetting('--https-port', flags['https-port']) ?? file.httpsPort ?? 8443;
  const tls =
    certFile !== undefined && keyFile !== undefined
      ? {
          cert: flags['tls-cert'] !== undefined ? resolve(cwd, certFile) : resolve(base, certFile),
          key: flags['tls-key'] !== undefined ? resolve(cwd, keyFile) : resolve(base, keyFile),
          port: httpsPort,
        }
      : undefined;
  if (tls && tls.port === httpPort && httpPort !== 0)
    throw new ConfigError(`--https-port ${httpsPort} is the HTTP port too: choose another (default 8443)`);

  const nodeId = flags['node-id'] ?? file.nodeId ?? `${defaultNodeName()}:${httpPort}`;
  const nodeIdError = nodeIdProblem(nodeId, '--node-id');
  if (nodeIdError) throw new ConfigError(nodeIdError);

  const dataDir = dir(flags['data-dir'], file.dataDir, 'data');
  let database: DatabaseTarget;
  try {
    database = parseDatabase(flags.database ?? file.database, dataDir);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  if (database.dialect === 'sqlite')
    database = { dialect: 'sqlite', file: resolve(flags.database !== undefined ? cwd : base, database.file) };

  return Object.freeze({
    site,
    nodeId,
    nodeHeartbeatMs: file.nodeHeartbeat ?? 5_000,
    database,
    metricsToken,
    allowedHosts: [...allowedHosts],
    tls,
    listen,
    httpPort,
    tftpPort,
    publicUrl,
    serverIp,
    dataDir,
    profilesDir: dir(flags['profiles-dir'], file.profilesDir, 'profiles'),
    tftpRoot: dir(flags['tftp-root'], file.tftpRoot, 'tftpboot'),
    imagesDir: dir(flags['images-dir'], file.imagesDir, 'images'),
    templatesDir: join(PACKAGE_ROOT, 'templates'),
    webhooks: (file.webhooks ?? []).map((h) => ({
      url: h.url,
      secret: h.secret,
      events: h.events ?? [...WEBHOOK_EVENTS],
      timeoutMs: Math.min(60_000, h.timeout ?? 10_000),
    })),
    ...(file.templatesDir ? { templatesOverlayDir: resolve(base, file.templatesDir) } : {}),
    tokenTtlMs: ttl.data,
    tokenGraceMs: tokenGrace.data,
    logLevel,
    loaders: {
      bios: 'pxelinux.0',
      uefi: 'grubx64.efi',
      ipxeBios: 'undionly.kpxe',
      ipxeUefi: 'ipxe.efi',
      ...file.loaders,
    },
    // A rack powers on at once: 200 hosts, each with a transfer or two in flight (dnsmasq caps at 50 by default).
    tftp: { maxTransfers: 600, maxPerClient: 8, maxTransferSec: 300, maxTimeoutSec: 10, ...file.tftp },
    dhcp: dhcpConfig,
    // A 200-host rack with a few parallel downloads each fits under 64 per address; 4096 in all.
    http: {
      maxConnections: file.http?.maxConnections ?? 4096,
      maxConnectionsPerAddress: file.http?.maxConnectionsPerAddress ?? 64,
      headersTimeoutMs: file.http?.headersTimeout ?? 15_000,
      requestTimeoutMs: file.http?.requestTimeout ?? 120_000,
      idleTimeoutMs: file.http?.idleTimeout ?? 65_000,
    },
    logFormat: logFormat as Config['logFormat'],
    shutdownGraceMs: grace.data,
    syslog,
    events: {
      maxAgeMs: file.events?.maxAge ?? 90 * 86_400_000,
      maxPerHost: file.events?.maxPerHost ?? 2000,
      maxDetailBytes: file.events?.maxDetailBytes ?? 4096,
      ratePerHost: file.events?.ratePerHost ?? 2,
      burstPerHost: file.events?.burstPerHost ?? 100,
      repeatWindowMs: file.events?.repeatWindow ?? 5000,
    },
    stuck: {
      dhcpAfterPowerOnMs: file.stuck?.dhcpAfterPowerOn ?? DEFAULT_STUCK_LIMITS.dhcpAfterPowerOnMs,
      kernelAfterLoaderMs: file.stuck?.kernelAfterLoader ?? DEFAULT_STUCK_LIMITS.kernelAfterLoaderMs,
      kickstartAfterKernelMs: file.stuck?.kickstartAfterKernel ?? DEFAULT_STUCK_LIMITS.kickstartAfterKernelMs,
      builtAfterKickstartMs: file.stuck?.builtAfterKickstart ?? DEFAULT_STUCK_LIMITS.builtAfterKickstartMs,
      checkEveryMs: file.stuck?.checkEvery ?? 15_000,
    },
  });
}
