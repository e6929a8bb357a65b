// SHA-512 crypt ("$6$", Ulrich Drepper's SHA-crypt specification), the hash Anaconda's
// `rootpw --iscrypted` and /etc/shadow take. Node's crypto has no crypt(3), so it is written out here.
//
// Kept over the `unixcrypt` package (3.0.4), compared on 300 cases against libxcrypt's crypt(3) (through perl):
// unixcrypt hashes a password of exactly 64 bytes wrongly (its step 9 skips the one whole block), so such a root
// password would never log in; its verify() throws on a malformed or short hash where this returns false; and its
// random salts never use "z" (randomInt's upper bound is exclusive). Same speed (~70 ms per default hash).
// test/unit/sha512crypt.test.ts checks the specification's vectors and libxcrypt, mkpasswd and openssl live.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DEFAULT_ROUNDS = 5000;

const sha512 = (...parts: Buffer[]) => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

// The spec's byte permutation for SHA-512 output.
const ORDER = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];

function encode(digest: Buffer): string {
  let out = '';
  const put = (w: number, n: number) => {
    for (let i = 0; i < n; i++) {
      out += ITOA64[w & 0x3f];
      w >>>= 6;
    }
  };
  for (const [a, b, c] of ORDER) put((digest[a] << 16) | (digest[b] << 8) | digest[c], 4);
  put(digest[63], 2);
  return out;
}

export function sha512Crypt(password: string, salt: string, rounds?: number): string {
  const P = Buffer.from(password, 'utf8');
  const S = Buffer.from(salt.slice(0, 16), 'utf8');
  const r = rounds === undefined ? DEFAULT_ROUNDS : Math.min(999_999_999, Math.max(1000, rounds));

  const B = sha512(P, S, P);
  const a = createHash('sha512').update(P).update(S).update(repeatTo(B, P.length));
  for (let n = P.length; n > 0; n >>= 1) a.update(n & 1 ? B : P);
  const A = a.digest();

  const DP = createHash('sha512');
  for (let i = 0; i < P.length; i++) DP.update(P);
  const Pp = repeatTo(DP.digest(), P.length);
  const DS = createHash('sha512');
  for (let i = 0; i < 16 + A[0]; i++) DS.update(S);
  const Sp = repeatTo(DS.digest(), S.length);

  let C = A;
  for (let i = 0; i < r; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? Pp : C);
    if (i % 3) h.update(Sp);
    if (i % 7) h.update(Pp);
    h.update(i & 1 ? C : Pp);
    C = h.digest();
  }
  const roundsPart = rounds === undefined ? '' : `rounds=${r}$`;
  return `$6$${roundsPart}${S.toString('utf8')}$${encode(C)}`;
}

/** A fresh salt from the crypt alphabet: 6 random bits a character, 16 characters (96 bits) by default. */
export function newSalt(length = 16): string {
  return Array.from(randomBytes(length), (b) => ITOA64[b & 0x3f]).join('');
}

export function hashPassword(password: string): string {
  return sha512Crypt(password, newSalt());
}

export function verifyPassword(password: string, hash: string): boolean {
  if (typeof password !== 'string' || typeof hash !== 'string') return false;
  const m = /^\$6\$(?:rounds=(\d{1,9})\$)?([^$]{0,16})\$/.exec(hash);
  if (!m) return false;
  const computed = Buffer.from(sha512Crypt(password, m[2], m[1] === undefined ? undefined : Number(m[1])));
  const given = Buffer.from(hash);
  // Constant time: the comparison must not tell how much of a stored hash a guess matched.
  return computed.length === given.length && timingSafeEqual(computed, given);
}
