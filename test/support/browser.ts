// Test support: headless Chromium (playwright-core) for the browser tests: why they skip, where screenshots
// go, and a page whose dialogs (alert, confirm) are recorded and dismissed, so a test can assert no script ran.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './core.ts';

export const CHROMIUM = '/usr/bin/chromium';
/** false, or why the browser tests skip. */
export const BROWSER_MISSING = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it) to run the browser tests`;
export const ARTIFACTS = join(REPO, 'test/artifacts');

/** Chromium with its profile below `dir`; every dialog's message goes into `dialogs`, and is dismissed. */
export async function launchBrowser(dir: string, dialogs: string[]) {
  const ctx = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1280, height: 800 },
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(5000);
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return { ctx, page };
}
