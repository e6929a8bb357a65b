// One error shape for every API answer that is not a success: {error: {code, message, field?}}.
// A script branches on `code` (stable), a person reads `message` (names the thing and the fix), a form marks `field`.
import { z } from 'zod';

/** The stable codes, one per HTTP status the API answers with. */
export const ERROR_CODES = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  410: 'gone',
  413: 'too_large',
  415: 'unsupported_media_type',
  422: 'invalid',
  429: 'too_many_requests',
  500: 'internal',
  502: 'bad_gateway',
  503: 'unavailable',
} as const satisfies Record<number, string>;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export function codeFor(status: number): ErrorCode {
  const known = (ERROR_CODES as Record<number, ErrorCode>)[status];
  if (known) return known;
  return status >= 500 ? 'internal' : 'bad_request';
}

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(Object.values(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      field: z.string().optional().describe('the request field at fault (a dotted path: params.ntpServers)'),
      problems: z
        .array(z.unknown())
        .optional()
        .describe('a rack import: every problem found, each with its line and field'),
      bmc: z.string().optional().describe('a BMC that failed (502): its driver and address'),
      answer: z.string().optional().describe('what the BMC answered (502)'),
      retryable: z.boolean().optional().describe('a transient BMC failure: worth trying again later (502)'),
      rebuild: z
        .array(z.object({ mac: z.string(), hostname: z.string(), wipes: z.string() }))
        .optional()
        .describe('a rollout over built hosts refused (409): what rebuilding each would wipe; resend with confirm'),
    }),
  })
  .describe('every API error');
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Fields an error carries besides code, message and field (each described in ErrorBody). */
export type ErrorExtra = Partial<Omit<ErrorBody['error'], 'code' | 'message' | 'field'>>;

/** Thrown by API routes; the app's error handler turns it into the one shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly extra?: ErrorExtra,
  ) {
    super(message);
  }
}

/**
 * Validation messages name their field first ("mac: ...", "params.ntpServers[0]: ..."): that field, when the
 * message starts with one. Several problems joined by "; " name the first.
 */
export function fieldOfMessage(message: string): string | undefined {
  const m = /^([A-Za-z][A-Za-z0-9_]*(?:(?:\.[A-Za-z0-9_-]+)|(?:\[\d+\]))*): /.exec(message);
  return m?.[1];
}

export function errorBody(status: number, message: string, field?: string, extra?: ErrorExtra): ErrorBody {
  const f = field ?? fieldOfMessage(message);
  return { error: { code: codeFor(status), message, ...(f ? { field: f } : {}), ...(extra ?? {}) } };
}
