// One read transfer: OACK, windowed DATA (RFC 7440), retransmit with backoff, block-number rollover.
// No sockets here: the server hands in `send`, a clock and timers, so tests drive it packet by packet.
import {
  ackBlock,
  encodeError,
  encodeOack,
  parsePacket,
  TftpError,
  writeDataHeader,
  type TftpOption,
} from './protocol.ts';

/** A file to serve: bytes in memory (generated configs) or a stream opened on demand (disk files). */
export type TftpFile = { size: number; data: Buffer } | { size: number; open(): NodeJS.ReadableStream };

export interface SessionTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface SessionDeps {
  /** Sends buf[0..length) to the peer. */
  send(buf: Buffer, length: number): void;
  /** Milliseconds, monotonic. */
  now(): number;
  timers: SessionTimers;
  /** Called after new blocks went out, with the lowest ACK round trip seen so far in ms (undefined before the first). */
  afterSend?(minRttMs: number | undefined): void;
}

export interface SessionParams {
  file: TftpFile;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Retransmissions of one window before giving up. */
  retries: number;
  /** Negotiated options; empty means the transfer starts with DATA 1 (RFC 1350). */
  oack: readonly TftpOption[];
  /** Bytes read ahead of the window from a stream (at least two windows). */
  readAheadBytes?: number;
  /** Longest retransmit interval the backoff reaches. */
  maxIntervalMs?: number;
}

export type SessionOutcome =
  /** `note`: the client ACKed every block but the last and then went quiet (see onTimer). */
  | { kind: 'sent'; note?: string }
  /** EDK2 asks with tsize, reads the OACK and aborts with ERROR 8: a size probe, not a failure. */
  | { kind: 'probe' }
  | { kind: 'failed'; error: string };

const FINAL_BLOCK_RETRIES = 2;

export const realTimers: SessionTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** FIFO of stream chunks; copies out exactly what a block needs. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0;
  private off = 0;
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Copies n bytes into dst at dstOff; the caller has checked length >= n. */
  take(dst: Buffer, dstOff: number, n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[this.head]!;
      const avail = c.length - this.off;
      const k = avail < n ? avail : n;
      c.copy(dst, dstOff, this.off, this.off + k);
      dstOff += k;
      n -= k;
      this.off += k;
      if (this.off === c.length) {
        this.chunks[this.head] = EMPTY;
        this.head++;
        this.off = 0;
      }
    }
    if (this.head > 256) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.off = 0;
    this.length = 0;
  }
}
const EMPTY = Buffer.alloc(0);

type State = 'idle' | 'oack' | 'data' | 'done';

export class TransferSession {
  readonly blksize: number;
  readonly windowsize: number;
  readonly size: number;
  readonly totalBlocks: number;
  /** Highest block (absolute, not wrapped) the client has acknowledged. */
  acked = 0;
  /** Highest block (absolute) sent at least once. */
  sent = 0;
  /** Retransmitted packets, for the event and tests. */
  retransmits = 0;
  /** Duplicate or stale ACKs ignored (sorcerer's apprentice, RFC 1350 / RFC 1123 4.2.3.1). */
  duplicateAcks = 0;
  outcome: SessionOutcome | undefined;
  /** Lowest time from sending a window to its ACK, ms: what the client can do, without scheduling noise. */
  minRtt: number | undefined;
  /** When the client last moved the transfer on (start, or an ACK of new blocks): a full server evicts the stalest. */
  lastHeardAt = 0;

  private state: State = 'idle';
  private readonly slots: Buffer[] = [];
  private readonly slotLen: number[] = [];
  /** Highest block whose packet is built in its slot. */
  private filled = 0;
  private readonly queue = new ByteQueue();
  private stream: NodeJS.ReadableStream | undefined;
  private ended = false;
  private paused = false;
  private waitingData = false;
  private readonly readAhead: number;
  private oackPacket: Buffer | undefined;
  private timer: unknown;
  private interval: number;
  private readonly baseInterval: number;
  private readonly maxInterval: number;
  private retry = 0;
  private lastActivity = 0;

  constructor(
    private readonly params: SessionParams,
    private readonly deps: SessionDeps,
    private readonly onEnd: (outcome: SessionOutcome) => void,
  ) {
    this.blksize = params.blksize;
    this.windowsize = params.windowsize;
    this.size = params.file.size;
    // A file of exactly n blocks ends with an empty DATA packet (RFC 1350 section 6).
    this.totalBlocks = Math.floor(this.size / this.blksize) + 1;
    this.readAhead = Math.max(params.readAheadBytes ?? 256 * 1024, 2 * this.windowsize * this.blksize);
    this.baseInterval = params.timeoutMs;
    this.interval = params.timeoutMs;
    this.maxInterval = Math.max(params.maxIntervalMs ?? 8000, params.timeoutMs);
  }

  /** Payload bytes the client has acknowledged. */
  get bytesAcked(): number {
    return Math.min(this.acked * this.blksize, this.size);
  }

  get done(): boolean {
    return this.state === 'done';
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.lastHeardAt = this.deps.now();
    const f = this.params.file;
    if ('data' in f) {
      if (f.data.length < f.size)
        return this.finish(
          { kind: 'failed', error: `generated file has ${f.data.length} bytes, announced ${f.size}` },
          true,
        );
      this.queue.push(f.data);
      this.ended = true;
    } else {
      let s: NodeJS.ReadableStream;
      try {
        s = f.open();
      } catch (e) {
        return this.finish({ kind: 'failed', error: `open failed: ${(e as Error).message}` }, true);
      }
      this.stream = s;
      s.on('data', (chunk: Buffer | string) =>
        this.onChunk(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk),
      );
      s.on('end', () => {
        this.ended = true;
        if (this.waitingData) this.pump();
      });
      s.on('error', (e: Error) => this.finish({ kind: 'failed', error: `read failed: ${e.message}` }, true));
    }
    if (this.params.oack.length > 0) {
      this.state = 'oack';
      this.oackPacket = encodeOack(this.params.oack);
      this.deps.send(this.oackPacket, this.oackPacket.length);
      this.lastActivity = this.deps.now();
      this.armTimer();
    } else {
      this.state = 'data';
      this.pump();
    }
  }

  /**
   * A datagram from the peer (the server has already checked address and port).
   * Returns undefined when used, or why it was dropped (the server logs it at debug).
   */
  handle(msg: Buffer): string | undefined {
    if (this.state === 'done') return 'transfer finished';
    const blk = ackBlock(msg);
    if (blk >= 0) return this.onAck(blk);
    const p = parsePacket(msg);
    if (!p.ok) return p.reason;
    if (p.packet.op === 'ERROR') {
      const { code, message } = p.packet;
      if (this.state === 'oack' && code === TftpError.OptionRefused) this.finish({ kind: 'probe' }, false);
      else this.finish({ kind: 'failed', error: `client sent ERROR ${code}: ${message}` }, false);
      return undefined;
    }
    return `unexpected ${p.packet.op} from peer`;
  }

  /** Ends the transfer from outside (server shutdown, superseded request). */
  abort(error: string, notifyClient: boolean): void {
    this.finish({ kind: 'failed', error }, notifyClient);
  }

  private onAck(wire: number): string | undefined {
    if (this.state === 'oack') {
      if (wire !== 0) return `ACK ${wire} while waiting for ACK 0 of the OACK`;
      this.state = 'data';
      this.oackPacket = undefined;
      this.progress();
      this.pump();
      return undefined;
    }
    if (this.state !== 'data') return 'ACK before start';
    // Map the 16-bit block number onto the absolute count: block numbers wrap to 0 after 65535.
    const d = (wire - (this.acked & 0xffff) + 0x10000) & 0xffff;
    const abs = this.acked + d;
    if (d === 0 || abs > this.sent) {
      // Duplicate or stale ACK: resending on it would double every packet from here on (sorcerer's apprentice).
      this.duplicateAcks++;
      return undefined;
    }
    this.acked = abs;
    this.progress();
    if (abs >= this.totalBlocks) {
      this.finish({ kind: 'sent' }, false);
      return undefined;
    }
    // RFC 7440 section 4: an ACK inside the window means the client saw up to `abs`; the next window starts after it.
    if (abs < this.sent) this.sent = abs;
    this.pump();
    return undefined;
  }

  private progress(): void {
    const t = this.deps.now();
    if (this.retry === 0) {
      // Karn: no RTT samples from retransmitted windows.
      const sample = t - this.lastActivity;
      if (this.minRtt === undefined || sample < this.minRtt) this.minRtt = sample;
    }
    this.retry = 0;
    this.lastActivity = t;
    this.lastHeardAt = t;
    if (this.interval !== this.baseInterval) {
      // After a backoff the pending timer is too far out: start over at the base interval.
      this.interval = this.baseInterval;
      if (this.timer !== undefined) {
        this.deps.timers.clear(this.timer);
        this.timer = undefined;
      }
    }
  }

  /** Sends blocks up to the end of the window that starts after the last ACK. */
  private pump(): void {
    if (this.state !== 'data') return;
    this.waitingData = false;
    let limit = this.acked + this.windowsize;
    if (limit > this.totalBlocks) limit = this.totalBlocks;
    while (this.sent < limit) {
      const abs = this.sent + 1;
      if (abs > this.filled) {
        if (!this.fill(abs)) {
          if (this.state === 'data') this.waitingData = true;
          break;
        }
      }
      const i = abs % this.windowsize;
      this.deps.send(this.slots[i]!, this.slotLen[i]!);
      this.sent = abs;
    }
    if (this.sent > this.acked) {
      this.lastActivity = this.deps.now();
      this.armTimer();
      this.deps.afterSend?.(this.minRtt);
    }
  }

  private fill(abs: number): boolean {
    const len = Math.min(this.blksize, this.size - (abs - 1) * this.blksize);
    if (this.queue.length < len) {
      if (this.ended) this.finish({ kind: 'failed', error: `file shorter than its announced size ${this.size}` }, true);
      return false;
    }
    const i = abs % this.windowsize;
    let slot = this.slots[i];
    if (!slot) {
      slot = Buffer.allocUnsafe(4 + this.blksize);
      this.slots[i] = slot;
    }
    writeDataHeader(slot, abs & 0xffff);
    if (len > 0) this.queue.take(slot, 4, len);
    this.slotLen[i] = 4 + len;
    this.filled = abs;
    if (this.paused && this.queue.length < this.readAhead / 2) {
      this.paused = false;
      this.stream?.resume();
    }
    return true;
  }

  private onChunk(chunk: Buffer): void {
    if (this.state === 'done') return;
    this.queue.push(chunk);
    if (!this.paused && this.queue.length >= this.readAhead) {
      this.paused = true;
      this.stream?.pause();
    }
    if (this.waitingData) this.pump();
  }

  private armTimer(): void {
    if (this.timer === undefined) this.timer = this.deps.timers.set(this.onTimer, this.interval);
  }

  // One timer per transfer, re-checked lazily when it fires: re-arming it on every ACK costs more than the check.
  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.state === 'done') return;
    const outstanding = this.state === 'oack' || this.sent > this.acked;
    if (!outstanding) return;
    const elapsed = this.deps.now() - this.lastActivity;
    if (elapsed < this.interval) {
      this.timer = this.deps.timers.set(this.onTimer, this.interval - elapsed);
      return;
    }
    // Only the final block is unacknowledged and the client has ACKed everything before it: loaders (GRUB,
    // iPXE) often jump into the kernel right after the last block, so its ACK never comes (RFC 1350's
    // "dallying" problem). Two retransmits, then count the file as delivered instead of holding the slot
    // and reporting a failure half a minute later.
    const onlyFinal =
      this.state === 'data' &&
      this.acked === this.totalBlocks - 1 &&
      this.sent === this.totalBlocks &&
      this.totalBlocks > 1;
    if (onlyFinal && this.retry >= FINAL_BLOCK_RETRIES) {
      this.finish({ kind: 'sent', note: 'final ACK not received; every earlier block was acknowledged' }, false);
      return;
    }
    if (++this.retry > this.params.retries) {
      const what = this.state === 'oack' ? 'OACK' : `block ${this.acked + 1}`;
      this.finish(
        { kind: 'failed', error: `timeout: no ACK for ${what} after ${this.params.retries} retransmissions` },
        true,
      );
      return;
    }
    this.interval = Math.min(this.interval * 2, this.maxInterval);
    if (this.state === 'oack') {
      this.deps.send(this.oackPacket!, this.oackPacket!.length);
      this.retransmits++;
    } else {
      // Resend the whole outstanding window (RFC 7440 section 4).
      for (let abs = this.acked + 1; abs <= this.sent; abs++) {
        const i = abs % this.windowsize;
        this.deps.send(this.slots[i]!, this.slotLen[i]!);
        this.retransmits++;
      }
    }
    this.lastActivity = this.deps.now();
    this.armTimer();
  };

  private finish(outcome: SessionOutcome, notifyClient: boolean): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.outcome = outcome;
    if (this.timer !== undefined) {
      this.deps.timers.clear(this.timer);
      this.timer = undefined;
    }
    if (this.stream) {
      const s = this.stream as NodeJS.ReadableStream & { destroy?: () => void };
      this.stream = undefined;
      s.removeAllListeners('data');
      s.on('error', () => {}); // late errors after destroy must not become uncaught
      s.destroy?.();
    }
    this.queue.clear();
    if (notifyClient && outcome.kind === 'failed') {
      const err = encodeError(TftpError.NotDefined, outcome.error);
      try {
        this.deps.send(err, err.length);
      } catch {
        // the socket may already be gone; the outcome still reaches the server
      }
    }
    this.onEnd(outcome);
  }
}
