// Each host's BMC. The password is write-only: sealed here on the way in, opened only for a driver
// (bmcConfig), never part of what get()/list() return. Promise-returning, so a PostgreSQL store can implement it.
import type { BmcConfig, BmcDriverName } from '../bmc/driver.ts';

/** A host's BMC as anyone may see it: no password, only whether one is set. */
export interface BmcView {
  driver: BmcDriverName;
  address: string;
  username: string;
  system?: string;
  verifyTls: boolean;
  fingerprint?: string;
  passwordSet: boolean;
  updatedAt: number;
}

/** What an admin sends; `password` absent keeps the stored one. */
export interface BmcSetting {
  driver: BmcDriverName;
  address: string;
  username: string;
  password?: string;
  system?: string;
  verifyTls: boolean;
  fingerprint?: string;
}

export interface BmcStore {
  get(mac: string): Promise<BmcView | undefined>;
  list(): Promise<Map<string, BmcView>>;
  /** Fails (with the field named) when a new BMC comes without a password. */
  set(mac: string, s: BmcSetting): Promise<BmcView>;
  remove(mac: string): Promise<boolean>;
  /** The driver's config, password opened. */
  bmcConfig(mac: string): Promise<BmcConfig | undefined>;
}

export interface BmcRow {
  mac: string;
  driver: BmcDriverName;
  address: string;
  username: string;
  password_enc: string;
  system: string | null;
  verify_tls: number;
  fingerprint: string | null;
  updated_at: number;
}

export const bmcView = (r: BmcRow): BmcView => ({
  driver: r.driver,
  address: r.address,
  username: r.username,
  ...(r.system ? { system: r.system } : {}),
  verifyTls: r.verify_tls === 1,
  ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}),
  passwordSet: r.password_enc !== '',
  updatedAt: r.updated_at,
});

export class BmcPasswordMissing extends Error {}
