// Live board updates over Server-Sent Events. One subscription to the event log for all viewers:
// events mark hosts dirty, and every `intervalMs` the dirty hosts' chips are computed once and sent
// to every open stream. A rack booting at once makes many events per host; this sends one chip each.
// A heartbeat event every `heartbeatMs` lets the page tell a dead stream (a proxy that stopped passing
// it, a half-open TCP connection) from a quiet board: the page says "Offline" after missing a few.
import type { Response } from 'express';
import type { Chip } from './board.ts';

/** Tells an event-stream client why its stream ends (logout, or a newer tab took its place), then closes it. */
export function endStream(res: Response, why: 'logout' | 'replaced'): void {
  try {
    res.write(`event: ${why}\ndata: {}\n\n`);
    res.end();
  } catch {
    /* already gone */
  }
}

export interface LiveDeps {
  /** Changes to hosts (the change feed: this process and others); kind "resync": every host may have changed. */
  subscribe(listener: (e: { mac: string; kind?: string }) => void): () => void;
  /** The chip of a host now; undefined once the host is gone. */
  chip(mac: string): Chip | undefined | Promise<Chip | undefined>;
  /** How long dirty hosts wait to be sent together (well under the one second a tech waits). */
  intervalMs?: number;
  heartbeatMs?: number;
  onError?(err: unknown): void;
  /** Streams one session may hold (tabs); opening one more ends that session's oldest (default 4). */
  maxPerSession?: number;
  /** Streams in all; past it a new stream is refused with 503 (default 256). */
  maxStreams?: number;
}

/** Whether a stream's session still holds (a store read: it may answer later). */
export type Alive = () => boolean | Promise<boolean>;

interface Stream {
  res: Response;
  alive: Alive;
  session: string | undefined;
}

export type OpenResult = 'opened' | 'refused';

/** Often enough that a page notices a dead stream within seconds; one small write per stream. */
export const DEFAULT_HEARTBEAT_MS = 5000;

export class LiveBoard {
  private readonly streams = new Set<Stream>();
  /** Streams by session key (Set keeps opening order: the first is the oldest). */
  private readonly bySession = new Map<string, Set<Stream>>();
  private readonly dirty = new Set<string>();
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  /** The flush under way: the next one reads its chips only after this one wrote (a newer chip is never overtaken). */
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly d: LiveDeps) {}

  get size(): number {
    return this.streams.size;
  }

  /**
   * Opens an SSE stream on `res`; `alive` says whether its session still holds; `session` (its id hash) bounds
   * the streams of one session and lets logout end them at once (endSession).
   */
  open(res: Response, alive: Alive, session?: string): OpenResult {
    const maxStreams = this.d.maxStreams ?? 256;
    const maxPerSession = this.d.maxPerSession ?? 4;
    const mine = session === undefined ? undefined : this.bySession.get(session);
    if (mine && mine.size >= maxPerSession) {
      // A session at its cap opens one more (a new tab): the oldest is the one nobody looks at.
      for (const old of [...mine].slice(0, mine.size - maxPerSession + 1)) this.end(old, 'replaced');
    }
    if (this.streams.size >= maxStreams) {
      res
        .status(503)
        .set({ 'Retry-After': '30', 'Cache-Control': 'no-store' })
        .type('text/plain')
        .send(
          `live board: ${maxStreams} streams are open (the limit); the board still works, reload it for fresh states\n`,
        );
      return 'refused';
    }
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx in front: do not buffer the stream
    });
    res.flushHeaders();
    const heartbeatMs = this.d.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    res.write(`retry: 2000\n: live\n\nevent: hello\ndata: ${JSON.stringify({ heartbeatMs })}\n\n`);
    const s: Stream = { res, alive, session };
    this.streams.add(s);
    if (session !== undefined) {
      let set = this.bySession.get(session);
      if (!set) {
        set = new Set();
        this.bySession.set(session, set);
      }
      set.add(s);
    }
    res.on('close', () => this.drop(s));
    if (!this.unsubscribe) {
      this.unsubscribe = this.d.subscribe((e) => (e.kind === 'resync' ? this.resync() : this.mark(e.mac)));
      this.heartbeat = setInterval(() => void this.beat().catch((e) => this.d.onError?.(e)), heartbeatMs);
      this.heartbeat.unref();
    }
    return 'opened';
  }

  /** Streams open now for one session. */
  sessionStreams(session: string): number {
    return this.bySession.get(session)?.size ?? 0;
  }

  /** Ends every stream of a session (logout): it must not keep receiving the board. */
  endSession(session: string): number {
    const set = this.bySession.get(session);
    if (!set) return 0;
    const n = set.size;
    for (const s of [...set]) this.end(s, 'logout');
    return n;
  }

  private end(s: Stream, why: 'logout' | 'replaced'): void {
    endStream(s.res, why);
    this.drop(s);
  }

  private mark(mac: string): void {
    this.dirty.add(mac);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.d.intervalMs ?? 150);
      this.timer.unref();
    }
  }

  /** Sends the dirty hosts' chips; resolves once they are written (never rejects: errors go to onError). */
  flush(): Promise<void> {
    this.timer = undefined;
    const macs = [...this.dirty];
    this.dirty.clear();
    this.flushing = this.flushing.then(() => this.send(macs)).catch((e) => this.d.onError?.(e));
    return this.flushing;
  }

  private async send(macs: string[]): Promise<void> {
    const msgs = await Promise.all(
      macs.map(async (mac) => {
        try {
          const chip = await this.d.chip(mac);
          return `event: chip\ndata: ${JSON.stringify(chip ?? { mac, removed: true })}\n\n`;
        } catch (err) {
          this.d.onError?.(err);
          return undefined;
        }
      }),
    );
    for (const msg of msgs) if (msg) for (const s of this.streams) s.res.write(msg);
  }

  private async beat(): Promise<void> {
    await Promise.all(
      [...this.streams].map(async (s) => {
        let alive = true;
        try {
          alive = await s.alive();
        } catch (err) {
          // The store did not answer: keep the stream (the next beat asks again) rather than sign everyone out.
          this.d.onError?.(err);
        }
        if (!this.streams.has(s)) return;
        if (!alive) this.end(s, 'logout');
        else s.res.write('event: ping\ndata: {}\n\n');
      }),
    );
  }

  /** Too many changes to tell apart (the feed lost track): every page reads the board again. */
  private resync(): void {
    this.dirty.clear();
    for (const s of this.streams) s.res.write('event: resync\ndata: {}\n\n');
  }

  private drop(s: Stream): void {
    if (!this.streams.delete(s)) return;
    if (s.session !== undefined) {
      const set = this.bySession.get(s.session);
      set?.delete(s);
      if (set && set.size === 0) this.bySession.delete(s.session);
    }
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
    for (const s of [...this.streams]) {
      s.res.end();
      this.streams.delete(s);
    }
    this.bySession.clear();
    this.stop();
  }
}
