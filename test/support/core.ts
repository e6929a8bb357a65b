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
  cleanup(): void;
}

export function tempDir(prefix = 'rackboot-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A core over a fresh data dir and a private copy of profiles/ (tests may edit it). */
export function makeEnv(extraFlags: Record<string, string> = {}): TestEnv {
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
  const core = openCore(config, silentLogger());
  return {
    dir,
    config,
    core,
    cleanup: () => {
      try {
        core.events.flush();
        core.db.close();
        core.durableDb.close();
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
