// Each host's BMC. The password is write-only: sealed here on the way in, opened only for a driver
// (bmcConfig), never part of what get()/list() return. Promise-returning, so a PostgreSQL store can implement it.
import type { BmcConfig, BmcDriverName } from '../bmc/driver.ts';
import type { SecretBox } from '../bmc/secret-box.ts';
import type { Db } from './db.ts';

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

export class SqliteBmcStore implements BmcStore {
  private readonly one;
  private readonly all;
  private readonly upsert;
  private readonly del;

  constructor(
    db: Db,
    private readonly box: SecretBox,
    private readonly now: () => number = Date.now,
  ) {
    this.one = db.prepare<[string], BmcRow>('SELECT * FROM host_bmc WHERE mac = ?');
    this.all = db.prepare<[], BmcRow>('SELECT * FROM host_bmc');
    this.upsert =
      db.prepare(`INSERT INTO host_bmc (mac, driver, address, username, password_enc, system, verify_tls, fingerprint, updated_at)
      VALUES (@mac, @driver, @address, @username, @password_enc, @system, @verify_tls, @fingerprint, @now)
      ON CONFLICT (mac) DO UPDATE SET driver=@driver, address=@address, username=@username, password_enc=@password_enc,
        system=@system, verify_tls=@verify_tls, fingerprint=@fingerprint, updated_at=@now`);
    this.del = db.prepare('DELETE FROM host_bmc WHERE mac = ?');
  }

  get(mac: string): Promise<BmcView | undefined> {
    const r = this.one.get(mac);
    return Promise.resolve(r && bmcView(r));
  }

  list(): Promise<Map<string, BmcView>> {
    return Promise.resolve(new Map(this.all.all().map((r) => [r.mac, bmcView(r)])));
  }

  set(mac: string, s: BmcSetting): Promise<BmcView> {
    const old = this.one.get(mac);
    const sealed = s.password !== undefined ? this.box.seal(s.password, mac) : old?.password_enc;
    if (!sealed) {
      return Promise.reject(new BmcPasswordMissing(`bmc.password: required when a host gets its first BMC (${mac})`));
    }
    this.upsert.run({
      mac,
      driver: s.driver,
      address: s.address,
      username: s.username,
      password_enc: sealed,
      system: s.system ?? null,
      verify_tls: s.verifyTls ? 1 : 0,
      fingerprint: s.fingerprint ?? null,
      now: this.now(),
    });
    return Promise.resolve(bmcView(this.one.get(mac)!));
  }

  remove(mac: string): Promise<boolean> {
    return Promise.resolve(this.del.run(mac).changes > 0);
  }

  bmcConfig(mac: string): Promise<BmcConfig | undefined> {
    const r = this.one.get(mac);
    if (!r) return Promise.resolve(undefined);
    let password: string;
    try {
      password = this.box.open(r.password_enc, mac);
    } catch {
      return Promise.reject(
        new Error(
          `the BMC password of ${mac} does not decrypt with this data dir's bmc.key: set it again (PUT /api/hosts/${mac})`,
        ),
      );
    }
    return Promise.resolve({
      driver: r.driver,
      address: r.address,
      username: r.username,
      password,
      ...(r.system ? { system: r.system } : {}),
      verifyTls: r.verify_tls === 1,
      ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}),
    });
  }
}
