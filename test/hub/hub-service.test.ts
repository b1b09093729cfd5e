/**
 * The hub's service for its own sessions (issue 17), against a real nats-server and the real
 * service (`serve --hub`'s parts, in this process, as server/commands/serve.ts wires them): two
 * nodes whose agents are stand-ins on the bus (they answer the hub's control requests and
 * publish snapshots and hop batches into JetStream as agents do), one UDP datagram pod1(node1) →
 * pod2(node2) at a time, node2's clock 2 s ahead of node1's.
 *   - /api/health: the hub's session count and each node's state (a node whose agent stops
 *     answering is `lost`);
 *   - `pod NAME` in a session's filter resolves on the node that has the pod, to its address,
 *     which every node's agent is asked to filter on; an unknown name is a 400 naming the known ones;
 *   - POST/DELETE /api/sessions/:id/recording record a hub session into the library; `replay
 *     --json` of the file gives the stitched packets with `node` on every hop;
 *   - /api/stats: the latency view of the cluster: segments per node with `node`, within a node
 *     timed by its own clock (exact), across nodes marked `clock: 'estimate'`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { io as ioClient } from 'socket.io-client';
import { jetstream } from '@nats-io/jetstream';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../helpers/nats.js';
import { until } from '../helpers/hub.js';
import { cli } from '../helpers/cli.js';
import { Hub } from '../../server/hub/hub.js';
import { HubRecordings } from '../../server/hub/hub-recording.js';
import { clusterStatsSource } from '../../server/hub/hub-stats.js';
import { hubRouter, clusterStream } from '../../server/service/cluster-routes.js';
import { ensureStream } from '../../server/hub/connect.js';
import { startService, type RunningService } from '../../server/service/index.js';
import { encodeBatch } from '../../shared/wire.js';
import { encodeDepthBatch } from '../../shared/netfilter/wire.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { NamespaceModel, Topology } from '../../shared/topology/model.js';
import type { HealthResponse, RecordingEntry, RecordingList, RecordingStatus, SessionInfo } from '../../shared/api-types.js';
import type { StatsSessionDetail, StatsSessionInfo } from '../../shared/stats/api.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
import { SYNTHETIC_CAPS } from '../service/helpers.js';

const BASE = Number(process.env.HOPTRACE_TEST_ADDRESS_BASE ?? 206);
const POD1 = `10.${BASE}.1.10`;
const POD2 = `10.${BASE}.2.10`;
const SKEW = 2_000_000_000;
const enc = new TextEncoder();
const quiet = (): void => undefined;

const ns = (netns: number, name: string, ifaces: Array<[number, string, string | null]>, pod: string | null = null): NamespaceModel => ({
  netns, name, path: `/run/netns/${name}`, pids: [], routes: [], rules: [], forwarding: { ipv4: true, ipv6: false }, bridgeNfCall: { ipv4: false, ipv6: false },
  netfilter: { chains: [], rules: [] }, errors: [],
  interfaces: ifaces.map(([ifindex, ifname, addr]) => ({ ifindex, name: ifname, kind: 'veth', mac: null, mtu: 1500, up: true, carrier: true, addrs: addr ? [`${addr}/24`] : [], master: null, peer: null, link: null })),
  workloads: pod ? [{ runtime: 'podman', id: `${pod}-id`, name: `${pod}-c`, pod, k8sNamespace: null, image: 'busybox' }] : [],
  workload: pod,
});
const topo = (namespaces: NamespaceModel[]): Topology => ({ namespaces, errors: [], discoveredAt: 1, durationMs: 1 });
const TOPO: Record<string, Topology> = {
  node1: topo([ns(1101, 'n1-pod', [[2, 'eth0', POD1]]), ns(1102, 'n1-host', [[5, 'veth1', null], [3, 'under0', `10.${BASE}.0.1`]])]),
  node2: topo([ns(2201, 'n2-pod', [[2, 'eth0', POD2]], 'web'), ns(2202, 'n2-host', [[6, 'veth2', null], [3, 'under0', `10.${BASE}.0.2`]])]),
};
/** Each node's kernel clock when the test started (node2's 2 s ahead), read with the same wall clock. */
const WALL0 = Date.now();
const CLOCK0: Record<string, number> = { node1: 5_000_000_000_000, node2: 5_000_000_000_000 + SKEW };

function hop(kind: HopEvent['kind'], t: number, skb: string, netns: number, ifindex: number, ifname: string, ipId: number): HopEvent {
  return {
    kind, t, cpu: 0, skb, netns, ifindex, ifname, family: 4, proto: 17, len: 60, ipId,
    src: POD1, dst: POD2, sport: 40000, dport: 5206, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
}

/** One datagram's hops on each node (node clocks), `k` µs… apart so each has its own times. */
function datagram(k: number, atMs: number): Record<string, HopEvent[]> {
  const t1 = CLOCK0.node1! + (atMs - WALL0) * 1e6;
  const t2 = t1 + SKEW + 50_000; // 50 µs on the wire
  const id = 700 + k;
  return {
    node1: [
      hop('xmit', t1, `a1${k}`, 1101, 2, 'eth0', id),
      hop('recv', t1 + 10_000, `a1${k}`, 1102, 5, 'veth1', id),
      hop('xmit', t1 + 30_000, `a1${k}`, 1102, 3, 'under0', id),
      hop('consume', t1 + 40_000, `a1${k}`, 1102, 0, '', id),
    ],
    node2: [
      hop('recv', t2, `b2${k}`, 2202, 3, 'under0', id),
      hop('xmit', t2 + 20_000, `b2${k}`, 2202, 6, 'veth2', id),
      hop('recv', t2 + 35_000, `b2${k}`, 2201, 2, 'eth0', id),
      hop('consume', t2 + 45_000, `b2${k}`, 2201, 0, '', id),
    ],
  };
}

describe.skipIf(!hasNatsServer)(`the hub's service for its sessions (${hasNatsServer ? 'nats-server' : NEEDS_NATS})`, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let hub: Hub;
  let recordings: HubRecordings;
  let svc: RunningService;
  let dir = '';
  const asked: Array<{ node: string; body: { op: string; session: string; filter?: string } }> = [];
  const agents = new Map<string, Subscription>();
  const seq = new Map<string, number>();
  let datagrams = 0;

  const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
    const r = await fetch(new URL(path, svc.url));
    return { status: r.status, body: (r.headers.get('content-type') ?? '').includes('json') ? ((await r.json()) as T) : (undefined as T) };
  };
  const send = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const r = await fetch(new URL(path, svc.url), { method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : undefined) as T };
  };

  /** A stand-in agent: answers the hub's requests on its control subject as an agent that runs them. */
  const agent = (node: string): void => {
    const sub = nc.subscribe(`hoptrace.${node}.control`, {
      callback: (_err, m) => {
        const body = JSON.parse(new TextDecoder().decode(m.data)) as { op: string; session: string; filter?: string };
        asked.push({ node, body });
        m.respond(enc.encode(JSON.stringify({ ok: true, ...(body.filter !== undefined ? { filter: body.filter } : {}) })));
      },
    });
    agents.set(node, sub);
  };

  const publishSnapshot = async (node: string): Promise<void> => {
    const now = Date.now();
    await jetstream(nc).publish(`hoptrace.${node}.topology`, enc.encode(JSON.stringify({
      node, t: CLOCK0[node]! + (now - WALL0) * 1e6, wallMs: now, selector: '', topology: TOPO[node], dropReasons: { 2: 'NOT_SPECIFIED' },
      // node1's agent says it cannot trace (a stand-in: real agents start only when they can); node2's, as an older agent, says nothing.
      ...(node === 'node1' ? { capability: { canTrace: false, problems: ['bpftrace is missing on node1'], bpftrace: null } } : {}),
    })));
  };

  /** One datagram pod1 → pod2, each node's hops in a batch of the session. */
  const sendDatagram = async (session: string): Promise<void> => {
    const d = datagram(datagrams++, Date.now());
    for (const node of ['node1', 'node2']) {
      const h = headers();
      h.set('Hoptrace-Session', session);
      const s = (seq.get(`${node}/${session}`) ?? 0) + 1;
      seq.set(`${node}/${session}`, s);
      await jetstream(nc).publish(`hoptrace.${node}.hops`, encodeBatch({ events: d[node]!, seq: s, lostKernel: 0 }), { headers: h });
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'h-hubsvc-'));
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await ensureStream(nc);
    agent('node1');
    agent('node2');
    await publishSnapshot('node1');
    await publishSnapshot('node2');
    hub = new Hub({ bus: { url: nats.url }, holdMs: 0, durable: 'h-hubsvc', log: quiet });
    await hub.start();
    const h = hub;
    recordings = new HubRecordings({ dataDir: dir, hub: h, log: quiet });
    svc = await startService({
      // The hub's own host cannot trace (no bpftrace there): its agents do.
      port: 0, capabilities: { ...SYNTHETIC_CAPS, canTrace: false, problems: ['bpftrace is not installed on the hub host'] }, namespaceNames: null, webDist: null, log: quiet, dataDir: dir,
      extraApi: hubRouter(h, { recordings }), extraIo: clusterStream(h), hub: true,
      hubHealth: () => h.health(), statsSource: clusterStatsSource(h), externalRecordings: recordings,
    });
    await until('both nodes known', async () => (hub.nodeInfo().length === 2 ? true : undefined), 20_000);
  }, 60_000);

  afterAll(async () => {
    recordings?.close();
    await svc?.close();
    await hub?.stop();
    await nc?.drain().catch(() => undefined);
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('should say in /api/health how many sessions the hub runs and each node\'s state', async () => {
    const r = await get<HealthResponse>('/api/health');
    expect(r.status).toBe(200);
    // The cluster session `hub` is the hub's one session so far (the host's own registry has none).
    expect(r.body).toMatchObject({ status: 'ok', hub: true, sessions: 1 });
    expect(r.body.nodes?.map((n) => [n.name, n.state])).toEqual([['node1', 'up'], ['node2', 'up']]);
    const s = await send<SessionInfo>('POST', '/api/sessions', { filter: 'udp', nodes: ['node1'] });
    expect(s.status).toBe(201);
    expect((await get<HealthResponse>('/api/health')).body.sessions).toBe(2);
    await send('DELETE', `/api/sessions/${s.body.id}`);
    expect((await get<HealthResponse>('/api/health')).body.sessions).toBe(1);
  });

  it('should say the hub can trace though its own host cannot, from what its nodes\' agents say', async () => {
    const h = await get<HealthResponse>('/api/health');
    expect(h.body.canTrace).toBe(true);
    expect(h.body.nodes?.map((n) => [n.name, n.canTrace])).toEqual([['node1', false], ['node2', undefined]]);
    // The dashboard's "cannot trace" banner reads /api/capabilities: the nodes' word there too.
    const c = await get<{ canTrace: boolean; problems: string[] }>('/api/capabilities');
    expect([c.body.canTrace, c.body.problems]).toEqual([true, []]);
  });

  it('should tell each /cluster client its part of the stream (packets dropped for it) and the hub\'s total in /api/cluster', async () => {
    const client = ioClient(new URL('/cluster', svc.url).href, { transports: ['websocket'], forceNew: true });
    try {
      const view = await new Promise<{ stream?: unknown; streamDrops?: unknown }>((resolve) => client.on('cluster', (v: { stream?: unknown }) => { if (v.stream) resolve(v); }));
      expect(view.stream).toEqual({ session: 'hub', droppedPackets: 0, droppedLots: 0, queuedPackets: 0 });
      expect(view.streamDrops).toEqual({ packets: 0, lots: 0 });
      expect((await get<{ streamDrops: unknown }>('/api/cluster')).body.streamDrops).toEqual({ packets: 0, lots: 0 });
    } finally {
      client.close();
    }
  });

  it('should resolve `pod NAME` on the node that has the pod and ask every node to filter on its address', async () => {
    const r = await send<SessionInfo & { nodes: Array<{ node: string; state: string }> }>('POST', '/api/sessions', { filter: 'pod web and udp' });
    expect(r.status).toBe(201);
    expect(r.body.filter).toBe(`host ${POD2} and udp`);
    expect(r.body.nodes.map((n) => [n.node, n.state])).toEqual([['node1', 'running'], ['node2', 'running']]);
    const starts = asked.filter((a) => a.body.session === r.body.id && a.body.op === 'start');
    expect(new Set(starts.map((a) => a.node))).toEqual(new Set(['node1', 'node2']));
    for (const a of starts) expect(a.body.filter).toBe(`host ${POD2} and udp`);
    // The session's packets are those of the pod's address, stitched across both nodes.
    await sendDatagram(r.body.id);
    const packets = await until('the pod session\'s packet', async () => {
      const p = (await get<ClusterPacket[]>(`/api/sessions/${r.body.id}/packets`)).body;
      return p.length > 0 ? p : undefined;
    }, 15_000);
    expect(packets[0]!.nodes).toEqual(['node1', 'node2']);
    await send('DELETE', `/api/sessions/${r.body.id}`);
  });

  it('should answer 400 bad-filter for a pod no node has, naming the known ones with their node, and ask no agent', async () => {
    const before = asked.length;
    const r = await send<{ error: { code: string; message: string; detail?: unknown } }>('POST', '/api/sessions', { filter: 'udp and pod shop' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad-filter');
    expect(r.body.error.message).toBe("bad filter: no pod named 'shop' (known pods: web (node2))");
    expect(r.body.error.detail).toEqual({ offset: 12, length: 4 });
    expect(asked.length).toBe(before);
    // A stats session takes the same names, and refuses the same way.
    const st = await send<{ error: { code: string } }>('POST', '/api/stats', { filter: 'pod shop' });
    expect(st.status).toBe(400);
    expect(st.body.error.code).toBe('bad-filter');
  });

  it('should record a hub session into the library, and its replay should give the stitched packets with a node on every hop', async () => {
    const s = await send<SessionInfo>('POST', '/api/sessions', { filter: `host ${POD2}` });
    expect(s.status).toBe(201);
    const id = s.body.id;
    const started = await send<RecordingStatus>('POST', `/api/sessions/${id}/recording`, { name: 'h-cluster' });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ name: 'h-cluster', session: id, running: true });
    // Recording twice is a conflict, as on a single host; a bad name is a 400.
    expect((await send('POST', `/api/sessions/${id}/recording`, { name: 'h-other' })).status).toBe(409);
    expect((await send('POST', `/api/sessions/${id}/recording`, { name: '../x' })).status).toBe(400);
    for (let i = 0; i < 3; i++) await sendDatagram(id);
    await until('three stitched packets', async () => ((await get<ClusterPacket[]>(`/api/sessions/${id}/packets`)).body.length >= 3 ? true : undefined), 15_000);
    const info = (await get<SessionInfo>(`/api/sessions/${id}`)).body;
    expect(info.recording).toBe(true);
    expect(info.recordingStatus).toMatchObject({ name: 'h-cluster', running: true, events: 24 });
    // The library lists it while it is written.
    const list = (await get<RecordingList>('/api/recordings')).body.recordings;
    expect(list.find((e) => e.name === 'h-cluster')?.recording).toBe(true);
    expect((await send('DELETE', '/api/recordings/h-cluster')).status).toBe(409);
    const stopped = await send<RecordingEntry>('DELETE', `/api/sessions/${id}/recording`);
    expect(stopped.status).toBe(200);
    expect(stopped.body).toMatchObject({ name: 'h-cluster' });
    expect((await get<SessionInfo>(`/api/sessions/${id}`)).body.recording).toBe(false);

    const r = await cli(['replay', '--json', join(dir, 'h-cluster.hoptrace')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const packets = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ClusterPacket | { type: string })
      .filter((p): p is ClusterPacket => 'hops' in p);
    expect(packets).toHaveLength(3);
    for (const p of packets) {
      expect(p.nodes).toEqual(['node1', 'node2']);
      expect(p.hops.map((h) => [h.node, h.ns, h.event])).toEqual([
        ['node1', 'n1-pod', 'xmit'], ['node1', 'n1-host', 'recv'], ['node1', 'n1-host', 'xmit'], ['node1', 'n1-host', 'consume'],
        ['node2', 'n2-host', 'recv'], ['node2', 'n2-host', 'xmit'], ['node2', 'n2-pod', 'recv'], ['node2', 'n2-pod', 'consume'],
      ]);
      expect(p.stitches).toEqual([expect.objectContaining({ from: 'node1', to: 'node2', via: 'routed' })]);
      // On the reference (node1's) clock: node2's 2 s are taken out (within the wire time).
      const st = p.stitches[0]!;
      const gap = p.hops[st.enter]!.t - p.hops[st.leave]!.t;
      expect(gap).toBeGreaterThanOrEqual(0);
      expect(gap).toBeLessThan(1_000_000);
      expect(p.hops.at(-1)!.t - p.hops[0]!.t).toBeLessThan(1_000_000);
    }
    const stats = await cli(['replay', '--stats', '--json', join(dir, 'h-cluster.hoptrace')]);
    expect(stats.exitCode, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ host: expect.stringContaining(`cluster node1, node2 (hub session ${id})`) });
    await send('DELETE', `/api/sessions/${id}`);
  }, 60_000);

  it('should record a hub session with netfilter depth, and its replay should put node2\'s rule-trace step on node2\'s hops', async () => {
    const s = await send<SessionInfo>('POST', '/api/sessions', { filter: `host ${POD2}`, netfilter: true });
    expect(s.status).toBe(201);
    const id = s.body.id;
    expect((await send('POST', `/api/sessions/${id}/recording`, { name: 'h-depth' })).status).toBe(201);
    const k = datagrams;
    await sendDatagram(id);
    // node2's agent saw the datagram through its FORWARD chain (nft's rule trace, on node2's clock, after its hops).
    const t2 = datagram(k, Date.now()).node2![0]!.t;
    const h = headers();
    h.set('Hoptrace-Session', id);
    await jetstream(nc).publish('hoptrace.node2.depth', encodeDepthBatch({
      notes: [], seq: 1,
      netfilter: [{
        ns: 'n2-host', netns: 2202, t: t2 + 30_000, traceId: 'beef0001', family: 'ip', table: 'filter', chain: 'FORWARD', hook: 'forward',
        type: 'rule', rule: 'udp dport 5206 counter accept', handle: 9, verdict: 'accept', nat: null,
        packet: { iif: 'under0', oif: 'veth2', family: 4, proto: 17, src: POD1, dst: POD2, sport: 40000, dport: 5206, ipId: 700 + k, len: 60, tcpSeq: 0, icmpId: 0 },
      }],
    }), { headers: h });
    await until('the session took the step', async () => ((await get<{ depthEvents?: { netfilter: number } }>(`/api/sessions/${id}`)).body.depthEvents?.netfilter === 1 ? true : undefined), 15_000);
    expect((await send('DELETE', `/api/sessions/${id}/recording`)).status).toBe(200);
    await send('DELETE', `/api/sessions/${id}`);

    const r = await cli(['replay', '--json', join(dir, 'h-depth.hoptrace')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const packets = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ClusterPacket | { type: string })
      .filter((p): p is ClusterPacket => 'hops' in p);
    expect(packets).toHaveLength(1);
    const p = packets[0]!;
    expect(p.nodes).toEqual(['node1', 'node2']);
    expect(p.netfilter?.map((st) => [st.node, st.chain, st.verdict, p.hops[st.afterHop]?.node])).toEqual([['node2', 'FORWARD', 'accept', 'node2']]);
  }, 60_000);

  it('should finish the file with the reason when the recorded session is deleted, and free its name', async () => {
    const s = await send<SessionInfo>('POST', '/api/sessions', { filter: 'udp' });
    expect((await send('POST', `/api/sessions/${s.body.id}/recording`, { name: 'h-ended' })).status).toBe(201);
    await sendDatagram(s.body.id);
    expect((await send('DELETE', `/api/sessions/${s.body.id}`)).status).toBe(204);
    const entry = (await get<RecordingList>('/api/recordings')).body.recordings.find((e) => e.name === 'h-ended');
    expect(entry).toMatchObject({ recording: false, complete: true, endReason: 'the session ended' });
    expect((await send('DELETE', '/api/recordings/h-ended')).status).toBe(204);
  });

  it('should answer 404 for a recording of a session that does not exist or does not record, and 503 without a data folder', async () => {
    expect((await send('POST', '/api/sessions/nosuch/recording', {})).status).toBe(404);
    const notRecording = await send<{ error: { code: string; message: string } }>('DELETE', '/api/sessions/hub/recording');
    expect(notRecording.status).toBe(404);
    expect(notRecording.body.error.message).toBe('session hub is not recording');
    // A body that is not JSON is refused before anything is written.
    const r = await fetch(new URL('/api/sessions/hub/recording', svc.url), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'name' });
    expect(r.status).toBe(400);
    const none = new HubRecordings({ dataDir: null, hub, log: quiet });
    expect(() => none.start(hub.session('hub')!, 'x')).toThrow(/keeps no recordings \(start it with --data-dir\)/);
    none.close();
  });

  it('should give the latency view of the cluster: segments per node, those crossing nodes marked as estimates', async () => {
    const before = new Set(hub.listSessions().map((s) => s.id));
    const st = await send<StatsSessionInfo>('POST', '/api/stats', { filter: 'udp', intervalS: 0.5 });
    expect(st.status).toBe(201);
    const session = hub.listSessions().find((s) => !before.has(s.id));
    expect(session?.spec.filter).toBe('udp');
    for (let i = 0; i < 3; i++) await sendDatagram(session!.id);
    const doc = await until('a document with the datagrams', async () => {
      const d = (await get<StatsSessionDetail>(`/api/stats/${st.body.id}`)).body;
      return d.history.find((x) => x.segments.some((s) => s.count > 0));
    }, 15_000);
    const seg = (fromNode: string, fromIf: string, toNode: string, toIf: string) => doc.segments.find((s) => s.from.node === fromNode && s.from.ifname === fromIf && s.to.node === toNode && s.to.ifname === toIf);
    const crossing = seg('node1', 'under0', 'node2', 'under0');
    expect(crossing).toMatchObject({ clock: 'estimate', from: { ns: 'n1-host', event: 'xmit' }, to: { ns: 'n2-host', event: 'recv' } });
    // Within a node, its own clock: pod1's xmit → node1's veth recv took 10 µs, node2's veth xmit → pod2 15 µs.
    const inNode1 = seg('node1', 'eth0', 'node1', 'veth1');
    const inNode2 = seg('node2', 'veth2', 'node2', 'eth0');
    expect(inNode1).toMatchObject({ clock: 'node', count: crossing!.count });
    expect(inNode1!.max_ns).toBe(10_000);
    expect(inNode2!.max_ns).toBe(15_000);
    // Across nodes the 2 s skew is taken out by the stitcher's offset (one-way: it absorbs the wire time).
    expect(crossing!.max_ns).toBeLessThan(1_000_000);
    expect(doc.transit.every((t) => t.node === 'node1' || t.node === 'node2')).toBe(true);
    // Deleting the stats session ends its hub session on the agents.
    expect((await send('DELETE', `/api/stats/${st.body.id}`)).status).toBe(204);
    expect(hub.session(session!.id)).toBeUndefined();
    await until('the agents told to stop', async () => (asked.filter((a) => a.body.session === session!.id && a.body.op === 'stop').length === 2 ? true : undefined), 10_000);
  }, 60_000);

  it('should mark a node lost in /api/health once its agent stops answering', async () => {
    agents.get('node2')!.unsubscribe();
    const s = await send<SessionInfo & { nodes: Array<{ node: string; state: string }> }>('POST', '/api/sessions', { filter: 'tcp' });
    expect(s.status).toBe(201);
    expect(s.body.nodes.find((n) => n.node === 'node2')?.state).toBe('lost');
    const health = (await get<HealthResponse>('/api/health')).body;
    expect(health.nodes?.map((n) => [n.name, n.state])).toEqual([['node1', 'up'], ['node2', 'lost']]);
    // The session request waits out node2's unanswered request: slow on a loaded CI machine.
  }, 90_000);
});
