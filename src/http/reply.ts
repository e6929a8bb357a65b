// What every HTTP route answers with: an HttpError thrown (the app's error handler writes it: JSON under /api,
// text elsewhere), or a plain-text body.
import type { Response } from 'express';

// The API's error class (src/http/errors.ts): status, message, and the field at fault when there is one.
export { ApiError as HttpError } from './errors.ts';

/** A text/plain answer that always ends with a newline (curl and shell scripts read it). */
export function sendText(res: Response, status: number, body: string) {
  return res
    .status(status)
    .type('text/plain; charset=utf-8')
    .send(body.endsWith('\n') ? body : body + '\n');
}
