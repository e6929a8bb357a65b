// The change feed's shapes: what changed about which host, whichever process or node changed it. The CLI writes
// the same database as `serve`, so an in-process subscription alone would leave open boards stale: triggers
// (migration 11) append a row to `changes` on every host and build write, and TableChangeFeed
// (src/store/repo/changes.ts) polls it on either store and watches pending builds' expiry.

export type ChangeKind =
  /** A host was added or its record changed. */
  | 'host'
  | 'host.deleted'
  /** A build started, finished, was cancelled or superseded. */
  | 'build'
  /** A pending build's token passed its expires_at. */
  | 'expired'
  /** A timeline event of this process (a boot step: DHCP, loader, kickstart, progress). */
  | 'event'
  /** Changes were missed (more than the table keeps arrived between two polls): look at every host again. */
  | 'resync';

export interface Change {
  kind: ChangeKind;
  /** Empty for 'resync'. */
  mac: string;
}

export interface ChangeFeed {
  /** Changes made by this process and by others alike; returns the unsubscribe. */
  subscribe(listener: (c: Change) => void): () => void;
  close(): void;
}

export interface ChangeFeedOptions {
  /** How often the table is read (ms); boards must hear of a change within a second. */
  pollMs?: number;
  now?: () => number;
  /** In-process events that reach listeners at once (the event repository), before any poll. */
  local?: { subscribe(listener: (e: { mac: string }) => void): () => void };
  onError?(err: unknown): void;
}
