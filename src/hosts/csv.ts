// Rack import from CSV: parse, check every row and the whole file against the store, report every
// problem with its line. Nothing is written unless the whole file is clean. Pure (the store comes in as lookups).
// The CSV grammar is csv-parse's (it replaced a hand-written RFC 4180 parser: one less thing to keep right);
// what stays here is the line each row starts on, which every problem names.
import { checkHostInput, HOST_FIELDS, type HostInput } from './input.ts';
import { parseMac, parseIpv4 } from '../net/mac.ts';
import type { HostFields } from '../store/hosts.ts';
import { parse, type CsvError } from 'csv-parse/sync';
import { checkBmcInput } from './bmc-input.ts';
import type { BmcSetting } from '../store/bmc.ts';

/** A column per host field; the profile's params come as param.<field> columns instead of one "params" cell. */
export const CSV_COLUMNS: readonly string[] = HOST_FIELDS.filter((f) => f !== 'params');
/** A host's BMC (admin only): bmc.<field>, lower case in the header as every column is. */
export const BMC_CSV_COLUMNS: Record<string, string> = {
  'bmc.driver': 'driver',
  'bmc.address': 'address',
  'bmc.username': 'username',
  'bmc.password': 'password',
  'bmc.system': 'system',
  'bmc.verifytls': 'verifyTls',
  'bmc.fingerprint': 'fingerprint',
};
export const MAX_CSV_ROWS = 10_000;

/**
 * RFC 4180 (csv-parse): commas, double quotes with "" escapes, CRLF, LF or CR. Returns the rows that have a
 * non-blank cell, each with the 1-based line it starts on (a quoted field may span lines). A `"` inside an
 * unquoted field is kept as text (relax_quotes), as spreadsheets write it.
 */
export function parseCsv(text: string): { rows: { line: number; cells: string[] }[]; error?: string } {
  const rows: { line: number; cells: string[] }[] = [];
  let endLine = 0;
  try {
    // One line ending, so csv-parse's line count is the editor's (it counts a CRLF inside quotes as two lines).
    // A CR inside a quoted field becomes LF: both are control characters the field checks refuse.
    parse(text.replace(/\r\n?/g, '\n'), {
      relax_column_count: true,
      relax_quotes: true,
      record_delimiter: '\n',
      on_record: (record, context) => {
        // context.lines is the line the record ends on; the LFs inside its quoted fields are the lines it spans.
        let spanned = 0;
        for (const cell of record) for (let i = cell.indexOf('\n'); i !== -1; i = cell.indexOf('\n', i + 1)) spanned++;
        if (record.some((x) => x.trim() !== '')) rows.push({ line: context.lines - spanned, cells: record });
        endLine = context.lines;
        return null;
      },
    });
  } catch (err) {
    // The record that failed starts on the line after the last good one (csv-parse's own count at EOF varies).
    const e = err as CsvError;
    return {
      rows,
      error: `line ${endLine + 1}: ${e.code === 'CSV_QUOTE_NOT_CLOSED' ? 'a quoted field is never closed' : e.message}`,
    };
  }
  return { rows };
}

export interface ImportLookups {
  profileExists(name: string): boolean;
  macTaken(mac: string): boolean;
  ipTaken(ip: string): boolean;
  hostnameTaken(name: string): boolean;
  /** Role and profile-schema checks of a row's parameters (src/hosts/policy.ts guardHostParams). */
  hostProblems?(host: HostFields): { status: 403 | 400; errors: string[] } | undefined;
  /** What would only fail at Build, as "<field>: <reason>" (src/hosts/readiness.ts). */
  buildProblems?(host: HostFields): string[];
  /** Whether the caller may set BMCs (admins, the server's shell): bmc.* columns are refused (403) otherwise. */
  mayImportBmc?: boolean;
}

/** A problem message names the CSV column: parameters are "param.<field>" columns there, not "params.<field>". */
const asColumn = (e: string) => e.replace(/^params\./, 'param.');

/** status: 403 when a row sets what the caller's role may not, else 422. */
export type ImportCheck =
  | { ok: true; hosts: HostFields[]; /** by MAC, for the rows with bmc.* cells */ bmc: Map<string, BmcSetting> }
  | { ok: false; problems: string[]; status: 403 | 422 };

export function checkRackCsv(text: string, lookups: ImportLookups): ImportCheck {
  const parsed = parseCsv(text.replace(/^\uFEFF/, ''));
  if (parsed.error) return { ok: false, problems: [parsed.error], status: 422 };
  const [header, ...body] = parsed.rows;
  if (!header)
    return {
      ok: false,
      status: 422,
      problems: ['the file is empty: the first line must name the columns, e.g. mac,hostname,ip,profile,rack'],
    };
  const columns = header.cells.map((c) => {
    const t = c.trim();
    return /^param\./i.test(t) ? 'param.' + t.slice(6) : t.toLowerCase();
  });
  // Every problem in one pass: a header problem is reported, and the rows are still checked with the columns
  // that are known, so one misspelt column never hides (or passes as "ok") the errors of every row.
  const problems: string[] = [];
  const unknown = new Set<number>();
  columns.forEach((c, i) => {
    if (!CSV_COLUMNS.includes(c) && !c.startsWith('param.') && !(c in BMC_CSV_COLUMNS)) {
      unknown.add(i);
      problems.push(
        `line ${header.line}: unknown column "${c}" (known: ${[...CSV_COLUMNS, ...Object.keys(BMC_CSV_COLUMNS)].join(', ')}, or param.<profile field>)`,
      );
    }
  });
  if (!lookups.mayImportBmc && columns.some((c) => c in BMC_CSV_COLUMNS)) {
    return {
      ok: false,
      status: 403,
      problems: [`line ${header.line}: bmc.* columns: only an admin may set a host's BMC; nothing was written`],
    };
  }
  columns.forEach((c, i) => {
    if (columns.indexOf(c) !== i) problems.push(`line ${header.line}: column "${c}" appears twice`);
  });
  const missing = ['mac', 'hostname', 'profile'].filter((need) => !columns.includes(need));
  for (const need of missing) problems.push(`line ${header.line}: missing column "${need}"`);
  if (body.length > MAX_CSV_ROWS) {
    problems.push(`the file has ${body.length} rows; import at most ${MAX_CSV_ROWS} at a time`);
    return { ok: false, problems, status: 422 };
  }
  // The header already says a required column is missing; each row repeating "required" would bury the rest.
  const rowError = (e: string) => !missing.some((m) => e.startsWith(`${m}:`));

  let forbidden = false;
  const hosts: HostFields[] = [];
  const bmcs = new Map<string, BmcSetting>();
  const seen = { mac: new Map<string, number>(), ip: new Map<string, number>(), hostname: new Map<string, number>() };
  for (const row of body) {
    if (row.cells.length !== columns.length) {
      problems.push(`line ${row.line}: ${row.cells.length} fields, but the header has ${columns.length}`);
      continue;
    }
    const input: HostInput & Record<string, unknown> = {};
    const params: Record<string, string> = {};
    const bmc: Record<string, string> = {};
    columns.forEach((c, i) => {
      if (unknown.has(i)) return;
      if (c in BMC_CSV_COLUMNS) {
        if (row.cells[i] !== '') bmc[BMC_CSV_COLUMNS[c]] = c === 'bmc.password' ? row.cells[i] : row.cells[i].trim();
      } else if (c.startsWith('param.')) {
        if (row.cells[i].trim()) params[c.slice(6)] = row.cells[i].trim();
      } else input[c] = row.cells[i];
    });
    input.params = params;
    const r = checkHostInput(input, lookups.profileExists);
    if (!r.ok) for (const e of r.errors.filter(rowError)) problems.push(`line ${row.line}: ${asColumn(e)}`);
    // Every row is a new host: a BMC on it needs its password here.
    const b = Object.keys(bmc).length ? checkBmcInput(bmc) : undefined;
    if (b && !b.ok) for (const e of b.errors) problems.push(`line ${row.line}: ${e}`);
    if (b?.ok && b.bmc.password === undefined) problems.push(`line ${row.line}: bmc.password: required with a BMC`);
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
    if (!r.ok || (b && (!b.ok || b.bmc.password === undefined))) continue;
    const h = r.host;
    const refused = lookups.hostProblems?.(h);
    if (refused) {
      if (refused.status === 403) forbidden = true;
      for (const e of refused.errors) problems.push(`line ${row.line}: ${asColumn(e)}`);
      continue;
    }
    const unready = lookups.buildProblems?.(h) ?? [];
    for (const e of unready) problems.push(`line ${row.line}: ${e}`);
    if (unready.length) continue;
    hosts.push(h);
    if (b?.ok) bmcs.set(h.mac, b.bmc);
  }
  if (!body.length) problems.push('the file has a header but no hosts');
  return problems.length ? { ok: false, problems, status: forbidden ? 403 : 422 } : { ok: true, hosts, bmc: bmcs };
}
