// Profiles: the list with each one's load status, one profile (masked for techs), and the editor (check, diff, save).
import express, { type Request, type Response } from 'express';
import type { ProfileSnapshot } from '../../profiles/catalog.ts';
import { formatProfileError, PROFILE_NAME, type ProfileError } from '../../profiles/load.ts';
import { maskYamlPair, maskYamlText } from '../../hosts/policy.ts';
import { diffHunks, unifiedDiff } from '../diff.ts';
import { checkProfileEdit, normaliseText, readProfileText, saveProfileAtomic } from '../profile-edit.ts';
import { Refused, sortedHosts, str, type WebContext } from './context.ts';

export function profilePages(c: WebContext): express.Router {
  const { d, admin, form, page } = c;
  const r = express.Router();

  r.get('/profiles', c.tech, (_req, res) => {
    const snap = d.catalog.snapshot;
    page(res, 200, 'profiles', { title: 'Profiles', rows: profileRows(snap), orphanErrors: orphanErrors(snap) });
  });
  r.get('/profiles/new', admin, (_req, res) => {
    page(res, 200, 'profile-edit', editorData(undefined, '', 'extends: rhvh-base\ndescription: \n', { mode: 'new' }));
  });
  r.post('/profiles', form, admin, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const name = str(body.name).trim();
    const text = normaliseText(str(body.text));
    if (readProfileText(d.profilesDir, name) !== undefined) {
      return page(
        res,
        409,
        'profile-edit',
        editorData(undefined, name, text, {
          mode: 'new',
          errors: [
            {
              profile: name,
              file: `${name}.yaml`,
              field: 'name',
              message: `a profile named ${name} exists already: edit it instead`,
            },
          ],
        }),
      );
    }
    await saveOrShow(req, res, name, text, '', 'new');
  });
  r.get('/profiles/:name', c.tech, (req, res) => {
    const name = String(req.params.name);
    const text = readProfileText(d.profilesDir, name);
    const snap = d.catalog.snapshot;
    const loaded = snap.profiles.get(name);
    if (text === undefined && !loaded) throw new Refused(404, `There is no profile named ${name}.`);
    const row = profileRows(snap).find((x) => x.name === name);
    const shown = c.isTech(res) ? maskYamlText(text ?? '', loaded?.merged ?? {}) : (text ?? '');
    page(res, 200, 'profile', {
      title: `Profile ${name}`,
      name,
      text: shown,
      row,
      hostsUsing: hostsUsing(name),
    });
  });
  r.get('/profiles/:name/edit', admin, (req, res) => {
    const name = String(req.params.name);
    const text = readProfileText(d.profilesDir, name);
    if (text === undefined) throw new Refused(404, `There is no profile file for ${name}.`);
    const diskErrors = d.catalog.snapshot.errors.filter((e) => e.profile === name);
    page(
      res,
      200,
      'profile-edit',
      editorData(name, name, text, { mode: 'edit', base: text, errors: diskErrors, onDisk: diskErrors.length > 0 }),
    );
  });
  r.post('/profiles/:name', form, admin, async (req, res) => {
    const name = String(req.params.name);
    const body = req.body as Record<string, unknown>;
    const current = readProfileText(d.profilesDir, name);
    if (current === undefined) throw new Refused(404, `There is no profile file for ${name}.`);
    await saveOrShow(req, res, name, normaliseText(str(body.text)), current, 'edit');
  });

  async function saveOrShow(
    req: Request,
    res: Response,
    name: string,
    text: string,
    current: string,
    mode: 'new' | 'edit',
  ) {
    const body = req.body as Record<string, unknown>;
    const base = mode === 'edit' ? normaliseText(str(body.base)) : '';
    const check = checkProfileEdit(d.profilesDir, name, text);
    const errors = [...check.errors, ...check.breaks];
    const changedOnDisk = mode === 'edit' && base !== current;
    if (body.action !== 'save' || errors.length || changedOnDisk) {
      const status = body.action === 'save' ? (changedOnDisk ? 409 : errors.length ? 422 : 200) : 200;
      return page(
        res,
        status,
        'profile-edit',
        editorData(mode === 'edit' ? name : undefined, name, text, {
          mode,
          base: current,
          errors,
          checked: true,
          changedOnDisk,
          refused: body.action === 'save' && status !== 200,
        }),
      );
    }
    if (text === current) {
      c.flash(res, { kind: 'ok', text: `No changes to ${name}.` });
      return res.redirect(303, `/profiles/${name}`);
    }
    saveProfileAtomic(d.profilesDir, name, text);
    d.catalog.reload();
    // Both sides masked (the audit log is shown to techs); a secret whose value changed reads "(changed)".
    const [before, after] = maskYamlPair(current, text);
    await d.audit.record(c.actor(res), mode === 'new' ? 'profile.create' : 'profile.update', name, {
      unified: unifiedDiff(before, after, `${name}.yaml (before)`, `${name}.yaml (after)`),
    });
    c.flash(res, { kind: 'ok', text: `Profile ${name} saved; it is serving now.` });
    res.redirect(303, `/profiles/${name}`);
  }

  /** The hosts on a profile, sorted as the hosts table is (rack, position, hostname). */
  const hostsUsing = (name: string) => sortedHosts(d.view.hostList().filter((h) => h.profile === name));

  function editorData(
    name: string | undefined,
    nameValue: string,
    text: string,
    o: {
      mode: 'new' | 'edit';
      base?: string;
      errors?: ProfileError[];
      checked?: boolean;
      changedOnDisk?: boolean;
      refused?: boolean;
      onDisk?: boolean;
    },
  ) {
    // A parent's error repeats once per child that inherits it: show it once, naming the children.
    const grouped = new Map<string, { line?: number; text: string; profiles: string[] }>();
    for (const e of o.errors ?? []) {
      const text = formatProfileError({ ...e, file: e.file.split('/').pop() ?? e.file });
      const g = grouped.get(text) ?? { line: e.line, text, profiles: [] };
      g.profiles.push(e.profile);
      grouped.set(text, g);
    }
    const errors = [...grouped.values()].map((g) => {
      const others = g.profiles.filter((x) => x !== nameValue);
      const mine = g.profiles.includes(nameValue);
      const suffix = others.length
        ? ` (${mine ? 'also breaks' : 'breaks'} ${others.join(', ')}, which extend${others.length === 1 ? 's' : ''} it)`
        : '';
      return { line: mine ? g.line : undefined, text: g.text + suffix };
    });
    const errorLines = new Set(errors.filter((e) => e.line).map((e) => e.line!));
    const diff = o.checked ? diffHunks(o.base ?? '', text) : [];
    const lines =
      o.checked && errors.length
        ? text
            .replace(/\n$/, '')
            .split('\n')
            .map((t, i) => ({ no: i + 1, text: t, bad: errorLines.has(i + 1) }))
        : [];
    return {
      title: name ? `Edit profile ${name}` : 'New profile',
      name,
      nameValue,
      text,
      base: o.base ?? '',
      mode: o.mode,
      errors,
      diff,
      lines,
      checked: Boolean(o.checked),
      changedOnDisk: Boolean(o.changedOnDisk),
      refused: Boolean(o.refused),
      onDisk: Boolean(o.onDisk),
      serving: name ? d.catalog.snapshot.profiles.has(name) : false,
    };
  }

  return r;
}

function profileRows(snap: ProfileSnapshot) {
  const names = new Set<string>([...snap.profiles.keys(), ...snap.errors.map((e) => e.profile)]);
  return [...names]
    .filter((n) => PROFILE_NAME.test(n))
    .sort()
    .map((name) => {
      const lp = snap.profiles.get(name);
      const errors = snap.errors
        .filter((e) => e.profile === name)
        .map((e) => formatProfileError({ ...e, file: e.file.split('/').pop() ?? e.file }));
      const status = !errors.length ? 'ok' : lp ? 'stale' : 'broken';
      return { name, extends: lp?.extends, description: lp?.profile.description ?? '', errors, status, hosts: 0 };
    });
}

function orphanErrors(snap: ProfileSnapshot) {
  return snap.errors
    .filter((e) => !PROFILE_NAME.test(e.profile))
    .map((e) => formatProfileError({ ...e, file: e.file.split('/').pop() ?? e.file }));
}
