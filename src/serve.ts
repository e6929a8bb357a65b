// Starts every server of one rackboot process on a Config; returns a handle that stops them cleanly.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomBytes, createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { databaseBytes, openDb, ping, type Db } from './store/db.ts';
import { SqliteChangeFeed, type ChangeFeed } from './store/changes.ts';
import { HostStore } from './store/hosts.ts';
import { BuildStore } from './store/builds.ts';
import { EventLog } from './store/events.ts';
import { AuditLog } from './store/audit.ts';
import { ProfileCatalog } from './profiles/catalog.ts';
import { createRenderer } from './render/render.ts';
import { TemplateCatalog } from './render/template-catalog.ts';
import { templateProbe } from './render/probe.ts';
import { Provisioner } from './provision.ts';
import { createApp, kickstartFastPath } from './http/app.ts';
import { createWebRouter } from './web/pages/index.ts';
import { parseConfigPath } from './boot/paths.ts';
import { decideBoot } from './boot/decide.ts';
import { macFromArp } from './net/neighbors.ts';
import { startTftpServer, type TftpFileSource, type TftpServer } from './tftp/server.ts';
import { staticFileSource } from './tftp/static.ts';
import { startDhcpServer, type DhcpServerHandle } from './dhcp/server.ts';
import { LeaseStore } from './dhcp/leases.ts';
import { ImageStore } from './images/store.ts';
import { createUefiChainResolver } from './images/uefi-chain.ts';
import { SyslogStore } from './ops/syslog-store.ts';
import { startSyslogReceiver, type SyslogReceiver } from './ops/syslog-server.ts';
import { createMetrics, dhcpMessageType } from './ops/metrics.ts';
import { createLogsApi, createOpsRouter, type Readiness } from './ops/routes.ts';
import { writePidFile } from './ops/backup.ts';
import { stateOf } from './store/builds.ts';
import type { Renderer } from './render/render.ts';
import { acceptBursts, connectionBudget, limitConnections, type ConnectionGuard } from './http/accept.ts';
import { ensurePrivateDir, secretKeyProblem } from './ops/private-files.ts';
import type { SurfaceOptions } from './http/surface.ts';
import { ApiTokenStore, UserStore } from './store/users.ts';
import { SettingsStore } from './store/settings.ts';
import { DiscoveredStore } from './store/discovered.ts';
import { SqliteWebhookDeliveryStore, type WebhookDeliveryStore } from './store/webhooks.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { createTemplatesApi } from './http/api/templates.ts';
import { SqliteRolloutStore, type RolloutStore } from './store/rollouts.ts';
import { RolloutService } from './rollout/service.ts';
import { RolloutRunner } from './rollout/runner.ts';
import { StuckWatch } from './rollout/stuck-watch.ts';
import { createRolloutApi } from './rollout/api.ts';
import { firmwareOf, type FirmwareGuess } from './rollout/firmware.ts';
import type { BmcDriver } from './bmc/driver.ts';
import type { Mac } from './net/mac.ts';
import type { ApiDocs } from './http/openapi.ts';
import { SqliteBmcStore, type BmcStore } from './store/bmc.ts';
import { loadBmcKey, secretBox } from './bmc/secret-box.ts';
import { BmcService } from './bmc/index.ts';
import { PowerService } from './bmc/power.ts';
import { createBmcApi } from './http/bmc-api.ts';
import { sharedBuildSecret } from './store/build-secret.ts';
import { SqliteNodeRegistry } from './store/nodes.ts';
import { createNodesApi, rackbootVersion, startHeartbeat, type NodeHeartbeat } from './ops/nodes.ts';

/** serve refuses to start on a secret.key others can read (the CLI exits 2 on it). */
export class SecretKeyError extends Error {}

export interface Core {
  db: Db;
  durableDb: Db;
  hosts: HostStore;
  builds: BuildStore;
  events: EventLog;
  audit: AuditLog;
  catalog: ProfileCatalog;
  /** Webhook deliveries (src/webhooks/): pending ones survive a restart; the delivery log reads them. */
  webhookDeliveries: WebhookDeliveryStore;
  /** Boot, kickstart and snippet templates, shipped and the operator's overlay, hot-reloaded (src/render/template-catalog.ts). */
  templates: TemplateCatalog;
  provisioner: Provisioner;
  images: ImageStore;
  /** Installer log lines per build (src/ops). */
  syslog: SyslogStore;
  /** DHCP leases (src/dhcp), also where a restarted server finds which MAC an address belongs to. */
  leases: LeaseStore;
  /** What changed, from this process and others (the CLI writes the same file): the live board listens. */
  changes: ChangeFeed;
  /** Rollouts (src/rollout): recorded by the API and the CLI, carried out by serve's runner. */
  rollouts: RolloutStore;
  rolloutService: RolloutService;
  /** The BMC driver of a host (src/bmc), undefined when it has none. */
  bmcFor: (mac: Mac) => Promise<BmcDriver | undefined>;
  /** The host's firmware (UEFI or legacy) from what it was seen doing. */
  firmwareOf: (mac: Mac) => FirmwareGuess;
  /** Each host's BMC (src/store/bmc.ts; passwords sealed with bmc.key), its drivers, and power actions. */
  bmc: BmcStore;
  bmcService: BmcService;
  power: PowerService;
}

/** How many of the installer's last log lines go into a build.failed event. */
export const FAILURE_TAIL_LINES = 40;

/** The secret that build tokens are derived from: 32 random bytes in the data dir, readable by us only. */
export function loadSecret(dataDir: string): Buffer {
  const file = join(dataDir, 'secret.key');
  ensurePrivateDir(dataDir);
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  }
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new Error(
      `${file} is damaged (expected 64 hex digits); restore it from backup, or delete it to invalidate all build tokens`,
    );
  return Buffer.from(hex, 'hex');
}

/** Store, profiles, renderer and the build lifecycle: what both `serve` and the CLI commands use. */
export function openCore(
  config: Config,
  log: Logger,
  hooks: {
    kickstartRendered?: (seconds: number) => void;
    syslogTarget?: () => string | undefined;
    bmcFor?: (mac: Mac) => Promise<BmcDriver | undefined>;
  } = {},
): Core {
  const file = join(config.dataDir, 'rackboot.db');
  // The async store (src/store/index.ts) runs on both databases, but serve and the host commands still use the
  // synchronous SQLite classes: refuse another target rather than quietly serving from the data dir's file.
  if (config.database.dialect !== 'sqlite' || resolve(config.database.file) !== resolve(file))
    throw new Error(
      `--database: serve and the host, build, rack and power commands run on the data dir's SQLite file (${file}) in this version; ` +
        `another database is used by backup, restore and users only`,
    );
  const durableDb = openDb(file, 'full');
  const db = openDb(file, 'normal');
  const hosts = new HostStore(durableDb);
  // The token secret is the database's (every node derives the same tokens); secret.key seeds it once.
  const secret = sharedBuildSecret(durableDb, () => loadSecret(config.dataDir));
  const builds = new BuildStore(durableDb, secret, Date.now, db, config.tokenGraceMs);
  const events = new EventLog(db, Date.now, config.events, config.nodeId);
  const audit = new AuditLog(db);
  const catalog = new ProfileCatalog(config.profilesDir, log);
  const configured = config.syslog.port ? `${config.serverIp}:${config.syslog.port}` : undefined;
  const templates = new TemplateCatalog({ shipped: config.templatesDir, overlay: config.templatesOverlayDir }, log);
  const renderer = withOps(
    createRenderer(() => templates.library),
    hooks.syslogTarget ?? (() => configured),
    hooks.kickstartRendered,
  );
  const images = new ImageStore(durableDb);
  const syslog = new SyslogStore(db, {
    ringLines: config.syslog.ringLines,
    maxTotalLines: config.syslog.maxTotalLines,
    maxQueued: 100_000,
    maxAgeMs: config.syslog.maxAgeMs,
  });
  const leases = new LeaseStore(db, config.dhcp.sharedLeases);
  // The in-memory learnt map is empty after a restart: live bound DHCP leases and the kernel's ARP table still say who an address is.
  const lease = (ip: string) => {
    const l = leases.byIp(ip);
    return l?.state === 'bound' && l.mac && l.expiresAt > Date.now() ? l.mac : undefined;
  };
  // TFTP and HTTP sightings (the DHCP server records its own): bounded like every discovered row.
  const sightings = new DiscoveredStore(db);
  const provisioner = new Provisioner({
    hosts,
    builds,
    events,
    audit,
    profiles: catalog,
    images,
    renderer,
    log,
    baseUrl: config.publicUrl,
    tokenTtlMs: config.tokenTtlMs,
    lease,
    neighbor: (ip) => macFromArp(ip),
    failureTail: (buildId) => syslog.tail(buildId, FAILURE_TAIL_LINES),
    uefiChain: createUefiChainResolver({ images, tftpRoot: config.tftpRoot, loaders: config.loaders }),
    site: config.site,
    discovered: (m) => sightings.seen(m),
  });
  // Idle until a board subscribes: CLI commands open the core too and never poll.
  const changes = new SqliteChangeFeed(db, {
    local: events,
    onError: (err) => log.error({ err: (err as Error).message }, 'change feed: read failed'),
  });
  // Trial renders refuse a template that fails with the profiles that use it; a profile edit re-runs them.
  templates.setProbe(
    templateProbe({ profiles: () => catalog.snapshot.profiles.values(), images: (name) => images.resolve(name) }),
  );
  catalog.onChange(() => templates.reload());
  const webhookDeliveries = new SqliteWebhookDeliveryStore(durableDb);
  const rollouts = new SqliteRolloutStore(durableDb);
  const rolloutService = new RolloutService({
    store: rollouts,
    hosts,
    state: (mac) => provisioner.state(mac),
    cancelBuild: (mac, actor) => provisioner.cancelBuild(mac, actor),
    partitioning: (host) => {
      const r = provisioner.profileFor(host);
      return r.ok ? r.value.partitioning : undefined;
    },
    stuck: (mac) => provisioner.stuck(mac),
  });
  const bmc = new SqliteBmcStore(durableDb, secretBox(loadBmcKey(config.dataDir)));
  const bmcService = new BmcService({ store: bmc });
  const power = new PowerService({ bmc: bmcService, events, audit });
  const bmcFor = hooks.bmcFor ?? ((mac: Mac) => bmcService.forHost(mac));
  const firmware = (mac: Mac) => firmwareOf(events.timeline(mac, 200));
  return {
    db,
    durableDb,
    hosts,
    builds,
    events,
    audit,
    catalog,
    templates,
    provisioner,
    images,
    syslog,
    leases,
    webhookDeliveries,
    rollouts,
    rolloutService,
    bmcFor,
    firmwareOf: firmware,
    changes,
    bmc,
    bmcService,
    power,
  };
}

/** The renderer as served: install configs name the syslog receiver (inst.syslog=), kickstarts are timed. */
function withOps(r: Renderer, syslog: () => string | undefined, timed?: (seconds: number) => void): Renderer {
  return {
    kickstart: (ctx) => {
      const t = performance.now();
      const out = r.kickstart(ctx);
      timed?.((performance.now() - t) / 1000);
      return out;
    },
    installConfig: (kind, ctx) => {
      const target = syslog();
      return r.installConfig(kind, target && !ctx.syslog ? { ...ctx, syslog: target } : ctx);
    },
    localConfig: (kind, reason) => r.localConfig(kind, reason),
    defaultConfig: (kind, reason) => r.defaultConfig(kind, reason),
  };
}

/** The API token: RACKBOOT_ADMIN_TOKEN, or one made at first start, shown once, stored only as a hash. */
export function adminTokenHash(
  settings: SettingsStore,
  env: NodeJS.ProcessEnv,
  announce: (token: string) => void,
): string {
  const fromEnv = env.RACKBOOT_ADMIN_TOKEN;
  if (fromEnv) return createHash('sha256').update(fromEnv).digest('hex');
  const stored = settings.adminTokenHash();
  if (stored) return stored;
  const token = randomBytes(24).toString('base64url');
  const hash = createHash('sha256').update(token).digest('hex');
  settings.addAdminTokenHash(hash);
  announce(token);
  return hash;
}

export interface Running {
  core: Core;
  httpPort: number;
  /** The HTTPS listener of the UI and API, when --tls-cert is set. */
  httpsPort?: number;
  tftpPort?: number;
  syslogPort?: number;
  dhcpPorts: number[];
  close(): Promise<void>;
}

export async function startRackboot(
  config: Config,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  opts: { bmcFor?: (mac: Mac) => Promise<BmcDriver | undefined> } = {},
): Promise<Running> {
  const keyProblem = secretKeyProblem(config.dataDir);
  if (keyProblem) throw new SecretKeyError(keyProblem);
  // Read before anything binds: a wrong path fails the start with the file named.
  const tlsFiles = config.tls && {
    cert: readTlsFile('--tls-cert', config.tls.cert),
    key: readTlsFile('--tls-key', config.tls.key),
  };
  let observeRender: ((s: number) => void) | undefined;
  let syslogTarget: string | undefined; // set once the receiver is bound: configs never point Anaconda at a port we do not hold
  const core = openCore(config, log, {
    kickstartRendered: (s) => observeRender?.(s),
    syslogTarget: () => syslogTarget,
    bmcFor: opts.bmcFor,
  });
  const { provisioner: p, hosts, db } = core;
  let tftpRef: TftpServer | undefined;
  let httpGuard: ConnectionGuard | undefined;
  const metrics = createMetrics({
    activeTransfers: () => ({ tftp: tftpRef?.activeTransfers() ?? 0 }),
    httpConnections: () => httpGuard?.open() ?? 0,
    tftpEvictions: () => tftpRef?.evictions() ?? 0,
    buildStates: () => {
      const counts: Record<string, number> = {};
      const latest = core.builds.latestForAll();
      const now = Date.now();
      for (const h of hosts.list()) {
        const st = stateOf(latest.get(h.mac), now);
        counts[st] = (counts[st] ?? 0) + 1;
      }
      return counts;
    },
    syslogQueued: () => core.syslog.stats.queued,
    dbBytes: () => databaseBytes(config.dataDir),
  });
  observeRender = (s) => metrics.kickstartRendered(s);
  core.events.subscribe((e) => {
    if ((e.type !== 'build.built' && e.type !== 'build.failed') || e.buildId === undefined) return;
    const b = core.builds.byId(e.buildId);
    if (b)
      metrics.buildFinished(
        e.type === 'build.built' ? 'built' : 'failed',
        ((b.finishedAt ?? Date.now()) - b.createdAt) / 1000,
      );
  });
  const bound: Record<string, boolean | string> = {
    http: false,
    tftp: config.tftpPort === 0,
    dhcp: config.dhcp.mode === 'off',
    syslog: config.syslog.port === 0,
  };
  let stopping = false;
  const ready = (): Readiness => {
    const checks: Record<string, string> = {};
    try {
      ping(core.db);
      ping(core.durableDb);
      checks.store = 'ok';
    } catch (err) {
      checks.store = `not open: ${(err as Error).message}`;
    }
    const snap = core.catalog.snapshot;
    checks.profiles =
      snap.profiles.size > 0
        ? `ok (${snap.profiles.size})`
        : `none loaded from ${config.profilesDir}${snap.errors.length ? ` (${snap.errors.length} error(s))` : ''}`;
    for (const [k, v] of Object.entries(bound)) checks[k] = v === true ? 'ok' : typeof v === 'string' ? v : 'not bound';
    if (stopping) checks.shutdown = 'shutting down';
    return { ok: !stopping && Object.values(checks).every((v) => v.startsWith('ok')), checks };
  };
  await core.catalog.watch();
  await core.templates.watch();
  mkdirSync(config.tftpRoot, { recursive: true });
  mkdirSync(config.imagesDir, { recursive: true });

  const settings = new SettingsStore(db);
  const tokenHash = adminTokenHash(settings, env, (t) =>
    process.stderr.write(
      `\n  rackboot: API token (shown once; set RACKBOOT_ADMIN_TOKEN to choose your own):\n\n    ${t}\n\n`,
    ),
  );
  const nodeRegistry = new SqliteNodeRegistry(core.durableDb, Date.now, config.nodeHeartbeatMs);
  const web = createWebRouter({
    rollouts: core.rolloutService,
    provisioner: p,
    hosts,
    builds: core.builds,
    events: core.events,
    audit: core.audit,
    db,
    catalog: core.catalog,
    profilesDir: config.profilesDir,
    templatesDir: config.templatesDir,
    publicUrl: config.publicUrl,
    log,
    secureCookies: config.tls !== undefined || config.publicUrl.startsWith('https:'),
    changes: core.changes,
    syslog: core.syslog,
    templates: () => core.templates.library,
    webhookDeliveries: core.webhookDeliveries,
    bmc: core.bmc,
    power: core.power,
    nodes: nodeRegistry,
    nodeId: config.nodeId,
  });
  const apiTokens = new ApiTokenStore(db, new UserStore(db));
  let heartbeat: NodeHeartbeat | undefined;
  // httpsPort is set to the bound port once the HTTPS listener is up (the redirect names it).
  const surface: SurfaceOptions = { allowedHosts: config.allowedHosts, httpsPort: config.tls?.port };
  const app = createApp({
    provisioner: p,
    hosts,
    audit: core.audit,
    db,
    profiles: () => core.catalog.snapshot,
    tftpRoot: config.tftpRoot,
    imagesDir: config.imagesDir,
    images: core.images,
    adminTokenHash: tokenHash,
    log,
    routers: [createOpsRouter({ metrics, ready, metricsToken: config.metricsToken }), web],
    middleware: [metrics.httpMiddleware],
    apiRouters: [
      createTemplatesApi({
        templates: () => core.templates.library,
        profiles: () => core.catalog.snapshot,
        hosts,
        deliveries: core.webhookDeliveries,
      }),
      createRolloutApi({ service: core.rolloutService }),
      createNodesApi({ nodes: nodeRegistry, self: config.nodeId }),
      (docs: ApiDocs) => createLogsApi({ hosts, builds: core.builds, syslog: core.syslog, docs }),
      (docs: ApiDocs) => createBmcApi({ hosts, bmc: core.bmc, power: core.power, audit: core.audit, docs }),
    ],
    userToken: (t) => apiTokens.authenticate(t),
    settings,
    surface,
    bmc: core.bmc,
  });
  const kickstartFirst = kickstartFastPath(p, metrics.httpRequest);
  // nosniff here too: the kickstart fast path answers before express (src/http/surface.ts sets it for the rest).
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (!kickstartFirst(req, res)) app(req, res);
  };
  const http: Server = createServer(handle);
  const https: Server | undefined = tlsFiles
    ? (createHttpsServer({ cert: tlsFiles.cert, key: tlsFiles.key }, handle) as unknown as Server)
    : undefined;
  const fdLimit = openFileLimit();
  const budget = connectionBudget(
    fdLimit,
    config.http.maxConnections,
    (config.tftpPort ? config.tftp.maxTransfers : 0) + (config.syslog.port ? SYSLOG_TCP_MAX : 0),
  );
  if (budget.warning) log.warn({ fdLimit, maxConnections: budget.total }, budget.warning);
  const warnedRefusals = new Set<string>();
  const onRefused = (reason: string, address: string) => {
    metrics.httpRefused(reason as Parameters<typeof metrics.httpRefused>[0]);
    if (reason === 'idle-timeout') return; // routine: browsers and iPXE keep connections they no longer use
    // Once per address and reason (until 4096 distinct ones): a flood of connections must not become a log flood.
    const key = `${reason}:${address}`;
    if (warnedRefusals.has(key)) return;
    if (warnedRefusals.size >= 4096) warnedRefusals.clear();
    warnedRefusals.add(key);
    log.info(
      { clientIp: address, reason, perAddress: config.http.maxConnectionsPerAddress, total: budget.total },
      'http: connection closed by the server bounds',
    );
  };
  for (const server of https ? [http, https] : [http]) {
    server.keepAliveTimeout = config.http.idleTimeoutMs;
    acceptBursts(server);
  }
  // The HTTPS listener (UI and API only) shares the budget's per-address rule but counts on its own.
  httpGuard = limitConnections(
    http,
    { ...config.http, perAddress: config.http.maxConnectionsPerAddress, total: budget.total },
    onRefused,
  );
  if (https)
    limitConnections(
      https,
      { ...config.http, perAddress: config.http.maxConnectionsPerAddress, total: budget.total },
      onRefused,
    );
  let tftp: TftpServer | undefined;
  let dhcp: DhcpServerHandle | undefined;
  let syslogRx: SyslogReceiver | undefined;
  let removePid: (() => void) | undefined;
  // Retention of the timeline and installer logs: once now, then every 10 minutes (each prune costs the rows it deletes).
  const prune = () => {
    try {
      core.events.prune();
      core.syslog.prune();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'retention prune failed');
    }
  };
  prune();
  // Build events to the configured webhooks; only the serving process delivers (CLI commands do not).
  const webhooks = new WebhookDispatcher({
    hooks: config.webhooks,
    store: core.webhookDeliveries,
    events: core.events,
    hosts,
    builds: core.builds,
    log,
  });
  webhooks.start();
  const pruneTimer = setInterval(prune, 10 * 60_000);
  pruneTimer.unref();
  const runner = new RolloutRunner({
    store: core.rollouts,
    startBuild: (mac, actor) => p.startBuild(mac, actor),
    cancelBuild: (mac, actor) => p.cancelBuild(mac, actor),
    bmcFor: core.bmcFor,
    firmwareOf: core.firmwareOf,
    event: (e) => p.event(e),
    log,
  });
  const stuckWatch = new StuckWatch({
    inBuild: () => {
      const now = Date.now();
      return [...core.builds.latestForAll().values()]
        .filter((b) => stateOf(b, now) === 'build')
        .map((b) => ({ mac: b.mac, buildId: b.id, since: b.createdAt }));
    },
    timeline: (mac) => core.events.timeline(mac, 500),
    bmcFor: core.bmcFor,
    firmwareOf: core.firmwareOf,
    event: (e) => p.event(e),
    limits: config.stuck,
    checkEveryMs: config.stuck.checkEveryMs,
    log,
  });
  const stopAll = async () => {
    stopping = true;
    clearInterval(pruneTimer);
    await runner.stop();
    await stuckWatch.stop();
    await heartbeat?.stop();
    // Stop taking new work everywhere first, then let HTTP finish what it serves (bounded), then the store.
    if (http.listening) http.close();
    http.closeIdleConnections();
    if (https?.listening) https.close();
    https?.closeIdleConnections();
    await dhcp?.close();
    await syslogRx?.close();
    await tftp?.close(); // transfers in flight get a TFTP ERROR: server shutting down
    web.close(); // ends live-board streams, which would otherwise hold http.close() open
    await drainHttp(http, config.shutdownGraceMs ?? 10_000, log);
    if (https) await drainHttp(https, config.shutdownGraceMs ?? 10_000, log);
    await core.catalog.close();
    await core.templates.close();
    await webhooks.stop(); // attempts in flight are aborted and stay pending for the next start
    core.syslog.flush();
    core.events.flush();
    core.changes.close();
    core.db.close();
    core.durableDb.close();
    removePid?.();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.httpPort, config.listen, () => {
        http.off('error', reject);
        resolve();
      });
    });
    if (https)
      await new Promise<void>((resolve, reject) => {
        https.once('error', reject);
        https.listen(config.tls!.port, config.listen, () => {
          https.off('error', reject);
          resolve();
        });
      });
    if (config.tftpPort !== 0) {
      const fromDisk = staticFileSource(config.tftpRoot, log);
      const files: TftpFileSource = (path, client) => {
        const cfg = parseConfigPath(path);
        if (cfg) {
          const text = p.configFile(cfg, client.address, 'tftp');
          if (text !== undefined) {
            const data = Buffer.from(text);
            return { size: data.length, data };
          }
        }
        return fromDisk(path, client);
      };
      tftp = await startTftpServer({
        address: config.listen,
        port: config.tftpPort,
        files,
        log,
        maxTransfers: config.tftp.maxTransfers,
        maxPerClient: config.tftp.maxPerClient,
        maxTransferSec: config.tftp.maxTransferSec,
        maxTimeoutSec: config.tftp.maxTimeoutSec,
        onTransfer: (ev) => {
          metrics.tftpTransfer(ev);
          if (ev.type === 'tftp.probe') return; // EDK2 size probe: normal, it asks again at once
          const mac = p.macForIp(ev.client.address);
          if (mac)
            p.event({
              mac,
              type: ev.type,
              clientIp: ev.client.address,
              status: ev.error ?? 'ok',
              bytes: ev.bytes,
              detail: {
                path: ev.path,
                size: ev.size,
                blksize: ev.blksize,
                windowsize: ev.windowsize,
                seconds: ev.seconds,
              },
            });
        },
      });
      tftpRef = tftp;
    }
    bound.tftp = true;

    if (config.dhcp.mode !== 'off') {
      const discovered = new DiscoveredStore(db);
      dhcp = await startDhcpServer({
        config: config.dhcp,
        log,
        leases: core.leases,
        decide: (client) =>
          decideBoot({
            client,
            host: p.bootState(client.mac),
            loaders: config.loaders,
            httpBase: config.publicUrl,
            answerUnknown: config.dhcp.mode === 'authoritative',
          }),
        reservation: (mac) => {
          const h = p.ourHost(mac);
          return h?.ip ? { ip: h.ip, hostname: h.hostname } : undefined;
        },
        reservedBy: (ip) => hosts.getByIp(ip)?.mac,
        onEvent: (ev) => {
          // ack/offer carry the address handed out; in proxy mode a request to 4011 comes from the client's own ciaddr.
          if (ev.ip) p.learnClient(ev.ip, ev.mac);
          if (hosts.get(ev.mac))
            p.event({
              mac: ev.mac,
              type: ev.type,
              clientIp: ev.ip,
              status: ev.detail,
              detail: { arch: ev.arch, ipxe: ev.ipxe },
            });
        },
        onDiscovered: (m) => {
          if (hosts.get(m.mac)) return;
          discovered.seen(m);
        },
        onPacket: (bytes, res) =>
          metrics.dhcpPacket(
            dhcpMessageType(bytes),
            res.replies.length ? dhcpReplyName(res.replies[0].type) : res.drop !== undefined ? 'dropped' : 'no-reply',
          ),
      });
    }
    bound.dhcp = true;

    if (config.syslog.port !== 0) {
      // Installer logs are diagnostics: a taken port must not stop a rollout. It is logged, /readyz says
      // so (503), and boot configs leave inst.syslog= out.
      syslogRx = await startSyslogReceiver({
        address: config.listen,
        port: config.syslog.port,
        store: core.syslog,
        log,
        ratePerSec: config.syslog.ratePerSec,
        burst: config.syslog.burst,
        maxLineBytes: config.syslog.maxLineBytes,
        maxConnectionsPerSource: config.syslog.maxConnectionsPerSource,
        // Only the address that fetched a build's kickstart (or, before that, the host's own address) logs into that build,
        // and only a build in progress takes lines: a built host's own rsyslog must not grow a finished build's log.
        resolve: (ip) => {
          const src = p.syslogSource(ip);
          const b = src && core.builds.byId(src.buildId);
          return src && b ? { ...src, finished: !core.builds.inProgress(b) } : undefined;
        },
        onLine: (t) => metrics.syslogLine(t),
        onDrop: (reason, t) => metrics.syslogDrop(reason, t),
      }).catch((err: NodeJS.ErrnoException) => {
        log.error(
          { port: config.syslog.port, err: err.message },
          `syslog: cannot listen on ${config.listen}:${config.syslog.port} (${err.code ?? 'error'}): installer logs are off until restart${err.code === 'EACCES' ? '; ports below 1024 need CAP_NET_BIND_SERVICE' : ''}`,
        );
        bound.syslog = `not bound: ${err.code ?? err.message}`;
        return undefined;
      });
      if (syslogRx) {
        bound.syslog = true;
        syslogTarget = `${config.serverIp}:${syslogRx.port}`;
      }
    } else bound.syslog = true;
    bound.http = true;
    removePid = writePidFile(config.dataDir);
    // Rollouts recorded before this start (by the CLI, or cut off by a restart) go on from their last step.
    runner.start();
    stuckWatch.start();
    heartbeat = await startHeartbeat(
      nodeRegistry,
      {
        id: config.nodeId,
        site: config.site,
        version: rackbootVersion(),
        address: config.serverIp,
        publicUrl: config.publicUrl,
        ports: {
          http: (http.address() as { port: number }).port,
          ...(https ? { https: (https.address() as { port: number }).port } : {}),
          ...(tftp ? { tftp: tftp.port } : {}),
          ...(dhcp ? { dhcp: dhcp.ports() } : {}),
          ...(syslogRx ? { syslog: syslogRx.port } : {}),
        },
      },
      log,
      config.nodeHeartbeatMs,
    );
  } catch (err) {
    await stopAll();
    throw err;
  }
  const httpPort = (http.address() as { port: number }).port;
  const httpsPort = https ? (https.address() as { port: number }).port : undefined;
  if (httpsPort !== undefined) surface.httpsPort = httpsPort;
  if (https)
    log.info(
      { httpsPort },
      `UI and API over HTTPS on ${config.listen}:${httpsPort}; plain HTTP ${httpPort} keeps the boot paths and redirects the rest`,
    );
  const dhcpText =
    config.dhcp.mode === 'off'
      ? 'DHCP off (--dhcp-mode proxy|authoritative to answer PXE clients)'
      : `DHCP ${config.dhcp.mode} on ${dhcp!.ports().join(', ')}`;
  log.info(
    {
      node: config.nodeId,
      site: config.site,
      publicUrl: config.publicUrl,
      httpPort,
      tftpPort: tftp?.port,
      dhcp: config.dhcp.mode,
      dataDir: config.dataDir,
      profilesDir: config.profilesDir,
      tftpRoot: config.tftpRoot,
    },
    `rackboot serving: HTTP ${config.listen}:${httpPort} (${config.publicUrl}), ${tftp ? `TFTP ${config.listen}:${tftp.port}` : 'TFTP off'}, ${dhcpText}, ${syslogRx ? `installer logs (syslog UDP+TCP) ${config.listen}:${syslogRx.port}` : 'syslog off'}`,
  );
  if (config.dhcp.mode !== 'off' && tftp && tftp.port !== 69)
    log.warn({ tftpPort: tftp.port }, 'DHCP is on but TFTP is not on port 69: PXE firmware always asks port 69');

  let closing: Promise<void> | undefined;
  return {
    core,
    httpPort,
    httpsPort,
    tftpPort: tftp?.port,
    dhcpPorts: dhcp?.ports() ?? [],
    syslogPort: syslogRx?.port,
    close: () => (closing ??= stopAll()),
  };
}

/** Syslog TCP connections the receiver allows in all (its maxConnections default), for the descriptor budget. */
const SYSLOG_TCP_MAX = 1024;

/** The soft "Max open files" of this process (/proc/self/limits), undefined where unknown or unlimited. */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function readTlsFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${flag} ${file}: ${(err as Error).message} (give a PEM file rackboot can read)`, { cause: err });
  }
}

const DHCP_REPLY_NAMES: Record<number, string> = { 2: 'offer', 5: 'ack', 6: 'nak' };
function dhcpReplyName(type: number): string {
  return DHCP_REPLY_NAMES[type] ?? `reply-${type}`;
}

/** http.close() was called: wait for requests in flight up to `graceMs`, then cut what is left (a 4 GiB image download must not hold a shutdown). */
async function drainHttp(http: Server, graceMs: number, log: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      log.warn({ graceMs }, 'shutdown: HTTP transfers still running after the grace period: closing their connections');
      http.closeAllConnections();
    }, graceMs);
    timer.unref();
    const check = () =>
      http.getConnections((_err, n) => {
        if (n === 0 && !done) {
          done = true;
          clearTimeout(timer);
          resolve();
        }
      });
    http.once('close', () => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve();
      }
    });
    http.closeIdleConnections();
    check();
  });
}
