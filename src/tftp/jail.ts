// Root jail for file serving (TFTP and HTTP static files): a request path names a regular file whose
// real path, after every symlink, is inside the root. Independent of any protocol.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

export type JailResult = { ok: true; realPath: string; size: number } | { ok: false; reason: string };

/** Reasons are stable prefixes callers may test: 'invalid path', 'not found', 'outside root', 'not a regular file'. */
export async function resolveInRoot(root: string, requestPath: string): Promise<JailResult> {
  if (requestPath.includes('\0')) return { ok: false, reason: 'invalid path: NUL byte' };
  const segs = requestPath
    .replace(/\\/g, '/')
    .split('/')
    .filter((s) => s !== '' && s !== '.');
  if (segs.some((s) => s === '..')) return { ok: false, reason: "invalid path: '..' segment" };
  if (segs.length === 0) return { ok: false, reason: 'invalid path: empty' };
  let rootReal: string;
  try {
    rootReal = await realpath(root);
  } catch (e) {
    return { ok: false, reason: `not found: root ${root} (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  let real: string;
  try {
    real = await realpath(path.join(rootReal, ...segs));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { ok: false, reason: 'not found: symlink loop' };
    return { ok: false, reason: `not found (${code ?? 'error'})` };
  }
  const prefix = rootReal.endsWith(path.sep) ? rootReal : rootReal + path.sep;
  if (!real.startsWith(prefix)) return { ok: false, reason: 'outside root: resolves to a path outside the root' };
  let st;
  try {
    st = await stat(real);
  } catch (e) {
    return { ok: false, reason: `not found (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (!st.isFile())
    return { ok: false, reason: `not a regular file: ${st.isDirectory() ? 'directory' : 'device, socket or fifo'}` };
  return { ok: true, realPath: real, size: st.size };
}
