// SHA-512 crypt against the specification's vectors and, live, against the system's crypt(3) (libxcrypt, through
// perl), mkpasswd (Debian whois) and openssl passwd -6: the hashes Anaconda and /etc/shadow will check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hashPassword, newSalt, sha512Crypt, verifyPassword } from '../../src/secrets/sha512crypt.ts';

// Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512", the SHA-512 test vectors (glibc's tst-sha512c).
const SPEC: [string, string, number | undefined, string][] = [
  [
    'Hello world!',
    'saltstring',
    undefined,
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  ],
  [
    'Hello world!',
    'saltstringsaltstring',
    10000,
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    'This is just a test',
    'toolongsaltstring',
    5000,
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    'anotherlongsaltstring',
    1400,
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
  ],
  [
    'we have a short salt string but not a short password',
    'short',
    77777,
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    'a short string',
    'asaltof16chars..gaga',
    123456,
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
  ],
  [
    'the minimum number is still observed',
    'roundstoolow',
    10,
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
];

test("sha512crypt: the specification's vectors (salt cut at 16, rounds clamped to 1000)", () => {
  for (const [pw, salt, rounds, want] of SPEC) {
    assert.equal(sha512Crypt(pw, salt, rounds), want);
    if ((rounds ?? 5000) <= 5000) assert.ok(verifyPassword(pw, want));
  }
});

// Lengths around the 64-byte digest (a password of exactly 64 bytes is where unixcrypt 3.0.4 goes wrong),
// multi-byte UTF-8, and the characters a shell or a shadow file treats specially.
const PASSWORDS = [
  '',
  'a',
  'x'.repeat(63),
  'x'.repeat(64),
  'x'.repeat(65),
  'y'.repeat(128),
  'z'.repeat(200),
  'pässwörd ✓ 密码',
  'with$dollar:colon',
  'tab\tand space ',
  '\u2028\u2029',
];
const SALTS = ['s', 'saltstring', 'exactly16chars..', './A9zZ'];

const tool = (cmd: string, args: string[]) => !spawnSync(cmd, args, { encoding: 'utf8' }).error;

test('sha512crypt: the same hashes as the system crypt(3) (libxcrypt through perl)', (t) => {
  if (!tool('perl', ['-e', '1'])) return t.skip('perl is not installed');
  // One perl for every case: a line of hex(setting) hex(password) in, a line of crypt() out.
  const cases: [string, string, number | undefined][] = [];
  // The default (5000, unwritten), the minimum, and a written one; every round count is one loop in the code.
  for (const pw of PASSWORDS)
    for (const salt of SALTS)
      for (const rounds of [undefined, 1000, salt === 's' ? 1234 : 1000]) cases.push([pw, salt, rounds]);
  const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
  const input = cases
    .map(
      ([pw, salt, rounds]) =>
        `${hex(rounds === undefined ? `$6$${salt}` : `$6$rounds=${rounds}$${salt}`)} ${hex(pw)}\n`,
    )
    .join('');
  const r = spawnSync(
    'perl',
    ['-ne', 'chomp; my ($s, $p) = map { pack("H*", $_) } split / /, $_, -1; print crypt($p, $s), "\\n"'],
    { input, encoding: 'utf8' },
  );
  const got = r.stdout.split('\n');
  if (!got[0].startsWith('$6$')) return t.skip(`this libc crypt(3) has no SHA-512 (${got[0]})`);
  cases.forEach(([pw, salt, rounds], i) =>
    assert.equal(sha512Crypt(pw, salt, rounds), got[i], `${JSON.stringify(pw)} ${salt} ${rounds}`),
  );
  assert.equal(got.length, cases.length + 1);
});

test('sha512crypt: the same hashes as mkpasswd -m sha-512 and openssl passwd -6', (t) => {
  const hasMkpasswd = tool('mkpasswd', ['--version']);
  const hasOpenssl = tool('openssl', ['version']);
  if (!hasMkpasswd && !hasOpenssl) return t.skip('neither mkpasswd (Debian whois) nor openssl is installed');
  for (const pw of PASSWORDS.filter((p) => p !== '' && !p.includes('\u2028'))) {
    for (const salt of ['exactly16chars..']) {
      if (hasMkpasswd) {
        const r = spawnSync('mkpasswd', ['-m', 'sha-512', '-R', '1000', '-S', salt, '--stdin'], {
          input: pw + '\n',
          encoding: 'utf8',
        });
        assert.equal(r.stdout.trim(), sha512Crypt(pw, salt, 1000), `mkpasswd ${JSON.stringify(pw)}`);
      }
      if (hasOpenssl) {
        const r = spawnSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], {
          input: pw + '\n',
          encoding: 'utf8',
        });
        assert.equal(r.stdout.trim(), sha512Crypt(pw, salt), `openssl ${JSON.stringify(pw)}`);
      }
    }
  }
});

test('sha512crypt: verify says no, without throwing, to malformed, foreign, short and huge-rounds hashes', () => {
  const good = sha512Crypt('pw', 'saltstring');
  for (const h of [
    '',
    'garbage',
    '$6$',
    '$6$salt$short',
    good.slice(0, -1),
    good + 'x',
    '$5$saltstring$' + good.slice(14),
    '$1$abc$def',
    '$6$rounds=abc$x$y',
    '$6$rounds=9999999999$s$x',
    `$6$${'s'.repeat(17)}$x`,
    good.replace('$6$', '$6$\r\n'),
    42 as unknown as string,
  ]) {
    assert.equal(verifyPassword('pw', h), false, JSON.stringify(h));
  }
  assert.equal(verifyPassword(undefined as unknown as string, good), false);
  assert.equal(verifyPassword('pw', good), true);
  assert.equal(verifyPassword('pW', good), false);
});

test('sha512crypt: new hashes have 16-character salts over the whole 64-symbol alphabet', () => {
  assert.match(hashPassword('x'), /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) for (const c of newSalt()) seen.add(c);
  // 3200 draws: a given symbol is missing with chance (63/64)^3200 < 1e-21.
  assert.equal(seen.size, 64);
});
