// Crash proof: a simulated rollout of 50 hosts (DHCP through a relay on loopback, kickstart, installer
// log, built callback) while rackboot is killed with SIGKILL at random moments 20 times and restarted.
// Afterwards: every build a client saw acknowledged (2xx) is built, every lease a client saw ACKed is in
// the lease table for that client, and every host is in a state the API explains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { REPO, tempDir } from '../support/core.ts';
import { freePort } from '../support/ports.ts';

const BIN = join(REPO, 'bin/rackboot.mjs');
const TOKEN = 'crash-test-admin-token';
const HOSTS = 50;
const KILLS = 20;
const RELAY = '127.0.0.2';

// ---- a DHCP relay agent's view (RFC 2131 4.1: replies to giaddr, server port), own codec ----
function dhcpPacket(mac: string, xid: number, type: number, extra: [number, Buffer][] = []): Buffer {
  const b = Buffer.alloc(300);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b[3] = 1;
  b.writeUInt32BE(xid, 4);
  Buffer.from(RELAY.split('.').map(Number)).copy(b, 24); // giaddr
  Buffer.from(mac.split(':').map((h) => parseInt(h, 16))).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  let i = 240;
  for (const [code, val] of [
    [53, Buffer.from([type])],
    [60, Buffer.from('PXEClient:Arch:00000:UNDI:002001')],
    [93, Buffer.from([0, 0])],
    ...extra,
  ] as [number, Buffer][]) {
    b[i++] = code;
    b[i++] = val.length;
    val.copy(b, i);
    i += val.length;
  }
  b[i] = 255;
  return b;
}
function dhcpReply(b: Buffer): { xid: number; type: number; yiaddr: string; serverId?: Buffer } | undefined {
  if (b.length < 240 || b.readUInt32BE(236) !== 0x63825363) return undefined;
  let type = 0;
  let serverId: Buffer | undefined;
  for (let i = 240; i < b.length && b[i] !== 255;) {
    if (b[i] === 0) {
      i++;
      continue;
    }
    const code = b[i];
    const len = b[i + 1];
    if (code === 53) type = b[i + 2];
    if (code === 54) serverId = b.subarray(i + 2, i + 2 + len);
    i += 2 + len;
  }
  return { xid: b.readUInt32BE(4), type, yiaddr: `${b[16]}.${b[17]}.${b[18]}.${b[19]}`, serverId };
}

function httpCall(method: string, url: string, localAddress: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        localAddress,
        agent: false,
        timeout: 3000,
        headers: body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {},
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

test(
  `kill -9 ${KILLS} times during a ${HOSTS}-host rollout: acknowledged builds are built, acknowledged leases intact, every state explained`,
  { timeout: 170_000 },
  async () => {
    const dir = tempDir('rackboot-crash-');
    cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
    mkdirSync(join(dir, 'tftpboot'), { recursive: true });
    const [httpPort, dhcpPort, syslogPort] = [await freePort('tcp'), await freePort('udp'), await freePort('udp')];
    writeFileSync(
      join(dir, 'rackboot.yaml'),
      [
        'listen: 127.0.0.1',
        `httpPort: ${httpPort}`,
        'tftpPort: 0',
        `publicUrl: http://127.0.0.1:${httpPort}`,
        'serverIp: 127.0.0.1',
        'dataDir: data',
        'profilesDir: profiles',
        'tftpRoot: tftpboot',
        'imagesDir: images',
        'logFormat: json',
        `syslog: { port: ${syslogPort} }`,
        'dhcp:',
        '  mode: authoritative',
        `  port: ${dhcpPort}`,
        '  serverIp: 127.0.0.1',
        '  bindToDevice: "off"',
        '  subnets: [{ cidr: 127.0.0.0/24, ranges: ["127.0.0.100-127.0.0.199"], serverIp: 127.0.0.1, leaseTimeSec: 3600 }]',
        '',
      ].join('\n'),
    );
    let out = '';
    let proc: ChildProcess | undefined;
    const start = async () => {
      const p = spawn(process.execPath, [BIN, 'serve', '--config', join(dir, 'rackboot.yaml')], {
        env: { ...process.env, RACKBOOT_ADMIN_TOKEN: TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let mine = '';
      p.stdout!.on('data', (d) => {
        mine += d;
        out += d;
      });
      p.stderr!.on('data', (d) => {
        mine += d;
        out += d;
      });
      const deadline = Date.now() + 20_000;
      while (!mine.includes('rackboot serving')) {
        if (p.exitCode !== null) throw new Error(`rackboot exited ${p.exitCode}: ${mine}`);
        if (Date.now() > deadline) throw new Error(`rackboot did not start: ${mine}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      proc = p;
    };
    const base = `http://127.0.0.1:${httpPort}`;
    const api = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(base + '/api' + path, {
        method,
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, json: (await r.json().catch(() => undefined)) as unknown };
    };

    await start();
    const macs = Array.from({ length: HOSTS }, (_, n) => `52:54:00:c0:00:${n.toString(16).padStart(2, '0')}`);
    const urls: { ks: string; built: string }[] = [];
    for (const [n, mac] of macs.entries()) {
      assert.equal(
        (await api('POST', '/hosts', { mac, hostname: `crash${n}`, profile: 'rhvh-base', rack: 'C1' })).status,
        201,
      );
      const b = (await api('POST', `/hosts/${mac}/build`)).json as { kickstartUrl: string; builtUrl: string };
      urls.push({ ks: b.kickstartUrl, built: b.builtUrl });
    }

    // The relay: one socket on 127.0.0.2:<dhcp port> (the server answers a relay at giaddr, server port).
    const relay = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => relay.bind(dhcpPort, RELAY, () => r()));
    const waiting = new Map<number, (r: NonNullable<ReturnType<typeof dhcpReply>>) => void>();
    relay.on('message', (m) => {
      const r = dhcpReply(m);
      if (r) waiting.get(r.xid)?.(r);
    });
    const exchange = (pkt: Buffer, xid: number): Promise<NonNullable<ReturnType<typeof dhcpReply>> | undefined> =>
      new Promise((resolve) => {
        const t = setTimeout(() => {
          waiting.delete(xid);
          resolve(undefined);
        }, 700);
        waiting.set(xid, (r) => {
          clearTimeout(t);
          waiting.delete(xid);
          resolve(r);
        });
        relay.send(pkt, dhcpPort, '127.0.0.1');
      });

    const ackedLease = new Map<string, string>(); // mac -> ip the server ACKed
    const ackedBuilt = new Set<string>();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const syslogOut = dgram.createSocket('udp4');
    let giveUpAt = Infinity; // set when the kills are over: every host's loop ends by then, built or not
    const host = async (n: number) => {
      const mac = macs[n];
      await sleep(Math.random() * 20_000); // power-on spread over the kill window
      let ip: string | undefined;
      let step = 0;
      while (!ackedBuilt.has(mac) && Date.now() < giveUpAt) {
        try {
          if (!ip) {
            const xid = randomBytes(4).readUInt32BE(0);
            const offer = await exchange(dhcpPacket(mac, xid, 1), xid);
            if (!offer || offer.type !== 2) {
              await sleep(200);
              continue;
            }
            const ack = await exchange(
              dhcpPacket(mac, xid, 3, [
                [50, Buffer.from(offer.yiaddr.split('.').map(Number))],
                [54, offer.serverId ?? Buffer.from([127, 0, 0, 1])],
              ]),
              xid,
            );
            if (!ack || ack.type !== 5) {
              await sleep(200);
              continue;
            }
            ackedLease.set(mac, ack.yiaddr);
            ip = ack.yiaddr;
          }
          if (step === 0) {
            if ((await httpCall('GET', urls[n].ks, ip)) !== 200) throw new Error('ks');
            step = 1;
            await sleep(50 + Math.random() * 300);
          }
          if (step === 1) {
            // rsyslog (what Anaconda forwards through) resends until the line is taken; we resend until the API shows it.
            await new Promise<void>((r) => {
              const s = dgram.createSocket('udp4');
              s.bind(0, ip, () =>
                s.send(`<30>May  1 10:00:00 localhost anaconda: ${mac} installing`, syslogPort, '127.0.0.1', () => {
                  s.close();
                  r();
                }),
              );
            });
            await sleep(300);
            const seen =
              ((await api('GET', `/hosts/${mac}/logs`)).json as { lines?: unknown[] } | undefined)?.lines?.length ?? 0;
            if (seen === 0) continue;
            step = 2;
            await sleep(50 + Math.random() * 300);
          }
          const status = await httpCall('POST', urls[n].built, ip);
          if (status >= 200 && status < 300) ackedBuilt.add(mac);
          else throw new Error(`built ${status}`);
        } catch {
          await sleep(100 + Math.random() * 200); // the server is down or restarting: retry as curl --retry would
        }
      }
    };
    const rollout = Promise.all(macs.map((_, n) => host(n)));

    const builtAtKill: number[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        await sleep(150 + Math.random() * 800);
        proc!.kill('SIGKILL');
        await once(proc!, 'exit');
        builtAtKill.push(ackedBuilt.size);
        await start();
      }
    } finally {
      giveUpAt = Date.now() + 60_000;
    }
    await rollout;
    assert.equal(ackedBuilt.size, HOSTS, `the rollout finished after the kills (${ackedBuilt.size}/${HOSTS} built)`);
    assert.ok(
      builtAtKill.some((n) => n > 0 && n < HOSTS),
      `kills happened mid-rollout (built at each kill: ${builtAtKill.join(',')})`,
    );

    try {
      const hosts = (await api('GET', '/hosts')).json as { mac: string; state: string }[];
      assert.equal(hosts.length, HOSTS);
      for (const mac of ackedBuilt)
        assert.equal(hosts.find((h) => h.mac === mac)!.state, 'built', `${mac} was acknowledged built`);
      for (const h of hosts) {
        const v = (await api('GET', `/hosts/${h.mac}`)).json as {
          state: string;
          build?: { status: string };
          events: { type: string }[];
        };
        assert.equal(v.state, 'built', `${h.mac}: ${v.state}`);
        assert.equal(v.build?.status, 'built');
      }
      // leases: each client's ACKed address is in the lease table, bound to that client; a new DISCOVER gets the same address
      const db = spawnSync(
        process.execPath,
        [
          '-e',
          `const D=require(${JSON.stringify(join(REPO, 'node_modules/better-sqlite3'))});const d=new D(${JSON.stringify(join(dir, 'data/rackboot.db'))},{readonly:true});console.log(JSON.stringify({i:d.pragma('integrity_check',{simple:true}),l:d.prepare("SELECT ip,mac,state FROM dhcp_leases").all()}))`,
        ],
        { encoding: 'utf8' },
      );
      const { i, l } = JSON.parse(db.stdout) as { i: string; l: { ip: number; mac: string; state: string }[] };
      assert.equal(i, 'ok');
      const ipText = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
      for (const [mac, ip] of ackedLease) {
        const row = l.find((r) => ipText(r.ip) === ip);
        assert.ok(row, `lease ${ip} of ${mac} is in the table`);
        assert.equal(row.mac, mac, `lease ${ip} belongs to ${mac}`);
        assert.equal(row.state, 'bound');
      }
      const macsByIp = new Map<number, string>();
      for (const r of l)
        if (r.state === 'bound') {
          assert.ok(!macsByIp.has(r.ip), `${ipText(r.ip)} bound twice`);
          macsByIp.set(r.ip, r.mac);
        }
      for (const [mac, ip] of [...ackedLease].slice(0, 10)) {
        const xid = randomBytes(4).readUInt32BE(0);
        const offer = await exchange(dhcpPacket(mac, xid, 1), xid);
        assert.equal(offer?.yiaddr, ip, `${mac} is offered its address again after the crashes`);
      }
      assert.equal(ackedLease.size, HOSTS);
      // installer logs survived too: every line the API had shown before a later kill is still there
      const withLogs = (
        await Promise.all(
          macs.map(async (m) => ((await api('GET', `/hosts/${m}/logs`)).json as { lines: unknown[] }).lines.length),
        )
      ).filter((n) => n > 0).length;
      assert.equal(withLogs, HOSTS, `${withLogs} of ${HOSTS} hosts kept the installer log line they saw stored`);
    } finally {
      relay.close();
      syslogOut.close();
      proc!.kill('SIGTERM');
      await once(proc!, 'exit');
    }
    assert.doesNotMatch(out, /SQLITE_CORRUPT|malformed/i);
  },
);
