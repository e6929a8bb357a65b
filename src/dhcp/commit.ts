// Group commit of lease writes: the packets read in one event-loop turn record their writes in memory
// (src/dhcp/leases.ts), then ONE transaction commits them all, and only then do their replies leave, so an ACKed
// lease is durable before the client hears of it. A packet whose claim lost (another node has the address) and
// every packet of a batch whose commit failed get no reply: the client retries, and memory now knows better.
// While a commit runs, packets keep arriving and form the next batch (one commit in flight at a time, in order).
import type { Logger } from '../log.ts';
import type { LeaseStore } from './leases.ts';

export interface GroupCommit<T> {
  /** Runs one packet's handling (which records lease writes) and queues what it returns to be sent after the commit. */
  add(handle: () => readonly T[]): void;
  /** Resolves once everything queued so far has been committed and sent, or dropped. */
  idle(): Promise<void>;
}

interface Queued<T> {
  items: readonly T[];
  /** This packet's writes: [from, to) among the store's pending writes. */
  from: number;
  to: number;
}

export function createGroupCommit<T>(leases: LeaseStore, log: Logger, send: (item: T) => void): GroupCommit<T> {
  let queue: Queued<T>[] = [];
  let scheduled = false;
  let running: Promise<void> | undefined;

  const sendAll = (items: readonly T[]): void => {
    for (const item of items) {
      try {
        send(item);
      } catch (err) {
        log.error({ err }, 'dhcp: sending a reply failed');
      }
    }
  };

  const done = (batch: Queued<T>[], won: boolean[]): void => {
    let lost = 0;
    for (const q of batch) {
      let ok = true;
      for (let i = q.from; i < q.to; i++) if (!won[i]) ok = false;
      if (ok) sendAll(q.items);
      else if (q.items.length) lost++;
    }
    if (lost) log.info({ lost }, 'dhcp: another node holds the address a reply claimed; those replies are dropped');
  };

  const flush = (): void => {
    scheduled = false;
    if (running || !queue.length) return;
    const batch = queue;
    queue = [];
    // Nothing to write (offers without sharedLeases, NAKs, proxy answers): no transaction.
    if (leases.pendingWrites() === 0) {
      for (const q of batch) sendAll(q.items);
      return;
    }
    running = leases.commit().then(
      (won) => {
        running = undefined;
        done(batch, won);
        flush();
      },
      (err: unknown) => {
        running = undefined;
        const replies = batch.reduce((n, q) => n + q.items.length, 0);
        log.error({ err, replies }, 'dhcp: lease commit failed; replies of this batch are not sent');
        flush();
      },
    );
  };

  return {
    add(handle) {
      const from = leases.pendingWrites();
      const items = handle();
      const to = leases.pendingWrites();
      if (!items.length && from === to) return;
      queue.push({ items, from, to });
      if (!scheduled && !running) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    async idle() {
      while (running || scheduled || queue.length) {
        if (running) await running;
        else if (!scheduled) flush();
        else await new Promise<void>((r) => setImmediate(r));
      }
    },
  };
}
