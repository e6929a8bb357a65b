// Who changed what, when: profiles, hosts, builds, users, settings. Every record is masked before it is
// stored (src/hosts/policy.ts: root hash, activation keys, passwords, tokens): the audit log is shown to
// techs, and a copy of the database must not carry secrets the profiles directory already holds.

export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  diff?: string;
}
