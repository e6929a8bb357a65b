// Files from a directory (tftpboot/), streamed from disk, through the root jail.
import { createReadStream } from 'node:fs';
import { readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.ts';
import { resolveInRoot } from './jail.ts';
import type { TftpFileSource } from './server.ts';

export interface StaticSourceOptions {
  /** When the exact name is missing, match each segment case-insensitively (DOS-era firmware upper-cases names). Default true. */
  caseInsensitive?: boolean;
  /** Read size per disk read (default 64 KiB). */
  chunkBytes?: number;
}

/** Finds `rel` under root matching each segment case-insensitively; undefined when a segment has no match. */
async function findCaseInsensitive(rootReal: string, rel: string): Promise<string | undefined> {
  const segs = rel.split('/').filter((s) => s !== '' && s !== '.');
  let dir = rootReal;
  const out: string[] = [];
  for (const seg of segs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return undefined;
    }
    const exact = names.includes(seg) ? seg : undefined;
    const lower = seg.toLowerCase();
    const found = exact ?? names.sort().find((n) => n.toLowerCase() === lower);
    if (found === undefined) return undefined;
    out.push(found);
    dir = path.join(dir, found);
  }
  return out.join('/');
}

export function staticFileSource(root: string, log?: Logger, opts: StaticSourceOptions = {}): TftpFileSource {
  const caseInsensitive = opts.caseInsensitive ?? true;
  const chunk = opts.chunkBytes ?? 64 * 1024;
  return async (requestPath) => {
    let r = await resolveInRoot(root, requestPath);
    if (!r.ok && caseInsensitive && r.reason.startsWith('not found')) {
      const rootReal = await realpath(root).catch(() => undefined);
      const alt = rootReal === undefined ? undefined : await findCaseInsensitive(rootReal, requestPath);
      if (alt !== undefined && alt !== requestPath) {
        r = await resolveInRoot(root, alt);
        if (r.ok) log?.debug({ path: requestPath, matched: alt }, 'tftp: case-insensitive match');
      }
    }
    if (!r.ok) {
      log?.debug({ path: requestPath, reason: r.reason }, 'static: not served');
      return undefined;
    }
    const { realPath, size } = r;
    if (size === 0) return { size: 0, data: Buffer.alloc(0) };
    // The transfer sends exactly `size` bytes; a file that grows meanwhile is cut, one that shrinks fails the transfer.
    return { size, open: () => createReadStream(realPath, { highWaterMark: chunk, start: 0, end: size - 1 }) };
  };
}
