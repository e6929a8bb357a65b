// Which host a client address is. TFTP requests, HTTP fetches and syslog lines carry only a source
// address; a build token must go only to the machine rackboot ties to that host (DESIGN: Trust), and a
// GRUB that asks only for its prefix grub.cfg (Debian's signed grubnetx64: "$prefix/grub.cfg") can
// still get its host's config when the address is known.
import type { Mac } from '../net/mac.ts';

export type IdentifiedBy = 'lease' | 'learnt' | 'neighbour' | 'static';

export type ClientIdentity = { known: true; mac: Mac; via: IdentifiedBy } | { known: false; reason: string };

export interface AddressClaim {
  mac: Mac;
  via: IdentifiedBy;
}

export interface IdentitySources {
  /** A live bound lease of our own DHCP server on the address (authoritative mode). */
  lease?: (ip: string) => Mac | undefined;
  /** The kernel's neighbour (ARP) table: who answered for that address on the wire. */
  neighbour?: (ip: string) => Mac | undefined;
  /** The host whose record has that static IP. */
  staticHost: (ip: string) => Mac | undefined;
}

/** Entries per map: a flood of forged DHCP packets or addresses cannot grow memory without end. */
export const IDENTITY_MAP_LIMIT = 65536;
/** How long a neighbour-table answer (found or not) is reused: a stranger's requests must not each read /proc/net/arp. */
export const NEIGHBOUR_CACHE_MS = 5000;

const ORDER: readonly IdentifiedBy[] = ['lease', 'learnt', 'neighbour', 'static'];

/**
 * Pure: the claims every source makes on one address. They must agree on one MAC; when two MACs claim
 * the address (a stale lease against a static IP, a forged ARP answer) nobody gets it: a token config
 * handed to the wrong one of two machines is worse than a local boot with the reason on the timeline.
 */
export function decideIdentity(ip: string, claims: readonly AddressClaim[]): ClientIdentity {
  const macs = [...new Set(claims.map((c) => c.mac))];
  if (macs.length === 0)
    return { known: false, reason: `no DHCP lease, learnt address, neighbour entry or host static IP is ${ip}` };
  if (macs.length > 1) {
    const list = macs
      .map(
        (m) =>
          `${m} (${claims
            .filter((c) => c.mac === m)
            .map((c) => c.via)
            .join(', ')})`,
      )
      .join(' and ');
    return { known: false, reason: `address ${ip} is claimed by ${list}: rackboot ties it to neither` };
  }
  const first = [...claims].sort((a, b) => ORDER.indexOf(a.via) - ORDER.indexOf(b.via))[0];
  return { known: true, mac: first.mac, via: first.via };
}

/** What a requester was, in words for a timeline event: "10.0.0.5 resolves to aa:... (lease)" or why nothing. */
export function describeIdentity(ip: string, who: ClientIdentity): string {
  return who.known
    ? `requester ${ip} resolves to ${who.mac} (${who.via})`
    : `requester ${ip} resolves to no host (${who.reason})`;
}

/** The address -> MAC knowledge of one server process: what DHCP and verified requests taught it, plus the sources. */
export class ClientIdentifier {
  private readonly learnt = new Map<string, Mac>();
  private readonly neighbourCache = new Map<string, { mac: Mac | undefined; until: number }>();

  constructor(
    private readonly sources: IdentitySources,
    private readonly now: () => number = Date.now,
  ) {}

  /** From DHCP (the address we or the site's server handed out) and from a verified kickstart fetch; never from a file name. */
  learn(ip: string, mac: Mac): void {
    if (this.learnt.size >= IDENTITY_MAP_LIMIT && !this.learnt.has(ip)) this.learnt.clear();
    this.learnt.set(ip, mac);
  }

  /** The learnt address of each MAC (the Hosts list shows it); one pass over the bounded map. */
  addresses(): Map<Mac, string> {
    const out = new Map<Mac, string>();
    for (const [ip, mac] of this.learnt) out.set(mac, ip);
    return out;
  }

  resolve(ip: string): ClientIdentity {
    const claims: AddressClaim[] = [];
    const add = (mac: Mac | undefined, via: IdentifiedBy) => {
      if (mac) claims.push({ mac, via });
    };
    add(this.sources.lease?.(ip), 'lease');
    add(this.learnt.get(ip), 'learnt');
    add(this.neighbour(ip), 'neighbour');
    add(this.sources.staticHost(ip), 'static');
    return decideIdentity(ip, claims);
  }

  private neighbour(ip: string): Mac | undefined {
    if (!this.sources.neighbour) return undefined;
    const t = this.now();
    const hit = this.neighbourCache.get(ip);
    if (hit && hit.until > t) return hit.mac;
    const mac = this.sources.neighbour(ip);
    if (this.neighbourCache.size >= IDENTITY_MAP_LIMIT && !hit) this.neighbourCache.clear();
    this.neighbourCache.set(ip, { mac, until: t + NEIGHBOUR_CACHE_MS });
    return mac;
  }
}
