/**
 * The hub's REST routes, mounted under /api by `serve --hub` (behind the service's token and
 * origin checks like every other route):
 *
 *   GET /api/cluster           nodes (each namespace with its `node`), the cluster model's links,
 *                              clock offsets, the cluster session, bad bus messages by reason
 *   GET /api/cluster/packets   stitched packets (?limit=N, default 1000), `node` on every hop
 */
import { Router } from 'express';
import type { Hub } from '../hub/hub.js';
import { ApiError } from './errors.js';

export function hubRouter(hub: Hub): Router {
  const r = Router();
  r.get('/cluster', (_req, res) => {
    res.json({
      session: { filter: hub.filterText },
      nodes: hub.nodeInfo(),
      links: hub.cluster.links,
      clockOffsets: hub.offsets(),
      badMessages: hub.bad,
      packets: hub.packetsTotal,
    });
  });
  r.get('/cluster/packets', (req, res) => {
    const raw = req.query.limit;
    const limit = raw === undefined ? 1000 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new ApiError(400, 'bad-request', 'limit must be an integer 1-100000');
    res.json(hub.packets(limit));
  });
  return r;
}
