/**
 * The stats routes of the service (REST under /api/stats, and /metrics) over a StatsHub. The
 * shapes are in shared/stats/api.ts; errors are the service's ApiErrors (fixed codes, no stack
 * traces). Mounted by server/service/index.ts after its origin and token checks.
 */
import express, { type Request, type RequestHandler, type Router } from 'express';
import { CreateStatsRequest, STATS_ID_RE, StatsCompareQuery, type StatsSessionDetail, type StatsSessionList } from '../../shared/stats/api.js';
import { compareStats, mergeStatsDocuments } from '../../shared/stats/compare.js';
import { renderPrometheus } from '../../shared/stats/prometheus.js';
import { FilterError } from '../../shared/filter/index.js';
import { ApiError, allowOnly } from './errors.js';
import { CannotTraceError } from '../trace-session.js';
import { StatsHubFullError, type HubSession, type StatsHub } from '../stats/hub.js';

export interface StatsRouterDeps {
  readonly hub: StatsHub;
  /** Whether this host can trace; a sentence naming the fix when it cannot. */
  readonly canTrace: () => { ok: boolean; problems: readonly string[] };
}

function sessionParam(hub: StatsHub, req: Request): HubSession {
  const id = req.params.id;
  const s = typeof id === 'string' && STATS_ID_RE.test(id) ? hub.get(id) : undefined;
  if (!s) throw new ApiError(404, 'not-found', `no stats session ${typeof id === 'string' ? id.slice(0, 40) : ''}`);
  return s;
}

async function open(deps: StatsRouterDeps, filter: string, intervalMs: number, sample: number): Promise<HubSession> {
  const can = deps.canTrace();
  if (!can.ok) throw new ApiError(503, 'cannot-trace', can.problems.join(' '));
  try {
    return await deps.hub.open(filter, intervalMs, sample);
  } catch (err) {
    if (err instanceof StatsHubFullError) throw new ApiError(429, 'too-many-sessions', err.message);
    if (err instanceof FilterError || err instanceof CannotTraceError || err instanceof ApiError) throw err;
    // What bpftrace said when it would not start: its first lines.
    const text = (err instanceof Error ? err.message : String(err)).split('\n').filter((l) => l.trim() !== '').slice(0, 5).join('\n');
    throw new ApiError(500, 'trace-failed', `bpftrace failed to start: ${text}`);
  }
}

export function statsRouter(deps: StatsRouterDeps): Router {
  const { hub } = deps;
  const router = express.Router();
  router.use('/stats', express.json({ limit: '16kb', strict: true }));

  router.post('/stats', async (req, res) => {
    if (!req.is('application/json')) throw new ApiError(400, 'bad-request', 'send the body as JSON (Content-Type: application/json), e.g. {"filter": "udp", "intervalS": 1}');
    const body = CreateStatsRequest.parse(req.body);
    const s = await open(deps, body.filter, Math.round((body.intervalS ?? 1) * 1000), body.sample ?? 1);
    res.status(201).location(`/api/stats/${s.id}`).json(hub.info(s));
  });

  router.get('/stats', (_req, res) => {
    const body: StatsSessionList = { sessions: hub.list().map((s) => hub.info(s)) };
    res.json(body);
  });

  router.get('/stats/:id', (req, res) => {
    const s = sessionParam(hub, req);
    hub.touch(s);
    const body: StatsSessionDetail = { ...hub.info(s), history: s.history };
    res.json(body);
  });

  router.get('/stats/:id/compare', (req, res) => {
    const s = sessionParam(hub, req);
    hub.touch(s);
    const q = StatsCompareQuery.parse(req.query);
    const a = mergeStatsDocuments(hub.window(s, q.a_from, q.a_to));
    const b = mergeStatsDocuments(hub.window(s, q.b_from, q.b_to));
    if (!a || !b) throw new ApiError(404, 'not-found', `no documents in window ${a ? 'b' : 'a'} (the session keeps the last ${s.history.length})`);
    res.json(compareStats(a, b));
  });

  router.delete('/stats/:id', async (req, res) => {
    const s = sessionParam(hub, req);
    await hub.delete(s.id);
    res.status(204).end();
  });

  allowOnly(router, '/stats', ['GET', 'POST']);
  allowOnly(router, '/stats/:id', ['GET', 'DELETE']);
  allowOnly(router, '/stats/:id/compare', ['GET']);
  return router;
}

/**
 * GET /metrics: Prometheus text of the metrics session (no filter, every `intervalMs`), started
 * on the first scrape and kept while scrapes keep coming. The first scrape waits for the probes
 * to attach and shows no samples yet; totals grow from there.
 */
export function metricsHandler(deps: StatsRouterDeps & { readonly intervalMs?: number; readonly checkToken: (authorization: string | undefined) => boolean }): RequestHandler {
  return async (req, res, next) => {
    try {
      if (!deps.checkToken(req.get('authorization'))) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="hoptrace"');
        throw new ApiError(401, 'unauthorized', 'this service needs a token: send Authorization: Bearer <token>');
      }
      const s = await open(deps, '', deps.intervalMs ?? 5000, 1);
      deps.hub.touch(s);
      res.type('text/plain; version=0.0.4; charset=utf-8').send(renderPrometheus(s.totals));
    } catch (err) {
      next(err);
    }
  };
}
