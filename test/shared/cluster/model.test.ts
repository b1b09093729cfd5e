import { describe, expect, it } from 'vitest';
import { mergeTopologies } from '../../../shared/cluster/model.js';
import type { NamespaceModel, Topology } from '../../../shared/topology/model.js';

const ns = (netns: number, name: string): NamespaceModel => ({
  netns, name, path: `/run/netns/${name}`, pids: [], interfaces: [], routes: [], rules: [],
  forwarding: { ipv4: false, ipv6: false }, bridgeNfCall: { ipv4: false, ipv6: false }, netfilter: { chains: [], rules: [] }, errors: [],
});
const topo = (namespaces: NamespaceModel[], at: number, errors: string[] = []): Topology => ({ namespaces, errors, discoveredAt: at, durationMs: 5 });

describe('mergeTopologies', () => {
  it('should put every node\'s namespaces in one model, each tagged with its node, nodes in name order', () => {
    const m = mergeTopologies(new Map([
      ['node2', topo([ns(20, 'b-node'), ns(21, 'b-pod')], 2000, ['nft unreadable'])],
      ['node1', topo([ns(10, 'a-node')], 1000)],
    ]));
    expect(m.namespaces.map((n) => `${n.node}/${n.name}/${n.netns}`)).toEqual(['node1/a-node/10', 'node2/b-node/20', 'node2/b-pod/21']);
    expect(m.errors).toEqual(['node2: nft unreadable']);
    expect(m.discoveredAt).toBe(2000);
  });

  it('should keep the first node\'s namespace when two nodes report one inode, and say so', () => {
    // Hosts' initial namespaces often share an inode: hops name namespaces by inode alone.
    const m = mergeTopologies(new Map([['node1', topo([ns(4026531840, 'host')], 0)], ['node2', topo([ns(4026531840, 'host'), ns(7, 'pod')], 0)]]));
    expect(m.namespaces.map((n) => `${n.node}/${n.name}`)).toEqual(['node1/host', 'node2/pod']);
    expect(m.errors).toEqual(['node2: namespace host has the inode 4026531840 of one on node1; only node1\'s is drawn']);
  });
});
