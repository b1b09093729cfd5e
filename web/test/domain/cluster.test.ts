import { describe, expect, it } from 'vitest';
import ELK from 'elkjs/lib/elk.bundled.js';
import { buildGraph, clusterNodes } from '../../src/domain/topology-graph.js';
import { layoutGraph } from '../../src/domain/layout.js';
import { buildTimeline } from '../../src/domain/timeline.js';
import { formatOffset, isClusterView, namespacesKey, nodeStatuses, type ClusterView } from '../../src/domain/cluster.js';
import { toRow } from '../../src/worker/ingest-core.js';
import { mergeTopologies } from '../../../shared/cluster/model.js';
import { expectedFor } from '../../src/domain/expected.js';
import { formatTime } from '../../src/domain/format.js';
import type { NamespaceModel, Topology } from '../../../shared/topology/model.js';
import type { Packet } from '../../../shared/packet.js';
import { overlayLab, overlayPacket, topologyOf } from '../overlay-fixture.js';

const engine = new ELK();

/** The overlay lab as the hub sees it: node1 holds n1 and p1, node2 n2 and p2 (each node's own snapshot, merged). */
function clusterTopology(opts: { separateHosts?: boolean } = {}): { topo: Topology; netns: ReturnType<typeof overlayLab>['netns'] } {
  const lab = overlayLab(100, 'c');
  const { n1, n2, p1, p2 } = lab.netns;
  // On separate machines the underlay is a NIC per host, not a veth between them.
  const strip = (n: NamespaceModel): NamespaceModel => (opts.separateHosts
    ? { ...n, interfaces: n.interfaces.map((i) => (i.name === 'ul0' ? { ...i, kind: 'ether', peer: null } : i)) }
    : n);
  const of = (ids: number[]): Topology => topologyOf({ namespaces: lab.namespaces.filter((n) => ids.includes(n.netns)).map(strip) });
  return { topo: mergeTopologies(new Map([['node1', of([n1, p1])], ['node2', of([n2, p2])]])), netns: lab.netns };
}

const view = (over: Partial<ClusterView> = {}): ClusterView => ({
  session: { filter: '' },
  nodes: [
    { name: 'node1', state: 'up', namespaces: [{ netns: 100, name: 'c-n1', node: 'node1' }], events: 10, lost: 0 },
    { name: 'node2', state: 'lost', namespaces: [{ netns: 101, name: 'c-n2', node: 'node2' }], events: 4, lost: 1 },
  ],
  links: [],
  clockOffsets: [{ node: 'node1', offsetNs: 0, samples: 0, method: 'reference' }, { node: 'node2', offsetNs: 2_000_000_000, samples: 6, method: 'two-way' }],
  packets: 3,
  ...over,
});

describe('the cluster on the topology (hub mode)', () => {
  it('should put each namespace in its node, with the tunnel between the nodes\' vx0 devices', () => {
    const { topo, netns } = clusterTopology();
    const g = buildGraph(topo);
    expect(clusterNodes(g)).toEqual([
      { name: 'node1', members: [`ns:${netns.n1}`, `ns:${netns.p1}`] },
      { name: 'node2', members: [`ns:${netns.n2}`, `ns:${netns.p2}`] },
    ]);
    const tunnel = g.links.filter((l) => l.kind === 'tunnel');
    expect(tunnel).toHaveLength(1);
    expect(tunnel[0]?.pairs[0]?.map((r) => r.netns).sort()).toEqual([netns.n1, netns.n2].sort());
  });

  it('should draw the cluster model\'s underlay between two hosts\' NICs, and not twice where a veth already joins them', () => {
    const underlays = [{ from: { node: 'node1', ns: 'c-n1', ifname: 'ul0' }, to: { node: 'node2', ns: 'c-n2', ifname: 'ul0' } }];
    const apart = buildGraph(clusterTopology({ separateHosts: true }).topo, { underlays });
    expect(apart.links.filter((l) => l.kind === 'underlay').map((l) => l.detail)).toEqual(['underlay node1 ↔ node2']);
    expect(apart.links.filter((l) => l.kind === 'veth' && l.pairs.some(([a, b]) => a.netns === 100 && b.netns === 101))).toHaveLength(0);
    const oneKernel = buildGraph(clusterTopology().topo, { underlays });
    expect(oneKernel.links.filter((l) => l.kind === 'underlay')).toHaveLength(0);
    // An end the model does not hold (a node not reporting yet) is no link.
    const unknown = buildGraph(clusterTopology({ separateHosts: true }).topo, { underlays: [{ ...underlays[0]!, to: { node: 'node3', ns: 'x', ifname: 'eth0' } }] });
    expect(unknown.links.filter((l) => l.kind === 'underlay')).toHaveLength(0);
  });

  it('should lay each node out as a box around its own namespaces, the boxes apart', async () => {
    const { topo, netns } = clusterTopology();
    const p = await layoutGraph(buildGraph(topo), engine);
    expect(p.clusters.map((c) => c.name)).toEqual(['node1', 'node2']);
    const inside = (name: string, netnsList: number[]): void => {
      const c = p.clusters.find((x) => x.name === name)!;
      const members = p.nodes.filter((x) => x.node.type === 'ns' && netnsList.includes(x.node.netns));
      expect(members).toHaveLength(2);
      for (const n of members) {
        expect(n.x).toBeGreaterThanOrEqual(c.x);
        expect(n.y).toBeGreaterThanOrEqual(c.y);
        expect(n.x + n.w).toBeLessThanOrEqual(c.x + c.w + 0.5);
        expect(n.y + n.h).toBeLessThanOrEqual(c.y + c.h + 0.5);
      }
    };
    inside('node1', [netns.n1, netns.p1]);
    inside('node2', [netns.n2, netns.p2]);
    const [a, b] = p.clusters;
    expect(a!.x + a!.w <= b!.x || b!.x + b!.w <= a!.x || a!.y + a!.h <= b!.y || b!.y + b!.h <= a!.y).toBe(true);
    // Every link still has its route (the tunnel and the underlay veth run between the boxes).
    expect(p.links.length).toBe(buildGraph(topo).links.length);
    for (const l of p.links) expect(l.points.length).toBeGreaterThanOrEqual(2);
  });

  it('should draw no node boxes on a single host', async () => {
    const lab = overlayLab(100, 'c');
    const p = await layoutGraph(buildGraph(topologyOf(lab)), engine);
    expect(p.clusters).toEqual([]);
    expect(clusterNodes(buildGraph(topologyOf(lab)))).toEqual([]);
  });
});

describe('stitched packets in rows and timelines', () => {
  /** The overlay packet as the hub gives it: each hop with the node whose namespaces it is in. */
  function stitched(): Packet {
    const lab = overlayLab(100, 'c');
    const p = overlayPacket(lab.netns, 'c');
    const node1 = new Set([lab.netns.n1, lab.netns.p1]);
    return { ...p, hops: p.hops.map((h) => ({ ...h, node: node1.has(h.netns) ? 'node1' : 'node2', tNode: h.t + (node1.has(h.netns) ? 0 : 2e9) })) } as Packet;
  }

  it('should name the nodes a row crossed, in order; none for a single host\'s packet', () => {
    expect(toRow(0, stitched()).nodes).toEqual(['node1', 'node2']);
    const lab = overlayLab(100, 'c');
    expect(toRow(0, overlayPacket(lab.netns, 'c')).nodes).toBeUndefined();
  });

  it('should say why a stitched packet has no expected path, not that the model came late', () => {
    const { topo } = clusterTopology();
    expect(expectedFor(stitched(), topo).unavailable).toMatch(/^the hub has no path for it: a node's model is missing/);
  });

  it('should show the hub\'s path across nodes, matching each hop to the expected hop of its own node', () => {
    const p = stitched();
    type H = (typeof p.hops)[number] & { node: string };
    const hop = (h: H, node = h.node) => ({ ns: h.ns ?? '', netns: h.netns, ifname: h.ifname, ifindex: h.ifindex, event: h.event === 'rx' ? 'recv' : h.event, node, hook: null, table: null, hooks: [], src: h.src, dst: h.dst, sport: h.sport, dport: h.dport, rules: [] });
    const path = (flip: boolean) => ({ flow: {}, fate: 'delivered', reason: '', drop: null, guess: false, notes: [], connections: [], hops: (p.hops as H[]).filter((h) => h.event !== 'rx').map((h) => hop(h, flip && h.node === 'node2' ? 'node1' : h.node)) });
    const v = expectedFor({ ...p, expected: path(false), divergence: null }, null);
    expect(v.unavailable).toBeNull();
    expect(v.matched.every((m) => m >= 0)).toBe(true);
    // The same inodes and devices said to be on the other node: node2's hops match nothing.
    const off = expectedFor({ ...p, expected: path(true), divergence: null }, null);
    expect((p.hops as H[]).map((h, i) => [h.node, off.matched[i]! >= 0]).filter(([n]) => n === 'node2').every(([, m]) => m === false)).toBe(true);
  });

  it('should show a row older than the list\'s origin with a minus (stitched packets arrive out of order)', () => {
    expect(formatTime(1_000, null, 1_500_000)).toBe('−0.001499');
    expect(formatTime(1_500_000, null, 1_000)).toBe('+0.001499');
  });

  it('should give each timeline lane its node', () => {
    const tl = buildTimeline(stitched(), (_n, f) => f ?? '?');
    expect(tl.lanes.map((l) => `${l.node}/${l.name}`)).toEqual(['node1/c-p1', 'node1/c-n1', 'node2/c-n2', 'node2/c-p2']);
  });
});

describe('the cluster in the status bar', () => {
  it('should give each node its state and clock offset in words', () => {
    const s = nodeStatuses(view());
    expect(s.map((x) => [x.name, x.state, x.offset])).toEqual([['node1', 'up', 'reference clock'], ['node2', 'lost', 'clock +2.00 s']]);
    expect(s[1]?.title).toContain('LOST: its agent does not answer the hub');
    expect(s[1]?.title).toContain('from 6 packets both ways');
    expect(nodeStatuses(view({ clockOffsets: [] })).map((x) => x.offset)).toEqual(['offset unknown', 'offset unknown']);
  });

  it('should sign offsets', () => {
    expect(formatOffset(0)).toBe('0');
    expect(formatOffset(-350_000)).toBe('−350 µs');
    expect(formatOffset(1_500)).toMatch(/^\+1\.50 µs$/);
  });

  it('should take the hub\'s /api/cluster and refuse what is not one', () => {
    expect(isClusterView(view())).toBe(true);
    expect(isClusterView({ error: { code: 'not-found' } })).toBe(false);
    expect(isClusterView({ nodes: [{ name: 1 }], links: [], clockOffsets: [] })).toBe(false);
  });

  it('should change its namespaces key only when nodes or their namespaces do', () => {
    const a = view();
    expect(namespacesKey({ ...a, packets: 99 })).toBe(namespacesKey(a));
    expect(namespacesKey({ ...a, nodes: a.nodes.slice(0, 1) })).not.toBe(namespacesKey(a));
  });
});
