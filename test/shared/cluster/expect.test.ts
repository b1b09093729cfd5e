/**
 * The expected path across nodes (issue 17), on hand-written models, one per node, shaped like
 * the cluster lab (test/helpers/cluster-lab.ts): each node's agent models only its own
 * namespaces, so node1's underlay veth leads out of its model, and node2's model takes the packet
 * over where it arrives. The two nodes' models are built apart, so their namespace inodes are
 * the same numbers, as separate kernels' often are: hops are told apart by node.
 */
import { describe, expect, it } from 'vitest';
import { TopoBuilder } from '../../topology/builder.js';
import type { Topology } from '../../../shared/topology/model.js';
import { simulateAcrossNodes, type NodesExpectedPath } from '../../../shared/topology/nodes.js';
import { ClusterExpectations } from '../../../shared/cluster/expect.js';
import type { ClusterHop, ClusterPacket } from '../../../shared/cluster/stitch.js';

const MAC1 = '02:42:b1:00:00:01';
const MAC2 = '02:42:b1:00:00:02';
const MAC3 = '02:42:b1:00:00:03';

interface Opts {
  /** node2's tunnel end sits behind a host namespace that routes the underlay to it (FORWARD sees the tunnel). */
  readonly hostOnNode2?: boolean;
  /** flannel-style FDB: no remote, per-peer entries; node1's entry for node2's MAC sends it to node3. */
  readonly fdbToNode3?: boolean;
  readonly node2Rules?: string;
}

/** One node's model: `cN-node` (bridge, underlay, tunnel) and `cN-pod` behind it. */
function node(i: 1 | 2 | 3, underlay: 'vxlan' | 'routed', o: Opts): Topology {
  const b = new TopoBuilder().ns(`c${i}-node`, { forward: true }).ns(`c${i}-pod`);
  const nodeNs = `c${i}-node`;
  const behindHost = i === 2 && o.hostOnNode2;
  // Each node's underlay veth: its peer is on another node, not in this model.
  const local = behindHost ? '10.177.9.2' : `10.177.0.${i}`;
  if (behindHost) {
    b.ns('c2-host', { forward: true }).iface('c2-host', 'ul0', 'veth', ['10.177.0.2/24'])
      .veth(['c2-host', 'v9', ['10.177.9.1/24']], [nodeNs, 'v9', ['10.177.9.2/24']])
      .route(nodeNs, 'default', { via: '10.177.9.1', dev: 'v9' });
  } else {
    b.iface(nodeNs, 'ul0', 'veth', [`${local}/24`]);
  }
  b.bridge(nodeNs, 'br0', [`10.177.${i}.1/24`])
    .veth([`c${i}-pod`, 'eth0', [`10.177.${i}.10/24`]], [nodeNs, 'vp0', [], 'br0'])
    .route(`c${i}-pod`, 'default', { via: `10.177.${i}.1`, dev: 'eth0' });
  const peer = i === 1 ? 2 : 1;
  if (i === 1 && o.hostOnNode2) b.route(nodeNs, '10.177.9.0/24', { via: '10.177.0.2', dev: 'ul0' });
  if (underlay === 'routed') {
    b.route(nodeNs, `10.177.${peer}.0/24`, { via: `10.177.0.${peer}`, dev: 'ul0' });
  } else if (o.fdbToNode3) {
    b.tunnel(nodeNs, 'vx0', { type: 'vxlan', vni: 42, local, dstport: 4789, underlay: 'ul0', learning: false }, [`10.177.${i}.0/32`], { mac: [MAC1, MAC2, MAC3][i - 1]! });
    if (i === 1) {
      b.route(nodeNs, '10.177.2.0/24', { via: '10.177.2.0', dev: 'vx0' }).neigh(nodeNs, '10.177.2.0', 'vx0', MAC2, 'PERMANENT')
        // The wrong node: node2's MAC sent to node3's underlay address.
        .tunnelFdb(nodeNs, MAC2, 'vx0', '10.177.0.3');
    } else {
      b.route(nodeNs, '10.177.1.0/24', { via: '10.177.1.0', dev: 'vx0' }).neigh(nodeNs, '10.177.1.0', 'vx0', MAC1, 'PERMANENT').tunnelFdb(nodeNs, MAC1, 'vx0', '10.177.0.1');
    }
  } else {
    const remote = i === 1 && o.hostOnNode2 ? '10.177.9.2' : `10.177.0.${peer}`;
    b.tunnel(nodeNs, 'vx0', { type: 'vxlan', vni: 42, local, remote, dstport: 4789, underlay: behindHost ? 'v9' : 'ul0', learning: true }, [`10.177.255.${i}/24`], { mac: i === 1 ? MAC1 : MAC2 })
      .route(nodeNs, `10.177.${peer}.0/24`, { via: `10.177.255.${peer}`, dev: 'vx0' })
      .neigh(nodeNs, `10.177.255.${peer}`, 'vx0', i === 1 ? MAC2 : MAC1);
  }
  if (i === 2 && o.node2Rules) b.iptables(behindHost ? 'c2-host' : nodeNs, o.node2Rules);
  return b.build();
}

function cluster(underlay: 'vxlan' | 'routed', o: Opts = {}): Map<string, Topology> {
  const m = new Map([['node1', node(1, underlay, o)], ['node2', node(2, underlay, o)]]);
  if (o.fdbToNode3) m.set('node3', node(3, underlay, o));
  return m;
}

const request = { node: 'node1', from: 'c1-pod', dst: '10.177.2.10', proto: 'udp', sport: 40000, dport: 5433 } as const;

function spots(path: NodesExpectedPath): string[] {
  return path.hops.map((h) => `${h.node}:${h.ns}/${h.ifname}/${h.event}`);
}

/** A stitched packet as the hub would make it of hops the kernel took as `path` says (edit to differ). */
function stitched(path: NodesExpectedPath, edit: (h: ClusterHop) => ClusterHop | null = (h) => h): ClusterPacket {
  const hops: ClusterHop[] = [];
  path.hops.forEach((e, i) => {
    const h: ClusterHop = {
      t: i * 1000, tNode: i * 1000, node: e.node, event: e.event, netns: e.netns, ns: e.ns, ifname: e.ifname, ifindex: e.ifindex,
      src: e.src, dst: e.dst, sport: e.sport, dport: e.dport, cpu: 0, len: 76, ipId: 7, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null,
      ...(e.encap ? { encap: e.encap } : {}), ...(e.outer ? { outer: { ...e.outer, sport: 51234 } } : {}), ...(e.decap ? { decap: e.decap } : {}),
    };
    const x = edit(h);
    if (x) hops.push(x);
  });
  const first = hops[0]!;
  const last = hops[hops.length - 1]!;
  const dropped = last.event === 'drop';
  return {
    id: 'c1', proto: 'udp', family: 4, src: first.src, dst: first.dst, sport: first.sport, dport: first.dport,
    fate: dropped ? 'dropped' : 'delivered', fateBy: dropped ? 'drop' : 'local-address',
    drop: dropped ? { reason: 'NETFILTER_DROP', netns: last.netns, ns: last.ns, ifname: last.ifname, t: last.t } as ClusterPacket['drop'] : null,
    hops, cloneOf: null, nodes: [...new Set(hops.map((h) => h.node))], stitches: [],
  };
}

describe('expected path across nodes', () => {
  it('vxlan: node1 walks to its underlay, node2 takes the outer packet over, decaps and delivers; every hop names its node', () => {
    const nodes = cluster('vxlan');
    // Separate kernels: the same inode numbers on both nodes.
    expect(nodes.get('node1')!.namespaces[0]!.netns).toBe(nodes.get('node2')!.namespaces[0]!.netns);
    const path = simulateAcrossNodes(nodes, request);
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual([
      'node1:c1-pod/eth0/xmit', 'node1:c1-node/vp0/recv', 'node1:c1-node/br0/recv', 'node1:c1-node/vx0/xmit', 'node1:c1-node/ul0/xmit',
      'node2:c2-node/ul0/recv', 'node2:c2-node/vx0/recv', 'node2:c2-node/br0/xmit', 'node2:c2-node/vp0/xmit', 'node2:c2-pod/eth0/recv',
    ]);
    expect(path.nodes).toEqual(['node1', 'node2']);
    expect(path.handovers).toEqual([{ from: 'node1', to: 'node2', addr: '10.177.0.2', leave: { ns: 'c1-node', ifname: 'ul0' }, enter: { ns: 'c2-node', ifname: 'ul0' }, index: 5 }]);
    // The tunnel as observed hops show it: encap on node1, the outer tuple on both underlay hops, decap on node2.
    expect(path.hops[3]!.encap).toMatchObject({ type: 'vxlan', vni: 42, outer: { src: '10.177.0.1', dst: '10.177.0.2', dport: 4789 } });
    expect(path.hops.filter((h) => h.outer).map((h) => h.node)).toEqual(['node1', 'node2']);
    expect(path.hops[6]!.decap?.vni).toBe(42);
    for (const h of path.hops) expect([h.src, h.dst, h.dport]).toEqual(['10.177.1.10', '10.177.2.10', 5433]);
    expect(path.guess, path.notes.join('; ')).toBe(false);
    // One model alone stops at its underlay.
    expect(path.flow).toMatchObject({ node: 'node1', ns: 'c1-pod' });
  });

  it('routed underlay: handed over to the node owning the route\'s next hop; the reply comes back the same way', () => {
    const nodes = cluster('routed');
    const path = simulateAcrossNodes(nodes, request);
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual([
      'node1:c1-pod/eth0/xmit', 'node1:c1-node/vp0/recv', 'node1:c1-node/br0/recv', 'node1:c1-node/ul0/xmit',
      'node2:c2-node/ul0/recv', 'node2:c2-node/br0/xmit', 'node2:c2-node/vp0/xmit', 'node2:c2-pod/eth0/recv',
    ]);
    const reply = simulateAcrossNodes(nodes, { node: 'node2', from: 'c2-pod', dst: '10.177.1.10', proto: 'udp', sport: 5433, dport: 40000 });
    expect(reply.fate).toBe('delivered');
    expect(reply.nodes).toEqual(['node2', 'node1']);
    expect(reply.hops.at(-1)).toMatchObject({ node: 'node1', ns: 'c1-pod', event: 'recv' });
  });

  it('an address no node owns: the path leaves the cluster\'s model and says so', () => {
    const only1 = new Map([['node1', cluster('routed').get('node1')!]]);
    const path = simulateAcrossNodes(only1, request);
    expect(path.fate).toBe('left-model');
    expect(path.reason).toMatch(/no node of the cluster owns 10\.177\.0\.2/);
    expect(path.exit).toMatchObject({ ns: 'c1-node', ifname: 'ul0', nexthop: '10.177.0.2' });
  });

  it('node2 routing the tunnel\'s UDP port through FORWARD to its tunnel end, a rule dropping it: the expected drop is on node2 and names the rule', () => {
    const rules = '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p udp -m udp --dport 4789 -j DROP\nCOMMIT\n';
    const path = simulateAcrossNodes(cluster('vxlan', { hostOnNode2: true, node2Rules: rules }), request);
    expect(path.fate, path.reason).toBe('dropped');
    expect(path.drop).toMatchObject({ node: 'node2', ns: 'c2-host', hook: 'FORWARD', rule: '-A FORWARD -p udp -m udp --dport 4789 -j DROP' });
    expect(path.hops.at(-1)).toMatchObject({ node: 'node2', ns: 'c2-host', event: 'drop' });
    // Without the rule the same cluster delivers (the host routes the outer packet on to node2's tunnel end).
    const open = simulateAcrossNodes(cluster('vxlan', { hostOnNode2: true }), request);
    expect(open.fate, open.reason).toBe('delivered');
    expect(spots(open).slice(5, 8)).toEqual(['node2:c2-host/ul0/recv', 'node2:c2-host/v9/xmit', 'node2:c2-node/v9/recv']);
  });
});

describe('ClusterExpectations: a stitched packet against the path across nodes', () => {
  it('a packet that took the path: no divergence, the path on the packet', () => {
    const nodes = cluster('vxlan');
    const e = new ClusterExpectations(nodes);
    const path = simulateAcrossNodes(nodes, request);
    // The probes see veth receives as rx then recv; rx is not compared.
    const p = e.annotate(stitched(path));
    expect(p.divergence).toBeNull();
    expect(p.expected?.hops.map((h) => h.node)).toEqual(path.hops.map((h) => h.node));
  });

  it('a hop on the other node with the same inode does not pass for the expected one', () => {
    const nodes = cluster('vxlan');
    const path = simulateAcrossNodes(nodes, request);
    // The pod's receive reported as node1's (same inode numbers): not where the path goes.
    const p = new ClusterExpectations(nodes).annotate(stitched(path, (h) => (h.ns === 'c2-pod' ? { ...h, node: 'node1' } : h)));
    expect(p.divergence?.summary).toMatch(/expected to arrive in c2-pod on node2 on eth0/);
  });

  it('node2\'s FORWARD drops the tunnel\'s port but the packet went through: the divergence names node2 and the rule', () => {
    const rules = '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p udp -m udp --dport 4789 -j DROP\nCOMMIT\n';
    const open = simulateAcrossNodes(cluster('vxlan', { hostOnNode2: true }), request);
    const p = new ClusterExpectations(cluster('vxlan', { hostOnNode2: true, node2Rules: rules })).annotate(stitched(open));
    expect(p.divergence?.summary).toBe('expected to be dropped in c2-host on node2 (FORWARD filter: -A FORWARD -p udp -m udp --dport 4789 -j DROP), left c2-host on node2 through v9 (xmit)');
  });

  it('the packet dropped on node2 where the model of node2 lets it through: the divergence names node2', () => {
    const nodes = cluster('vxlan');
    const path = simulateAcrossNodes(nodes, request);
    const cut = stitched(path, (h) => (h.node === 'node2' && h.ifname === 'vx0' ? { ...h, event: 'drop' } : h.node === 'node2' && h.ifname !== 'ul0' ? null : h));
    const p = new ClusterExpectations(nodes).annotate(cut);
    expect(p.divergence?.kind).toBe('drop');
    expect(p.divergence?.summary).toMatch(/^expected to arrive in c2-node on node2 on vx0 \(recv\), was dropped in c2-node on node2 \(reason NETFILTER_DROP\)$/);
  });

  it('node1\'s FDB entry sends node2\'s MAC to node3: the path goes to node2 and names the entry; a packet that went to node3 diverges on node1', () => {
    const nodes = cluster('vxlan', { fdbToNode3: true });
    const path = simulateAcrossNodes(nodes, request);
    expect(path.fate, path.reason).toBe('delivered');
    expect(path.nodes).toEqual(['node1', 'node2']);
    const enc = path.hops.find((h) => h.encap)!;
    expect(enc.tunnelFault).toBe(`vx0 in c1-node sends ${MAC2} to 10.177.0.3 by its FDB entry ${MAC2} dst 10.177.0.3, but vx0 of c2-node (10.177.0.2) has ${MAC2}: the entry points at the wrong node`);
    // What the kernel did: followed the entry to node3, where no pod 10.177.2.10 is.
    const wrong = stitched(path, (h) => (h.node === 'node2' ? null : h.outer ? { ...h, outer: { ...h.outer, dst: '10.177.0.3' } } : h));
    const p = new ClusterExpectations(nodes).annotate(wrong);
    expect(p.divergence?.summary).toBe(`expected to leave c1-node on node1 through ul0 (xmit), left c1-node on node1 through ul0 (xmit); inside the tunnel to 10.177.0.3, expected 10.177.0.2: ${enc.tunnelFault}`);
  });

  it('a request/reply pair across a routed underlay: both on their paths', () => {
    const nodes = cluster('routed');
    const e = new ClusterExpectations(nodes);
    const req = e.annotate(stitched(simulateAcrossNodes(nodes, request)));
    const rep = e.annotate(stitched(simulateAcrossNodes(nodes, { node: 'node2', from: 'c2-pod', dst: '10.177.1.10', proto: 'udp', sport: 5433, dport: 40000 })));
    expect([req.divergence, rep.divergence]).toEqual([null, null]);
    expect(rep.expected?.nodes).toEqual(['node2', 'node1']);
  });
});
