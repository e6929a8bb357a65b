// IPMI 2.0 (RMCP+) driver: drives ipmitool -I lanplus, as Foreman's BMC proxy does. The password goes
// through the environment (-E, IPMI_PASSWORD), never argv, which every user can read in /proc.
import { spawn } from 'node:child_process';
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
import { pollUntil, withRetry } from './retry.ts';

const MAX_OUTPUT = 256 * 1024;

export interface IpmiOptions extends DriverOptions {
  settleMs?: number;
  pollMs?: number;
  /** The ipmitool binary (tests: a path). */
  ipmitool?: string;
  /**
   * RMCP+ cipher suite. 3 (HMAC-SHA1, AES-128) is the one every BMC has; naming it skips "Get Channel
   * Cipher Suites", which some BMCs (ipmi_sim) do not implement and which costs 10 s there.
   */
  cipherSuite?: number;
}

/** "10.0.0.5" or "10.0.0.5:623" or "[fd00::5]:623" -> host and UDP port. */
export function ipmiTarget(address: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(address);
  if (v6) return { host: v6[1], port: v6[2] ? Number(v6[2]) : 623 };
  const m = /^([^:]+)(?::(\d+))?$/.exec(address);
  if (!m) return { host: address, port: 623 };
  return { host: m[1], port: m[2] ? Number(m[2]) : 623 };
}

/** ipmitool's argv for one command (no password in it: -E takes IPMI_PASSWORD). Pure, for the unit test. */
export function ipmitoolArgs(cfg: BmcConfig, command: string[], opts: { cipherSuite?: number } = {}): string[] {
  const { host, port } = ipmiTarget(cfg.address);
  return [
    '-I', 'lanplus',
    '-C', String(opts.cipherSuite ?? 3),
    '-H', host,
    '-p', String(port),
    '-U', cfg.username,
    '-E',
    // One ipmitool attempt: 2 s per try, 1 retransmission; our own retry with backoff does the rest.
    '-N', '2',
    '-R', '1',
    '-v',
    ...command,
  ]; // prettier-ignore
}

/** What ipmitool's verbose stderr says went wrong, in words a tech can act on. */
export function explainIpmitool(stderr: string): { answer: string; retryable: boolean } {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^>\s*/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('Loading IANA'));
  if (/RAKP 2 HMAC is invalid|unauthorized name|RAKP 2 message indicates an error|invalid role/i.test(stderr)) {
    return {
      answer: `wrong username or password (${lines.find((l) => /RAKP|unauthorized/i.test(l)) ?? lines[0]})`,
      retryable: false,
    };
  }
  if (/Get Auth Capabilities error|No response|Unable to establish|timeout/i.test(stderr)) {
    return { answer: `no answer on UDP (${lines.at(-1) ?? 'no output'})`, retryable: true };
  }
  return { answer: lines.slice(-2).join(' | ').slice(0, 300) || 'failed without output', retryable: false };
}

export class IpmiDriver implements BmcDriver {
  private readonly cfg: BmcConfig;
  private readonly name: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly gracefulOffMs: number;
  private readonly settleMs: number;
  private readonly pollMs: number;
  private readonly ipmitool: string;
  private readonly cipherSuite: number;

  constructor(cfg: BmcConfig, opts: IpmiOptions = {}) {
    this.cfg = cfg;
    const { host, port } = ipmiTarget(cfg.address);
    this.name = `ipmi ${host}:${port}`;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.retries = opts.retries ?? 2;
    this.backoffMs = opts.backoffMs ?? 1000;
    this.gracefulOffMs = opts.gracefulOffMs ?? 60_000;
    this.settleMs = opts.settleMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 1000;
    this.ipmitool = opts.ipmitool ?? 'ipmitool';
    this.cipherSuite = opts.cipherSuite ?? 3;
  }

  private fail(what: string, answer: string, retryable: boolean): BmcError {
    return new BmcError(what, { bmc: this.name, answer, retryable });
  }

  private once(command: string[]): Promise<string> {
    const what = `ipmitool ${command.join(' ')}`;
    return new Promise((resolve, reject) => {
      const child = spawn(this.ipmitool, ipmitoolArgs(this.cfg, command, { cipherSuite: this.cipherSuite }), {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: this.cfg.password },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.timeoutMs);
      child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(0, MAX_OUTPUT)));
      child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-MAX_OUTPUT)));
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const hint = e.code === 'ENOENT' ? ' (apt-get install ipmitool)' : '';
        reject(this.fail(what, `${e.message}${hint}`, false));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (timedOut) return reject(this.fail(what, `no answer within ${this.timeoutMs} ms`, true));
        if (code === 0) return resolve(out);
        const { answer, retryable } = explainIpmitool(err + '\n' + out);
        reject(this.fail(what, answer, retryable));
      });
    });
  }

  private run(command: string[]): Promise<string> {
    return withRetry(this.retries, this.backoffMs, () => this.once(command));
  }

  async powerState(): Promise<PowerState> {
    const out = await this.run(['chassis', 'power', 'status']);
    const m = /Chassis Power is (on|off)/i.exec(out);
    return m ? (m[1].toLowerCase() as PowerState) : 'unknown';
  }

  private settle(want: PowerState, ms = this.settleMs): Promise<PowerState> {
    return pollUntil(
      ms,
      this.pollMs,
      () => this.powerState(),
      (s) => s === want,
    );
  }

  async power(action: PowerAction): Promise<PowerState> {
    const state = await this.powerState();
    if (action === 'on' || (action === 'cycle' && state !== 'on')) {
      if (state === 'on') return state;
      await this.run(['chassis', 'power', 'on']);
      return this.settle('on');
    }
    if (action === 'cycle') {
      await this.run(['chassis', 'power', 'cycle']);
      return this.settle('on');
    }
    if (state === 'off') return state;
    await this.run(['chassis', 'power', 'soft']); // ACPI power button: the OS shuts down cleanly
    if ((await this.settle('off', this.gracefulOffMs)) === 'off') return 'off';
    await this.run(['chassis', 'power', 'off']);
    return this.settle('off');
  }

  async bootNetworkOnce(mode: FirmwareMode): Promise<void> {
    const out = await this.run(['chassis', 'bootdev', 'pxe', ...(mode === 'uefi' ? ['options=efiboot'] : [])]);
    // Some BMCs refuse the boot flags and ipmitool still exits 0 ("Set Chassis Boot Parameter 5 failed").
    if (!/Set Boot Device to pxe/i.test(out)) {
      throw this.fail('chassis bootdev pxe', out.trim().split('\n').slice(-2).join(' | ').slice(0, 300), false);
    }
  }

  async facts(): Promise<SystemFacts> {
    const powerState = await this.powerState();
    let fru = '';
    try {
      fru = await this.once(['fru', 'print', '0']);
    } catch {
      /* many BMCs (and ipmi_sim) have no FRU 0: facts without model and serial */
    }
    const field = (name: RegExp) =>
      fru
        .split('\n')
        .map((l) => name.exec(l)?.[1]?.trim())
        .find((v) => !!v);
    const model = field(/^\s*Product Name\s*:\s*(.+)$/);
    const serial = field(/^\s*Product Serial\s*:\s*(.+)$/) ?? field(/^\s*Chassis Serial\s*:\s*(.+)$/);
    // IPMI reports the BMC's own LAN MAC, not the host's NICs: no MACs to check the inventory against.
    return {
      ...(model ? { model: model.slice(0, 200) } : {}),
      ...(serial ? { serial: serial.slice(0, 200) } : {}),
      powerState,
      macs: [],
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
