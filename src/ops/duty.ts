// A once-per-database duty (the rollout runner and stuck detection) carried out by one node at a time: the node
// holding the role's lease (src/store/repo/leaders.ts) runs it and renews the lease every third of its life; the
// others try to take it as often. A holder that cannot renew (database away) stops the duty before its lease
// can run out, so two nodes never act at once; a node killed with -9 is replaced once its lease has run out.
import type { Logger } from '../log.ts';
import type { LeaderRepo } from '../store/repo/leaders.ts';

export interface Duty {
  held(): boolean;
  /** Stops the duty here and gives the lease up (another node takes over at its next try). */
  stop(): Promise<void>;
}

export interface DutyOptions {
  leaders: LeaderRepo;
  role: string;
  node: string;
  ttlMs: number;
  start: () => void;
  stop: () => Promise<void>;
  log: Logger;
}

export async function holdDuty(o: DutyOptions): Promise<Duty> {
  let held = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let since = 0;
  const step = async () => {
    const tried = Date.now();
    let ok: boolean;
    try {
      ok = await o.leaders.claim(o.role, o.node, o.ttlMs);
    } catch (err) {
      o.log.warn({ role: o.role, err: (err as Error).message }, 'duty: cannot reach the store to hold the role');
      // Still ours until the lease we last wrote runs out: stop before that, not at the first hiccup.
      ok = held && tried - since < (o.ttlMs * 2) / 3;
    }
    if (stopped) return;
    if (ok && !held) {
      held = true;
      o.log.info({ role: o.role, node: o.node }, `duty: this node now carries out ${o.role}`);
      o.start();
    } else if (!ok && held) {
      held = false;
      o.log.warn({ role: o.role, node: o.node }, `duty: ${o.role} passed to another node`);
      await o.stop();
    }
    if (ok) since = tried;
  };
  const loop = () => {
    timer = setTimeout(() => {
      void step().finally(() => {
        if (!stopped) loop();
      });
    }, o.ttlMs / 3);
    timer.unref();
  };
  await step();
  loop();
  return {
    held: () => held,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (held) {
        held = false;
        await o.stop();
        await o.leaders.release(o.role, o.node).catch(() => {});
      }
    },
  };
}
