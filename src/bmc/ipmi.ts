// Placeholder until the driver lands (same branch, next commits).
import type {
  BmcConfig,
  BmcDriver,
  DriverOptions,
  FirmwareMode,
  PowerAction,
  PowerState,
  SystemFacts,
} from './driver.ts';
import { BmcError } from './driver.ts';

export class IpmiDriver implements BmcDriver {
  constructor(
    private readonly cfg: BmcConfig,
    private readonly opts: DriverOptions,
  ) {}
  private todo(): never {
    throw new BmcError('not implemented', {
      bmc: `ipmi ${this.cfg.address}`,
      answer: 'driver not built yet',
      retryable: false,
    });
  }
  powerState(): Promise<PowerState> {
    return Promise.reject(this.todo());
  }
  power(_action: PowerAction): Promise<PowerState> {
    return Promise.reject(this.todo());
  }
  bootNetworkOnce(_mode: FirmwareMode): Promise<void> {
    return Promise.reject(this.todo());
  }
  facts(): Promise<SystemFacts> {
    return Promise.reject(this.todo());
  }
}
