// Test support: the config of a whole rackboot server (startRackboot or bin/rackboot.mjs) over a fresh data dir
// with a private copy of profiles/, on loopback with ephemeral ports.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config.ts';
import { REPO, tempDir } from './core.ts';

/** A fresh dir (`prefix`), its copy of profiles/, and a config on 127.0.0.1 (HTTP and TFTP port 0). */
export function loopbackConfig(prefix: string): { dir: string; config: Config } {
  const dir = tempDir(prefix);
  cpSync(join(REPO, 'profiles'), join(dir, 'profiles'), { recursive: true });
  const config = loadConfig(
    {
      listen: '127.0.0.1',
      'http-port': '0',
      'tftp-port': '0',
      ...dirFlagsOf(dir),
      'public-url': 'http://127.0.0.1:8080',
    },
    {},
    dir,
  );
  return { dir, config };
}

/** The data, profiles, TFTP and images dirs below `dir`, by flag name. */
function dirFlagsOf(dir: string): Record<string, string> {
  return {
    'data-dir': join(dir, 'data'),
    'profiles-dir': join(dir, 'profiles'),
    'tftp-root': join(dir, 'tftpboot'),
    'images-dir': join(dir, 'images'),
  };
}

/** The same dirs as command-line flags, and --public-url, for a spawned bin/rackboot.mjs. */
export function dirArgsOf(dir: string, publicUrl: string): string[] {
  return [...Object.entries(dirFlagsOf(dir)).flatMap(([k, v]) => [`--${k}`, v]), '--public-url', publicUrl];
}
