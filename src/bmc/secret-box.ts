// BMC passwords at rest: AES-256-GCM (authenticated: a changed byte fails to decrypt rather than yielding
// garbage) with a key of its own, bmc.key in the data dir (0600). The host's MAC is the associated data, so
// a ciphertext copied onto another host's row does not decrypt there.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../ops/private-files.ts';

const VERSION = 'v1';

export interface SecretBox {
  seal(plain: string, context: string): string;
  /** Throws when the text was not sealed with this key and context (a wrong bmc.key, a copied row). */
  open(sealed: string, context: string): string;
}

/** The key of the data dir, created (32 random bytes, hex, 0600) on first use. */
export function loadBmcKey(dataDir: string): Buffer {
  const file = join(dataDir, 'bmc.key');
  ensurePrivateDir(dataDir);
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made it first
    }
    chmodSync(file, 0o600);
  }
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new Error(
      `${file} is damaged (expected 64 hex digits): restore it from backup, or delete it and set every BMC password again`,
    );
  }
  return Buffer.from(hex, 'hex');
}

export function secretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('a BMC key is 32 bytes');
  return {
    seal(plain, context) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(context));
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return `${VERSION}:${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64')}`;
    },
    open(sealed, context) {
      const [version, data] = sealed.split(':');
      if (version !== VERSION || !data) throw new Error('not a sealed BMC secret');
      const raw = Buffer.from(data, 'base64');
      if (raw.length < 28) throw new Error('a sealed BMC secret too short');
      const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      d.setAAD(Buffer.from(context));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    },
  };
}
