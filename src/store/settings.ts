// Settings an admin changes at run time (kept in the settings table, so every node and restart sees them).
import type { Db } from './db.ts';

const TECH_PARAMS_KEY = 'tech_params';
const ADMIN_TOKEN_KEY = 'admin_token_sha256';

export class SettingsStore {
  private readonly getStmt;
  private readonly putStmt;
  private readonly addStmt;
  constructor(db: Db) {
    this.addStmt = db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)');
    this.getStmt = db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?');
    this.putStmt = db.prepare(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
  }

  /** Host parameters a tech may set (src/hosts/policy.ts checks the list); empty by default. */
  techParams(): string[] {
    const row = this.getStmt.get(TECH_PARAMS_KEY);
    if (!row) return [];
    try {
      const v = JSON.parse(row.value) as unknown;
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    } catch {
      return [];
    }
  }

  /** `list` must have passed checkTechParamList(). */
  setTechParams(list: readonly string[]): void {
    this.putStmt.run(TECH_PARAMS_KEY, JSON.stringify(list));
  }

  /** The SHA-256 of the API token made at first start, if one was made. */
  adminTokenHash(): string | undefined {
    return this.getStmt.get(ADMIN_TOKEN_KEY)?.value;
  }

  /** Records it once: a second call (another node racing this one) throws instead of replacing the first. */
  addAdminTokenHash(hash: string): void {
    this.addStmt.run(ADMIN_TOKEN_KEY, hash);
  }
}
