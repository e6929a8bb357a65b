// The remote CLI: `rackboot --server URL ...` runs host, build, rack, power, logs and discovered commands against
// a rackboot API from an ops laptop, with a bearer token (RACKBOOT_TOKEN or --token-file), never the SQLite file.
// Exit codes: 0 done, 1 the server refused (its message is printed), 2 a usage error, 3 the server cannot be
// reached or is not rackboot, 4 the token was refused.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HOST_FIELDS } from '../hosts/input.ts';

export interface RemoteIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Polling pause of --follow (tests shorten it); stops when it resolves false. */
  sleep?: (ms: number) => Promise<boolean>;
}

export const REMOTE_COMMANDS = ['hosts', 'rack', 'rollout', 'power', 'discovered'] as const;

const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, unauthorized: 4 } as const;
const REQUEST_TIMEOUT_MS = 30_000;
/** --follow polls this often. */
const FOLLOW_EVERY_MS = 1000;
/** A list walks at most this many pages (1,000 items each): a loop bound, not a limit anyone meets. */
const MAX_PAGES = 1000;

export const REMOTE_USAGE = `usage: rackboot --server URL <command> [--json]   (or RACKBOOT_SERVER=URL)
token: RACKBOOT_TOKEN, or --token-file FILE (a user's token: rackboot users token NAME; or the admin token)

  hosts list [--rack R] [--state S] [--profile P] [--site S]
  hosts show MAC
  hosts add --mac MAC --hostname NAME --profile P [--ip A --netmask M --gateway G --nameservers A,B
            --domain D --rack R --position U --uuid U --param key=value ...]
  hosts edit MAC [the same fields] [--param key=value ...] [--unset-param key ...]
  hosts rm MAC
  hosts build MAC | hosts cancel MAC
  hosts import FILE [--dry-run]
  hosts timeline MAC
  hosts logs MAC [--follow] [--build ID] [--severity err] [--q TEXT]
  rack list | rack show R | rack import FILE [--dry-run]
  rack build R [--power] [--wave N] [--interval SECONDS] [--confirm] | rack cancel R
  rollout list | rollout show ID | rollout cancel ID
  power MAC status|on|off|cycle
  discovered list

exit codes: 0 done, 1 refused by the server, 2 usage, 3 server unreachable (or not rackboot), 4 token refused`;

class RemoteError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** The host fields that are plain string flags: params come as repeated --param k=v; site is only a list filter. */
const HOST_FLAGS = HOST_FIELDS.filter((f) => f !== 'params' && f !== 'site');

/** The server URL, checked: http(s) only, no credentials in it (they would end up in shell history and logs). */
export function parseServerUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RemoteError(
      EXIT.usage,
      `--server: "${raw.slice(0, 200)}" is not a URL (e.g. https://rackboot.example:8443)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RemoteError(EXIT.usage, `--server: ${url.protocol} is not http: or https:`);
  if (url.username || url.password)
    throw new RemoteError(
      EXIT.usage,
      '--server: put no user or password in the URL; the token comes from RACKBOOT_TOKEN or --token-file',
    );
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return url;
}

function readToken(env: NodeJS.ProcessEnv, tokenFile: string | undefined): string {
  let token: string;
  if (tokenFile) {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new RemoteError(EXIT.usage, `--token-file: cannot read ${tokenFile}: ${(err as Error).message}`);
    }
    if (!token) throw new RemoteError(EXIT.usage, `--token-file: ${tokenFile} is empty`);
  } else {
    token = (env.RACKBOOT_TOKEN ?? '').trim();
    if (!token)
      throw new RemoteError(
        EXIT.usage,
        'no API token: set RACKBOOT_TOKEN or pass --token-file FILE (make one with rackboot users token NAME on the server)',
      );
  }
  // A header cannot carry these; refuse here rather than send a mangled token.
  if (!/^[\x21-\x7e]{1,512}$/.test(token))
    throw new RemoteError(
      EXIT.usage,
      'the API token has spaces, control or non-ASCII characters: it is not a rackboot token',
    );
  return token;
}

interface ApiAnswer {
  status: number;
  body: unknown;
  text: string;
}

class Client {
  constructor(
    readonly base: URL,
    private readonly token: string,
  ) {}

  async call(
    method: string,
    path: string,
    body?: { json?: unknown; text?: string; contentType?: string },
  ): Promise<ApiAnswer> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
    let payload: string | undefined;
    if (body?.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body?.text !== undefined) {
      headers['Content-Type'] = body.contentType ?? 'text/plain';
      payload = body.text;
    }
    let res: globalThis.Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why =
        e.name === 'TimeoutError'
          ? `no answer in ${REQUEST_TIMEOUT_MS / 1000} s`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new RemoteError(
        EXIT.unreachable,
        `cannot reach ${this.base.origin}: ${why}. Check --server (or RACKBOOT_SERVER) and that rackboot serve runs there.`,
      );
    }
    if (res.status >= 300 && res.status < 400)
      throw new RemoteError(
        EXIT.unreachable,
        `${this.base.origin} redirects to ${res.headers.get('location') ?? '?'} (HTTP ${res.status}): use that URL as --server`,
      );
    const text = await res.text();
    const isJson = /^application\/json\b/.test(res.headers.get('content-type') ?? '');
    let parsed: unknown;
    if (isJson) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    const apiError = (parsed as { error?: { code?: unknown; message?: unknown; field?: unknown } } | undefined)?.error;
    if (res.status >= 400) {
      if (!apiError || typeof apiError.message !== 'string')
        throw new RemoteError(
          EXIT.unreachable,
          `${url.origin}${url.pathname} answered HTTP ${res.status} without a rackboot API error: is ${this.base.href} a rackboot server?`,
        );
      const code = typeof apiError.code === 'string' ? apiError.code : String(res.status);
      throw new RemoteError(
        res.status === 401 ? EXIT.unauthorized : EXIT.refused,
        res.status === 401
          ? `the server refused the token (HTTP 401): check RACKBOOT_TOKEN or --token-file`
          : `${apiError.message} (HTTP ${res.status} ${code})`,
      );
    }
    if (res.status !== 204 && !isJson)
      throw new RemoteError(
        EXIT.unreachable,
        `${url.origin}${url.pathname} answered ${res.headers.get('content-type') ?? 'no content type'}, not JSON: is ${this.base.href} a rackboot server?`,
      );
    return { status: res.status, body: parsed, text };
  }

  async get<T>(path: string): Promise<T> {
    return (await this.call('GET', path)).body as T;
  }

  /** Every item of a paged list, page after page. */
  async all<T>(path: string, query: URLSearchParams): Promise<T[]> {
    const items: T[] = [];
    query.set('limit', '1000');
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await this.get<{ items: T[]; nextCursor: string | null }>(`${path}?${query.toString()}`);
      items.push(...page.items);
      if (!page.nextCursor) break;
      query.set('cursor', page.nextCursor);
    }
    return items;
  }
}

/** Columns padded to their widest cell; "-" for nothing. */
export function table(rows: readonly (readonly unknown[])[], header: readonly string[]): string {
  const cells = [header, ...rows].map((r) =>
    r.map((c) => (c === undefined || c === null || c === '' ? '-' : String(c))),
  );
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

interface HostItem {
  mac: string;
  hostname: string;
  profile: string;
  ip?: string;
  rack?: string;
  position?: string;
  state: string;
  updatedAt?: string;
}
interface EventItem {
  id: number;
  at: string;
  type: string;
  clientIp?: string;
  status?: string;
  bytes?: number;
  detail?: Record<string, unknown>;
}
interface LogPage {
  buildId: number;
  lines: { id: number; at: string; severity: string; app?: string; text: string }[];
  nextCursor: string;
}

const enc = encodeURIComponent;

function macArg(sub: string, mac: string | undefined): string {
  if (!mac || !/^[0-9A-Fa-f:.-]{12,17}$/.test(mac))
    throw new RemoteError(EXIT.usage, `rackboot ${sub} MAC: "${(mac ?? '').slice(0, 64)}" is not a MAC address`);
  return mac;
}

/** --param key=value, as the server takes it: a list is written as one ("ntpServers=[10.0.0.1, 10.0.0.2]"). */
function paramsOf(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list ?? []) {
    const i = p.indexOf('=');
    if (i < 1) throw new RemoteError(EXIT.usage, `--param ${p}: write key=value (e.g. --param timezone.name=UTC)`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** Runs one remote command; argv is everything after the global flags (command first). */
export async function runRemote(
  argv: string[],
  io: RemoteIo,
  opts: { server: string; tokenFile?: string; json: boolean },
): Promise<number> {
  try {
    const base = parseServerUrl(opts.server);
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          ...Object.fromEntries(HOST_FLAGS.map((f) => [f, { type: 'string' as const }])),
          param: { type: 'string', multiple: true },
          'unset-param': { type: 'string', multiple: true },
          state: { type: 'string' },
          site: { type: 'string' },
          follow: { type: 'boolean', short: 'f' },
          build: { type: 'string' },
          severity: { type: 'string' },
          q: { type: 'string' },
          'dry-run': { type: 'boolean' },
          power: { type: 'boolean' },
          wave: { type: 'string' },
          interval: { type: 'string' },
          confirm: { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (err) {
      throw new RemoteError(EXIT.usage, `${(err as Error).message}\n${REMOTE_USAGE}`);
    }
    if (parsed.values.help || !parsed.positionals.length) {
      io.out(REMOTE_USAGE);
      return parsed.values.help ? EXIT.ok : EXIT.usage;
    }
    const client = new Client(base, readToken(io.env, opts.tokenFile));
    return await dispatch(client, io, parsed.positionals, parsed.values, opts.json);
  } catch (err) {
    if (!(err instanceof RemoteError)) throw err;
    io.err(`rackboot: ${err.message}`);
    return err.exitCode;
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

async function dispatch(c: Client, io: RemoteIo, pos: string[], v: Values, json: boolean): Promise<number> {
  const [command, sub, arg, arg2] = pos;
  const print = (value: unknown, human: () => string) => io.out(json ? JSON.stringify(value, null, 2) : human());
  const hostTable = (hosts: HostItem[]) =>
    table(
      hosts.map((h) => [h.mac, h.hostname, h.profile, h.ip, h.rack, h.position, h.state]),
      ['MAC', 'HOSTNAME', 'PROFILE', 'IP', 'RACK', 'POS', 'STATE'],
    );
  const listHosts = (filters: Record<string, string | undefined>) => {
    const q = new URLSearchParams();
    for (const [k, x] of Object.entries(filters)) if (x !== undefined) q.set(k, x);
    return c.all<HostItem>('api/hosts', q);
  };
  const importCsv = async (file: string | undefined) => {
    if (!file) throw new RemoteError(EXIT.usage, `rackboot ${command} import FILE [--dry-run]`);
    let csv: string;
    try {
      csv = readFileSync(file, 'utf8');
    } catch (err) {
      throw new RemoteError(EXIT.usage, `${command} import: ${(err as Error).message}`);
    }
    const r = await c.call('POST', `api/hosts/import${v['dry-run'] ? '?dryRun=1' : ''}`, {
      text: csv,
      contentType: 'text/csv',
    });
    const body = r.body as { dryRun: boolean; imported: number; hosts: unknown[] };
    print(body, () =>
      body.dryRun ? `dry run: ${body.hosts.length} host(s) would be imported` : `imported ${body.imported} host(s)`,
    );
    return EXIT.ok;
  };

  if (command === 'hosts') {
    switch (sub) {
      case 'list': {
        const hosts = await listHosts({
          rack: v.rack as string,
          state: v.state as string,
          profile: v.profile as string,
          site: v.site as string,
        });
        print(hosts, () => hostTable(hosts));
        return EXIT.ok;
      }
      case 'show': {
        const h = await c.get<HostItem & Record<string, unknown>>(`api/hosts/${enc(macArg('hosts show', arg))}`);
        print(h, () => {
          const { events: _e, build, params, ...rest } = h as Record<string, unknown>;
          const lines = Object.entries(rest)
            .filter(([, x]) => x !== undefined && x !== null && !(Array.isArray(x) && !x.length))
            .map(([k, x]) => `${k}: ${Array.isArray(x) ? x.join(', ') : String(x)}`);
          for (const [k, x] of Object.entries((params ?? {}) as Record<string, string>)) lines.push(`param ${k}: ${x}`);
          const b = build as { id: number; status: string; createdAt: string; finishedAt?: string } | undefined;
          if (b)
            lines.push(
              `build: ${b.id} ${b.status} (started ${b.createdAt}${b.finishedAt ? `, finished ${b.finishedAt}` : ''})`,
            );
          return lines.join('\n');
        });
        return EXIT.ok;
      }
      case 'add': {
        const body: Record<string, unknown> = {};
        for (const f of HOST_FLAGS) if (typeof v[f] === 'string') body[f] = v[f];
        if (typeof body.nameservers === 'string') body.nameservers = body.nameservers.split(',').filter(Boolean);
        const params = paramsOf(v.param as string[] | undefined);
        if (Object.keys(params).length) body.params = params;
        const r = await c.call('POST', 'api/hosts', { json: body });
        const h = r.body as HostItem;
        print(h, () => `added ${h.hostname} (${h.mac}), profile ${h.profile}`);
        return EXIT.ok;
      }
      case 'edit': {
        const mac = macArg('hosts edit', arg);
        const body: Record<string, unknown> = {};
        for (const f of HOST_FLAGS) if (f !== 'mac' && typeof v[f] === 'string') body[f] = v[f] === '' ? null : v[f];
        if (typeof body.nameservers === 'string') body.nameservers = body.nameservers.split(',').filter(Boolean);
        const set = paramsOf(v.param as string[] | undefined);
        const unset = (v['unset-param'] as string[] | undefined) ?? [];
        if (Object.keys(set).length || unset.length) {
          // PUT replaces params whole: start from the host's own.
          const now = await c.get<{ params: Record<string, string> }>(`api/hosts/${enc(mac)}`);
          const params = { ...now.params, ...set };
          for (const k of unset) delete params[k];
          body.params = params;
        }
        if (!Object.keys(body).length)
          throw new RemoteError(
            EXIT.usage,
            'rackboot hosts edit MAC: give a field to change (--ip, --rack, --param k=v, ...)',
          );
        const h = (await c.call('PUT', `api/hosts/${enc(mac)}`, { json: body })).body as HostItem;
        print(h, () => `updated ${h.hostname} (${h.mac})`);
        return EXIT.ok;
      }
      case 'rm': {
        const mac = macArg('hosts rm', arg);
        await c.call('DELETE', `api/hosts/${enc(mac)}`);
        print({ deleted: mac }, () => `deleted ${mac}`);
        return EXIT.ok;
      }
      case 'build': {
        const r = (await c.call('POST', `api/hosts/${enc(macArg('hosts build', arg))}/build`)).body as Record<
          string,
          unknown
        >;
        // The token is in the URLs; the person asked for it, as `rackboot hosts build` on the server prints them.
        print(r, () =>
          JSON.stringify(
            { kickstartUrl: r.kickstartUrl, builtUrl: r.builtUrl, failedUrl: r.failedUrl, expiresAt: r.expiresAt },
            null,
            2,
          ),
        );
        return EXIT.ok;
      }
      case 'cancel': {
        const r = (await c.call('DELETE', `api/hosts/${enc(macArg('hosts cancel', arg))}/build`)).body as {
          buildId: number;
        };
        print(r, () => `build ${r.buildId} cancelled`);
        return EXIT.ok;
      }
      case 'import':
        return importCsv(arg);
      case 'timeline': {
        const mac = macArg('hosts timeline', arg);
        const events = await c.all<EventItem>(`api/hosts/${enc(mac)}/events`, new URLSearchParams());
        print(events, () =>
          table(
            events.map((e) => [e.at, e.type, e.clientIp, e.status, e.bytes, e.detail ? JSON.stringify(e.detail) : '']),
            ['AT', 'EVENT', 'FROM', 'STATUS', 'BYTES', 'DETAIL'],
          ),
        );
        return EXIT.ok;
      }
      case 'logs':
        return logs(c, io, macArg('hosts logs', arg), v, json);
    }
  }
  if (command === 'rack') {
    if (sub === 'list') {
      const hosts = await listHosts({});
      const racks = new Map<string, Record<string, number>>();
      for (const h of hosts) {
        const r = racks.get(h.rack ?? '') ?? {};
        r[h.state] = (r[h.state] ?? 0) + 1;
        racks.set(h.rack ?? '', r);
      }
      const rows = [...racks].sort(([a], [b]) => a.localeCompare(b));
      print(
        rows.map(([rack, states]) => ({
          rack: rack || null,
          hosts: Object.values(states).reduce((a, b) => a + b, 0),
          states,
        })),
        () =>
          table(
            rows.map(([rack, states]) => [
              rack,
              Object.values(states).reduce((a, b) => a + b, 0),
              Object.entries(states)
                .map(([s, n]) => `${s} ${n}`)
                .join(', '),
            ]),
            ['RACK', 'HOSTS', 'STATES'],
          ),
      );
      return EXIT.ok;
    }
    if (sub === 'show') {
      if (!arg) throw new RemoteError(EXIT.usage, 'rackboot rack show RACK');
      const hosts = await listHosts({ rack: arg, state: v.state as string });
      print(hosts, () => hostTable(hosts));
      return EXIT.ok;
    }
    if (sub === 'import') return importCsv(arg);
    if (sub === 'build' || sub === 'cancel') {
      if (!arg) throw new RemoteError(EXIT.usage, `rackboot rack ${sub} RACK`);
      // The numbers go to the server as they were typed: it checks them (and names the field) as for any client.
      const num = (flag: string, raw: unknown) => {
        if (raw === undefined) return undefined;
        if (!/^\d{1,9}$/.test(String(raw)))
          throw new RemoteError(EXIT.usage, `--${flag}: "${String(raw).slice(0, 32)}" is not a whole number`);
        return Number(raw);
      };
      const body =
        sub === 'build'
          ? {
              power: v.power === true,
              confirm: v.confirm === true,
              ...(v.wave !== undefined ? { waveSize: num('wave', v.wave) } : {}),
              ...(v.interval !== undefined ? { waveIntervalSeconds: num('interval', v.interval) } : {}),
            }
          : {};
      const r = (await c.call('POST', `api/racks/${enc(arg)}/${sub}`, { json: body })).body as { id?: number };
      print(r, () => (sub === 'build' ? `rollout ${r.id} started for rack ${arg}` : `rack ${arg}: cancelled`));
      return EXIT.ok;
    }
  }
  if (command === 'rollout') {
    if (sub === 'list') {
      const rows = await c.all<{ id: number; status: string; scope: string; hostCount: number; createdAt: string }>(
        'api/rollouts',
        new URLSearchParams(),
      );
      print(rows, () =>
        table(
          rows.map((r) => [r.id, r.status, r.scope, r.hostCount, r.createdAt]),
          ['ID', 'STATUS', 'SCOPE', 'HOSTS', 'CREATED'],
        ),
      );
      return EXIT.ok;
    }
    if ((sub === 'show' || sub === 'cancel') && arg && /^\d{1,15}$/.test(arg)) {
      const r = (
        await c.call(sub === 'show' ? 'GET' : 'POST', `api/rollouts/${arg}${sub === 'cancel' ? '/cancel' : ''}`)
      ).body as { status?: string; hosts?: { mac: string; step: string; reason?: string }[] };
      print(r, () =>
        [
          `rollout ${arg}: ${r.status ?? ''}`,
          table(
            (r.hosts ?? []).map((h) => [h.mac, h.step, h.reason ?? '']),
            ['MAC', 'STEP', 'REASON'],
          ),
        ].join('\n'),
      );
      return EXIT.ok;
    }
    throw new RemoteError(EXIT.usage, 'rackboot rollout list | rollout show ID | rollout cancel ID');
  }
  if (command === 'power') {
    const mac = macArg('power', sub);
    const action = arg;
    if (arg2 !== undefined || !action || !['status', 'on', 'off', 'cycle'].includes(action))
      throw new RemoteError(EXIT.usage, 'rackboot power MAC status|on|off|cycle');
    // The BMC helper's route: POST with the action, status included (it asks the BMC, so it is not a cached GET).
    const r = (await c.call('POST', `api/hosts/${enc(mac)}/power`, { json: { action } })).body as {
      powerState?: string;
    };
    print(r, () => `${mac}: power ${r.powerState ?? JSON.stringify(r)}`);
    return EXIT.ok;
  }
  if (command === 'discovered' && sub === 'list') {
    const rows = await c.all<{
      mac: string;
      arch?: number;
      uuid?: string;
      ipxe: boolean;
      ip?: string;
      firstSeen: string;
      lastSeen: string;
    }>('api/discovered', new URLSearchParams());
    print(rows, () =>
      table(
        rows.map((d) => [d.mac, d.ip, d.arch, d.ipxe ? 'yes' : 'no', d.uuid, d.firstSeen, d.lastSeen]),
        ['MAC', 'IP', 'ARCH', 'IPXE', 'UUID', 'FIRST SEEN', 'LAST SEEN'],
      ),
    );
    return EXIT.ok;
  }
  throw new RemoteError(EXIT.usage, `unknown command "${pos.join(' ').slice(0, 100)}"\n${REMOTE_USAGE}`);
}

/** The installer log; --follow polls with the cursor for newer lines until interrupted. */
async function logs(c: Client, io: RemoteIo, mac: string, v: Values, json: boolean): Promise<number> {
  const q = new URLSearchParams();
  for (const k of ['build', 'severity', 'q'] as const) if (typeof v[k] === 'string') q.set(k, v[k]);
  const sleep = io.sleep ?? ((ms: number) => new Promise<boolean>((r) => setTimeout(() => r(true), ms)));
  const show = (page: LogPage) => {
    for (const l of page.lines)
      io.out(json ? JSON.stringify(l) : `${l.at} ${l.severity.padEnd(7)} ${l.app ? `${l.app}: ` : ''}${l.text}`);
  };
  let page = await c.get<LogPage>(`api/hosts/${enc(mac)}/logs?${q.toString()}`);
  show(page);
  if (!v.follow) return EXIT.ok;
  // Follow the build this answer was about, even when a newer one starts.
  q.set('build', String(page.buildId));
  while (await sleep(FOLLOW_EVERY_MS)) {
    q.set('cursor', page.nextCursor);
    page = await c.get<LogPage>(`api/hosts/${enc(mac)}/logs?${q.toString()}`);
    show(page);
  }
  return EXIT.ok;
}
