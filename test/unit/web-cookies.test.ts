// src/web/cookies.ts: the Cookie header as auth reads it, over the `cookie` package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCookies } from '../../src/web/cookies.ts';
import { parseCookies as parseCookiesInAuth } from '../../src/web/auth.ts';

test('cookies: first pair of a name wins, quotes and percent-encoding come off (as auth.ts parsed them)', () => {
  const header = 'a=1; rackboot_session=xyz; b="q%20r"; a=2';
  assert.deepEqual(
    [...parseCookies(header)],
    [
      ['a', '1'],
      ['rackboot_session', 'xyz'],
      ['b', 'q r'],
    ],
  );
  assert.deepEqual([...parseCookies(header)], [...parseCookiesInAuth(header)]);
});

test('cookies: malformed pairs are skipped, a bad escape stays raw, nothing throws', () => {
  const m = parseCookies('=x; ;;; flag; bad=%E0%A4%A; sp = v ; q="; e=');
  assert.equal(m.has(''), false);
  assert.equal(m.has('flag'), false);
  assert.equal(m.get('bad'), '%E0%A4%A');
  assert.equal(m.get('sp'), 'v');
  assert.equal(m.get('q'), '', 'a lone quote is an empty quoted value');
  assert.equal(m.get('e'), '');
  assert.deepEqual([...parseCookies(undefined)], []);
  assert.deepEqual([...parseCookies('')], []);
  // Wrong types (a header given twice arrives as an array from some proxies): no cookies, no exception.
  assert.deepEqual([...parseCookies(['a=1'] as unknown as string)], []);
  assert.deepEqual([...parseCookies(42 as unknown as string)], []);
});

test('cookies: worst values stay values (control characters, CR, U+2028/U+2029, NUL) and cannot inject names', () => {
  const m = parseCookies(
    'rackboot_session=a\r\nSet-Cookie: x=1; x=\u2028\u2029; n=\u0000\u001b[2J; __proto__=p; constructor=c',
  );
  assert.equal(m.get('rackboot_session'), 'a\r\nSet-Cookie: x=1');
  assert.equal(m.get('x'), '\u2028\u2029');
  assert.equal(m.get('n'), '\u0000\u001b[2J');
  assert.equal(m.get('constructor'), 'c');
  assert.equal(Object.getPrototypeOf(m), Map.prototype);
  assert.equal(m.size, 4, [...m.keys()].join(','));
});

test('cookies: a huge header (far past what node accepts) parses in linear time', () => {
  const pairs = Array.from({ length: 50_000 }, (_, i) => `k${i}=${'v'.repeat(20)}`).join('; ');
  const t0 = performance.now();
  const m = parseCookies(`${pairs}; rackboot_session=last`);
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(m.size, 50_001);
  assert.equal(m.get('rackboot_session'), 'last');
  assert.equal(parseCookies('a=' + '%'.repeat(1_000_000)).get('a')?.length, 1_000_000);
});
