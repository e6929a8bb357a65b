// The host page's power block: the last power state a BMC answered and the BMC errors since, read from the
// host's timeline (src/bmc writes bmc.power / bmc.error, the rollout power.on / power.cycle). No BMC call is
// made to render a page: a slow BMC must never hold up the page. Pure.
import type { HostEvent } from '../store/events.ts';

export interface PowerView {
  /** The last state a BMC reported ("On", "Off"), or what the last action did. */
  state?: string;
  at?: number;
  action?: string;
  /** BMC errors after the last success, newest last (at most 3): which BMC, what it answered. */
  errors: { at: number; action: string; bmc: string; answer: string }[];
}

const text = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

/** From the timeline (oldest first); undefined when the host never had a BMC action. */
export function powerView(
  events: readonly Pick<HostEvent, 'type' | 'at' | 'status' | 'detail'>[],
): PowerView | undefined {
  let view: PowerView | undefined;
  for (const e of events) {
    if (e.type === 'bmc.power' || e.type === 'power.on' || e.type === 'power.cycle') {
      view = {
        state: text(e.detail?.powerState) || (e.type === 'bmc.power' ? text(e.status) : 'On'),
        at: e.at,
        action: text(e.detail?.action) || e.type.replace(/^power\./, ''),
        errors: [],
      };
    } else if (e.type === 'bmc.error') {
      view ??= { errors: [] };
      view.errors.push({
        at: e.at,
        action: text(e.detail?.action) || text(e.status),
        bmc: text(e.detail?.bmc),
        answer: text(e.detail?.answer) || text(e.detail?.reason) || text(e.status),
      });
      if (view.errors.length > 3) view.errors.shift();
    }
  }
  return view;
}
