// What `--database` names: PostgreSQL (a postgres:// URL) or a SQLite file. Pure: config.ts checks it at load.
import { join } from 'node:path';

export type DatabaseTarget = { dialect: 'sqlite'; file: string } | { dialect: 'postgres'; url: string };

/** What `--database` names. A value that is neither a postgres URL nor a path is refused with the field's name. */
export function parseDatabase(database: string | undefined, dataDir: string): DatabaseTarget {
  if (database === undefined || database === '') return { dialect: 'sqlite', file: join(dataDir, 'rackboot.db') };
  if (/^postgres(ql)?:\/\//i.test(database)) {
    try {
      // libpq's URLs may leave the host empty (postgres://user@/db?host=/run/postgresql): WHATWG URL may not.
      if (/[\s\0]/.test(database)) throw new Error('space or control character');
      new URL(database.replace(/^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)(?=[/?]|$)/i, '$1localhost'));
    } catch {
      throw new Error(`--database: "${redactUrl(database)}" is not a valid postgres:// URL`);
    }
    return { dialect: 'postgres', url: database };
  }
  if (/^sqlite:/i.test(database)) return { dialect: 'sqlite', file: database.replace(/^sqlite:(\/\/)?/i, '') };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(database))
    throw new Error(
      `--database: "${redactUrl(database)}" is neither postgres://user@host/db nor a SQLite file path (or empty for ${join(dataDir, 'rackboot.db')})`,
    );
  if (/[\0\r\n]/.test(database)) throw new Error('--database: the path contains a control character');
  return { dialect: 'sqlite', file: database };
}

/** A URL fit for a log line: the password replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}
