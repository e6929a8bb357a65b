// Redfish (DMTF DSP0266) driver: HTTPS + JSON. Built on node:https rather than fetch so that a pinned
// certificate is checked on the TLS socket BEFORE any request (with credentials) is written to it.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { parseMac } from '../net/mac.ts';
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

/** A BMC that answers more than this is not a BMC we want to parse (a stranger's server on that address). */
const MAX_BODY = 1024 * 1024;
const MAX_NICS = 64;
const MAX_REDIRECTS = 3;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** "https://10.0.0.5", "10.0.0.5", "https://bmc1:8443" -> a base URL (https unless http:// is written). */
export function redfishBase(address: string): URL {
  return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `https://${address}`);
}

/** "AB:CD:.." or "abcd.." -> "abcd..", for comparing a pinned sha256 with the certificate's. */
export const normalizeFingerprint = (fp: string) => fp.replace(/[^0-9a-f]/gi, '').toLowerCase();

/** The message a Redfish error body carries (error.message, or its first ExtendedInfo Message). */
function redfishMessage(body: unknown): string | undefined {
  const err = obj(obj(body).error);
  const info = Array.isArray(err['@Message.ExtendedInfo']) ? obj(err['@Message.ExtendedInfo'][0]) : {};
  const text = str(info.Message) ?? str(err.message);
  return text?.replace(/\s+/g, ' ').slice(0, 300);
}

function mapPower(v: unknown): PowerState {
  if (v === 'On' || v === 'PoweringOff') return 'on';
  if (v === 'Off' || v === 'PoweringOn') return 'off';
  return 'unknown';
}

export class RedfishDriver implements BmcDriver {
  private readonly cfg: BmcConfig;
  private readonly base: URL;
  private readonly name: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly gracefulOffMs: number;
  private readonly settleMs: number;
  private readonly pollMs: number;
  private auth: 'unknown' | 'basic' | { token: string; location?: string } = 'unknown';
  private systemPath?: string;
  private serviceRoot?: Json;

  constructor(cfg: BmcConfig, opts: DriverOptions & { settleMs?: number; pollMs?: number } = {}) {
    this.cfg = cfg;
    this.base = redfishBase(cfg.address);
    this.name = `redfish ${this.base.origin}`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.retries = opts.retries ?? 3;
    this.backoffMs = opts.backoffMs ?? 500;
    this.gracefulOffMs = opts.gracefulOffMs ?? 60_000;
    this.settleMs = opts.settleMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 1000;
  }

  private fail(what: string, answer: string, retryable: boolean, status?: number): BmcError {
    return new BmcError(what, { bmc: this.name, answer, retryable, ...(status !== undefined ? { status } : {}) });
  }

  /** One HTTP exchange, no retry. Network failures and timeouts become retryable BmcErrors. */
  private exchange(method: string, url: URL, body: unknown, headers: Record<string, string>): Promise<Reply> {
    const what = `${method} ${url.pathname}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const done = (err: BmcError | undefined, reply?: Reply) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(reply!);
      };
      const https = url.protocol === 'https:';
      const req = httpRequest({
        method,
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (https ? 443 : 80),
        path: url.pathname + url.search,
        headers: {
          Accept: 'application/json',
          'OData-Version': '4.0',
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
          ...headers,
        },
        // No agent: a fresh connection per exchange (BMCs close them anyway), TLS through our own checked socket.
        ...(https
          ? {
              createConnection: (_o: unknown, cb: (e: Error | null, s: Duplex) => void) => {
                this.tls(url, cb);
                return undefined;
              },
            }
          : { agent: false }),
      });
      const timer = setTimeout(() => {
        done(this.fail(what, `no answer within ${this.timeoutMs} ms`, true));
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof BmcError) return done(e);
        const code = e.code ?? '';
        const retryable = !/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|EPROTO|ERR_SSL/.test(code + e.message);
        done(this.fail(what, `${code ? code + ': ' : ''}${e.message}`.slice(0, 300), retryable));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) {
            done(this.fail(what, `answer larger than ${MAX_BODY} bytes`, false, res.statusCode));
            req.destroy();
          } else chunks.push(c);
        });
        res.on('error', (e) => done(this.fail(what, e.message, true)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = undefined;
          if (text.trim() !== '') {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          done(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      });
      // Headers and body in one write: a BMC that answers before reading the body must not see half a request.
      req.end(payload);
    });
  }

  /** The TLS socket, handed to HTTP only once the certificate is accepted (verified chain, or the pinned sha256). */
  private tls(url: URL, cb: (e: Error | null, s: Duplex) => void): void {
    const pin = this.cfg.fingerprint ? normalizeFingerprint(this.cfg.fingerprint) : undefined;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tlsConnect({
      host,
      port: Number(url.port || 443),
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
      rejectUnauthorized: this.cfg.verifyTls && !pin,
    });
    socket.once('secureConnect', () => {
      if (pin) {
        const seen = normalizeFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');
        if (seen !== pin) {
          socket.destroy();
          return cb(
            this.fail(`TLS to ${url.host}`, `certificate sha256 ${seen} is not the pinned ${pin}`, false),
            socket,
          );
        }
      }
      socket.removeListener('error', onError);
      cb(null, socket);
    });
    const onError = (e: NodeJS.ErrnoException) => cb(e, socket);
    socket.once('error', onError);
  }

  private async authHeaders(): Promise<Record<string, string>> {
    if (this.auth === 'unknown') await this.login();
    if (this.auth !== 'basic' && this.auth !== 'unknown') return { 'X-Auth-Token': this.auth.token };
    const basic = Buffer.from(`${this.cfg.username}:${this.cfg.password}`).toString('base64');
    return { Authorization: `Basic ${basic}` };
  }

  /** The service root: readable without credentials (DSP0266 13.3.1), it says where sessions and systems are. */
  private async root(): Promise<Json> {
    if (this.serviceRoot) return this.serviceRoot;
    const url = new URL('/redfish/v1/', this.base);
    const r = await withRetry(this.retries, this.backoffMs, async () => {
      const reply = await this.exchange('GET', url, undefined, {});
      if (reply.status >= 400) throw this.httpError('GET /redfish/v1/', reply);
      return reply;
    });
    this.serviceRoot = obj(r.body);
    return this.serviceRoot;
  }

  /** A session when the root links one (fewer password round trips; iLO/iDRAC limit Basic); else Basic. */
  private async login(): Promise<void> {
    const sessions = str(obj(obj((await this.root()).Links).Sessions)['@odata.id']);
    if (!sessions) {
      this.auth = 'basic'; // sushy-tools and some older BMCs have no SessionService
      return;
    }
    const url = new URL(sessions, this.base);
    const r = await withRetry(this.retries, this.backoffMs, async () => {
      const reply = await this.exchange('POST', url, { UserName: this.cfg.username, Password: this.cfg.password }, {});
      if (reply.status >= 400) throw this.httpError('log in', reply);
      return reply;
    });
    const token = r.headers['x-auth-token'];
    if (typeof token !== 'string' || token === '')
      throw this.fail('log in', `HTTP ${r.status} without X-Auth-Token`, false);
    const loc = r.headers.location;
    this.auth = { token, ...(typeof loc === 'string' ? { location: loc } : {}) };
  }

  private httpError(what: string, r: Reply): BmcError {
    const msg = redfishMessage(r.body) ?? (typeof r.body === 'string' ? r.body.replace(/\s+/g, ' ').slice(0, 200) : '');
    const hint = r.status === 401 ? ' (wrong username or password?)' : '';
    const retryable = r.status >= 500 || r.status === 429 || r.status === 408;
    return this.fail(what, `HTTP ${r.status}${msg ? ': ' + msg : ''}${hint}`, retryable, r.status);
  }

  /** An authenticated call with retry on transient failures; a 401 on a session logs in again once. */
  private async call(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Reply> {
    const what = `${method} ${path}`;
    let relogged = false;
    // Logging in has its own retries; outside this loop so that a dead BMC is not retried retries² times.
    if (this.auth === 'unknown') await this.login();
    return withRetry(this.retries, this.backoffMs, async () => {
      let url = new URL(path, this.base);
      for (let hop = 0; ; hop++) {
        const r = await this.exchange(method, url, body, { ...(await this.authHeaders()), ...extra });
        if (r.status === 401 && typeof this.auth === 'object' && !relogged) {
          relogged = true; // the session expired or the BMC restarted: one new login
          this.auth = 'unknown';
          await this.login();
          continue;
        }
        const loc = r.headers.location;
        if ([301, 302, 307, 308].includes(r.status) && typeof loc === 'string' && hop < MAX_REDIRECTS) {
          const next = new URL(loc, url);
          if (next.origin !== this.base.origin)
            throw this.fail(what, `redirect to another origin ${next.origin}`, false);
          url = next;
          continue;
        }
        if (r.status >= 400) throw this.httpError(what, r);
        return r;
      }
    });
  }

  private async get(path: string): Promise<{ body: Json; etag?: string }> {
    const r = await this.call('GET', path);
    const header = r.headers.etag;
    const body = obj(r.body);
    const etag = (typeof header === 'string' ? header : undefined) ?? str(body['@odata.etag']);
    return { body, ...(etag ? { etag } : {}) };
  }

  private async system(): Promise<string> {
    if (this.systemPath) return this.systemPath;
    if (this.cfg.system) {
      this.systemPath = `/redfish/v1/Systems/${encodeURIComponent(this.cfg.system)}`;
      return this.systemPath;
    }
    const collection = str(obj((await this.root()).Systems)['@odata.id']) ?? '/redfish/v1/Systems';
    const { body } = await this.get(collection);
    const members = (Array.isArray(body.Members) ? body.Members : [])
      .map((m) => str(obj(m)['@odata.id']))
      .filter((m): m is string => m !== undefined);
    if (members.length !== 1) {
      const ids = members.map((m) => m.split('/').pop()).join(', ');
      throw this.fail(
        'find the system',
        members.length === 0
          ? `${collection} lists no system`
          : `${collection} lists ${members.length} systems (${ids.slice(0, 200)}): set bmc.system to one`,
        false,
      );
    }
    this.systemPath = members[0];
    return this.systemPath;
  }

  async powerState(): Promise<PowerState> {
    return mapPower((await this.get(await this.system())).body.PowerState);
  }

  /** ComputerSystem.Reset with the first of `wanted` that the system advertises. */
  private async reset(sys: Json, wanted: string[]): Promise<void> {
    const action = obj(obj(sys.Actions)['#ComputerSystem.Reset']);
    const target = str(action.target);
    if (!target) throw this.fail('reset', 'the system has no #ComputerSystem.Reset action', false);
    let allowed = action['ResetType@Redfish.AllowableValues'];
    const infoPath = str(action['@Redfish.ActionInfo']);
    if (!Array.isArray(allowed) && infoPath) {
      const info = await this.get(infoPath);
      const param = (Array.isArray(info.body.Parameters) ? info.body.Parameters : [])
        .map(obj)
        .find((p) => p.Name === 'ResetType');
      allowed = param?.AllowableValues;
    }
    const type = Array.isArray(allowed) ? wanted.find((w) => allowed.includes(w)) : wanted[0];
    if (!type) {
      throw this.fail(
        `reset (${wanted.join('/')})`,
        `the system allows only ${(allowed as unknown[]).join(', ')}`,
        false,
      );
    }
    await this.call('POST', target, { ResetType: type });
  }

  async power(action: PowerAction): Promise<PowerState> {
    const path = await this.system();
    const { body: sys } = await this.get(path);
    const state = mapPower(sys.PowerState);
    const settle = (want: PowerState, ms = this.settleMs) =>
      pollUntil(
        ms,
        this.pollMs,
        () => this.powerState(),
        (s) => s === want,
      );
    if (action === 'on') {
      if (state === 'on') return state;
      await this.reset(sys, ['On', 'ForceOn']);
      return settle('on');
    }
    if (action === 'off') {
      if (state === 'off') return state;
      const allowed = obj(obj(sys.Actions)['#ComputerSystem.Reset'])['ResetType@Redfish.AllowableValues'];
      if (!Array.isArray(allowed) || allowed.includes('GracefulShutdown')) {
        await this.reset(sys, ['GracefulShutdown']);
        if ((await settle('off', this.gracefulOffMs)) === 'off') return 'off';
      }
      await this.reset(sys, ['ForceOff']);
      return settle('off');
    }
    if (state !== 'on') {
      await this.reset(sys, ['On', 'ForceOn']);
      return settle('on');
    }
    await this.reset(sys, ['ForceRestart', 'PowerCycle', 'GracefulRestart']);
    return settle('on');
  }

  async bootNetworkOnce(mode: FirmwareMode): Promise<void> {
    const path = await this.system();
    const sys = await this.get(path);
    const boot = obj(sys.body.Boot);
    const wanted: Json = { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' };
    // Only BMCs that model the firmware mode take it; sending it to one that does not is a 400 on some.
    if ('BootSourceOverrideMode' in boot) wanted.BootSourceOverrideMode = mode === 'uefi' ? 'UEFI' : 'Legacy';
    // Newer iDRACs refuse a PATCH on the system itself and apply pending settings from the Settings object.
    const settingsPath = str(obj(obj(sys.body['@Redfish.Settings']).SettingsObject)['@odata.id']);
    const target = settingsPath ?? path;
    let etag = settingsPath ? (await this.get(settingsPath)).etag : sys.etag;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.call('PATCH', target, { Boot: wanted }, etag ? { 'If-Match': etag } : {});
        return;
      } catch (err) {
        // 412: someone changed the resource between our GET and PATCH; read its new ETag and try once more.
        if (!(err instanceof BmcError) || err.status !== 412 || attempt > 0) throw err;
        etag = (await this.get(target)).etag;
      }
    }
  }

  async facts(): Promise<SystemFacts> {
    const path = await this.system();
    const { body } = await this.get(path);
    const macs: string[] = [];
    const nicsPath = str(obj(body.EthernetInterfaces)['@odata.id']);
    if (nicsPath) {
      const list = (await this.get(nicsPath)).body;
      const members = (Array.isArray(list.Members) ? list.Members : []).slice(0, MAX_NICS);
      for (const m of members) {
        const id = str(obj(m)['@odata.id']);
        if (!id) continue;
        const nic = (await this.get(id)).body;
        const mac = parseMac(str(nic.MACAddress) ?? str(nic.PermanentMACAddress) ?? '');
        if (mac && !macs.includes(mac)) macs.push(mac);
      }
    }
    return {
      ...(str(body.Model) ? { model: str(body.Model)!.slice(0, 200) } : {}),
      ...(str(body.SerialNumber) ? { serial: str(body.SerialNumber)!.slice(0, 200) } : {}),
      powerState: mapPower(body.PowerState),
      macs,
    };
  }

  async close(): Promise<void> {
    const auth = this.auth;
    this.auth = 'unknown';
    if (typeof auth !== 'object' || !auth.location) return;
    try {
      await this.exchange('DELETE', new URL(auth.location, this.base), undefined, { 'X-Auth-Token': auth.token });
    } catch {
      /* the session times out on the BMC by itself */
    }
  }
}
