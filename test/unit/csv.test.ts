// parseCsv over csv-parse: the rows and the line each starts on, as the hand-written parser gave them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRackCsv, parseCsv, MAX_CSV_ROWS } from '../../src/hosts/csv.ts';

const cells = (t: string) => parseCsv(t).rows.map((r) => r.cells);
const lines = (t: string) => parseCsv(t).rows.map((r) => r.line);

test('csv: a quoted field over several lines starts its row on its first line, with LF, CRLF or CR', () => {
  for (const eol of ['\n', '\r\n', '\r']) {
    const t = ['h1,h2', `"a${eol}b${eol}c",2`, '3,"4"', ''].join(eol);
    assert.deepEqual(lines(t), [1, 2, 5], JSON.stringify(eol));
    assert.deepEqual(cells(t)[1], ['a\nb\nc', '2'], 'a line break inside quotes reads as LF, whatever the file used');
  }
});

test('csv: blank and whitespace-only lines are skipped but counted', () => {
  assert.deepEqual(lines('\n\na,b\n  ,\t\n\r\n,\nc,d'), [3, 7]);
  assert.deepEqual(cells(''), []);
  assert.deepEqual(cells('\r\n\r\n'), []);
});

test('csv: quotes: "" escapes, a quote inside an unquoted field is text, a quoted empty field is empty', () => {
  assert.deepEqual(cells('"a""b",c\na"b,"x,y"\n"",x'), [
    ['a"b', 'c'],
    ['a"b', 'x,y'],
    ['', 'x'],
  ]);
  // Malformed (text after a closing quote): kept as written rather than losing the quotes.
  assert.deepEqual(cells('"ab"cd,e'), [['"ab"cd', 'e']]);
});

test('csv: an unclosed quote names the line its record starts on, after multi-line records too', () => {
  assert.equal(parseCsv('a,b\n"open,2\n').error, 'line 2: a quoted field is never closed');
  assert.equal(parseCsv('"open').error, 'line 1: a quoted field is never closed');
  assert.equal(parseCsv('a,b\r\n"x\r\ny",1\r\n\r\n3,"never\r\n\r\n').error, 'line 5: a quoted field is never closed');
  const r = checkRackCsv('mac,hostname,profile\n52:54:00:00:00:01,h1,"rhvh-base\n', {
    profileExists: () => true,
    macTaken: () => false,
    ipTaken: () => false,
    hostnameTaken: () => false,
  });
  assert.deepEqual(r, { ok: false, status: 422, problems: ['line 2: a quoted field is never closed'] });
});

test('csv: worst values stay in their cell (control characters, U+2028/U+2029, NUL) for the field checks to refuse', () => {
  const t = 'a,b\n"x\u2028y","\u0000\u0007\u001b[2J"\nz\u2029,\u007f';
  assert.deepEqual(cells(t), [
    ['a', 'b'],
    ['x\u2028y', '\u0000\u0007\u001b[2J'],
    ['z\u2029', '\u007f'],
  ]);
  assert.deepEqual(lines(t), [1, 2, 3], 'U+2028/U+2029 are not line breaks in CSV');
  const none = { profileExists: () => true, macTaken: () => false, ipTaken: () => false, hostnameTaken: () => false };
  const bad = checkRackCsv('mac,hostname,profile\n52:54:00:00:00:01,"h\u2028x",rhvh-base\n', none);
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.match(bad.problems.join('\n'), /^line 2: hostname: /);
});

test('csv: a huge file parses in one pass and is refused by its row count', () => {
  const row = '52:54:00:00:00:01,h,rhvh-base';
  const t = ['mac,hostname,profile', ...Array.from({ length: MAX_CSV_ROWS + 1 }, () => row)].join('\r\n');
  const t0 = performance.now();
  const r = checkRackCsv(t, {
    profileExists: () => true,
    macTaken: () => false,
    ipTaken: () => false,
    hostnameTaken: () => false,
  });
  assert.ok(performance.now() - t0 < 5000);
  assert.deepEqual(r, {
    ok: false,
    status: 422,
    problems: [`the file has ${MAX_CSV_ROWS + 1} rows; import at most ${MAX_CSV_ROWS} at a time`],
  });
  const long = 'x'.repeat(1_000_000);
  assert.deepEqual(cells(`a\n"${long}"`)[1], [long]);
});
