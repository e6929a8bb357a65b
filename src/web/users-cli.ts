// `rackboot users ...`: the first admin comes from here (there is never a default password).
import type { Config } from '../config.ts';
import { openStore } from '../store/index.ts';
import type { ApiTokenRepo, UserRepo } from '../store/repo/users.ts';
import type { AuditRepo } from '../store/repo/small.ts';
import { ROLES, checkPassword, checkUserName, hashUserPassword, type Role } from '../store/users.ts';

export interface UsersIo {
  out: (s: string) => void;
  err: (s: string) => void;
  readStdin: () => Promise<string>;
}

export const USERS_USAGE = `rackboot users add NAME --role admin|tech --password-stdin
rackboot users list
rackboot users disable NAME | enable NAME
rackboot users passwd NAME --password-stdin
rackboot users role NAME --role admin|tech
rackboot users token NAME            make an API token for NAME (printed once; it has NAME's role)
rackboot users tokens NAME           list NAME's tokens (prefix, created, last used)
rackboot users revoke-token NAME PREFIX`;

/** Opens only the store (not the profiles): users can be managed before anything else is set up, on either store. */
export async function usersCommand(
  config: Pick<Config, 'dataDir'> & Partial<Pick<Config, 'database'>>,
  io: UsersIo,
  args: string[],
  opts: { role?: string; passwordStdin?: boolean },
): Promise<number> {
  const store = await openStore({
    database: config.database?.dialect === 'postgres' ? config.database.url : config.database?.file,
    dataDir: config.dataDir,
    // Users and tokens derive no build token: the secret is never used here.
    secret: Buffer.alloc(32),
    poolSize: 2,
  });
  try {
    return await run(store.users, store.apiTokens, store.audit, io, args, opts);
  } finally {
    await store.close();
  }
}

async function run(
  store: UserRepo,
  tokens: ApiTokenRepo,
  audit: AuditRepo,
  io: UsersIo,
  args: string[],
  opts: { role?: string; passwordStdin?: boolean },
): Promise<number> {
  const [sub, nameRaw] = args;
  const name = (nameRaw ?? '').trim().toLowerCase();
  const readPassword = async (): Promise<string | undefined> => {
    if (!opts.passwordStdin) {
      io.err(
        'rackboot users: pass --password-stdin and type the password on stdin, e.g. `read -rs P; printf %s "$P" | rackboot users add NAME --role admin --password-stdin`',
      );
      return undefined;
    }
    const pw = (await io.readStdin()).replace(/\r?\n$/, '');
    const bad = checkPassword(pw, name);
    if (bad) {
      io.err(`rackboot users: ${bad}`);
      return undefined;
    }
    return pw;
  };
  const needUser = async () => {
    const u = await store.get(name);
    if (!u) io.err(`rackboot users: there is no user "${name}" (rackboot users list)`);
    return u;
  };
  switch (sub) {
    case 'list': {
      const all = await store.list();
      if (!all.length) io.err('no users yet: rackboot users add NAME --role admin --password-stdin');
      for (const u of all)
        io.out([u.name, u.role, u.disabled ? 'disabled' : 'active', new Date(u.createdAt).toISOString()].join('\t'));
      return 0;
    }
    case 'add': {
      const bad = checkUserName(name);
      if (!nameRaw || bad) {
        io.err(`rackboot users add: ${nameRaw ? bad : 'give a NAME'}\n${USERS_USAGE}`);
        return 2;
      }
      if (!opts.role || !ROLES.includes(opts.role as Role)) {
        io.err('rackboot users add: --role admin|tech is required');
        return 2;
      }
      if (await store.get(name)) {
        io.err(
          `rackboot users add: user ${name} exists already (rackboot users passwd ${name} --password-stdin to set a new password)`,
        );
        return 1;
      }
      const pw = await readPassword();
      if (pw === undefined) return 2;
      await store.add(name, opts.role as Role, await hashUserPassword(pw));
      await audit.record('cli', 'user.create', name, { role: opts.role });
      io.out(`user ${name} (${opts.role}) added`);
      return 0;
    }
    case 'disable':
    case 'enable': {
      const u = await needUser();
      if (!u) return 1;
      if (sub === 'disable' && u.role === 'admin' && !u.disabled && (await store.activeAdmins()) <= 1)
        io.err(`warning: ${name} was the last active admin; add another with rackboot users add`);
      await store.setDisabled(name, sub === 'disable');
      await audit.record('cli', `user.${sub}`, name);
      io.out(`user ${name} ${sub}d${sub === 'disable' ? ' (its sessions ended)' : ''}`);
      return 0;
    }
    case 'passwd': {
      if (!(await needUser())) return 1;
      const pw = await readPassword();
      if (pw === undefined) return 2;
      await store.setPasswordHash(name, await hashUserPassword(pw));
      await audit.record('cli', 'user.password', name);
      io.out(`password of ${name} changed (its sessions ended)`);
      return 0;
    }
    case 'role': {
      const u = await needUser();
      if (!u) return 1;
      if (!opts.role || !ROLES.includes(opts.role as Role)) {
        io.err('rackboot users role: --role admin|tech is required');
        return 2;
      }
      await store.setRole(name, opts.role as Role);
      await audit.record('cli', 'user.role', name, { role: { from: u.role, to: opts.role } });
      io.out(`user ${name} is now ${opts.role}`);
      return 0;
    }
    case 'token': {
      const u = await needUser();
      if (!u) return 1;
      if (u.disabled) {
        io.err(
          `rackboot users token: ${name} is disabled; a token of a disabled user does not work (rackboot users enable ${name})`,
        );
        return 1;
      }
      const made = await tokens.create(u);
      if ('error' in made) {
        io.err(
          `rackboot users token: ${made.error} (rackboot users tokens ${name}; rackboot users revoke-token ${name} PREFIX)`,
        );
        return 1;
      }
      await audit.record('cli', 'user.token.create', name, { prefix: made.info.prefix });
      io.err(
        `API token for ${name} (${u.role}); shown once, only its hash is kept. Use it as Authorization: Bearer <token>.`,
      );
      io.out(made.token);
      return 0;
    }
    case 'tokens': {
      const u = await needUser();
      if (!u) return 1;
      const list = await tokens.list(u);
      if (!list.length) io.err(`${name} has no API tokens (rackboot users token ${name})`);
      for (const t of list)
        io.out(
          [
            `rbt_${t.prefix}…`,
            new Date(t.createdAt).toISOString(),
            t.lastUsedAt ? new Date(t.lastUsedAt).toISOString() : 'never used',
          ].join('\t'),
        );
      return 0;
    }
    case 'revoke-token': {
      const u = await needUser();
      if (!u) return 1;
      const prefix = (args[2] ?? '').replace(/^rbt_/, '').replace(/…$/, '');
      if (!prefix) {
        io.err(`rackboot users revoke-token ${name} PREFIX: give the prefix shown by rackboot users tokens ${name}`);
        return 2;
      }
      if (!(await tokens.revoke(u, prefix))) {
        io.err(`rackboot users revoke-token: ${name} has no token ${prefix} (rackboot users tokens ${name})`);
        return 1;
      }
      await audit.record('cli', 'user.token.revoke', name, { prefix });
      io.out(`token rbt_${prefix}… of ${name} revoked`);
      return 0;
    }
    default:
      io.err(USERS_USAGE);
      return 2;
  }
}
