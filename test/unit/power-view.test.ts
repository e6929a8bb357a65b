// The host page's power block from the timeline: last state, BMC errors since (bounded), hostile answers kept as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { powerView } from '../../src/web/power-view.ts';

test('power view: none without BMC events; the last state; errors after the last success, at most 3', () => {
  assert.equal(powerView([{ type: 'dhcp.ack', at: 1 }]), undefined);
  const v = powerView([
    { type: 'bmc.error', at: 1, status: 'x', detail: { action: 'power on', bmc: 'https://10.0.0.5', answer: 'old' } },
    { type: 'bmc.power', at: 2, status: 'On', detail: { action: 'on', powerState: 'On' } },
    ...[3, 4, 5, 6].map((at) => ({
      type: 'bmc.error',
      at,
      status: '401',
      detail: { action: 'power cycle', bmc: 'https://10.0.0.5', answer: `401 Unauthorized #${at}` },
    })),
  ]);
  assert.equal(v?.state, 'On');
  assert.equal(v?.action, 'on');
  assert.deepEqual(
    v?.errors.map((e) => e.answer),
    ['401 Unauthorized #4', '401 Unauthorized #5', '401 Unauthorized #6'],
  );
  assert.equal(v?.errors[0]?.bmc, 'https://10.0.0.5');
});

test('power view: a rollout power-on counts; an answer that is not text is shown as JSON, not lost', () => {
  const v = powerView([
    { type: 'power.cycle', at: 1, status: 'auto' },
    { type: 'bmc.error', at: 2, detail: { answer: { error: { code: 'Base.1.0.GeneralError' } } } },
  ]);
  assert.equal(v?.state, 'On');
  assert.equal(v?.action, 'cycle');
  assert.equal(v?.errors[0]?.answer, '{"error":{"code":"Base.1.0.GeneralError"}}');
});
