// Live board updates over Server-Sent Events. One subscription to the event log for all viewers:
// events mark hosts dirty, and every `intervalMs` the dirty hosts' chips are computed once and sent
// to every open stream. A rack booting at once makes many events per host; this sends one chip each.
import type { Response } from 'express';
import type { Chip } from './board.ts';

export interface LiveDeps {
  subscribe(listener: (e: { mac: string }) => void): () => void;
  /** The chip of a host now; undefined once the host is gone. */
  chip(mac: string): Chip | undefined;
  /** How long dirty hosts wait to be sent together (well under the one second a tech waits). */
  intervalMs?: number;
  heartbeatMs?: number;
  onError?(err: unknown): void;
}

interface Stream { res: Response; alive: () => boolean }

export class LiveBoard {
  private readonly streams = new Set<Stream>();
  private readonly dirty = new Set<string>();
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;

  constructor(private readonly d: LiveDeps) {}

  get size(): number { return this.streams.size; }

  /** Opens an SSE stream on `res`; `alive` says whether its session still holds. */
  open(res: Response, alive: () => boolean): void {
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx in front: do not buffer the stream
    });
    res.flushHeaders();
    res.write('retry: 2000\n: live\n\n');
    const s: Stream = { res, alive };
    this.streams.add(s);
    res.on('close', () => this.drop(s));
    if (!this.unsubscribe) {
      this.unsubscribe = this.d.subscribe((e) => this.mark(e.mac));
      this.heartbeat = setInterval(() => this.beat(), this.d.heartbeatMs ?? 20_000);
      this.heartbeat.unref();
    }
  }

  private mark(mac: string): void {
    this.dirty.add(mac);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.d.intervalMs ?? 150);
      this.timer.unref();
    }
  }

  flush(): void {
    this.timer = undefined;
    const macs = [...this.dirty];
    this.dirty.clear();
    for (const mac of macs) {
      let msg: string;
      try {
        const chip = this.d.chip(mac);
        msg = `event: chip\ndata: ${JSON.stringify(chip ?? { mac, removed: true })}\n\n`;
      } catch (err) { this.d.onError?.(err); continue; }
      for (const s of this.streams) s.res.write(msg);
    }
  }

  private beat(): void {
    for (const s of this.streams) {
      if (!s.alive()) { s.res.write('event: logout\ndata: {}\n\n'); s.res.end(); this.drop(s); }
      else s.res.write(': ping\n\n');
    }
  }

  private drop(s: Stream): void {
    this.streams.delete(s);
    if (this.streams.size === 0) this.stop();
  }

  private stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.timer) clearTimeout(this.timer);
    this.heartbeat = this.timer = undefined;
    this.dirty.clear();
  }

  /** Ends every stream (server shutdown: an open stream would keep http.close() waiting forever). */
  close(): void {
    for (const s of [...this.streams]) { s.res.end(); this.streams.delete(s); }
    this.stop();
  }
}
