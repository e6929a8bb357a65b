// Retry with exponential backoff, for BmcErrors that say they are retryable (timeouts, refused, 5xx, 429).
import { BmcError } from './driver.ts';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function withRetry<T>(retries: number, backoffMs: number, attempt: () => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof BmcError) || !err.retryable || n >= retries) throw err;
      await sleep(backoffMs * 2 ** n);
    }
  }
}

/** Polls `read` until `done` says yes or `ms` passed; answers the last value read. */
export async function pollUntil<T>(ms: number, everyMs: number, read: () => Promise<T>, done: (v: T) => boolean) {
  const deadline = Date.now() + ms;
  let v = await read();
  while (!done(v) && Date.now() < deadline) {
    await sleep(Math.min(everyMs, Math.max(0, deadline - Date.now())));
    v = await read();
  }
  return v;
}
