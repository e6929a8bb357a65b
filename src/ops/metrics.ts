// Prometheus metrics (prom-client) on a registry of our own (no global state), fed by the
// composition root (src/serve.ts) through small calls; gauges are read when scraped.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NextFunction, Request, Response } from 'express';

export interface ScrapeSources {
  /** Transfers in progress now, by protocol. */
  activeTransfers?: () => { tftp: number };
  /** Hosts by the state of their latest build (idle, build, built, failed, expired). */
  buildStates?: () => Record<string, number>;
  /** Syslog lines waiting to be written. */
  syslogQueued?: () => number;
  /** HTTP connections open now. */
  httpConnections?: () => number;
  /** TFTP transfers ended to make room for a new request (a full table). */
  tftpEvictions?: () => number;
  /** Bytes of the database file and its WAL. */
  /** Undefined where there is no file to measure (PostgreSQL): the gauge says 0. */
  dbBytes?: () => number | undefined;
}

const DHCP_NAMES: Record<number, string> = {
  1: 'discover',
  2: 'offer',
  3: 'request',
  4: 'decline',
  5: 'ack',
  6: 'nak',
  7: 'release',
  8: 'inform',
};

/** The DHCP message type (option 53) of a raw packet, scanning only the options: no full decode on the hot path. */
export function dhcpMessageType(bytes: Uint8Array): string {
  // RFC 2131 3: options start after the 236-byte fixed part and the magic cookie 99.130.83.99.
  if (bytes.length < 244 || bytes[236] !== 99 || bytes[237] !== 130 || bytes[238] !== 83 || bytes[239] !== 99)
    return 'invalid';
  let i = 240;
  while (i < bytes.length) {
    const code = bytes[i];
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255 || i + 1 >= bytes.length) break;
    const len = bytes[i + 1];
    if (code === 53 && len === 1 && i + 2 < bytes.length) return DHCP_NAMES[bytes[i + 2]] ?? 'other';
    i += 2 + len;
  }
  return 'none';
}

export function createMetrics(sources: ScrapeSources = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const r = [registry];

  const dhcpPackets = new Counter({
    name: 'rackboot_dhcp_packets_total',
    help: 'DHCP packets received, by message type and result (answered with a reply type, dropped, or no reply)',
    labelNames: ['type', 'result'] as const,
    registers: r,
  });
  const tftpTransfers = new Counter({
    name: 'rackboot_tftp_transfers_total',
    help: 'TFTP read transfers ended, by outcome (sent, failed)',
    labelNames: ['outcome'] as const,
    registers: r,
  });
  const tftpBytes = new Counter({
    name: 'rackboot_tftp_bytes_total',
    help: 'Bytes sent (acknowledged) over TFTP',
    registers: r,
  });
  const tftpRetransmits = new Counter({
    name: 'rackboot_tftp_retransmits_total',
    help: 'TFTP DATA windows sent again after a timeout or a duplicate ACK',
    registers: r,
  });
  const httpRequests = new Counter({
    name: 'rackboot_http_requests_total',
    help: 'HTTP requests, by route pattern, method and status (aborted: the client went away first)',
    labelNames: ['route', 'method', 'status'] as const,
    registers: r,
  });
  const httpBytes = new Counter({
    name: 'rackboot_http_file_bytes_total',
    help: 'Bytes of files served over HTTP (/tftp, /images), by route',
    labelNames: ['route'] as const,
    registers: r,
  });
  const httpInFlight = new Gauge({
    name: 'rackboot_http_requests_in_flight',
    help: 'HTTP requests being answered now',
    registers: r,
  });
  const httpFiles = new Gauge({
    name: 'rackboot_http_file_transfers_in_flight',
    help: 'HTTP file downloads (/tftp, /images) in progress',
    registers: r,
  });
  const buildDuration = new Histogram({
    name: 'rackboot_build_duration_seconds',
    help: 'From build start to the built or failed callback',
    labelNames: ['outcome'] as const,
    buckets: [60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 14400],
    registers: r,
  });
  const renderTime = new Histogram({
    name: 'rackboot_kickstart_render_seconds',
    help: 'Time to render one kickstart',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: r,
  });
  const syslogLines = new Counter({
    name: 'rackboot_syslog_lines_total',
    help: 'Installer log lines accepted, by transport',
    labelNames: ['transport'] as const,
    registers: r,
  });
  const syslogDropped = new Counter({
    name: 'rackboot_syslog_dropped_total',
    help: 'Installer log lines not kept, by reason',
    labelNames: ['reason', 'transport'] as const,
    registers: r,
  });

  new Gauge({
    name: 'rackboot_active_transfers',
    help: 'Transfers in progress now, by protocol',
    labelNames: ['protocol'] as const,
    registers: r,
    collect() {
      this.reset();
      if (sources.activeTransfers) this.set({ protocol: 'tftp' }, sources.activeTransfers().tftp);
      this.set({ protocol: 'http' }, httpFileCount);
    },
  });
  new Gauge({
    name: 'rackboot_builds',
    help: 'Hosts by the state of their latest build',
    labelNames: ['state'] as const,
    registers: r,
    collect() {
      this.reset();
      const states = sources.buildStates?.() ?? {};
      for (const s of ['idle', 'build', 'built', 'failed', 'expired']) this.set({ state: s }, states[s] ?? 0);
    },
  });
  const httpRefused = new Counter({
    name: 'rackboot_http_connections_refused_total',
    help: 'HTTP connections closed by the server bounds, by reason (per-address, total, headers-timeout, request-timeout; idle-timeout: an unused keep-alive connection)',
    labelNames: ['reason'] as const,
    registers: r,
  });
  new Gauge({
    name: 'rackboot_http_connections',
    help: 'HTTP connections open now',
    registers: r,
    collect() {
      this.set(sources.httpConnections?.() ?? 0);
    },
  });
  new Counter({
    name: 'rackboot_tftp_evictions_total',
    help: 'TFTP transfers ended to make room for a new request (every slot was taken; the client silent longest lost its slot)',
    registers: r,
    collect() {
      this.reset();
      this.inc(sources.tftpEvictions?.() ?? 0);
    },
  });
  new Gauge({
    name: 'rackboot_db_bytes',
    help: 'Size of the SQLite database: the main file plus its WAL',
    registers: r,
    collect() {
      this.set(sources.dbBytes?.() ?? 0);
    },
  });
  new Gauge({
    name: 'rackboot_syslog_queued_lines',
    help: 'Installer log lines waiting to be written',
    registers: r,
    collect() {
      this.set(sources.syslogQueued?.() ?? 0);
    },
  });

  let httpFileCount = 0;
  const isFile = (path: string) => path.startsWith('/tftp/') || path.startsWith('/images/');

  /** First middleware of the app: counts every request by its route pattern once the response ends. */
  const httpMiddleware = (req: Request, res: Response, next: NextFunction) => {
    httpInFlight.inc();
    const file = isFile(req.path);
    if (file) {
      httpFileCount++;
      httpFiles.inc();
    }
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      httpInFlight.dec();
      if (file) {
        httpFileCount--;
        httpFiles.dec();
      }
      const route = routeLabel(req);
      httpRequests.inc({
        route,
        method: req.method,
        status: res.writableFinished ? String(res.statusCode) : 'aborted',
      });
      if (file && req.method === 'GET')
        httpBytes.inc({ route }, res.writableFinished ? Number(res.getHeader('content-length') ?? 0) || 0 : 0);
    };
    res.once('finish', end);
    res.once('close', end);
    next();
  };

  return {
    registry,
    httpMiddleware,
    /** For requests answered before express (the kickstart fast path). */
    httpRequest(route: string, method: string, status: number) {
      httpRequests.inc({ route, method, status: String(status) });
    },
    dhcpPacket(type: string, result: string) {
      dhcpPackets.inc({ type, result });
    },
    tftpTransfer(ev: { type: string; bytes: number; retransmits?: number }) {
      if (ev.type === 'tftp.probe') return;
      tftpTransfers.inc({ outcome: ev.type === 'tftp.sent' ? 'sent' : 'failed' });
      tftpBytes.inc(ev.bytes);
      if (ev.retransmits) tftpRetransmits.inc(ev.retransmits);
    },
    buildFinished(outcome: 'built' | 'failed', seconds: number) {
      if (seconds >= 0) buildDuration.observe({ outcome }, seconds);
    },
    kickstartRendered(seconds: number) {
      renderTime.observe(seconds);
    },
    syslogLine(transport: string) {
      syslogLines.inc({ transport });
    },
    syslogDrop(reason: string, transport: string) {
      syslogDropped.inc({ reason, transport });
    },
    httpRefused(reason: string) {
      httpRefused.inc({ reason });
    },
    async text(): Promise<string> {
      return registry.metrics();
    },
    contentType: registry.contentType,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** "/api/hosts/:mac", never the path itself: labels must stay few whatever clients ask for. */
export function routeLabel(req: Request): string {
  const route = (req as Request & { route?: { path: unknown } }).route;
  if (!route) return 'unmatched';
  const p = route.path;
  const path =
    typeof p === 'string'
      ? p
      : p instanceof RegExp
        ? p.source
            .replace(/^\^\\?/, '/')
            .replace(/\\\//g, '/')
            .replace(/\(\.\+\)\$$/, '*')
            .replace(/\$$/, '')
        : String(p);
  return (req.baseUrl ?? '') + path;
}
