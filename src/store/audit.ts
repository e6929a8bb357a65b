// Who changed what, when: profiles, hosts, builds, users, settings. Every record is masked before it is
// stored (src/hosts/policy.ts: root hash, activation keys, passwords, tokens): the audit log is shown to
// techs, and a copy of the database must not carry secrets the profiles directory already holds.
import type { Db } from './db.ts';
import { maskDeep } from '../hosts/policy.ts';

export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  diff?: string;
}

export class AuditLog {
  private readonly insertStmt;
  private readonly recentStmt;
  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.insertStmt = db.prepare('INSERT INTO audit (at, actor, action, target, diff) VALUES (?, ?, ?, ?, ?)');
    this.recentStmt = db.prepare<[number], AuditEntry>(
      'SELECT id, at, actor, action, target, diff FROM audit ORDER BY id DESC LIMIT ?',
    );
  }
  record(actor: string, action: string, target: string, diff?: unknown): void {
    this.insertStmt.run(this.now(), actor, action, target, diff === undefined ? null : JSON.stringify(maskDeep(diff)));
  }
  /** A change of a record: the whole record before and after (either absent for a create or delete), masked. */
  recordChange(
    actor: string,
    action: string,
    target: string,
    before: object | undefined,
    after: object | undefined,
  ): void {
    this.record(actor, action, target, { ...(before ? { before } : {}), ...(after ? { after } : {}) });
  }
  recent(limit = 100): AuditEntry[] {
    return this.recentStmt.all(limit);
  }
}
