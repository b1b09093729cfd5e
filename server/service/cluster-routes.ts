/**
 * The hub's REST routes, mounted under /api by `serve --hub` (behind the service's token and
 * origin checks like every other route):
 *
 *   GET /api/cluster           nodes (each namespace with its `node`), the cluster model's links,
 *                              clock offsets, the cluster session, bad bus messages by reason
 *   GET /api/cluster/topology  every node's topology model as one, each namespace with its `node`
 *                              (what the dashboard draws in hub mode)
 *   GET /api/cluster/packets   stitched packets (?limit=N, default 1000), `node` on every hop, each
 *                              with its expected path across the nodes' models (`expected`, its
 *                              hops with `node` too) and where it left it (`divergence`), as
 *                              single-host packets have them
 *
 * and the socket.io namespace /cluster (behind the same token check as / and /stats):
 *   `cluster`  on connection and every second: what GET /api/cluster answers
 *   `packets`  stitched packets as they are made (JSON array). Sent volatile: a client that is not
 *              ready for more misses a batch rather than making the hub hold them for it.
 */
import { Router } from 'express';
import type { Server } from 'socket.io';
import type { Hub } from '../hub/hub.js';
import type { SocketAuth } from './index.js';
import { ApiError } from './errors.js';

export function hubRouter(hub: Hub): Router {
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
    res.json(hub.packets(limit));
  });
  return r;
}

function clusterView(hub: Hub): object {
  return {
    session: { filter: hub.filterText },
    nodes: hub.nodeInfo(),
    links: hub.cluster.links,
    clockOffsets: hub.offsets(),
    badMessages: hub.bad,
    packets: hub.packetsTotal,
  };
}

/** The /cluster namespace, as ServiceOptions.extraIo takes it. */
export const clusterStream = (hub: Hub) => (io: Server, auth: SocketAuth): { close(): void } => attachClusterStream(io, auth, hub);

function attachClusterStream(io: Server, auth: SocketAuth, hub: Hub): { close(): void } {
  const nsp = io.of('/cluster');
  nsp.use(auth);
  nsp.on('connection', (socket) => {
    socket.emit('cluster', clusterView(hub));
  });
  const off = hub.onPackets((packets) => {
    nsp.volatile.emit('packets', packets);
  });
  const timer = setInterval(() => nsp.emit('cluster', clusterView(hub)), 1000);
  timer.unref();
  return {
    close() {
      clearInterval(timer);
      off();
    },
  };
}
