// Line diff for the profile editor and the audit log. Pure. Profiles are small, so a plain LCS table
// is enough; past a size bound the whole text is shown as replaced rather than spending seconds.
export type DiffLine = { kind: 'same' | 'add' | 'del'; text: string; oldNo?: number; newNo?: number } | { kind: 'skip'; count: number };

const MAX_CELLS = 4_000_000;

function splitLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Every line of both texts, marked same/add/del, in order. */
export function diffLines(oldText: string, newText: string): DiffLine[] {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  // Common head and tail first: edits are usually local, and it keeps the table small.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const out: DiffLine[] = [];
  for (let i = 0; i < head; i++) out.push({ kind: 'same', text: a[i], oldNo: i + 1, newNo: i + 1 });
  const n = am.length;
  const m = bm.length;
  if (n * m > MAX_CELLS) {
    am.forEach((t, i) => out.push({ kind: 'del', text: t, oldNo: head + i + 1 }));
    bm.forEach((t, j) => out.push({ kind: 'add', text: t, newNo: head + j + 1 }));
  } else {
    // lcs[i][j]: length of the longest common subsequence of am[i..] and bm[j..]
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = am[i] === bm[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) { out.push({ kind: 'same', text: am[i], oldNo: head + i + 1, newNo: head + j + 1 }); i++; j++; }
      else if (i < n && (j === m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) { out.push({ kind: 'del', text: am[i], oldNo: head + i + 1 }); i++; }
      else { out.push({ kind: 'add', text: bm[j], newNo: head + j + 1 }); j++; }
    }
  }
  for (let k = 0; k < tail; k++) {
    const ai = a.length - tail + k;
    const bi = b.length - tail + k;
    out.push({ kind: 'same', text: a[ai], oldNo: ai + 1, newNo: bi + 1 });
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
    if (keep[i]) { if (skipped) out.push({ kind: 'skip', count: skipped }); skipped = 0; out.push(l); }
    else skipped++;
  });
  if (skipped && out.length) out.push({ kind: 'skip', count: skipped });
  return out;
}

/** The unified-diff text of a change (for the audit log). Empty when nothing changed. */
export function unifiedDiff(oldText: string, newText: string, oldName = 'before', newName = 'after'): string {
  const hunks = diffHunks(oldText, newText);
  if (!hunks.length) return '';
  const body = hunks.map((l) => (l.kind === 'skip' ? `@@ ${l.count} unchanged line(s) @@` : `${l.kind === 'add' ? '+' : l.kind === 'del' ? '-' : ' '}${l.text}`));
  return [`--- ${oldName}`, `+++ ${newName}`, ...body].join('\n') + '\n';
}
