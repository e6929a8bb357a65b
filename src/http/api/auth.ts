// The API's bearer token: the shared admin token (compared by its SHA-256), or a user's own token with its role.
import type { NextFunction, Request, Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from '../reply.ts';
import type { ApiCaller, ApiDeps } from './context.ts';

export function bearerAuth(d: Pick<ApiDeps, 'adminTokenHash' | 'userToken'>) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const token = m?.[1].trim() ?? '';
    if (token && safeEqual(createHash('sha256').update(token).digest('hex'), d.adminTokenHash)) {
      res.locals.caller = { actor: 'api', role: 'admin' } satisfies ApiCaller;
      return next();
    }
    const user = token ? await d.userToken?.(token) : undefined;
    if (!user)
      throw new HttpError(
        401,
        'send Authorization: Bearer <token>: your own (rackboot users token NAME, or Your account in the UI), or the shared admin token (RACKBOOT_ADMIN_TOKEN, or the one printed at first start)',
      );
    res.locals.caller = { actor: `api:${user.name}`, role: user.role, user: user.name } satisfies ApiCaller;
    next();
  };
}

function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
