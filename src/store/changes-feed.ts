// What changed in the store, for the in-memory view (src/store/view.ts) and live pages. A write publishes here
// after it committed. On PostgreSQL the change also goes to every other node (NOTIFY on one channel; each node
// ignores its own); on SQLite other processes' writes come in through deliver() (fed by src/store/changes.ts,
// the change feed the live board watches).
/** 'resync': changes may have been missed (a lost LISTEN connection): whoever keeps a copy reloads it. */
export type ChangeKind = 'host' | 'build' | 'lease' | 'image' | 'settings' | 'user' | 'resync';

export interface StoreChange {
  kind: ChangeKind;
  mac?: string;
}

/** A listener may return a Promise (the view re-reading a row): publish() waits for it, so a write is seen on return. */
export type ChangeListener = (c: StoreChange) => void | Promise<void>;

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  /** Set by the PostgreSQL store: sends a change to the other nodes. */
  remote: ((c: StoreChange) => Promise<void>) | undefined;

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** A change made here: local listeners (awaited), then the other nodes through `remote`. */
  async publish(c: StoreChange): Promise<void> {
    await this.deliver(c);
    if (this.remote) await this.remote(c);
  }
  /** A change made elsewhere (another node or process). A listener that fails does not stop the others. */
  async deliver(c: StoreChange): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const l of this.listeners) {
      try {
        const r = l(c);
        if (r) pending.push(r.catch(() => {}));
      } catch {
        /* a broken listener must not break the writer */
      }
    }
    await Promise.all(pending);
  }
}

const KINDS = new Set<string>(['host', 'build', 'lease', 'image', 'settings', 'user']);

/** A NOTIFY payload back to a change; undefined for anything else (payloads are ours, but a peer may be newer). */
export function parseChange(payload: string): (StoreChange & { node: string }) | undefined {
  try {
    const v = JSON.parse(payload) as { kind?: unknown; mac?: unknown; node?: unknown };
    if (typeof v.kind !== 'string' || !KINDS.has(v.kind) || typeof v.node !== 'string') return undefined;
    if (v.mac !== undefined && typeof v.mac !== 'string') return undefined;
    return { kind: v.kind as ChangeKind, node: v.node, ...(v.mac ? { mac: v.mac } : {}) };
  } catch {
    return undefined;
  }
}
