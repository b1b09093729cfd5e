/**
 * A vxlan overlay for the dashboard's unit and component tests, shaped like
 * test/helpers/overlay-lab.ts (which the browser test runs for real): two node namespaces joined
 * by an underlay veth, a vxlan device in each, a pod behind each node's bridge; and a pod → pod
 * datagram's hop events through it, rebuilt by the real engine (shared/reconstruct.ts marks the
 * encap, the outer headers and the decap).
 */
import type { HopEvent, HopOuter } from '../../shared/hop-event.js';
import type { NamespaceModel, NetInterface, Topology, TunnelFdbEntry, TunnelParams } from '../../shared/topology/model.js';
import type { Packet } from '../../shared/packet.js';
import { reconstructAll } from '../../shared/reconstruct.js';

function iface(ifindex: number, name: string, kind: string, extra: Partial<NetInterface> = {}): NetInterface {
  return { ifindex, name, kind, mac: null, mtu: 1500, up: true, carrier: true, addrs: [], master: null, peer: null, link: null, ...extra };
}

function ns(netns: number, name: string, interfaces: NetInterface[], extra: Partial<NamespaceModel> = {}): NamespaceModel {
  return {
    netns, name, path: `/run/netns/${name}`, pids: [], interfaces: [iface(1, 'lo', 'loopback'), ...interfaces], routes: [], rules: [],
    forwarding: { ipv4: true, ipv6: false }, bridgeNfCall: { ipv4: false, ipv6: false },
    netfilter: { chains: [], rules: [] }, errors: [], ...extra,
  };
}

const vxlan = (local: string, remote: string | null): TunnelParams => ({ type: 'vxlan', vni: 42, local, remote, dstport: 4789, underlay: 'ul0', learning: remote !== null });

export interface OverlayNames {
  readonly n1: number; readonly n2: number; readonly p1: number; readonly p2: number;
}

/**
 * One overlay lab with inodes from `base`: a static remote on each vxlan device, or (flannel)
 * no remote and one FDB entry per peer; `remote1` overrides node1's tunnel remote.
 */
export function overlayLab(base: number, prefix: string, opts: { flannel?: boolean; remote1?: string } = {}): { namespaces: NamespaceModel[]; netns: OverlayNames } {
  const n1 = base;
  const n2 = base + 1;
  const p1 = base + 2;
  const p2 = base + 3;
  const fdb = (dst: string): TunnelFdbEntry[] => [{ mac: opts.flannel ? '02:42:77:00:00:02' : '00:00:00:00:00:00', dev: 'vx0', dst, permanent: true }];
  const node = (netns: number, name: string, ul: string, pod: number, subnet: string, remote: string): NamespaceModel => ns(netns, name, [
    iface(2, 'ul0', 'veth', { addrs: [`${ul}/24`], peer: { netns: netns === n1 ? n2 : n1, ifindex: 2, name: 'ul0' } }),
    iface(3, 'br0', 'bridge', { addrs: [`${subnet}.1/24`] }),
    iface(4, 'vp0', 'veth', { master: 'br0', peer: { netns: pod, ifindex: 2, name: 'eth0' } }),
    iface(5, 'vx0', 'vxlan', { addrs: opts.flannel ? [`${subnet}.0/32`] : [], tunnel: vxlan(ul, opts.flannel ? null : remote) }),
  ], { tunnelFdb: fdb(remote) });
  return {
    namespaces: [
      node(n1, `${prefix}-n1`, '10.77.0.1', p1, '10.42.1', opts.remote1 ?? '10.77.0.2'),
      node(n2, `${prefix}-n2`, '10.77.0.2', p2, '10.42.2', '10.77.0.1'),
      ns(p1, `${prefix}-p1`, [iface(2, 'eth0', 'veth', { addrs: ['10.42.1.10/24'], peer: { netns: n1, ifindex: 4, name: 'vp0' } })]),
      ns(p2, `${prefix}-p2`, [iface(2, 'eth0', 'veth', { addrs: ['10.42.2.10/24'], peer: { netns: n2, ifindex: 4, name: 'vp0' } })]),
    ],
    netns: { n1, n2, p1, p2 },
  };
}

export function topologyOf(...labs: { namespaces: NamespaceModel[] }[]): Topology {
  return { namespaces: labs.flatMap((l) => l.namespaces), errors: [], discoveredAt: 0, durationMs: 0 };
}

const OUTER: HopOuter = { family: 4, proto: 17, src: '10.77.0.1', dst: '10.77.0.2', sport: 35707, dport: 4789, vni: 42, innerRead: true };

/** A pod1 → pod2 UDP datagram through the tunnel, as the probes report it, rebuilt into a packet. */
export function overlayPacket(n: OverlayNames, prefix: string): Packet {
  let t = 1_000_000;
  const ev = (kind: HopEvent['kind'], netns: number, ifindex: number, ifname: string, outer?: HopOuter): HopEvent => ({
    kind, t: (t += 5_000), cpu: 0, skb: 'ffff888100000042', netns, ifindex, ifname, family: 4, proto: 17, len: 60, ipId: 7,
    src: '10.42.1.10', dst: '10.42.2.10', sport: 40000, dport: 5433, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
    ...(outer ? { outer } : {}),
  });
  const events = [
    ev('xmit', n.p1, 2, 'eth0'), ev('recv', n.n1, 4, 'vp0'), ev('recv', n.n1, 3, 'br0'), ev('xmit', n.n1, 5, 'vx0'),
    ev('xmit', n.n1, 2, 'ul0', OUTER), ev('rx', n.n2, 2, 'ul0', OUTER), ev('recv', n.n2, 2, 'ul0', OUTER),
    ev('recv', n.n2, 5, 'vx0'), ev('xmit', n.n2, 3, 'br0'), ev('xmit', n.n2, 4, 'vp0'), ev('recv', n.p2, 2, 'eth0'), ev('consume', n.p2, 2, 'eth0'),
  ];
  const names = new Map([[n.n1, `${prefix}-n1`], [n.n2, `${prefix}-n2`], [n.p1, `${prefix}-p1`], [n.p2, `${prefix}-p2`]]);
  const [p] = reconstructAll(events, { nsName: (x) => names.get(x) ?? null });
  if (!p) throw new Error('overlay packet did not rebuild');
  return p;
}
