// Serving a file over HTTP with HEAD and a single Range, for kernels, initrds, stage2 trees and
// multi-GiB squashfs images. Bodies of 64 KiB and more go out by sendfile(2) (zero-copy.ts), like
// nginx; without the native addon, or for small bodies, two reusable 1 MiB buffers stream the file
// (no garbage per chunk: about 1.7x the throughput of fs.createReadStream, test/bench/http.sh).
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import rangeParser from 'range-parser';
import { flushed, plainSocketFd, sendFileRange } from './zero-copy.ts';

const CHUNK = 1 << 20;
const ZERO_COPY_MIN = 64 << 10;
/** A client that takes no byte for this long is cut off (nginx's send_timeout is 60 s). */
export const STALL_MS = 60_000;
const TYPES: Record<string, string> = {
  '.img': 'application/octet-stream',
  '.iso': 'application/octet-stream',
  '.rpm': 'application/x-rpm',
  '.efi': 'application/efi',
  '.cfg': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.ipxe': 'text/plain; charset=utf-8',
  '.xml': 'application/xml',
};

export interface StreamOptions {
  /** false forces the portable streamer (tests cover both paths). */
  zeroCopy?: boolean;
  stallMs?: number;
}

export async function streamFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  opts: StreamOptions = {},
): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    const size = st.size;
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Last-Modified', st.mtime.toUTCString());
    res.setHeader('Content-Type', TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream');
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range && size > 0) {
      const parsed = rangeParser(size, range, { combine: true });
      if (parsed === -1) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
        res.end();
        return;
      }
      // A single byte range is what Anaconda and curl send; several ranges get the whole file (RFC 9110 14.2).
      if (parsed !== -2 && parsed.type === 'bytes' && parsed.length === 1) {
        ({ start, end } = parsed[0]);
        status = 206;
        res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
      }
    }
    const length = size === 0 ? 0 : end - start + 1;
    res.writeHead(status, { 'Content-Length': length });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    if (opts.zeroCopy !== false && length >= ZERO_COPY_MIN && plainSocketFd(res.socket) !== undefined)
      await sendZeroCopy(res, fh.fd, start, length, opts.stallMs ?? STALL_MS);
    else await pump(fh, res, start, end + 1, opts.stallMs ?? STALL_MS);
  } finally {
    await fh.close();
  }
}

async function sendZeroCopy(
  res: ServerResponse,
  fileFd: number,
  start: number,
  length: number,
  stallMs: number,
): Promise<void> {
  // The headers must be in the kernel before the body bypasses Node's write queue.
  res.flushHeaders();
  try {
    await flushed(res.socket!);
  } catch {
    res.destroy(); // the client left before the headers were out: routine, nothing to report
    return;
  }
  const socketFd = plainSocketFd(res.socket); // read again: the client may have gone while we waited
  if (socketFd === undefined) {
    res.destroy();
    return;
  }
  const abort = new AbortController();
  const onClose = () => abort.abort();
  res.once('close', onClose);
  try {
    await sendFileRange(socketFd, fileFd, start, length, stallMs, abort.signal);
    res.end(); // Content-Length is met: Node writes nothing more and the connection stays reusable
  } catch (err) {
    res.destroy(); // a short body must not be followed by the next response on the same connection
    if (!abort.signal.aborted) throw err; // the client leaving is routine; a stall or I/O error is not
  } finally {
    res.off('close', onClose);
  }
}

async function pump(
  fh: Awaited<ReturnType<typeof open>>,
  res: ServerResponse,
  from: number,
  to: number,
  stallMs: number,
): Promise<void> {
  const size = Math.min(CHUNK, to - from);
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  let closed = false;
  let stalled = false;
  let release: (() => void) | undefined;
  const onClose = () => {
    closed = true;
    release?.();
  };
  res.once('close', onClose);
  let pending: Promise<void> = Promise.resolve();
  let pos = from;
  try {
    for (let i = 0; pos < to && !closed; i++) {
      const buf = buffers[i & 1];
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - pos), pos);
      if (bytesRead === 0) break; // the file shrank under us
      pos += bytesRead;
      // The other buffer may still be in the socket: wait for it before this one's turn comes again.
      await pending;
      if (closed) break;
      pending = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stalled = closed = true;
          resolve();
        }, stallMs);
        release = () => {
          clearTimeout(timer);
          resolve();
        };
        res.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), release);
      });
    }
    await pending;
  } finally {
    res.off('close', onClose);
  }
  // A short body must not be followed by the next response on the same connection.
  if (closed || pos < to) res.destroy();
  else res.end();
  if (stalled) throw new Error(`no progress for ${stallMs} ms after ${pos - from} of ${to - from} bytes`);
  if (!closed && pos < to)
    throw new Error(`the file ended after ${pos - from} of ${to - from} bytes (it shrank while being sent)`);
}
