// The native addon (native/*.c), built by `npm ci` through node-gyp. Everything that uses it has a
// portable fallback, so a machine without a compiler still serves, only slower (`rackboot doctor` says so).
import { createRequire } from 'node:module';

export interface NativeAddon {
  sendfileStart(socketFd: number, fileFd: number, offset: number, length: number, cb: (errno: number, sent: number) => void): object;
  sendfileCancel(job: object): void;
  sendfileSent(job: object): number;
  acceptPending(listenFd: number, max: number): number[];
}

function load(): NativeAddon | undefined {
  if (process.env.RACKBOOT_NATIVE === 'off') return undefined;
  try {
    return createRequire(import.meta.url)('../native/build/Release/rackboot.node') as NativeAddon;
  } catch {
    return undefined;
  }
}

export const native = load();
