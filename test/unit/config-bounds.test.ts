// The bounds settings (issue #13) in the config file: defaults, valid values, and the worst values refused
// with an error naming the setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config.ts';

function withFile(yaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'rb-cfg-'));
  const file = join(dir, 'rackboot.yaml');
  writeFileSync(file, yaml);
  try {
    return loadConfig({ config: file }, {}, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('defaults: a 200-host rack fits; every bound has a value', () => {
  const c = loadConfig({}, {});
  assert.deepEqual(c.tftp, { maxTransfers: 600, maxPerClient: 8, maxTransferSec: 300, maxTimeoutSec: 10 });
  assert.deepEqual(c.http, {
    maxConnections: 4096,
    maxConnectionsPerAddress: 64,
    headersTimeoutMs: 15_000,
    requestTimeoutMs: 120_000,
    idleTimeoutMs: 65_000,
  });
  assert.deepEqual(c.events, {
    maxAgeMs: 90 * 86_400_000,
    maxPerHost: 2000,
    maxDetailBytes: 4096,
    ratePerHost: 2,
    burstPerHost: 100,
    repeatWindowMs: 5000,
  });
  assert.equal(c.syslog.maxAgeMs, 30 * 86_400_000);
  assert.equal(c.syslog.maxConnectionsPerSource, 4);
});

test('the config file sets them', () => {
  const c = withFile(
    [
      'tftp: { maxTransferSec: 120, maxTimeoutSec: 5 }',
      'http: { maxConnections: 1000, maxConnectionsPerAddress: 16, headersTimeout: 5s, requestTimeout: 1m, idleTimeout: 30s }',
      'events: { maxAge: 14d, maxPerHost: 500, maxDetailBytes: 1024, ratePerHost: 0.5, burstPerHost: 20, repeatWindow: 0 }',
      'syslog: { maxAge: 7d, maxConnectionsPerSource: 2 }',
      'tokenGrace: 12h',
    ].join('\n'),
  );
  assert.deepEqual(c.tftp, { maxTransfers: 600, maxPerClient: 8, maxTransferSec: 120, maxTimeoutSec: 5 });
  assert.deepEqual(c.http, {
    maxConnections: 1000,
    maxConnectionsPerAddress: 16,
    headersTimeoutMs: 5000,
    requestTimeoutMs: 60_000,
    idleTimeoutMs: 30_000,
  });
  assert.deepEqual(c.events, {
    maxAgeMs: 14 * 86_400_000,
    maxPerHost: 500,
    maxDetailBytes: 1024,
    ratePerHost: 0.5,
    burstPerHost: 20,
    repeatWindowMs: 0,
  });
  assert.equal(c.syslog.maxAgeMs, 7 * 86_400_000);
  assert.equal(c.syslog.maxConnectionsPerSource, 2);
  assert.equal(c.tokenGraceMs, 12 * 3600_000);
});

test('worst values are refused, naming the setting; nothing half-applied', () => {
  const rows: [string, RegExp][] = [
    ['tftp: { maxTimeoutSec: 256 }', /tftp\.maxTimeoutSec/],
    ['tftp: { maxTimeoutSec: 0 }', /tftp\.maxTimeoutSec/],
    ['tftp: { maxTransferSec: 1e12 }', /tftp\.maxTransferSec/],
    ['tftp: { maxTransferSec: "300" }', /tftp\.maxTransferSec/],
    ['http: { maxConnectionsPerAddress: 0 }', /http\.maxConnectionsPerAddress/],
    ['http: { maxConnections: -5 }', /http\.maxConnections/],
    ['http: { headersTimeout: "15 s" }', /http\.headersTimeout/],
    ['http: { idleTimeout: "65s\\r" }', /http\.idleTimeout/],
    ['http: { requestTimeout: "2m\\u2028" }', /http\.requestTimeout/],
    ['http: { maxConnection: 10 }', /maxConnection/],
    ['events: { maxPerHost: 1.5 }', /events\.maxPerHost/],
    ['events: { maxDetailBytes: 100 }', /events\.maxDetailBytes/],
    ['events: { ratePerHost: 0 }', /events\.ratePerHost/],
    ['events: { burstPerHost: 1.5 }', /events\.burstPerHost/],
    ['events: { burstPerHost: -1 }', /events\.burstPerHost/],
    ['events: { maxAge: [1] }', /events\.maxAge/],
    ['events: { repeatWindow: 2h }', /events\.repeatWindow/],
    ['events: { repeatWindow: -1 }', /events\.repeatWindow/],
    ['events: { repeatWindow: "5 s" }', /events\.repeatWindow/],
    ['syslog: { maxConnectionsPerSource: 0 }', /syslog\.maxConnectionsPerSource/],
    ['syslog: { maxAge: "\\u0000" }', /syslog\.maxAge/],
    ['tokenGrace: "\\r24h"', /--token-grace/],
  ];
  for (const [yaml, want] of rows) {
    assert.throws(
      () => withFile(yaml),
      (err: Error) => err instanceof ConfigError && want.test(err.message),
      yaml,
    );
  }
});
