/**
 * Issue 19, finding 3, through the service (real bpftrace, real demo lab): the UDP reply
 * 10.99.0.2:7000 → 10.99.0.1:<port> through the node's MASQUERADE is served by /packets on its
 * expected path, de-NATed by conntrack in PREROUTING, even though the session's filter names only
 * the reply (the request is never seen: the model takes the NAT from the reply's own hops).
 * `trace --json` shows the same: test/integration/lab-nat-replies.test.ts.
 */
import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labFor, labUp } from '../../server/lab/lab.js';
import { startLabServers, ECHO } from '../../server/lab/rounds.js';
import { sendUdp, type Server } from '../../server/lab/traffic.js';
import { startService, type RunningService } from '../../server/service/index.js';
import type { Packet } from '../../shared/packet.js';
import type { PacketExpectation } from '../../shared/topology/compare.js';
import type { SessionInfo } from '../../shared/api-types.js';
import { api, isRoot, myBpftracePids, postJson, waitFor } from './helpers.js';

const lab = labFor(`s${randomBytes(3).toString('hex')}`);

describe.skipIf(!isRoot)('NATed replies through the service on a real lab', () => {
  let svc: RunningService;
  let servers: Server[] = [];
  let inodes: Set<number>;

  beforeAll(async () => {
    await labUp(lab);
    inodes = new Set(Object.values(lab.ns).map((n) => statSync(`/run/netns/${n}`).ino));
    servers = await startLabServers(lab);
    svc = await startService({ port: 0, webDist: null, log: () => undefined });
  }, 60_000);

  afterAll(async () => {
    await svc?.close();
    await Promise.all(servers.map((s) => s.stop()));
    await labDown(lab);
    expect(myBpftracePids()).toEqual([]);
  }, 60_000);

  it('should serve the UDP reply through MASQUERADE on its expected path', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: `udp and src host ${lab.addr.ext} and src port ${ECHO.extUdp}` });
    expect(created.status).toBe(201);
    const replies = await waitFor('replies on /packets', async () => {
      await sendUdp(lab.ns.pod1, lab.addr.ext, ECHO.extUdp, 2, 32, 50);
      const r = await api<(Packet & PacketExpectation)[]>(svc.url, `/api/sessions/${created.body.id}/packets?limit=1000`);
      const mine = r.body.filter((p) => p.hops.every((h) => inodes.has(h.netns)) && p.sport === ECHO.extUdp && p.hops.some((h) => h.dst === lab.addr.pod1));
      return mine.length >= 2 ? mine : undefined;
    }, 60_000, 500);
    for (const p of replies) {
      expect(p.divergence, p.divergence?.summary).toBeNull();
      expect(p.expected?.hops.flatMap((h) => h.rules).find((x) => x.hook === 'PREROUTING')?.verdict).toMatch(/^reverse NAT: destination 10\.244\.1\.11:\d+$/);
    }
  }, 120_000);
});
