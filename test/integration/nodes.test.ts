// Several nodes on one store: two real `rackboot serve` processes on loopback (different ports) sharing one
// database. A host created through node A has its kickstart fetched from node B, is built through B, and A
// sees it; A killed with kill -9, B keeps serving builds and reports A dead. Then DHCP: both nodes answer one
// subnet authoritatively from the shared lease table while many clients race, and no address is ACKed twice.
// Runs on a SQLite file both processes open (WAL), and on PostgreSQL when serve has --database and Debian's
// postgresql is installed (it says why it skips otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../support/postgres.ts';

const BIN = join(REPO, 'bin/rackboot.mjs');
const TOKEN = 'nodes-test-admin-token';
const RELAY = '127.0.0.2';

interface Node {
  name: string;
  base: string;
  dhcpPort: number;
  serverIp: string;
  proc: ChildProcess;
  output: () => string;
}

interface NodeOptions {
  name: string;
  dataDir: string;
  profilesDir: string;
  database?: string;
  serverIp: string;
  dhcp?: { pool: string };
}

async function startNode(dir: string, o: NodeOptions): Promise<Node> {
  const [httpPort, dhcpPort] = [await freePort('tcp'), await freePort('udp')];
  const file = join(dir, `${o.name}.yaml`);
  writeFileSync(
    file,
    [
      'listen: 127.0.0.1',
      `nodeId: node-${o.name}`,
      'nodeHeartbeat: 1s',
      `httpPort: ${httpPort}`,
      'tftpPort: 0',
      `publicUrl: http://127.0.0.1:${httpPort}`,
      'serverIp: 127.0.0.1',
      `dataDir: ${o.dataDir}`,
      `profilesDir: ${o.profilesDir}`,
      `tftpRoot: ${join(dir, 'tftpboot')}`,
      `imagesDir: ${join(dir, `images-${o.name}`)}`,
      'logFormat: json',
      'syslog: { port: 0 }',
      ...(o.dhcp
        ? [
            'dhcp:',
            '  mode: authoritative',
            '  sharedLeases: true',
            `  port: ${dhcpPort}`,
            `  serverIp: ${o.serverIp}`,
            '  bindToDevice: "off"',
            `  subnets: [{ cidr: 127.0.0.0/24, ranges: ["${o.dhcp.pool}"], serverIp: ${o.serverIp}, leaseTimeSec: 3600 }]`,
          ]
        : []),
      '',
    ].join('\n'),
  );
  const args = [BIN, 'serve', '--config', file, ...(o.database ? ['--database', o.database] : [])];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!out.includes('rackboot serving')) {
    if (proc.exitCode !== null) throw new Error(`node ${o.name} exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`node ${o.name} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    name: o.name,
    base: `http://127.0.0.1:${httpPort}`,
    dhcpPort,
    serverIp: o.serverIp,
    proc,
    output: () => out,
  };
}

async function stopNode(n: Node | undefined): Promise<void> {
  if (!n || n.proc.exitCode !== null || n.proc.signalCode !== null) return;
  n.proc.kill('SIGTERM');
  await once(n.proc, 'exit');
}

async function api(n: Node, method: string, path: string, body?: unknown) {
  const r = await fetch(n.base + '/api' + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json().catch(() => undefined)) as Record<string, unknown> };
}

/** Polls `check` until it returns a value or the deadline passes (then fails with the last seen state). */
async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await check().catch((e: Error) => ((last = e.message), undefined));
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Store {
  name: string;
  skip?: string;
  setup(dir: string): Promise<{ dataDir: (node: string) => string; database?: string; done(): void }>;
}

const sqliteStore: Store = {
  name: 'SQLite (one file, two processes)',
  setup: (dir) => Promise.resolve({ dataDir: () => join(dir, 'data'), done: () => {} }),
};

const pgSkip = postgresMissing();
let pg: TestPostgres | undefined;
const postgresStore: Store = {
  name: 'PostgreSQL',
  skip: pgSkip,
  async setup(dir) {
    pg ??= await startPostgres();
    const url = await pg.createDatabase();
    return { dataDir: (node) => join(dir, `data-${node}`), database: url, done: () => {} };
  },
};

for (const store of [sqliteStore, postgresStore]) {
  test(
    `two nodes on ${store.name}: created on A, kickstart and built through B, seen on A; A killed -9, B keeps building`,
    { skip: store.skip, timeout: 120_000 },
    async () => {
      const dir = tempDir('rackboot-nodes-');
      cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
      mkdirSync(join(dir, 'tftpboot'), { recursive: true });
      const s = await store.setup(dir);
      let a: Node | undefined;
      let b: Node | undefined;
      try {
        const common = { profilesDir: join(dir, 'profiles'), database: s.database, serverIp: '127.0.0.1' };
        // Started together: migrations and the build token secret are settled once between them.
        [a, b] = await Promise.all([
          startNode(dir, { ...common, name: 'a', dataDir: s.dataDir('a') }),
          startNode(dir, { ...common, name: 'b', dataDir: s.dataDir('b') }),
        ]);
        const mac = '52:54:00:0d:00:01';
        assert.equal(
          (await api(a, 'POST', '/hosts', { mac, hostname: 'ha1', profile: 'rhvh-base', rack: 'N1' })).status,
          201,
        );
        const build = (await api(a, 'POST', `/hosts/${mac}/build`)).json as { kickstartUrl: string; builtUrl: string };
        assert.ok(build.kickstartUrl.startsWith(a.base + '/'), build.kickstartUrl);

        // The same token on node B: its kickstart names B's own URLs.
        const ksOnB = build.kickstartUrl.replace(a.base, b.base);
        const ks = await fetch(ksOnB, { headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${mac}` } });
        const ksText = await ks.text();
        assert.equal(ks.status, 200, ksText);
        assert.ok(ksText.includes(b.base + '/'), 'the kickstart served by B points at B');
        assert.ok(!ksText.includes(a.base + '/'), 'and not at A');
        const built = await fetch(build.builtUrl.replace(a.base, b.base), { method: 'POST' });
        assert.equal(built.status, 200, await built.text());

        // The state and the timeline are separate writes on B (events go in batches): wait for both.
        const onA = await until('A shows the host built through B, and its build.built event', 5_000, async () => {
          const v = (await api(a!, 'GET', `/hosts/${mac}`)).json as {
            state: string;
            events: { type: string; node?: string }[];
          };
          return v.state === 'built' && v.events.some((e) => e.type === 'build.built') ? v : undefined;
        });
        const nodesOf = (type: string) => onA.events.filter((e) => e.type === type).map((e) => e.node);
        assert.deepEqual(nodesOf('build.start'), ['node-a'], JSON.stringify(onA.events));
        assert.deepEqual(nodesOf('kickstart.fetched'), ['node-b']);
        assert.deepEqual(nodesOf('build.built'), ['node-b'], JSON.stringify(onA.events));

        const listed = (await api(b, 'GET', '/nodes')).json as {
          self: string;
          nodes: { id: string; alive: boolean; ports: { http: number }; publicUrl: string; lastHeartbeat: string }[];
        };
        assert.equal(listed.self, 'node-b');
        assert.deepEqual(
          listed.nodes.map((n) => [n.id, n.alive, n.publicUrl]),
          [
            ['node-a', true, a.base],
            ['node-b', true, b.base],
          ],
        );
        assert.equal(listed.nodes[0].ports.http, Number(new URL(a.base).port));
        // The rollout runner and stuck detection run on exactly one of them.
        const holders = await until('one node holds the rollouts duty', 5_000, async () => {
          const l = (await api(b!, 'GET', '/nodes')).json as { nodes: { id: string; duties: string[] }[] };
          const h = l.nodes.filter((n) => n.duties.includes('rollouts')).map((n) => n.id);
          return h.length ? h : undefined;
        });
        assert.equal(holders.length, 1, `one holder: ${holders.join(', ')}`);

        // kill -9 A: B goes on alone, and says A is dead within three missed heartbeats.
        a.proc.kill('SIGKILL');
        await once(a.proc, 'exit');
        for (let i = 2; i <= 4; i++) {
          const m = `52:54:00:0d:00:0${i}`;
          assert.equal(
            (await api(b, 'POST', '/hosts', { mac: m, hostname: `ha${i}`, profile: 'rhvh-base' })).status,
            201,
          );
          const bb = (await api(b, 'POST', `/hosts/${m}/build`)).json as { kickstartUrl: string; builtUrl: string };
          assert.ok(bb.kickstartUrl.startsWith(b.base + '/'));
          const k = await fetch(bb.kickstartUrl, { headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${m}` } });
          assert.equal(k.status, 200, await k.text());
          assert.equal((await fetch(bb.builtUrl, { method: 'POST' })).status, 200);
          assert.equal(((await api(b, 'GET', `/hosts/${m}`)).json as { state: string }).state, 'built');
        }
        await until('B reports A dead', 10_000, async () => {
          const l = (await api(b!, 'GET', '/nodes')).json as { nodes: { id: string; alive: boolean }[] };
          const dead = l.nodes.find((n) => n.id === 'node-a');
          return dead && !dead.alive && l.nodes.find((n) => n.id === 'node-b')?.alive ? true : undefined;
        });
        await until('B carries out the rollouts once A is gone', 10_000, async () => {
          const l = (await api(b!, 'GET', '/nodes')).json as { nodes: { id: string; duties: string[] }[] };
          return l.nodes.find((n) => n.id === 'node-b')?.duties.includes('rollouts') ? true : undefined;
        });
      } finally {
        await stopNode(a);
        await stopNode(b);
        s.done();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}

// ---- DHCP through a relay (RFC 2131 4.1: replies go to giaddr at the server port) ----
function dhcpPacket(mac: string, xid: number, type: number, extra: [number, Buffer][] = []): Buffer {
  const b = Buffer.alloc(300);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b[3] = 1;
  b.writeUInt32BE(xid, 4);
  Buffer.from(RELAY.split('.').map(Number)).copy(b, 24);
  Buffer.from(mac.split(':').map((h) => parseInt(h, 16))).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  let i = 240;
  for (const [code, val] of [[53, Buffer.from([type])], ...extra] as [number, Buffer][]) {
    b[i++] = code;
    b[i++] = val.length;
    val.copy(b, i);
    i += val.length;
  }
  b[i] = 255;
  return b;
}

interface Reply {
  xid: number;
  type: number;
  yiaddr: string;
  serverId: string;
}
function dhcpReply(b: Buffer): Reply | undefined {
  if (b.length < 240 || b.readUInt32BE(236) !== 0x63825363) return undefined;
  let type = 0;
  let serverId = '';
  for (let i = 240; i < b.length && b[i] !== 255;) {
    if (b[i] === 0) {
      i++;
      continue;
    }
    if (b[i] === 53) type = b[i + 2];
    if (b[i] === 54) serverId = [...b.subarray(i + 2, i + 6)].join('.');
    i += 2 + b[i + 1];
  }
  return { xid: b.readUInt32BE(4), type, yiaddr: `${b[16]}.${b[17]}.${b[18]}.${b[19]}`, serverId };
}

const CLIENTS = 60;
for (const store of [sqliteStore, postgresStore])
  test(
    `authoritative DHCP on two nodes on ${store.name}, one shared lease table, ${CLIENTS} clients racing: no address ACKed twice`,
    { skip: store.skip, timeout: 120_000 },
    async () => {
      const dir = tempDir('rackboot-nodes-dhcp-');
      cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
      mkdirSync(join(dir, 'tftpboot'), { recursive: true });
      const st = await store.setup(dir);
      const nodes: Node[] = [];
      const relays: dgram.Socket[] = [];
      try {
        // Two server identities on loopback; one pool, a little larger than the clients.
        for (const [name, serverIp] of [
          ['a', '127.0.0.1'],
          ['b', '127.0.0.3'],
        ] as const)
          nodes.push(
            await startNode(dir, {
              name,
              serverIp,
              dataDir: st.dataDir(name),
              database: st.database,
              profilesDir: join(dir, 'profiles'),
              dhcp: { pool: '127.0.0.100-127.0.0.169' },
            }),
          );
        // Each client's broadcast reaches both nodes: the relay forwards every packet to both.
        const waiting = new Map<number, (r: Reply) => void>();
        for (const n of nodes) {
          const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
          await new Promise<void>((r) => s.bind(n.dhcpPort, RELAY, () => r()));
          s.on('message', (m) => {
            const r = dhcpReply(m);
            if (r) waiting.get(r.xid)?.(r);
          });
          relays.push(s);
        }
        // Each node hears each broadcast a random few ms apart, so the two see the clients in different orders
        // (in one order, both would offer client k the same k-th address and never collide).
        const toAll = (pkt: Buffer) =>
          nodes.forEach((n, i) =>
            setTimeout(() => relays[i].send(pkt, n.dhcpPort, '127.0.0.1'), Math.floor(Math.random() * 40)),
          );
        /** Sends to both nodes; resolves with the replies of the next `ms`. */
        const exchange = (pkt: Buffer, xid: number, ms: number): Promise<Reply[]> =>
          new Promise((resolve) => {
            const got: Reply[] = [];
            waiting.set(xid, (r) => got.push(r));
            setTimeout(() => {
              waiting.delete(xid);
              resolve(got);
            }, ms);
            toAll(pkt);
          });

        const acked = new Map<string, string>(); // ip -> mac
        const twice: string[] = [];
        const ackedBy = { 'a-127.0.0.1': 0, 'b-127.0.0.3': 0 } as Record<string, number>;
        let naks = 0;
        const client = async (n: number) => {
          const mac = `52:54:00:d0:00:${n.toString(16).padStart(2, '0')}`;
          await new Promise((r) => setTimeout(r, Math.random() * 300));
          for (let attempt = 0; attempt < 10; attempt++) {
            const xid = randomBytes(4).readUInt32BE(0);
            const offers = (await exchange(dhcpPacket(mac, xid, 1), xid, 400)).filter((r) => r.type === 2);
            if (!offers.length) continue;
            // A client takes one offer (here: one at random) and names its server; the other node lets its offer go.
            const offer = offers[Math.floor(Math.random() * offers.length)];
            const replies = await exchange(
              dhcpPacket(mac, xid, 3, [
                [50, Buffer.from(offer.yiaddr.split('.').map(Number))],
                [54, Buffer.from(offer.serverId.split('.').map(Number))],
              ]),
              xid,
              400,
            );
            const ack = replies.find((r) => r.type === 5);
            if (!ack) {
              if (replies.some((r) => r.type === 6)) naks++;
              continue;
            }
            const holder = acked.get(ack.yiaddr);
            if (holder && holder !== mac) twice.push(`${ack.yiaddr}: ${holder} and ${mac}`);
            acked.set(ack.yiaddr, mac);
            ackedBy[ack.serverId === '127.0.0.1' ? 'a-127.0.0.1' : 'b-127.0.0.3']++;
            return;
          }
        };
        await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
        assert.deepEqual(twice, [], 'an address was ACKed to two clients');
        assert.equal(acked.size, CLIENTS, `every client got an address (naks ${naks})`);
        // Offers claim their address in the shared table, so two nodes never offer one address to two clients:
        // the server a client chose always ACKs (without the claim, the loser of each collision NAKs).
        assert.equal(naks, 0, 'a REQUEST to the chosen server was NAKed: two nodes offered one address');
        assert.ok(
          ackedBy['a-127.0.0.1'] > 0 && ackedBy['b-127.0.0.3'] > 0,
          `both nodes handed out addresses: ${JSON.stringify(ackedBy)}`,
        );
      } finally {
        for (const r of relays) r.close();
        for (const n of nodes) await stopNode(n);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

test.after(() => pg?.stop());
