/**
 * The hub's REST routes, mounted under /api by `serve --hub` (behind the service's token and
 * origin checks like every other route):
 *
 *   GET /api/cluster           nodes (each namespace with its `node`), the cluster model's links,
 *                              clock offsets, the cluster session, bad bus messages by reason
 *   GET /api/cluster/topology  every node's topology model as one, each namespace with its `node`
 *                              (what the dashboard draws in hub mode)
 *   GET /api/cluster/packets   stitched packets (?limit=N, default 1000; ?session=ID, default the
 *                              cluster session `hub`), `node` on every hop, each with its expected
 *                              path across the nodes' models (`expected`, its hops with `node`
 *                              too) and where it left it (`divergence`), as single-host packets have them
 *
 * and the sessions of the cluster, in the single-host service's contract (they answer before the
 * hub host's own /api/sessions, which a hub does not use):
 *   POST /api/sessions         {filter, sample?, notes?, netfilter?, nodes?}: asked of every node
 *                              (or those named); 201 once each answered, each node's answer in
 *                              `nodes`; a bad filter is 400 before any node is asked
 *   GET /api/sessions, GET/DELETE /api/sessions/:id, GET /api/sessions/:id/packets
 *   POST/DELETE /api/sessions/:id/recording   a hub session's recording (server/hub/hub-recording.ts),
 *                              into the service's recordings library (GET /api/recordings lists it)
 *
 * and the socket.io namespace /cluster (behind the same token check as / and /stats):
 *   `cluster`  on connection and every second: what GET /api/cluster answers (`streamDrops`:
 *              packets dropped for slow clients, all clients), and `stream` {session,
 *              droppedPackets, droppedLots, queuedPackets}: this client's part
 *   `packets`  stitched packets of the session the socket follows (the cluster session until it
 *              sends `subscribe` {session}), as they are made (JSON array). Each client has its
 *              own bounded queue (server/service/cluster-channel.ts, as the single host's
 *              ClientChannel): a client that does not keep up loses its oldest lots, counted in
 *              its `stream` and in `streamDrops`, and makes the hub hold nothing more for it.
 *   `topology` {node, added, removed, changed} when a node's topology changes (namespaces by
 *              name; then GET /api/cluster/topology has the new model)
 *   `session-ended` {session} when the followed session ends
 */
import express, { Router } from 'express';
import type { Server, Socket } from 'socket.io';
import { z } from 'zod';
import type { Hub } from '../hub/hub.js';
import type { ClusterSession } from '../hub/cluster-session.js';
import type { SocketAuth } from './index.js';
import { CreateSessionRequest, PacketsQuery, SAMPLE_RATE_HEADER, SESSION_ID_RE, describeZodError } from '../../shared/api-types.js';
import { startRecordingBody } from './recordings-routes.js';
import type { HubRecordings } from '../hub/hub-recording.js';
import { isNodeName } from '../../shared/cluster/subjects.js';
import { ApiError, allowOnly } from './errors.js';
import { ClusterChannel, DEFAULT_CLUSTER_CHANNEL_LIMITS, type ClusterChannelLimits } from './cluster-channel.js';

/** POST /api/sessions on a hub: the single-host body, plus the nodes to run on (default all). */
const CreateClusterSessionRequest = CreateSessionRequest.extend({
  nodes: z.array(z.string().refine(isNodeName, 'a node name is 1-64 letters, digits, - or _')).min(1).max(1024).optional(),
});

function clusterSession(hub: Hub, id: unknown): ClusterSession {
  const s = typeof id === 'string' && SESSION_ID_RE.test(id) ? hub.session(id) : undefined;
  if (!s) throw new ApiError(404, 'not-found', `no session ${typeof id === 'string' ? id.slice(0, 40) : ''}`);
  return s;
}

export interface HubRouterOptions {
  /** The hub sessions' recordings (POST/DELETE /api/sessions/:id/recording); absent: 503 as without --data-dir. */
  readonly recordings?: HubRecordings;
}

export function hubRouter(hub: Hub, opts: HubRouterOptions = {}): Router {
  const r = Router();
  r.get('/cluster', (_req, res) => {
    res.json(clusterView(hub));
  });
  r.get('/cluster/topology', (_req, res) => {
    res.json(hub.clusterTopology());
  });
  r.get('/cluster/packets', (req, res) => {
    const raw = req.query.limit;
    const limit = raw === undefined ? 1000 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new ApiError(400, 'bad-request', 'limit must be an integer 1-100000');
    const s = req.query.session === undefined ? undefined : clusterSession(hub, req.query.session);
    if (s) hub.touch(s);
    res.json(hub.packets(limit, s?.id));
  });

  r.get('/sessions', (_req, res) => {
    res.json({ sessions: hub.listSessions().map((s) => s.info()) });
  });
  // The body parser on this route only: every other /api request passes through this router.
  r.post('/sessions', express.json({ limit: '16kb', strict: true }), async (req, res) => {
    if (!req.is('application/json')) throw new ApiError(400, 'bad-request', 'send the body as JSON (Content-Type: application/json), e.g. {"filter": "host 10.0.0.1"}');
    const body = CreateClusterSessionRequest.parse(req.body);
    const s = await hub.createSession({
      filter: body.filter, ...(body.sample !== undefined ? { sample: body.sample } : {}),
      depth: { notes: body.notes === true, netfilter: body.netfilter === true },
      ...(body.nodes ? { nodes: body.nodes } : {}),
    });
    res.status(201).location(`/api/sessions/${s.id}`).json(s.info());
  });
  r.get('/sessions/:id', (req, res) => {
    const s = clusterSession(hub, req.params.id);
    hub.touch(s);
    res.json(s.info());
  });
  r.delete('/sessions/:id', async (req, res) => {
    const s = clusterSession(hub, req.params.id);
    await hub.deleteSession(s.id);
    res.status(204).end();
  });
  r.get('/sessions/:id/packets', (req, res) => {
    const s = clusterSession(hub, req.params.id);
    const query = PacketsQuery.parse(req.query);
    hub.touch(s);
    res.setHeader(SAMPLE_RATE_HEADER, String(s.spec.sample));
    res.json(s.packets(query.limit));
  });
  // A hub session's recording, in the single host's contract (server/service/recordings-routes.ts):
  // 201 with the RecordingStatus, 409 when it already records or the name is taken, 503 without a data folder.
  r.post('/sessions/:id/recording', express.json({ limit: '16kb', strict: true }), (req, res) => {
    const s = clusterSession(hub, req.params.id);
    const recordings = requireRecordings(opts.recordings);
    recordings.requireDataDir();
    const body = startRecordingBody(req);
    hub.touch(s);
    const status = recordings.start(s, body.name);
    res.status(201).location(`/api/recordings/${encodeURIComponent(status.name)}`).json(status);
  });
  r.delete('/sessions/:id/recording', async (req, res) => {
    const s = clusterSession(hub, req.params.id);
    hub.touch(s);
    res.json(await requireRecordings(opts.recordings).stop(s));
  });
  allowOnly(r, '/sessions/:id/recording', ['POST', 'DELETE']);
  for (const path of ['/cluster', '/cluster/topology', '/cluster/packets', '/sessions/:id/packets']) allowOnly(r, path, ['GET']);
  allowOnly(r, '/sessions', ['GET', 'POST']);
  allowOnly(r, '/sessions/:id', ['GET', 'DELETE']);
  return r;
}

function requireRecordings(r: HubRecordings | undefined): HubRecordings {
  if (!r) throw new ApiError(503, 'unavailable', 'this service keeps no recordings (start it with --data-dir)');
  return r;
}

function clusterView(hub: Hub): object {
  return {
    // `waiting`: the cluster session's `pod NAME` is on no node known yet (no agent is asked meanwhile).
    session: { filter: hub.filterText, ...(hub.clusterSessionWaiting !== null ? { waiting: hub.clusterSessionWaiting } : {}) },
    nodes: hub.nodeInfo(),
    links: hub.cluster.links,
    clockOffsets: hub.offsets(),
    badMessages: hub.bad,
    packets: hub.packetsTotal,
    // Stitched packets dropped for /cluster clients too slow to take them (each client's own count is in its `stream`).
    streamDrops: hub.streamDrops,
  };
}

/** The /cluster namespace, as ServiceOptions.extraIo takes it. */
export const clusterStream = (hub: Hub, limits: ClusterChannelLimits = DEFAULT_CLUSTER_CHANNEL_LIMITS) => (io: Server, auth: SocketAuth): { close(): void } => attachClusterStream(io, auth, hub, limits);

const room = (session: string): string => `session:${session}`;
const SubscribeRequest = z.strictObject({ session: z.string().regex(SESSION_ID_RE, 'not a session id') });

function attachClusterStream(io: Server, auth: SocketAuth, hub: Hub, limits: ClusterChannelLimits): { close(): void } {
  const nsp = io.of('/cluster');
  nsp.use(auth);
  /** The session each socket follows (one at a time: the dashboard shows one), and its outgoing queue. */
  const following = new Map<string, ClusterSession>();
  const channels = new Map<string, ClusterChannel>();
  const follow = (socket: Socket, s: ClusterSession | undefined): void => {
    const before = following.get(socket.id);
    if (before) {
      before.watchers = Math.max(0, before.watchers - 1);
      hub.touch(before);
      void socket.leave(room(before.id));
      following.delete(socket.id);
      channels.get(socket.id)?.forget(before.id);
    }
    if (!s) return;
    s.watchers++;
    following.set(socket.id, s);
    void socket.join(room(s.id));
  };
  /** The cluster view with this client's part of the stream of the session it follows. */
  const viewFor = (id: string, base: object): object => {
    const s = following.get(id);
    const ch = channels.get(id);
    return s && ch ? { ...base, stream: ch.state(s.id) } : base;
  };
  nsp.on('connection', (socket) => {
    const channel = new ClusterChannel(socket, limits, hub.streamDrops);
    channels.set(socket.id, channel);
    follow(socket, hub.session('hub'));
    channel.sendView(() => viewFor(socket.id, clusterView(hub)));
    socket.on('subscribe', (raw: unknown, ack: unknown) => {
      const reply = (v: object): void => { if (typeof ack === 'function') (ack as (v: object) => void)(v); };
      const parsed = SubscribeRequest.safeParse(raw);
      if (!parsed.success) {
        reply({ ok: false, error: { code: 'bad-request', message: describeZodError(parsed.error) } });
        return;
      }
      const s = hub.session(parsed.data.session);
      if (!s) {
        reply({ ok: false, error: { code: 'not-found', message: `no session ${parsed.data.session}` } });
        return;
      }
      follow(socket, s);
      reply({ ok: true, session: s.info() });
    });
    socket.on('disconnect', () => {
      follow(socket, undefined);
      channel.close();
      channels.delete(socket.id);
    });
  });
  // Each client's own queue: a slow one loses its oldest packets, counted, and slows nobody else.
  const offPackets = hub.onPackets((packets, session) => {
    for (const [id, s] of following) if (s.id === session) channels.get(id)?.sendPackets(session, packets);
  });
  const offTopology = hub.onTopologyChange((change) => {
    for (const ch of channels.values()) ch.sendControl('topology', change);
  });
  const offEnd = hub.onSessionEnd((session) => {
    for (const [id, s] of following) if (s.id === session) channels.get(id)?.sendControl('session-ended', { session });
  });
  const timer = setInterval(() => {
    const base = clusterView(hub);
    for (const [id, ch] of channels) ch.sendView(() => viewFor(id, base));
  }, 1000);
  timer.unref();
  return {
    close() {
      clearInterval(timer);
      offPackets();
      offTopology();
      offEnd();
      for (const ch of channels.values()) ch.close();
    },
  };
}
