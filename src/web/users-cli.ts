// `rackboot users ...`: the first admin comes from here (there is never a default password).
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { openDb } from '../store/db.ts';
import { AuditLog } from '../store/audit.ts';
import { UserStore, ROLES, checkPassword, checkUserName, hashUserPassword, type Role } from '../store/users.ts';

export interface UsersIo { out: (s: string) => void; err: (s: string) => void; readStdin: () => Promise<string> }

export const USERS_USAGE = `rackboot users add NAME --role admin|tech --password-stdin
rackboot users list
rackboot users disable NAME | enable NAME
rackboot users passwd NAME --password-stdin
rackboot users role NAME --role admin|tech`;

/** Opens only the database (not the profiles): users can be managed before anything else is set up. */
export async function usersCommand(config: Pick<Config, 'dataDir'>, io: UsersIo, args: string[], opts: { role?: string; passwordStdin?: boolean }): Promise<number> {
  const db = openDb(join(config.dataDir, 'rackboot.db'));
  try { return await run(new UserStore(db), new AuditLog(db), io, args, opts); } finally { db.close(); }
}

async function run(store: UserStore, audit: AuditLog, io: UsersIo, args: string[], opts: { role?: string; passwordStdin?: boolean }): Promise<number> {
  const [sub, nameRaw] = args;
  const name = (nameRaw ?? '').trim().toLowerCase();
  const readPassword = async (): Promise<string | undefined> => {
    if (!opts.passwordStdin) { io.err('rackboot users: pass --password-stdin and type the password on stdin, e.g. `read -rs P; printf %s "$P" | rackboot users add NAME --role admin --password-stdin`'); return undefined; }
    const pw = (await io.readStdin()).replace(/\r?\n$/, '');
    const bad = checkPassword(pw, name);
    if (bad) { io.err(`rackboot users: ${bad}`); return undefined; }
    return pw;
  };
  const needUser = () => {
    const u = store.get(name);
    if (!u) io.err(`rackboot users: there is no user "${name}" (rackboot users list)`);
    return u;
  };
  switch (sub) {
    case 'list': {
      const all = store.list();
      if (!all.length) io.err('no users yet: rackboot users add NAME --role admin --password-stdin');
      for (const u of all) io.out([u.name, u.role, u.disabled ? 'disabled' : 'active', new Date(u.createdAt).toISOString()].join('\t'));
      return 0;
    }
    case 'add': {
      const bad = checkUserName(name);
      if (!nameRaw || bad) { io.err(`rackboot users add: ${nameRaw ? bad : 'give a NAME'}\n${USERS_USAGE}`); return 2; }
      if (!opts.role || !ROLES.includes(opts.role as Role)) { io.err('rackboot users add: --role admin|tech is required'); return 2; }
      if (store.get(name)) { io.err(`rackboot users add: user ${name} exists already (rackboot users passwd ${name} --password-stdin to set a new password)`); return 1; }
      const pw = await readPassword();
      if (pw === undefined) return 2;
      store.add(name, opts.role as Role, await hashUserPassword(pw));
      audit.record('cli', 'user.create', name, { role: opts.role });
      io.out(`user ${name} (${opts.role}) added`);
      return 0;
    }
    case 'disable':
    case 'enable': {
      const u = needUser();
      if (!u) return 1;
      if (sub === 'disable' && u.role === 'admin' && !u.disabled && store.activeAdmins() <= 1) io.err(`warning: ${name} was the last active admin; add another with rackboot users add`);
      store.setDisabled(name, sub === 'disable');
      audit.record('cli', `user.${sub}`, name);
      io.out(`user ${name} ${sub}d${sub === 'disable' ? ' (its sessions ended)' : ''}`);
      return 0;
    }
    case 'passwd': {
      if (!needUser()) return 1;
      const pw = await readPassword();
      if (pw === undefined) return 2;
      store.setPasswordHash(name, await hashUserPassword(pw));
      audit.record('cli', 'user.password', name);
      io.out(`password of ${name} changed (its sessions ended)`);
      return 0;
    }
    case 'role': {
      const u = needUser();
      if (!u) return 1;
      if (!opts.role || !ROLES.includes(opts.role as Role)) { io.err('rackboot users role: --role admin|tech is required'); return 2; }
      store.setRole(name, opts.role as Role);
      audit.record('cli', 'user.role', name, { role: { from: u.role, to: opts.role } });
      io.out(`user ${name} is now ${opts.role}`);
      return 0;
    }
    default:
      io.err(USERS_USAGE);
      return 2;
  }
}
