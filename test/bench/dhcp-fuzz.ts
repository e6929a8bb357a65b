// The big fuzz run (not in npm test): N random and mutated packets (default 1,000,000) through the
// full engine path with leases in a real SQLite file (WAL), then checks the server still answers.
// Usage: node --import tsx test/bench/dhcp-fuzz.ts [N] [seed]
// The socket share runs in test/integration/dhcp-netns.test.ts (DHCP_SOCKET_FUZZ=N for more).
import { openSqliteStore } from '../../src/store/index.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEngineFuzz } from '../fixtures/dhcp/fuzz-run.ts';

const n = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? 1);
const dir = mkdtempSync(join(tmpdir(), 'rbdhcp-fuzz-'));
try {
  const store = openSqliteStore(join(dir, 'fuzz.db'), { dataDir: dir, secret: Buffer.alloc(32, 1) });
  let crashed: unknown;
  let s;
  try {
    s = await runEngineFuzz(n, seed, store);
  } catch (err) {
    crashed = err;
  }
  if (crashed || !s) {
    console.error('CRASH (exception escaped the engine):', crashed);
    process.exit(1);
  }
  const rows = (await store.sql.get<{ n: number }>('SELECT count(*) AS n FROM dhcp_leases'))!.n;
  console.log(
    JSON.stringify({
      packets: s.packets,
      replies: s.replies,
      byType: s.byType,
      drops: s.drops,
      internalErrors: s.internalErrors.length,
      violations: s.violations.length,
      leaseRows: rows,
      seconds: +(s.ms / 1000).toFixed(1),
      perSecond: Math.round(s.packets / (s.ms / 1000)),
    }),
  );
  if (s.internalErrors.length || s.violations.length) {
    console.error(s.internalErrors.slice(0, 5), s.violations.slice(0, 10));
    process.exit(1);
  }
  console.log('OK: zero crashes, zero internal errors, all replies valid, correct answers after the run');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
