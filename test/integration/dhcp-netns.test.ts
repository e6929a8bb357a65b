// Real clients against the real server, inside network namespaces this test makes (veth pairs,
// never a real network). Needs root (CI runs as root); skips with the reason otherwise.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  makeLab,
  netnsSupport,
  sh,
  spawnInNs,
  startServer,
  startTool,
  which,
  LineProc,
  type Lab,
} from '../fixtures/dhcp/netns.ts';

const why = netnsSupport();
const missing = ['udhcpc', 'dhclient', 'nmap', 'perfdhcp', 'dnsmasq'].filter((b) => !which(b));
const skip =
  why ??
  (missing.length
    ? `missing ${missing.join(', ')} (apt-get install busybox udhcpc isc-dhcp-client nmap kea-admin dnsmasq-base)`
    : undefined);
if (skip) console.log(`# dhcp netns tests skipped: ${skip}`);

const PXE_BIOS_OPTS: [number, string][] = [
  [93, '0000'],
  [60, Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex')],
];
const PXE_UEFI_OPTS: [number, string][] = [
  [93, '0007'],
  [60, Buffer.from('PXEClient:Arch:00007:UNDI:003000').toString('hex')],
  [97, '00' + '11'.repeat(16)],
];

describe('dhcp in network namespaces', { skip, concurrency: false }, () => {
  let lab: Lab;
  let dir: string;
  const procs: Pick<LineProc, 'stop'>[] = [];
  const spec = (name: string, s: object) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify(s));
    return f;
  };
  const server = async (name: string, s: object) => {
    const p = await startServer(lab.srv, spec(name, s));
    procs.push(p);
    return p;
  };
  const tool = async (ns = lab.cli, bind?: string) => {
    const p = await startTool(ns, bind);
    procs.push(p);
    return p;
  };
  const auth = (over: object = {}) => ({
    mode: 'authoritative',
    interface: lab.srvIf,
    serverIp: '10.99.0.1',
    subnets: [
      {
        cidr: '10.99.0.0/24',
        ranges: ['10.99.0.100-10.99.0.150'],
        router: '10.99.0.1',
        dns: ['10.99.0.1', '10.99.0.2'],
        domain: 'lab.example',
        ntp: ['10.99.0.3'],
        leaseTimeSec: 600,
      },
      { cidr: '10.60.0.0/24', ranges: ['10.60.0.50-10.60.0.59'], router: '10.60.0.1' },
    ],
    ...over,
  });
  const stopAll = async () => {
    while (procs.length) await procs.pop()!.stop();
  };
  const setMac = (mac: string) => sh(`ip -n ${lab.cli} link set ${lab.cliIf} address ${mac}`);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'rbdhcp-'));
    lab = makeLab('t');
  });
  after(async () => {
    await stopAll();
    lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('busybox udhcpc gets a lease with the subnet options; lease is durable in SQLite', async (t) => {
    t.after(stopAll);
    const db = join(dir, 'udhcpc.db');
    await server('udhcpc', { config: auth(), db });
    setMac('52:54:00:aa:00:01');
    const env = join(dir, 'udhcpc.env');
    const script = join(dir, 'udhcpc.sh');
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${env}\nexit 0\n`);
    chmodSync(script, 0o755);
    sh(
      `ip netns exec ${lab.cli} timeout 20 udhcpc -f -q -n -i ${lab.cliIf} -t 4 -T 1 -s ${script} -O ntpsrv -O domain`,
    );
    const vars = Object.fromEntries(
      readFileSync(env, 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.equal(vars.ip, '10.99.0.100');
    assert.equal(vars.subnet, '255.255.255.0');
    assert.equal(vars.router, '10.99.0.1');
    assert.equal(vars.dns?.trim(), '10.99.0.1 10.99.0.2');
    assert.equal(vars.domain, 'lab.example');
    assert.equal(vars.ntpsrv?.trim(), '10.99.0.3');
    assert.equal(vars.lease, '600');
    assert.equal(vars.serverid, '10.99.0.1');
    await stopAll();
    const rows = new Database(db, { readonly: true })
      .prepare('SELECT mac, state FROM dhcp_leases WHERE ip = (10<<24)+(99<<16)+100')
      .all();
    assert.deepEqual(rows, [{ mac: '52:54:00:aa:00:01', state: 'bound' }]);
  });

  test('ISC dhclient gets a lease with options; RELEASE (dhclient -r) frees it', async (t) => {
    t.after(stopAll);
    const srv = await server('dhclient', { config: auth(), db: join(dir, 'dhclient.db') });
    setMac('52:54:00:aa:00:02');
    const lf = join(dir, 'dhclient.leases'),
      pf = join(dir, 'dhclient.pid');
    const cf = join(dir, 'dhclient.conf');
    writeFileSync(
      cf,
      'request subnet-mask, routers, domain-name-servers, domain-name, ntp-servers, dhcp-lease-time;\n',
    );
    sh(
      `ip netns exec ${lab.cli} timeout 30 dhclient -1 -v -cf ${cf} -sf /bin/true -lf ${lf} -pf ${pf} ${lab.cliIf} 2>&1`,
    );
    const lease = readFileSync(lf, 'utf8');
    assert.match(lease, /fixed-address 10\.99\.0\.100;/);
    assert.match(lease, /option subnet-mask 255\.255\.255\.0;/);
    assert.match(lease, /option routers 10\.99\.0\.1;/);
    assert.match(lease, /option domain-name-servers 10\.99\.0\.1,10\.99\.0\.2;/);
    assert.match(lease, /option domain-name "lab\.example";/);
    assert.match(lease, /option dhcp-server-identifier 10\.99\.0\.1;/);
    await srv.waitFor((l) => l.event?.type === 'dhcp.ack' && l.event.mac === '52:54:00:aa:00:02', 5000, 'ack event');
    // dhclient -r unicasts RELEASE from the leased address: give the client its address as its script would.
    sh(`ip -n ${lab.cli} addr add 10.99.0.100/24 dev ${lab.cliIf}`);
    try {
      sh(
        `ip netns exec ${lab.cli} timeout 20 dhclient -r -v -cf ${cf} -sf /bin/true -lf ${lf} -pf ${pf} ${lab.cliIf} 2>&1`,
      );
      await srv.waitFor(
        (l) => l.event?.type === 'dhcp.release' && l.event.mac === '52:54:00:aa:00:02',
        5000,
        'release event',
      );
    } finally {
      sh(`ip -n ${lab.cli} addr flush dev ${lab.cliIf}`);
    }
    await stopAll();
    const row = new Database(join(dir, 'dhclient.db'), { readonly: true })
      .prepare('SELECT state FROM dhcp_leases WHERE mac = ?')
      .get('52:54:00:aa:00:02');
    assert.deepEqual(row, { state: 'released' });
  });

  test('nmap broadcast-dhcp-discover sees our offer', async (t) => {
    t.after(stopAll);
    await server('nmap', { config: auth(), db: join(dir, 'nmap.db') });
    // nmap's script reads the interface's own address (get_interface_info): give it a link-local one.
    sh(`ip -n ${lab.cli} addr add 169.254.10.9/16 dev ${lab.cliIf}`);
    t.after(() => sh(`ip -n ${lab.cli} addr flush dev ${lab.cliIf}`));
    const out = sh(
      `ip netns exec ${lab.cli} timeout 60 nmap -n --script broadcast-dhcp-discover --script-args broadcast-dhcp-discover.timeout=5 -e ${lab.cliIf} 2>&1`,
    );
    assert.match(out, /IP Offered: 10\.99\.0\.1\d\d/, out);
    assert.match(out, /Server Identifier: 10\.99\.0\.1\b/, out);
    assert.match(out, /Router: 10\.99\.0\.1\b/, out);
  });

  test('DECLINE: udhcpc -a finds the offered address in use, declines it, and gets another', async (t) => {
    t.after(stopAll);
    t.after(() => {
      try {
        sh(`ip -n ${lab.srv} addr del 10.99.0.100/24 dev ${lab.srvIf}`);
      } catch {
        /* gone */
      }
    });
    const srv = await server('decline', { config: auth(), db: join(dir, 'decline.db') });
    // Someone on the segment already uses .100: it answers ARP, as a stray static host would.
    sh(`ip -n ${lab.srv} addr add 10.99.0.100/24 dev ${lab.srvIf}`);
    setMac('52:54:00:aa:00:03');
    const env = join(dir, 'decline.env');
    const script = join(dir, 'decline.sh');
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "$ip" > ${env}\nexit 0\n`);
    chmodSync(script, 0o755);
    sh(`ip netns exec ${lab.cli} timeout 40 udhcpc -f -q -n -a500 -i ${lab.cliIf} -t 6 -T 1 -A 1 -s ${script}`);
    await srv.waitFor((l) => l.event?.type === 'dhcp.decline', 5000, 'decline event');
    assert.equal(readFileSync(env, 'utf8').trim(), '10.99.0.101');
  });

  test('INFORM from a configured client is answered unicast; relay (giaddr) selects the relay subnet; 4011 ignored when authoritative', async (t) => {
    t.after(stopAll);
    t.after(() => sh(`ip -n ${lab.cli} addr flush dev ${lab.cliIf}`));
    await server('inform', { config: auth(), db: join(dir, 'inform.db') });
    sh(`ip -n ${lab.cli} addr add 10.99.0.200/24 dev ${lab.cliIf}`);
    sh(`ip -n ${lab.srv} route replace 10.60.0.0/24 via 10.99.0.200`);
    const c = await tool(lab.cli, '0.0.0.0:68');
    c.send({ send: { type: 8, mac: '52:54:00:aa:00:04', xid: 41, ciaddr: '10.99.0.200' }, to: '10.99.0.1', port: 67 });
    const inf = await c.waitFor((l) => l.xid === 41, 5000, 'INFORM ack');
    assert.equal(inf.type, 5);
    assert.equal(inf.yiaddr, '0.0.0.0');
    assert.equal(inf.options['51'], undefined);
    assert.equal(inf.from, '10.99.0.1:67');
    assert.equal(inf.options['3'], '0a630001');
    // A relay agent on 10.60.0.1 (alias on the client side): the reply comes back to it on port 67.
    sh(`ip -n ${lab.cli} addr add 10.60.0.1/24 dev ${lab.cliIf}`);
    const relay = await tool(lab.cli, '10.60.0.1:67');
    relay.send({
      send: {
        type: 1,
        mac: '52:54:00:aa:00:05',
        xid: 42,
        giaddr: '10.60.0.1',
        opts: [[82, '0104657468ff'.slice(0, 12)]],
      },
      to: '10.99.0.1',
      port: 67,
    });
    const off = await relay.waitFor((l) => l.xid === 42, 5000, 'relayed OFFER');
    assert.equal(off.type, 2);
    assert.equal(off.yiaddr, '10.60.0.50');
    assert.equal(off.giaddr, '10.60.0.1');
    assert.equal(off.options['82'], '0104657468ff'.slice(0, 12));
  });

  test('perfdhcp as a relay agent: 200 full exchanges through giaddr, all leased from the relay subnet', async (t) => {
    t.after(stopAll);
    t.after(() => sh(`ip -n ${lab.cli} addr flush dev ${lab.cliIf}`));
    const cfg = auth({
      subnets: [
        { cidr: '10.99.0.0/24', ranges: ['10.99.0.100-10.99.0.150'] },
        { cidr: '10.70.0.0/16', ranges: ['10.70.1.0-10.70.3.255'], router: '10.70.0.1' },
      ],
    });
    const db = join(dir, 'perf.db');
    await server('perf', { config: cfg, db, quiet: true });
    sh(`ip -n ${lab.cli} addr add 10.70.0.1/16 dev ${lab.cliIf}`);
    sh(`ip -n ${lab.srv} route replace 10.70.0.0/16 via 10.70.0.1 dev ${lab.srvIf} onlink`);
    const out = sh(
      `ip netns exec ${lab.cli} timeout 60 perfdhcp -4 -l 10.70.0.1 -r 200 -R 200 -n 200 -p 20 -W 2000000 10.99.0.1 2>&1 || true`,
    );
    const m =
      /sent packets: (\d+)[\s\S]*?received packets: (\d+)[\s\S]*?sent packets: (\d+)[\s\S]*?received packets: (\d+)/.exec(
        out,
      );
    assert.ok(m, out);
    assert.ok(Number(m[4]) >= 190, `ACKs received ${m[4]} of ${m[3]} requests:\n${out}`);
    await stopAll();
    const n = new Database(db, { readonly: true })
      .prepare("SELECT count(*) AS n FROM dhcp_leases WHERE state = 'bound' AND subnet = '10.70.0.0/16'")
      .get() as { n: number };
    assert.ok(n.n >= 190, `bound leases ${n.n}`);
  });

  test('pool exhaustion: no offer and a NAK, answered fast, and the server idles (no busy loop)', async (t) => {
    t.after(stopAll);
    const srv = await server('exhaust', {
      config: auth({ subnets: [{ cidr: '10.99.0.0/24', ranges: ['10.99.0.100-10.99.0.101'] }] }),
      db: join(dir, 'exhaust.db'),
    });
    const c = await tool(lab.cli, '0.0.0.0:68');
    sh(
      `ip -n ${lab.cli} addr add 169.254.10.1/16 dev ${lab.cliIf}; ip -n ${lab.cli} route add 255.255.255.255/32 dev ${lab.cliIf}`,
    );
    t.after(() => sh(`ip -n ${lab.cli} addr flush dev ${lab.cliIf}; ip -n ${lab.cli} route flush dev ${lab.cliIf}`));
    for (const [i, mac] of ['52:54:00:bb:00:01', '52:54:00:bb:00:02'].entries()) {
      c.send({ send: { type: 1, mac, xid: 100 + i }, to: '255.255.255.255', port: 67 });
      const o = await c.waitFor((l) => l.xid === 100 + i, 5000, 'offer');
      c.send({
        send: {
          type: 3,
          mac,
          xid: 200 + i,
          opts: [
            [54, '0a630001'],
            [50, Buffer.from(o.yiaddr.split('.').map(Number)).toString('hex')],
          ],
        },
        to: '255.255.255.255',
        port: 67,
      });
      assert.equal((await c.waitFor((l) => l.xid === 200 + i, 5000, 'ack')).type, 5);
    }
    for (let i = 0; i < 100; i++)
      c.send({ send: { type: 1, mac: '52:54:00:bb:00:03', xid: 300 + i }, to: '255.255.255.255', port: 67 });
    const started = Date.now();
    c.send({
      send: { type: 3, mac: '52:54:00:bb:00:03', xid: 999, opts: [[50, '0a630064']] },
      to: '255.255.255.255',
      port: 67,
    });
    const nak = await c.waitFor((l) => l.xid === 999, 5000, 'NAK');
    assert.equal(nak.type, 6);
    assert.ok(Date.now() - started < 3000, 'NAK after 100 exhausted DISCOVERs came quickly');
    assert.equal(c.lines.filter((l) => l.xid >= 300 && l.xid < 400).length, 0, 'no offers from an exhausted pool');
    // CPU used by the server over an idle second, from /proc: a spinning server would use ~100 ticks.
    const ticks = () => {
      const f = readFileSync(`/proc/${srv.lines[0].pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(f[11]) + Number(f[12]);
    };
    const before = ticks();
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(ticks() - before < 20, `server used ${ticks() - before} ticks while idle`);
  });

  test('restart keeps leases: same SQLite file, the old client keeps its address, a new one gets the next', async (t) => {
    t.after(stopAll);
    const db = join(dir, 'restart.db');
    const c = await tool(lab.cli, '0.0.0.0:68');
    sh(
      `ip -n ${lab.cli} addr add 169.254.10.2/16 dev ${lab.cliIf}; ip -n ${lab.cli} route add 255.255.255.255/32 dev ${lab.cliIf}`,
    );
    t.after(() => sh(`ip -n ${lab.cli} addr flush dev ${lab.cliIf}; ip -n ${lab.cli} route flush dev ${lab.cliIf}`));
    const dora = async (mac: string, xid: number) => {
      c.send({ send: { type: 1, mac, xid }, to: '255.255.255.255', port: 67 });
      const o = await c.waitFor((l) => l.xid === xid && l.type === 2, 5000, 'offer');
      c.send({
        send: {
          type: 3,
          mac,
          xid: xid + 1,
          opts: [
            [54, '0a630001'],
            [50, Buffer.from(o.yiaddr.split('.').map(Number)).toString('hex')],
          ],
        },
        to: '255.255.255.255',
        port: 67,
      });
      const a = await c.waitFor((l) => l.xid === xid + 1, 5000, 'ack');
      assert.equal(a.type, 5);
      return a.yiaddr as string;
    };
    const s1 = await server('restart1', { config: auth(), db });
    assert.equal(await dora('52:54:00:cc:00:01', 500), '10.99.0.100');
    await s1.stop();
    procs.splice(procs.indexOf(s1), 1);
    await server('restart2', { config: auth(), db });
    assert.equal(await dora('52:54:00:cc:00:02', 510), '10.99.0.101', 'the new server knows .100 is taken');
    assert.equal(await dora('52:54:00:cc:00:01', 520), '10.99.0.100', 'the old client keeps its address');
  });

  test('fuzz over the real socket: 50,000 random/mutated packets, no crash, correct answers after', async (t) => {
    t.after(stopAll);
    const hosts = { '52:54:00:dd:00:01': { inBuild: true, loader: 'native', ip: '10.99.0.20' } };
    const srv = await server('fuzz', { config: auth(), db: join(dir, 'fuzz.db'), quiet: true, hosts });
    const c = await tool(lab.cli, '0.0.0.0:68');
    sh(
      `ip -n ${lab.cli} addr add 169.254.10.3/16 dev ${lab.cliIf}; ip -n ${lab.cli} route add 255.255.255.255/32 dev ${lab.cliIf}; ip -n ${lab.cli} route add 10.99.0.0/24 dev ${lab.cliIf}`,
    );
    t.after(() => sh(`ip -n ${lab.cli} addr flush dev ${lab.cliIf}; ip -n ${lab.cli} route flush dev ${lab.cliIf}`));
    // A client holds a lease before the storm; the fuzz then exhausts the pool with random MACs.
    c.send({ send: { type: 1, mac: '52:54:00:dd:00:02', xid: 11 }, to: '255.255.255.255', port: 67 });
    const first = await c.waitFor((l) => l.xid === 11, 5000, 'offer before fuzz');
    const ipHex = Buffer.from(first.yiaddr.split('.').map(Number)).toString('hex');
    c.send({
      send: {
        type: 3,
        mac: '52:54:00:dd:00:02',
        xid: 12,
        opts: [
          [54, '0a630001'],
          [50, ipHex],
        ],
      },
      to: '255.255.255.255',
      port: 67,
    });
    assert.equal((await c.waitFor((l) => l.xid === 12, 5000, 'ack before fuzz')).type, 5);
    const count = Number(process.env.DHCP_SOCKET_FUZZ ?? 50_000);
    c.send({ fuzz: count, seed: 7, to: '255.255.255.255', port: 67 });
    await c.waitFor((l) => l.fuzzed === count, Math.max(120_000, count / 100), 'fuzz sent');
    c.send({ fuzz: 2_000, seed: 8, to: '10.99.0.1', port: 67 });
    await c.waitFor((l) => l.fuzzed === 2000, 60_000, 'unicast fuzz sent');
    assert.equal(srv.child.exitCode, null, 'server still running');
    // The kernel queue may still be full of fuzz when the probe is sent (a full queue drops it): ask
    // again every 500 ms like a real client until the deadline.
    const ask = async (cmd: object, xid: number, what: string) => {
      for (const deadline = Date.now() + 30_000; ;) {
        c.send(cmd);
        try {
          return await c.waitFor((l) => l.xid === xid, 500, what);
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
    };
    const o = await ask(
      {
        send: { type: 1, mac: '52:54:00:dd:00:01', xid: 0xabcdef, opts: PXE_BIOS_OPTS },
        to: '255.255.255.255',
        port: 67,
      },
      0xabcdef,
      'offer after fuzz',
    );
    assert.equal(o.type, 2);
    assert.equal(o.yiaddr, '10.99.0.20');
    assert.equal(o.file, 'pxelinux.0');
    const again = await ask(
      { send: { type: 3, mac: '52:54:00:dd:00:02', xid: 13, opts: [[50, ipHex]] }, to: '255.255.255.255', port: 67 },
      13,
      'INIT-REBOOT ack after fuzz',
    );
    assert.equal(again.type, 5);
    assert.equal(again.yiaddr, first.yiaddr);
  });

  test('multi-homed: two directly attached subnets, each client leased on its own interface with its own server id (SO_BINDTOIFINDEX)', async (t) => {
    const id = `m${process.pid % 100000}`;
    const s = `rbdhcp-${id}-s`,
      a = `rbdhcp-${id}-a`,
      b = `rbdhcp-${id}-b`;
    const clean = () => {
      for (const ns of [s, a, b]) spawnSync('ip', ['netns', 'del', ns]);
    };
    clean();
    const local: Pick<LineProc, 'stop'>[] = [];
    t.after(async () => {
      for (const p of local) await p.stop();
      clean();
    });
    sh(`ip netns add ${s}; ip netns add ${a}; ip netns add ${b}; ip -n ${s} link set lo up`);
    sh(`ip link add rb${id}sa netns ${s} type veth peer name rb${id}ca netns ${a}`);
    sh(`ip link add rb${id}sb netns ${s} type veth peer name rb${id}cb netns ${b}`);
    sh(`ip -n ${s} addr add 10.99.0.1/24 dev rb${id}sa; ip -n ${s} addr add 10.98.0.1/24 dev rb${id}sb`);
    sh(
      `ip -n ${s} link set rb${id}sa up; ip -n ${s} link set rb${id}sb up; ip -n ${a} link set rb${id}ca up; ip -n ${b} link set rb${id}cb up`,
    );
    const f = join(dir, 'multi.json');
    writeFileSync(
      f,
      JSON.stringify({
        config: {
          mode: 'authoritative',
          interface: `rb${id}sa,rb${id}sb`,
          bindToDevice: 'required',
          subnets: [
            { cidr: '10.99.0.0/24', ranges: ['10.99.0.100-10.99.0.110'], router: '10.99.0.1' },
            { cidr: '10.98.0.0/24', ranges: ['10.98.0.100-10.98.0.110'], router: '10.98.0.1' },
          ],
        },
        db: join(dir, 'multi.db'),
      }),
    );
    local.push(await startServer(s, f));
    const script = join(dir, 'multi.sh');
    writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "$ip $serverid $router" > "$OUT"\nexit 0\n');
    chmodSync(script, 0o755);
    for (const [ns, ifc, want] of [
      [a, `rb${id}ca`, '10.99.0.100 10.99.0.1 10.99.0.1'],
      [b, `rb${id}cb`, '10.98.0.100 10.98.0.1 10.98.0.1'],
    ]) {
      const out = join(dir, `multi-${ns}.out`);
      sh(`OUT=${out} ip netns exec ${ns} timeout 20 udhcpc -f -q -n -i ${ifc} -t 4 -T 1 -s ${script}`);
      assert.equal(readFileSync(out, 'utf8').trim(), want, ns);
    }
  });

  test('without interface binding (bindToDevice off): replies still leave through the server-id address', async (t) => {
    t.after(stopAll);
    await server('nobind', { config: auth({ bindToDevice: 'off' }), db: join(dir, 'nobind.db') });
    setMac('52:54:00:aa:00:09');
    const env = join(dir, 'nobind.env');
    const script = join(dir, 'nobind.sh');
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "$ip $serverid" > ${env}\nexit 0\n`);
    chmodSync(script, 0o755);
    // The server namespace has no default route: a broadcast from the wildcard socket would fail with ENETUNREACH.
    sh(`ip netns exec ${lab.cli} timeout 20 udhcpc -f -q -n -i ${lab.cliIf} -t 4 -T 1 -s ${script}`);
    assert.equal(readFileSync(env, 'utf8').trim(), '10.99.0.100 10.99.0.1');
  });

  test('proxy mode beside dnsmasq (site DHCP, no PXE options): address from dnsmasq, boot file from us (BIOS on 67, UEFI via 4011)', async (t) => {
    const site = makeLab('p', { site: true });
    const local: Pick<LineProc, 'stop'>[] = [];
    t.after(async () => {
      for (const p of local) await p.stop();
      site.cleanup();
    });
    const dm = new LineProc(
      spawnInNs(site.site!, [
        'dnsmasq',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--no-ping',
        `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
        '--dhcp-range=10.99.0.50,10.99.0.60,255.255.255.0,10m',
        '--dhcp-authoritative',
        '--log-dhcp',
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ]),
    );
    local.push(dm);
    const ps = join(dir, 'proxy.json');
    writeFileSync(
      ps,
      JSON.stringify({
        config: { mode: 'proxy', interface: site.srvIf, serverIp: '10.99.0.1' },
        db: join(dir, 'proxy.db'),
        hosts: {
          '52:54:00:ee:00:01': { inBuild: true, loader: 'native' },
          '52:54:00:ee:00:02': { inBuild: true, loader: 'native' },
        },
      }),
    );
    const srv = await startServer(site.srv, ps);
    local.push(srv);
    const c = await startTool(site.cli, '0.0.0.0:68');
    local.push(c);
    sh(
      `ip -n ${site.cli} addr add 169.254.10.4/16 dev ${site.cliIf}; ip -n ${site.cli} route add 255.255.255.255/32 dev ${site.cliIf}`,
    );
    // Wait until dnsmasq answers (it starts in the background): retry DISCOVER with a deadline.
    let xid = 1000;
    const offers = async (mac: string, opts: [number, string][]) => {
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        const mine = xid++;
        // Broadcast flag, as OVMF sets it: dnsmasq would otherwise unicast to the unconfigured client.
        c.send({ send: { type: 1, mac, xid: mine, flags: 0x8000, opts }, to: '255.255.255.255', port: 67 });
        try {
          const a = await c.waitFor((l) => l.xid === mine && l.from.startsWith('10.99.0.254'), 1000, 'site offer');
          const b = await c.waitFor((l) => l.xid === mine && l.from.startsWith('10.99.0.1:'), 3000, 'proxy offer');
          return { site: a, proxy: b, xid: mine };
        } catch {
          /* not up yet */
        }
      }
      throw new Error(`no offers from both servers; dnsmasq: ${dm.stderr.join('').slice(-1500)}`);
    };
    const bios = await offers('52:54:00:ee:00:01', PXE_BIOS_OPTS);
    assert.match(bios.site.yiaddr, /^10\.99\.0\.(5\d|60)$/);
    assert.equal(bios.site.file, '');
    assert.equal(bios.proxy.yiaddr, '0.0.0.0');
    assert.equal(bios.proxy.file, 'pxelinux.0');
    assert.equal(bios.proxy.siaddr, '10.99.0.1');
    assert.equal(Buffer.from(bios.proxy.options['60'], 'hex').toString(), 'PXEClient');
    assert.equal(bios.proxy.options['43'], '060108ff');
    // UEFI: the proxy offer has no option 43; after taking dnsmasq's address, it asks us on 4011.
    const uefi = await offers('52:54:00:ee:00:02', PXE_UEFI_OPTS);
    assert.equal(uefi.proxy.options['43'], undefined);
    const ip = uefi.site.yiaddr as string;
    c.send({
      send: {
        type: 3,
        mac: '52:54:00:ee:00:02',
        xid: 77,
        flags: 0x8000,
        opts: [[54, '0a6300fe'], [50, Buffer.from(ip.split('.').map(Number)).toString('hex')], ...PXE_UEFI_OPTS],
      },
      to: '255.255.255.255',
      port: 67,
    });
    const ack = await c.waitFor((l) => l.xid === 77 && l.type === 5, 5000, 'site ACK');
    assert.equal(ack.from.split(':')[0], '10.99.0.254');
    sh(`ip -n ${site.cli} addr add ${ip}/24 dev ${site.cliIf}`);
    const c2 = await startTool(site.cli, `${ip}:4011`);
    local.push(c2);
    c2.send({
      send: {
        type: 3,
        mac: '52:54:00:ee:00:02',
        xid: 78,
        ciaddr: ip,
        opts: [...PXE_UEFI_OPTS, [43, '470480000000ff']],
      },
      to: '10.99.0.1',
      port: 4011,
    });
    const boot = await c2.waitFor((l) => l.xid === 78, 5000, 'port 4011 ACK');
    assert.equal(boot.type, 5);
    assert.equal(boot.file, 'grubx64.efi');
    assert.equal(boot.siaddr, '10.99.0.1');
    assert.equal(boot.from, '10.99.0.1:4011');
    assert.equal(boot.options['43'], '470480000000ff');
    assert.equal(boot.options['97'], PXE_UEFI_OPTS[2][1]);
    assert.equal(
      c.lines.filter((l) => l.xid === 77 && l.from.startsWith('10.99.0.1:')).length,
      0,
      'the proxy stays out of the site REQUEST',
    );
    // Unknown machine: dnsmasq answers, we stay silent.
    const unk = 5000;
    c.send({
      send: { type: 1, mac: '52:54:00:ee:00:99', xid: unk, flags: 0x8000, opts: PXE_BIOS_OPTS },
      to: '255.255.255.255',
      port: 67,
    });
    await c.waitFor((l) => l.xid === unk && l.from.startsWith('10.99.0.254'), 5000, 'site offer to unknown');
    // Packets are handled in order: once the known host's next proxy offer is here, any answer to the unknown one would be too.
    c.send({
      send: { type: 1, mac: '52:54:00:ee:00:01', xid: unk + 1, flags: 0x8000, opts: PXE_BIOS_OPTS },
      to: '255.255.255.255',
      port: 67,
    });
    await c.waitFor((l) => l.xid === unk + 1 && l.from.startsWith('10.99.0.1:'), 5000, 'proxy offer to the known host');
    assert.equal(c.lines.filter((l) => l.xid === unk && l.from.startsWith('10.99.0.1:')).length, 0);
    await srv.waitFor((l) => l.event?.type === 'dhcp.discover' && l.event.mac === '52:54:00:ee:00:99', 5000);
    assert.ok(existsSync(join(dir, 'dnsmasq.leases')));
  });
});
