// The per-host event throttle (src/store/event-throttle.ts): burst, refill at the rate, state events free,
// bounded memory however many MACs send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventThrottle, isStateEvent } from '../../src/store/event-throttle.ts';

test('burst, then the rate; tokens never exceed the burst; state events cost nothing', () => {
  const t = new EventThrottle({ ratePerSec: 4, burst: 10 });
  const admitted = (n: number, at: number, type = 'http') =>
    Array.from({ length: n }, () => t.admit('m', type, at)).filter(Boolean).length;
  assert.equal(admitted(15, 0), 10);
  assert.equal(admitted(5, 0, 'build.built'), 5, 'state events pass with the bucket empty');
  assert.equal(admitted(10, 500), 2, 'half a second at 4/s');
  assert.equal(admitted(100, 1_000_000), 10, 'a long pause refills to the burst, not beyond');
  assert.equal(t.dropped, 5 + 8 + 90);
  assert.deepEqual(t.takeSuppressed(), [{ mac: 'm', count: 103, byType: { http: 103 } }]);
  assert.deepEqual(t.takeSuppressed(), [], 'counts are taken once');
});

test('which events are never dropped', () => {
  for (const t of [
    'build.start',
    'build.built',
    'build.failed',
    'build.cancel',
    'bmc.power',
    'webhook.failed',
    'stuck',
  ])
    assert.ok(isStateEvent(t), t);
  for (const t of ['http', 'tftp.sent', 'kickstart.fetched', 'discover', 'progress', 'config.refused', 'built'])
    assert.ok(!isStateEvent(t), t);
});

test('a million spoofed MACs keep the table bounded', () => {
  const t = new EventThrottle({ ratePerSec: 1, burst: 10 });
  for (let i = 0; i < 1_000_000; i++) t.admit(`m${i}`, 'discover', i);
  const size = (t as unknown as { buckets: Map<string, unknown> }).buckets.size;
  assert.ok(size <= 65_536, `tracked ${size}`);
  assert.ok(t.admit('m999999', 'discover', 1_000_000), 'a recent host still has tokens');
});
