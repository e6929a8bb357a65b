import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ksValue,
  shellWord,
  grubWord,
  ipxeWord,
  pxelinuxWord,
  commentText,
  snippetLines,
  EscapeError,
} from '../../src/render/escape.ts';
import { words } from '../../src/render/kickstart-check.ts';
import { tempDir } from '../support/core.ts';

/** Printable values that are syntax somewhere: quotes, $, backquote, backslash, globs, comment signs, operators, blanks, Unicode. */
const NASTY = [
  'plain',
  'two words',
  "it's",
  'say "hi"',
  `mixed 'single' and "double"`,
  '$HOME',
  '${x}',
  '$(id)',
  '`id`',
  'back\\slash',
  'trail\\',
  '\\"',
  'a;b',
  'a && b',
  'a || b',
  'a|b',
  'a&b',
  '<in',
  '>out',
  '{a}',
  '#hash',
  'mid#hash',
  '*',
  '?',
  '[a]',
  '~root',
  '!event',
  '%end',
  ' lead',
  'trail ',
  'http://x/?a=1&b=2#f',
  "''",
  '""',
  '',
  'é日本',
  '\u00a0nbsp',
  "a'\\''b",
  '-n',
  '--opt=x',
];
const CONTROL = ['\r', '\n', '\u0000', '\u007f', '\u0085', '\u2028', '\u2029', '\u001b', '\t'];

test('shell words: bash reads back exactly the value, whatever it holds', () => {
  const script = NASTY.map((v) => `printf '%s\\0' ${shellWord(v)}`).join('\n');
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\0').slice(0, -1), NASTY);
  assert.equal(
    shellWord('http://10.0.0.1:8080/built/abc-_'),
    'http://10.0.0.1:8080/built/abc-_',
    'plain words stay readable',
  );
});

test('kickstart values: Python shlex (as pykickstart splits command lines) reads back exactly the value', () => {
  const lines = NASTY.map((v) => `network --hostname=${ksValue(v)} --activate`);
  // shlex.split(line, comments=True) is what pykickstart's parser.py does for a command line.
  const py = spawnSync(
    'python3',
    ['-c', 'import json,shlex,sys\nprint(json.dumps([shlex.split(l, comments=True) for l in json.load(sys.stdin)]))'],
    { input: JSON.stringify(lines), encoding: 'utf8' },
  );
  assert.equal(py.status, 0, py.stderr);
  const parsed = JSON.parse(py.stdout) as string[][];
  NASTY.forEach((v, i) => {
    assert.deepEqual(
      parsed[i],
      ['network', `--hostname=${v}`, '--activate'],
      `value ${JSON.stringify(v)} written as ${lines[i]}`,
    );
    assert.deepEqual(words(lines[i]), parsed[i], 'the project checker splits like shlex');
  });
});

/** The characters of a GRUB word that are neither inside single quotes nor backslash-escaped (GRUB's lexer rules). */
function grubOutsideQuotes(w: string): string {
  let out = '';
  for (let i = 0; i < w.length; i++) {
    if (w[i] === "'") {
      const end = w.indexOf("'", i + 1);
      assert.ok(end > i, `unclosed quote in ${w}`);
      i = end;
    } else if (w[i] === '\\') i++;
    else out += w[i];
  }
  return out;
}

test(
  'GRUB words: quoted so grub-script-check passes and no metacharacter is left outside quotes',
  {
    skip: spawnSync('grub-script-check', ['--help']).error
      ? 'grub-script-check not installed (apt-get install grub-common)'
      : false,
  },
  () => {
    const dir = tempDir();
    for (const v of NASTY) {
      const w = grubWord(v);
      // Outside single quotes only characters GRUB reads literally may remain.
      assert.equal(grubOutsideQuotes(w).replace(/[A-Za-z0-9_@%+=:,./-]/g, ''), '', `${JSON.stringify(v)} -> ${w}`);
      const f = join(dir, 'x.cfg');
      writeFileSync(f, `menuentry ${grubWord(`title ${v}`)} {\n  linux /vmlinuz ${w} quiet\n}\n`);
      const r = spawnSync('grub-script-check', [f], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${JSON.stringify(v)} -> ${w}: ${r.stderr}${r.stdout}`);
    }
    assert.equal(grubWord("it's"), `'it'\\''s'`);
    assert.equal(grubWord('http://x/?a=1&b=2'), `'http://x/?a=1&b=2'`);
  },
);

test('iPXE and pxelinux words: what they cannot express is refused, an & in a URL is kept', () => {
  assert.equal(ipxeWord('inst.stage2=http://x/?a=1&b=2'), 'inst.stage2=http://x/?a=1&b=2');
  assert.equal(pxelinuxWord('inst.stage2=http://x/?a=1&b=2'), 'inst.stage2=http://x/?a=1&b=2');
  for (const bad of ['two words', '${x}', '$x', 'a&&b', 'a||b', 'a;b', '#x', 'trail\\', '"q"', "'q'", '']) {
    assert.throws(
      () => ipxeWord(bad),
      (e: unknown) => e instanceof EscapeError && e.target === 'ipxe',
      bad,
    );
  }
  for (const bad of ['two words', '"q"', "'q'", 'a\\b', '']) assert.throws(() => pxelinuxWord(bad), EscapeError, bad);
});

test('every target refuses control characters and line separators, naming the character', () => {
  for (const f of [ksValue, shellWord, grubWord, ipxeWord, pxelinuxWord, commentText]) {
    for (const c of CONTROL) {
      assert.throws(
        () => f(`a${c}b`),
        (e: unknown) => e instanceof EscapeError && /character U\+[0-9A-F]{4} \(/.test(e.message),
        `${f.name} ${JSON.stringify(c)}`,
      );
    }
  }
  assert.throws(() => snippetLines('echo\n%end'), /line 2 starts with "%"/);
  assert.equal(snippetLines('echo a\n\techo b'), 'echo a\n\techo b');
});
