// What every API route group shares: who is calling (set by ./auth.ts), the admin-only gate, the tech's
// parameter guard and the masking of a host's secrets for a tech's token. Built once per app.
import type { NextFunction, Request, Response } from 'express';
import type { AppDeps } from '../app.ts';
import type { ProfileSnapshot } from '../../profiles/catalog.ts';
import type { Role } from '../../store/users.ts';
import { parseMac, type Mac } from '../../net/mac.ts';
import { guardHostParams, hostSecretValues, maskDeep, maskText } from '../../hosts/policy.ts';
import { HttpError } from '../reply.ts';
import type { ApiDocs } from '../openapi.ts';

export type ApiDeps = Pick<
  AppDeps,
  | 'provisioner'
  | 'hosts'
  | 'audit'
  | 'store'
  | 'view'
  | 'profiles'
  | 'images'
  | 'adminTokenHash'
  | 'apiRouters'
  | 'userToken'
  | 'settings'
  | 'bmc'
>;

/** Who is calling the API: the shared admin token ("api"), or a user's own token ("api:<name>"). */
export interface ApiCaller {
  actor: string;
  role: Role;
  user?: string;
}
export const callerOf = (res: Response): ApiCaller => res.locals.caller as ApiCaller;

type HostLike = { profile: string; params: Record<string, string> };

export type ApiContext = ReturnType<typeof createApiContext>;

export function createApiContext(d: ApiDeps, docs: ApiDocs) {
  const isTech = (res: Response) => callerOf(res).role !== 'admin';
  const guardFor = async (res: Response) => ({
    role: callerOf(res).role,
    allowed: (await d.settings?.techParams()) ?? [],
    profile: (n: string) => d.profiles().profiles.get(n),
  });

  // Hosts of one profile mostly share their parameters: one schema pass per (profile, parameters) per snapshot.
  const secretCache = new WeakMap<ProfileSnapshot, Map<string, Set<string>>>();
  const secretsOf = (host: HostLike): Set<string> => {
    const snap = d.profiles();
    let bySnap = secretCache.get(snap);
    if (!bySnap) {
      bySnap = new Map();
      secretCache.set(snap, bySnap);
    }
    const key = `${host.profile}\0${JSON.stringify(host.params)}`;
    let found = bySnap.get(key);
    if (!found) {
      found = hostSecretValues(snap.profiles.get(host.profile), host.params);
      if (bySnap.size > 10_000) bySnap.clear();
      bySnap.set(key, found);
    }
    return found;
  };

  return {
    d,
    /** Where each route describes itself (apiRoute): GET /api/openapi.json. */
    docs,
    p: d.provisioner,
    actor: (res: Response) => callerOf(res).actor,
    isTech,
    adminOnly: (_req: Request, res: Response, next: NextFunction) => {
      const c = callerOf(res);
      if (c.role !== 'admin')
        throw new HttpError(
          403,
          `this needs the admin role; the token of ${c.user ?? c.actor} has the ${c.role} role. Nothing was changed.`,
        );
      next();
    },
    profileExists: (n: string) => d.profiles().profiles.has(n),
    guardFor,
    /** Throws when the caller may not set these host parameters (a tech outside what an admin allowed). */
    guard: async (res: Response, before: Record<string, string>, host: HostLike) => {
      const refused = guardHostParams(await guardFor(res), before, host);
      if (refused) throw new HttpError(refused.status, refused.errors.join('; '));
    },
    secretsOf,
    /** What a tech's token sees of a host: secret parameters masked, and the host's secret values masked in free text. */
    forCaller: <T>(res: Response, host: HostLike, value: T): T => {
      if (!isTech(res)) return value;
      const secrets = secretsOf(host);
      return maskDeep(
        JSON.parse(
          maskText(
            JSON.stringify(value),
            [...secrets].map((s) => JSON.stringify(s).slice(1, -1)),
          ),
        ) as T,
      );
    },
  };
}

export function macParam(req: Request): Mac {
  const raw = String(req.params.mac ?? '');
  const mac = parseMac(raw);
  if (!mac)
    throw new HttpError(
      400,
      `mac: "${raw.slice(0, 64)}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`,
      'mac',
    );
  return mac;
}
