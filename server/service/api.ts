/**
 * The REST API under /api: sessions, their recent packets, health, capabilities, drop reasons
 * and topology. Bodies, queries and ids are validated with the zod schemas of
 * shared/api-types.ts; every failure is an ApiError (errors.ts). Origin and token checks run
 * before this router (index.ts).
 */
import express, { type Request, type Router } from 'express';
import type {
  Capabilities, DropReasonsResponse, HealthResponse, HubHealth, SessionList,
} from '../../shared/api-types.js';
import { CreateSessionRequest, PacketsQuery, SAMPLE_RATE_HEADER, SESSION_ID_RE } from '../../shared/api-types.js';
import type { Topology } from '../../shared/topology/model.js';
import type { Packet } from '../../shared/packet.js';
import { loadDropReasons } from '../drop-reasons.js';
import { ApiError, allowOnly } from './errors.js';
import type { Session, SessionRegistry } from './sessions.js';

export const VERSION = '0.1.0';

export interface ApiDeps {
  readonly registry: SessionRegistry;
  readonly capabilities: Capabilities;
  readonly startedAt: number;
  /** Topology discovery; throws ApiError('unavailable') where it cannot run. */
  readonly topology: () => Promise<Topology>;
  /** Adds the expected path and divergence to a packet (identity without a model). */
  readonly annotate?: (packet: Packet) => Packet;
  /** `serve --hub`: said in /api/health, so the dashboard knows to show the cluster. */
  readonly hub?: boolean;
  /** `serve --hub`: the hub's sessions and nodes, for /api/health (its sessions are the hub's, not this host's registry's). */
  readonly hubHealth?: () => HubHealth;
}

/** The session a route's `:id` names, or 404. */
export function sessionParam(registry: SessionRegistry, req: Request): Session {
  const id = req.params.id;
  const session = typeof id === 'string' && SESSION_ID_RE.test(id) ? registry.get(id) : undefined;
  if (!session) throw new ApiError(404, 'not-found', `no session ${typeof id === 'string' ? id.slice(0, 40) : ''}`);
  return session;
}

export function apiRouter(deps: ApiDeps): Router {
  const { registry } = deps;
  const router = express.Router();
  router.use(express.json({ limit: '16kb', strict: true }));

  router.get('/health', (_req, res) => {
    const hub = deps.hubHealth?.();
    const body: HealthResponse = {
      status: 'ok',
      version: VERSION,
      uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
      sessions: hub ? hub.sessions : registry.list().length,
      bpftraceProcesses: registry.bpftraceCount,
      // A hub's agents trace, not its host: its nodes' word.
      canTrace: hub ? hub.canTrace : deps.capabilities.canTrace,
      ...(deps.hub || hub ? { hub: true as const } : {}),
      ...(hub ? { nodes: hub.nodes } : {}),
      ...(hub?.clusterSession ? { clusterSession: hub.clusterSession } : {}),
    };
    res.json(body);
  });

  router.get('/capabilities', (_req, res) => {
    // On a hub the host's probes are not what traces: whether it can, and why not, are the nodes'.
    const hub = deps.hubHealth?.();
    res.json(hub ? { ...deps.capabilities, canTrace: hub.canTrace, problems: hub.problems } : deps.capabilities);
  });

  router.get('/drop-reasons', async (_req, res) => {
    const table = await loadDropReasons();
    const reasons: Record<string, string> = {};
    for (const [code, name] of table.names) reasons[String(code)] = name;
    const body: DropReasonsResponse = { reasons };
    res.json(body);
  });

  router.get('/topology', async (_req, res) => {
    res.json(await deps.topology());
  });

  router.get('/sessions', (_req, res) => {
    const body: SessionList = { sessions: registry.list().map((s) => registry.info(s)) };
    res.json(body);
  });

  router.post('/sessions', async (req, res) => {
    if (!req.is('application/json')) throw new ApiError(400, 'bad-request', 'send the body as JSON (Content-Type: application/json), e.g. {"filter": "host 10.0.0.1"}');
    const body = CreateSessionRequest.parse(req.body);
    if (!deps.capabilities.canTrace) throw new ApiError(503, 'cannot-trace', deps.capabilities.problems.join(' '));
    const session = await registry.create(body.filter, { netfilter: body.netfilter === true, notes: body.notes === true }, body.sample ?? 1);
    res.status(201).location(`/api/sessions/${session.id}`).json(registry.info(session));
  });

  router.get('/sessions/:id', (req, res) => {
    const session = sessionParam(registry, req);
    registry.touch(session);
    res.json(registry.info(session));
  });

  router.delete('/sessions/:id', async (req, res) => {
    const session = sessionParam(registry, req);
    await registry.delete(session.id);
    res.status(204).end();
  });

  router.get('/sessions/:id/packets', (req, res) => {
    const session = sessionParam(registry, req);
    const query = PacketsQuery.parse(req.query);
    registry.touch(session);
    const packets = session.feed.lastPackets(query.limit);
    // In a header: the body stays the array of `trace --json` objects clients already read.
    res.setHeader(SAMPLE_RATE_HEADER, String(session.feed.sampleRate));
    res.json(deps.annotate ? packets.map(deps.annotate) : packets);
  });

  for (const path of ['/health', '/capabilities', '/drop-reasons', '/topology', '/sessions/:id/packets']) allowOnly(router, path, ['GET']);
  allowOnly(router, '/sessions', ['GET', 'POST']);
  allowOnly(router, '/sessions/:id', ['GET', 'DELETE']);

  router.use((req) => {
    throw new ApiError(404, 'not-found', `no such endpoint: ${req.method} /api${req.path.slice(0, 100)}`);
  });
  return router;
}
