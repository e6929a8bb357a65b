// The API's OpenAPI 3.1 document, built from the same zod schemas that validate requests: each API route is
// declared once with apiRoute() (method, path, params, query, body, responses), which both mounts it and
// describes it, so the document cannot drift from what the server checks. Served at GET /api/openapi.json.
import type express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { ApiError, ErrorBody } from './errors.ts';
import { CursorError } from './paging.ts';

/** No JSON at all (another Content-Type, an empty body) is the client's mistake of form: 400, not a field's 422. */
function jsonBody(schema: z.ZodType, body: unknown): unknown {
  const wantsObject = schema instanceof z.ZodObject;
  if (body === undefined || (wantsObject && (typeof body !== 'object' || body === null || Array.isArray(body))))
    throw new ApiError(400, 'send a JSON object with Content-Type: application/json');
  return body;
}

export type Method = 'get' | 'post' | 'put' | 'delete';

/** A body that is not JSON (CSV in, text out), or a response with no body. */
export interface RawContent {
  contentType: string;
  description: string;
  schema?: z.ZodType;
}

type Body = z.ZodType | RawContent;
type AnyObject = z.ZodObject;

export interface RouteSpec {
  method: Method;
  /** Express syntax, relative to /api: '/hosts/:mac'. */
  path: string;
  summary: string;
  description?: string;
  tags?: string[];
  params?: AnyObject;
  query?: AnyObject;
  body?: Body;
  /** status -> a JSON schema, raw content, several of those (by content type), or (no body) its description. */
  responses: Record<number, Body | Body[] | string>;
  /** Refused with 403 to a token without the admin role. */
  admin?: boolean;
}

const isRaw = (b: Body): b is RawContent => !(b instanceof z.ZodType);

/** Every API route as declared; the document and the "every route is described" test read it. */
export class ApiDocs {
  private readonly specs: RouteSpec[] = [];
  private readonly shared = new Map<z.ZodType, string>();

  /** Schemas several routes share, named once in components.schemas. */
  name(schemas: Record<string, z.ZodType>): void {
    for (const [id, schema] of Object.entries(schemas)) this.shared.set(schema, id);
  }

  add(spec: RouteSpec): void {
    if (this.specs.some((s) => s.method === spec.method && s.path === spec.path))
      throw new Error(`API route ${spec.method.toUpperCase()} ${spec.path} is described twice`);
    this.specs.push(spec);
  }

  routes(): readonly RouteSpec[] {
    return this.specs;
  }

  document(info: { version: string }): Record<string, unknown> {
    return buildDocument(this.specs, this.shared, info);
  }
}

/** '/hosts/:mac/render/:kind' -> '/api/hosts/{mac}/render/{kind}' */
export const openApiPath = (path: string) => '/api' + path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');

const operationId = (s: RouteSpec) =>
  s.method +
  s.path
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? 'By' + cap(part.slice(1)) : cap(part)))
    .join('')
    .replace(/[^A-Za-z0-9]/g, '');
const cap = (s: string) => s.replace(/(^|[-_.])([a-z])/g, (_m, _sep: string, c: string) => c.toUpperCase());

/** A schema inline, as JSON Schema 2020-12 without the $schema line (OpenAPI 3.1 schema objects). */
function inline(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' });
  // A number in a query string is checked as text (^\d+$) and described as the integer it is: the text rule is ours.
  if (rest.type === 'integer') delete rest.pattern;
  return rest;
}

function buildDocument(
  specs: readonly RouteSpec[],
  shared: ReadonlyMap<z.ZodType, string>,
  info: { version: string },
): Record<string, unknown> {
  // Response schemas go to components (named by operation and status), so shared ones ($ref) resolve in one place.
  const registry = z.registry<{ id: string }>();
  registry.add(ErrorBody, { id: 'Error' });
  const refOf = new Map<z.ZodType, string>([[ErrorBody, 'Error']]);
  for (const [schema, id] of shared) {
    registry.add(schema, { id });
    refOf.set(schema, id);
  }
  const named = (schema: z.ZodType, id: string) => {
    const known = refOf.get(schema);
    if (known) return known;
    registry.add(schema, { id });
    refOf.set(schema, id);
    return id;
  };
  const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const s of specs) {
    const opId = operationId(s);
    const parameters: unknown[] = [];
    for (const [where, obj] of [
      ['path', s.params],
      ['query', s.query],
    ] as const) {
      if (!obj) continue;
      for (const [name, field] of Object.entries(obj.shape)) {
        const schema = inline(field as z.ZodType, 'input');
        parameters.push({
          name,
          in: where,
          required: where === 'path' || !(field as z.ZodType).safeParse(undefined).success,
          ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
          schema,
        });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(s.responses)) {
      if (typeof r === 'string')
        responses[status] =
          Number(status) >= 400
            ? { description: r, content: { 'application/json': { schema: ref('Error') } } }
            : { description: r };
      else {
        const content: Record<string, unknown> = {};
        let description = `${s.summary}: ${status}`;
        for (const b of Array.isArray(r) ? r : [r]) {
          if (isRaw(b)) {
            content[b.contentType] = { schema: b.schema ? inline(b.schema, 'output') : { type: 'string' } };
            description = b.description;
          } else {
            content['application/json'] = { schema: ref(named(b, `${cap(opId)}${status}`)) };
            description = b.description ?? description;
          }
        }
        responses[status] = { description, content };
      }
    }
    for (const status of ['400', '401', ...(s.admin ? ['403'] : [])])
      responses[status] ??= { description: 'the error', content: { 'application/json': { schema: ref('Error') } } };
    responses.default = {
      description: 'any other error: {error: {code, message, field?}}',
      content: { 'application/json': { schema: ref('Error') } },
    };
    const op: Record<string, unknown> = {
      operationId: opId,
      summary: s.summary,
      ...(s.description ? { description: s.description } : {}),
      ...(s.tags ? { tags: s.tags } : {}),
      ...(parameters.length ? { parameters } : {}),
      responses,
    };
    if (s.body)
      op.requestBody = isRaw(s.body)
        ? {
            required: true,
            description: s.body.description,
            content: {
              [s.body.contentType]: { schema: s.body.schema ? inline(s.body.schema, 'input') : { type: 'string' } },
            },
          }
        : { required: true, content: { 'application/json': { schema: inline(s.body, 'input') } } };
    (paths[openApiPath(s.path)] ??= {})[s.method] = op;
  }

  const { schemas } = z.toJSONSchema(registry, {
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
    target: 'draft-2020-12',
  });
  // Each component is a schema object of this document, not a standalone resource: no $schema, no $id.
  const components = Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _s, $id: _i, ...rest } = schema as Record<string, unknown>;
      return [id, rest];
    }),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'rackboot API',
      version: info.version,
      description:
        'Hosts, builds, rack imports, profiles, images, discovered machines, timelines and installer logs. ' +
        'Times are ISO 8601 UTC. Lists page with ?limit= (1-1000, default 100) and ?cursor= (nextCursor of the ' +
        'previous page). Every error is {error: {code, message, field?}}.',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'a user token (rackboot users token NAME) or the shared admin token (RACKBOOT_ADMIN_TOKEN)',
        },
      },
    },
  };
}

/** A zod failure as the API's 400/422: the first issue, its field (dotted path) named first. */
export function validationError(status: number, where: string, issues: readonly z.core.$ZodIssue[]): ApiError {
  const issue = issues[0]!;
  let path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${String(p)}` : String(p))).join('');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [path, issue.keys[0]].filter(Boolean).join('.');
    const what = where === 'body' ? 'field' : where;
    message = `unknown ${issue.keys.length > 1 ? `${what}s ${issue.keys.join(', ')}` : what}`;
  }
  return new ApiError(status, path ? `${path}: ${message}` : `${where}: ${message}`, path || undefined);
}

export interface Parsed<P extends AnyObject | undefined, Q extends AnyObject | undefined, B extends Body | undefined> {
  params: P extends AnyObject ? z.output<P> : Record<string, never>;
  query: Q extends AnyObject ? z.output<Q> : Record<string, never>;
  body: B extends z.ZodType ? z.output<B> : unknown;
}

/**
 * Mounts a route on `router` and describes it in `docs`. Path parameters and the query are checked by their
 * schemas (400 naming the field), a JSON body by its schema (422 naming the field) before the handler runs.
 */
export function apiRoute<
  P extends AnyObject | undefined = undefined,
  Q extends AnyObject | undefined = undefined,
  B extends Body | undefined = undefined,
>(
  router: express.Router,
  docs: ApiDocs,
  spec: RouteSpec & { params?: P; query?: Q; body?: B },
  ...handlers: [
    ...express.RequestHandler[],
    (req: Request, res: Response, parsed: Parsed<P, Q, B>) => void | Promise<void>,
  ]
): void {
  docs.add(spec);
  const handler = handlers.pop() as (req: Request, res: Response, parsed: Parsed<P, Q, B>) => void | Promise<void>;
  const before = handlers as express.RequestHandler[];
  const run = async (req: Request, res: Response, next: NextFunction) => {
    try {
      const parse = (schema: z.ZodType | undefined, value: unknown, status: number, where: string) => {
        if (!schema) return {};
        const r = schema.safeParse(value);
        if (!r.success) throw validationError(status, where, r.error.issues);
        return r.data;
      };
      const parsed = {
        params: parse(spec.params, req.params, 400, 'path parameter'),
        query: parse(spec.query ?? z.object({}).strict(), req.query, 400, 'query parameter'),
        body: spec.body && !isRaw(spec.body) ? parse(spec.body, jsonBody(spec.body, req.body), 422, 'body') : req.body,
      } as Parsed<P, Q, B>;
      await handler(req, res, parsed);
    } catch (err) {
      next(err instanceof CursorError ? new ApiError(400, err.message, 'cursor') : err);
    }
  };
  router[spec.method](spec.path, ...before, run);
}
