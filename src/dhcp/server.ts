// dgram glue: sockets, group commit of lease writes, sending. All decisions live in engine.ts.
//
// Multi-homed hosts (see README.md here): with dhcp.interface set and the `sockopt` package present,
// each interface gets its own sockets on 0.0.0.0:67 (SO_REUSEADDR) tied to the device with
// SO_BINDTOIFINDEX (Linux >= 5.0, an integer option): the kernel hands a broadcast only to the
// socket of the interface it came in on, and replies from that socket leave through it. Otherwise
// one wildcard socket receives, and replies leave from a socket bound to the server identifier's
// address, which Linux routes out of the interface owning it even for 255.255.255.255.
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { createRequire } from 'node:module';
import { interfacesOf } from './config.ts';
import type { Arrival, Outgoing, DhcpEngine, EngineDeps } from './engine.ts';
import { createDhcpEngine } from './engine.ts';
import { createGroupCommit } from './commit.ts';

/**
 * The engine's deps (the server finds this host's addresses itself), plus a per-packet hook for metrics.
 * `leases` must be loaded (await leases.load()) before the server starts.
 */
export interface DhcpServerDeps extends Omit<EngineDeps, 'localAddresses'> {
  /** Every packet read and what became of it (metrics): its replies, or why it was dropped. */
  onPacket?(bytes: Uint8Array, result: { replies: readonly { type: number }[]; drop?: string }): void;
}

export interface DhcpServerHandle {
  close(): Promise<void>;
  ports(): number[];
}

const SOL_SOCKET = 1;
const SO_BINDTOIFINDEX = 62; // linux/asm-generic/socket.h
const SO_RCVBUFFORCE = 33;
// ~1,500 queued requests: absorbs a burst, yet short enough that nothing waits past a client retry.
const RECV_BUFFER = 1024 * 1024;

type SetSockOpt = (sock: Socket, level: number, name: number, value: number) => void;

function loadSetSockOpt(): SetSockOpt | undefined {
  try {
    const req = createRequire(import.meta.url);
    const mod = req('sockopt') as { setsockopt: SetSockOpt };
    return typeof mod.setsockopt === 'function' ? mod.setsockopt : undefined;
  } catch {
    return undefined;
  }
}

export function localIpv4Addresses(): { name: string; address: string; prefix: number }[] {
  const out: { name: string; address: string; prefix: number }[] = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4') continue;
      const prefix = a.cidr ? Number(a.cidr.split('/')[1]) : 32;
      out.push({ name, address: a.address, prefix });
    }
  }
  return out;
}

function bindSocket(port: number, address: string, reuse: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4', reuseAddr: reuse });
    const onErr = (err: Error) => reject(err);
    s.once('error', onErr);
    s.bind({ port, address, exclusive: true }, () => {
      s.off('error', onErr);
      s.setBroadcast(true);
      resolve(s);
    });
  });
}

export async function startDhcpServer(deps: DhcpServerDeps): Promise<DhcpServerHandle> {
  const { config, log, leases } = deps;
  if (config.mode === 'off') {
    log.info('dhcp: off (set dhcp.mode or --dhcp-mode proxy|authoritative to serve DHCP)');
    return { close: async () => {}, ports: () => [] };
  }
  const engine: DhcpEngine = createDhcpEngine({ ...deps, localAddresses: localIpv4Addresses() });
  const ifaces = interfacesOf(config);
  const setsockopt = config.bindToDevice === 'off' || ifaces.length === 0 ? undefined : loadSetSockOpt();
  if (ifaces.length && config.bindToDevice === 'required' && !setsockopt) {
    throw new Error(
      'dhcp.bindToDevice is "required" but the sockopt package is not installed (npm install sockopt), so sockets cannot be bound to an interface',
    );
  }
  if (ifaces.length && !setsockopt && config.bindToDevice !== 'off') {
    log.warn(
      { interfaces: ifaces },
      'dhcp: cannot bind sockets to interfaces (sockopt not available): one wildcard socket; replies follow the routing table',
    );
  }

  const ports =
    config.mode === 'proxy' && config.proxyPort !== config.port ? [config.port, config.proxyPort] : [config.port];
  const locals = localIpv4Addresses();
  interface Bound {
    sock: Socket;
    port: number;
    iface?: string;
    address?: string;
  }
  const sockets: Bound[] = [];
  try {
    if (setsockopt) {
      for (const name of ifaces) {
        let ifindex: number;
        try {
          ifindex = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
        } catch {
          throw new Error(`dhcp.interface: no network interface named "${name}" (see: ip link)`);
        }
        for (const port of ports) {
          const sock = await bindSocket(port, '0.0.0.0', true);
          setsockopt(sock, SOL_SOCKET, SO_BINDTOIFINDEX, ifindex);
          sockets.push({ sock, port, iface: name });
        }
      }
    } else {
      // One wildcard socket receives the broadcasts. Replies leave from a socket bound to the
      // server identifier's address: Linux routes a limited broadcast (255.255.255.255) out of the
      // interface that owns the source address ("special hack" in ip_route_output_key_hash_rcu),
      // so the reply takes the right interface with no route and no IP_PKTINFO.
      for (const port of ports) sockets.push({ sock: await bindSocket(port, '0.0.0.0', true), port });
      const mine = engine.serverIps().filter((ip) => locals.some((l) => l.address === ip));
      for (const address of mine) {
        for (const port of ports) sockets.push({ sock: await bindSocket(port, address, true), port, address });
      }
    }
  } catch (err) {
    for (const s of sockets) s.sock.close();
    throw err;
  }
  // A rack powering on at once sends bursts: a deeper receive queue absorbs them while the loop is
  // busy (committing leases) or descheduled. SO_RCVBUFFORCE (root) passes net.core.rmem_max; else
  // SO_RCVBUF, which the kernel caps.
  const setsockoptAny = setsockopt ?? loadSetSockOpt();
  for (const b of sockets) {
    try {
      setsockoptAny?.(b.sock, SOL_SOCKET, SO_RCVBUFFORCE, RECV_BUFFER);
    } catch {
      try {
        b.sock.setRecvBufferSize(RECV_BUFFER);
      } catch {
        /* keep the default */
      }
    }
    if (!setsockoptAny) {
      try {
        b.sock.setRecvBufferSize(RECV_BUFFER);
      } catch {
        /* keep the default */
      }
    }
  }
  const sendSocket = (arrivedOn: Bound, out: Outgoing): Socket => {
    if (arrivedOn.iface || arrivedOn.address === out.serverIp) return arrivedOn.sock;
    return sockets.find((b) => b.address === out.serverIp && b.port === arrivedOn.port)?.sock ?? arrivedOn.sock;
  };

  // Group commit (commit.ts): the lease writes of the packets read in one event-loop turn go in one
  // transaction, committed (durable) before any of their replies leave.
  const commits = createGroupCommit<{ sock: Socket; out: Outgoing }>(leases, log, ({ sock, out }) => {
    // No per-packet callback: a send error surfaces as the socket's 'error' event (logged).
    sock.send(out.bytes, out.to.port, out.to.address);
  });

  for (const bound of sockets) {
    const { sock, port, iface } = bound;
    sock.on('error', (err) => log.error({ err, port, iface }, 'dhcp socket error'));
    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      try {
        commits.add(() => {
          const arrival: Arrival = { port, from: { address: rinfo.address, port: rinfo.port }, iface };
          const res = engine.handle(msg, arrival);
          if (deps.onPacket) {
            try {
              deps.onPacket(msg, res);
            } catch (err) {
              log.warn({ err }, 'dhcp onPacket hook threw');
            }
          }
          return res.replies.map((out) => ({ sock: sendSocket(bound, out), out }));
        });
      } catch (err) {
        log.error({ err }, 'dhcp: message handler failed');
      }
    });
  }
  log.info(
    {
      mode: config.mode,
      ports,
      interfaces: ifaces.length ? ifaces : 'all',
      boundToDevice: !!setsockopt,
      subnets: config.subnets.map((s) => s.cidr),
    },
    `dhcp: ${config.mode} mode listening`,
  );

  return {
    ports: () => sockets.map((s) => s.sock.address().port).filter((p, i, a) => a.indexOf(p) === i),
    close: async () => {
      await commits.idle();
      await Promise.all(sockets.map((s) => new Promise<void>((r) => s.sock.close(() => r()))));
    },
  };
}
