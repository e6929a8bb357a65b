// The zero-copy path for file bodies: native/sendfile.c (sendfile(2) driven by the event loop).
// Where the addon could not be built, or the socket is not a plain TCP socket (TLS, a test double),
// callers fall back to the portable streamer in files.ts.
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { native } from '../native.ts';

export const zeroCopyAvailable = native !== undefined;

/** The socket's descriptor when sendfile may write to it directly, else undefined. */
export function plainSocketFd(socket: Socket | null): number | undefined {
  if (!native || !socket || 'encrypted' in socket || socket.destroyed) return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Resolves once everything written to the socket so far has reached the kernel. */
export function flushed(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}

const errnoNames = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/**
 * Sends `length` bytes of `fileFd` from `offset` to the socket. Cancels on `signal` and when no byte
 * moved for `stallMs` (a client that stopped reading must not hold a descriptor forever). Resolves with
 * the bytes sent; rejects with an error naming the errno when the range was not sent completely.
 */
export function sendFileRange(
  socketFd: number,
  fileFd: number,
  offset: number,
  length: number,
  stallMs: number,
  signal?: AbortSignal,
): Promise<number> {
  const n = native!;
  return new Promise((resolve, reject) => {
    let lastSent = 0;
    const job = n.sendfileStart(socketFd, fileFd, offset, length, (errno, sent) => {
      clearInterval(watchdog);
      signal?.removeEventListener('abort', onAbort);
      if (errno === 0) return resolve(sent);
      const why = stalled
        ? `no progress for ${stallMs} ms`
        : errno === constants.errno.ENODATA
          ? 'the file ended early (it shrank while being sent)'
          : (errnoNames.get(errno) ?? `errno ${errno}`);
      reject(
        Object.assign(new Error(`sendfile stopped after ${sent} of ${length} bytes: ${why}`), {
          code: errnoNames.get(errno),
          sent,
        }),
      );
    });
    let stalled = false;
    const watchdog = setInterval(() => {
      const sent = n.sendfileSent(job);
      if (sent === lastSent) {
        stalled = true;
        n.sendfileCancel(job);
      }
      lastSent = sent;
    }, stallMs);
    watchdog.unref();
    const onAbort = () => n.sendfileCancel(job);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
