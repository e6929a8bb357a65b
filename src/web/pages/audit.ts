// The audit log: who changed what, each entry's diff shown as fields, a unified diff or JSON, secrets masked.
import express from 'express';
import { maskDeep, maskYamlText } from '../../hosts/policy.ts';
import { str, type WebContext } from './context.ts';

export function auditPages(c: WebContext): express.Router {
  const r = express.Router();
  r.get('/audit', c.tech, async (req, res) => {
    const q = str(req.query.q).trim().toLowerCase();
    const entries = (await c.d.audit.recent(500))
      .filter((e) => !q || `${e.actor} ${e.action} ${e.target}`.toLowerCase().includes(q))
      .map((e) => ({ ...e, view: auditView(e.diff) }));
    c.page(res, 200, 'audit', { title: 'Audit log', entries, q });
  });
  return r;
}

type AuditView =
  | { kind: 'none' }
  | { kind: 'inline'; text: string }
  | { kind: 'unified'; lines: { cls: string; text: string }[] }
  | { kind: 'fields'; rows: { field: string; from: string; to: string }[]; full?: string }
  | { kind: 'json'; text: string };

/** A record's fields one level deep, parameters as params.<key>: what a before/after table compares. */
function flatRecord(r: unknown): Record<string, unknown> {
  if (!r || typeof r !== 'object' || Array.isArray(r)) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r as Record<string, unknown>)) {
    if (k === 'params' && v && typeof v === 'object' && !Array.isArray(v))
      for (const [pk, pv] of Object.entries(v)) out[`params.${pk}`] = pv;
    else out[k] = v;
  }
  return out;
}

/**
 * How an audit entry's diff is shown: a unified text diff, field from -> to (with the whole records
 * before and after), or the JSON as recorded. Secrets are masked again here, for entries recorded
 * before the audit repository masked them.
 */
export function auditView(diff: string | null | undefined): AuditView {
  if (!diff) return { kind: 'none' };
  let v: unknown;
  try {
    v = maskDeep(JSON.parse(diff) as unknown);
  } catch {
    return { kind: 'json', text: maskYamlText(diff, {}) };
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (
      keys.length &&
      keys.every((k) => k === 'before' || k === 'after') &&
      !Array.isArray(o.before ?? {}) &&
      !Array.isArray(o.after ?? {})
    ) {
      const [b, a] = [flatRecord(o.before), flatRecord(o.after)];
      const show = (x: unknown) => (x === undefined ? '(none)' : typeof x === 'string' ? x : JSON.stringify(x));
      const changed = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter(
        (k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]),
      );
      return {
        kind: 'fields',
        rows: changed.map((field) => ({ field, from: show(b[field]), to: show(a[field]) })),
        full: JSON.stringify(o, null, 2),
      };
    }
    if (typeof o.unified === 'string') {
      // A diff line is a marker then YAML: mask the YAML part.
      return {
        kind: 'unified',
        lines: o.unified
          .split('\n')
          .filter((l) => l !== '')
          .map((l) =>
            l.startsWith('@@') || l.startsWith('---') || l.startsWith('+++')
              ? l
              : l.slice(0, 1) + maskYamlText(l.slice(1), {}),
          )
          .map((text) => ({
            text,
            cls:
              text.startsWith('+++') || text.startsWith('---')
                ? 'hdr'
                : text.startsWith('+')
                  ? 'add'
                  : text.startsWith('-')
                    ? 'del'
                    : text.startsWith('@@')
                      ? 'skip'
                      : 'same',
          })),
      };
    }
    const entries = Object.entries(o);
    // {field: {from, to}}; JSON drops an undefined side, so one of the two may be missing.
    const isChange = (x: unknown) =>
      !!x &&
      typeof x === 'object' &&
      !Array.isArray(x) &&
      Object.keys(x).length > 0 &&
      Object.keys(x).every((k) => k === 'from' || k === 'to');
    if (entries.length && entries.every(([, x]) => isChange(x))) {
      const show = (x: unknown) => (x === undefined ? '(none)' : typeof x === 'string' ? x : JSON.stringify(x));
      return {
        kind: 'fields',
        rows: entries.map(([field, x]) => ({
          field,
          from: show((x as { from: unknown }).from),
          to: show((x as { to: unknown }).to),
        })),
      };
    }
  }
  // Small records of plain values (a build's id and profile) read better on one line.
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    const line = entries.map(([k, x]) => `${k}: ${typeof x === 'string' ? x : JSON.stringify(x)}`).join(', ');
    if (entries.every(([, x]) => x === null || typeof x !== 'object') && line.length <= 120)
      return { kind: 'inline', text: line };
  }
  return { kind: 'json', text: JSON.stringify(v, null, 2) };
}
