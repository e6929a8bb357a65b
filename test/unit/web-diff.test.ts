// src/web/diff.ts over jsdiff: minimal, numbered, bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffHunks, diffLines, unifiedDiff } from '../../src/web/diff.ts';

const changes = (a: string, b: string) => diffLines(a, b).filter((l) => l.kind !== 'same');

test('diff: lines are numbered on both sides, and replaying the diff gives both texts back', () => {
  const a = 'one\ntwo\nthree\nfour\n';
  const b = 'zero\none\nthree\nfour!\nfive\n';
  const all = diffLines(a, b);
  const side = (k: 'del' | 'add') =>
    all.filter((l) => l.kind === 'same' || l.kind === k).map((l) => (l.kind === 'skip' ? '' : l.text));
  assert.deepEqual(side('del'), ['one', 'two', 'three', 'four']);
  assert.deepEqual(side('add'), ['zero', 'one', 'three', 'four!', 'five']);
  assert.deepEqual(
    all.map((l) => (l.kind === 'skip' ? '' : `${l.kind}:${l.oldNo ?? ''}:${l.newNo ?? ''}`)),
    ['add::1', 'same:1:2', 'del:2:', 'same:3:3', 'del:4:', 'add::4', 'add::5'],
  );
});

test('diff: a long profile with two small edits is two small changes (the old n*m table gave up past 4M cells)', () => {
  const a = Array.from({ length: 20_000 }, (_, i) => `line ${i}`);
  const b = [...a];
  b[100] = 'changed';
  b.splice(15_000, 0, 'inserted');
  assert.deepEqual(
    changes(a.join('\n'), b.join('\n')).map((l) =>
      l.kind === 'skip' ? '' : `${l.kind}:${l.text}:${l.oldNo ?? l.newNo}`,
    ),
    ['del:line 100:101', 'add:changed:101', 'add:inserted:15001'],
  );
  const u = unifiedDiff(a.join('\n'), b.join('\n'), 'x (before)', 'x (after)');
  assert.match(u, /^--- x \(before\)\n\+\+\+ x \(after\)\n@@ 97 unchanged line\(s\) @@\n line 97\n/);
  assert.equal(u.split('\n').filter((l) => /^[-+][^-+]/.test(l)).length, 3);
});

test('diff: work is bounded: texts with nothing in common are shown as replaced, fast, at any size', () => {
  for (const n of [600, 5_000, 200_000]) {
    const a = Array.from({ length: n }, (_, i) => `a${i}`).join('\n');
    const b = Array.from({ length: n }, (_, i) => `b${i}`).join('\n');
    const t0 = performance.now();
    const d = diffLines(a, b);
    assert.ok(performance.now() - t0 < 2_000, `${n} lines took ${performance.now() - t0} ms`);
    assert.equal(d.length, 2 * n);
    assert.deepEqual([d[0].kind, d[n].kind], ['del', 'add']);
  }
});

test('diff: worst values are text, not structure: CR, U+2028/U+2029, control characters, a lone CR', () => {
  assert.deepEqual(changes('a\r\nb\r\n', 'a\nb\n'), [], 'CRLF and LF files with the same lines do not differ');
  const d = changes('x\u2028y\nz\r\n', 'x\u2028y\nz\rq\n\u0000\u001b[2J\n');
  assert.deepEqual(
    d.map((l) => (l.kind === 'skip' ? '' : `${l.kind}:${JSON.stringify(l.text)}`)),
    ['del:"z"', 'add:"z\\rq"', 'add:"\\u0000\\u001b[2J"'],
  );
  assert.deepEqual(diffHunks('', ''), []);
  assert.equal(unifiedDiff('same\n', 'same'), '', 'a missing last newline is no change');
});
