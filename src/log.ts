// Logging: pino JSON, readable lines on a TTY. Modules take a Logger in their deps, never import one.
// Secrets never reach a line: known fields are redacted by name, and a build token inside a URL path
// (/ks/<token>, /built/<token>, ...) is cut to its first characters wherever it appears in a field.
import { pino } from 'pino';

export type Logger = Pick<pino.Logger, 'debug' | 'info' | 'warn' | 'error' | 'child' | 'level'>;

export const REDACT_PATHS = [
  'token',
  '*.token',
  'password',
  '*.password',
  'activationKey',
  '*.activationKey',
  'rootpw',
  '*.rootpw',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'cookie',
  '*.cookie',
  'headers.cookie',
  '*.headers.cookie',
  'secret',
  '*.secret',
  'adminToken',
  '*.adminToken',
  'rootPassword',
  '*.rootPassword',
];

const TOKEN_IN_PATH = /(\/(?:ks|built|failed|events)\/)([A-Za-z0-9_-]{6})[A-Za-z0-9_-]{10,}/g;

/** Replaces build tokens inside URL paths with their first characters, in any string field (one level deep and in err). */
export function scrubTokens(obj: Record<string, unknown>): Record<string, unknown> {
  let out = obj;
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string' && TOKEN_IN_PATH.test(v)) {
      TOKEN_IN_PATH.lastIndex = 0;
      if (out === obj) out = { ...obj };
      out[k] = v.replace(TOKEN_IN_PATH, '$1$2…');
    }
    TOKEN_IN_PATH.lastIndex = 0;
  }
  return out;
}

export interface LoggerOptions {
  level?: string;
  destination?: NodeJS.WritableStream;
  /** json (default without a TTY), pretty (one readable line per entry), auto: pretty when the destination is a TTY. */
  format?: 'json' | 'pretty' | 'auto';
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const dest = opts.destination ?? process.stdout;
  const format = opts.format ?? 'json';
  const pretty = format === 'pretty' || (format === 'auto' && Boolean((dest as { isTTY?: boolean }).isTTY));
  return pino(
    {
      level: opts.level ?? 'info',
      base: undefined,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { log: (o) => scrubTokens(o) },
    },
    (pretty ? prettyStream(dest, Boolean((dest as { isTTY?: boolean }).isTTY)) : dest) as pino.DestinationStream,
  );
}

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};

/** One pino JSON line as people read it: "12:00:01.234 INFO  build started  mac=52:54:00:.. buildId=7". */
export function formatPretty(line: string, color = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : line + '\n';
  }
  const { level, time, msg, mac, buildId, ...rest } = o;
  const [name, c] = LEVELS[level as number] ?? [String(level), ''];
  const t = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const lvl = color ? `${c}${name}\x1b[0m` : name;
  // The host first: a tech scanning the log looks for a MAC and a build.
  const head = [
    mac !== undefined ? `mac=${String(mac)}` : '',
    buildId !== undefined ? `buildId=${String(buildId)}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/[\s"]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${lvl} ${msg ?? ''}${head ? `  ${head}` : ''}${fields ? `  ${fields}` : ''}\n`;
}

function prettyStream(out: NodeJS.WritableStream, color: boolean): { write(s: string): boolean } {
  return { write: (s: string) => out.write(formatPretty(s, color)) };
}

/** A logger that drops everything: for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Only a short prefix of a token ever reaches a log line. */
export function tokenHint(token: string): string {
  return token.slice(0, 6) + '…';
}
