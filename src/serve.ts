// Starts every server of one rackboot process on a Config; returns a handle that stops them cleanly.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomBytes, createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { databaseBytes } from './store/db.ts';
import type { ChangeFeed } from './store/changes.ts';
import { TableChangeFeed } from './store/repo/changes.ts';
import { openStore, type Store } from './store/index.ts';
import { StoreView } from './store/view.ts';
import type { HostRepo } from './store/repo/hosts.ts';
import type { BuildRepo } from './store/repo/builds.ts';
import type { EventRepo } from './store/repo/events.ts';
import type { AuditRepo, ImageRepo, SettingsRepo } from './store/repo/small.ts';
import type { SyslogRepo } from './store/repo/syslog.ts';
import { ProfileCatalog } from './profiles/catalog.ts';
import { createRenderer } from './render/render.ts';
import { TemplateCatalog } from './render/template-catalog.ts';
import { templateProbe } from './render/probe.ts';
import { Provisioner } from './provision.ts';
import { createApp, kickstartFastPath } from './http/app.ts';
import { createWebRouter } from './web/pages/index.ts';
import { parseConfigPath } from './boot/paths.ts';
import { decideBoot } from './boot/decide.ts';
import { arpReader } from './net/neighbors.ts';
import { startTftpServer, type TftpFileSource, type TftpServer } from './tftp/server.ts';
import { staticFileSource } from './tftp/static.ts';
import { startDhcpServer, type DhcpServerHandle } from './dhcp/server.ts';
import { LeaseStore } from './dhcp/leases.ts';
import { createUefiChainResolver } from './images/uefi-chain.ts';
import { startSyslogReceiver, type SyslogReceiver } from './ops/syslog-server.ts';
import { createMetrics, dhcpMessageType } from './ops/metrics.ts';
import { createLogsApi, createOpsRouter, type Readiness } from './ops/routes.ts';
import { writePidFile } from './ops/backup.ts';
import { stateOf } from './store/builds.ts';
import type { Renderer } from './render/render.ts';
import { acceptBursts, connectionBudget, limitConnections, type ConnectionGuard } from './http/accept.ts';
import { ensurePrivateDir, secretKeyProblem } from './ops/private-files.ts';
import type { SurfaceOptions } from './http/surface.ts';
import type { WebhookDeliveryStore } from './store/webhooks.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { createTemplatesApi } from './http/api/templates.ts';
import type { RolloutStore } from './store/rollouts.ts';
import { RolloutService } from './rollout/service.ts';
import { RolloutRunner } from './rollout/runner.ts';
import { StuckWatch } from './rollout/stuck-watch.ts';
import { createRolloutApi } from './rollout/api.ts';
import { firmwareOf, type FirmwareGuess } from './rollout/firmware.ts';
import type { BmcDriver } from './bmc/driver.ts';
import type { Mac } from './net/mac.ts';
import type { ApiDocs } from './http/openapi.ts';
import type { BmcStore } from './store/bmc.ts';
import { loadBmcKey, secretBox } from './bmc/secret-box.ts';
import { BmcService } from './bmc/index.ts';
import { PowerService } from './bmc/power.ts';
import { createBmcApi } from './http/bmc-api.ts';
import { createNodesApi, rackbootVersion, startHeartbeat, type NodeHeartbeat } from './ops/nodes.ts';
import { holdDuty, type Duty } from './ops/duty.ts';
import type { DiscoveredMachine } from './dhcp/engine.ts';

/** serve refuses to start on a secret.key others can read (the CLI exits 2 on it). */
export class SecretKeyError extends Error {}

export interface Core {
  /** Every table, on SQLite (the data dir's file, the default) or PostgreSQL (--database postgres://...). */
  store: Store;
  /** Hosts, their latest builds and the images in memory, kept current from the store: what the boot paths read. */
  view: StoreView;
  hosts: HostRepo;
  builds: BuildRepo;
  events: EventRepo;
  audit: AuditRepo;
  catalog: ProfileCatalog;
  /** Webhook deliveries (src/webhooks/): pending ones survive a restart; the delivery log reads them. */
  webhookDeliveries: WebhookDeliveryStore;
  /** Boot, kickstart and snippet templates, shipped and the operator's overlay, hot-reloaded (src/render/template-catalog.ts). */
  templates: TemplateCatalog;
  provisioner: Provisioner;
  /** Imported images: writes and lists here; the boot paths read view.image(). */
  images: ImageRepo;
  /** Installer log lines per build (src/ops). */
  syslog: SyslogRepo;
  /** What changed about which host, from this node, other nodes and CLI processes alike: the live board listens. */
  changes: ChangeFeed;
  /** Rollouts (src/rollout): recorded by the API and the CLI, carried out by serve's runner. */
  rollouts: RolloutStore;
  rolloutService: RolloutService;
  /** The BMC driver of a host (src/bmc), undefined when it has none. */
  bmcFor: (mac: Mac) => Promise<BmcDriver | undefined>;
  /** The host's firmware (UEFI or legacy) from what it was seen doing. */
  firmwareOf: (mac: Mac) => Promise<FirmwareGuess>;
  /** Each host's BMC (src/store/bmc.ts; passwords sealed with bmc.key), its drivers, and power actions. */
  bmc: BmcStore;
  bmcService: BmcService;
  power: PowerService;
  /** A machine that PXE-booted and is not a host: recorded in the discovered list (at most once per MAC per 10 s). */
  sighted(m: DiscoveredMachine): void;
  /** Sets where the boot paths learn which MAC holds a DHCP lease on an address (serve, once DHCP is up). */
  setLeaseLookup(lookup: (ip: string) => Mac | undefined): void;
  /** Closes the view, the feed and the store (after flushing queued events and log lines). */
  close(): Promise<void>;
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
export async function openCore(
  config: Config,
  log: Logger,
  hooks: {
    kickstartRendered?: (seconds: number) => void;
    syslogTarget?: () => string | undefined;
    bmcFor?: (mac: Mac) => Promise<BmcDriver | undefined>;
    /** Whole reload period of the in-memory view (default 60 s). */
    viewReloadMs?: number;
  } = {},
): Promise<Core> {
  ensurePrivateDir(config.dataDir);
  const store = await openStore({
    database: config.database.dialect === 'postgres' ? config.database.url : config.database.file,
    dataDir: config.dataDir,
    secret: loadSecret(config.dataDir),
    eventLimits: config.events,
    nodeId: config.nodeId,
    nodeHeartbeatMs: config.nodeHeartbeatMs,
    callbackGraceMs: config.tokenGraceMs,
    syslogLimits: {
      ringLines: config.syslog.ringLines,
      maxTotalLines: config.syslog.maxTotalLines,
      maxQueued: 100_000,
      maxAgeMs: config.syslog.maxAgeMs,
    },
    bmcBox: secretBox(loadBmcKey(config.dataDir)),
  });
  let view: StoreView;
  try {
    view = await StoreView.open(store, {
      reloadMs: hooks.viewReloadMs,
      onError: (e) => log.error({ err: e.message }, 'store view: refresh failed; answering from what it has'),
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  const { hosts, builds, events, audit, images, syslog } = store;
  const sightings = sightingRecorder(store, log);
  const catalog = new ProfileCatalog(config.profilesDir, log);
  const configured = config.syslog.port ? `${config.serverIp}:${config.syslog.port}` : undefined;
  const templates = new TemplateCatalog({ shipped: config.templatesDir, overlay: config.templatesOverlayDir }, log);
  const renderer = withOps(
    createRenderer(() => templates.library),
    hooks.syslogTarget ?? (() => configured),
    hooks.kickstartRendered,
  );
  // The in-memory learnt map is empty after a restart: live bound DHCP leases and the kernel's ARP table still say who an address is.
  let leaseLookup: (ip: string) => Mac | undefined = () => undefined;
  const imageView = {
    resolve: (name: string) => view.resolveImage(name),
    get: (name: string) => view.image(name),
    list: () => view.imageList(),
  };
  const provisioner = new Provisioner({
    view,
    hosts,
    builds,
    events,
    audit,
    profiles: catalog,
    images: imageView,
    renderer,
    log,
    baseUrl: config.publicUrl,
    tokenTtlMs: config.tokenTtlMs,
    lease: (ip) => leaseLookup(ip),
    neighbor: arpReader(),
    failureTail: (buildId) => syslog.tail(buildId, FAILURE_TAIL_LINES),
    uefiChain: createUefiChainResolver({ images: imageView, tftpRoot: config.tftpRoot, loaders: config.loaders }),
    site: config.site,
    // TFTP and HTTP sightings (the DHCP server records its own): bounded like every discovered row.
    discovered: (m) => sightings(m),
  });
  // Idle until a board subscribes: CLI commands open the core too and never poll. Host and build changes made by
  // other processes (the CLI on the same SQLite file) reach the view through it too.
  const changes = new TableChangeFeed(store.sql, {
    local: events,
    onError: (err) => log.error({ err: (err as Error).message }, 'change feed: read failed'),
  });
  // Trial renders refuse a template that fails with the profiles that use it; a profile edit re-runs them.
  templates.setProbe(
    templateProbe({ profiles: () => catalog.snapshot.profiles.values(), images: (name) => view.resolveImage(name) }),
  );
  catalog.onChange(() => templates.reload());
  const rolloutService = new RolloutService({
    store: store.rollouts,
    hosts,
    state: (mac) => provisioner.state(mac),
    cancelBuild: (mac, actor) => provisioner.cancelBuild(mac, actor),
    partitioning: (host) => {
      const r = provisioner.profileFor(host);
      return r.ok ? r.value.partitioning : undefined;
    },
    stuck: (mac) => provisioner.stuck(mac),
  });
  const bmcService = new BmcService({ store: store.bmc });
  const power = new PowerService({ bmc: bmcService, events, audit });
  const bmcFor = hooks.bmcFor ?? ((mac: Mac) => bmcService.forHost(mac));
  const firmware = async (mac: Mac) => firmwareOf(await events.timeline(mac, 200));
  return {
    store,
    view,
    hosts,
    builds,
    events,
    audit,
    catalog,
    templates,
    provisioner,
    images,
    syslog,
    webhookDeliveries: store.webhookDeliveries,
    rollouts: store.rollouts,
    rolloutService,
    bmcFor,
    firmwareOf: firmware,
    changes,
    bmc: store.bmc,
    bmcService,
    power,
    sighted: sightings,
    setLeaseLookup: (lookup) => {
      leaseLookup = lookup;
    },
    async close() {
      changes.close();
      view.close();
      await store.close();
    },
  };
}

const SIGHTING_EVERY_MS = 1000;
const SIGHTINGS_IN_FLIGHT = 64;

/**
 * Discovered machines are written in the background, at most once per MAC a second and 64 writes at a time: a
 * machine looping on PXE or a stranger's flood of MACs costs bounded writes and memory, and no packet waits.
 */
function sightingRecorder(store: Store, log: Logger): (m: DiscoveredMachine) => void {
  const last = new Map<string, number>();
  let inFlight = 0;
  return (m) => {
    const now = Date.now();
    const at = last.get(m.mac);
    if ((at !== undefined && now - at < SIGHTING_EVERY_MS) || inFlight >= SIGHTINGS_IN_FLIGHT) return;
    if (last.size >= 4096) last.clear();
    last.set(m.mac, now);
    inFlight++;
    store.discovered
      .seen(m)
      .catch((err: Error) => log.warn({ mac: m.mac, err: err.message }, 'could not record a discovered machine'))
      .finally(() => inFlight--);
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
export async function adminTokenHash(
  settings: SettingsRepo,
  env: NodeJS.ProcessEnv,
  announce: (token: string) => void,
): Promise<string> {
  const fromEnv = env.RACKBOOT_ADMIN_TOKEN;
  if (fromEnv) return createHash('sha256').update(fromEnv).digest('hex');
  const token = randomBytes(24).toString('base64url');
  const hash = createHash('sha256').update(token).digest('hex');
  // First writer wins across nodes: a node that did not write it does not announce a token no one can use.
  const held = await settings.putIfAbsent(ADMIN_TOKEN_KEY, hash);
  if (held === hash) announce(token);
  return held;
}

const ADMIN_TOKEN_KEY = 'admin_token_sha256';

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
  const core = await openCore(config, log, {
    kickstartRendered: (s) => observeRender?.(s),
    syslogTarget: () => syslogTarget,
    bmcFor: opts.bmcFor,
  });
  const { provisioner: p, hosts, view, store } = core;
  // Other processes' host and build writes (the CLI on the same SQLite file; on PostgreSQL NOTIFY brings them too).
  const forward = core.changes.subscribe((c) => {
    if (c.kind === 'resync') void store.changes.deliver({ kind: 'resync' });
    else if (c.kind === 'host' || c.kind === 'host.deleted') void store.changes.deliver({ kind: 'host', mac: c.mac });
    else if (c.kind === 'build') void store.changes.deliver({ kind: 'build', mac: c.mac });
  });
  let tftpRef: TftpServer | undefined;
  let httpGuard: ConnectionGuard | undefined;
  const metrics = createMetrics({
    activeTransfers: () => ({ tftp: tftpRef?.activeTransfers() ?? 0 }),
    httpConnections: () => httpGuard?.open() ?? 0,
    tftpEvictions: () => tftpRef?.evictions() ?? 0,
    buildStates: () => {
      const counts: Record<string, number> = {};
      const now = Date.now();
      for (const h of view.hostList()) {
        const st = stateOf(view.latestBuild(h.mac), now);
        counts[st] = (counts[st] ?? 0) + 1;
      }
      return counts;
    },
    syslogQueued: () => core.syslog.stats.queued,
    dbBytes: () => (store.dialect === 'sqlite' ? databaseBytes(config.dataDir) : undefined),
  });
  observeRender = (s) => metrics.kickstartRendered(s);
  core.events.subscribe((e) => {
    if ((e.type !== 'build.built' && e.type !== 'build.failed') || e.buildId === undefined) return;
    const b = view.latestBuild(e.mac as Mac);
    if (b && b.id === e.buildId)
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
  const ready = async (): Promise<Readiness> => {
    const checks: Record<string, string> = {};
    try {
      await store.sql.get('SELECT 1 AS one');
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

  const settings = store.settings;
  const tokenHash = await adminTokenHash(settings, env, (t) =>
    process.stderr.write(
      `\n  rackboot: API token (shown once; set RACKBOOT_ADMIN_TOKEN to choose your own):\n\n    ${t}\n\n`,
    ),
  );
  const nodeRegistry = store.nodes;
  const web = createWebRouter({
    rollouts: core.rolloutService,
    provisioner: p,
    hosts,
    builds: core.builds,
    events: core.events,
    audit: core.audit,
    store,
    view,
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
  let heartbeat: NodeHeartbeat | undefined;
  // httpsPort is set to the bound port once the HTTPS listener is up (the redirect names it).
  const surface: SurfaceOptions = { allowedHosts: config.allowedHosts, httpsPort: config.tls?.port };
  const app = createApp({
    provisioner: p,
    hosts,
    audit: core.audit,
    store,
    view,
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
    userToken: (t) => store.apiTokens.authenticate(t),
    settings,
    surface,
    bmc: core.bmc,
  });
  const kickstartFirst = kickstartFastPath(p, metrics.httpRequest, log);
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
  const prune = async () => {
    try {
      await core.events.prune();
      await core.syslog.prune();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'retention prune failed');
    }
  };
  await prune();
  // Build events to the configured webhooks; only the serving process delivers (CLI commands do not).
  const webhooks = new WebhookDispatcher({
    hooks: config.webhooks,
    store: core.webhookDeliveries,
    events: core.events,
    hosts,
    builds: core.builds,
    log,
    // Builds started or finished by the CLI on this database reach the hooks too (each event once).
    changes: core.changes,
    node: config.nodeId,
  });
  webhooks.start();
  const pruneTimer = setInterval(() => void prune(), 10 * 60_000);
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
      return view
        .hostList()
        .map((h) => view.latestBuild(h.mac))
        .filter((b): b is NonNullable<typeof b> => b !== undefined && stateOf(b, now) === 'build')
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
  let rolloutDuty: Duty | undefined;
  const stopAll = async () => {
    stopping = true;
    clearInterval(pruneTimer);
    await rolloutDuty?.stop();
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
    forward();
    await core.close();
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
      const leases = new LeaseStore(store.leases, { shared: config.dhcp.sharedLeases });
      await leases.load();
      core.setLeaseLookup((ip) => {
        const l = leases.byIp(ip);
        return l?.state === 'bound' && l.mac && l.expiresAt > Date.now() ? l.mac : undefined;
      });
      dhcp = await startDhcpServer({
        config: config.dhcp,
        log,
        leases,
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
        reservedBy: (ip) => view.hostByIp(ip)?.mac,
        onEvent: (ev) => {
          // ack/offer carry the address handed out; in proxy mode a request to 4011 comes from the client's own ciaddr.
          if (ev.ip) p.learnClient(ev.ip, ev.mac);
          if (view.host(ev.mac))
            p.event({
              mac: ev.mac,
              type: ev.type,
              clientIp: ev.ip,
              status: ev.detail,
              detail: { arch: ev.arch, ipxe: ev.ipxe },
            });
        },
        onDiscovered: (m) => {
          if (view.host(m.mac)) return;
          core.sighted(m);
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
          const b = src && view.latestBuild(src.mac);
          return src && b?.id === src.buildId ? { ...src, finished: !core.builds.inProgress(b) } : undefined;
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
    // Rollouts recorded before this start (by the CLI, or cut off by a restart) go on from their last step, on
    // the one node that holds the duty (with several nodes on one database, another takes over when it dies).
    rolloutDuty = await holdDuty({
      leaders: store.leaders,
      role: 'rollouts',
      node: config.nodeId,
      ttlMs: Math.max(3000, config.nodeHeartbeatMs * 3),
      start: () => {
        runner.start();
        stuckWatch.start();
      },
      stop: async () => {
        await runner.stop();
        await stuckWatch.stop();
      },
      log,
    });
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
