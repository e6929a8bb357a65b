// The installer's log on the host page, live (Server-Sent Events). Each stream follows one build at one
// severity: at open it sends the newest lines, then every `intervalMs` the lines that came since, in one
// read (id > last sent: the syslog_build index). Streams are bounded in all and per session, like the board's.
import type { Response } from 'express';
import type { SyslogLine, SyslogSearch } from '../ops/syslog-store.ts';
import { SEVERITY_NAMES } from '../ops/syslog-parse.ts';
import { endStream, type Alive } from './live.ts';

export interface LogStreamDeps {
  search(s: SyslogSearch): SyslogLine[] | Promise<SyslogLine[]>;
  intervalMs?: number;
  heartbeatMs?: number;
  /** Streams in all; past it a new one is refused with 503 (default 64). */
  maxStreams?: number;
  /** Per session; opening one more ends that session's oldest (default 4). */
  maxPerSession?: number;
  onError?(err: unknown): void;
}

export interface LogStreamRequest {
  buildId: number;
  /** That severity and worse (0 emerg .. 7 debug); undefined: all. */
  maxSeverity?: number;
  /** Masks the host's secrets in a line (a tech must not read a password the installer echoed). */
  mask(text: string): string;
  /** Whether the session still holds; checked at each heartbeat. */
  alive: Alive;
  session: string;
}

interface Stream extends LogStreamRequest {
  res: Response;
  lastId: number;
  /** Its backlog was sent: polls follow it from there (before, a poll would start at the oldest line). */
  ready: boolean;
}

/** Lines sent at open, and at most per poll (a flood shows its newest lines and says how many it skipped). */
export const LOG_BACKLOG = 200;
const PER_POLL = 500;

/** What the page gets for one line: severity by name, text masked. */
export function logLineEvent(l: SyslogLine, mask: (s: string) => string) {
  return {
    id: l.id,
    at: l.at,
    severity: SEVERITY_NAMES[l.severity] ?? String(l.severity),
    level: l.severity,
    app: l.app ? mask(l.app) : '',
    text: mask(l.text),
  };
}

/** `severity` from a query: 0-7 or a name (that level and worse); undefined for all; null when it is neither. */
export function parseSeverity(v: unknown): number | undefined | null {
  if (v === undefined || v === '' || v === 'all') return undefined;
  if (typeof v !== 'string') return null;
  if (/^[0-7]$/.test(v)) return Number(v);
  const n = (SEVERITY_NAMES as readonly string[]).indexOf(v);
  return n < 0 ? null : n;
}

export class InstallerLogStreams {
  private readonly streams = new Set<Stream>();
  private timer?: NodeJS.Timeout;
  private beat?: NodeJS.Timeout;
  /** A poll under way: the next tick skips rather than read the same lines twice. */
  private polling = false;

  constructor(private readonly d: LogStreamDeps) {}

  get size(): number {
    return this.streams.size;
  }

  open(res: Response, req: LogStreamRequest): 'opened' | 'refused' {
    const mine = [...this.streams].filter((s) => s.session === req.session);
    const perSession = this.d.maxPerSession ?? 4;
    for (const old of mine.slice(0, Math.max(0, mine.length - perSession + 1))) this.end(old, 'replaced');
    if (this.streams.size >= (this.d.maxStreams ?? 64)) {
      res
        .status(503)
        .set({ 'Retry-After': '30', 'Cache-Control': 'no-store' })
        .type('text/plain')
        .send('installer log: too many live views are open; reload the page later\n');
      return 'refused';
    }
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    const heartbeatMs = this.d.heartbeatMs ?? 5000;
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ heartbeatMs })}\n\n`);
    const s: Stream = { ...req, res, lastId: 0, ready: false };
    this.streams.add(s);
    res.on('close', () => this.drop(s));
    void this.backlog(s).catch((e) => this.d.onError?.(e));
    if (!this.timer) {
      this.timer = setInterval(() => void this.poll().catch((e) => this.d.onError?.(e)), this.d.intervalMs ?? 500);
      this.timer.unref();
      this.beat = setInterval(() => void this.heartbeat().catch((e) => this.d.onError?.(e)), heartbeatMs);
      this.beat.unref();
    }
    return 'opened';
  }

  /** The newest lines at open; a read that fails leaves the stream to its polls from the start of the log. */
  private async backlog(s: Stream): Promise<void> {
    try {
      this.send(s, await this.d.search({ buildId: s.buildId, maxSeverity: s.maxSeverity, limit: LOG_BACKLOG }));
    } catch (err) {
      this.d.onError?.(err);
    }
    s.ready = true;
  }

  /** One read per stream of what came since its last line (the timer calls it; tests may too). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await Promise.all(
        [...this.streams]
          .filter((s) => s.ready)
          .map(async (s) => {
            try {
              const lines = await this.d.search({
                buildId: s.buildId,
                maxSeverity: s.maxSeverity,
                afterId: s.lastId,
                limit: PER_POLL,
              });
              this.send(s, lines);
            } catch (err) {
              this.d.onError?.(err);
            }
          }),
      );
    } finally {
      this.polling = false;
    }
  }

  private send(s: Stream, lines: SyslogLine[]): void {
    // A stream closed while its read was out gets nothing more.
    if (!lines.length || !this.streams.has(s)) return;
    s.lastId = lines[lines.length - 1]!.id;
    s.res.write(`event: lines\ndata: ${JSON.stringify(lines.map((l) => logLineEvent(l, s.mask)))}\n\n`);
  }

  private async heartbeat(): Promise<void> {
    await Promise.all(
      [...this.streams].map(async (s) => {
        let alive = true;
        try {
          alive = await s.alive();
        } catch (err) {
          this.d.onError?.(err); // the store did not answer: ask again at the next beat
        }
        if (!this.streams.has(s)) return;
        if (!alive) this.end(s, 'logout');
        else s.res.write('event: ping\ndata: {}\n\n');
      }),
    );
  }

  endSession(session: string): void {
    for (const s of [...this.streams]) if (s.session === session) this.end(s, 'logout');
  }

  private end(s: Stream, why: 'logout' | 'replaced'): void {
    endStream(s.res, why);
    this.drop(s);
  }

  private drop(s: Stream): void {
    if (!this.streams.delete(s) || this.streams.size) return;
    clearInterval(this.timer);
    clearInterval(this.beat);
    this.timer = this.beat = undefined;
  }

  close(): void {
    for (const s of [...this.streams]) {
      s.res.end();
      this.drop(s);
    }
  }
}
