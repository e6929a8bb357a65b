// Throwaway runner: serves a directory with our TFTP server (benchmarks, the loss test in a namespace).
// node --import tsx test/bench/tftp-serve.ts --root DIR [--address 127.0.0.1] [--port 0] [--timeout 1] [--retries 5] [--log debug]
// Prints one JSON line {"port":N,"pid":N} when listening; SIGTERM closes it cleanly.
import { parseArgs } from 'node:util';
import { createLogger, silentLogger } from '../../src/log.ts';
import { startTftpServer } from '../../src/tftp/server.ts';
import { staticFileSource } from '../../src/tftp/static.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    address: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    timeout: { type: 'string', default: '1' },
    retries: { type: 'string', default: '5' },
    'max-transfers': { type: 'string', default: '200' },
    'max-per-client': { type: 'string', default: '200' },
    'busy-poll-us': { type: 'string', default: '200' },
    log: { type: 'string' },
  },
});
if (!values.root) {
  process.stderr.write(
    'usage: tftp-serve.ts --root DIR [--address A] [--port P] [--timeout S] [--retries N] [--log LEVEL]\n',
  );
  process.exit(2);
}
const log = values.log ? createLogger({ level: values.log, destination: process.stderr }) : silentLogger();
const srv = await startTftpServer({
  address: values.address!,
  port: Number(values.port),
  files: staticFileSource(values.root, log),
  log,
  retries: Number(values.retries),
  defaultTimeoutSec: Number(values.timeout),
  maxTransfers: Number(values['max-transfers']),
  maxPerClient: Number(values['max-per-client']),
  busyPollUs: Number(values['busy-poll-us']),
  onTransfer: (ev) => {
    if (ev.type === 'tftp.failed' && ev.error !== 'not found')
      process.stderr.write(`tftp-serve: ${JSON.stringify(ev)}\n`);
  },
});
process.stdout.write(JSON.stringify({ port: srv.port, pid: process.pid }) + '\n');
const stop = (): void => {
  void srv.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
