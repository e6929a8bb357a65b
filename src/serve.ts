// Starts every server of one rackboot process on a Config; returns a handle that stops them cleanly.
import { createServer, type Server } from 'node:http';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { openDb, type Db } from './store/db.ts';
import { HostStore } from './store/hosts.ts';
import { BuildStore } from './store/builds.ts';
import { EventLog } from './store/events.ts';
import { AuditLog } from './store/audit.ts';
import { ProfileCatalog } from './profiles/catalog.ts';
import { createRenderer } from './render/render.ts';
import { Provisioner } from './provision.ts';
import { createApp } from './http/app.ts';
import { createWebRouter } from './web/router.ts';
import { parseConfigPath } from './boot/paths.ts';
import { decideBoot } from './boot/decide.ts';
import { startTftpServer, type TftpFileSource, type TftpServer } from './tftp/server.ts';
import { staticFileSource } from './tftp/static.ts';
import { startDhcpServer, type DhcpServerHandle } from './dhcp/server.ts';
import { LeaseStore } from './dhcp/leases.ts';
import { ImageStore } from './images/store.ts';

export interface Core {
  db: Db; durableDb: Db; hosts: HostStore; builds: BuildStore; events: EventLog; audit: AuditLog; catalog: ProfileCatalog; provisioner: Provisioner; images: ImageStore;
}

/** The secret that build tokens are derived from: 32 random bytes in the data dir, readable by us only. */
export function loadSecret(dataDir: string): Buffer {
  const file = join(dataDir, 'secret.key');
  mkdirSync(dataDir, { recursive: true });
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is damaged (expected 64 hex digits); restore it from backup, or delete it to invalidate all build tokens`);
  return Buffer.from(hex, 'hex');
}

/** Store, profiles, renderer and the build lifecycle: what both `serve` and the CLI commands use. */
export function openCore(config: Config, log: Logger): Core {
  const file = join(config.dataDir, 'rackboot.db');
  const durableDb = openDb(file, 'full');
  const db = openDb(file, 'normal');
  const hosts = new HostStore(durableDb);
  const builds = new BuildStore(durableDb, loadSecret(config.dataDir), Date.now, db);
  const events = new EventLog(db);
  const audit = new AuditLog(db);
  const catalog = new ProfileCatalog(config.profilesDir, log);
  const renderer = createRenderer(config.templatesDir);
  const images = new ImageStore(durableDb);
  const provisioner = new Provisioner({ hosts, builds, events, audit, profiles: catalog, images, renderer, log, baseUrl: config.publicUrl, tokenTtlMs: config.tokenTtlMs });
  return { db, durableDb, hosts, builds, events, audit, catalog, provisioner, images };
}

/** The API token: RACKBOOT_ADMIN_TOKEN, or one made at first start, shown once, stored only as a hash. */
export function adminTokenHash(db: Db, env: NodeJS.ProcessEnv, announce: (token: string) => void): string {
  const fromEnv = env.RACKBOOT_ADMIN_TOKEN;
  if (fromEnv) return createHash('sha256').update(fromEnv).digest('hex');
  const row = db.prepare<[], { value: string }>("SELECT value FROM settings WHERE key = 'admin_token_sha256'").get();
  if (row) return row.value;
  const token = randomBytes(24).toString('base64url');
  const hash = createHash('sha256').update(token).digest('hex');
  db.prepare("INSERT INTO settings (key, value) VALUES ('admin_token_sha256', ?)").run(hash);
  announce(token);
  return hash;
}

export interface Running {
  core: Core;
  httpPort: number;
  tftpPort?: number;
  dhcpPorts: number[];
  close(): Promise<void>;
}

export async function startRackboot(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Running> {
  const core = openCore(config, log);
  const { provisioner: p, hosts, db } = core;
  await core.catalog.watch();
  mkdirSync(config.tftpRoot, { recursive: true });
  mkdirSync(config.imagesDir, { recursive: true });

  const tokenHash = adminTokenHash(db, env, (t) => process.stderr.write(
    `\n  rackboot: API token (shown once; set RACKBOOT_ADMIN_TOKEN to choose your own):\n\n    ${t}\n\n`));
  const web = createWebRouter({ provisioner: p, hosts, builds: core.builds, events: core.events, audit: core.audit, db, catalog: core.catalog, profilesDir: config.profilesDir, templatesDir: config.templatesDir, publicUrl: config.publicUrl, log });
  const app = createApp({ provisioner: p, hosts, audit: core.audit, db, profiles: () => core.catalog.snapshot, tftpRoot: config.tftpRoot, imagesDir: config.imagesDir, images: core.images, adminTokenHash: tokenHash, log, routers: [web] });
  const http: Server = createServer(app);
  http.keepAliveTimeout = 65_000;
  let tftp: TftpServer | undefined;
  let dhcp: DhcpServerHandle | undefined;
  const stopAll = async () => {
    await dhcp?.close();
    await tftp?.close();
    web.close(); // ends live-board streams, which would otherwise hold http.close() open
    await new Promise<void>((resolve) => { if (!http.listening) return resolve(); http.close(() => resolve()); http.closeIdleConnections(); });
    await core.catalog.close();
    core.events.flush();
    core.db.close();
    core.durableDb.close();
  };
  try {
    await new Promise<void>((resolve, reject) => { http.once('error', reject); http.listen(config.httpPort, config.listen, () => { http.off('error', reject); resolve(); }); });
    if (config.tftpPort !== 0) {
      const fromDisk = staticFileSource(config.tftpRoot, log);
      const files: TftpFileSource = (path, client) => {
        const cfg = parseConfigPath(path);
        if (cfg) {
          const text = p.configFile(cfg, client.address, 'tftp');
          if (text !== undefined) { const data = Buffer.from(text); return { size: data.length, data }; }
        }
        return fromDisk(path, client);
      };
      tftp = await startTftpServer({
        address: config.listen, port: config.tftpPort, files, log, maxTransfers: config.tftp.maxTransfers, maxPerClient: config.tftp.maxPerClient,
        onTransfer: (ev) => {
          if (ev.type === 'tftp.probe') return; // EDK2 size probe: normal, it asks again at once
          const mac = p.macForIp(ev.client.address);
          if (mac) p.event({ mac, type: ev.type, clientIp: ev.client.address, status: ev.error ?? 'ok', bytes: ev.bytes, detail: { path: ev.path, size: ev.size, blksize: ev.blksize, windowsize: ev.windowsize, seconds: ev.seconds } });
        },
      });
    }

    if (config.dhcp.mode !== 'off') {
      const upsertDiscovered = db.prepare(`INSERT INTO discovered (mac, arch, uuid, ipxe, ip, first_seen, last_seen) VALUES (@mac, @arch, @uuid, @ipxe, @ip, @now, @now)
        ON CONFLICT(mac) DO UPDATE SET arch = excluded.arch, uuid = COALESCE(excluded.uuid, uuid), ipxe = excluded.ipxe, ip = COALESCE(excluded.ip, ip), last_seen = excluded.last_seen`);
      dhcp = await startDhcpServer({
        config: config.dhcp, log, leases: new LeaseStore(db),
        decide: (client) => decideBoot({ client, host: p.bootState(client.mac), loaders: config.loaders, httpBase: config.publicUrl, answerUnknown: config.dhcp.mode === 'authoritative' }),
        reservation: (mac) => { const h = hosts.get(mac); return h?.ip ? { ip: h.ip, hostname: h.hostname } : undefined; },
        reservedBy: (ip) => hosts.getByIp(ip)?.mac,
        onEvent: (ev) => {
          // ack/offer carry the address handed out; in proxy mode a request to 4011 comes from the client's own ciaddr.
        if (ev.ip) p.learnClient(ev.ip, ev.mac);
          if (hosts.get(ev.mac)) p.event({ mac: ev.mac, type: ev.type, clientIp: ev.ip, status: ev.detail, detail: { arch: ev.arch, ipxe: ev.ipxe } });
        },
        onDiscovered: (m) => {
          if (hosts.get(m.mac)) return;
          upsertDiscovered.run({ mac: m.mac, arch: m.arch ?? null, uuid: m.uuid ?? null, ipxe: m.ipxe ? 1 : 0, ip: m.ip ?? null, now: Date.now() });
        },
      });
    }

  } catch (err) {
    await stopAll();
    throw err;
  }
  const httpPort = (http.address() as { port: number }).port;
  const dhcpText = config.dhcp.mode === 'off' ? 'DHCP off (--dhcp-mode proxy|authoritative to answer PXE clients)' : `DHCP ${config.dhcp.mode} on ${dhcp!.ports().join(', ')}`;
  log.info({ publicUrl: config.publicUrl, httpPort, tftpPort: tftp?.port, dhcp: config.dhcp.mode, dataDir: config.dataDir, profilesDir: config.profilesDir, tftpRoot: config.tftpRoot },
    `rackboot serving: HTTP ${config.listen}:${httpPort} (${config.publicUrl}), ${tftp ? `TFTP ${config.listen}:${tftp.port}` : 'TFTP off'}, ${dhcpText}`);
  if (config.dhcp.mode !== 'off' && tftp && tftp.port !== 69) log.warn({ tftpPort: tftp.port }, 'DHCP is on but TFTP is not on port 69: PXE firmware always asks port 69');

  let closing: Promise<void> | undefined;
  return {
    core, httpPort, tftpPort: tftp?.port, dhcpPorts: dhcp?.ports() ?? [],
    close: () => closing ??= stopAll(),
  };
}
