// TFTP server: dgram glue only. Requests arrive on the main port; each transfer gets its own socket
// (its TID, RFC 1350 section 4) and a TransferSession that does the protocol work.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from '../log.ts';
import {
  DEFAULT_LIMITS,
  encodeError,
  MAX_BLKSIZE,
  negotiateOptions,
  normalizeRequestPath,
  parsePacket,
  TftpError,
  type NegotiationLimits,
} from './protocol.ts';
import { realTimers, TransferSession, type SessionOutcome, type TftpFile } from './session.ts';

export type { TftpFile } from './session.ts';

export interface TftpClient {
  address: string;
  port: number;
}

/** path is already normalised by the server: no leading '/', '\\' turned into '/', repeated slashes collapsed; '..' segments refused before this is called. */
export type TftpFileSource = (path: string, client: TftpClient) => Promise<TftpFile | undefined> | TftpFile | undefined;

export interface TftpTransferEvent {
  type: 'tftp.sent' | 'tftp.failed' | 'tftp.probe';
  path: string;
  bytes: number;
  size: number;
  blksize: number;
  windowsize: number;
  seconds: number;
  client: TftpClient;
  error?: string;
  /** DATA windows sent again (timeouts, duplicate ACKs). */
  retransmits?: number;
}

export interface TftpServerOptions {
  address: string;
  port: number;
  files: TftpFileSource;
  log: Logger;
  onTransfer?(ev: TftpTransferEvent): void;
  /** Concurrent transfers, all clients together (default 200). */
  maxTransfers?: number;
  /** Concurrent transfers from one client address (default 50). */
  maxPerClient?: number;
  /** Longest time one transfer may hold its slot, seconds (default 300); then it fails with an ERROR. */
  maxTransferSec?: number;
  /** Largest RFC 2349 timeout option honoured, seconds (default 10); a larger one is ignored. */
  maxTimeoutSec?: number;
  /**
   * When every slot is taken, a new request evicts the transfer whose client has been silent longest, if
   * silent at least this long, ms (default 1000). A client that ACKs keeps its slot; one that asked and went
   * quiet (or asked with a spoofed source address) gives it up to a machine that is booting now.
   */
  evictSilentMs?: number;
  /** Retransmissions of one window before the transfer fails (default 5). */
  retries?: number;
  /** Retransmit timeout when the client sends no timeout option; fractions allowed (default 1). */
  defaultTimeoutSec?: number;
  /** Largest blksize granted; default: derived from the MTU of the bound interface (loopback: 65464). */
  maxBlksize?: number;
  /** Largest windowsize granted (default 64; also bounded to 1 MiB of blocks per transfer). */
  maxWindowsize?: number;
  /**
   * After sending to a client whose ACKs come back faster than this (microseconds), keep the event loop
   * polling instead of sleeping until the ACK is due (default 200; 0 turns it off). A lockstep transfer
   * is one round trip per block: on a fast LAN the sleep/wake-up of the process costs more than the
   * protocol work, and this halves it. Slow clients (firmware at ~1 ms) never trigger it.
   */
  busyPollUs?: number;
}

export interface TftpServer {
  port: number;
  activeTransfers(): number;
  /** Transfers ended to make room for a new request (see evictSilentMs). */
  evictions(): number;
  close(): Promise<void>;
}

/** dgram resolves the destination of every send() through dns.lookup on a later tick; ours are IP literals. */
function literalLookup(
  address: string,
  _opts: unknown,
  cb: (err: Error | null, address: string, family: number) => void,
): void {
  cb(null, address, address.includes(':') ? 6 : 4);
}

/** Largest block that fits the MTU of the interface bound to `address` (IP + UDP + TFTP headers = 32/52 bytes). */
export function blksizeForAddress(address: string): number {
  const v6 = address.includes(':');
  const overhead = v6 ? 52 : 32;
  const mtuOf = (name: string): number | undefined => {
    try {
      const n = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
      return Number.isFinite(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const ifaces = os.networkInterfaces();
  const wildcard = address === '0.0.0.0' || address === '::';
  let best: number | undefined;
  for (const [name, addrs] of Object.entries(ifaces)) {
    for (const a of addrs ?? []) {
      const match = wildcard ? !a.internal : a.address === address;
      if (!match) continue;
      const mtu = mtuOf(name);
      if (mtu !== undefined) best = Math.max(best ?? 0, mtu);
    }
  }
  if (best === undefined) return MAX_BLKSIZE; // loopback or unknown: let the client choose
  return Math.max(512, Math.min(MAX_BLKSIZE, best - overhead));
}

interface Transfer {
  key: string;
  path: string;
  client: TftpClient;
  request: string;
  socket: dgram.Socket | undefined;
  session: TransferSession | undefined;
  startedAt: number;
  ended: boolean;
  /** The maxTransferSec timer. */
  deadline: NodeJS.Timeout | undefined;
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const log = opts.log;
  const maxTransfers = opts.maxTransfers ?? 200;
  const maxPerClient = opts.maxPerClient ?? 50;
  const retries = opts.retries ?? 5;
  const maxTransferMs = Math.round((opts.maxTransferSec ?? 300) * 1000);
  const evictSilentMs = opts.evictSilentMs ?? 1000;
  const family = opts.address.includes(':') ? 'udp6' : 'udp4';
  const limits: NegotiationLimits = {
    ...DEFAULT_LIMITS,
    maxBlksize: Math.min(opts.maxBlksize ?? blksizeForAddress(opts.address), MAX_BLKSIZE),
    maxWindowsize: opts.maxWindowsize ?? DEFAULT_LIMITS.maxWindowsize,
    defaultTimeoutMs: Math.max(10, Math.round((opts.defaultTimeoutSec ?? 1) * 1000)),
    maxTimeoutSec: opts.maxTimeoutSec ?? DEFAULT_LIMITS.maxTimeoutSec,
  };
  const now = (): number => performance.now();

  // Busy polling (see busyPollUs): one setImmediate chain for all transfers, alive until spinUntil.
  const spinMax = (opts.busyPollUs ?? 200) / 1000;
  let spinUntil = 0;
  let spinning = false;
  const spin = (): void => {
    if (!closing && now() < spinUntil) setImmediate(spin);
    else spinning = false;
  };
  const afterSend = (minRtt: number | undefined): void => {
    if (spinMax <= 0) return;
    if (minRtt !== undefined && minRtt > spinMax) return;
    const until = now() + (minRtt === undefined ? spinMax : Math.min(spinMax, 4 * minRtt + 0.02));
    if (until > spinUntil) spinUntil = until;
    if (!spinning) {
      spinning = true;
      setImmediate(spin);
    }
  };

  const transfers = new Map<string, Transfer>(); // by client address:port
  const perClient = new Map<string, number>();
  let closing = false;

  const main = dgram.createSocket({ type: family, lookup: literalLookup as never });
  await new Promise<void>((resolve, reject) => {
    main.once('error', reject);
    main.bind(opts.port, opts.address, () => {
      main.off('error', reject);
      resolve();
    });
  });
  main.on('error', (e) => log.error({ err: e }, 'tftp: main socket error'));
  const port = main.address().port;

  const replyError = (to: TftpClient, code: number, message: string): void => {
    const pkt = encodeError(code, message);
    main.send(pkt, 0, pkt.length, to.port, to.address);
  };

  const emit = (ev: TftpTransferEvent): void => {
    try {
      opts.onTransfer?.(ev);
    } catch (e) {
      log.error({ err: e }, 'tftp: onTransfer handler threw');
    }
  };

  const release = (t: Transfer): void => {
    if (t.ended) return;
    t.ended = true;
    if (t.deadline) clearTimeout(t.deadline);
    if (transfers.get(t.key) === t) transfers.delete(t.key);
    const n = (perClient.get(t.client.address) ?? 1) - 1;
    if (n <= 0) perClient.delete(t.client.address);
    else perClient.set(t.client.address, n);
    if (t.socket) {
      const s = t.socket;
      t.socket = undefined;
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  };

  const onSessionEnd = (t: Transfer, outcome: SessionOutcome): void => {
    const s = t.session!;
    const ev: TftpTransferEvent = {
      type: outcome.kind === 'sent' ? 'tftp.sent' : outcome.kind === 'probe' ? 'tftp.probe' : 'tftp.failed',
      path: t.path,
      bytes: s.bytesAcked,
      size: s.size,
      blksize: s.blksize,
      windowsize: s.windowsize,
      seconds: Math.round(now() - t.startedAt) / 1000,
      client: t.client,
      retransmits: s.retransmits,
    };
    if (outcome.kind === 'failed') ev.error = outcome.error;
    const fields = {
      path: t.path,
      client: `${t.client.address}:${t.client.port}`,
      bytes: ev.bytes,
      size: ev.size,
      blksize: ev.blksize,
      windowsize: ev.windowsize,
      seconds: ev.seconds,
    };
    if (outcome.kind === 'sent') log.info(outcome.note ? { ...fields, note: outcome.note } : fields, 'tftp: sent');
    else if (outcome.kind === 'probe') log.debug(fields, 'tftp: size probe ended by client (ERROR 8 after OACK)');
    else log.warn({ ...fields, error: outcome.error }, 'tftp: transfer failed');
    // Close the socket after the current tick: the final ERROR to the client may still be in flight.
    const sock = t.socket;
    t.socket = undefined;
    release(t);
    if (sock)
      setImmediate(() => {
        try {
          sock.close();
        } catch {
          /* closed */
        }
      });
    emit(ev);
  };

  const startTransfer = async (
    t: Transfer,
    mode: string,
    options: Parameters<typeof negotiateOptions>[0],
  ): Promise<void> => {
    let file: TftpFile | undefined;
    try {
      file = await opts.files(t.path, t.client);
    } catch (e) {
      log.error({ err: e, path: t.path }, 'tftp: file source threw');
      release(t);
      replyError(t.client, TftpError.NotDefined, 'internal error');
      emit({
        type: 'tftp.failed',
        path: t.path,
        bytes: 0,
        size: 0,
        blksize: 512,
        windowsize: 1,
        seconds: 0,
        client: t.client,
        error: `file source threw: ${(e as Error).message}`,
      });
      return;
    }
    if (t.ended) return; // superseded or server closing while the source looked the file up
    if (!file) {
      release(t);
      log.debug({ path: t.path, client: t.client.address }, 'tftp: file not found');
      replyError(t.client, TftpError.FileNotFound, 'file not found');
      // pxelinux and GRUB walk per-MAC, per-IP and default names: most of these are normal misses.
      emit({
        type: 'tftp.failed',
        path: t.path,
        bytes: 0,
        size: 0,
        blksize: 512,
        windowsize: 1,
        seconds: Math.round(now() - t.startedAt) / 1000,
        client: t.client,
        error: 'not found',
      });
      return;
    }
    const neg = negotiateOptions(options, file.size, limits);
    const sock = dgram.createSocket({ type: family, lookup: literalLookup as never });
    t.socket = sock;
    sock.on('error', (e) => {
      log.warn({ err: e, path: t.path }, 'tftp: transfer socket error');
      t.session?.abort(`socket error: ${e.message}`, false);
      if (!t.session) release(t);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(0, opts.address, () => {
          sock.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      log.error({ err: e }, 'tftp: cannot bind a transfer socket');
      release(t);
      replyError(t.client, TftpError.NotDefined, 'server cannot open a transfer port');
      return;
    }
    if (t.ended) return;
    const peerAddr = t.client.address;
    const peerPort = t.client.port;
    const session = new TransferSession(
      { file, blksize: neg.blksize, windowsize: neg.windowsize, timeoutMs: neg.timeoutMs, retries, oack: neg.oack },
      {
        send: (buf, len) => sock.send(buf, 0, len, peerPort, peerAddr),
        now,
        timers: realTimers,
        afterSend,
      },
      (outcome) => onSessionEnd(t, outcome),
    );
    t.session = session;
    sock.on('message', (msg, rinfo) => {
      if (rinfo.port !== peerPort || rinfo.address !== peerAddr) {
        // RFC 1350 section 4: a packet from a foreign TID gets ERROR 5 and leaves the transfer alone.
        // Never answer an ERROR with an ERROR (two servers could loop).
        const isError = msg.length >= 2 && msg[0] === 0 && msg[1] === 5;
        log.debug({ from: `${rinfo.address}:${rinfo.port}`, path: t.path }, 'tftp: packet from unknown TID');
        if (isError) return;
        const pkt = encodeError(TftpError.UnknownTid, 'unknown transfer ID');
        sock.send(pkt, 0, pkt.length, rinfo.port, rinfo.address);
        return;
      }
      const dropped = session.handle(msg);
      if (dropped !== undefined && log.level === 'debug')
        log.debug({ reason: dropped, path: t.path }, 'tftp: dropped packet from peer');
    });
    log.debug(
      {
        path: t.path,
        client: `${peerAddr}:${peerPort}`,
        mode,
        size: file.size,
        blksize: neg.blksize,
        windowsize: neg.windowsize,
        oack: neg.oack,
      },
      'tftp: transfer start',
    );
    session.start();
  };

  let evicted = 0;
  // Refusals and evictions come in floods under attack: one log line per kind every 10 s, saying how many were not logged.
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  const limited = (kind: string, write: (suppressed: number) => void): void => {
    const t = now();
    const l = lastLogged.get(kind);
    if (l && t - l.at < 10_000) {
      l.suppressed++;
      return;
    }
    if (!l && lastLogged.size >= 4096) lastLogged.clear();
    write(l?.suppressed ?? 0);
    lastLogged.set(kind, { at: t, suppressed: 0 });
  };
  /** Frees the slot of the transfer whose client has been silent longest, if silent for evictSilentMs. */
  const evictSilent = (at: number): void => {
    let stalest: Transfer | undefined;
    for (const t of transfers.values()) {
      if (!t.session || t.session.done) continue;
      if (!stalest || t.session.lastHeardAt < stalest.session!.lastHeardAt) stalest = t;
    }
    if (!stalest || at - stalest.session!.lastHeardAt < evictSilentMs) return;
    evicted++;
    const silent = Math.round(at - stalest.session!.lastHeardAt);
    limited('evict', (suppressed) =>
      log.warn(
        { client: stalest!.key, path: stalest!.path, silentMs: silent, suppressed },
        'tftp: all slots taken: evicting the transfer silent longest',
      ),
    );
    stalest.session!.abort(
      `server busy: slot given to a new request after ${silent} ms without an ACK from this client`,
      true,
    );
  };

  const onRequest = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const client: TftpClient = { address: rinfo.address, port: rinfo.port };
    const parsed = parsePacket(msg);
    if (!parsed.ok) {
      log.debug(
        { from: `${rinfo.address}:${rinfo.port}`, reason: parsed.reason, bytes: msg.length },
        'tftp: dropped malformed packet',
      );
      return;
    }
    const p = parsed.packet;
    if (p.op === 'WRQ') {
      log.info({ from: rinfo.address, path: p.filename }, 'tftp: write request refused');
      replyError(client, TftpError.AccessViolation, 'write requests are refused: read-only server');
      return;
    }
    if (p.op !== 'RRQ') {
      log.debug(
        { from: `${rinfo.address}:${rinfo.port}`, op: p.op },
        'tftp: dropped non-request packet on the request port',
      );
      return;
    }
    if (closing) return;
    // netascii is served byte-for-byte like octet: boot files are binary or already LF text, and a
    // CRLF conversion would change the size announced in tsize. "mail" (obsolete) is refused.
    if (p.mode !== 'octet' && p.mode !== 'netascii') {
      log.info({ from: rinfo.address, mode: p.mode }, 'tftp: unsupported mode');
      replyError(client, TftpError.IllegalOperation, `mode ${p.mode} not supported (octet, netascii)`);
      return;
    }
    const norm = normalizeRequestPath(p.filename);
    if (!norm.ok) {
      log.info({ from: rinfo.address, path: p.filename, reason: norm.reason }, 'tftp: path refused');
      replyError(client, TftpError.AccessViolation, `access violation: ${norm.reason}`);
      emit({
        type: 'tftp.failed',
        path: p.filename,
        bytes: 0,
        size: 0,
        blksize: 512,
        windowsize: 1,
        seconds: 0,
        client,
        error: `path refused: ${norm.reason}`,
      });
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}`;
    const request = msg.toString('latin1');
    const existing = transfers.get(key);
    if (existing) {
      // The client resent its request because our first answer was lost: our own retransmit covers it.
      if (existing.request === request && (!existing.session || existing.session.acked === 0)) {
        log.debug({ from: key, path: norm.path }, 'tftp: duplicate request ignored');
        return;
      }
      // Same port, new request: the client restarted; the old transfer is dead.
      if (existing.session) existing.session.abort('superseded by a new request from the same port', false);
      else release(existing);
    }
    const mine = perClient.get(rinfo.address) ?? 0;
    if (mine >= maxPerClient) {
      limited(`client:${rinfo.address}`, (suppressed) =>
        log.warn(
          { from: rinfo.address, path: norm.path, max: maxPerClient, suppressed },
          'tftp: too many transfers for one client',
        ),
      );
      replyError(
        client,
        TftpError.NotDefined,
        `too many transfers from ${rinfo.address} (max ${maxPerClient}), retry later`,
      );
      return;
    }
    if (transfers.size >= maxTransfers) evictSilent(now());
    if (transfers.size >= maxTransfers) {
      limited('busy', (suppressed) =>
        log.warn({ from: rinfo.address, path: norm.path, max: maxTransfers, suppressed }, 'tftp: too many transfers'),
      );
      replyError(client, TftpError.NotDefined, `server busy: ${maxTransfers} transfers in progress, retry later`);
      return;
    }
    perClient.set(rinfo.address, mine + 1);
    const t: Transfer = {
      key,
      path: norm.path,
      client,
      request,
      socket: undefined,
      session: undefined,
      startedAt: now(),
      ended: false,
      deadline: undefined,
    };
    transfers.set(key, t);
    t.deadline = setTimeout(() => {
      const error = `transfer still running after ${maxTransferMs / 1000} s (the limit per transfer): slot freed`;
      if (t.session) t.session.abort(error, true);
      else release(t);
    }, maxTransferMs);
    t.deadline.unref();
    startTransfer(t, p.mode, p.options).catch((e: unknown) => {
      log.error({ err: e, path: norm.path }, 'tftp: transfer setup failed');
      if (t.session) t.session.abort('internal error', true);
      else release(t);
    });
  };

  main.on('message', (msg, rinfo) => {
    try {
      onRequest(msg, rinfo);
    } catch (e) {
      log.error({ err: e }, 'tftp: request handler failed');
    }
  });

  return {
    port,
    activeTransfers: () => transfers.size,
    evictions: () => evicted,
    close: async () => {
      closing = true;
      for (const t of [...transfers.values()]) {
        if (t.session) t.session.abort('server shutting down', true);
        else release(t);
      }
      await new Promise<void>((resolve) => main.close(() => resolve()));
      // Let the final ERROR packets and deferred socket closes run.
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
}
