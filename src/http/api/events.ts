// GET /api/hosts/:mac/events: a host's timeline, oldest first, in pages; the cursor is always given, so a
// follower polls it for newer events (rackboot hosts timeline).
import express from 'express';
import { apiRoute } from '../openapi.ts';
import { CursorError, decodeCursor, encodeCursor, PAGE_LIMIT_DEFAULT } from '../paging.ts';
import { EventStream, EventsQuery, MacParams } from '../api-schemas.ts';
import { HttpError } from '../reply.ts';
import { macParam, type ApiContext } from './context.ts';

export function eventRoutes(c: ApiContext): express.Router {
  const { d } = c;
  const r = express.Router();
  apiRoute(
    r,
    c.docs,
    {
      method: 'get',
      path: '/hosts/:mac/events',
      summary: "a host's timeline (every boot step, callback and state change), oldest first",
      tags: ['hosts'],
      params: MacParams,
      query: EventsQuery,
      responses: { 200: EventStream, 404: 'no such host' },
    },
    async (req, res, { query }) => {
      const mac = macParam(req);
      const host = await d.hosts.get(mac);
      if (!host) throw new HttpError(404, `no host with MAC ${mac}`);
      const list = `events:${mac}`;
      const key = query.cursor === undefined ? 0 : decodeCursor(list, query.cursor, 1)[0];
      if (typeof key !== 'number' || !Number.isSafeInteger(key) || key < 0)
        throw new CursorError('cursor: not a cursor this server gave; start again without a cursor');
      const events = await d.provisioner.eventsAfter(mac, key, query.limit ?? PAGE_LIMIT_DEFAULT);
      const last = events.length ? events[events.length - 1]!.id : key;
      res.json(
        c.forCaller(res, host, {
          items: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
          nextCursor: encodeCursor(list, [last]),
        }),
      );
    },
  );
  return r;
}
