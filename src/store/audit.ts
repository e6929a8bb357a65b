// Who changed what, when: profiles, hosts, builds.
import type { Db } from './db.ts';

export interface AuditEntry { id: number; at: number; actor: string; action: string; target: string; diff?: string }

export class AuditLog {
  private readonly insertStmt;
  private readonly recentStmt;
  constructor(db: Db, private readonly now: () => number = Date.now) {
    this.insertStmt = db.prepare('INSERT INTO audit (at, actor, action, target, diff) VALUES (?, ?, ?, ?, ?)');
    this.recentStmt = db.prepare<[number], AuditEntry>('SELECT id, at, actor, action, target, diff FROM audit ORDER BY id DESC LIMIT ?');
  }
  record(actor: string, action: string, target: string, diff?: unknown): void {
    this.insertStmt.run(this.now(), actor, action, target, diff === undefined ? null : JSON.stringify(diff));
  }
  recent(limit = 100): AuditEntry[] { return this.recentStmt.all(limit); }
}
