// Syslog parsing and framing (pure), the bounded store, and the small pure helpers of src/ops and src/log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { parseSyslog, SyslogFramer } from '../../src/ops/syslog-parse.ts';
import { SyslogRepo } from '../../src/store/repo/syslog.ts';
import { SqliteSql } from '../../src/store/sqlite-sql.ts';
import { dhcpMessageType } from '../../src/ops/metrics.ts';
import { openDb } from '../../src/store/db.ts';
import { createLogger, formatPretty, scrubTokens } from '../../src/log.ts';
import type { Mac } from '../../src/net/mac.ts';

const b = (s: string) => Buffer.from(s, 'utf8');

test('RFC 3164: PRI, BSD timestamp, hostname, tag[pid] (as rsyslog forwards Anaconda)', () => {
  const r = parseSyslog(b('<30>May  1 10:00:00 localhost anaconda[1234]: Running pre-installation scripts\n'));
  assert.ok(r.ok);
  assert.deepEqual(r.ok && r.message, {
    facility: 3,
    severity: 6,
    format: '3164',
    time: 'May  1 10:00:00',
    hostname: 'localhost',
    app: 'anaconda',
    procid: '1234',
    text: 'Running pre-installation scripts',
    truncated: false,
    invalidUtf8: false,
  });
});

test('RFC 3164 variants: RFC 3339 timestamp, no hostname, no timestamp, no PRI (4.3.3: user.notice)', () => {
  const iso = parseSyslog(b('<11>2024-05-01T10:00:00.123456+00:00 rhvh01 program: exit code 1'));
  assert.ok(
    iso.ok &&
      iso.message.format === '3164' &&
      iso.message.hostname === 'rhvh01' &&
      iso.message.app === 'program' &&
      iso.message.severity === 3 &&
      iso.message.text === 'exit code 1',
  );
  const local = parseSyslog(b('<13>May 11 01:02:03 kernel: oops'));
  assert.ok(
    local.ok && local.message.app === 'kernel' && local.message.hostname === undefined && local.message.text === 'oops',
  );
  const bare = parseSyslog(b('<14>storage: sda1 is too small'));
  assert.ok(bare.ok && bare.message.app === 'storage' && bare.message.text === 'sda1 is too small');
  const nopri = parseSyslog(b('just text'));
  assert.ok(
    nopri.ok &&
      nopri.message.facility === 1 &&
      nopri.message.severity === 5 &&
      nopri.message.format === 'raw' &&
      nopri.message.text === 'just text',
  );
});

test('RFC 5424: header fields, nil values, structured data with escapes, BOM before MSG', () => {
  const r = parseSyslog(
    b(
      '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Appli\\]cation"][x@1 a="b"] \ufeffAn application event',
    ),
  );
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.message.format, '5424');
  assert.equal(r.message.facility, 20);
  assert.equal(r.message.severity, 5);
  assert.equal(r.message.hostname, 'mymachine.example.com');
  assert.equal(r.message.app, 'evntslog');
  assert.equal(r.message.procid, undefined);
  assert.equal(r.message.msgid, 'ID47');
  assert.equal(r.message.sd, '[exampleSDID@32473 iut="3" eventSource="Appli\\]cation"][x@1 a="b"]');
  assert.equal(r.message.text, 'An application event');
  const nil = parseSyslog(b('<34>1 - - - - - -'));
  assert.ok(nil.ok && nil.message.format === '5424' && nil.message.text === '' && nil.message.hostname === undefined);
  const broken = parseSyslog(b('<34>1 2003-10-11T22:14:15Z host app - - [unterminated sd'));
  assert.ok(broken.ok && broken.message.format !== '5424', 'a broken 5424 header is kept as text, not dropped');
});

test('refused: empty, bad or out-of-range PRI; control characters are shown, not obeyed; invalid UTF-8 flagged', () => {
  for (const bad of ['', '\n\r\0', '<192>x', '<01>x', '<abc>x', '<>x', '<9999>x'])
    assert.equal(parseSyslog(b(bad)).ok, false, JSON.stringify(bad));
  const ctl = parseSyslog(b('<14>app: line1\nFAKE line2\x1b[31m\x07'));
  assert.ok(ctl.ok && ctl.message.text === 'line1\\x0aFAKE line2\\x1b[31m\\x07');
  const inv = parseSyslog(Buffer.concat([b('<14>app: caf'), Buffer.from([0xc3, 0x28, 0xff]), b(' end')]));
  assert.ok(
    inv.ok && inv.message.invalidUtf8 && inv.message.text.includes('\ufffd') && inv.message.text.endsWith(' end'),
  );
});

test('a line over the byte limit is cut and flagged; a cut inside a UTF-8 sequence is not "invalid UTF-8"', () => {
  const long = parseSyslog(b('<14>app: ' + 'é'.repeat(5000)), 1001);
  assert.ok(long.ok && long.message.truncated && !long.message.invalidUtf8);
  assert.ok(long.ok && Buffer.byteLength(long.message.text) <= 1001);
});

test('fuzz: 20000 random and mutated datagrams never throw, and what is kept stays within the byte limit', () => {
  const seeds = [
    '<30>May  1 10:00:00 h app[1]: x',
    '<165>1 2003-10-11T22:14:15.003Z h a p m [s@1 a="b"] t',
    '<14>x: y',
  ].map(b);
  for (let i = 0; i < 20000; i++) {
    let bytes: Buffer;
    if (i % 2) bytes = randomBytes(Math.floor(Math.random() * 3000));
    else {
      bytes = Buffer.from(seeds[i % seeds.length]);
      for (let k = 0; k < 4; k++) bytes[Math.floor(Math.random() * bytes.length)] = Math.floor(Math.random() * 256);
    }
    const r = parseSyslog(bytes, 1024);
    if (r.ok)
      assert.ok(
        Buffer.byteLength(r.message.text) <= 1024 * 4 + 64,
        'bounded (control chars expand to 4 characters at most)',
      );
  }
});

test('TCP framing (RFC 6587): octet counting and LF, split anywhere, over-long frames cut and bounded', () => {
  const f = new SyslogFramer(64);
  const stream = b('10 <14>a: one<14>b: two\n12 <14>c: three<14>d: ' + 'x'.repeat(200) + '\n<14>e: five\n');
  const frames: string[] = [];
  for (let i = 0; i < stream.length; i += 7)
    for (const fr of f.push(stream.subarray(i, i + 7))) frames.push(fr.toString());
  assert.deepEqual(
    frames.map((x) => x.slice(0, 12)),
    ['<14>a: one', '<14>b: two', '<14>c: three', '<14>d: xxxxx', '<14>e: five'],
  );
  assert.equal(frames[3].length, 64);
  assert.equal(f.cut, 1);
  const big = new SyslogFramer(100);
  const out = big.push(b('100000 <14>z: ' + 'y'.repeat(1000)));
  assert.equal(out.length, 1);
  assert.ok(big.buffered <= 111, 'a huge announced length is not buffered');
  assert.deepEqual(big.push(Buffer.concat([Buffer.alloc(100000 - 1007, 'y'), b('<14>after: ok\n')])).map(String), [
    '<14>after: ok',
  ]);
  const endless = new SyslogFramer(100);
  for (let i = 0; i < 1000; i++) endless.push(Buffer.alloc(1000, 0x41));
  assert.ok(endless.buffered <= 111, 'an endless line without LF is not buffered');
  const junk = new SyslogFramer(100);
  assert.deepEqual(junk.push(b('123456789012345 junk\n<14>ok: 1\n')).map(String), ['<14>ok: 1']);
});

test('store: ring per build keeps the newest lines, a total cap keeps the disk bounded, a full queue drops and counts', async () => {
  const db = openDb(':memory:');
  const s = new SyslogRepo(new SqliteSql(db), { ringLines: 100, maxTotalLines: 1000, maxQueued: 500 });
  const mac = '52:54:00:00:00:01' as Mac;
  const line = (buildId: number, n: number) => ({
    buildId,
    mac,
    at: n,
    facility: 1,
    severity: n % 8,
    text: `line ${n} of ${buildId}`,
  });
  for (let n = 0; n < 450; n++) s.append(line(1, n));
  await s.flush();
  assert.equal(await s.count(1), 100);
  assert.equal((await s.search({ buildId: 1, limit: 1 }))[0].text, 'line 449 of 1');
  assert.equal((await s.search({ buildId: 1, limit: 5000 }))[0].text, 'line 350 of 1', 'the oldest kept line');
  assert.equal(s.stats.evicted, 350);
  for (let n = 0; n < 600; n++) assert.equal(s.append(line(2, n)), n < 500);
  assert.equal(s.stats.droppedQueueFull, 100);
  await s.flush();
  for (let b = 3; b < 20; b++) {
    for (let n = 0; n < 100; n++) s.append(line(b, n));
    await s.flush();
  }
  const total = (db.prepare('SELECT COUNT(*) n FROM syslog').get() as { n: number }).n;
  assert.ok(total <= 1000, `total ${total}`);
  assert.equal(await s.count(1), 0, 'the oldest build went first');
  assert.equal(await s.count(19), 100);
  db.close();
});

test('store: search is a case-insensitive substring (LIKE wildcards are literal), by severity, paged back by id', async () => {
  const db = openDb(':memory:');
  const s = new SyslogRepo(new SqliteSql(db), { ringLines: 1000, maxTotalLines: 100000, maxQueued: 1000 });
  const mac = '52:54:00:00:00:01' as Mac;
  const texts = ['Disk sda FAILED', 'disk ok', '100% done', '100 percent', 'under_score', 'underXscore'];
  texts.forEach((text, i) => s.append({ buildId: 7, mac, at: i, facility: 1, severity: i, text }));
  await s.flush();
  assert.deepEqual(
    (await s.search({ buildId: 7, q: 'DISK' })).map((l) => l.text),
    ['Disk sda FAILED', 'disk ok'],
  );
  assert.deepEqual(
    (await s.search({ buildId: 7, q: '100%' })).map((l) => l.text),
    ['100% done'],
  );
  assert.deepEqual(
    (await s.search({ buildId: 7, q: 'under_' })).map((l) => l.text),
    ['under_score'],
  );
  assert.deepEqual(
    (await s.search({ buildId: 7, maxSeverity: 1 })).map((l) => l.text),
    ['Disk sda FAILED', 'disk ok'],
  );
  const last2 = await s.search({ buildId: 7, limit: 2 });
  assert.deepEqual(
    (await s.search({ buildId: 7, limit: 2, beforeId: last2[0].id })).map((l) => l.text),
    ['100% done', '100 percent'],
  );
  assert.equal((await s.search({ buildId: 8 })).length, 0);
  assert.match((await s.tail(7, 1))[0], /^1970-01-01T00:00:00\.005Z notice underXscore$/);
  db.close();
});

test('dhcpMessageType reads option 53 without a full decode; garbage is "invalid"', () => {
  const p = Buffer.alloc(300);
  p.writeUInt32BE(0x63825363, 236);
  Buffer.from([0, 12, 3, 0x61, 0x62, 0x63, 53, 1, 3, 255]).copy(p, 240);
  assert.equal(dhcpMessageType(p), 'request');
  assert.equal(dhcpMessageType(Buffer.alloc(10)), 'invalid');
  const none = Buffer.from(p);
  none[246] = 54;
  assert.equal(dhcpMessageType(none), 'none');
});

test('logs: tokens in URL paths are cut to a hint, secret fields redacted; pretty lines lead with the host', () => {
  let out = '';
  const sink = new Writable({
    write(c, _e, cb) {
      out += c;
      cb();
    },
  });
  const log = createLogger({ destination: sink });
  const token = 'AbCdEf0123456789abcdefghijklmnopqrstuvwxyzAB';
  log.error(
    {
      path: `/ks/${token}`,
      url: `http://x/built/${token}?a=1`,
      token,
      password: 'hunter2',
      headers: { authorization: 'Bearer sekrit' },
      activationKey: 'ak-1',
    },
    'request failed',
  );
  assert.ok(
    !out.includes(token) &&
      !out.includes('0123456789') &&
      !out.includes('hunter2') &&
      !out.includes('sekrit') &&
      !out.includes('ak-1'),
    out,
  );
  assert.match(out, /\/ks\/AbCdEf…/);
  assert.deepEqual(scrubTokens({ a: 1, b: 'no token here' }), { a: 1, b: 'no token here' });
  const line = formatPretty(
    JSON.stringify({
      level: 30,
      time: Date.UTC(2024, 0, 1, 12, 0, 1, 234),
      msg: 'build started',
      mac: '52:54:00:00:00:01',
      buildId: 7,
      tokenPrefix: 'AbCdEf…',
    }),
  );
  assert.equal(line, '12:00:01.234 INFO  build started  mac=52:54:00:00:00:01 buildId=7  tokenPrefix=AbCdEf…\n');
  assert.equal(formatPretty('not json'), 'not json\n');
  let pretty = '';
  createLogger({
    format: 'pretty',
    destination: new Writable({
      write(c, _e, cb) {
        pretty += c;
        cb();
      },
    }),
  }).info({ mac: 'm', buildId: 1 }, 'hello');
  assert.match(pretty, /^\d\d:\d\d:\d\d\.\d{3} INFO  hello  mac=m buildId=1\n$/);
});
