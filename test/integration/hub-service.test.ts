/**
 * The hub's service for its sessions with real agents (issue 17): `serve --hub` records a hub
 * session into its library (POST/DELETE /api/sessions/:id/recording) and `replay --json` of the
 * file gives each pod(node1) → pod(node2) datagram as one stitched packet, `node` on every hop;
 * its latency view (/api/stats) counts the stitched packets per segment, each place with its
 * node, the segment that crosses the underlay between the nodes marked `clock: 'estimate'`;
 * /api/health says how many sessions the hub runs and each node's state; a Kubernetes pod's name
 * (node2's pod namespace, named by a CRI runtime's CNI cache entry as containerd writes it)
 * resolves on node2, to its address, for a session on both nodes.
 *
 * Real: nats-server with JetStream, a 2-node cluster lab over a routed underlay (namespaces on
 * this kernel), one `hoptrace agent` per node limited to its namespaces, bpftrace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../helpers/nats.js';
import { cli, randomPrefix } from '../helpers/cli.js';
import { clusterBase, clusterLabDown, clusterLabFor, clusterLabUp, sendPodDatagrams, type ClusterLab } from '../helpers/cluster-lab.js';
import { startHubCli, stopHubCli, until, type HubProcess } from '../helpers/hub.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';
import type { ClusterSessionInfo } from '../../server/hub/cluster-session.js';
import type { HealthResponse, RecordingStatus } from '../../shared/api-types.js';
import type { StatsSessionDetail, StatsSessionInfo } from '../../shared/stats/api.js';

/** This file's addresses: 10.177.x unless HOPTRACE_TEST_ADDRESS_BASE says otherwise. */
const BASE = clusterBase(177);

describe.skipIf(!isRoot || !hasNatsServer)(`the hub's recordings, latency view and health with real agents (${!isRoot ? NEEDS_ROOT : !hasNatsServer ? NEEDS_NATS : 'root, nats-server'})`, () => {
  let nats: NatsServer;
  let lab: ClusterLab;
  let hub: HubProcess | undefined;
  const agents: HubProcess[] = [];
  let dir = '';
  let url = '';
  /** node2's pod as a CRI runtime names it in libcni's cache (what node2's agent reads for names). */
  const podName = `web-${randomBytes(3).toString('hex')}`;
  const cniCache = join('/var/lib/cni/results', `hsvnet-${randomBytes(32).toString('hex')}-eth0`);

  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const r = await fetch(`${url}${path}`, {
      method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const running = async (id: string): Promise<void> => {
    await until(`session ${id} running on both nodes`, async () => {
      const info = (await api<ClusterSessionInfo>('GET', `api/sessions/${id}`)).body;
      return info.nodes.length === 2 && info.nodes.every((n) => n.state === 'running') ? true : undefined;
    }, 180_000);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hsv-hub-'));
    nats = await startNatsServer();
    lab = clusterLabFor(randomPrefix('hsv').slice(0, 8), 'routed', BASE);
    await clusterLabUp(lab);
    mkdirSync('/var/lib/cni/results', { recursive: true, mode: 0o700 });
    writeFileSync(cniCache, JSON.stringify({
      kind: 'cniCacheV1', containerId: cniCache.split('-')[1], ifName: 'eth0', networkName: 'hsvnet', netns: `/run/netns/${lab.nodes[1].podNs}`,
      cniArgs: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', 'hsv'], ['K8S_POD_NAME', podName]], result: { cniVersion: '1.0.0', interfaces: [], ips: [] },
    }), { mode: 0o600 });
    for (const n of lab.nodes) agents.push(await startHubCli(['agent', '--hub', nats.url, '--node', `node${n.index}`, '--namespaces', n.selector], /waiting for a hub/));
    hub = await startHubCli(['serve', '--port', '0', '--data-dir', join(dir, 'data'), '--hub', nats.url, '--durable', 'hsv', '--filter', 'udp port 5170'], /listening on (http:\S+)/);
    url = /listening on (http:\S+)/.exec(hub.out())![1]!;
    await until('both nodes tracing the cluster session', async () => {
      const v = (await api<{ nodes: Array<{ session: { ok: boolean } | null }> }>('GET', 'api/cluster')).body;
      return v.nodes.length === 2 && v.nodes.every((n) => n.session?.ok) ? true : undefined;
    }, 180_000);
  }, 300_000);

  afterAll(async () => {
    await stopHubCli(hub);
    await Promise.all(agents.map((a) => stopHubCli(a)));
    if (lab) await clusterLabDown(lab);
    rmSync(cniCache, { force: true });
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('/api/health counts the hub\'s sessions and says each node is up', async () => {
    const h = (await api<HealthResponse>('GET', 'api/health')).body;
    expect(h).toMatchObject({ status: 'ok', hub: true, sessions: 1 });
    expect(h.nodes?.map((n) => [n.name, n.state])).toEqual([['node1', 'up'], ['node2', 'up']]);
  });

  it('resolves a pod\'s name on the node that has it, and both nodes trace its address', async () => {
    const [n1, n2] = lab.nodes;
    // node2's agent names its pod namespace by the cache entry once its discovery has read it.
    await until('node2 knows the pod', async () => {
      const t = (await api<{ namespaces: Array<{ node: string; name: string; workloads?: Array<{ pod: string | null }> }> }>('GET', 'api/cluster/topology')).body;
      return t.namespaces.some((x) => x.node === 'node2' && x.name === n2.podNs && (x.workloads ?? []).some((w) => w.pod === podName)) ? true : undefined;
    }, 120_000);
    const s = await api<ClusterSessionInfo>('POST', 'api/sessions', { filter: `dst pod hsv/${podName} and udp port 5180` });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    expect(s.body.filter).toBe(`dst host ${n2.pod} and udp and port 5180`);
    await running(s.body.id);
    await sendPodDatagrams(n1, n2, 5180, 2, 40);
    const packets = await until('the pod\'s datagrams', async () => {
      const p = (await api<ClusterPacket[]>('GET', `api/sessions/${s.body.id}/packets`)).body.filter((x) => x.nodes.length === 2);
      return p.length >= 2 ? p : undefined;
    }, 60_000);
    for (const p of packets) expect(p).toMatchObject({ dst: n2.pod, dport: 5180, nodes: ['node1', 'node2'] });
    // An unknown pod is refused before any agent is asked, naming the known ones with their node.
    const bad = await api<{ error: { code: string; message: string } }>('POST', 'api/sessions', { filter: 'pod nosuch' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain(`hsv/${podName} (node2)`);
    await api('DELETE', `api/sessions/${s.body.id}`);
  }, 300_000);

  it('records a hub session; the replay has each datagram stitched across both nodes, node on every hop', async () => {
    const s = await api<ClusterSessionInfo>('POST', 'api/sessions', { filter: 'udp port 5178' });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    await running(s.body.id);
    const rec = await api<RecordingStatus>('POST', `api/sessions/${s.body.id}/recording`, { name: 'hsv-cross' });
    expect(rec.status, JSON.stringify(rec.body)).toBe(201);
    expect((await api<HealthResponse>('GET', 'api/health')).body.sessions).toBe(2);
    await sendPodDatagrams(lab.nodes[0], lab.nodes[1], 5178, 3, 40);
    await until('three stitched packets', async () => {
      const p = (await api<ClusterPacket[]>('GET', `api/sessions/${s.body.id}/packets`)).body;
      return p.filter((x) => x.nodes.length === 2).length >= 3 ? true : undefined;
    }, 60_000);
    const stopped = await api<{ name: string; events: number; complete: boolean }>('DELETE', `api/sessions/${s.body.id}/recording`);
    expect(stopped.status).toBe(200);
    expect(stopped.body).toMatchObject({ name: 'hsv-cross', complete: true });
    expect(stopped.body.events).toBeGreaterThan(0);
    const file = join(dir, 'data', 'hsv-cross.hoptrace');
    expect(existsSync(file)).toBe(true);

    const r = await cli(['replay', '--json', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    const ours = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ClusterPacket | { type: string })
      .filter((p): p is ClusterPacket => 'hops' in p && p.dport === 5178);
    expect(ours).toHaveLength(3);
    for (const p of ours) {
      expect(p.nodes).toEqual(['node1', 'node2']);
      expect(p.hops.every((h) => h.node === 'node1' || h.node === 'node2')).toBe(true);
      expect(p.hops[0]).toMatchObject({ node: 'node1', ns: lab.nodes[0].podNs, event: 'xmit' });
      expect(p.hops.at(-1)).toMatchObject({ node: 'node2', ns: lab.nodes[1].podNs });
      expect(p.stitches).toEqual([expect.objectContaining({ from: 'node1', to: 'node2', via: 'routed' })]);
    }
    await api('DELETE', `api/sessions/${s.body.id}`);
  }, 300_000);

  it('the latency view of the cluster: segments per node, the one across the underlay an estimate', async () => {
    const st = await api<StatsSessionInfo>('POST', 'api/stats', { filter: 'udp port 5179', intervalS: 1 });
    expect(st.status, JSON.stringify(st.body)).toBe(201);
    expect(st.body.state).toBe('running');
    // The stats session runs as a hub session on both nodes.
    const session = (await api<{ sessions: ClusterSessionInfo[] }>('GET', 'api/sessions')).body.sessions.find((x) => x.filter === st.body.filter && x.id !== 'hub');
    expect(session).toBeDefined();
    await running(session!.id);
    await sendPodDatagrams(lab.nodes[0], lab.nodes[1], 5179, 3, 40);
    const [n1, n2] = lab.nodes;
    const crossing = await until('a segment from node1 to node2', async () => {
      const d = (await api<StatsSessionDetail>('GET', `api/stats/${st.body.id}`)).body;
      return d.history.flatMap((doc) => doc.segments).find((s) => s.from.node === 'node1' && s.to.node === 'node2');
    }, 60_000);
    // It leaves node1's node namespace by a transmit and enters node2's by a receive (a veth's is netif_rx: `rx`).
    expect(crossing).toMatchObject({ clock: 'estimate', from: { ns: n1.nodeNs, event: 'xmit' }, to: { ns: n2.nodeNs, event: expect.stringMatching(/^(recv|rx)$/) } });
    const docs = (await api<StatsSessionDetail>('GET', `api/stats/${st.body.id}`)).body.history;
    const segments = docs.flatMap((d) => d.segments);
    // Every other segment is within one node, timed by its own clock.
    for (const s of segments.filter((x) => x !== crossing && x.clock !== 'estimate')) {
      expect(s.clock).toBe('node');
      expect(s.from.node).toBe(s.to.node);
    }
    expect(segments.some((s) => s.from.node === 'node1' && s.from.ns === n1.podNs)).toBe(true);
    expect(segments.some((s) => s.to.node === 'node2' && s.to.ns === n2.podNs)).toBe(true);
    expect((await api('DELETE', `api/stats/${st.body.id}`)).status).toBe(204);
    expect((await api<{ sessions: ClusterSessionInfo[] }>('GET', 'api/sessions')).body.sessions.some((x) => x.id === session!.id)).toBe(false);
  }, 300_000);
});
