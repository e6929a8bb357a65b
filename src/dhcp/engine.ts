// The whole server path except the sockets: bytes in -> decode -> classify -> subnet -> lease
// store -> boot decision -> respond -> bytes out. The fuzzer and the integration tests drive this
// exact function; server.ts only moves datagrams.
import type { BootClient, BootDecision } from '../boot/decide.ts';
import type { Logger } from '../log.ts';
import type { Mac } from '../net/mac.ts';
import type { DhcpConfig, SubnetConfig, Cidr } from './config.ts';
import { cidrContains, parseCidr } from './config.ts';
import type { LeaseStore } from './leases.ts';
import type { DhcpPacket } from './packet.ts';
import { BOOTREQUEST, MSG_NAMES, MsgType, Opt, decodePacket, encodePacket, ipFromBytes, ipToInt } from './packet.ts';
import type { PxeClientInfo } from './pxe.ts';
import { classifyClient, clientMac } from './pxe.ts';
import type { LeaseOutcome, Reply } from './respond.ts';
import { respond } from './respond.ts';

export interface DhcpEvent {
  mac: Mac;
  type: string;
  ip?: string;
  detail?: string;
  arch?: number;
  ipxe?: boolean;
}
export interface DiscoveredMachine {
  mac: Mac;
  arch?: number;
  uuid?: string;
  ipxe: boolean;
  ip?: string;
}

export interface EngineDeps {
  config: DhcpConfig;
  log: Logger;
  leases: LeaseStore;
  decide(client: BootClient): BootDecision;
  reservation(mac: Mac): { ip: string; hostname?: string } | undefined;
  /** Optional reverse lookup so the dynamic pool never hands out an address reserved for another host. */
  reservedBy?(ip: string): Mac | undefined;
  onEvent?(ev: DhcpEvent): void;
  onDiscovered?(d: DiscoveredMachine): void;
  now?(): number;
  /** This host's IPv4 addresses (interface name, address, prefix) to pick our address per subnet. */
  localAddresses?: { name: string; address: string; prefix: number }[];
}

/** Where a datagram arrived. */
export interface Arrival {
  /** Local port: config.port (67) or config.proxyPort (4011). */
  port: number;
  from: { address: string; port: number };
  /** The receiving interface when the socket is bound to one (SO_BINDTOIFINDEX); else undefined. */
  iface?: string;
}

export interface Outgoing {
  bytes: Buffer;
  to: { address: string; port: number };
  type: number;
  /** Our address written as server identifier: server.ts sends from a socket bound to it when it can. */
  serverIp: string;
}

export type HandleResult = { replies: Outgoing[]; drop?: string };

interface SubnetRt {
  cfg: SubnetConfig;
  cidr: Cidr;
  key: string;
  serverIp?: string;
}
interface LeaseCtx {
  s: SubnetRt;
  key: string;
  mac: Mac;
  t: number;
  leaseSec: number;
  res?: { ip: string; hostname?: string };
}

export interface DhcpEngine {
  handle(bytes: Uint8Array, arrival: Arrival): HandleResult;
  /** The server identifier we use on a subnet (for tests and the start-up line). */
  serverIpFor(subnetCidr: string): string | undefined;
  /** Every address we may use as server identifier (configured or found on our interfaces). */
  serverIps(): string[];
}

const ZERO = '0.0.0.0';

export function createDhcpEngine(deps: EngineDeps): DhcpEngine {
  const { config, log, leases } = deps;
  const now = deps.now ?? Date.now;
  const locals = (deps.localAddresses ?? [])
    .map((a) => ({ ...a, n: ipToInt(a.address)! }))
    .filter((a) => a.n !== undefined);
  const subnets: SubnetRt[] = config.subnets.map((cfg) => {
    const cidr = parseCidr(cfg.cidr)!;
    const local = locals.find((l) => cidrContains(cidr, l.n));
    return { cfg, cidr, key: cfg.cidr, serverIp: cfg.serverIp ?? local?.address ?? config.serverIp };
  });
  leases.setPools(subnets.map((s) => ({ subnet: s.key, ranges: s.cfg.ranges })));
  const directSubnets = subnets.filter((s) => locals.some((l) => cidrContains(s.cidr, l.n)));
  const fallbackIp =
    config.serverIp ?? locals.find((l) => !l.address.startsWith('127.'))?.address ?? locals[0]?.address;

  const subnetOf = (ip: string): SubnetRt | undefined => {
    const n = ipToInt(ip);
    return n === undefined ? undefined : subnets.find((s) => cidrContains(s.cidr, n));
  };

  function selectSubnet(req: DhcpPacket, arrival: Arrival): SubnetRt | string {
    // RFC 2131 4.3.1: giaddr names the client's network; otherwise the interface it arrived on.
    if (req.giaddr !== ZERO) return subnetOf(req.giaddr) ?? `no subnet configured for relay giaddr ${req.giaddr}`;
    if (arrival.iface) {
      const mine = locals.filter((l) => l.name === arrival.iface);
      const s = subnets.find((x) => mine.some((l) => cidrContains(x.cidr, l.n)));
      if (s) return s;
    }
    if (req.ciaddr !== ZERO) {
      const s = subnetOf(req.ciaddr);
      if (s) return s;
    }
    if (directSubnets.length === 1) return directSubnets[0];
    if (subnets.length === 1) return subnets[0];
    return `cannot tell which of ${subnets.length} subnets the client is on (bind to an interface: dhcp.interface)`;
  }

  function proxyServerIp(req: DhcpPacket, arrival: Arrival): string | undefined {
    if (config.serverIp) return config.serverIp;
    if (arrival.iface) {
      const l = locals.find((x) => x.name === arrival.iface);
      if (l) return l.address;
    }
    const probe = ipToInt(req.giaddr !== ZERO ? req.giaddr : req.ciaddr !== ZERO ? req.ciaddr : arrival.from.address);
    if (probe !== undefined) {
      const l = locals.find((x) => x.prefix > 0 && (x.n ^ probe) >>> (32 - x.prefix) === 0);
      if (l) return l.address;
    }
    return fallbackIp;
  }

  function emit(ev: DhcpEvent): void {
    if (!deps.onEvent) return;
    try {
      deps.onEvent(ev);
    } catch (err) {
      log.warn({ err, mac: ev.mac }, 'dhcp onEvent hook threw');
    }
  }

  function decision(mac: Mac, client: PxeClientInfo): BootDecision | undefined {
    if (!client.bootClient) return undefined;
    try {
      return deps.decide({ mac, arch: client.arch, ipxe: client.ipxe });
    } catch (err) {
      log.error({ err, mac }, 'boot decision threw; answering without boot information');
      return { action: 'none', reason: 'boot decision failed' };
    }
  }

  function reservationFor(mac: Mac, s: SubnetRt): { ip: string; hostname?: string } | undefined {
    let r: { ip: string; hostname?: string } | undefined;
    try {
      r = deps.reservation(mac);
    } catch (err) {
      log.error({ err, mac }, 'reservation lookup threw');
      return undefined;
    }
    if (!r) return undefined;
    const n = ipToInt(r.ip);
    if (n === undefined || !cidrContains(s.cidr, n)) return undefined;
    return r;
  }

  function safeReservation(mac: Mac): { ip: string } | undefined {
    try {
      return deps.reservation(mac);
    } catch {
      return undefined;
    }
  }

  /** How many free addresses a DISCOVER tries to claim before it gives up (other nodes racing for each). */
  const OFFER_ATTEMPTS = 16;

  /** An address reserved for another host (never given out from the pool). */
  function reservedToOther(mac: Mac, ip: string): boolean {
    if (!deps.reservedBy) return false;
    const owner = deps.reservedBy(ip);
    return owner !== undefined && owner !== mac;
  }

  function drop(reason: string, level: 'debug' | 'info', extra?: object): HandleResult {
    log[level]({ ...extra, reason }, 'dhcp packet dropped');
    return { replies: [], drop: reason };
  }

  function bindIp(c: LeaseCtx, ip: string, dynamic: boolean): LeaseOutcome {
    const written = leases.bind({
      subnet: c.key,
      mac: c.mac,
      ip,
      expiresAt: c.t + c.leaseSec * 1000,
      dynamic,
      hostname: c.res?.hostname,
      now: c.t,
    });
    // Another node sharing the lease database gave it to another client since we looked: the client starts over.
    if (!written) return { kind: 'nak', message: `${ip} is leased to another client (by another node)` };
    return { kind: 'ack', ip, leaseSec: c.leaseSec, hostname: c.res?.hostname };
  }

  /** INIT-REBOOT / RENEW / REBIND check of an address the client already uses (RFC 2131 4.3.2). */
  function confirmIp(c: LeaseCtx, ip: string, how: string): LeaseOutcome {
    const { mac, res, t, key } = c;
    const n = ipToInt(ip)!;
    if (!cidrContains(c.s.cidr, n)) return { kind: 'nak', message: `${ip} is not on this network (${key})` };
    if (res)
      return res.ip === ip ? bindIp(c, ip, false) : { kind: 'nak', message: `${mac} is reserved ${res.ip}, not ${ip}` };
    const l = leases.byIp(ip, t);
    if (l && l.mac === mac && l.state !== 'declined') return bindIp(c, ip, l.dynamic);
    if (l && l.expiresAt >= t) return { kind: 'nak', message: `${ip} is leased to another client` };
    if (leases.inPool(key, n) && !reservedToOther(mac, ip)) return bindIp(c, ip, true);
    return { kind: 'nak', message: `${ip} is not an address this server gives out (${how})` };
  }

  /** Authoritative-mode lease state machine (RFC 2131 4.3). Returns the outcome or a reason to stay silent. */
  function leaseStep(
    type: number,
    req: DhcpPacket,
    mac: Mac,
    s: SubnetRt,
    serverIp: string,
    t: number,
  ): LeaseOutcome | string {
    const key = s.key;
    const leaseSec = s.cfg.leaseTimeSec;
    const sid = req.options.get(Opt.ServerId);
    const sidIp = sid && sid.length === 4 ? ipFromBytes(sid) : undefined;
    const reqIpOpt = req.options.get(Opt.RequestedIp);
    const reqIp = reqIpOpt && reqIpOpt.length === 4 ? ipFromBytes(reqIpOpt) : undefined;
    const res = reservationFor(mac, s);
    const c: LeaseCtx = { s, key, mac, t, leaseSec, res };
    switch (type) {
      case MsgType.Discover: {
        let ip: string | undefined,
          dynamic = true;
        if (res) {
          ip = res.ip;
          dynamic = false;
        }
        if (!ip) {
          const prev = leases.byMac(mac, key, t);
          if (
            prev &&
            prev.state !== 'declined' &&
            prev.dynamic &&
            leases.inPool(key, ipToInt(prev.ip)!) &&
            !reservedToOther(mac, prev.ip)
          )
            ip = prev.ip;
        }
        if (!ip && reqIp) {
          const n = ipToInt(reqIp)!;
          if (leases.inPool(key, n) && leases.isAvailableTo(reqIp, mac, t) && !reservedToOther(mac, reqIp)) ip = reqIp;
        }
        const veto = deps.reservedBy ? (ip: string) => reservedToOther(mac, ip) : undefined;
        // A claim fails only when another node took the address since we looked (shared lease database):
        // the next free one is tried, a bounded number of times.
        for (let attempt = 0; attempt < OFFER_ATTEMPTS; attempt++) {
          if (!ip) ip = leases.findFree(key, t, veto);
          if (!ip) return `pool of ${key} is exhausted: no address to offer ${mac}`;
          const held = leases.byIp(ip, t);
          // A client that already holds a longer lease on this address keeps it; otherwise hold it for the offer.
          if (held && held.mac === mac && held.state === 'bound' && held.expiresAt > t + config.offerHoldSec * 1000)
            return { kind: 'offer', ip, leaseSec, hostname: res?.hostname };
          if (leases.offer({ subnet: key, mac, ip, expiresAt: t + config.offerHoldSec * 1000, dynamic, now: t }))
            return { kind: 'offer', ip, leaseSec, hostname: res?.hostname };
          ip = undefined;
          dynamic = true;
        }
        return `no address claimed for ${mac} in ${OFFER_ATTEMPTS} tries: other nodes took each one first`;
      }
      case MsgType.Request: {
        if (sidIp !== undefined) {
          if (sidIp !== serverIp) {
            // RFC 2131 4.3.2: the client chose another server's offer; our hold goes back to the pool. Only an
            // offer: with shared leases another node may have offered and bound this very address to this client.
            const mine = leases.byMac(mac, key, t);
            if (mine && mine.state === 'offered') leases.release(mine.ip, mac, t, { offeredOnly: true });
            return `REQUEST for server ${sidIp}, not us (${serverIp})`;
          }
          const ip = reqIp ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
          if (!ip) return { kind: 'nak', message: 'REQUEST names no address (option 50)' };
          if (res)
            return res.ip === ip
              ? bindIp(c, ip, false)
              : { kind: 'nak', message: `${mac} is reserved ${res.ip}, not ${ip}` };
          const l = leases.byIp(ip, t);
          if (l && l.mac === mac && (l.state === 'offered' || l.state === 'bound' || l.state === 'released'))
            return bindIp(c, ip, l.dynamic);
          // Offer holds live in memory: after a restart, a free pool address is confirmed as offered.
          const n = ipToInt(ip);
          const mine = leases.byMac(mac, key, t);
          if (
            !l &&
            !(mine && mine.state === 'offered') &&
            n !== undefined &&
            leases.inPool(key, n) &&
            !reservedToOther(mac, ip)
          )
            return bindIp(c, ip, true);
          return { kind: 'nak', message: `${ip} was not offered to ${mac}` };
        }
        if (reqIp) return confirmIp(c, reqIp, 'INIT-REBOOT');
        if (req.ciaddr !== ZERO) return confirmIp(c, req.ciaddr, 'RENEW');
        return 'REQUEST with no server identifier, requested address or ciaddr';
      }
      case MsgType.Release: {
        if (sidIp !== undefined && sidIp !== serverIp) return `RELEASE for server ${sidIp}, not us`;
        if (req.ciaddr === ZERO) return 'RELEASE without ciaddr';
        if (!leases.release(req.ciaddr, mac, t)) return `RELEASE of ${req.ciaddr} which ${mac} does not hold`;
        return 'released';
      }
      case MsgType.Decline: {
        if (sidIp !== undefined && sidIp !== serverIp) return `DECLINE for server ${sidIp}, not us`;
        if (!reqIp) return 'DECLINE without option 50';
        const l = leases.byIp(reqIp, t);
        if (!l || l.mac !== mac) return `DECLINE of ${reqIp} which was not given to ${mac}`;
        leases.decline({ ip: reqIp, subnet: key, until: t + config.declineHoldSec * 1000, now: t });
        return 'declined';
      }
      case MsgType.Inform:
        return { kind: 'inform' };
      default:
        return `message type ${type} is not one a server answers`;
    }
  }

  function handle(bytes: Uint8Array, arrival: Arrival): HandleResult {
    const dec = decodePacket(bytes);
    if (!dec.ok) return drop(dec.reason, 'debug', { from: arrival.from.address });
    const req = dec.packet;
    if (req.op !== BOOTREQUEST) return drop('not a BOOTREQUEST', 'debug');
    const type = req.options.get(Opt.MessageType)?.[0];
    if (type === undefined || req.options.get(Opt.MessageType)!.length !== 1)
      return drop('no DHCP message type (option 53)', 'debug');
    const mac = clientMac(req);
    if (!mac) return drop(`hardware type ${req.htype} with ${req.hlen}-byte address is not supported`, 'info');
    const client = classifyClient(req);
    const t = now();
    const typeName = MSG_NAMES[type] ?? `type-${type}`;
    const evBase = { mac, arch: client.arch, ipxe: client.ipxe };
    const proxyPort = arrival.port === config.proxyPort && config.proxyPort !== config.port;

    if (config.mode === 'off') return drop('dhcp mode is off', 'debug');

    let outcome: LeaseOutcome | string;
    let serverIp: string | undefined;
    let subnet: SubnetRt | undefined;

    if (config.mode === 'proxy') {
      if (!client.pxe && !client.httpClient)
        return drop('proxy mode answers only PXE/HTTP boot clients (option 60)', 'debug', { mac });
      serverIp = proxyServerIp(req, arrival);
      if (!serverIp) return drop('no server address known for proxy replies (set dhcp.serverIp)', 'info', { mac });
      if (proxyPort) {
        // PXE 2.1 2.2.4: the boot server request on 4011 (REQUEST or INFORM), unicast from a configured client.
        if (type !== MsgType.Request && type !== MsgType.Inform)
          return drop(`${typeName} on port ${config.proxyPort} is not a boot server request`, 'debug', { mac });
        outcome = { kind: 'proxy-ack' };
      } else if (type === MsgType.Discover) outcome = { kind: 'proxy-offer' };
      else if (type === MsgType.Request) {
        const sid = req.options.get(Opt.ServerId);
        if (!sid || sid.length !== 4 || ipFromBytes(sid) !== serverIp)
          return drop('REQUEST for the site DHCP server, not for the proxy', 'debug', { mac });
        outcome = { kind: 'proxy-ack' };
      } else return drop(`proxy mode ignores ${typeName} on port ${config.port}`, 'debug', { mac });
      emit({ ...evBase, type: `dhcp.${typeName}` });
    } else {
      const sel = selectSubnet(req, arrival);
      if (typeof sel === 'string') return drop(sel, 'info', { mac });
      subnet = sel;
      serverIp = sel.serverIp ?? proxyServerIp(req, arrival);
      if (!serverIp)
        return drop(`no server address for subnet ${sel.key} (set subnets[].serverIp or dhcp.serverIp)`, 'info', {
          mac,
        });
      if (proxyPort) return drop('port 4011 is only for proxy mode', 'debug', { mac });
      emit({ ...evBase, type: `dhcp.${typeName}`, ip: req.ciaddr !== ZERO ? req.ciaddr : undefined });
      outcome = leaseStep(type, req, mac, sel, serverIp, t);
    }

    if (
      type === MsgType.Discover &&
      client.bootClient &&
      deps.onDiscovered &&
      !(subnet ? reservationFor(mac, subnet) : safeReservation(mac))
    ) {
      try {
        deps.onDiscovered({
          mac,
          arch: client.arch,
          uuid: client.uuid,
          ipxe: client.ipxe,
          ip: typeof outcome !== 'string' && outcome.kind === 'offer' ? outcome.ip : undefined,
        });
      } catch (err) {
        log.warn({ err, mac }, 'dhcp onDiscovered hook threw');
      }
    }
    if (typeof outcome === 'string') {
      if (outcome === 'released' || outcome === 'declined') return { replies: [] };
      return drop(outcome, 'info', { mac, type: typeName });
    }
    const wantsBoot = outcome.kind !== 'nak';
    const dec2 = wantsBoot ? decision(mac, client) : undefined;
    if ((outcome.kind === 'proxy-offer' || outcome.kind === 'proxy-ack') && (!dec2 || dec2.action === 'none')) {
      return drop(`no boot answer for ${mac}: ${dec2?.reason ?? 'not a boot client'}`, 'debug', { mac });
    }
    const reply: Reply = respond({
      req,
      client,
      outcome,
      serverIp,
      subnet: subnet?.cfg,
      decision: dec2,
      from: arrival.from,
      serverPort: config.port,
      clientPort: config.clientPort,
    });
    const enc = encodePacket(reply.packet, reply.maxSize);
    if (enc.dropped.length)
      log.warn({ mac, dropped: enc.dropped }, 'dhcp reply options did not fit the client maximum message size');
    const replyName = MSG_NAMES[reply.type];
    const ip = 'ip' in outcome ? outcome.ip : undefined;
    const detail =
      outcome.kind === 'nak'
        ? outcome.message
        : dec2 && dec2.action !== 'none'
          ? `${dec2.action} ${dec2.file.kind === 'tftp' ? dec2.file.path : dec2.file.url}${dec2.firmware === 'bios' ? '' : `: ${dec2.reason}`}`
          : undefined;
    emit({ ...evBase, type: `dhcp.${replyName}`, ip, detail });
    return { replies: [{ bytes: enc.bytes, to: reply.to, type: reply.type, serverIp }] };
  }

  return {
    handle(bytes, arrival) {
      try {
        return handle(bytes, arrival);
      } catch (err) {
        // Never let one packet take the server down; the store or a hook failing is logged once.
        log.error({ err }, 'dhcp packet handling failed');
        return { replies: [], drop: `internal error: ${(err as Error).message}` };
      }
    },
    serverIpFor: (c) => subnets.find((s) => s.key === c)?.serverIp,
    serverIps: () => [...new Set([...subnets.map((s) => s.serverIp), config.serverIp].filter((x): x is string => !!x))],
  };
}
