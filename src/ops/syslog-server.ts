// The syslog receiver: UDP and TCP on one port (dgram/net glue only; parsing is syslog-parse.ts).
// Each line is attached to the current build of the host that sent it, found by source IP.
// Bounds: a token bucket per source address, a byte limit per line, a cap on TCP connections (in all and
// per source address) and on buffered bytes per connection, a bounded queue before the store: memory stays bounded
// whatever a sender does, and every line not kept is counted by reason.
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../log.ts';
import type { Mac } from '../net/mac.ts';
import { parseSyslog, SyslogFramer } from './syslog-parse.ts';
import type { NewSyslogLine } from './syslog-store.ts';

export type SyslogDropReason =
  | 'malformed'
  | 'unknown-source'
  | 'build-finished'
  | 'rate-limited'
  | 'queue-full'
  | 'too-many-connections'
  | 'too-many-connections-from-source';

export interface SyslogReceiverOptions {
  address: string;
  port: number;
  /** Where lines go (src/store/repo/syslog.ts): append() queues and never waits. */
  store: { append(line: NewSyslogLine): boolean; flush(): void | Promise<void> };
  log: Logger;
  /**
   * The host and its current build for a source address; undefined drops the line (counted). `finished`: the
   * latest build is not in progress (a built host keeps logging to syslog): its lines are dropped and counted.
   */
  resolve(ip: string): { mac: Mac; buildId: number; finished?: boolean } | undefined;
  /** Lines per second one source address may send (sustained), and the burst above it. */
  ratePerSec: number;
  burst: number;
  maxLineBytes: number;
  maxConnections?: number;
  /** TCP connections one source address may hold (default 4: rsyslog/Anaconda use one). */
  maxConnectionsPerSource?: number;
  /** A TCP connection with nothing sent for this long is closed. */
  idleMs?: number;
  onLine?(transport: 'udp' | 'tcp'): void;
  onDrop?(reason: SyslogDropReason, transport: 'udp' | 'tcp'): void;
  now?: () => number;
}

export interface SyslogReceiver {
  port: number;
  connections(): number;
  close(): Promise<void>;
}

interface Bucket {
  tokens: number;
  at: number;
}
interface Resolved {
  value: { mac: Mac; buildId: number; finished?: boolean } | undefined;
  until: number;
}

export async function startSyslogReceiver(o: SyslogReceiverOptions): Promise<SyslogReceiver> {
  const now = o.now ?? Date.now;
  const maxConnections = o.maxConnections ?? 1024;
  const maxPerSource = o.maxConnectionsPerSource ?? 4;
  const perSource = new Map<string, number>();
  const idleMs = o.idleMs ?? 15 * 60_000;
  const buckets = new Map<string, Bucket>();
  const resolved = new Map<string, Resolved>();
  const warned = new Set<string>();

  const allow = (ip: string, t: number): boolean => {
    let b = buckets.get(ip);
    if (!b) {
      if (buckets.size >= 65536) buckets.clear(); // bounded: spoofed sources cannot grow it forever
      b = { tokens: o.burst, at: t };
      buckets.set(ip, b);
    }
    b.tokens = Math.min(o.burst, b.tokens + ((t - b.at) / 1000) * o.ratePerSec);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
  const target = (ip: string, t: number) => {
    const r = resolved.get(ip);
    if (r && r.until > t) return r.value;
    if (resolved.size >= 65536) resolved.clear();
    // Cached briefly: a build started or a lease learnt shows up within a second.
    const value = o.resolve(ip);
    resolved.set(ip, { value, until: t + 1000 });
    return value;
  };
  const drop = (reason: SyslogDropReason, transport: 'udp' | 'tcp', ip: string, detail?: string) => {
    o.onDrop?.(reason, transport);
    const key = `${reason}:${ip}`;
    if (warned.has(key)) return;
    if (warned.size >= 4096) warned.clear();
    warned.add(key);
    // Once per source and reason (until 4096 distinct ones): a flood does not become a log flood.
    o.log.info({ clientIp: ip, reason, detail, transport }, 'syslog: line not kept');
  };
  const line = (bytes: Uint8Array, ip: string, transport: 'udp' | 'tcp') => {
    const t = now();
    if (!allow(ip, t)) return drop('rate-limited', transport, ip);
    const r = parseSyslog(bytes, o.maxLineBytes);
    if (!r.ok) return drop('malformed', transport, ip, r.reason);
    const to = target(ip, t);
    if (!to) return drop('unknown-source', transport, ip);
    if (to.finished) return drop('build-finished', transport, ip);
    const m = r.message;
    const ok = o.store.append({
      buildId: to.buildId,
      mac: to.mac,
      at: t,
      clientIp: ip,
      facility: m.facility,
      severity: m.severity,
      host: m.hostname,
      app: m.app,
      text: m.truncated ? m.text + ' [cut]' : m.text,
    });
    if (!ok) return drop('queue-full', transport, ip);
    o.onLine?.(transport);
  };

  const udp = dgram.createSocket({ type: o.address.includes(':') ? 'udp6' : 'udp4' });
  const tcp = net.createServer({ noDelay: true });
  const sockets = new Set<net.Socket>();

  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(o.port, o.address, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  const port = udp.address().port;
  try {
    // A burst from a whole rack at once: a larger kernel buffer loses fewer datagrams (capped by net.core.rmem_max).
    udp.setRecvBufferSize(8 * 1024 * 1024);
  } catch {
    /* not permitted: keep the default */
  }
  udp.on('error', (err) => o.log.error({ err }, 'syslog: UDP socket error'));
  udp.on('message', (msg, rinfo) => {
    try {
      line(msg, rinfo.address.replace(/^::ffff:/, ''), 'udp');
    } catch (err) {
      o.log.error({ err }, 'syslog: UDP handler failed');
    }
  });

  tcp.on('connection', (sock) => {
    const ip = (sock.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (sockets.size >= maxConnections) {
      drop('too-many-connections', 'tcp', ip);
      sock.destroy();
      return;
    }
    // One source must not hold the whole table (issue #13: one client held all 1,024 connections).
    const mine = perSource.get(ip) ?? 0;
    if (mine >= maxPerSource) {
      drop('too-many-connections-from-source', 'tcp', ip);
      sock.destroy();
      return;
    }
    perSource.set(ip, mine + 1);
    sockets.add(sock);
    const framer = new SyslogFramer(o.maxLineBytes);
    sock.setTimeout(idleMs, () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      try {
        for (const frame of framer.push(chunk)) line(frame, ip, 'tcp');
      } catch (err) {
        o.log.error({ err }, 'syslog: TCP handler failed');
        sock.destroy();
      }
    });
    sock.on('end', () => {
      try {
        for (const frame of framer.end()) line(frame, ip, 'tcp');
      } catch (err) {
        o.log.error({ err }, 'syslog: TCP handler failed');
      }
      sock.end();
    });
    sock.on('error', () => {
      /* reset by peer: nothing to do */
    });
    sock.on('close', () => {
      sockets.delete(sock);
      const n = (perSource.get(ip) ?? 1) - 1;
      if (n <= 0) perSource.delete(ip);
      else perSource.set(ip, n);
    });
  });
  tcp.on('error', (err) => o.log.error({ err }, 'syslog: TCP server error'));
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, o.address, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    udp.close();
    throw err;
  }

  return {
    port,
    connections: () => sockets.size,
    close: async () => {
      await new Promise<void>((r) => udp.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
      await o.store.flush();
    },
  };
}
