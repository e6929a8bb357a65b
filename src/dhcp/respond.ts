// Pure request -> reply. The engine has already chosen the subnet, our address, the lease outcome
// and asked the boot decision; this module only turns those into the packet and its destination.
import type { BootDecision } from '../boot/decide.ts';
import type { SubnetConfig } from './config.ts';
import { parseCidr } from './config.ts';
import type { DhcpPacket } from './packet.ts';
import {
  BOOTREPLY,
  MsgType,
  Opt,
  intToIp,
  maxReplySize,
  optEncap,
  optIp,
  optStr,
  optU32,
  optU8,
  parseEncap,
} from './packet.ts';
import type { PxeClientInfo } from './pxe.ts';

export type LeaseOutcome =
  | { kind: 'offer'; ip: string; leaseSec: number; hostname?: string }
  | { kind: 'ack'; ip: string; leaseSec: number; hostname?: string }
  | { kind: 'nak'; message: string }
  /** INFORM: configuration only, no address (RFC 2131 3.4). */
  | { kind: 'inform' }
  /** proxy-DHCP: boot information only, the site's server owns addresses. */
  | { kind: 'proxy-offer' }
  | { kind: 'proxy-ack' };

export interface RespondInput {
  req: DhcpPacket;
  client: PxeClientInfo;
  outcome: LeaseOutcome;
  /** Our address on the client's network: server identifier (54) and next-server (siaddr). */
  serverIp: string;
  /** Authoritative mode: the subnet whose options we hand out. */
  subnet?: SubnetConfig;
  /** Only for boot clients; 'none' or undefined gives no boot fields. */
  decision?: BootDecision;
  /** Where the request came from (for port 4011 replies, which go straight back). */
  from: { address: string; port: number };
  serverPort: number;
  clientPort: number;
}

export interface Reply {
  packet: DhcpPacket;
  type: number;
  to: { address: string; port: number };
  /** Largest payload the client accepts (option 57). */
  maxSize: number;
}

const ZERO = '0.0.0.0';
const BROADCAST_FLAG = 0x8000;

/** PXE 2.1 table 2-1, sub-option 6 (PXE_DISCOVERY_CONTROL) bit 3: "use the boot file in this offer, no boot server discovery". */
const PXE_BYPASS_DISCOVERY = optEncap([[6, optU8(8)]], true);

function bootOptions(
  out: Map<number, Uint8Array>,
  header: { siaddr: string; file: string; sname: string },
  inp: RespondInput,
): void {
  const d = inp.decision;
  if (!d || d.action === 'none') return;
  if (d.file.kind === 'tftp') {
    header.siaddr = inp.serverIp;
    header.file = d.file.path;
    out.set(Opt.TftpServerName, optStr(inp.serverIp));
    out.set(Opt.BootfileName, optStr(d.file.path));
  } else {
    header.siaddr = inp.serverIp;
    header.file = d.file.url.length < 128 ? d.file.url : '';
    out.set(Opt.BootfileName, optStr(d.file.url));
    // UEFI spec 24.7.2: an HTTP boot client only takes offers that say "HTTPClient" in option 60.
    if (d.firmware === 'uefi-http' || inp.client.httpClient) out.set(Opt.VendorClassId, optStr('HTTPClient'));
  }
  // iPXE: sub-option 176 (no-pxedhcp) = 1 makes iPXE skip its wait for proxy offers (iPXE dhcp.c).
  if (inp.client.ipxe) out.set(Opt.IpxeEncap, optEncap([[176, optU8(1)]]));
}

function subnetOptions(out: Map<number, Uint8Array>, s: SubnetConfig): void {
  const c = parseCidr(s.cidr)!;
  out.set(Opt.SubnetMask, optIp(intToIp(c.mask)));
  if (s.router) out.set(Opt.Router, optIp(s.router));
  if (s.dns.length) out.set(Opt.DnsServers, optIp(...s.dns));
  if (s.domain) out.set(Opt.DomainName, optStr(s.domain));
  out.set(Opt.BroadcastAddr, optIp(intToIp(c.broadcast)));
  if (s.ntp.length) out.set(Opt.NtpServers, optIp(...s.ntp));
  if (s.mtu) out.set(26, Uint8Array.of(s.mtu >> 8, s.mtu & 255));
}

function replyHeader(req: DhcpPacket): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: ZERO,
    yiaddr: ZERO,
    siaddr: ZERO,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options: new Map(),
  };
}

/** RFC 2131 4.1, "server sends to": relay first, then ciaddr, else broadcast (we cannot unicast to an unconfigured client without writing the ARP cache). */
function destination(inp: RespondInput, type: number): { address: string; port: number } {
  const { req } = inp;
  if (inp.outcome.kind === 'proxy-ack') return { address: inp.from.address, port: inp.from.port };
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: inp.serverPort };
  if (type !== MsgType.Nak && req.ciaddr !== ZERO) return { address: req.ciaddr, port: inp.clientPort };
  return { address: '255.255.255.255', port: inp.clientPort };
}

export function respond(inp: RespondInput): Reply {
  const { req, outcome } = inp;
  const p = replyHeader(req);
  const o = p.options;
  let type: number;
  switch (outcome.kind) {
    case 'offer':
    case 'ack':
      type = outcome.kind === 'offer' ? MsgType.Offer : MsgType.Ack;
      break;
    case 'nak':
      type = MsgType.Nak;
      break;
    case 'inform':
      type = MsgType.Ack;
      break;
    case 'proxy-offer':
      type = MsgType.Offer;
      break;
    case 'proxy-ack':
      type = MsgType.Ack;
      break;
  }
  o.set(Opt.MessageType, optU8(type));
  o.set(Opt.ServerId, optIp(inp.serverIp));

  if (outcome.kind === 'nak') {
    o.set(Opt.Message, optStr(outcome.message));
    // RFC 2131 4.3.2: a NAK through a relay asks the relay to broadcast it.
    if (req.giaddr !== ZERO) p.flags |= BROADCAST_FLAG;
  } else if (outcome.kind === 'offer' || outcome.kind === 'ack') {
    p.yiaddr = outcome.ip;
    if (outcome.kind === 'ack') p.ciaddr = req.ciaddr;
    o.set(Opt.LeaseTime, optU32(outcome.leaseSec));
    // RFC 2131 4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
    o.set(Opt.RenewalTime, optU32(Math.floor(outcome.leaseSec / 2)));
    o.set(Opt.RebindingTime, optU32(Math.floor((outcome.leaseSec * 7) / 8)));
    if (inp.subnet) subnetOptions(o, inp.subnet);
    if (outcome.hostname) o.set(Opt.HostName, optStr(outcome.hostname));
    const h = { siaddr: ZERO, file: '', sname: '' };
    bootOptions(o, h, inp);
    Object.assign(p, h);
  } else if (outcome.kind === 'inform') {
    p.ciaddr = req.ciaddr;
    if (inp.subnet) subnetOptions(o, inp.subnet);
    const h = { siaddr: ZERO, file: '', sname: '' };
    bootOptions(o, h, inp);
    Object.assign(p, h);
  } else {
    // proxy-DHCP (PXE 2.1 section 2.2.2): no address, option 60 "PXEClient", the GUID echoed.
    if (outcome.kind === 'proxy-ack') p.ciaddr = req.ciaddr;
    const h = { siaddr: ZERO, file: '', sname: '' };
    if (!inp.client.httpClient) o.set(Opt.VendorClassId, optStr('PXEClient'));
    bootOptions(o, h, inp);
    Object.assign(p, h);
    if (inp.client.uuidRaw) o.set(Opt.ClientUuid, inp.client.uuidRaw);
    const uefi = inp.decision?.action !== 'none' && inp.decision?.firmware === 'uefi';
    if (outcome.kind === 'proxy-offer') {
      // BIOS ROMs and iPXE honour "bypass discovery" in option 43 and load the file named here.
      // EDK2 and other UEFI firmware ignore a proxy offer that tries to bypass discovery
      // (pixiecore and dnsmasq hit this): for them send no option 43, so they ask us again on
      // port 4011 (the "BINL" request) and take the file from that ACK.
      if (!uefi && !inp.client.httpClient) o.set(Opt.VendorSpecific, PXE_BYPASS_DISCOVERY);
      h.sname = inp.serverIp;
      p.sname = inp.serverIp;
    } else {
      // Port 4011 ACK: echo the boot item the client asked for (PXE 2.1 table 2-1, sub-option 71).
      const enc = req.options.get(Opt.VendorSpecific);
      const item = enc ? parseEncap(enc)?.get(71) : undefined;
      o.set(Opt.VendorSpecific, item && item.length === 4 ? optEncap([[71, item]], true) : PXE_BYPASS_DISCOVERY);
    }
  }
  // RFC 3046 2.2: echo the relay agent information option unchanged.
  const rai = req.options.get(Opt.RelayAgentInfo);
  if (rai && req.giaddr !== ZERO) o.set(Opt.RelayAgentInfo, rai);
  return { packet: p, type, to: destination(inp, type), maxSize: maxReplySize(req) };
}
