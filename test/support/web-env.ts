// Test support: the real app and web router over a TestEnv (wired as serve.ts wires them), a login through the
// web form, and a user's API token. Tests pass only what they add or change.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { createApp, type AppDeps } from '../../src/http/app.ts';
import { silentLogger } from '../../src/log.ts';
import { createWebRouter, type WebDeps, type WebRouter } from '../../src/web/pages/index.ts';
import type { TestEnv } from './core.ts';

/** The web router over the env's core; `extra` adds or replaces dependencies. */
export function webRouterFor(env: TestEnv, extra: Partial<WebDeps> = {}): WebRouter {
  return createWebRouter({
    provisioner: env.core.provisioner,
    hosts: env.core.hosts,
    builds: env.core.builds,
    events: env.core.events,
    audit: env.core.audit,
    store: env.core.store,
    view: env.core.view,
    catalog: env.core.catalog,
    profilesDir: env.config.profilesDir,
    templatesDir: env.config.templatesDir,
    publicUrl: 'http://10.99.0.1:8080',
    log: silentLogger(),
    ...extra,
  });
}

/** The app over the env's core, the admin bearer token `adminToken`; `extra` adds or replaces dependencies. */
export function appFor(env: TestEnv, adminToken: string, extra: Partial<AppDeps> = {}): Express {
  return createApp({
    provisioner: env.core.provisioner,
    hosts: env.core.hosts,
    audit: env.core.audit,
    store: env.core.store,
    view: env.core.view,
    profiles: () => env.core.catalog.snapshot,
    tftpRoot: env.config.tftpRoot,
    imagesDir: env.config.imagesDir,
    adminTokenHash: createHash('sha256').update(adminToken).digest('hex'),
    log: silentLogger(),
    ...extra,
  });
}

export const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/**
 * Logs `name` in through the login form, as a browser does: the agent keeps the session cookie; csrf is the
 * home page's token for the forms; cookie is the login answer's Set-Cookie.
 */
export async function loginForm(app: Express, name: string, password: string) {
  const agent = request.agent(app);
  const page = await agent.get('/login');
  assert.equal(page.status, 200);
  const res = await agent
    .post('/login')
    .type('form')
    .send({ _csrf: csrfOf(page.text), name, password, next: '/' });
  assert.equal(res.status, 303, res.text);
  const home = await agent.get('/');
  assert.equal(home.status, 200);
  return { agent, csrf: csrfOf(home.text), cookie: String(res.headers['set-cookie']) };
}

/** A new API token of the (existing) user `name`, and the token store that authenticates it. */
export async function apiTokenOf(env: TestEnv, name: string) {
  const tokens = env.core.store.apiTokens;
  const user = await env.core.store.users.get(name);
  assert.ok(user, `no user ${name}`);
  const made = await tokens.create(user);
  assert.ok(!('error' in made), 'error' in made ? made.error : '');
  return { tokens, token: made.token };
}
