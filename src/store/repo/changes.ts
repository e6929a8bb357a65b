// LOCAL STUB (conv-cli, not committed): stands in for the lead's TableChangeFeed so tests can run.
import type { Sql } from '../sql.ts';
import type { Change, ChangeFeed, ChangeKind } from '../changes.ts';

export class TableChangeFeed implements ChangeFeed {
  private readonly listeners = new Set<(c: Change) => void>();
  private cursor = 0;
  private timer?: NodeJS.Timeout;
  private unsubscribeLocal?: () => void;
  private polling = false;
  constructor(
    private readonly sql: Sql,
    private readonly opts: {
      local?: { subscribe(l: (e: { mac: string }) => void): () => void };
      onError?(err: unknown): void;
      pollMs?: number;
    } = {},
  ) {}
  subscribe(listener: (c: Change) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) void this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }
  private async start(): Promise<void> {
    const r = await this.sql.get<{ id: number | null }>('SELECT MAX(id) AS id FROM changes').catch(() => undefined);
    this.cursor = Number(r?.id ?? 0);
    this.unsubscribeLocal = this.opts.local?.subscribe((e) => this.emit({ kind: 'event', mac: e.mac }));
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs ?? 250);
    this.timer.unref();
  }
  private stop(): void {
    clearInterval(this.timer);
    this.unsubscribeLocal?.();
  }
  close(): void {
    this.listeners.clear();
    this.stop();
  }
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const rows = await this.sql.all<{ id: number; kind: string; mac: string }>(
        'SELECT id, kind, mac FROM changes WHERE id > ? ORDER BY id LIMIT 1000',
        [this.cursor],
      );
      for (const r of rows) {
        this.cursor = Number(r.id);
        this.emit({ kind: r.kind as ChangeKind, mac: r.mac });
      }
    } catch (err) {
      this.opts.onError?.(err);
    } finally {
      this.polling = false;
    }
  }
  private emit(c: Change): void {
    for (const l of this.listeners) l(c);
  }
}
