// Test support: a real core (SQLite file in a temp dir, the shipped profiles and templates).
import { mkdtempSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../../src/config.ts';
import { openCore, type Core } from '../../src/serve.ts';
import { silentLogger } from '../../src/log.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface TestEnv {
  dir: string;
  config: Config;
  core: Core;
  /** Closes the core (flushing queued events) and removes the dir. */
  cleanup(): Promise<void>;
}

export function tempDir(prefix = 'rackboot-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A core over a fresh data dir and a private copy of profiles/ (tests may edit it). `database` (a flag like the
 * others) puts it on PostgreSQL instead of the data dir's SQLite file.
 */
export async function makeEnv(extraFlags: Record<string, string> = {}): Promise<TestEnv> {
  const dir = tempDir();
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  const config = loadConfig(
    {
      'data-dir': join(dir, 'data'),
      'profiles-dir': join(dir, 'profiles'),
      'tftp-root': join(dir, 'tftpboot'),
      'images-dir': join(dir, 'images'),
      'public-url': 'http://10.99.0.1:8080',
      'server-ip': '10.99.0.1',
      listen: '127.0.0.1',
      ...extraFlags,
    },
    {},
    dir,
  );
  const core = await openCore(config, silentLogger());
  return {
    dir,
    config,
    core,
    cleanup: async () => {
      try {
        await core.close();
      } catch {
        /* closed already */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const SAMPLE_HOST = {
  mac: '52:54:00:aa:bb:01',
  hostname: 'rhvh01',
  profile: 'rhvh-base',
  ip: '10.99.0.11',
  netmask: '255.255.255.0',
  gateway: '10.99.0.1',
  rack: 'R1',
  position: 'U1',
};
