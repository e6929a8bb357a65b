// rackboot power MAC status|on|off|cycle and rackboot bmc facts MAC: on the server, as its operator (admin).
import type { Io } from '../cli.ts';
import { parseMac } from '../net/mac.ts';
import type { Core } from '../serve.ts';
import { BmcError } from './driver.ts';
import { NoBmcError, POWER_REQUESTS, type PowerRequest } from './power.ts';

export async function powerCommand(core: Core, io: Io, command: string, args: string[]): Promise<number> {
  const [first, second] = args;
  const [macText, action] = command === 'bmc' ? [second, first] : [first, second];
  const usage =
    command === 'bmc' ? 'usage: rackboot bmc facts MAC' : `usage: rackboot power MAC ${POWER_REQUESTS.join('|')}`;
  const mac = macText ? parseMac(macText) : undefined;
  if (!mac) {
    io.err(
      `rackboot ${command}: ${macText ? `"${macText}" is not a MAC address` : 'name the host by its MAC'}\n${usage}`,
    );
    return 2;
  }
  const valid = command === 'bmc' ? action === 'facts' : POWER_REQUESTS.includes(action as PowerRequest);
  if (!valid) {
    io.err(`rackboot ${command}: ${action ? `unknown action "${action}"` : 'name the action'}\n${usage}`);
    return 2;
  }
  if (!(await core.hosts.get(mac))) {
    io.err(`rackboot ${command}: no host with MAC ${mac}`);
    return 1;
  }
  try {
    if (command === 'bmc') {
      const f = await core.power.facts(mac, 'cli');
      io.out(
        [
          `model: ${f.model ?? '(not reported)'}`,
          `serial: ${f.serial ?? '(not reported)'}`,
          `power: ${f.powerState}`,
          `macs: ${f.macs.length ? f.macs.join(' ') : '(not reported)'}`,
          ...(f.macReported === false
            ? [`warning: ${mac} is not among the NICs this BMC reports: check the inventory`]
            : []),
        ].join('\n'),
      );
      return f.macReported === false ? 1 : 0;
    }
    const r = await core.power.run(mac, action as PowerRequest, 'cli');
    io.out(r.powerState);
    return 0;
  } catch (err) {
    if (err instanceof BmcError || err instanceof NoBmcError) {
      io.err(`rackboot ${command}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
