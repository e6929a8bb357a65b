// ?limit=&cursor= paging for every API list. Keyset paging: the cursor names the last item a page ended on (its
// sort key), so rows added or removed between two pages never shift or repeat the rest. The cursor is opaque to
// callers (base64url JSON) and carries the list it came from: a cursor of another list is refused, not misread.
import { z } from 'zod';

export const PAGE_LIMIT_DEFAULT = 100;
export const PAGE_LIMIT_MAX = 1000;
/** A cursor is a few dozen bytes; anything much longer is not one of ours. */
const CURSOR_MAX = 512;

export type SortKey = (string | number)[];

export const limitParam = z
  .string()
  .regex(/^\d{1,4}$/, `a whole number from 1 to ${PAGE_LIMIT_MAX}`)
  .transform(Number)
  .pipe(z.number().int().min(1, 'at least 1').max(PAGE_LIMIT_MAX, `at most ${PAGE_LIMIT_MAX}`))
  .optional()
  .meta({
    type: 'integer',
    minimum: 1,
    maximum: PAGE_LIMIT_MAX,
    default: PAGE_LIMIT_DEFAULT,
    description: `items per page (1-${PAGE_LIMIT_MAX}, default ${PAGE_LIMIT_DEFAULT})`,
  });

export const cursorParam = z
  .string()
  .max(CURSOR_MAX, 'not a cursor this server gave (too long)')
  .optional()
  .describe('nextCursor of the previous page, as given');

/** The paging part of a list's query schema. */
export const pageQuery = { limit: limitParam, cursor: cursorParam };

/** A page of items; nextCursor is null on the last page (lists) or the position to poll from (streams). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().describe('pass as ?cursor= for the next page; null: this was the last'),
  });
}

export class CursorError extends Error {
  readonly field = 'cursor';
}

export function encodeCursor(list: string, key: SortKey): string {
  return Buffer.from(JSON.stringify({ l: list, k: key })).toString('base64url');
}

/** The sort key a cursor of `list` carries, of `arity` strings/numbers; CursorError for anything else. */
export function decodeCursor(list: string, cursor: string, arity: number): SortKey {
  const bad = (why: string) => new CursorError(`cursor: ${why}; start again without a cursor`);
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(cursor)) throw bad('not a cursor this server gave');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('not a cursor this server gave');
  }
  const c = parsed as { l?: unknown; k?: unknown } | null;
  if (!c || typeof c !== 'object' || typeof c.l !== 'string' || !Array.isArray(c.k))
    throw bad('not a cursor this server gave');
  if (c.l !== list) throw bad(`this cursor is of another list (${c.l.slice(0, 64)}), not of ${list}`);
  const key = c.k as unknown[];
  const ok =
    key.length === arity &&
    key.every((x) => (typeof x === 'string' && x.length <= 256) || (typeof x === 'number' && Number.isFinite(x)));
  if (!ok) throw bad('not a cursor this server gave');
  return key as SortKey;
}

export function compareKeys(a: SortKey, b: SortKey): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : 1;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * One page of an in-memory list (hosts, discovered: whole-table reads the server already does), sorted by
 * `keyOf` (unique per item), starting after the cursor's key.
 */
export function pageList<T>(
  list: string,
  items: readonly T[],
  keyOf: (item: T) => SortKey,
  q: { limit?: number; cursor?: string },
  arity: number,
): Page<T> {
  const limit = q.limit ?? PAGE_LIMIT_DEFAULT;
  const after = q.cursor === undefined ? undefined : decodeCursor(list, q.cursor, arity);
  const keyed = items.map((item) => ({ item, key: keyOf(item) })).sort((a, b) => compareKeys(a.key, b.key));
  const rest = after ? keyed.filter((x) => compareKeys(x.key, after) > 0) : keyed;
  const page = rest.slice(0, limit);
  const more = rest.length > limit;
  return {
    items: page.map((x) => x.item),
    nextCursor: more ? encodeCursor(list, page[page.length - 1]!.key) : null,
  };
}

/** The row id a cursor of a newest-first list (rollouts, deliveries) ended on; CursorError for anything else. */
export function decodeIdCursor(list: string, cursor: string): number {
  const id = decodeCursor(list, cursor, 1)[0];
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1)
    throw new CursorError('cursor: not a cursor this server gave; start again without a cursor');
  return id;
}
