// Child process for the migration race test: says "ready", waits for a line on stdin (so every child starts at
// the same moment), opens the store named by argv[2] (running its migrations) and says the schema version after.
import { openStore } from '../../src/store/index.ts';

const database = process.argv[2];
process.stdout.write('ready\n');
await new Promise<void>((r) => process.stdin.once('data', () => r()));
const store = await openStore({ database, dataDir: '/nonexistent', secret: Buffer.alloc(32) });
const v =
  store.dialect === 'postgres'
    ? (await store.sql.get<{ version: number }>('SELECT version FROM rackboot_schema'))!.version
    : (await store.sql.get<{ user_version: number }>('PRAGMA user_version'))!.user_version;
await store.hosts.list();
await store.close();
process.stdout.write(`${v}\n`);
