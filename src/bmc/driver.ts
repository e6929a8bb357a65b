// The one BMC contract every driver (Redfish, IPMI) meets. Rollouts and the power API speak only this.

export type BmcDriverName = 'redfish' | 'ipmi';

export interface BmcConfig {
  driver: BmcDriverName;
  /** Redfish: https://host[:port]; IPMI: host[:port] (UDP, default 623). */
  address: string;
  username: string;
  password: string;
  /** Redfish system id (the last segment of /redfish/v1/Systems/<id>); found from the collection when absent. */
  system?: string;
  verifyTls: boolean;
  /** sha256 of the BMC's certificate (hex, colons optional), pinned: accepted even when self-signed. */
  fingerprint?: string;
}

export type PowerState = 'on' | 'off' | 'unknown';
export type PowerAction = 'on' | 'off' | 'cycle';
export type FirmwareMode = 'uefi' | 'legacy';

export interface SystemFacts {
  model?: string;
  serial?: string;
  powerState: PowerState;
  /** Lower-case colon form (aa:bb:cc:dd:ee:ff), as the BMC reports them. */
  macs: string[];
}

export interface BmcDriver {
  powerState(): Promise<PowerState>;
  /** off = graceful then forced after a timeout; cycle = restart (forced if on) or on. Answers the state after. */
  power(action: PowerAction): Promise<PowerState>;
  bootNetworkOnce(mode: FirmwareMode): Promise<void>;
  facts(): Promise<SystemFacts>;
  /** Releases what the driver holds (a Redfish session). Safe to call twice. */
  close?(): Promise<void>;
}

export interface BmcErrorDetail {
  /** Which BMC: its driver and address (never the credentials). */
  bmc: string;
  /** What it answered, short: "HTTP 401 Unauthorized", "timeout after 5000 ms", ipmitool's stderr line. */
  answer: string;
  /** A transient failure (timeout, connection refused, 5xx, 429): worth trying again later. */
  retryable: boolean;
  status?: number;
}

export class BmcError extends Error {
  readonly bmc: string;
  readonly answer: string;
  readonly retryable: boolean;
  readonly status?: number;

  constructor(what: string, detail: BmcErrorDetail) {
    super(`BMC ${detail.bmc}: ${what}: ${detail.answer}`);
    this.name = 'BmcError';
    this.bmc = detail.bmc;
    this.answer = detail.answer;
    this.retryable = detail.retryable;
    if (detail.status !== undefined) this.status = detail.status;
  }
}

export interface DriverOptions {
  /** Per request (Redfish) or per ipmitool run. */
  timeoutMs?: number;
  /** Extra attempts after the first one, for retryable failures only. */
  retries?: number;
  /** First backoff delay; doubles each retry. */
  backoffMs?: number;
  /** How long `off` waits for a graceful shutdown before forcing it. */
  gracefulOffMs?: number;
}
