/**
 * An overlay-network lab for the tunnel tests (issue 14): two "node" namespaces joined by an
 * underlay veth, a tunnel device in each, a bridge on each node with a "pod" namespace behind it,
 * and routes to the other node's pod subnet through the tunnel — the shape of a cross-node
 * Kubernetes packet under flannel/Calico/Cilium.
 *
 *   pod1 eth0 10.42.1.10 ── vp0 ─ br0 10.42.1.1 [node1] tunnel ═ ul0 10.77.0.1 ══ underlay ══
 *   ══ ul0 10.77.0.2 [node2] tunnel ─ br0 10.42.2.1 ─ vp0 ── pod2 eth0 10.42.2.10
 *
 * Addresses are private, exist only inside these namespaces and are never routed out
 * (10.42.x pods, 10.77.0.x underlay, fd42:/fd77: for IPv6): other helpers' labs use 10.244.x and
 * 10.99.0.x. Every command is argv to `ip`/`bridge` with values this file produced.
 */
import { execa } from 'execa';

export type OverlayKind =
  /** vxlan, id 42, UDP 4789, a static remote; ARP across the tunnel to the peer's vx0 address. */
  | 'vxlan'
  /** vxlan the way flannel programs it: no learning, per-peer FDB entry and permanent neighbour, /32 on vx0. */
  | 'vxlan-flannel'
  /** geneve, vni 42, UDP 6081, static remote. */
  | 'geneve'
  /** ipip (IPv4 in IPv4, protocol 4): an L3 tunnel, routes straight through it. */
  | 'ipip'
  /** vxlan static, pods also dual-stack: IPv6 inner packets over the IPv4 underlay. */
  | 'vxlan-v6inner'
  /** vxlan over an IPv6 underlay (fd77::1 ↔ fd77::2), IPv4 pods. */
  | 'vxlan-v6underlay';

export interface OverlayOptions {
  readonly kind: OverlayKind;
  /** Underlay MTU (default 1500). Below the tunnel's overhead + inner MTU, outer packets fragment. */
  readonly underlayMtu?: number;
  /**
   * The tunnel device's MTU (default: what the kernel picks from the underlay). Set it above
   * underlayMtu − overhead to make the pods send packets whose outer datagram must be fragmented.
   */
  readonly tunnelMtu?: number;
  /**
   * The first two octets of every IPv4 address of the lab (default '10.42' for pods and overlay,
   * '10.77' for the underlay): a lab that must stay inside one /16 (another helper's labs, a
   * shared machine) gives its own, e.g. '10.165' → pods 10.165.1.10 and 10.165.2.10, underlay
   * 10.165.77.1 and .2, the tunnels' own link 10.165.255.x.
   */
  readonly net?: string;
}

export interface OverlayLab {
  readonly prefix: string;
  readonly kind: OverlayKind;
  readonly ns: { readonly node1: string; readonly node2: string; readonly pod1: string; readonly pod2: string };
  /** The tunnel device's name in each node (vx0, gn0, tun0). */
  readonly tunnel: string;
  readonly tunnelType: 'vxlan' | 'geneve' | 'ipip';
  readonly vni: number | null;
  /** Outer UDP destination port (4789 vxlan, 6081 geneve), null for ipip. */
  readonly dstport: number | null;
  readonly addr: {
    readonly pod1: string; readonly pod2: string;
    /** The pods' subnets (node1's, node2's). */
    readonly pods1: string; readonly pods2: string;
    readonly pod1v6: string | null; readonly pod2v6: string | null;
    /** Underlay addresses of node1 and node2 (the tunnel's local/remote). */
    readonly ul1: string; readonly ul2: string;
  };
}

const DEFAULT_ADDR = {
  pods1: '10.42.1.0/24', pods2: '10.42.2.0/24', net1: '10.42.1.0', net2: '10.42.2.0',
  pod1: '10.42.1.10', pod2: '10.42.2.10', gw1: '10.42.1.1', gw2: '10.42.2.1',
  pod1v6: 'fd42:1::10', pod2v6: 'fd42:2::10', gw1v6: 'fd42:1::1', gw2v6: 'fd42:2::1',
  ul1: '10.77.0.1', ul2: '10.77.0.2', ul1v6: 'fd77::1', ul2v6: 'fd77::2',
  // The overlay's own link between the tunnel devices (static L2 tunnels only).
  ov1: '10.42.255.1', ov2: '10.42.255.2', ov1v6: 'fd42:255::1', ov2v6: 'fd42:255::2',
};
type Addresses = typeof DEFAULT_ADDR;

/** The lab's addresses; with `net`, every IPv4 address moved into that /16. */
function addressesFor(net: string | undefined): Addresses {
  if (net === undefined) return DEFAULT_ADDR;
  if (!/^(\d{1,3})\.(\d{1,3})$/.test(net) || net.split('.').some((o) => Number(o) > 255)) throw new Error(`overlay lab net must be two octets like 10.165, got '${net}'`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(DEFAULT_ADDR)) {
    // Pods and the overlay's own link keep their third octet; the underlay 10.77.0.x becomes NET.77.x.
    out[k] = v.includes(':') ? v : v.startsWith('10.77.0.') ? `${net}.77.${v.slice('10.77.0.'.length)}` : `${net}.${v.slice('10.42.'.length)}`;
  }
  return out as Addresses;
}

/** MAC addresses of the tunnel devices, fixed so flannel-style FDB/neighbour entries can name them. */
const MAC = { 1: '02:42:77:00:00:01', 2: '02:42:77:00:00:02' } as const;

export function overlayLabFor(prefix: string, opts: OverlayOptions): OverlayLab {
  if (!/^[a-z][a-z0-9]{1,8}$/.test(prefix)) throw new Error(`overlay lab prefix must be 2-9 lowercase letters/digits, got '${prefix}'`);
  const kind = opts.kind;
  const tunnelType = kind === 'geneve' ? 'geneve' : kind === 'ipip' ? 'ipip' : 'vxlan';
  const v6underlay = kind === 'vxlan-v6underlay';
  const v6inner = kind === 'vxlan-v6inner';
  const ADDR = addressesFor(opts.net);
  return {
    prefix,
    kind,
    ns: { node1: `${prefix}-n1`, node2: `${prefix}-n2`, pod1: `${prefix}-p1`, pod2: `${prefix}-p2` },
    tunnel: tunnelType === 'vxlan' ? 'vx0' : tunnelType === 'geneve' ? 'gn0' : 'tun0',
    tunnelType,
    vni: tunnelType === 'ipip' ? null : 42,
    dstport: tunnelType === 'vxlan' ? 4789 : tunnelType === 'geneve' ? 6081 : null,
    addr: {
      pod1: ADDR.pod1, pod2: ADDR.pod2, pods1: ADDR.pods1, pods2: ADDR.pods2,
      pod1v6: v6inner ? ADDR.pod1v6 : null, pod2v6: v6inner ? ADDR.pod2v6 : null,
      ul1: v6underlay ? ADDR.ul1v6 : ADDR.ul1, ul2: v6underlay ? ADDR.ul2v6 : ADDR.ul2,
    },
  };
}

async function ip(ns: string | null, ...args: string[]): Promise<void> {
  const argv = ns ? ['-n', ns, ...args] : args;
  const r = await execa('ip', argv, { reject: false });
  if (r.exitCode !== 0) throw new Error(`ip ${argv.join(' ')}: ${String(r.stderr).trim()}`);
}

async function inNs(ns: string, cmd: string, ...args: string[]): Promise<void> {
  const r = await execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: ${String(r.stderr).trim()}`);
}

export async function overlayLabUp(lab: OverlayLab, opts: OverlayOptions): Promise<void> {
  await overlayLabDown(lab);
  const { ns } = lab;
  const ADDR = addressesFor(opts.net);
  const v6underlay = lab.kind === 'vxlan-v6underlay';
  const v6inner = lab.kind === 'vxlan-v6inner';
  for (const n of Object.values(ns)) {
    await ip(null, 'netns', 'add', n);
    await ip(n, 'link', 'set', 'lo', 'up');
  }
  for (const n of [ns.node1, ns.node2]) {
    await inNs(n, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    await inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
  }
  for (const n of Object.values(ns)) {
    // No DAD delays: IPv6 addresses are usable at once.
    await inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0');
    await inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0');
  }
  // Underlay.
  await ip(null, 'link', 'add', 'ul0', 'netns', ns.node1, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', ns.node2);
  for (const [n, a4, a6] of [[ns.node1, ADDR.ul1, ADDR.ul1v6], [ns.node2, ADDR.ul2, ADDR.ul2v6]] as const) {
    if (v6underlay) await ip(n, 'addr', 'add', `${a6}/64`, 'dev', 'ul0', 'nodad');
    else await ip(n, 'addr', 'add', `${a4}/24`, 'dev', 'ul0');
    await ip(n, 'link', 'set', 'ul0', 'up');
  }
  // Pods behind a bridge on each node.
  const sides = [
    { i: 1 as const, node: ns.node1, pod: ns.pod1, podA: ADDR.pod1, gw: ADDR.gw1, podA6: ADDR.pod1v6, gw6: ADDR.gw1v6, local: 1, remote: 2 },
    { i: 2 as const, node: ns.node2, pod: ns.pod2, podA: ADDR.pod2, gw: ADDR.gw2, podA6: ADDR.pod2v6, gw6: ADDR.gw2v6, local: 2, remote: 1 },
  ];
  for (const s of sides) {
    await ip(s.node, 'link', 'add', 'br0', 'type', 'bridge');
    await ip(s.node, 'addr', 'add', `${s.gw}/24`, 'dev', 'br0');
    if (v6inner) await ip(s.node, 'addr', 'add', `${s.gw6}/64`, 'dev', 'br0', 'nodad');
    await ip(s.node, 'link', 'set', 'br0', 'up');
    await ip(s.node, 'link', 'add', 'vp0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', s.pod);
    await ip(s.node, 'link', 'set', 'vp0', 'master', 'br0');
    await ip(s.node, 'link', 'set', 'vp0', 'up');
    await ip(s.pod, 'addr', 'add', `${s.podA}/24`, 'dev', 'eth0');
    if (v6inner) await ip(s.pod, 'addr', 'add', `${s.podA6}/64`, 'dev', 'eth0', 'nodad');
    await ip(s.pod, 'link', 'set', 'eth0', 'up');
    await ip(s.pod, 'route', 'add', 'default', 'via', s.gw);
    if (v6inner) await ip(s.pod, '-6', 'route', 'add', 'default', 'via', s.gw6);
  }
  // Tunnels.
  for (const s of sides) {
    const local = s.local === 1 ? lab.addr.ul1 : lab.addr.ul2;
    const remote = s.remote === 1 ? lab.addr.ul1 : lab.addr.ul2;
    const remotePods = s.remote === 1 ? ADDR.pods1 : ADDR.pods2;
    const t = lab.tunnel;
    if (lab.tunnelType === 'ipip') {
      await ip(s.node, 'link', 'add', t, 'type', 'ipip', 'local', local, 'remote', remote, 'dev', 'ul0');
      await ip(s.node, 'link', 'set', t, 'up');
      await ip(s.node, 'route', 'add', remotePods, 'dev', t);
      continue;
    }
    if (lab.kind === 'vxlan-flannel') {
      // flannel's vxlan backend: vx0 has the node's pod subnet's network address as a /32, no
      // learning; per peer a route via the peer's network address onlink, a permanent neighbour
      // entry for it with the peer vx0's MAC, and an FDB entry sending that MAC to the peer node.
      const mine = s.local === 1 ? ADDR.net1 : ADDR.net2;
      const peer = s.remote === 1 ? ADDR.net1 : ADDR.net2;
      await ip(s.node, 'link', 'add', t, 'address', MAC[s.i], 'type', 'vxlan', 'id', '42', 'local', local, 'dev', 'ul0', 'dstport', '4789', 'nolearning');
      if (opts.tunnelMtu) await ip(s.node, 'link', 'set', t, 'mtu', String(opts.tunnelMtu));
      await ip(s.node, 'addr', 'add', `${mine}/32`, 'dev', t);
      await ip(s.node, 'link', 'set', t, 'up');
      await ip(s.node, 'route', 'add', remotePods, 'via', peer, 'dev', t, 'onlink');
      await ip(s.node, 'neigh', 'replace', peer, 'lladdr', MAC[s.remote === 1 ? 1 : 2], 'dev', t, 'nud', 'permanent');
      const r = await execa('bridge', ['-n', s.node, 'fdb', 'append', MAC[s.remote === 1 ? 1 : 2], 'dev', t, 'dst', remote], { reject: false });
      if (r.exitCode !== 0) throw new Error(`bridge fdb append in ${s.node}: ${String(r.stderr).trim()}`);
      continue;
    }
    if (lab.tunnelType === 'geneve') {
      await ip(s.node, 'link', 'add', t, 'address', MAC[s.i], 'type', 'geneve', 'id', '42', 'remote', remote);
    } else {
      await ip(s.node, 'link', 'add', t, 'address', MAC[s.i], 'type', 'vxlan', 'id', '42', 'local', local, 'remote', remote, 'dev', 'ul0', 'dstport', '4789');
    }
    if (opts.tunnelMtu) await ip(s.node, 'link', 'set', t, 'mtu', String(opts.tunnelMtu));
    const ov = s.local === 1 ? ADDR.ov1 : ADDR.ov2;
    const peerOv = s.remote === 1 ? ADDR.ov1 : ADDR.ov2;
    await ip(s.node, 'addr', 'add', `${ov}/24`, 'dev', t);
    if (v6inner) await ip(s.node, 'addr', 'add', `${s.local === 1 ? ADDR.ov1v6 : ADDR.ov2v6}/64`, 'dev', t, 'nodad');
    await ip(s.node, 'link', 'set', t, 'up');
    await ip(s.node, 'route', 'add', remotePods, 'via', peerOv, 'dev', t);
    if (v6inner) await ip(s.node, '-6', 'route', 'add', s.remote === 1 ? 'fd42:1::/64' : 'fd42:2::/64', 'via', s.remote === 1 ? ADDR.ov1v6 : ADDR.ov2v6, 'dev', t);
  }
  // Last: a tunnel bound to the underlay device refuses an MTU above the underlay's minus its
  // overhead, but keeps the one it has when the underlay's shrinks (a misconfigured node).
  if (opts.underlayMtu) for (const n of [ns.node1, ns.node2]) await ip(n, 'link', 'set', 'ul0', 'mtu', String(opts.underlayMtu));
}

export async function overlayLabDown(lab: OverlayLab): Promise<void> {
  for (const n of Object.values(lab.ns)) await execa('ip', ['netns', 'del', n], { reject: false });
}
