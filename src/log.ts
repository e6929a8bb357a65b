// Logging: pino JSON, readable lines on a TTY. Modules take a Logger in their deps, never import one.
import { pino } from 'pino';

export type Logger = Pick<pino.Logger, 'debug' | 'info' | 'warn' | 'error' | 'child' | 'level'>;

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino({ level: opts.level ?? 'info', base: undefined, redact: { paths: ['token', '*.token', 'password', '*.password', 'activationKey', '*.activationKey', 'rootpw', '*.rootpw'], censor: '[redacted]' } },
    (opts.destination ?? process.stdout) as pino.DestinationStream);
}

/** A logger that drops everything: for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Only a short prefix of a token ever reaches a log line. */
export function tokenHint(token: string): string {
  return token.slice(0, 6) + '…';
}
