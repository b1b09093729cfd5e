/** Hand-built topologies of any size: a host namespace plus nodes, each a bridge with pods on it. */
import type { NamespaceModel, NetInterface, Topology } from '../../shared/topology/model.js';

function iface(ifindex: number, name: string, kind: string, extra: Partial<NetInterface> = {}): NetInterface {
  return { ifindex, name, kind, mac: null, mtu: 1500, up: true, carrier: true, addrs: [], master: null, peer: null, link: null, ...extra };
}

function ns(netns: number, name: string, interfaces: NetInterface[]): NamespaceModel {
  return {
    netns, name, path: `/run/netns/${name}`, pids: [], interfaces, routes: [], rules: [],
    forwarding: { ipv4: true, ipv6: false }, bridgeNfCall: { ipv4: false, ipv6: false },
    netfilter: { chains: [], rules: [] }, errors: [],
  };
}

/** `nodes` node namespaces, each with `pods` pods on its bridge; inodes from 1000 up. */
export function syntheticTopology(nodes: number, pods: number): Topology {
  const out: NamespaceModel[] = [ns(1, 'host', [iface(1, 'lo', 'loopback'), iface(2, 'eth0', 'physical', { addrs: ['192.0.2.10/24'] })])];
  let inode = 1000;
  for (let n = 0; n < nodes; n++) {
    const nodeNs = inode++;
    const nodeIfs: NetInterface[] = [iface(1, 'lo', 'loopback'), iface(2, 'br0', 'bridge', { addrs: [`10.${n}.0.1/24`] })];
    for (let p = 0; p < pods; p++) {
      const podNs = inode++;
      nodeIfs.push(iface(10 + p, `veth${p}`, 'veth', { master: 'br0', peer: { netns: podNs, ifindex: 2, name: 'eth0' } }));
      out.push(ns(podNs, `node${n}-pod${p}`, [
        iface(1, 'lo', 'loopback'),
        iface(2, 'eth0', 'veth', { addrs: [`10.${n}.0.${10 + p}/24`], peer: { netns: nodeNs, ifindex: 10 + p, name: `veth${p}` } }),
      ]));
    }
    out.push(ns(nodeNs, `node${n}`, nodeIfs));
  }
  return { namespaces: out, errors: [], discoveredAt: 0, durationMs: 0 };
}
