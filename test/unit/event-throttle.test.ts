// The per-host event throttle (src/store/event-throttle.ts): burst, refill at the rate, state events free,
// bounded memory however many MACs send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventThrottle, isRepeatable, isStateEvent } from '../../src/store/event-throttle.ts';

test('burst, then the rate; tokens never exceed the burst; state events cost nothing', () => {
  const t = new EventThrottle({ ratePerSec: 4, burst: 10 });
  const admitted = (n: number, at: number, type = 'http') =>
    Array.from({ length: n }, () => t.admit('m', type, at)).filter(Boolean).length;
  assert.equal(admitted(15, 0), 10);
  assert.equal(admitted(5, 0, 'build.built'), 5, 'state events pass with the bucket empty');
  assert.equal(admitted(10, 500), 2, 'half a second at 4/s');
  assert.equal(admitted(100, 1_000_000), 10, 'a long pause refills to the burst, not beyond');
  assert.equal(t.dropped, 5 + 8 + 90);
  assert.deepEqual(t.takeSuppressed(), [{ mac: 'm', count: 103, byType: { http: 103 }, repeats: 0 }]);
  assert.deepEqual(t.takeSuppressed(), [], 'counts are taken once');
});

test('a repeat (the same key within the window) costs no token and is counted; after the window it is written again', () => {
  const t = new EventThrottle({ ratePerSec: 1, burst: 3, repeatWindowMs: 5000 });
  const at = (now: number, key = 'ks|200', type = 'kickstart.fetched') => t.admit('m', type, now, key);
  assert.equal(at(0), true, 'the first is written');
  assert.deepEqual([at(1), at(2), at(2999)], [false, false, false], 'repeats within 5 s');
  assert.equal(at(3000, 'ks|403'), true, 'a different event of the type is not a repeat');
  assert.equal(at(3001, 'ks|403'), false);
  assert.equal(at(3002, 'tftp|x', 'tftp.sent'), true, 'another type keeps its own last event');
  assert.equal(at(8001, 'ks|403'), true, 'the window has passed: written again');
  assert.equal(at(100, 'other'), false, 'a clock step backwards is not within the window, and the rate still applies');
  assert.equal(t.admit('m', 'build.built', 9000, 'x'), true, 'state events are never repeats');
  assert.equal(t.admit('m', 'build.built', 9000, 'x'), true);
  assert.deepEqual(t.takeSuppressed(), [{ mac: 'm', count: 5, byType: { 'kickstart.fetched': 5 }, repeats: 4 }]);
  const none = new EventThrottle({ ratePerSec: 1, burst: 3, repeatWindowMs: 0 });
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => none.admit('m', 'http', n, 'same')),
    [true, true, true, false],
    'window 0: repeats are written, within the rate',
  );
});

test('refusals and errors are never repeats (each is an attempt or a fault); fetches and progress may be', () => {
  for (const t of [
    'kickstart.refused',
    'config.refused',
    'built.refused',
    'kickstart.error',
    'bmc.error',
    'build.built',
  ])
    assert.ok(!isRepeatable(t), t);
  for (const t of ['kickstart.fetched', 'tftp.sent', 'http.tftpfile', 'dhcp.discover', 'grub.config', 'progress'])
    assert.ok(isRepeatable(t), t);
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
