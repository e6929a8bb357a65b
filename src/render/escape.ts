// One escaping function per target syntax. Pure. Each either returns the value written so that its target reads
// back exactly the value, or throws an EscapeError saying why that target cannot carry it. The field grammars
// (src/profiles/grammar.ts) refuse control characters first; these refuse them again, as the last fence.
import { checkSnippet, describeChar, forbiddenChar } from '../profiles/grammar.ts';

export type EscapeTarget = 'kickstart' | 'shell' | 'grub' | 'ipxe' | 'pxelinux' | 'comment' | 'snippet';

export class EscapeError extends Error {
  constructor(
    readonly target: EscapeTarget,
    readonly value: string,
    readonly reason: string,
  ) {
    super(
      `${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value)} cannot be written in ${TARGET_NAMES[target]}: ${reason}`,
    );
    this.name = 'EscapeError';
  }
}

const TARGET_NAMES: Record<EscapeTarget, string> = {
  kickstart: 'a kickstart command',
  shell: 'a shell command',
  grub: 'a GRUB config',
  ipxe: 'an iPXE script',
  pxelinux: 'a pxelinux config',
  comment: 'a comment line',
  snippet: 'a kickstart %post section',
};

function refuseControl(target: EscapeTarget, value: string): void {
  const cp = forbiddenChar(value);
  if (cp !== undefined) throw new EscapeError(target, value, `character ${describeChar(cp)} would break the line`);
}

/** Words every target reads literally without quoting (no whitespace, quotes, globs, $, #, ~, ;, &, |, <, >, braces). */
const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * A kickstart command argument or option value. pykickstart splits command lines with shlex (POSIX, comments on):
 * whitespace splits, quotes group, backslash escapes, and "#" starts a comment even inside a word.
 */
export function ksValue(value: string): string {
  refuseControl('kickstart', value);
  if (/^[^\s'"\\#]+$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  // shlex POSIX double quotes: backslash escapes only the quote and itself.
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A POSIX shell word: single quotes keep everything literal; a quote inside is closed, escaped, reopened. */
export function shellWord(value: string): string {
  refuseControl('shell', value);
  if (PLAIN.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * A GRUB script word. GRUB's lexer (grub-core/script/yylex.l) treats { } | & $ ; < > quotes, backslash and blanks as
 * syntax and expands * ? [ ] unquoted; inside single quotes nothing is special, and GRUB has the shell's '\'' idiom.
 */
export function grubWord(value: string): string {
  refuseControl('grub', value);
  if (PLAIN.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * An iPXE script word. iPXE has no quoting: it splits on blanks, expands ${...} anywhere, ends the command at a word
 * "||", "&&" or ";" or one starting with "#", and joins a line ending in "\" with the next. What would hit any of
 * these is refused; the rest (an "&" in a URL query included) is written as it is.
 */
export function ipxeWord(value: string): string {
  refuseControl('ipxe', value);
  if (value === '') throw new EscapeError('ipxe', value, 'an empty word cannot be written (iPXE has no quotes)');
  const bad = /[\s$"'\\]/.exec(value);
  if (bad) throw new EscapeError('ipxe', value, `iPXE has no quoting for ${JSON.stringify(bad[0])}`);
  if (/&&|\|\||;/.test(value) || value.startsWith('#'))
    throw new EscapeError('ipxe', value, 'iPXE would read "&&", "||", ";" or a leading "#" as script syntax');
  return value;
}

/**
 * A word on a pxelinux APPEND (or KERNEL) line: syslinux passes the rest of the line to the kernel as it is, there is
 * no quoting. Blanks would split the word into two kernel arguments, quotes would be the kernel's own quoting.
 */
export function pxelinuxWord(value: string): string {
  refuseControl('pxelinux', value);
  if (value === '')
    throw new EscapeError('pxelinux', value, 'an empty word cannot be written (pxelinux has no quotes)');
  const bad = /[\s"'\\]/.exec(value);
  if (bad) throw new EscapeError('pxelinux', value, `pxelinux has no quoting for ${JSON.stringify(bad[0])}`);
  return value;
}

/** Text after "# " on a comment line of any of these files: only a line break could escape it. */
export function commentText(value: string): string {
  refuseControl('comment', value);
  return value;
}

/**
 * Shell lines that go into %post as they are (a profile's own script). Nothing can be escaped in code meant to run;
 * what the kickstart parser would read as its own syntax (a line starting with "%", a line break other than \n) is refused.
 */
export function snippetLines(value: string): string {
  const bad = checkSnippet(value);
  if (bad) throw new EscapeError('snippet', value, bad);
  return value;
}

export interface Escapes {
  ks: (value: string) => string;
  sh: (value: string) => string;
  grub: (value: string) => string;
  ipxe: (value: string) => string;
  pxelinux: (value: string) => string;
  comment: (value: string) => string;
  snippet: (value: string) => string;
}

export const escapes: Escapes = {
  ks: ksValue,
  sh: shellWord,
  grub: grubWord,
  ipxe: ipxeWord,
  pxelinux: pxelinuxWord,
  comment: commentText,
  snippet: snippetLines,
};
