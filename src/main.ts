// Composition root: the only place that reads argv and the environment and exits.
import { runCli } from './cli.ts';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    process.stderr.write('password (not echoed is not guaranteed on this terminal; prefer a pipe): ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const code = await runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
  readStdin,
  env: process.env,
  progress: {
    isTTY: Boolean(process.stderr.isTTY),
    write: (s) => {
      process.stderr.write(s);
    },
  },
});
process.exitCode = code;
if (process.argv[2] !== 'serve') process.exit(code);
