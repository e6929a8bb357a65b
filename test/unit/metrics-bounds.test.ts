// The bounds metrics (issue #13) read their sources when scraped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../src/ops/metrics.ts';

test('rackboot_db_bytes, rackboot_http_connections, refusals by reason and TFTP evictions are exported', async () => {
  let evictions = 2;
  const m = createMetrics({ tftpEvictions: () => evictions, dbBytes: () => 123_456_789, httpConnections: () => 64 });
  m.httpRefused('per-address');
  m.httpRefused('per-address');
  m.httpRefused('headers-timeout');
  let text = await m.text();
  assert.match(text, /^rackboot_db_bytes 123456789$/m);
  assert.match(text, /^rackboot_http_connections 64$/m);
  assert.match(text, /^rackboot_http_connections_refused_total\{reason="per-address"\} 2$/m);
  assert.match(text, /^rackboot_http_connections_refused_total\{reason="headers-timeout"\} 1$/m);
  assert.match(text, /^rackboot_tftp_evictions_total 2$/m);
  evictions = 5;
  text = await m.text();
  assert.match(text, /^rackboot_tftp_evictions_total 5$/m, 'read again at each scrape');
  const bare = await createMetrics().text();
  assert.match(bare, /^rackboot_db_bytes 0$/m, 'no source: 0, not an error');
});
