// BMC entry points: one driver per config, and the per-host service the power API and rollouts use.
import type { BmcConfig, BmcDriver, DriverOptions } from './driver.ts';
import { IpmiDriver } from './ipmi.ts';
import { RedfishDriver } from './redfish.ts';

export * from './driver.ts';

export function bmcDriver(cfg: BmcConfig, opts: DriverOptions = {}): BmcDriver {
  return cfg.driver === 'redfish' ? new RedfishDriver(cfg, opts) : new IpmiDriver(cfg, opts);
}

/** Where a host's BMC config (with the password decrypted) comes from: src/store/bmc.ts. */
export interface BmcConfigSource {
  bmcConfig(mac: string): Promise<BmcConfig | undefined>;
}

export interface BmcServiceDeps {
  store: BmcConfigSource;
  options?: DriverOptions;
  /** Another driver factory (tests of callers); defaults to bmcDriver. */
  makeDriver?: (cfg: BmcConfig, opts: DriverOptions) => BmcDriver;
}

/**
 * A fresh driver per call: nothing is shared between hosts, so one slow BMC never holds up another
 * (no global lock, no shared queue). Callers close() the driver when done.
 */
export class BmcService {
  private readonly deps: BmcServiceDeps;

  constructor(deps: BmcServiceDeps) {
    this.deps = deps;
  }

  async forHost(mac: string): Promise<BmcDriver | undefined> {
    const cfg = await this.deps.store.bmcConfig(mac);
    if (!cfg) return undefined;
    return (this.deps.makeDriver ?? bmcDriver)(cfg, this.deps.options ?? {});
  }
}
