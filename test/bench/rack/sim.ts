// Rack simulation client (a bench, not a test): N simulated PXE hosts power on at once and each goes
// DHCP DISCOVER/OFFER/REQUEST/ACK -> TFTP loader -> TFTP pxelinux.cfg/01-<mac> -> kernel + initrd (HTTP
// as iPXE does, or TFTP) -> GET kickstart -> POST events -> POST built. It talks to whatever server
// answers on the wire (rackboot, or dnsmasq + nginx), so both runs see the same client workload.
//
// Each host uses its leased address as its source for TFTP and HTTP (the caller makes the pool's
// addresses local in this namespace: `ip route add local <pool> dev lo`, the AnyIP trick), so the
// server sees 200 distinct clients, as with real machines.
//
// Own codecs on purpose: the client must not share code with the server under test.
// Usage: node --import tsx sim.ts --macs FILE [--initrd http|tftp] [--timeout SEC] [--json OUT]
//        [--watch PID,PID] [--label NAME] [--jitter-ms MS] [--nics PORT]
// --nics PORT: nics.py answers ARP for each leased address with its host's MAC; a host tells it
// "IP MAC" once it has its ACK and goes on when nics.py echoes it (asking again each second: a busy
// event loop can run the timer before it reads the echo).
import dgram from 'node:dgram';
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

// ---------- arguments ----------
interface Args {
  macs: string[];
  initrd: 'http' | 'tftp';
  timeoutSec: number;
  json?: string;
  watch: number[];
  label: string;
  jitterMs: number;
  nicsPort?: number;
}
function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const macsFile = get('macs');
  if (!macsFile) throw new Error('sim: --macs FILE is required (one MAC per line)');
  const initrd = get('initrd') ?? 'http';
  if (initrd !== 'http' && initrd !== 'tftp') throw new Error(`sim: --initrd must be http or tftp, not ${initrd}`);
  return {
    macs: readFileSync(macsFile, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
    initrd,
    timeoutSec: Number(get('timeout') ?? 600),
    json: get('json'),
    watch: (get('watch') ?? '').split(',').filter(Boolean).map(Number),
    label: get('label') ?? 'server',
    jitterMs: Number(get('jitter-ms') ?? 1000),
    nicsPort: get('nics') ? Number(get('nics')) : undefined,
  };
}

const T0 = performance.now();
const now = (): number => (performance.now() - T0) / 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------- DHCP (RFC 2131/2132), client side ----------
const DHCP_MAGIC = 0x63825363;
interface DhcpMsg {
  op: number;
  xid: number;
  flags: number;
  yiaddr: string;
  siaddr: string;
  chaddr: string;
  file: string;
  options: Map<number, Buffer>;
}
const ipText = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const ipBytes = (ip: string): Buffer => Buffer.from(ip.split('.').map(Number));
const macBytes = (mac: string): Buffer => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
const cstr = (b: Buffer): string => {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('latin1');
};

function encodeDhcp(m: { xid: number; secs: number; mac: string; type: number; extra: [number, Buffer][] }): Buffer {
  const opts: Buffer[] = [Buffer.from([53, 1, m.type])];
  for (const [code, val] of m.extra) opts.push(Buffer.from([code, val.length]), val);
  opts.push(Buffer.from([255]));
  const body = Buffer.concat(opts);
  const b = Buffer.alloc(Math.max(300, 240 + body.length));
  b[0] = 1;
  b[1] = 1;
  b[2] = 6; // BOOTREQUEST, ethernet, hlen 6
  b.writeUInt32BE(m.xid >>> 0, 4);
  b.writeUInt16BE(Math.min(m.secs, 65535), 8);
  b.writeUInt16BE(0x8000, 10); // broadcast bit: as PXE ROMs do; we cannot take a unicast to an unconfigured MAC
  macBytes(m.mac).copy(b, 28);
  b.writeUInt32BE(DHCP_MAGIC, 236);
  body.copy(b, 240);
  return b;
}

function decodeDhcp(b: Buffer): DhcpMsg | undefined {
  if (b.length < 240 || b.readUInt32BE(236) !== DHCP_MAGIC) return undefined;
  const options = new Map<number, Buffer>();
  const walk = (from: number, to: number): void => {
    let i = from;
    while (i < to) {
      const code = b[i++];
      if (code === 0) continue;
      if (code === 255 || i >= to) break;
      const len = b[i++];
      if (i + len > to) break;
      const prev = options.get(code); // RFC 3396: concatenate repeated options
      options.set(code, prev ? Buffer.concat([prev, b.subarray(i, i + len)]) : b.subarray(i, i + len));
      i += len;
    }
  };
  walk(240, b.length);
  const overload = options.get(52)?.[0] ?? 0;
  if (overload & 1) walk(108, 236);
  if (overload & 2) walk(44, 108);
  return {
    op: b[0],
    xid: b.readUInt32BE(4),
    flags: b.readUInt16BE(10),
    yiaddr: ipText(b, 16),
    siaddr: ipText(b, 20),
    chaddr: [...b.subarray(28, 34)].map((x) => x.toString(16).padStart(2, '0')).join(':'),
    file: overload & 1 ? '' : cstr(b.subarray(108, 236)),
    options,
  };
}

/** One socket on 0.0.0.0:68 for all simulated hosts; replies are demultiplexed by xid (and checked against chaddr). */
class DhcpPort {
  private waiters = new Map<number, { mac: string; inbox: DhcpMsg[]; wake?: () => void }>();
  private constructor(private sock: dgram.Socket) {
    sock.on('message', (buf) => {
      const m = decodeDhcp(buf);
      if (!m || m.op !== 2) return;
      const w = this.waiters.get(m.xid);
      if (!w || w.mac !== m.chaddr) return;
      w.inbox.push(m);
      w.wake?.();
    });
  }
  static async open(): Promise<DhcpPort> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: 4 << 20 });
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.bind(68, '0.0.0.0', () => {
        sock.off('error', rej);
        res();
      });
    });
    sock.setBroadcast(true);
    return new DhcpPort(sock);
  }
  register(xid: number, mac: string): void {
    this.waiters.set(xid, { mac, inbox: [] });
  }
  unregister(xid: number): void {
    this.waiters.delete(xid);
  }
  send(b: Buffer): Promise<void> {
    return new Promise((res, rej) => this.sock.send(b, 67, '255.255.255.255', (e) => (e ? rej(e) : res())));
  }
  /** Next reply for xid whose message type is one of `types`, or undefined after ms. */
  async wait(xid: number, types: number[], ms: number): Promise<DhcpMsg | undefined> {
    const w = this.waiters.get(xid);
    if (!w) return undefined;
    const deadline = performance.now() + ms;
    for (;;) {
      const i = w.inbox.findIndex((m) => types.includes(m.options.get(53)?.[0] ?? 0));
      if (i >= 0) return w.inbox.splice(i, 1)[0];
      w.inbox.length = 0;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        w.wake = () => {
          clearTimeout(t);
          res();
        };
      });
      w.wake = undefined;
    }
  }
  close(): void {
    this.sock.close();
  }
}

interface Lease {
  ip: string;
  server: string;
  tftpServer: string;
  bootFile: string;
}

// PXE client identity: option 60 PXEClient:Arch:00000 (BIOS), 93 arch 0, 94 UNDI 2.1, 97 UUID.
function pxeOptions(mac: string): [number, Buffer][] {
  const uuid = Buffer.concat([Buffer.from([0]), Buffer.from('5eed0000000000000000', 'hex'), macBytes(mac)]);
  return [
    [57, Buffer.from([0x04, 0xec])], // max message 1260
    [93, Buffer.from([0, 0])],
    [94, Buffer.from([1, 2, 1])],
    [97, uuid],
    [
      55,
      Buffer.from([
        1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129,
        130, 131, 132, 133, 134, 135,
      ]),
    ],
    [60, Buffer.from('PXEClient:Arch:00000:UNDI:002001')],
  ];
}

/** DORA with the PXE ROM's retransmit schedule (PXE 2.1: 4, 8, 16, 32 s), restart on NAK. */
async function dhcpLease(port: DhcpPort, mac: string, st: HostStats, deadline: number): Promise<Lease> {
  const started = now();
  const secs = (): number => Math.floor(now() - started);
  const schedule = [4000, 8000, 16000, 32000];
  for (let round = 0; now() < deadline; round++) {
    const xid = randomBytes(4).readUInt32BE(0);
    port.register(xid, mac);
    try {
      let offer: DhcpMsg | undefined;
      for (let i = 0; i < schedule.length && !offer; i++) {
        if (i > 0) st.retries.dhcp++;
        await port.send(encodeDhcp({ xid, secs: secs(), mac, type: 1, extra: pxeOptions(mac) }));
        offer = await port.wait(xid, [2], schedule[i]);
      }
      if (!offer) throw new Error('dhcp: no OFFER after 4 DISCOVERs (60 s)');
      const serverId = offer.options.get(54);
      if (!serverId) throw new Error('dhcp: OFFER without server identifier (54)');
      let ack: DhcpMsg | undefined;
      for (let i = 0; i < schedule.length && !ack; i++) {
        if (i > 0) st.retries.dhcp++;
        await port.send(
          encodeDhcp({
            xid,
            secs: secs(),
            mac,
            type: 3,
            extra: [[50, ipBytes(offer.yiaddr)], [54, serverId], ...pxeOptions(mac)],
          }),
        );
        ack = await port.wait(xid, [5, 6], schedule[i]);
      }
      if (!ack) throw new Error('dhcp: no ACK after 4 REQUESTs');
      if (ack.options.get(53)?.[0] === 6) {
        st.retries.dhcp++;
        st.notes.push(`NAK in round ${round}`);
        continue;
      }
      const opt66 = ack.options.get(66);
      const opt67 = ack.options.get(67);
      const bootFile = opt67 ? cstr(opt67) : ack.file;
      const tftpServer = opt66 ? cstr(opt66) : ack.siaddr !== '0.0.0.0' ? ack.siaddr : ipText(serverId, 0);
      if (!bootFile) throw new Error('dhcp: ACK names no boot file (no option 67 and empty file field)');
      return { ip: ack.yiaddr, server: ipText(serverId, 0), tftpServer, bootFile };
    } finally {
      port.unregister(xid);
    }
  }
  throw new Error('dhcp: deadline passed');
}

// ---------- TFTP client (RFC 1350, 2347 options, 2348 blksize, 2349 tsize) ----------
class TftpFail extends Error {
  constructor(
    msg: string,
    readonly busy = false,
  ) {
    super(msg);
  }
}

function tftpGet(
  localIp: string,
  server: string,
  path: string,
  keep: boolean,
  st: HostStats,
): Promise<{ bytes: number; data: Buffer }> {
  const BLKSIZE = 1468;
  const TIMEOUT_MS = 1000;
  const MAX_RETRIES = 8;
  const DALLY_MS = 2000;
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let blksize = 512;
    let expected = 1;
    let tid = 0;
    let last: Buffer;
    let lastTo = 69;
    let lastProgress = performance.now();
    let retries = 0;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      if (err) {
        sock.close();
        reject(err);
        return;
      }
      resolve({ bytes, data: keep ? Buffer.concat(chunks) : Buffer.alloc(0) });
      // Dally (RFC 1350 section 6): the final ACK is still being sent (closing now would drop it), and
      // if it is lost the server resends the last block, which we acknowledge again.
      setTimeout(() => sock.close(), DALLY_MS);
    };
    const send = (b: Buffer, port: number): void => {
      last = b;
      lastTo = port;
      sock.send(b, port, server);
    };
    const ack = (block: number, port: number): void => {
      const b = Buffer.alloc(4);
      b.writeUInt16BE(4, 0);
      b.writeUInt16BE(block & 0xffff, 2);
      send(b, port);
    };
    const timer = setInterval(() => {
      if (performance.now() - lastProgress < TIMEOUT_MS) return;
      if (++retries > MAX_RETRIES)
        return finish(new TftpFail(`tftp ${path}: timed out at block ${expected} after ${MAX_RETRIES} retransmits`));
      st.retries.tftp++;
      lastProgress = performance.now();
      sock.send(last, lastTo, server);
    }, TIMEOUT_MS / 4);
    sock.on('error', (e) => finish(e));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.address !== server || msg.length < 4) return;
      if (done) {
        // dallying: re-acknowledge a resent final block
        if (rinfo.port === tid && msg.readUInt16BE(0) === 3 && msg.readUInt16BE(2) === ((expected - 1) & 0xffff))
          ack(expected - 1, tid);
        return;
      }
      if (tid && rinfo.port !== tid) {
        // RFC 1350 section 4: a stray TID gets an error, the transfer goes on
        const e = Buffer.concat([Buffer.from([0, 5, 0, 5]), Buffer.from('unknown transfer ID\0')]);
        sock.send(e, rinfo.port, server);
        return;
      }
      const op = msg.readUInt16BE(0);
      if (op === 5) {
        const text = cstr(msg.subarray(4));
        return finish(
          new TftpFail(`tftp ${path}: ERROR ${msg.readUInt16BE(2)} ${text}`, /busy|retry|too many/i.test(text)),
        );
      }
      if (op === 6) {
        // OACK
        if (expected !== 1) return;
        tid = rinfo.port;
        const parts = msg.subarray(2).toString('latin1').split('\0');
        for (let i = 0; i + 1 < parts.length; i += 2)
          if (parts[i].toLowerCase() === 'blksize') blksize = Number(parts[i + 1]);
        lastProgress = performance.now();
        retries = 0;
        ack(0, tid);
        return;
      }
      if (op !== 3) return;
      tid ||= rinfo.port;
      const block = msg.readUInt16BE(2);
      if (block === (expected & 0xffff)) {
        const data = msg.subarray(4);
        bytes += data.length;
        if (keep) chunks.push(Buffer.from(data));
        lastProgress = performance.now();
        retries = 0;
        ack(block, tid);
        expected++;
        if (data.length < blksize) finish();
      } else if (block === ((expected - 1) & 0xffff)) {
        ack(block, tid); // our ACK was lost: say it again
      }
    });
    sock.bind(0, localIp, () => {
      const rrq = Buffer.from(`\0\x01${path}\0octet\0blksize\0${BLKSIZE}\0tsize\x000\0`, 'latin1');
      send(rrq, 69);
    });
  });
}

/** Firmware-like: a busy server or a lost transfer means asking again (a few times, with a pause). */
async function tftpFetch(
  localIp: string,
  server: string,
  path: string,
  keep: boolean,
  st: HostStats,
): Promise<{ bytes: number; data: Buffer }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tftpGet(localIp, server, path, keep, st);
    } catch (e) {
      const busy = e instanceof TftpFail && e.busy;
      const timeout = e instanceof TftpFail && /timed out/.test(e.message);
      if (attempt >= 6 || !(busy || timeout)) throw e;
      if (busy) st.retries.busy++;
      else st.retries.tftp++;
      st.notes.push((e as Error).message);
      await sleep(1000 * attempt);
    }
  }
}

// ---------- HTTP (curl --retry-like) ----------
interface HttpResult {
  status: number;
  bytes: number;
  text: string;
}
function httpOnce(
  method: string,
  url: string,
  localAddress: string,
  body: string | undefined,
  keepText: boolean,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        localAddress,
        agent: false,
        timeout: 60000,
        headers:
          body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
      },
      (res) => {
        let bytes = 0;
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (keepText) parts.push(c);
        });
        res.on('end', () => {
          const want = res.headers['content-length'];
          if (want !== undefined && Number(want) !== bytes)
            return reject(new Error(`${method} ${url}: ${bytes} of ${want} bytes`));
          resolve({ status: res.statusCode ?? 0, bytes, text: keepText ? Buffer.concat(parts).toString('utf8') : '' });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out (60 s without data)`)));
    req.on('error', reject);
    req.end(body);
  });
}
async function httpFetch(
  method: string,
  url: string,
  localAddress: string,
  st: HostStats,
  opts: { body?: string; keepText?: boolean } = {},
): Promise<HttpResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await httpOnce(method, url, localAddress, opts.body, opts.keepText ?? false);
      if (r.status >= 200 && r.status < 300) return r;
      if (r.status < 500 || attempt >= 5)
        throw new Error(`${method} ${url}: HTTP ${r.status}${r.text ? ` ${r.text.slice(0, 120)}` : ''}`);
    } catch (e) {
      if (attempt >= 5 || /HTTP 4\d\d/.test((e as Error).message)) throw e;
      st.notes.push((e as Error).message);
    }
    st.retries.http++;
    await sleep(1000 * attempt);
  }
}

// ---------- one host ----------
const PHASES = ['dhcp', 'loader', 'config', 'kernel', 'initrd', 'kickstart', 'events', 'built'] as const;
type Phase = (typeof PHASES)[number];
interface HostStats {
  mac: string;
  ip?: string;
  start: number;
  end?: number;
  phase: Phase | 'wait' | 'done' | 'failed';
  t: Partial<Record<Phase, number>>;
  bytes: number;
  error?: string;
  retries: { dhcp: number; tftp: number; http: number; busy: number };
  notes: string[];
}

// ---------- NICs: the address's owner on the wire (see nics.py) ----------
class Nics {
  private pending = new Map<string, () => void>();
  private constructor(
    private sock: dgram.Socket,
    private port: number,
  ) {
    sock.on('message', (buf) => this.pending.get(buf.toString('ascii'))?.());
  }
  static async open(port: number): Promise<Nics> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
    return new Nics(sock, port);
  }
  async claim(ip: string, mac: string): Promise<void> {
    const msg = `${ip} ${mac}`;
    try {
      for (let attempt = 0; attempt < 30; attempt++) {
        const echoed = new Promise<boolean>((res) => {
          const timer = setTimeout(() => res(false), 1000);
          this.pending.set(msg, () => {
            clearTimeout(timer);
            res(true);
          });
        });
        this.sock.send(msg, this.port, '127.0.0.1');
        if (await echoed) return;
      }
      throw new Error(`nics: no echo for "${msg}" from nics.py on 127.0.0.1:${this.port}`);
    } finally {
      this.pending.delete(msg);
    }
  }
  close(): void {
    this.sock.close();
  }
}

async function runHost(
  port: DhcpPort,
  nics: Nics | undefined,
  st: HostStats,
  a: Args,
  deadline: number,
): Promise<void> {
  let mark = now();
  const step = async <T>(p: Phase, fn: () => Promise<T>): Promise<T> => {
    st.phase = p;
    const r = await fn();
    const t = now();
    st.t[p] = t - mark;
    mark = t;
    return r;
  };
  const lease = await step('dhcp', () => dhcpLease(port, st.mac, st, deadline));
  st.ip = lease.ip;
  await nics?.claim(lease.ip, st.mac);
  const loader = await step('loader', () => tftpFetch(lease.ip, lease.tftpServer, lease.bootFile, false, st));
  if (loader.bytes === 0) throw new Error(`loader ${lease.bootFile} is empty`);
  const cfgPath = `pxelinux.cfg/01-${st.mac.replace(/:/g, '-')}`;
  const cfg = (await step('config', () => tftpFetch(lease.ip, lease.tftpServer, cfgPath, true, st))).data.toString(
    'utf8',
  );
  const kernel = /^\s*KERNEL\s+(\S+)/im.exec(cfg)?.[1];
  const initrd = /\binitrd=(\S+)/.exec(cfg)?.[1];
  const ks = /\binst\.ks=(\S+)/.exec(cfg)?.[1];
  if (!kernel || !initrd || !ks)
    throw new Error(
      `config ${cfgPath} does not install (KERNEL/initrd=/inst.ks= missing): ${cfg.replace(/\s+/g, ' ').slice(0, 160)}`,
    );
  const base = new URL(ks).origin;
  const fetchBoot = async (p: string): Promise<void> => {
    const r =
      a.initrd === 'http'
        ? await httpFetch('GET', `${base}/tftp/${p.replace(/^\//, '')}`, lease.ip, st)
        : await tftpFetch(lease.ip, lease.tftpServer, p, false, st);
    st.bytes += r.bytes;
  };
  await step('kernel', () => fetchBoot(kernel));
  await step('initrd', () => fetchBoot(initrd));
  const kickstart = (await step('kickstart', () => httpFetch('GET', ks, lease.ip, st, { keepText: true }))).text;
  const events = /https?:\/\/[^\s'"]+\/events\/[A-Za-z0-9_-]+/.exec(kickstart)?.[0];
  const builtAll = [...kickstart.matchAll(/curl[^\n]*?(https?:\/\/[^\s'"]+\/built\/[A-Za-z0-9_-]+)/g)];
  const built = builtAll.at(-1)?.[1];
  if (!events || !built)
    throw new Error(
      `kickstart from ${ks} has no ${events ? '' : '/events/ URL '}${built ? '' : 'curl .../built/ URL'}`,
    );
  await step('events', async () => {
    for (const s of ['installing', 'nodectl-init'])
      await httpFetch('POST', events, lease.ip, st, { body: JSON.stringify({ step: s }) });
  });
  await step('built', () => httpFetch('POST', built, lease.ip, st, { body: '' }));
}

// ---------- CPU watch: where the server's time goes, per second ----------
function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in USER_HZ = 100 on Linux
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const port = await DhcpPort.open();
  const nics = a.nicsPort ? await Nics.open(a.nicsPort) : undefined;
  const deadline = a.timeoutSec;
  const hosts: HostStats[] = a.macs.map((mac) => ({
    mac,
    start: 0,
    phase: 'wait',
    t: {},
    bytes: 0,
    retries: { dhcp: 0, tftp: 0, http: 0, busy: 0 },
    notes: [],
  }));
  const samples: { t: number; cpu: number; self: number; phases: Record<string, number> }[] = [];
  const sample = (): void => {
    const phases: Record<string, number> = {};
    for (const h of hosts) phases[h.phase] = (phases[h.phase] ?? 0) + 1;
    const u = process.cpuUsage();
    samples.push({
      t: now(),
      cpu: a.watch.reduce((s, p) => s + cpuSeconds(p), 0),
      self: (u.user + u.system) / 1e6,
      phases,
    });
  };
  sample();
  const sampler = setInterval(sample, 1000);
  // Power-on spread: a rack's PDUs do not switch 200 machines in the same millisecond.
  const runs = hosts.map(async (h, i) => {
    await sleep((a.jitterMs * i) / hosts.length);
    h.start = now();
    try {
      await runHost(port, nics, h, a, deadline);
      h.phase = 'done';
    } catch (e) {
      h.error = `${h.phase}: ${(e as Error).message}`;
      h.phase = 'failed';
    }
    h.end = now();
  });
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), a.timeoutSec * 1000).unref());
  const outcome = await Promise.race([Promise.all(runs).then(() => 'ok' as const), timeout]);
  clearInterval(sampler);
  sample();
  port.close();
  nics?.close();
  const wall = Math.max(...hosts.map((h) => h.end ?? now()));
  for (const h of hosts)
    if (h.phase !== 'done' && h.phase !== 'failed') {
      h.error = `${h.phase}: still running at the ${a.timeoutSec} s timeout`;
      h.phase = 'failed';
    }
  const failed = hosts.filter((h) => h.phase === 'failed');

  // Report: per-phase duration percentiles (seconds), plus when the last host finished each phase.
  const pct = (xs: number[], p: number): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
  };
  const phaseStats = Object.fromEntries(
    PHASES.map((p) => {
      const xs = hosts.map((h) => h.t[p]).filter((x): x is number => x !== undefined);
      return [p, { n: xs.length, p50: pct(xs, 0.5), p95: pct(xs, 0.95), max: pct(xs, 1) }];
    }),
  );
  const retries = hosts.reduce(
    (s, h) => ({
      dhcp: s.dhcp + h.retries.dhcp,
      tftp: s.tftp + h.retries.tftp,
      http: s.http + h.retries.http,
      busy: s.busy + h.retries.busy,
    }),
    { dhcp: 0, tftp: 0, http: 0, busy: 0 },
  );
  const ips = new Set(hosts.map((h) => h.ip).filter(Boolean));
  const bytes = hosts.reduce((s, h) => s + h.bytes, 0);
  const cpuTimeline = samples.slice(1).map((s, i) => ({
    t: Math.round(s.t),
    serverCpuPct: Math.round(((s.cpu - samples[i].cpu) / (s.t - samples[i].t)) * 100),
    simCpuPct: Math.round(((s.self - samples[i].self) / (s.t - samples[i].t)) * 100),
    phases: s.phases,
  }));
  const result = {
    label: a.label,
    hosts: hosts.length,
    initrd: a.initrd,
    outcome,
    wallSec: wall,
    built: hosts.length - failed.length,
    failures: failed.length,
    distinctIps: ips.size,
    bytes,
    retries,
    phaseStats,
    cpuTimeline,
    failed: failed.map((h) => ({ mac: h.mac, ip: h.ip, error: h.error, notes: h.notes.slice(0, 5) })),
    notes: hosts
      .filter((h) => h.notes.length)
      .slice(0, 10)
      .map((h) => ({ mac: h.mac, notes: h.notes.slice(0, 5) })),
  };
  if (a.json) writeFileSync(a.json, JSON.stringify(result, null, 1));
  const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
  console.log(
    `[${a.label}] ${result.built}/${hosts.length} built in ${wall.toFixed(2)} s, ${failed.length} failed, ${ips.size} distinct IPs, ${(bytes / 1e9).toFixed(2)} GB boot files, retries dhcp ${retries.dhcp} tftp ${retries.tftp} http ${retries.http}, TFTP 'busy' errors ${retries.busy}`,
  );
  console.log(`[${a.label}] phase       p50 s   p95 s   max s`);
  for (const p of PHASES)
    console.log(
      `[${a.label}] ${p.padEnd(10)} ${f(phaseStats[p].p50).padStart(7)} ${f(phaseStats[p].p95).padStart(7)} ${f(phaseStats[p].max).padStart(7)}`,
    );
  console.log(`[${a.label}] server CPU % per second: ${cpuTimeline.map((c) => c.serverCpuPct).join(' ')}`);
  for (const h of failed.slice(0, 10)) console.log(`[${a.label}] FAILED ${h.mac} ${h.ip ?? ''}: ${h.error}`);
  process.exit(failed.length ? 1 : 0);
}

await main();
