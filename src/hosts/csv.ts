// Rack import from CSV: parse, check every row and the whole file against the store, report every
// problem with its line. Nothing is written unless the whole file is clean. Pure (the store comes in as lookups).
import { checkHostInput, type HostInput } from './input.ts';
import { parseMac, parseIpv4 } from '../net/mac.ts';
import type { HostFields } from '../store/hosts.ts';

export const CSV_COLUMNS = ['mac', 'hostname', 'profile', 'ip', 'netmask', 'gateway', 'nameservers', 'domain', 'rack', 'position', 'uuid'];
export const MAX_CSV_ROWS = 10_000;

/** RFC 4180: commas, double quotes with "" escapes, CRLF or LF. Returns rows with their 1-based line. */
export function parseCsv(text: string): { rows: { line: number; cells: string[] }[]; error?: string } {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else { if (c === '\n') line++; cell += c; }
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === ',') { cells.push(cell); cell = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      cells.push(cell);
      if (cells.some((x) => x.trim() !== '')) rows.push({ line: rowLine, cells });
      cells = []; cell = ''; line++; rowLine = line;
    } else cell += c;
  }
  if (quoted) return { rows, error: `line ${rowLine}: a quoted field is never closed` };
  cells.push(cell);
  if (cells.some((x) => x.trim() !== '')) rows.push({ line: rowLine, cells });
  return { rows };
}

export interface ImportLookups {
  profileExists(name: string): boolean;
  macTaken(mac: string): boolean;
  ipTaken(ip: string): boolean;
  hostnameTaken(name: string): boolean;
  /** Role and profile-schema checks of a row's parameters (src/hosts/policy.ts guardHostParams). */
  hostProblems?(host: HostFields): { status: 403 | 400; errors: string[] } | undefined;
}

/** status: 403 when a row sets what the caller's role may not, else 422. */
export type ImportCheck = { ok: true; hosts: HostFields[] } | { ok: false; problems: string[]; status: 403 | 422 };

export function checkRackCsv(text: string, lookups: ImportLookups): ImportCheck {
  const parsed = parseCsv(text.replace(/^\uFEFF/, ''));
  if (parsed.error) return { ok: false, problems: [parsed.error], status: 422 };
  const [header, ...body] = parsed.rows;
  if (!header) return { ok: false, status: 422, problems: ['the file is empty: the first line must name the columns, e.g. mac,hostname,ip,profile,rack'] };
  const columns = header.cells.map((c) => { const t = c.trim(); return /^param\./i.test(t) ? 'param.' + t.slice(6) : t.toLowerCase(); });
  const problems: string[] = [];
  columns.forEach((c) => { if (!CSV_COLUMNS.includes(c) && !c.startsWith('param.')) problems.push(`line ${header.line}: unknown column "${c}" (known: ${CSV_COLUMNS.join(', ')}, or param.<profile field>)`); });
  for (const need of ['mac', 'hostname', 'profile']) if (!columns.includes(need)) problems.push(`line ${header.line}: missing column "${need}"`);
  if (body.length > MAX_CSV_ROWS) problems.push(`the file has ${body.length} rows; import at most ${MAX_CSV_ROWS} at a time`);
  if (problems.length) return { ok: false, problems, status: 422 };

  let forbidden = false;
  const hosts: HostFields[] = [];
  const seen = { mac: new Map<string, number>(), ip: new Map<string, number>(), hostname: new Map<string, number>() };
  for (const row of body) {
    if (row.cells.length !== columns.length) { problems.push(`line ${row.line}: ${row.cells.length} fields, but the header has ${columns.length}`); continue; }
    const input: HostInput & Record<string, unknown> = {};
    const params: Record<string, string> = {};
    columns.forEach((c, i) => { if (c.startsWith('param.')) { if (row.cells[i].trim()) params[c.slice(6)] = row.cells[i].trim(); } else input[c] = row.cells[i]; });
    input.params = params;
    const r = checkHostInput(input, lookups.profileExists);
    if (!r.ok) for (const e of r.errors) problems.push(`line ${row.line}: ${e}`);
    const dup = (kind: 'mac' | 'ip' | 'hostname', value: string | undefined, taken: (v: string) => boolean) => {
      if (!value) return;
      const key = kind === 'hostname' ? value.toLowerCase() : value;
      const earlier = seen[kind].get(key);
      if (earlier !== undefined) problems.push(`line ${row.line}: ${kind} ${value} is also on line ${earlier}`);
      else if (taken(value)) problems.push(`line ${row.line}: ${kind} ${value} already belongs to an existing host`);
      seen[kind].set(key, row.line);
    };
    // Duplicates are checked even on rows with other problems, so one pass lists everything.
    dup('mac', parseMac(String(input.mac ?? '')), lookups.macTaken);
    const ip = String(input.ip ?? '').trim();
    dup('ip', parseIpv4(ip) ? ip : undefined, lookups.ipTaken);
    const hostname = String(input.hostname ?? '').trim();
    dup('hostname', hostname || undefined, lookups.hostnameTaken);
    if (!r.ok) continue;
    const h = r.host;
    const refused = lookups.hostProblems?.(h);
    if (refused) {
      if (refused.status === 403) forbidden = true;
      for (const e of refused.errors) problems.push(`line ${row.line}: ${e}`);
      continue;
    }
    hosts.push(h);
  }
  if (!body.length) problems.push('the file has a header but no hosts');
  return problems.length ? { ok: false, problems, status: forbidden ? 403 : 422 } : { ok: true, hosts };
}
