/**
 * The cluster session's `pod NAME` (issue 17, `serve --hub --filter 'pod NAME'`): it waits while
 * no node that has the pod has sent its topology, then resolves to the pod's addresses, and again
 * to its new ones when it moves.
 */
import { describe, expect, it } from 'vitest';
import { parseFilter } from '../../../shared/filter/index.js';
import { resolveClusterFilter } from '../../../shared/cluster/workloads.js';
import type { NamespaceModel, Topology } from '../../../shared/topology/model.js';

const ns = (netns: number, name: string, addr: string, pod: string | null): NamespaceModel => ({
  netns, name, path: `/run/netns/${name}`, pids: [], routes: [], rules: [], forwarding: { ipv4: true, ipv6: false }, bridgeNfCall: { ipv4: false, ipv6: false },
  netfilter: { chains: [], rules: [] }, errors: [],
  interfaces: [{ ifindex: 2, name: 'eth0', kind: 'veth', mac: null, mtu: 1500, up: true, carrier: true, addrs: [`${addr}/24`], master: null, peer: null, link: null }],
  workloads: pod ? [{ runtime: 'podman', id: `${pod}-id`, name: `${pod}-c`, pod, k8sNamespace: null, image: 'busybox' }] : [],
  workload: pod,
});
const topo = (namespaces: NamespaceModel[]): Topology => ({ namespaces, errors: [], discoveredAt: 1, durationMs: 1 });

describe('resolveClusterFilter', () => {
  const ast = parseFilter('udp and pod web');

  it('should wait, saying for what, while no node known has the pod', () => {
    const none = resolveClusterFilter(ast, new Map());
    expect(none).toEqual({ waiting: expect.stringMatching(/^the filter 'udp and pod web' waits for a node that has the workload to send its topology \(no node yet\)/) });
    const other = resolveClusterFilter(ast, new Map([['node1', topo([ns(11, 'n1-pod', '10.9.1.10', 'shop')])]]));
    expect(other).toEqual({ waiting: expect.stringContaining('nodes so far: node1') });
    expect('waiting' in other && other.waiting).toMatch(/shop \(node1\)/);
  });

  it('should resolve on the node that has it, and to its new address once it moved', () => {
    const node1 = topo([ns(11, 'n1-pod', '10.9.1.10', 'shop')]);
    expect(resolveClusterFilter(ast, new Map([['node1', node1], ['node2', topo([ns(21, 'n2-pod', '10.9.2.10', 'web')])]]))).toEqual({ filter: 'udp and host 10.9.2.10' });
    expect(resolveClusterFilter(ast, new Map([['node1', node1], ['node2', topo([ns(21, 'n2-pod', '10.9.2.77', 'web')])]]))).toEqual({ filter: 'udp and host 10.9.2.77' });
  });
});
