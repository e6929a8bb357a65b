// Power actions on a host's BMC, as the API, the CLI and the host page run them: who may, what the BMC
// did, and the trace of it (an event on the host's timeline for each action and each BMC error, an audit entry).
import type { Mac } from '../net/mac.ts';
import type { NewEvent } from '../store/events.ts';
import type { Role } from '../store/users.ts';
import { BmcError, type FirmwareMode, type PowerState, type SystemFacts } from './driver.ts';
import type { BmcService } from './index.ts';

export const POWER_REQUESTS = ['status', 'on', 'off', 'cycle'] as const;
export type PowerRequest = (typeof POWER_REQUESTS)[number];

/**
 * As Foreman splits it: a tech may look and may start or restart a machine to build it; turning a
 * machine off (a running hypervisor and every VM on it) is an admin's decision.
 */
export function mayRunPower(role: Role, action: PowerRequest): boolean {
  return role === 'admin' || action !== 'off';
}

export class NoBmcError extends Error {
  constructor(mac: string) {
    super(`host ${mac} has no BMC: set one (PUT /api/hosts/${mac} with "bmc": {...}, admin only)`);
  }
}

export interface PowerDeps {
  bmc: BmcService;
  events: { append(e: NewEvent): unknown };
  audit: { record(actor: string, action: string, target: string, diff?: unknown): Promise<void> };
}

export interface HostFacts extends SystemFacts {
  /** Whether the host's MAC is among the NICs the BMC reports (undefined: the BMC reports none, as IPMI). */
  macReported?: boolean;
}

export class PowerService {
  constructor(private readonly d: PowerDeps) {}

  private async withDriver<T>(mac: Mac, what: string, actor: string, run: (drv: BmcDriverOf) => Promise<T>) {
    const drv = await this.d.bmc.forHost(mac);
    if (!drv) throw new NoBmcError(mac);
    try {
      return await run(drv);
    } catch (err) {
      if (err instanceof BmcError) {
        this.d.events.append({
          mac,
          type: 'bmc.error',
          status: err.answer.slice(0, 200),
          detail: { action: what, bmc: err.bmc, answer: err.answer, retryable: err.retryable, by: actor },
        });
      }
      throw err;
    } finally {
      await drv.close?.();
    }
  }

  async run(mac: Mac, action: PowerRequest, actor: string): Promise<{ powerState: PowerState }> {
    const powerState = await this.withDriver(mac, `power ${action}`, actor, (drv) =>
      action === 'status' ? drv.powerState() : drv.power(action),
    );
    if (action !== 'status') {
      this.d.events.append({ mac, type: 'bmc.power', status: powerState, detail: { action, powerState, by: actor } });
      await this.d.audit.record(actor, 'host.power', mac, { action, powerState });
    }
    return { powerState };
  }

  async bootNetworkOnce(mac: Mac, mode: FirmwareMode, actor: string): Promise<void> {
    await this.withDriver(mac, `boot network once (${mode})`, actor, (drv) => drv.bootNetworkOnce(mode));
    this.d.events.append({ mac, type: 'bmc.boot', status: `network once (${mode})`, detail: { mode, by: actor } });
  }

  async facts(mac: Mac, actor: string): Promise<HostFacts> {
    const facts = await this.withDriver(mac, 'facts', actor, (drv) => drv.facts());
    await this.d.audit.record(actor, 'host.bmc.facts', mac, { powerState: facts.powerState, macs: facts.macs });
    return { ...facts, ...(facts.macs.length ? { macReported: facts.macs.includes(mac) } : {}) };
  }
}

type BmcDriverOf = NonNullable<Awaited<ReturnType<BmcService['forHost']>>>;
