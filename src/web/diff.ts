// Line diff for the profile editor and the audit log. Pure. The diff itself is jsdiff's (Myers), which replaced a
// hand-written LCS table: it is minimal like the table, and costs (n + m) * edits instead of n * m, so a long
// profile with a small edit is diffed too. What stays here is the shape the pages use (numbered lines, hunks, the
// audit log's text); past a work bound the whole text is shown as replaced rather than spending seconds.
import { diffArrays } from 'diff';
export type DiffLine =
  { kind: 'same' | 'add' | 'del'; text: string; oldNo?: number; newNo?: number } | { kind: 'skip'; count: number };

const MAX_WORK = 1_000_000;

function splitLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Every line of both texts, marked same/add/del, in order (a changed run lists its deletions first). */
export function diffLines(oldText: string, newText: string): DiffLine[] {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  // Myers costs about (n + m) * edits: past the bound the whole text is shown as replaced.
  const maxEditLength = Math.max(1, Math.floor(MAX_WORK / Math.max(1, a.length + b.length)));
  const changes = diffArrays(a, b, { maxEditLength });
  const out: DiffLine[] = [];
  if (!changes) {
    a.forEach((t, i) => out.push({ kind: 'del', text: t, oldNo: i + 1 }));
    b.forEach((t, j) => out.push({ kind: 'add', text: t, newNo: j + 1 }));
    return out;
  }
  let oldNo = 1;
  let newNo = 1;
  for (const c of changes) {
    for (const text of c.value) {
      if (c.removed) out.push({ kind: 'del', text, oldNo: oldNo++ });
      else if (c.added) out.push({ kind: 'add', text, newNo: newNo++ });
      else out.push({ kind: 'same', text, oldNo: oldNo++, newNo: newNo++ });
    }
  }
  return out;
}

/** Only the changes with `context` lines around them; long unchanged runs become one "skip" line. */
export function diffHunks(oldText: string, newText: string, context = 3): DiffLine[] {
  const all = diffLines(oldText, newText);
  const keep = new Array<boolean>(all.length).fill(false);
  all.forEach((l, i) => {
    if (l.kind === 'same') return;
    for (let k = Math.max(0, i - context); k <= Math.min(all.length - 1, i + context); k++) keep[k] = true;
  });
  const out: DiffLine[] = [];
  let skipped = 0;
  all.forEach((l, i) => {
    if (keep[i]) {
      if (skipped) out.push({ kind: 'skip', count: skipped });
      skipped = 0;
      out.push(l);
    } else skipped++;
  });
  if (skipped && out.length) out.push({ kind: 'skip', count: skipped });
  return out;
}

/** The unified-diff text of a change (for the audit log). Empty when nothing changed. */
export function unifiedDiff(oldText: string, newText: string, oldName = 'before', newName = 'after'): string {
  const hunks = diffHunks(oldText, newText);
  if (!hunks.length) return '';
  const body = hunks.map((l) =>
    l.kind === 'skip'
      ? `@@ ${l.count} unchanged line(s) @@`
      : `${l.kind === 'add' ? '+' : l.kind === 'del' ? '-' : ' '}${l.text}`,
  );
  return [`--- ${oldName}`, `+++ ${newName}`, ...body].join('\n') + '\n';
}
