/**
 * The service side of stats without bpftrace: a fake stats source emits documents; the hub
 * shares sessions, keeps history and totals; the REST routes, /metrics and the /stats socket
 * namespace serve them on a real port to real clients.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Server } from 'socket.io';
import { io as ioClient, type Socket } from 'socket.io-client';
import { StatsHub, type StatsSource } from '../../server/stats/hub.js';
import { statsRouter, metricsHandler } from '../../server/service/stats-routes.js';
import { attachStatsStream, type StatsNamespace } from '../../server/service/stats-stream.js';
import { errorHandler } from '../../server/service/errors.js';
import type { StatsSessionOptions } from '../../server/stats/session.js';
import type { BpftraceExit } from '../../server/bpftrace.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import type { StatsClientToServerEvents, StatsServerToClientEvents, StatsSessionDetail, StatsSessionInfo } from '../../shared/stats/api.js';
import type { StatsComparison } from '../../shared/stats/compare.js';
import { bucketIndex, histFromCounts } from '../../shared/stats/buckets.js';

class FakeStats extends EventEmitter implements StatsSource {
  static made: FakeStats[] = [];
  started = false;
  stopped = false;
  t = Date.now() - 60_000;
  constructor(readonly opts: StatsSessionOptions) {
    super();
    FakeStats.made.push(this);
  }
  async start(): Promise<void> {
    if (this.opts.filter.includes('10.9.9.9')) throw new Error('bpftrace did not attach');
    this.started = true;
  }
  async stop(): Promise<StatsDocument | null> {
    this.stopped = true;
    this.emit('exit', { code: 0, signal: null, requested: true, stderr: '' } satisfies BpftraceExit);
    return null;
  }
  /** One interval in which `count` packets took `ns` each on the pod1 → node veth. */
  tick(count: number, ns: number): StatsDocument {
    const start = this.t;
    this.t += 1000;
    const hist = histFromCounts(new Map([[bucketIndex(ns), count]]));
    const place = (ns_: string, ifname: string, event: 'xmit' | 'rx') => ({ ns: ns_, ifname, event, netns: 1, ifindex: 2 });
    const doc: StatsDocument = {
      type: 'stats', start_ns: start * 1e6, end_ns: this.t * 1e6, start: new Date(start).toISOString(), end: new Date(this.t).toISOString(),
      duration_s: 1, sample_rate: this.opts.sampleRate ?? 1, filter: this.opts.filter, final: false,
      segments: [{ from: place('pod1', 'eth0', 'xmit'), to: place('node', 'veth-pod1', 'rx'), count, p50_ns: ns, p90_ns: ns, p99_ns: ns, max_ns: ns, hist }],
      transit: [], drops: [{ ns: 'node', netns: 1, ifname: 'br0', ifindex: 3, reason: 'NETFILTER_DROP', count: 1 }],
      interfaces: [{ ns: 'pod1', netns: 1, ifname: 'eth0', ifindex: 2, pps: count, bps: count * 480, rx_packets: 0, tx_packets: count, rx_bytes: 0, tx_bytes: count * 60 }],
    };
    this.emit('interval', doc);
    return doc;
  }
}

describe('stats in the service (fake source)', () => {
  let hub: StatsHub;
  let http: HttpServer;
  let base: string;
  let nsp: StatsNamespace;
  let io: Server;
  let token: string | null = null;

  beforeEach(async () => {
    FakeStats.made = [];
    hub = new StatsHub({ source: (o) => new FakeStats(o), keep: 5, graceMs: 60_000, maxSessions: 2 });
    const app = express();
    app.get('/metrics', metricsHandler({ hub, canTrace: () => ({ ok: true, problems: [] }), checkToken: (h) => token === null || h === `Bearer ${token}` }));
    app.use('/api', statsRouter({ hub, canTrace: () => ({ ok: true, problems: [] }) }));
    app.use(errorHandler(() => undefined));
    http = createServer(app);
    io = new Server(http);
    nsp = io.of('/stats') as unknown as StatsNamespace;
    attachStatsStream(nsp, hub);
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    token = null;
    await hub.close();
    await new Promise<void>((r) => { void io.close(() => r()); });
  });

  const post = (body: unknown) => fetch(`${base}/api/stats`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('creates a session, shares it for an equal request, and keeps only the newest documents', async () => {
    const r1 = await post({ filter: 'udp  and port 53', interval_s: 1 });
    expect(r1.status).toBe(201);
    const s1 = (await r1.json()) as StatsSessionInfo;
    expect(s1).toMatchObject({ filter: 'udp and port 53', intervalS: 1, sampleRate: 1, state: 'running' });
    // The camelCase name and the old snake_case one (still accepted) ask for the same session.
    const s2 = (await (await post({ filter: 'udp and port 53', intervalS: 1 })).json()) as StatsSessionInfo;
    expect(s2.id).toBe(s1.id);
    expect(FakeStats.made).toHaveLength(1);
    const fake = FakeStats.made[0] as FakeStats;
    for (let i = 1; i <= 7; i++) fake.tick(i, 1000);
    const detail = (await (await fetch(`${base}/api/stats/${s1.id}`)).json()) as StatsSessionDetail;
    expect(detail.documents).toBe(7);
    expect(detail.history.map((d) => d.segments[0]?.count)).toEqual([3, 4, 5, 6, 7]);
  });

  it('answers bad input with the fixed error codes', async () => {
    expect((await (await post({ filter: 'port' })).json())).toMatchObject({ error: { code: 'bad-filter' } });
    expect((await post({ filter: '', interval_s: 0.01 })).status).toBe(400);
    expect((await post({ filter: '', intervalS: 0.01 })).status).toBe(400);
    expect((await (await post({ filter: '', intervalS: 1, interval_s: 1 })).json())).toMatchObject({ error: { code: 'bad-request', message: expect.stringContaining('intervalS or interval_s') } });
    expect((await post({ filter: '', sample: 0 })).status).toBe(400);
    expect((await post({ filter: '', extra: 1 })).status).toBe(400);
    expect((await fetch(`${base}/api/stats/nope`)).status).toBe(404);
    await post({ filter: 'udp' });
    await post({ filter: 'tcp' });
    const full = await post({ filter: 'icmp' });
    expect(full.status).toBe(429);
    expect(await full.json()).toMatchObject({ error: { code: 'too-many-sessions' } });
  });

  it('compares two windows of a session, segment by segment', async () => {
    const s = (await (await post({ filter: '' })).json()) as StatsSessionInfo;
    const fake = FakeStats.made[0] as FakeStats;
    const a = [fake.tick(10, 2_000), fake.tick(10, 2_000)];
    const b = [fake.tick(10, 40_000), fake.tick(10, 40_000)];
    const q = new URLSearchParams({
      a_from: String(Date.parse(a[0]?.start ?? '')), a_to: String(Date.parse(a[1]?.end ?? '')),
      b_from: String(Date.parse(b[0]?.start ?? '')), b_to: String(Date.parse(b[1]?.end ?? '')),
    });
    const cmp = (await (await fetch(`${base}/api/stats/${s.id}/compare?${q}`)).json()) as StatsComparison;
    expect(cmp.segments).toHaveLength(1);
    expect(cmp.segments[0]?.a?.count).toBe(20);
    expect(cmp.segments[0]?.significant).toBe(true);
    expect(cmp.segments[0]?.diff?.p99_ns).toBeGreaterThan(30_000);
  });

  it('serves Prometheus text from a session it starts on the first scrape, with a token when one is set', async () => {
    const first = await fetch(`${base}/metrics`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const fake = FakeStats.made[0] as FakeStats;
    expect(fake.opts).toMatchObject({ filter: '', intervalMs: 5000 });
    fake.tick(4, 1000);
    fake.tick(6, 1000);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/hoptrace_segment_latency_seconds_count\{from_ns="pod1",from_ifname="eth0",from_event="xmit",to_ns="node",to_ifname="veth-pod1",to_event="rx"\} 10/);
    expect(text).toMatch(/hoptrace_drops_total\{ns="node",ifname="br0",reason="NETFILTER_DROP"\} 2/);
    expect(FakeStats.made).toHaveLength(1);
    token = 'sekret';
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer sekret' } })).status).toBe(200);
  });

  it('reports a session whose bpftrace failed to start', async () => {
    const r = await post({ filter: 'host 10.9.9.9' });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ error: { code: 'trace-failed', message: 'bpftrace failed to start: bpftrace did not attach' } });
    const list = (await (await fetch(`${base}/api/stats`)).json()) as { sessions: StatsSessionInfo[] };
    expect(list.sessions[0]).toMatchObject({ state: 'failed', message: 'bpftrace did not attach' });
  });

  it('streams documents to subscribers of the /stats namespace, history first', async () => {
    const s = (await (await post({ filter: 'udp' })).json()) as StatsSessionInfo;
    const fake = FakeStats.made[0] as FakeStats;
    fake.tick(1, 500);
    const client: Socket<StatsServerToClientEvents, StatsClientToServerEvents> = ioClient(`${base}/stats`, { transports: ['websocket'], forceNew: true });
    try {
      const got: number[] = [];
      client.on('document', (m) => got.push(m.doc.segments[0]?.count ?? -1));
      const ack = await client.timeout(5000).emitWithAck('subscribe', { id: s.id });
      expect(ack.ok && ack.history.length).toBe(1);
      const bad = await client.timeout(5000).emitWithAck('subscribe', { id: 'x' });
      expect(bad).toMatchObject({ ok: false, error: { code: 'bad-request' } });
      fake.tick(2, 500);
      fake.tick(3, 500);
      const states: string[] = [];
      client.on('state', (m) => states.push(m.state));
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toEqual([2, 3]);
      await fetch(`${base}/api/stats/${s.id}`, { method: 'DELETE' });
      await new Promise((r) => setTimeout(r, 200));
      expect(states).toContain('ended');
      expect(fake.stopped).toBe(true);
    } finally {
      client.close();
    }
  });
});

describe('createStatsService (what server/service/index.ts mounts)', () => {
  it('puts the /stats namespace behind the service\'s socket auth and stops its sessions on close', async () => {
    const { createStatsService } = await import('../../server/service/stats.js');
    FakeStats.made = [];
    const stats = createStatsService({ canTrace: () => ({ ok: true, problems: [] }), checkToken: () => true, source: (o) => new FakeStats(o) });
    const app = express();
    app.get('/metrics', stats.metrics);
    app.use('/api', stats.router);
    const http = createServer(app);
    const io = new Server(http);
    stats.attach(io, (socket, next) => {
      const auth = socket.handshake.auth as { token?: unknown };
      next(auth.token === 't0k' ? undefined : Object.assign(new Error('unauthorized'), { data: { code: 'unauthorized' } }));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      const s = (await (await fetch(`${base}/api/stats`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"filter":""}' })).json()) as StatsSessionInfo;
      const refused = ioClient(`${base}/stats`, { transports: ['websocket'], forceNew: true, reconnection: false });
      const err = await new Promise<Error>((r) => refused.once('connect_error', r));
      expect(err.message).toBe('unauthorized');
      refused.close();
      const ok: Socket<StatsServerToClientEvents, StatsClientToServerEvents> = ioClient(`${base}/stats`, { transports: ['websocket'], forceNew: true, auth: { token: 't0k' } });
      const ack = await ok.timeout(5000).emitWithAck('subscribe', { id: s.id });
      expect(ack.ok).toBe(true);
      ok.close();
      await stats.close();
      expect(FakeStats.made.every((f) => f.stopped)).toBe(true);
    } finally {
      await new Promise<void>((r) => { void io.close(() => r()); });
    }
  });
});
