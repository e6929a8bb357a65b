// Paging cursors, the one error shape, and the OpenAPI builder: pure parts of the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { z } from 'zod';
import { CursorError, decodeCursor, encodeCursor, pageList, pageQuery } from '../../src/http/paging.ts';
import { codeFor, errorBody, fieldOfMessage } from '../../src/http/errors.ts';
import { ApiDocs, apiRoute, openApiPath } from '../../src/http/openapi.ts';

const items = Array.from({ length: 25 }, (_, i) => ({
  id: `h${String(i).padStart(2, '0')}`,
  rack: i % 3 ? 'R1' : 'R2',
}));
const keyOf = (x: (typeof items)[number]) => [x.rack, x.id];

test('pageList walks a list in pages with no repeat and no gap, and ends with a null cursor', () => {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 10; guard++) {
    const page = pageList('hosts', items, keyOf, { limit: 7, cursor }, 2);
    seen.push(...page.items.map((x) => x.id));
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  assert.equal(seen.length, 25);
  assert.equal(new Set(seen).size, 25);
  assert.deepEqual(
    seen,
    [...items].sort((a, b) => (a.rack + a.id < b.rack + b.id ? -1 : 1)).map((x) => x.id),
  );
  assert.equal(pageList('hosts', items, keyOf, { limit: 25 }, 2).nextCursor, null, 'exactly one full page: no cursor');
  assert.equal(pageList('hosts', [], keyOf, {}, 2).nextCursor, null);
});

test('a row deleted between two pages neither shifts nor repeats the rest (keyset, not offset)', () => {
  const first = pageList('hosts', items, keyOf, { limit: 5 }, 2);
  const without = items.filter((x) => x.id !== first.items[0]!.id);
  const second = pageList('hosts', without, keyOf, { limit: 5, cursor: first.nextCursor! }, 2);
  const all = pageList('hosts', items, keyOf, { limit: 10 }, 2);
  assert.deepEqual(
    second.items.map((x) => x.id),
    all.items.slice(5).map((x) => x.id),
  );
});

test('cursors: garbage, tampered, too long, wrong arity and another list are refused naming the cursor', () => {
  const good = encodeCursor('hosts', ['R1', 'h01']);
  assert.deepEqual(decodeCursor('hosts', good, 2), ['R1', 'h01']);
  const bad = [
    '',
    'not a cursor',
    '!!!!',
    'A'.repeat(600),
    Buffer.from('{"l":"hosts"').toString('base64url'),
    Buffer.from('null').toString('base64url'),
    Buffer.from('{"l":"hosts","k":"R1"}').toString('base64url'),
    Buffer.from('{"l":"hosts","k":[{"$gt":""}, 1]}').toString('base64url'),
    Buffer.from('{"l":"hosts","k":["R1"]}').toString('base64url'),
    Buffer.from(JSON.stringify({ l: 'hosts', k: ['x'.repeat(300), 'y'] })).toString('base64url'),
    encodeCursor('discovered', [1, 'aa']),
  ];
  for (const c of bad) {
    assert.throws(
      () => decodeCursor('hosts', c, 2),
      (e: unknown) => e instanceof CursorError && e.field === 'cursor' && /^cursor: /.test(e.message),
      c.slice(0, 40),
    );
  }
  assert.throws(() => decodeCursor('hosts', encodeCursor('discovered', [1, 'a']), 2), /another list \(discovered\)/);
});

test('the limit: 1..1000, default 100; negative, zero, huge, fractional, hex, repeated and empty are refused', () => {
  const q = z.object(pageQuery).strict();
  assert.equal(q.parse({}).limit, undefined);
  assert.equal(q.parse({ limit: '1' }).limit, 1);
  assert.equal(q.parse({ limit: '1000' }).limit, 1000);
  for (const limit of ['0', '-1', '1001', '99999999999', '1.5', '0x10', '1e3', '', ' 5', ['1', '2'], 'NaN'])
    assert.equal(q.safeParse({ limit }).success, false, JSON.stringify(limit));
  assert.equal(q.safeParse({ cursor: ['a', 'b'] }).success, false, 'one cursor');
  assert.equal(pageList('hosts', items, keyOf, {}, 2).items.length, 25);
  const many = Array.from({ length: 150 }, (_, i) => ({ id: String(i).padStart(3, '0'), rack: '' }));
  assert.equal(pageList('hosts', many, keyOf, {}, 2).items.length, 100, 'default 100');
});

test('errors: one shape, a stable code per status, the field taken from the message', () => {
  assert.deepEqual(errorBody(404, 'no host with MAC 52:54:00:00:00:01'), {
    error: { code: 'not_found', message: 'no host with MAC 52:54:00:00:00:01' },
  });
  assert.deepEqual(errorBody(422, 'params.ntpServers[0]: not an address; ip: bad'), {
    error: { code: 'invalid', message: 'params.ntpServers[0]: not an address; ip: bad', field: 'params.ntpServers[0]' },
  });
  assert.equal(fieldOfMessage('send Authorization: Bearer <token>'), undefined, 'prose with a colon is not a field');
  assert.equal(fieldOfMessage('the body is not valid JSON: Unexpected end'), undefined);
  for (const [status, code] of [
    [400, 'bad_request'],
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [409, 'conflict'],
    [413, 'too_large'],
    [429, 'too_many_requests'],
    [500, 'internal'],
    [502, 'bad_gateway'],
    [504, 'internal'],
    [418, 'bad_request'],
  ] as const)
    assert.equal(codeFor(status), code);
});

test('apiRoute: checks params, query and body by their schemas before the handler, and describes the route', async () => {
  const docs = new ApiDocs();
  const r = express.Router();
  let ran = 0;
  apiRoute(
    r,
    docs,
    {
      method: 'post',
      path: '/things/:id',
      summary: 'make a thing',
      params: z.object({ id: z.string().regex(/^\d+$/, 'a number') }),
      query: z.object({ ...pageQuery }).strict(),
      body: z.object({ name: z.string() }).strict(),
      responses: { 201: z.object({ id: z.string(), name: z.string() }) },
    },
    (_req, res, { params, body }) => {
      ran++;
      res.status(201).json({ id: params.id, name: body.name });
    },
  );
  const app = express();
  app.use(express.json());
  app.use(r);
  app.use(
    (
      err: { status?: number; message: string; field?: string },
      _req: express.Request,
      res: express.Response,
      _n: express.NextFunction,
    ) => {
      res.status(err.status ?? 500).json(errorBody(err.status ?? 500, err.message, err.field));
    },
  );
  const ok = await request(app).post('/things/7').send({ name: 'x' });
  assert.equal(ok.status, 201);
  assert.deepEqual(ok.body, { id: '7', name: 'x' });
  const cases: [string, object, number, string][] = [
    ['/things/x', { name: 'x' }, 400, 'id'],
    ['/things/7?limit=0', { name: 'x' }, 400, 'limit'],
    ['/things/7?bogus=1', { name: 'x' }, 400, 'bogus'],
    ['/things/7', { name: 5 }, 422, 'name'],
    ['/things/7', { name: 'x', extra: 1 }, 422, 'extra'],
  ];
  for (const [path, body, status, field] of cases) {
    const res = await request(app).post(path).send(body);
    assert.equal(res.status, status, path);
    assert.equal(res.body.error.field, field, JSON.stringify(res.body));
    assert.match(res.body.error.message, new RegExp(`^${field}: `));
  }
  assert.equal(ran, 1, 'the handler ran only for the good request');

  const doc = docs.document({ version: '1' });
  const paths = doc.paths as Record<string, Record<string, { parameters: { name: string; in: string }[] }>>;
  assert.equal(openApiPath('/things/:id'), '/api/things/{id}');
  const op = paths['/api/things/{id}']!.post!;
  assert.deepEqual(
    op.parameters.map((p) => `${p.in}:${p.name}`),
    ['path:id', 'query:limit', 'query:cursor'],
  );
  assert.throws(() => docs.add({ method: 'post', path: '/things/:id', summary: 'again', responses: {} }), /twice/);
});
