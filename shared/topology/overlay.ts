/**
 * Tunnels in the expected path (issue 14): where a tunnel device sends a packet, and which
 * device on the far node takes it out of the tunnel. Pure lookups on the model; the walk itself
 * (shared/topology/simulate.ts) routes the outer packet across the underlay like any other.
 *
 * Which node a frame goes to: when the model knows the node the frame is meant for (the tunnel
 * device, same kind, VNI and port, that owns the next hop's address or its MAC), the expected
 * path goes there, as it goes to the owner of an address on a bridge. The tunnel's own tables
 * (the vxlan FDB, a static remote) decide only when it does not; an FDB that sends the frame
 * elsewhere is a fault the path names, and a packet that follows it diverges.
 */
import type { IpFamily, NamespaceModel, NetInterface, Topology } from './model.js';
import type { Encap } from '../packet.js';
import { cidrAddress, parseAddr } from './ip.js';
import { lookupRoute, ownsAddress, primaryAddress } from './routing.js';

/** The tunnel kinds the walk follows, with their outer protocol (UDP for the VNI kinds). */
const KINDS: ReadonlyMap<string, { readonly encap: Encap['type']; readonly l2: boolean; readonly proto: number | null; readonly defaultPort: number | null }> = new Map([
  // vxlan's Linux default port is 8472 (flannel's too); iproute2 reports the one in use.
  ['vxlan', { encap: 'vxlan', l2: true, proto: 17, defaultPort: 8472 }],
  ['geneve', { encap: 'geneve', l2: true, proto: 17, defaultPort: 6081 }],
  // IP in IP: the outer protocol is the inner family's (4 for IPv4, 41 for IPv6).
  ['ipip', { encap: 'ipip', l2: false, proto: null, defaultPort: null }],
  ['sit', { encap: 'ip6ip', l2: false, proto: null, defaultPort: null }],
  ['ip6tnl', { encap: 'ipip', l2: false, proto: null, defaultPort: null }],
  ['gre', { encap: 'gre', l2: false, proto: 47, defaultPort: null }],
  ['ip6gre', { encap: 'gre', l2: false, proto: 47, defaultPort: null }],
]);

export const ZERO_MAC = '00:00:00:00:00:00';

/** Can the walk follow a packet into this device? */
export function isFollowedTunnel(i: NetInterface): boolean {
  return i.tunnel !== undefined && KINDS.has(i.kind);
}

/** A followed tunnel carrying Ethernet frames (vxlan, geneve): one that can be a bridge port. */
export function isL2Tunnel(i: NetInterface): boolean {
  return isFollowedTunnel(i) && (KINDS.get(i.kind)?.l2 ?? false);
}

/** The far tunnel devices a frame bridged onto `dev` is meant for (see intendedPeers). */
export function tunnelPeers(topo: Topology, ns: NamespaceModel, dev: NetInterface, bridged: BridgedFrame): { ns: NamespaceModel; dev: NetInterface }[] {
  return intendedPeers(topo, ns, dev, '', bridged.mac, bridged);
}

export function tunnelPort(i: NetInterface): number | null {
  const k = KINDS.get(i.kind);
  if (!k || k.proto !== 17) return null;
  return i.tunnel?.dstport ?? k.defaultPort;
}

/** The outer IP protocol of a tunnel device carrying a packet of `innerFamily`. */
export function outerProto(i: NetInterface, innerFamily: IpFamily): number {
  const k = KINDS.get(i.kind);
  if (k?.proto != null) return k.proto;
  return innerFamily === 4 ? 4 : 41;
}

export function encapType(i: NetInterface, innerFamily: IpFamily): Encap['type'] {
  const k = KINDS.get(i.kind);
  if (!k) return 'unknown';
  if (k.encap === 'ipip' && innerFamily === 6) return 'ip6ip';
  return k.encap;
}

/** The family of the socket a UDP tunnel device opens: IPv6 when either of its addresses is. */
function socketFamily(i: NetInterface): IpFamily {
  const t = i.tunnel;
  return (t?.local ?? t?.remote ?? '').includes(':') ? 6 : 4;
}

function usable(state: readonly string[]): boolean {
  return !state.includes('FAILED') && !state.includes('INCOMPLETE');
}

function sameIp(a: string, b: string): boolean {
  const x = parseAddr(a);
  const y = parseAddr(b);
  return x !== null && y !== null && x.family === y.family && x.value === y.value;
}

/** Where a tunnel device sends a packet for next hop `nexthop`. */
export interface TunnelTarget {
  /** Underlay destination; null when nothing says where (the path ends there). */
  readonly remote: string | null;
  /** How the remote was chosen, in words (the FDB entry, the static remote, the owner of the next hop). */
  readonly via: string;
  /** The inner destination MAC (L2 tunnels), when the neighbour table gives it. */
  readonly innerMac: string | null;
  /** The tunnel's own tables send it elsewhere than the node it is meant for (or nowhere): what they do. */
  readonly fault: string | null;
  /** Why the tunnel has no remote (the kernel frees the frame on the device): kernel reason, when known. */
  readonly noRemote: { readonly reason: string; readonly kernelReason: string | null } | null;
  readonly guesses: readonly string[];
  /**
   * Head-end replication: every underlay destination the kernel sends a copy of this frame to,
   * when the FDB entry it uses (a MAC's, or the all-zeros one for broadcast, multicast and
   * unknown unicast) has several `dst`. Empty when there is one.
   */
  readonly copies: readonly string[];
  /** The FDB entry the copies come from, in words (for the note). */
  readonly copiesBy?: string;
}

/** The underlay address a tunnel device on the far node receives on. */
function receivingAddress(ns: NamespaceModel, dev: NetInterface, family: IpFamily): string | null {
  const t = dev.tunnel;
  if (t?.local && parseAddr(t.local)?.family === family) return t.local;
  if (t?.underlay) {
    const a = primaryAddress(ns, t.underlay, family);
    if (a) return a;
  }
  for (const i of ns.interfaces) {
    if (i.kind === 'loopback' || isFollowedTunnel(i)) continue;
    const a = primaryAddress(ns, i.name, family);
    if (a && !a.toLowerCase().startsWith('fe80:')) return a;
  }
  return null;
}

/**
 * The tunnel devices elsewhere in the topology a frame for `nexthop` (MAC `mac`) sent on `dev`
 * may be meant for: same kind, VNI and port, up, and owning the next hop's address (first) or
 * that MAC. Several when labs or clusters on one host repeat addresses.
 */
function intendedPeers(topo: Topology, ns: NamespaceModel, dev: NetInterface, nexthop: string, mac: string | null, bridged: BridgedFrame | null): { ns: NamespaceModel; dev: NetInterface }[] {
  const t = dev.tunnel;
  if (!t) return [];
  const port = tunnelPort(dev);
  const family = socketFamily(dev);
  const byAddr: { ns: NamespaceModel; dev: NetInterface }[] = [];
  const byMac: { ns: NamespaceModel; dev: NetInterface }[] = [];
  for (const other of topo.namespaces) {
    if (other === ns) continue;
    for (const i of other.interfaces) {
      if (i.kind !== dev.kind || !i.up || !i.tunnel || i.tunnel.vni !== t.vni || tunnelPort(i) !== port || socketFamily(i) !== family) continue;
      if (bridged) {
        // A bridge port: meant for the VTEP whose bridge leads to the frame's destination.
        if (i.master && bridged.reaches(other, i)) byAddr.push({ ns: other, dev: i });
      } else if (i.addrs.some((c) => sameIp(cidrAddress(c), nexthop))) byAddr.push({ ns: other, dev: i });
      else if (mac !== null && i.mac?.toLowerCase() === mac) byMac.push({ ns: other, dev: i });
    }
  }
  return [...byAddr, ...byMac];
}

function underlayFamily(dev: NetInterface): IpFamily {
  return socketFamily(dev);
}

/**
 * A frame a bridge forwards onto its tunnel port (an L2 overlay: Docker swarm, EVPN, OVN): its
 * destination MAC (from the neighbour tables of the bridge's domain, null when unknown), and
 * whether a far tunnel device's bridge leads to the frame's destination (the walk knows).
 */
export interface BridgedFrame {
  readonly mac: string | null;
  readonly reaches: (ns: NamespaceModel, dev: NetInterface) => boolean;
}

/**
 * Where `dev` in `ns` sends a packet routed to `nexthop` (see the file comment); `bridged` when
 * `dev` is a bridge port and the frame was bridged onto it (nexthop is then the frame's
 * destination address).
 */
export function tunnelTarget(topo: Topology, ns: NamespaceModel, dev: NetInterface, nexthop: string, bridged: BridgedFrame | null = null): TunnelTarget {
  const t = dev.tunnel;
  const guesses: string[] = [];
  const l2 = KINDS.get(dev.kind)?.l2 ?? false;
  if (!t) return { remote: null, via: 'no tunnel parameters', innerMac: null, fault: null, noRemote: { reason: `${dev.name} has no tunnel parameters in the model`, kernelReason: null }, guesses, copies: [] };
  if (!l2) {
    // IP tunnels: the static remote, else (Calico's `via NODE dev tunl0 onlink`) the route's next hop.
    const remote = t.remote ?? (parseAddr(nexthop)?.family === underlayFamily(dev) && !sameIp(nexthop, '0.0.0.0') ? nexthop : null);
    if (remote === null) return { remote: null, via: 'no remote', innerMac: null, fault: null, noRemote: { reason: `${dev.name} in ${ns.name} has no remote and the route gives no next hop`, kernelReason: null }, guesses, copies: [] };
    return { remote, via: t.remote ? `static remote ${t.remote}` : `the route's next hop ${nexthop}`, innerMac: null, fault: null, noRemote: null, guesses, copies: [] };
  }
  const neigh = (ns.neighbours ?? []).find((n) => n.dev === dev.name && n.mac !== null && usable(n.state) && sameIp(n.addr, nexthop));
  const mac = bridged ? bridged.mac : neigh?.mac?.toLowerCase() ?? null;
  const fdb = ns.tunnelFdb?.filter((e) => e.dev === dev.name) ?? null;
  // The kernel's choice: the FDB entry of the destination MAC, else the all-zeros default entry
  // (a static remote's; an ARP request for an unknown neighbour goes there too).
  let kernel: { dst: string; via: string } | null = null;
  let replicas: { dsts: string[]; by: string } | null = null;
  if (fdb === null) {
    if (t.remote) kernel = { dst: t.remote, via: `static remote ${t.remote}` };
  } else {
    const own = mac !== null ? fdb.filter((e) => e.mac.toLowerCase() === mac) : [];
    const dflt = fdb.filter((e) => e.mac === ZERO_MAC);
    const pick = own[0] ?? dflt[0];
    if (pick) {
      kernel = { dst: pick.dst, via: pick.mac === ZERO_MAC ? `default FDB entry ${ZERO_MAC} dst ${pick.dst}` : `FDB entry ${pick.mac} dst ${pick.dst}` };
      const all = own.length > 0 ? own : dflt;
      // vxlan_xmit: one skb_clone per further `dst` of the entry, each encapsulated to its VTEP.
      if (all.length > 1) replicas = { dsts: all.map((e) => e.dst), by: pick.mac === ZERO_MAC ? `default FDB entry ${ZERO_MAC}` : `FDB entry ${pick.mac}` };
    } else if (t.remote) {
      kernel = { dst: t.remote, via: `static remote ${t.remote}` };
    }
  }
  if (bridged && mac === null) {
    guesses.push(`the MAC of ${nexthop} is in no neighbour table of ${dev.master ?? '?'}'s hosts in ${ns.name}: assumed the frame goes to the VTEP whose bridge leads there`);
  } else if (mac === null && !neigh) {
    guesses.push(`no neighbour entry for ${nexthop} on ${dev.name} in ${ns.name} yet: assumed the kernel resolves it${kernel ? ` (its ARP/NDP request goes by the ${kernel.via})` : ''}`);
  }
  const copies = replicas?.dsts ?? [];
  const rep = replicas ? { copies, copiesBy: replicas.by } : { copies };
  const peers = intendedPeers(topo, ns, dev, nexthop, mac, bridged);
  const peer = peers.find((x) => kernel !== null && ownsAddress(x.ns, kernel.dst)) ?? peers[0] ?? null;
  const peerAddr = peer ? receivingAddress(peer.ns, peer.dev, underlayFamily(dev)) : null;
  if (peer && peerAddr) {
    const has = bridged ? `leads to ${nexthop}${mac !== null ? ` (${mac})` : ''} through ${peer.dev.master ?? '?'}` : mac !== null && peer.dev.mac?.toLowerCase() === mac ? `has ${mac}` : `owns ${nexthop}`;
    const via = `${peer.dev.name} of ${peer.ns.name} (${peerAddr}) ${has}`;
    if (kernel && ownsAddress(peer.ns, kernel.dst)) return { remote: kernel.dst, via: kernel.via, innerMac: mac, fault: null, noRemote: null, guesses, ...rep };
    // A copy reaches the intended VTEP too: replication, not a fault.
    const copy = copies.find((d) => ownsAddress(peer.ns, d));
    if (copy !== undefined) return { remote: copy, via: `${replicas?.by ?? 'FDB entry'} dst ${copy}`, innerMac: mac, fault: null, noRemote: null, guesses, ...rep };
    const what = mac ?? nexthop;
    const fault = kernel
      ? `${dev.name} in ${ns.name} sends ${what} to ${kernel.dst} by its ${kernel.via}, but ${via}: the entry points at the wrong node`
      : `${dev.name} in ${ns.name} has no FDB entry for ${what} and no default: the kernel frees the frame (NO_TX_TARGET), but ${via}`;
    return { remote: peerAddr, via, innerMac: mac, fault, noRemote: null, guesses, ...rep };
  }
  if (kernel) return { remote: kernel.dst, via: kernel.via, innerMac: mac, fault: null, noRemote: null, guesses, ...rep };
  return {
    remote: null, via: 'no remote', innerMac: mac, fault: null, guesses, copies: [],
    noRemote: { reason: `${dev.name} in ${ns.name} has no FDB entry for ${mac ?? nexthop} and no default entry or remote`, kernelReason: dev.kind === 'vxlan' ? 'NO_TX_TARGET' : null },
  };
}

/** The source address of the outer packet: the tunnel's local, else the route's preferred source. */
export function tunnelSource(ns: NamespaceModel, dev: NetInterface, remote: string): string | null {
  const fixed = dev.tunnel?.local;
  const r = parseAddr(remote);
  if (fixed && parseAddr(fixed)?.family === r?.family) return fixed;
  if (!r) return null;
  const lookup = lookupRoute(ns, r, null, 'lo').result;
  if (lookup.kind === 'unicast') return lookup.route.prefsrc ?? primaryAddress(ns, lookup.dev, r.family);
  if (lookup.kind === 'local') return remote;
  return null;
}

/** What takes an outer packet (received for a local address of `ns`) out of its tunnel. */
export type Receiver =
  | { readonly dev: NetInterface }
  | { readonly reason: string; readonly kernelReason: string | null };

/**
 * The device that decapsulates an outer packet arriving in `ns`: for UDP tunnels the device
 * whose socket has the port (same family, up) and the VNI; for IP tunnels the one whose
 * local/remote match the outer addresses (unset matches any, exact wins).
 */
export function tunnelReceiver(ns: NamespaceModel, type: Encap['type'], vni: number | null, outer: { readonly family: IpFamily; readonly proto: number; readonly src: string; readonly dst: string; readonly dport: number }): Receiver {
  if (type === 'vxlan' || type === 'geneve') {
    const onPort = ns.interfaces.filter((i) => i.kind === type && i.up && i.tunnel && tunnelPort(i) === outer.dport && socketFamily(i) === outer.family);
    if (onPort.length === 0) {
      return { reason: `nothing in ${ns.name} listens on UDP ${outer.dport} (no ${type} device with that port is up)`, kernelReason: 'NO_SOCKET' };
    }
    const dev = onPort.find((i) => i.tunnel?.vni === vni);
    if (!dev) {
      const have = onPort.map((i) => `${i.name} VNI ${i.tunnel?.vni ?? '?'}`).join(', ');
      return { reason: `no ${type} device with VNI ${vni ?? '?'} in ${ns.name} (on UDP ${outer.dport}: ${have})`, kernelReason: type === 'vxlan' ? 'VXLAN_VNI_NOT_FOUND' : null };
    }
    return { dev };
  }
  const kinds = type === 'gre' ? ['gre', 'ip6gre'] : type === 'ip6ip' ? ['sit', 'ip6tnl'] : ['ipip', 'ip6tnl'];
  const candidates = ns.interfaces.filter((i) => kinds.includes(i.kind) && i.up && i.tunnel &&
    (i.tunnel.local === null || sameIp(i.tunnel.local, outer.dst)) && (i.tunnel.remote === null || sameIp(i.tunnel.remote, outer.src)));
  const exact = candidates.find((i) => i.tunnel?.remote !== null) ?? candidates[0];
  if (!exact) return { reason: `no ${type} tunnel in ${ns.name} takes packets from ${outer.src} to ${outer.dst}`, kernelReason: null };
  return { dev: exact };
}
