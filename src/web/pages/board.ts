// The rollout board and its live stream (SSE).
import express from 'express';
import { cookieOf, SESSION_COOKIE } from '../auth.ts';
import { buildBoard, STATES } from '../board.ts';
import { str, type WebContext } from './context.ts';

export function boardPages(c: WebContext): express.Router {
  const r = express.Router();
  r.get('/', c.tech, async (req, res) => {
    const filter = {
      rack: str(req.query.rack) || undefined,
      profile: str(req.query.profile) || undefined,
      state: str(req.query.state) || undefined,
      sort: str(req.query.sort) === 'time' ? 'time' : undefined,
    };
    const board = buildBoard(await c.chipsFor(c.d.view.hostList()), filter);
    c.page(res, 200, 'board', {
      title: 'Rollout board',
      board,
      filter,
      states: STATES,
      live: true,
      rackBuild: c.d.rollouts !== undefined,
    });
  });

  r.get('/board/stream', c.tech, (req, res) => {
    const cookie = cookieOf(req, SESSION_COOKIE);
    c.live.open(res, async () => (await c.sessions.lookup(cookie)) !== undefined, c.sessionOf(res).idHash);
  });
  return r;
}
