// Let a burst of new connections in at once. libuv accepts one connection per event-loop turn, and a
// busy turn lasts as long as answering every ready socket takes, so 64 hosts connecting together
// waited up to ~1 s for the last (seen with tcpdump under test/bench/http.sh). When Node accepts one,
// native acceptPending() takes the rest of the listen queue in the same turn; each is handed to the
// server exactly as Node's own accept does it (net.js onconnection).
import { Socket, type Server } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { native } from '../native.ts';

const MAX_PER_TURN = 256;

interface ServerInternals {
  _handle?: { fd?: number } | null;
  _connections: number;
  allowHalfOpen?: boolean;
  maxConnections?: number;
}

/** Returns a counter of the connections taken from the queue this way (for tests). */
export function acceptBursts(server: Server): { adopted: number } {
  const stats = { adopted: 0 };
  if (!native) return stats;
  const addon = native;
  const internals = server as unknown as ServerInternals;
  let adopting = false;
  server.on('connection', () => {
    if (adopting) return; // our own emits below
    const listenFd = internals._handle?.fd;
    if (typeof listenFd !== 'number' || listenFd < 0) return;
    const room = server.maxConnections ? Math.max(0, server.maxConnections - internals._connections) : MAX_PER_TURN;
    adopting = true;
    try {
      for (const fd of addon.acceptPending(listenFd, Math.min(room, MAX_PER_TURN))) {
        const socket = new Socket({
          fd,
          readable: true,
          writable: true,
          allowHalfOpen: internals.allowHalfOpen ?? false,
        });
        socket.setNoDelay(true);
        // What net.js does, so server.close(), getConnections() and drains count these sockets too.
        internals._connections++;
        Object.assign(socket, { server, _server: server });
        stats.adopted++;
        server.emit('connection', socket);
      }
    } finally {
      adopting = false;
    }
  });
  return stats;
}

export interface ConnectionLimits {
  /** Open connections from one client address; more are closed at accept. */
  perAddress: number;
  /** Open connections in all (server.maxConnections: Node closes the excess at accept, the burst path leaves it queued). */
  total: number;
  /** A new connection (and an idle keep-alive one) must complete its request headers within this. */
  headersTimeoutMs: number;
  /** A request must have arrived whole (headers and body) within this once its headers are in. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  idleTimeoutMs: number;
}

export type RefusedReason = 'per-address' | 'total' | 'headers-timeout' | 'request-timeout' | 'idle-timeout';

export interface ConnectionGuard {
  /** Connections open now (admitted, not yet closed). */
  open(): number;
  /** Connections closed by the guard, by reason (idle-timeout: a keep-alive connection nobody used, routine). */
  refused: Record<RefusedReason, number>;
}

interface Tracked {
  address: string;
  inFlight: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Bounds what a stranger can hold on the HTTP server: connections per address and in all, and how long a
 * connection may sit without a complete request. Node's own headersTimeout/requestTimeout do not end a
 * connection that never sends a byte (measured on Node 20: an idle socket and one with half its headers
 * stayed open), and socket inactivity timeouts cannot be used because sendfile writes bypass the socket.
 * So the deadlines here are absolute timers, paused while a request is being answered (a 4 GiB image
 * download is bounded by the stall watchdogs of files.ts and zero-copy.ts instead).
 * Install after acceptBursts: this becomes the only 'connection' listener and calls the others (Node's
 * HTTP parser, the burst adopter) for admitted sockets only, so sockets adopted in bursts pass it too.
 */
export function limitConnections(
  server: Server,
  limits: ConnectionLimits,
  onRefused?: (reason: RefusedReason, address: string) => void,
): ConnectionGuard {
  const perAddress = new Map<string, number>();
  const tracked = new WeakMap<Socket, Tracked>();
  let open = 0;
  const refused: Record<RefusedReason, number> = {
    'per-address': 0,
    total: 0,
    'headers-timeout': 0,
    'request-timeout': 0,
    'idle-timeout': 0,
  };
  const refuse = (reason: RefusedReason, address: string) => {
    refused[reason]++;
    onRefused?.(reason, address);
  };
  server.maxConnections = limits.total;
  server.on('drop', (d?: { remoteAddress?: string }) => refuse('total', normalize(d?.remoteAddress)));

  const arm = (socket: Socket, t: Tracked, ms: number, reason: RefusedReason) => {
    if (t.timer) clearTimeout(t.timer);
    t.timer = setTimeout(() => {
      t.timer = undefined;
      refuse(reason, t.address);
      socket.destroy();
    }, ms);
    t.timer.unref();
  };

  const inner = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const address = normalize(socket.remoteAddress);
    const mine = perAddress.get(address) ?? 0;
    if (mine >= limits.perAddress) {
      refuse('per-address', address);
      socket.destroy();
      return;
    }
    if (open >= limits.total) {
      refuse('total', address);
      socket.destroy();
      return;
    }
    perAddress.set(address, mine + 1);
    open++;
    const t: Tracked = { address, inFlight: 0, timer: undefined };
    tracked.set(socket, t);
    arm(socket, t, limits.headersTimeoutMs, 'headers-timeout');
    socket.once('close', () => {
      if (t.timer) clearTimeout(t.timer);
      open--;
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n <= 0) perAddress.delete(address);
      else perAddress.set(address, n);
    });
    for (const l of inner) l.call(server, socket);
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const t = tracked.get(socket);
    if (!t) return;
    t.inFlight++;
    if (t.timer) {
      clearTimeout(t.timer);
      t.timer = undefined;
    }
    if (!req.complete) {
      const deadline = setTimeout(() => {
        if (!req.complete) {
          refuse('request-timeout', t.address);
          socket.destroy();
        }
      }, limits.requestTimeoutMs);
      deadline.unref();
      req.once('end', () => clearTimeout(deadline));
      req.once('close', () => clearTimeout(deadline));
    }
    let done = false;
    const finished = () => {
      if (done) return;
      done = true;
      t.inFlight--;
      if (t.inFlight === 0 && !socket.destroyed) arm(socket, t, limits.idleTimeoutMs, 'idle-timeout');
    };
    res.once('finish', finished);
    res.once('close', finished);
  });
  return { open: () => open, refused };
}

function normalize(address: string | undefined): string {
  return (address ?? 'unknown').replace(/^::ffff:/, '');
}

/**
 * The default cap on HTTP connections for a process whose descriptor limit is `fdLimit`: each connection may
 * hold two descriptors (socket and file), and TFTP transfers, syslog connections and the store need theirs.
 */
export function connectionBudget(
  fdLimit: number | undefined,
  wanted: number,
  reserved: number,
): { total: number; warning?: string } {
  if (fdLimit === undefined || !Number.isFinite(fdLimit)) return { total: wanted };
  const room = Math.floor((fdLimit - reserved - 64) / 2);
  if (room >= wanted) return { total: wanted };
  const total = Math.max(16, room);
  return {
    total,
    warning: `the descriptor limit (${fdLimit}) leaves room for only ${total} HTTP connections beside TFTP and syslog (${reserved} reserved): raise it (systemd LimitNOFILE=65536, or ulimit -n) to allow ${wanted}`,
  };
}
