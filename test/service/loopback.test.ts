/**
 * Issue 13 §3 through the service (real bpftrace): the host's own loopback is traced, leaving out
 * only the service's own connections (its listening port, in the kernel: probes/emit.bt
 * SELF_PORTS, and in the feed). A session whose filter names both a localhost UDP flow and the
 * service's port serves the flow's packets on lo and none of the service's own, though the test
 * polls the service on that port all along. Traffic stays on 127.0.0.1, between its own sockets.
 */
import { createSocket } from 'node:dgram';
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../server/service/index.js';
import type { Packet } from '../../shared/packet.js';
import type { SessionInfo } from '../../shared/api-types.js';
import { api, isRoot, myBpftracePids, postJson, waitFor } from './helpers.js';

describe.skipIf(!isRoot)("the host's loopback through the service", () => {
  let svc: RunningService;
  const sink = createSocket('udp4');
  let sinkPort = 0;

  beforeAll(async () => {
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
    sinkPort = sink.address().port;
    svc = await startService({ port: 0, webDist: null, log: () => undefined });
  }, 60_000);

  afterAll(async () => {
    await svc?.close();
    sink.close();
    expect(myBpftracePids()).toEqual([]);
  }, 60_000);

  it("should serve a localhost flow's packets on lo and never the service's own connections", async () => {
    const host = statSync('/proc/self/ns/net').ino;
    const svcPort = Number(new URL(svc.url).port);
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: `udp port ${sinkPort} or tcp port ${svcPort}` });
    expect(created.status).toBe(201);
    const sender = createSocket('udp4');
    let served: Packet[] = [];
    try {
      const mine = await waitFor('the localhost flow on /packets', async () => {
        await new Promise<void>((r, j) => sender.send(Buffer.alloc(16), sinkPort, '127.0.0.1', (e) => (e ? j(e) : r())));
        served = (await api<Packet[]>(svc.url, `/api/sessions/${created.body.id}/packets?limit=1000`)).body;
        const flow = served.filter((p) => p.dport === sinkPort);
        return flow.length >= 3 ? flow : undefined;
      }, 60_000, 300);
      for (const p of mine) {
        expect(p.hops.every((h) => h.netns === host)).toBe(true);
        expect(p.hops.map((h) => `${h.ifname}/${h.event}`)).toContain('lo/xmit');
        expect(p.fate).toBe('delivered');
      }
    } finally {
      sender.close();
    }
    // Every poll above was a connection to the service's port, which the filter names.
    expect(served.filter((p) => p.sport === svcPort || p.dport === svcPort)).toEqual([]);
  }, 120_000);
});
