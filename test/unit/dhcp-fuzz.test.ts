// In-suite share of the fuzz (the 1,000,000-packet run is test/bench/dhcp-fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEngineFuzz } from '../fixtures/dhcp/fuzz-run.ts';

const N = Number(process.env.DHCP_FUZZ ?? 60_000);

test(`fuzz: ${N} random and mutated packets through the full engine path, no internal error, replies valid, still correct after`, async () => {
  const s = await runEngineFuzz(N, 20261125);
  assert.deepEqual(s.internalErrors.slice(0, 3), []);
  assert.deepEqual(s.violations.slice(0, 5), []);
  assert.equal(s.packets, N);
  assert.ok(
    s.replies > N / 50,
    `the fuzzer reaches the answer path (${s.replies} replies: ${JSON.stringify(s.byType)})`,
  );
  assert.ok(s.byType[2] && s.byType[5] && s.byType[6], `offers, acks and naks all seen: ${JSON.stringify(s.byType)}`);
});
