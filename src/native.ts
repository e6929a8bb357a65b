// The native addon (native/*.c), built by `npm ci` through node-gyp. Everything that uses it has a
// portable fallback, so a machine without a compiler still serves, only slower (`rackboot doctor` says so).
import { createRequire } from 'node:module';

export interface NativeAddon {
  sendfileStart(
    socketFd: number,
    fileFd: number,
    offset: number,
    length: number,
    cb: (errno: number, sent: number) => void,
  ): object;
  sendfileCancel(job: object): void;
  sendfileSent(job: object): number;
  acceptPending(listenFd: number, max: number): number[];
}

/** Why the addon is or is not in use, for `rackboot doctor`. */
export type NativeState = { loaded: true } | { loaded: false; reason: 'off' | 'missing' | 'broken'; detail: string };

function load(): { addon?: NativeAddon; state: NativeState } {
  if (process.env.RACKBOOT_NATIVE === 'off')
    return { state: { loaded: false, reason: 'off', detail: 'RACKBOOT_NATIVE=off' } };
  try {
    return {
      addon: createRequire(import.meta.url)('../native/build/Release/rackboot.node') as NativeAddon,
      state: { loaded: true },
    };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Not built at all, or built but unloadable (another Node version's ABI, a missing symbol): say which.
    return {
      state: {
        loaded: false,
        reason: e.code === 'MODULE_NOT_FOUND' ? 'missing' : 'broken',
        detail: e.message.split('\n')[0],
      },
    };
  }
}

const loaded = load();
export const native = loaded.addon;
export const nativeState = loaded.state;
