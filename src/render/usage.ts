// Which profile uses which template: the rows of `rackboot templates list`, GET /api/templates and the templates page.
import type { LoadedProfile } from '../profiles/load.ts';
import { kickstartTemplateOf } from './render.ts';
import type { TemplateError, TemplateKind, TemplateLibrary, TemplateOrigin } from './templates.ts';

export interface TemplateUsage {
  kind: TemplateKind;
  name: string;
  file: string;
  origin: TemplateOrigin;
  overrides?: string;
  /** Serving its last good version: the file on disk is broken. */
  stale: boolean;
  /** Profiles whose kickstart this is (kickstart templates only). */
  profiles: string[];
}

export interface TemplateReport {
  templates: TemplateUsage[];
  /** Profiles naming a kickstart template that is not loaded: their builds are refused. */
  missing: { profile: string; template: string }[];
  errors: readonly TemplateError[];
}

export function templateReport(lib: TemplateLibrary, profiles: Iterable<LoadedProfile>): TemplateReport {
  const users = new Map<string, string[]>();
  for (const p of profiles) {
    const name = kickstartTemplateOf(p.profile);
    users.set(name, [...(users.get(name) ?? []), p.name]);
  }
  const templates = lib.entries.map((e) => ({
    kind: e.kind,
    name: e.name,
    file: e.file,
    origin: e.origin,
    ...(e.overrides ? { overrides: e.overrides } : {}),
    stale: e.stale,
    profiles: e.kind === 'kickstart' ? (users.get(e.name) ?? []) : [],
  }));
  const missing = [...users]
    .filter(([name]) => !lib.has('kickstart', name))
    .flatMap(([template, names]) => names.map((profile) => ({ profile, template })));
  return { templates, missing, errors: lib.errors };
}

/** The report as the CLI prints it: one line per template, then the problems. */
export function formatTemplateReport(r: TemplateReport): { out: string[]; err: string[] } {
  const out = r.templates.map((t) => {
    const notes = [
      t.origin === 'overlay' ? (t.overrides ? 'overlay, replaces the shipped one' : 'overlay') : 'shipped',
      ...(t.stale ? ['broken on disk: serving the last good version'] : []),
    ];
    const used = t.kind === 'kickstart' ? `  used by: ${t.profiles.join(', ') || '(no profile)'}` : '';
    return `${t.kind.padEnd(9)} ${t.name.padEnd(28)} ${t.file} (${notes.join('; ')})${used}`;
  });
  const err = [
    ...r.missing.map((m) => `profile ${m.profile} names the kickstart template ${m.template}, which is not loaded`),
    ...r.errors.map((e) => `error: ${e.file}${e.line ? `:${e.line}` : ''}: ${e.message}`),
  ];
  return { out, err };
}
