/**
 * Stats mounted in the real service (startService): /api/stats, /metrics and the /stats
 * namespace behind the service's token, first with a fake stats source, then (root) with real
 * bpftrace: a scrape of /metrics counts the packets sent through a lab.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import { io as ioClient, type Socket } from 'socket.io-client';
import { startService, type RunningService } from '../../server/service/index.js';
import type { StatsSource } from '../../server/stats/hub.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import type { StatsClientToServerEvents, StatsServerToClientEvents, StatsSessionInfo } from '../../shared/stats/api.js';
import { labFor, labUp, labDown } from '../../server/lab/lab.js';
import { sendUdp } from '../../server/lab/traffic.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { SYNTHETIC_CAPS as CAPS } from '../service/helpers.js';
import { labInodes, randomPrefix } from '../helpers/cli.js';

class Fake extends EventEmitter implements StatsSource {
  stopped = false;
  async start(): Promise<void> {}
  async stop(): Promise<StatsDocument | null> {
    this.stopped = true;
    this.emit('exit', { code: 0, signal: null, requested: true, stderr: '' });
    return null;
  }
}

const quiet = (): void => undefined;

describe('stats in startService', () => {
  let svc: RunningService | undefined;
  afterEach(async () => {
    await svc?.close();
    svc = undefined;
  });

  it('serves /api/stats and /metrics with the token, and /stats only to sockets with it', async () => {
    const fakes: Fake[] = [];
    svc = await startService({
      port: 0, token: 'tok', capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet,
      statsSource: () => { const f = new Fake(); fakes.push(f); return f; },
    });
    const base = svc.url.replace(/\/$/, '');
    expect((await fetch(`${base}/api/stats`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const auth = { authorization: 'Bearer tok', 'content-type': 'application/json' };
    const created = await fetch(`${base}/api/stats`, { method: 'POST', headers: auth, body: JSON.stringify({ filter: 'udp', interval_s: 2 }) });
    expect(created.status).toBe(201);
    const info = (await created.json()) as StatsSessionInfo;
    expect(info).toMatchObject({ filter: 'udp', intervalS: 2, state: 'running' });
    const metrics = await fetch(`${base}/metrics`, { headers: auth });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('# TYPE hoptrace_segment_latency_seconds histogram');
    expect(fakes).toHaveLength(2);

    const refused = ioClient(`${base}/stats`, { transports: ['websocket'], forceNew: true, reconnection: false });
    // Refused at the engine.io handshake (allowRequest), before the namespace is reached.
    expect((await new Promise<Error>((r) => refused.once('connect_error', r))).message).toBe('websocket error');
    refused.close();
    const sock: Socket<StatsServerToClientEvents, StatsClientToServerEvents> = ioClient(`${base}/stats`, { transports: ['websocket'], forceNew: true, query: { token: 'tok' } });
    try {
      const ack = await sock.timeout(5000).emitWithAck('subscribe', { id: info.id });
      expect(ack.ok).toBe(true);
    } finally {
      sock.close();
    }
    await svc.close();
    svc = undefined;
    expect(fakes.every((f) => f.stopped)).toBe(true);
  });
});

describe.skipIf(!isRoot)(`/metrics with real bpftrace (${NEEDS_ROOT})`, () => {
  it('counts packets sent through a lab in the segment histograms', async () => {
    const lab = labFor(randomPrefix('sm'));
    await labUp(lab);
    const roles = labInodes(lab);
    let svc: RunningService | undefined;
    try {
      svc = await startService({ port: 0, webDist: null, log: quiet });
      const base = svc.url.replace(/\/$/, '');
      // The first scrape starts the metrics session (and waits for its probes).
      expect((await fetch(`${base}/metrics`)).status).toBe(200);
      const port = 30000 + Math.floor(Math.random() * 20000);
      await sendUdp(lab.ns.pod1, lab.addr.pod2, port, 40, 32, 5);
      // Totals grow once an interval (5 s) has ended.
      const segLine = new RegExp(`hoptrace_segment_latency_seconds_count\\{from_ns="${lab.ns.pod1}",from_ifname="eth0",from_event="xmit",to_ns="${lab.ns.node}",to_ifname="veth-pod1",to_event="rx"\\} (\\d+)`);
      let count = 0;
      for (let i = 0; i < 30 && count < 40; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        count = Number(segLine.exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? 0);
      }
      // At least our 40 (the lab is ours, but the metrics session counts every packet of the host,
      // and other traffic of this lab — IPv6 neighbour discovery — crosses the same veth).
      expect(count).toBeGreaterThanOrEqual(40);
      expect(roles.size).toBe(4);
    } finally {
      await svc?.close();
      await labDown(lab);
    }
  }, 120_000);
});
