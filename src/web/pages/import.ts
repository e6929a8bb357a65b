// Import a rack: a CSV pasted in, a preview with each line's problems, then all the hosts or none.
import express, { type Response } from 'express';
import type { HostFields } from '../../store/hosts.ts';
import type { Mac } from '../../net/mac.ts';
import { checkRackCsv, parseCsv } from '../../hosts/csv.ts';
import { guardHostParams } from '../../hosts/policy.ts';
import { buildReadinessProblems } from '../../hosts/readiness.ts';
import { normaliseText } from '../profile-edit.ts';
import { str, type WebContext } from './context.ts';
import { saveBmc } from '../../http/bmc-api.ts';

export function importPages(c: WebContext): express.Router {
  const { d, page } = c;
  const r = express.Router();

  r.get('/hosts/import', c.tech, (_req, res) =>
    page(res, 200, 'import', { title: 'Import a rack', csv: '', preview: undefined }),
  );
  r.post('/hosts/import', c.form, c.tech, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const csv = normaliseText(str(body.csv));
    const look = await lookups(res);
    const preview = importPreview(look, csv);
    if (body.action === 'import' && preview.ok) {
      const r2 = checkRackCsv(csv, look);
      if (r2.ok) {
        await d.hosts.insertMany(r2.hosts);
        await d.audit.recordChange(c.actor(res), 'host.import', `${r2.hosts.length} hosts`, undefined, r2.hosts);
        for (const [mac, bmc] of r2.bmc) await saveBmc({ bmc: d.bmc!, audit: d.audit }, c.actor(res), mac, bmc);
        c.flash(res, { kind: 'ok', text: `Imported ${r2.hosts.length} host(s).` });
        return res.redirect(303, '/');
      }
    }
    page(res, preview.ok ? 200 : preview.status, 'import', { title: 'Import a rack', csv, preview });
  });

  // Taken MACs, addresses and names from the view (a CSV line each, no query each); the table's unique keys still
  // refuse a host another node added since.
  async function lookups(res: Response) {
    const g = await c.guardOf(res);
    return {
      profileExists: (n: string) => d.catalog.snapshot.profiles.has(n),
      macTaken: (m: string) => d.view.host(m as Mac) !== undefined,
      ipTaken: (ip: string) => d.view.hostByIp(ip) !== undefined,
      hostnameTaken: (n: string) => d.view.hostByHostname(n) !== undefined,
      hostProblems: (h: HostFields) => guardHostParams(g, {}, h),
      buildProblems: (h: HostFields) => buildReadinessProblems(d.catalog.snapshot.profiles.get(h.profile), h),
      mayImportBmc: !c.isTech(res) && d.bmc !== undefined,
    };
  }

  function importPreview(look: Awaited<ReturnType<typeof lookups>>, csv: string) {
    const parsed = parseCsv(csv.replace(/^\uFEFF/, ''));
    const check = checkRackCsv(csv, look);
    const problems = check.ok ? [] : check.problems;
    const byLine = new Map<number, string[]>();
    const general: string[] = [];
    for (const pr of problems) {
      const m = /^line (\d+): (.*)$/s.exec(pr);
      if (m) byLine.set(Number(m[1]), [...(byLine.get(Number(m[1])) ?? []), m[2]]);
      else general.push(pr);
    }
    const [header, ...rows] = parsed.rows;
    const secretColumn = header?.cells.findIndex((cell) => cell.trim().toLowerCase() === 'bmc.password') ?? -1;
    const headerErrors = header ? (byLine.get(header.line) ?? []) : [];
    return {
      ok: check.ok,
      status: check.ok ? 200 : check.status,
      count: check.ok ? check.hosts.length : 0,
      columns: header?.cells.map((cell) => cell.trim()) ?? [],
      headerErrors,
      // A BMC password is never shown back, not even to the admin who pasted it.
      rows: rows.map((row) => ({
        line: row.line,
        cells: row.cells.map((cell, i) => (i === secretColumn && cell !== '' ? '(password set)' : cell)),
        errors: byLine.get(row.line) ?? [],
      })),
      general: parsed.error ? [parsed.error] : general,
      problems: problems.length,
    };
  }

  return r;
}
