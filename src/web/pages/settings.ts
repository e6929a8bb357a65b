// Settings (admin): the host parameters techs may set.
import express, { type Response } from 'express';
import { checkTechParamList, TECH_NEVER } from '../../hosts/policy.ts';
import { str, type WebContext } from './context.ts';

export function settingsPages(c: WebContext): express.Router {
  const { settings } = c;
  const r = express.Router();
  const settingsPage = (res: Response, status: number, text: string, error?: string) =>
    c.page(res, status, 'settings', { title: 'Settings', techParamsText: text, never: TECH_NEVER, error });

  r.get('/settings', c.admin, async (_req, res) => settingsPage(res, 200, (await settings.techParams()).join('\n')));
  r.post('/settings', c.form, c.admin, async (req, res) => {
    const text = str((req.body as Record<string, unknown>).techParams);
    // Only spaces, tabs and the CR of CRLF are trimmed: any other control or separator character is refused.
    const list = text
      .split(/\r?\n|,/)
      .map((x) => x.replace(/^[ \t]+|[ \t]+$/g, ''))
      .filter(Boolean);
    const checked = checkTechParamList(list);
    if (!checked.ok) return settingsPage(res, 400, text, checked.errors.join('; '));
    const before = await settings.techParams();
    await settings.setTechParams(checked.list);
    await c.d.audit.recordChange(
      c.actor(res),
      'settings.tech-params',
      'techParams',
      { techParams: before },
      { techParams: checked.list },
    );
    c.flash(res, {
      kind: 'ok',
      text: checked.list.length
        ? `Techs may now set: ${checked.list.join(', ')}.`
        : 'Techs may set no host parameters now.',
    });
    res.redirect(303, '/settings');
  });
  return r;
}
