// DHCP leases on the async store, on both stores (SQLite file, PostgreSQL from test/support/postgres.ts): two
// nodes (two LeaseStores, two real engines, each with the server's group commit) answer every broadcast of 200
// clients racing for one small pool; then a restart, and a commit that fails. Clients retry as real ones do (a new
// DISCOVER when no answer comes): the timers only decide how many tries a client needs, never what is asserted.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBoot } from '../../src/boot/decide.ts';
import { createGroupCommit } from '../../src/dhcp/commit.ts';
import { dhcpConfigSchema } from '../../src/dhcp/config.ts';
import { createDhcpEngine, type Outgoing } from '../../src/dhcp/engine.ts';
import { LeaseStore } from '../../src/dhcp/leases.ts';
import { decodePacket, intToIp } from '../../src/dhcp/packet.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import type { Mac } from '../../src/net/mac.ts';
import type { Store } from '../../src/store/index.ts';
import { startDhcpServer } from '../../src/dhcp/server.ts';
import dgram from 'node:dgram';
import { Writable } from 'node:stream';
import { LOADERS, mkBytes, reqIp, sid } from '../fixtures/dhcp/helpers.ts';
import { freePort } from '../support/ports.ts';
import { storeBackends } from '../support/backends.ts';

const SUBNET = '10.99.0.0/24';
const POOL = ['10.99.0.10-10.99.0.229']; // 220 addresses for 200 clients
const CLIENTS = 200;
const secret = Buffer.alloc(32, 3);

const backends = storeBackends({ secret });

const mac = (i: number): Mac =>
  `52:54:00:01:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` as Mac;

interface Reply {
  node: number;
  type: number;
  xid: number;
  yiaddr: string;
  serverId: string;
}

/** One node: a loaded LeaseStore, a real engine, and the server's group commit delivering replies to `deliver`. */
async function node(store: Store, n: number, deliver: (r: Reply) => void) {
  const serverIp = `10.99.0.${n + 1}`;
  const leases = new LeaseStore(store.leases, { shared: true });
  await leases.load();
  const config = dhcpConfigSchema.parse({
    mode: 'authoritative',
    serverIp,
    sharedLeases: true,
    subnets: [{ cidr: SUBNET, ranges: POOL, leaseTimeSec: 3600 }],
  });
  const engine = createDhcpEngine({
    config,
    log: silentLogger(),
    leases,
    localAddresses: [{ name: 'eth0', address: serverIp, prefix: 24 }],
    decide: (client) =>
      decideBoot({ client, host: undefined, loaders: LOADERS, httpBase: 'http://x', answerUnknown: false }),
    reservation: () => undefined,
  });
  const commits = createGroupCommit<Outgoing>(
    leases,
    process.env.DHCP_TEST_LOG ? createLogger({ level: 'info', destination: process.stderr }) : silentLogger(),
    (out) => {
      const d = decodePacket(out.bytes);
      if (!d.ok) throw new Error(d.reason);
      const sidOpt = d.packet.options.get(54)!;
      deliver({
        node: n,
        type: d.packet.options.get(53)![0],
        xid: d.packet.xid,
        yiaddr: d.packet.yiaddr,
        serverId: [...sidOpt].join('.'),
      });
    },
  );
  const receive = (bytes: Buffer) =>
    commits.add(() => engine.handle(bytes, { port: 67, from: { address: '0.0.0.0', port: 68 } }).replies);
  return { leases, engine, commits, receive, serverIp };
}

type Node = Awaited<ReturnType<typeof node>>;

/**
 * The broadcast domain: every node hears every packet. Half the clients are nearer the first node, half nearer
 * the second: the near node hears a packet at once, the far one a moment later, and what reached it in one loop
 * turn in the reverse order. So the two cursors hand the same addresses to different clients, and their claims
 * really race in the database.
 */
function network(nodes: Node[]) {
  const waiters = new Map<number, { types: number[]; done: (r: Reply | undefined) => void }>();
  /** OFFERs each node sent. */
  const offers = [0, 0];
  const later: Buffer[][] = [[], []];
  const deliver = (r: Reply) => {
    if (r.type === 2) offers[r.node]++;
    const w = waiters.get(r.xid);
    if (w && w.types.includes(r.type)) {
      waiters.delete(r.xid);
      w.done(r);
    }
  };
  const send = (bytes: Buffer, client: number) => {
    const near = nodes.length < 2 ? 0 : client % 2;
    nodes[near].receive(bytes);
    if (nodes.length < 2) return;
    const far = 1 - near;
    if (!later[far].length)
      setImmediate(() => {
        const batch = later[far].reverse();
        later[far] = [];
        for (const x of batch) nodes[far].receive(x);
      });
    later[far].push(bytes);
  };
  /** Sends and waits for the first reply of one of `types` (undefined after `ms`: the client's retry timer). */
  const exchange = (bytes: Buffer, xid: number, types: number[], ms = 1000) =>
    new Promise<Reply | undefined>((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(xid);
        resolve(undefined);
      }, ms);
      waiters.set(xid, {
        types,
        done: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
      send(bytes, xid >> 8);
    });
  return { deliver, exchange, send, offers };
}

/** A client's DORA with retries; the address it was ACKed, and how many DISCOVERs it took. */
async function dora(
  net: ReturnType<typeof network>,
  i: number,
  m: Mac = mac(i),
): Promise<{ ip: string; tries: number }> {
  for (let attempt = 1; attempt <= 40; attempt++) {
    const xid = (i << 8) | attempt;
    const offer = await net.exchange(mkBytes({ type: 1, mac: m, xid }), xid, [2]);
    if (!offer) continue;
    const ack = await net.exchange(
      mkBytes({ type: 3, mac: m, xid, opts: [sid(offer.serverId), reqIp(offer.yiaddr)] }),
      xid,
      [5, 6],
    );
    if (ack?.type === 5) return { ip: ack.yiaddr, tries: attempt };
  }
  throw new Error(`client ${m} got no ACK in 40 tries`);
}

interface Row {
  ip: number;
  mac: string;
  state: string;
}

for (const b of backends) {
  describe(`dhcp shared leases: ${b.name}`, { skip: b.skip }, () => {
    test(`two nodes, ${CLIENTS} clients at once, ${220} addresses: every ACK a unique address held in the table; a restart gives a client its old address`, async () => {
      const { store: a, again } = await b.open();
      // Two nodes' stores on one database. SQLite: both nodes on one connection (in one process a second
      // connection's BEGIN IMMEDIATE would block the thread while the first transaction waits on it); each node
      // still has its own in-memory table, so only the database arbitrates. PostgreSQL: two stores, two pools.
      const bStore = b.name === 'sqlite' ? a : await again();
      const nodes: Node[] = [];
      const net = network(nodes);
      nodes.push(await node(a, 0, net.deliver), await node(bStore, 1, net.deliver));
      const got = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => dora(net, i)));
      for (const nd of nodes) await nd.commits.idle();

      const ips = got.map((g) => g.ip);
      assert.equal(new Set(ips).size, CLIENTS, 'no address ACKed to two clients');
      const rows = await a.sql.all<Row>('SELECT ip, mac, state FROM dhcp_leases');
      const byIp = new Map(rows.map((r) => [intToIp(Number(r.ip)), r]));
      for (const [i, g] of got.entries()) {
        const r = byIp.get(g.ip);
        assert.equal(r?.mac, mac(i), `${g.ip}: the table names the client it was ACKed to`);
        assert.equal(r?.state, 'bound', `${g.ip} is bound`);
      }
      const bound = rows.filter((r) => r.state === 'bound');
      assert.equal(new Set(bound.map((r) => r.mac)).size, bound.length, 'no MAC bound twice');
      assert.equal(bound.length, CLIENTS);
      // The race was real: both nodes heard every DISCOVER, and claims lost (no OFFER), yet every client was served.
      const tries = got.reduce((n, g) => n + g.tries, 0);
      const [fromA, fromB] = net.offers;
      console.log(`# ${b.name}: ${CLIENTS} ACKs after ${tries} DISCOVERs; OFFERs from the nodes: ${fromA}, ${fromB}`);
      assert.ok(
        fromA + fromB < 2 * tries,
        `claims lost: ${fromA} + ${fromB} OFFERs for ${tries} DISCOVERs to two nodes`,
      );

      // Restart: a new node on the same database knows every lease; a returning client gets its address back.
      const fresh = await node(await again(), 0, net.deliver);
      nodes.splice(0, nodes.length, fresh);
      assert.equal(fresh.leases.byIp(got[7].ip)?.mac, mac(7));
      const back = await dora(net, 7);
      assert.equal(back.ip, got[7].ip, 'the returning MAC gets its old address');
      assert.equal(back.tries, 1);
      const newcomer = await dora(net, 500);
      assert.ok(!ips.includes(newcomer.ip), `a new client gets a free address (${newcomer.ip})`);
    });

    test('a client ACKed by one node is offered that same address by the other once the first is gone', async () => {
      const { store: a, again } = await b.open();
      const bStore = b.name === 'sqlite' ? a : await again();
      const nodes: Node[] = [];
      const net = network(nodes);
      nodes.push(await node(a, 0, net.deliver), await node(bStore, 1, net.deliver));
      // Both nodes hear every DISCOVER and both offer (each an address of its own choosing); the client takes one.
      const clients = [3, 4, 5, 6];
      const first = await Promise.all(clients.map((i) => dora(net, i)));
      for (const nd of nodes) await nd.commits.idle();
      const acked = first.map((g) => nodes.find((nd) => nd.leases.byIp(g.ip)?.state === 'bound')!);
      assert.ok(acked.every(Boolean));
      for (const [k, i] of clients.entries()) {
        // The node that ACKed dies; the other alone answers the client's next boot.
        const survivor = nodes.find((nd) => nd !== acked[k])!;
        const all = [...nodes];
        nodes.splice(0, nodes.length, survivor);
        const again2 = await dora(net, i);
        nodes.splice(0, nodes.length, ...all);
        assert.equal(again2.ip, first[k].ip, `${mac(i)} keeps the address the other node ACKed`);
        assert.ok(again2.tries <= 2, `${mac(i)}: at most one DISCOVER unanswered (${again2.tries} tries)`);
      }
      const rows = await a.sql.all<Row>("SELECT ip, mac, state FROM dhcp_leases WHERE state = 'bound'");
      for (const i of clients)
        assert.equal(rows.filter((r) => r.mac === mac(i)).length, 1, `${mac(i)} is bound to one address`);
    });

    test('a commit that fails sends no reply; memory is repaired and the client is served once the table is back', async () => {
      const { store: a } = await b.open();
      const nodes: Node[] = [];
      const net = network(nodes);
      const nd = await node(a, 0, net.deliver);
      nodes.push(nd);
      const first = await dora(net, 1);
      assert.equal(first.tries, 1);
      await a.sql.run('ALTER TABLE dhcp_leases RENAME TO dhcp_leases_away');
      const xid = 0x7001;
      // Shared leases: the OFFER claims its address, so even the DISCOVER waits on the (failing) commit.
      const lost = await net.exchange(mkBytes({ type: 1, mac: mac(2), xid }), xid, [2, 5, 6], 1500);
      assert.equal(lost, undefined, 'no OFFER left: its claim never reached the table');
      await nd.commits.idle();
      const renew = await net.exchange(
        mkBytes({ type: 3, mac: mac(1), xid: 0x7002, ciaddr: first.ip }),
        0x7002,
        [5, 6],
        1500,
      );
      assert.equal(renew, undefined, 'no ACK for a renewal that is not durable');
      await nd.commits.idle();
      await a.sql.run('ALTER TABLE dhcp_leases_away RENAME TO dhcp_leases');
      const second = await dora(net, 2);
      const row = await a.sql.get<Row>('SELECT ip, mac, state FROM dhcp_leases WHERE mac = ?', [mac(2)]);
      assert.equal(row?.state, 'bound');
      assert.equal(intToIp(Number(row!.ip)), second.ip);
      assert.equal((await dora(net, 1)).ip, first.ip, 'client 1 keeps its address');
      assert.equal(nd.leases.pendingWrites(), 0);
    });

    test('the real server on loopback: a failed commit sends no ACK, and the next commit serves the client', async () => {
      const { store: a } = await b.open();
      const leases = new LeaseStore(a.leases);
      await leases.load();
      const port = await freePort('udp');
      const lines: string[] = [];
      const waiters: (() => void)[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString());
          for (const w of waiters.splice(0)) w();
          cb();
        },
      });
      const logged = async (re: RegExp) => {
        while (!lines.some((l) => re.test(l))) await new Promise<void>((r) => waiters.push(r));
      };
      // A relay on 127.0.0.2 (giaddr): the server answers it unicast on the server port, all on loopback.
      const server = await startDhcpServer({
        config: dhcpConfigSchema.parse({
          mode: 'authoritative',
          port,
          serverIp: '127.0.0.1',
          bindToDevice: 'off',
          subnets: [{ cidr: '127.0.0.0/24', ranges: ['127.0.0.100-127.0.0.120'] }],
        }),
        log: createLogger({ level: 'info', destination: sink }),
        leases,
        decide: (client) =>
          decideBoot({ client, host: undefined, loaders: LOADERS, httpBase: 'http://x', answerUnknown: false }),
        reservation: () => undefined,
      });
      const relay = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      await new Promise<void>((r) => relay.bind(port, '127.0.0.2', () => r()));
      const got: Reply[] = [];
      const gotWaiters: (() => void)[] = [];
      relay.on('message', (m) => {
        const d = decodePacket(m);
        if (!d.ok) return;
        got.push({
          node: 0,
          type: d.packet.options.get(53)![0],
          xid: d.packet.xid,
          yiaddr: d.packet.yiaddr,
          serverId: '',
        });
        for (const w of gotWaiters.splice(0)) w();
      });
      const reply = async (xid: number) => {
        for (;;) {
          const r = got.find((x) => x.xid === xid);
          if (r) return r;
          await new Promise<void>((res) => gotWaiters.push(res));
        }
      };
      const send = (spec: Parameters<typeof mkBytes>[0]) =>
        relay.send(mkBytes({ giaddr: '127.0.0.2', ...spec }), port, '127.0.0.1');
      try {
        const m = mac(9);
        send({ type: 1, mac: m, xid: 1 });
        const offer = await reply(1);
        assert.equal(offer.type, 2);
        await a.sql.run('ALTER TABLE dhcp_leases RENAME TO dhcp_leases_away');
        send({ type: 3, mac: m, xid: 2, opts: [sid('127.0.0.1'), reqIp(offer.yiaddr)] });
        await logged(/lease commit failed/);
        // Nothing was sent for it; an INFORM (no lease write) round trip shows the socket is quiet and served in order.
        send({ type: 8, mac: m, xid: 3, ciaddr: '127.0.0.50' });
        assert.equal((await reply(3)).type, 5);
        assert.equal(got.filter((x) => x.xid === 2).length, 0, 'no ACK for a lease that is not in the table');
        await a.sql.run('ALTER TABLE dhcp_leases_away RENAME TO dhcp_leases');
        send({ type: 3, mac: m, xid: 4, opts: [sid('127.0.0.1'), reqIp(offer.yiaddr)] });
        const ack = await reply(4);
        assert.equal(ack.type, 5);
        assert.equal(ack.yiaddr, offer.yiaddr);
        const row = await a.sql.get<Row>('SELECT ip, mac, state FROM dhcp_leases WHERE mac = ?', [m]);
        assert.equal(row?.state, 'bound', 'the ACK left after its lease was committed');
      } finally {
        relay.close();
        await server.close();
      }
    });
  });
}
