// A MAC address, always stored and compared as lower-case colon form "aa:bb:cc:dd:ee:ff".
export type Mac = string & { readonly __brand: 'Mac' };

const HEX12 = /^[0-9a-f]{12}$/;

/** Accepts the common spellings: aa:bb:.., aa-bb-.., aabb.ccdd.eeff, aabbccddeeff, 01-aa-bb-.. (pxelinux). */
export function parseMac(input: string): Mac | undefined {
  let s = input.trim().toLowerCase();
  // pxelinux/GRUB prefix the ARP hardware type 01 (Ethernet): "01-aa-bb-cc-dd-ee-ff".
  if (/^01[-:]([0-9a-f]{2}[-:]){5}[0-9a-f]{2}$/.test(s)) s = s.slice(3);
  const hex = s.replace(/[-:.]/g, '');
  if (!HEX12.test(hex)) return undefined;
  // Reject mixed/odd separator layouts such as "a:abb:..." by checking group shape when separators exist.
  if (/[-:]/.test(s) && !/^([0-9a-f]{2}[-:]){5}[0-9a-f]{2}$/.test(s)) return undefined;
  if (s.includes('.') && !/^([0-9a-f]{4}\.){2}[0-9a-f]{4}$/.test(s)) return undefined;
  return hex.match(/../g)!.join(':') as Mac;
}

export function macFromBytes(bytes: Uint8Array): Mac {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':') as Mac;
}

/** "01-aa-bb-cc-dd-ee-ff": the form pxelinux and GRUB use in per-host config file names. */
export function macToPxeName(mac: Mac): string {
  return '01-' + mac.replaceAll(':', '-');
}

/** IPv4 dotted quad -> upper-case hex as pxelinux asks for it ("10.0.0.1" -> "0A000001"). */
export function ipToHex(ip: string): string | undefined {
  const parts = parseIpv4(ip);
  return parts?.map((p) => p.toString(16).toUpperCase().padStart(2, '0')).join('');
}

export function parseIpv4(ip: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip.trim());
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p, i) => p <= 255 && String(p) === m[i + 1]) ? parts : undefined;
}
