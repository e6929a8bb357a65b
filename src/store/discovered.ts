// Machines that PXE-booted but are not hosts: what DHCP saw of them. Anyone on the provisioning network can
// send DISCOVERs with made-up MACs, so the table is bounded: past `maxRows` the least recently seen go first.
import type { DiscoveredMachine } from '../dhcp/engine.ts';

// What the DHCP engine reports of a machine is what is kept (a type only: the store runs no DHCP code).
export type { DiscoveredMachine };
export interface DiscoveredRow {
  mac: string;
  arch: number | null;
  uuid: string | null;
  ipxe: number;
  ip: string | null;
  firstSeen: number;
  lastSeen: number;
}

export const DISCOVERED_MAX_ROWS = 10_000;
