// The web pages' template engine: its own Eta instance with autoEscape ON, so every `<%= %>` is
// HTML-escaped. (The boot/kickstart renderer is a separate instance with autoEscape off.) Templates
// are read once at start; `<%~ %>` (raw) is used only for the layout body and partials.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Eta } from 'eta';

export interface Views {
  render(name: string, data: Record<string, unknown>): string;
}

export function createViews(webTemplatesDir: string): Views {
  const eta = new Eta({ autoEscape: true, autoTrim: [false, 'nl'], cache: true, useWith: false });
  for (const f of readdirSync(webTemplatesDir)) {
    if (f.endsWith('.eta')) eta.loadTemplate(`@${f.slice(0, -4)}`, readFileSync(join(webTemplatesDir, f), 'utf8'));
  }
  return { render: (name, data) => eta.render(`@${name}`, data) };
}
