// IP -> MAC from the kernel's neighbour (ARP) table. In proxy-DHCP mode the site's server hands out
// the address, so the first TFTP request (the loader) comes from an IP we have not seen yet; the
// kernel has its MAC, because it just answered that client.
import { readFileSync } from 'node:fs';
import { parseMac, type Mac } from './mac.ts';

/** Parses /proc/net/arp text: "IP address  HW type  Flags  HW address  Mask  Device". */
export function parseArpTable(text: string): Map<string, Mac> {
  const out = new Map<string, Mac>();
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, hw] = line.trim().split(/\s+/);
    // flags 0x0 = incomplete entry; 00:00:00:00:00:00 likewise
    if (!ip || !hw || flags === '0x0' || hw === '00:00:00:00:00:00') continue;
    const mac = parseMac(hw);
    if (mac) out.set(ip, mac);
  }
  return out;
}

/**
 * The complete entry for one address in /proc/net/arp text, reading only its line: a rack's table has a
 * line per machine and each new client is looked up (parsing the whole table per lookup was a third of
 * serve's CPU with 1,000 hosts booting). The last line wins, as in parseArpTable.
 */
export function arpEntry(text: string, ip: string): Mac | undefined {
  const at = text.lastIndexOf(`\n${ip} `);
  if (at < 0) return undefined;
  const end = text.indexOf('\n', at + 1);
  const [, , flags, hw] = text
    .slice(at + 1, end < 0 ? undefined : end)
    .trim()
    .split(/\s+/);
  if (!hw || flags === '0x0' || hw === '00:00:00:00:00:00') return undefined;
  return parseMac(hw);
}

/** How long a read of the table answers for addresses found in it: a burst of clients shares one read. */
export const ARP_SNAPSHOT_MS = 250;

/**
 * IP -> MAC from the kernel's table. An address found in a read at most ARP_SNAPSHOT_MS old is answered
 * from it; one not found is looked up in a fresh read, because its entry may be newer than the last one
 * (a client's first packet arrives just after the kernel learnt it).
 */
export function arpReader(file = '/proc/net/arp', now: () => number = Date.now): (ip: string) => Mac | undefined {
  let text = '';
  let readAt = -Infinity;
  const read = (t: number): void => {
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = '';
    }
    readAt = t;
  };
  return (ip) => {
    const t = now();
    if (t - readAt >= ARP_SNAPSHOT_MS) read(t);
    const hit = arpEntry(text, ip);
    if (hit || readAt === t) return hit;
    read(t);
    return arpEntry(text, ip);
  };
}
