import { describe, expect, it } from 'vitest';
import { buildGraph, orientLinks } from '../../src/domain/topology-graph.js';
import { demoNetns, demoRecording } from '../fixture.js';
import { syntheticTopology } from '../synthetic-topology.js';

describe('buildGraph', () => {
  it('should draw the demo lab: four namespaces, three veth pairs, two bridge ports, no loopback', () => {
    const topo = demoRecording().topology;
    if (!topo) throw new Error('fixture without topology');
    const g = buildGraph(topo);
    expect(g.nodes.filter((n) => n.type === 'ns').map((n) => n.type === 'ns' && n.name).sort()).toEqual(['demo-ext', 'demo-node', 'demo-pod1', 'demo-pod2']);
    expect(g.links.filter((l) => l.kind === 'veth')).toHaveLength(3);
    expect(g.links.filter((l) => l.kind === 'port')).toHaveLength(2);
    const node = g.nodes.find((n) => n.type === 'ns' && n.netns === demoNetns('node'));
    expect(node?.type === 'ns' && node.ifaces.map((i) => i.name).sort()).toEqual(['br0', 'eth-node', 'veth-pod1', 'veth-pod2']);
  });

  it('should group many pods on one bridge into one box, and open it on request', () => {
    const topo = syntheticTopology(3, 20);
    const g = buildGraph(topo);
    const groups = g.nodes.filter((n) => n.type === 'group');
    expect(groups).toHaveLength(3);
    expect(groups[0]?.type === 'group' && groups[0].members).toHaveLength(20);
    // Each group is linked to its node's bridge by one drawn link standing for 20 veth pairs.
    const toGroup = g.links.filter((l) => l.to === groups[0]?.id || l.from === groups[0]?.id);
    expect(toGroup).toHaveLength(1);
    expect(toGroup[0]?.pairs).toHaveLength(20);
    const opened = buildGraph(topo, { openGroups: new Set([groups[0]?.id ?? '']) });
    expect(opened.nodes.filter((n) => n.type === 'group')).toHaveLength(2);
  });

  it('should group sets of three pods once a host has too many namespaces to draw one by one', () => {
    // 10 nodes × 4 pods: no set reaches 6, but 51 namespaces are too many boxes.
    const g = buildGraph(syntheticTopology(10, 4));
    const groups = g.nodes.filter((n) => n.type === 'group');
    expect(groups).toHaveLength(10);
    expect(g.nodes.filter((n) => n.type === 'ns')).toHaveLength(11);
    // A small host keeps its pods one by one.
    expect(buildGraph(syntheticTopology(2, 4)).nodes.filter((n) => n.type === 'group')).toHaveLength(0);
  });

  it('should collapse namespaces past the threshold but keep the selected path expanded', () => {
    // Two pods a node: too few to group, so 43 namespaces are drawn, collapsed.
    const topo = syntheticTopology(14, 2);
    const pinned = topo.namespaces[3]?.netns ?? 0;
    const g = buildGraph(topo, { pinned: new Set([pinned]) });
    const ns = g.nodes.filter((n) => n.type === 'ns');
    expect(ns.length).toBeGreaterThan(12);
    for (const n of ns) if (n.type === 'ns') expect(n.collapsed).toBe(n.netns !== pinned);
    // Collapsed ends hold their interfaces: links attach to the namespace box.
    expect(g.links.some((l) => l.from.startsWith('ns:') || l.to.startsWith('ns:'))).toBe(true);
  });

  it('should point links away from each component\'s hub so the layout reads outward', () => {
    const topo = demoRecording().topology;
    if (!topo) throw new Error('fixture without topology');
    const g = buildGraph(topo);
    const o = orientLinks(g);
    for (const l of g.links.filter((x) => x.kind === 'veth')) {
      const from = o.get(l.id) ? l.from : l.to;
      expect(from.startsWith(`if:${demoNetns('node')}:`)).toBe(true);
    }
  });
});
