// Host records. Validation of what goes in lives in src/hosts/input.ts; this is storage only.
import type { Mac } from '../net/mac.ts';

export interface Host {
  mac: Mac;
  hostname: string;
  profile: string;
  ip?: string;
  netmask?: string;
  gateway?: string;
  nameservers: string[];
  domain?: string;
  rack?: string;
  position?: string;
  uuid?: string;
  /** The site whose node serves this host (src/hosts/site.ts); undefined: every node. */
  site?: string;
  params: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export type HostFields = Omit<Host, 'createdAt' | 'updatedAt'>;

export interface HostRow {
  mac: string;
  hostname: string;
  profile: string;
  ip: string | null;
  netmask: string | null;
  gateway: string | null;
  nameservers: string | null;
  domain: string | null;
  rack: string | null;
  position: string | null;
  uuid: string | null;
  site: string | null;
  params: string;
  created_at: number;
  updated_at: number;
}

export function hostFromRow(r: HostRow): Host {
  return {
    mac: r.mac as Mac,
    hostname: r.hostname,
    profile: r.profile,
    ip: r.ip ?? undefined,
    netmask: r.netmask ?? undefined,
    gateway: r.gateway ?? undefined,
    nameservers: r.nameservers ? r.nameservers.split(',') : [],
    domain: r.domain ?? undefined,
    rack: r.rack ?? undefined,
    position: r.position ?? undefined,
    uuid: r.uuid ?? undefined,
    ...(r.site !== null ? { site: r.site } : {}),
    params: JSON.parse(r.params) as Record<string, string>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function hostToRow(h: HostFields, now: number) {
  return {
    mac: h.mac,
    hostname: h.hostname,
    profile: h.profile,
    ip: h.ip ?? null,
    netmask: h.netmask ?? null,
    gateway: h.gateway ?? null,
    nameservers: h.nameservers.length ? h.nameservers.join(',') : null,
    domain: h.domain ?? null,
    rack: h.rack ?? null,
    position: h.position ?? null,
    uuid: h.uuid ?? null,
    site: h.site ?? null,
    params: JSON.stringify(h.params),
    now,
  };
}
