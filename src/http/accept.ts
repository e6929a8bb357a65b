// Let a burst of new connections in at once. libuv accepts one connection per event-loop turn, and a
// busy turn lasts as long as answering every ready socket takes, so 64 hosts connecting together
// waited up to ~1 s for the last (seen with tcpdump under test/bench/http.sh). When Node accepts one,
// native acceptPending() takes the rest of the listen queue in the same turn; each is handed to the
// server exactly as Node's own accept does it (net.js onconnection).
import { Socket, type Server } from 'node:net';
import { native } from '../native.ts';

const MAX_PER_TURN = 256;

interface ServerInternals { _handle?: { fd?: number } | null; _connections: number; allowHalfOpen?: boolean; maxConnections?: number }

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
        const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: internals.allowHalfOpen ?? false });
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
