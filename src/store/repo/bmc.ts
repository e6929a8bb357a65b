// Each host's BMC on either store (src/store/bmc.ts has the shapes). The password is sealed with the data dir's
// bmc.key (src/bmc/secret-box.ts) before it reaches the database, and opened only for a driver (bmcConfig).
import type { BmcConfig } from '../../bmc/driver.ts';
import type { SecretBox } from '../../bmc/secret-box.ts';
import type { Sql } from '../sql.ts';
import { BmcPasswordMissing, bmcView, type BmcRow, type BmcSetting, type BmcStore, type BmcView } from '../bmc.ts';

/** A store opened without the BMC key (a CLI that does not need it) can list BMCs but not seal or open passwords. */
export class BmcKeyMissing extends Error {}

export class BmcRepo implements BmcStore {
  constructor(
    private readonly sql: Sql,
    private readonly box: SecretBox | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async get(mac: string): Promise<BmcView | undefined> {
    const r = await this.sql.get<BmcRow>('SELECT * FROM host_bmc WHERE mac = ?', [mac]);
    return r && bmcView(r);
  }

  async list(): Promise<Map<string, BmcView>> {
    const rows = await this.sql.all<BmcRow>('SELECT * FROM host_bmc ORDER BY mac');
    return new Map(rows.map((r) => [r.mac, bmcView(r)]));
  }

  async set(mac: string, s: BmcSetting): Promise<BmcView> {
    const sealed = s.password !== undefined ? this.boxFor(mac).seal(s.password, mac) : undefined;
    return this.sql.tx(async (sql) => {
      const old = await sql.get<{ password_enc: string }>('SELECT password_enc FROM host_bmc WHERE mac = ?', [mac]);
      const password = sealed ?? old?.password_enc;
      if (!password) throw new BmcPasswordMissing(`bmc.password: required when a host gets its first BMC (${mac})`);
      const r = await sql.get<BmcRow>(
        `INSERT INTO host_bmc (mac, driver, address, username, password_enc, system, verify_tls, fingerprint, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (mac) DO UPDATE SET driver = excluded.driver, address = excluded.address,
           username = excluded.username, password_enc = excluded.password_enc, system = excluded.system,
           verify_tls = excluded.verify_tls, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at
         RETURNING *`,
        [
          mac,
          s.driver,
          s.address,
          s.username,
          password,
          s.system ?? null,
          s.verifyTls ? 1 : 0,
          s.fingerprint ?? null,
          this.now(),
        ],
      );
      return bmcView(r!);
    });
  }

  async remove(mac: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM host_bmc WHERE mac = ?', [mac])) > 0;
  }

  async bmcConfig(mac: string): Promise<BmcConfig | undefined> {
    const r = await this.sql.get<BmcRow>('SELECT * FROM host_bmc WHERE mac = ?', [mac]);
    if (!r) return undefined;
    const box = this.boxFor(mac);
    let password: string;
    try {
      password = box.open(r.password_enc, mac);
    } catch {
      throw new Error(
        `the BMC password of ${mac} does not decrypt with this data dir's bmc.key: set it again (PUT /api/hosts/${mac})`,
      );
    }
    return {
      driver: r.driver,
      address: r.address,
      username: r.username,
      password,
      ...(r.system ? { system: r.system } : {}),
      verifyTls: Number(r.verify_tls) === 1,
      ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}),
    };
  }

  private boxFor(mac: string): SecretBox {
    if (!this.box)
      throw new BmcKeyMissing(
        `the BMC password of ${mac} cannot be sealed or opened: this store was opened without the BMC key (StoreOptions.bmcBox)`,
      );
    return this.box;
  }
}
