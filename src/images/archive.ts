// ISO 9660 and RPM payloads through bsdtar (Debian libarchive-tools, RHEL bsdtar): one maintained
// reader for both formats, no loop mounts, no root. Every call is a child process with argv (no shell).
import { spawn } from 'node:child_process';

export interface ArchiveEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Symlink target. */
  target?: string;
}

export class ArchiveError extends Error {}

export const BSDTAR_HINT =
  'install bsdtar: apt-get install libarchive-tools (Debian/Ubuntu) or dnf install bsdtar (RHEL/Rocky)';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool; `onStderrLine` sees each stderr line as it arrives. ENOENT becomes an ArchiveError with the install hint. */
export function runTool(
  cmd: string,
  args: string[],
  opts: { onStderrLine?: (line: string) => void; maxStdout?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outLen = 0;
    let err = '';
    let pending = '';
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < (opts.maxStdout ?? 64 * 1024 * 1024)) {
        out.push(b);
        outLen += b.length;
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      err += s.length + err.length > 1024 * 1024 ? '' : s;
      if (!opts.onStderrLine) return;
      pending += s;
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        opts.onStderrLine(pending.slice(0, i));
        pending = pending.slice(i + 1);
      }
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'ENOENT'
          ? new ArchiveError(`${cmd} not found: ${cmd === 'bsdtar' ? BSDTAR_HINT : `install ${cmd}`}`)
          : e,
      );
    });
    child.on('close', (code, signal) => {
      if (pending && opts.onStderrLine) opts.onStderrLine(pending);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: err });
    });
  });
}

/** bsdtar's own words, without the "Error exit delayed" noise. */
export function bsdtarMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) =>
      l
        .replace(/^x [^:]*$/, '')
        .replace(/^bsdtar: /, '')
        .trim(),
    )
    .filter((l) => l && !/^Error exit delayed/.test(l));
  return lines.slice(0, 3).join('; ') || 'unknown error';
}

// `bsdtar -tv` prints ls -l style lines: mode, links, owner, group, size, month, day, time-or-year, name.
const LIST_LINE = /^([-dlcbps])\S*\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\S+\s(.*)$/;

export function parseListing(text: string): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  for (const line of text.split('\n')) {
    const m = LIST_LINE.exec(line);
    if (!m) continue;
    let name = m[3];
    let target: string | undefined;
    const type = m[1] === '-' ? 'file' : m[1] === 'd' ? 'dir' : m[1] === 'l' ? 'symlink' : 'other';
    if (type === 'symlink') {
      const i = name.indexOf(' -> ');
      if (i >= 0) {
        target = name.slice(i + 4);
        name = name.slice(0, i);
      }
    }
    name = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (name === '' || name === '.') continue;
    entries.push({ path: name, type, size: Number(m[2]), ...(target !== undefined ? { target } : {}) });
  }
  return entries;
}

export class Bsdtar {
  constructor(private readonly cmd = 'bsdtar') {}

  async list(archive: string): Promise<ArchiveEntry[]> {
    const r = await runTool(this.cmd, ['-tvf', archive]);
    if (r.code !== 0) throw new ArchiveError(bsdtarMessage(r.stderr));
    return parseListing(r.stdout);
  }

  /**
   * Extracts `members` (all when empty) into `dir`. `onFile` is told each path as bsdtar starts it
   * (bsdtar -v prints "x NAME" before writing the data), which lets a caller poll that file's size.
   */
  async extract(archive: string, dir: string, members: string[] = [], onFile?: (path: string) => void): Promise<void> {
    const args = ['-x', '-v', '--no-same-owner', '--no-same-permissions', '-f', archive, '-C', dir, ...members];
    const r = await runTool(this.cmd, args, {
      onStderrLine: (line) => {
        const m = /^x (.+?)(: .*)?$/.exec(line);
        if (m && onFile) onFile(m[1].replace(/^(\.\/)+/, ''));
      },
    });
    if (r.code !== 0) throw new ArchiveError(bsdtarMessage(r.stderr));
  }

  /** The first `maxBytes` of one member (fewer if it is shorter); stops bsdtar once it has them. */
  head(archive: string, member: string, maxBytes: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.cmd, ['-x', '-O', '-f', archive, member], { stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      let len = 0,
        err = '',
        done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve(Buffer.concat(chunks).subarray(0, maxBytes));
      };
      child.stdout.on('data', (b: Buffer) => {
        if (done) return;
        chunks.push(b);
        len += b.length;
        if (len >= maxBytes) {
          finish();
          child.kill('SIGTERM');
        }
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s: string) => {
        if (err.length < 65536) err += s;
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (!done) {
          done = true;
          reject(e.code === 'ENOENT' ? new ArchiveError(`${this.cmd} not found: ${BSDTAR_HINT}`) : e);
        }
      });
      child.on('close', (code) => {
        if (done) return;
        if (code !== 0) {
          done = true;
          reject(new ArchiveError(bsdtarMessage(err)));
          return;
        }
        finish();
      });
    });
  }

  async version(): Promise<string | undefined> {
    try {
      const r = await runTool(this.cmd, ['--version']);
      return r.code === 0 ? r.stdout.trim() : undefined;
    } catch {
      return undefined;
    }
  }
}
