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

export function macFromArp(ip: string, file = '/proc/net/arp'): Mac | undefined {
  try {
    return parseArpTable(readFileSync(file, 'utf8')).get(ip);
  } catch {
    return undefined;
  }
}
