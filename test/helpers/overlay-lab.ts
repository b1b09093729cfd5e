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
 * 10.99.0.x. `addressBase` moves them all into one other /16 (pods 10.B.1.x and 10.B.2.x,
 * underlay 10.B.77.x, overlay link 10.B.255.x), for labs that must keep to their own range.
 * Every command is argv to `ip`/`bridge` with values this file produced.
 *
 * Options for the tunnel's faults (the expected path across it, issue 14):
 * - `underlay: 'routed'`: node1 and node2 on two links joined by a router namespace
 *   (10.B.77.0/24 and 10.B.78.0/24), whose FORWARD chain the outer packets cross;
 * - `thirdNode` (vxlan-flannel): node3 on a second underlay link of node1 (10.B.79.0/24), with a
 *   vxlan device of the same VNI, for an FDB entry pointing at the wrong node.
 */
import { execa } from 'execa';
import { beforeAll, afterAll } from 'vitest';
import type { Packet } from '../../shared/packet.js';
import { startEcho, type Server } from '../../server/lab/traffic.js';
import { startTrace, randomPrefix } from './cli.js';

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
  | 'vxlan-v6underlay'
  /**
   * An L2 overlay (Docker swarm overlay, EVPN, OVN-style): vx0 is a port of each node's br0, both
   * pods in one subnet (pod2 is 10.B.1.20). The control plane's programming: no learning, an FDB
   * entry per remote pod MAC on vx0 (`dst` its node) and in the bridge (`master static`), and a
   * permanent neighbour for the other pod in each pod (swarm's proxy ARP answers).
   */
  | 'vxlan-bridge'
  /**
   * The same L2 overlay without a control plane: learning on, an all-zeros FDB entry per remote
   * VTEP (head-end replication of broadcast and unknown unicast: node2, and node3 with thirdNode),
   * the pods' neighbour entries permanent so the first datagram is an unknown unicast.
   */
  | 'vxlan-bridge-flood';

export interface OverlayOptions {
  readonly kind: OverlayKind;
  /** Underlay MTU (default 1500). Below the tunnel's overhead + inner MTU, outer packets fragment. */
  readonly underlayMtu?: number;
  /**
   * The tunnel device's MTU (default: what the kernel picks from the underlay). Set it above
   * underlayMtu − overhead to make the pods send packets whose outer datagram must be fragmented.
   */
  readonly tunnelMtu?: number;
  /** Second octet of a 10.x/16 to hold every IPv4 address (IPv6: fdXX where XX is its last two digits). Default: HOPTRACE_TEST_ADDRESS_BASE, else 10.42/10.77, fd42/fd77. */
  readonly addressBase?: number;
  /** 'veth' (default): one link between the nodes; 'routed': a router namespace between them. */
  readonly underlay?: 'veth' | 'routed';
  /** vxlan-flannel only: a third node with vxlan VNI 42 behind node1's second underlay link ul1. */
  readonly thirdNode?: boolean;
  /**
   * vxlan only: a nested overlay — a second vxlan device vxi (VNI 100, static remote) whose
   * underlay is vx0's overlay link (10.B.255.x), and the pods' routes through vxi (10.B.254.x).
   */
  readonly nested?: boolean;
}

export interface OverlayLab {
  readonly prefix: string;
  readonly kind: OverlayKind;
  readonly ns: { readonly node1: string; readonly node2: string; readonly pod1: string; readonly pod2: string; readonly router?: string; readonly node3?: string };
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
    /** node3's underlay address (thirdNode), and the router's on node1's link (routed underlay). */
    readonly ul3: string | null; readonly router1: string | null;
  };
  /** The pods' subnets (IPv4), node1's and node2's. */
  readonly podNets: readonly [string, string];
  /** MAC addresses of the tunnel devices of node1, node2 (and node3): fixed so FDB and neighbour entries can name them. */
  readonly macs: readonly [string, string, string];
  /** MAC addresses of pod1's and pod2's eth0 (fixed: the L2 overlays' FDB entries name them). */
  readonly podMacs: readonly [string, string];
}

interface Plan {
  pod1: string; pod2: string; gw1: string; gw2: string; net1: string; net2: string; podNet1: string; podNet2: string;
  pod1v6: string; pod2v6: string; gw1v6: string; gw2v6: string; podNet1v6: string; podNet2v6: string;
  ul1: string; ul2: string; ul1v6: string; ul2v6: string;
  ov1: string; ov2: string; ov1v6: string; ov2v6: string;
  /** Routed underlay: node2's link and the router's two addresses. */
  ul2routed: string; r1: string; r2: string; ulNet1: string; ulNet2: string;
  /** Third node's link. */
  n1l3: string; ul3: string; net3: string;
}

/** HOPTRACE_TEST_ADDRESS_BASE: engineers sharing a machine keep their labs' addresses apart (like HOPTRACE_TEST_PREFIX). */
function defaultBase(): number | undefined {
  const v = process.env.HOPTRACE_TEST_ADDRESS_BASE;
  return v === undefined || v === '' ? undefined : Number(v);
}

function plan(asked: number | undefined): Plan {
  const base = asked ?? defaultBase();
  const v4 = (pods: string, under: string): Plan => {
    const v6 = base === undefined ? { p: 'fd42', u: 'fd77' } : { p: `fd${String(base).slice(-2)}`, u: `fd${String(base).slice(-2)}:77` };
    return {
      pod1: `${pods}.1.10`, pod2: `${pods}.2.10`, gw1: `${pods}.1.1`, gw2: `${pods}.2.1`, net1: `${pods}.1.0`, net2: `${pods}.2.0`,
      podNet1: `${pods}.1.0/24`, podNet2: `${pods}.2.0/24`,
      pod1v6: `${v6.p}:1::10`, pod2v6: `${v6.p}:2::10`, gw1v6: `${v6.p}:1::1`, gw2v6: `${v6.p}:2::1`, podNet1v6: `${v6.p}:1::/64`, podNet2v6: `${v6.p}:2::/64`,
      ul1: `${under}.1`, ul2: `${under}.2`, ul1v6: `${v6.u}::1`, ul2v6: `${v6.u}::2`,
      ov1: `${pods}.255.1`, ov2: `${pods}.255.2`, ov1v6: `${v6.p}:255::1`, ov2v6: `${v6.p}:255::2`,
      ul2routed: base === undefined ? '10.77.1.2' : `10.${base}.78.2`, r1: `${under}.254`, r2: base === undefined ? '10.77.1.254' : `10.${base}.78.254`,
      ulNet1: `${under}.0/24`, ulNet2: base === undefined ? '10.77.1.0/24' : `10.${base}.78.0/24`,
      n1l3: base === undefined ? '10.77.2.1' : `10.${base}.79.1`, ul3: base === undefined ? '10.77.2.3' : `10.${base}.79.3`, net3: `${pods}.3.0`,
    };
  };
  if (base === undefined) return v4('10.42', '10.77.0');
  if (!Number.isInteger(base) || base < 0 || base > 255) throw new Error(`overlay lab addressBase must be 0-255, got ${base}`);
  return v4(`10.${base}`, `10.${base}.77`);
}

/** MAC addresses of the tunnel devices, fixed so flannel-style FDB/neighbour entries can name them. */
const MAC = { 1: '02:42:77:00:00:01', 2: '02:42:77:00:00:02', 3: '02:42:77:00:00:03' } as const;
const POD_MAC = { 1: '02:42:78:00:00:01', 2: '02:42:78:00:00:02' } as const;

function isL2(kind: OverlayKind): boolean {
  return kind === 'vxlan-bridge' || kind === 'vxlan-bridge-flood';
}

/** pod2's address: in pod1's subnet on an L2 overlay. */
function pod2Addr(kind: OverlayKind, a: Plan): string {
  return isL2(kind) ? a.pod1.replace(/\.10$/, '.20') : a.pod2;
}

export function overlayLabFor(prefix: string, opts: OverlayOptions): OverlayLab {
  if (!/^[a-z][a-z0-9]{1,8}$/.test(prefix)) throw new Error(`overlay lab prefix must be 2-9 lowercase letters/digits, got '${prefix}'`);
  const kind = opts.kind;
  const tunnelType = kind === 'geneve' ? 'geneve' : kind === 'ipip' ? 'ipip' : 'vxlan';
  const v6underlay = kind === 'vxlan-v6underlay';
  const v6inner = kind === 'vxlan-v6inner';
  const ADDR = plan(opts.addressBase);
  const routed = opts.underlay === 'routed';
  if (routed && v6underlay) throw new Error('overlay lab: a routed underlay is IPv4 only');
  if (opts.thirdNode && kind !== 'vxlan-flannel' && !isL2(kind)) throw new Error('overlay lab: thirdNode needs vxlan-flannel or an L2 overlay');
  return {
    prefix,
    kind,
    ns: {
      node1: `${prefix}-n1`, node2: `${prefix}-n2`, pod1: `${prefix}-p1`, pod2: `${prefix}-p2`,
      ...(routed ? { router: `${prefix}-r` } : {}), ...(opts.thirdNode ? { node3: `${prefix}-n3` } : {}),
    },
    tunnel: tunnelType === 'vxlan' ? 'vx0' : tunnelType === 'geneve' ? 'gn0' : 'tun0',
    tunnelType,
    vni: tunnelType === 'ipip' ? null : 42,
    dstport: tunnelType === 'vxlan' ? 4789 : tunnelType === 'geneve' ? 6081 : null,
    addr: {
      pod1: ADDR.pod1, pod2: pod2Addr(kind, ADDR), pods1: ADDR.podNet1, pods2: isL2(kind) ? ADDR.podNet1 : ADDR.podNet2,
      pod1v6: v6inner ? ADDR.pod1v6 : null, pod2v6: v6inner ? ADDR.pod2v6 : null,
      ul1: v6underlay ? ADDR.ul1v6 : ADDR.ul1, ul2: v6underlay ? ADDR.ul2v6 : routed ? ADDR.ul2routed : ADDR.ul2,
      ul3: opts.thirdNode ? ADDR.ul3 : null, router1: routed ? ADDR.r1 : null,
    },
    podNets: [ADDR.podNet1, isL2(kind) ? ADDR.podNet1 : ADDR.podNet2],
    macs: [MAC[1], MAC[2], MAC[3]],
    podMacs: [POD_MAC[1], POD_MAC[2]],
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
  const ADDR = plan(opts.addressBase);
  const v6underlay = lab.kind === 'vxlan-v6underlay';
  const v6inner = lab.kind === 'vxlan-v6inner';
  for (const n of Object.values(ns)) {
    await ip(null, 'netns', 'add', n);
    await ip(n, 'link', 'set', 'lo', 'up');
  }
  for (const n of [ns.node1, ns.node2, ...(ns.router ? [ns.router] : []), ...(ns.node3 ? [ns.node3] : [])]) {
    await inNs(n, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    await inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
  }
  for (const n of Object.values(ns)) {
    // No DAD delays: IPv6 addresses are usable at once.
    await inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0');
    await inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0');
  }
  // Underlay.
  if (ns.router) {
    // node1 ul0 ─ u1 [router] u2 ─ ul0 node2, each node routing the other's link through it.
    await ip(null, 'link', 'add', 'ul0', 'netns', ns.node1, 'type', 'veth', 'peer', 'name', 'u1', 'netns', ns.router);
    await ip(null, 'link', 'add', 'ul0', 'netns', ns.node2, 'type', 'veth', 'peer', 'name', 'u2', 'netns', ns.router);
    for (const [n, dev, a] of [[ns.node1, 'ul0', ADDR.ul1], [ns.router, 'u1', ADDR.r1], [ns.node2, 'ul0', ADDR.ul2routed], [ns.router, 'u2', ADDR.r2]] as const) {
      await ip(n, 'addr', 'add', `${a}/24`, 'dev', dev);
      await ip(n, 'link', 'set', dev, 'up');
    }
    await ip(ns.node1, 'route', 'add', ADDR.ulNet2, 'via', ADDR.r1, 'dev', 'ul0');
    await ip(ns.node2, 'route', 'add', ADDR.ulNet1, 'via', ADDR.r2, 'dev', 'ul0');
  } else {
    await ip(null, 'link', 'add', 'ul0', 'netns', ns.node1, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', ns.node2);
    for (const [n, a4, a6] of [[ns.node1, ADDR.ul1, ADDR.ul1v6], [ns.node2, ADDR.ul2, ADDR.ul2v6]] as const) {
      if (v6underlay) await ip(n, 'addr', 'add', `${a6}/64`, 'dev', 'ul0', 'nodad');
      else await ip(n, 'addr', 'add', `${a4}/24`, 'dev', 'ul0');
      await ip(n, 'link', 'set', 'ul0', 'up');
    }
  }
  if (ns.node3) {
    await ip(null, 'link', 'add', 'ul1', 'netns', ns.node1, 'type', 'veth', 'peer', 'name', 'ul1', 'netns', ns.node3);
    for (const [n, a] of [[ns.node1, ADDR.n1l3], [ns.node3, ADDR.ul3]] as const) {
      await ip(n, 'addr', 'add', `${a}/24`, 'dev', 'ul1');
      await ip(n, 'link', 'set', 'ul1', 'up');
    }
    // A flannel node of the same VNI: its own /32, and the way back to node1's pods.
    await ip(ns.node3, 'link', 'add', 'vx0', 'address', MAC[3], 'type', 'vxlan', 'id', '42', 'local', ADDR.ul3, 'dev', 'ul1', 'dstport', '4789', 'nolearning');
    await ip(ns.node3, 'addr', 'add', `${ADDR.net3}/32`, 'dev', 'vx0');
    await ip(ns.node3, 'link', 'set', 'vx0', 'up');
  }
  if (isL2(lab.kind)) {
    await l2OverlayUp(lab, opts);
    return;
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
    const remotePods = s.remote === 1 ? ADDR.podNet1 : ADDR.podNet2;
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
    if (v6inner) await ip(s.node, '-6', 'route', 'add', s.remote === 1 ? ADDR.podNet1v6 : ADDR.podNet2v6, 'via', s.remote === 1 ? ADDR.ov1v6 : ADDR.ov2v6, 'dev', t);
  }
  if (opts.nested) {
    if (lab.kind !== 'vxlan') throw new Error('overlay lab: nested needs kind vxlan');
    for (const s of sides) {
      const [me, peer] = s.local === 1 ? [ADDR.ov1, ADDR.ov2] : [ADDR.ov2, ADDR.ov1];
      const inner = (a: string): string => a.replace(/\.255\.(\d+)$/, '.254.$1');
      await ip(s.node, 'link', 'add', 'vxi', 'type', 'vxlan', 'id', '100', 'local', me, 'remote', peer, 'dev', lab.tunnel, 'dstport', '4789');
      await ip(s.node, 'addr', 'add', `${inner(me)}/24`, 'dev', 'vxi');
      await ip(s.node, 'link', 'set', 'vxi', 'up');
      await ip(s.node, 'route', 'replace', s.remote === 1 ? ADDR.podNet1 : ADDR.podNet2, 'via', inner(peer), 'dev', 'vxi');
    }
  }
  // Last: a tunnel bound to the underlay device refuses an MTU above the underlay's minus its
  // overhead, but keeps the one it has when the underlay's shrinks (a misconfigured node).
  if (opts.underlayMtu) for (const n of [ns.node1, ns.node2]) await ip(n, 'link', 'set', 'ul0', 'mtu', String(opts.underlayMtu));
}

async function bridgeCmd(ns: string, ...args: string[]): Promise<void> {
  const r = await execa('bridge', ['-n', ns, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`bridge ${args.join(' ')} in ${ns}: ${String(r.stderr).trim()}`);
}

/**
 * The L2 overlays (kinds vxlan-bridge, vxlan-bridge-flood): on each node br0 with the pod's veth
 * and vx0 as ports; both pods in one subnet. See OverlayKind for what each programs.
 */
async function l2OverlayUp(lab: OverlayLab, opts: OverlayOptions): Promise<void> {
  const { ns } = lab;
  const flood = lab.kind === 'vxlan-bridge-flood';
  const sides = [
    { i: 1 as const, node: ns.node1, pod: ns.pod1, me: lab.addr.pod1, other: lab.addr.pod2, local: lab.addr.ul1, remotes: [lab.addr.ul2, ...(lab.addr.ul3 ? [lab.addr.ul3] : [])], peerMac: lab.podMacs[1] },
    { i: 2 as const, node: ns.node2, pod: ns.pod2, me: lab.addr.pod2, other: lab.addr.pod1, local: lab.addr.ul2, remotes: [lab.addr.ul1], peerMac: lab.podMacs[0] },
  ];
  for (const s of sides) {
    await ip(s.node, 'link', 'add', 'br0', 'type', 'bridge');
    await ip(s.node, 'link', 'set', 'br0', 'up');
    // No IPv6 in the pods: their router solicitations and MLD reports would flood and teach
    // every VTEP the pods' MACs before a test's first datagram (which must be an unknown unicast).
    if (flood) await inNs(s.pod, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    await ip(s.node, 'link', 'add', 'vp0', 'type', 'veth', 'peer', 'name', 'eth0', 'address', POD_MAC[s.i], 'netns', s.pod);
    await ip(s.node, 'link', 'set', 'vp0', 'master', 'br0');
    await ip(s.node, 'link', 'set', 'vp0', 'up');
    // The vxlan port's MTU (1450): the pods' too, as overlay drivers set it.
    await ip(s.pod, 'link', 'set', 'eth0', 'mtu', '1450');
    await ip(s.pod, 'addr', 'add', `${s.me}/24`, 'dev', 'eth0');
    await ip(s.pod, 'link', 'set', 'eth0', 'up');
    await ip(s.pod, 'neigh', 'replace', s.other, 'lladdr', s.peerMac, 'dev', 'eth0', 'nud', 'permanent');
    await ip(s.node, 'link', 'add', 'vx0', 'address', MAC[s.i], 'type', 'vxlan', 'id', '42', 'local', s.local, 'dev', 'ul0', 'dstport', '4789', ...(flood ? [] : ['nolearning']));
    if (opts.tunnelMtu) await ip(s.node, 'link', 'set', 'vx0', 'mtu', String(opts.tunnelMtu));
    await ip(s.node, 'link', 'set', 'vx0', 'master', 'br0');
    await ip(s.node, 'link', 'set', 'vx0', 'up');
    if (flood) {
      for (const r of s.remotes) await bridgeCmd(s.node, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', r);
    } else {
      await bridgeCmd(s.node, 'fdb', 'append', s.peerMac, 'dev', 'vx0', 'dst', s.remotes[0] as string);
      await bridgeCmd(s.node, 'fdb', 'add', s.peerMac, 'dev', 'vx0', 'master', 'static');
    }
  }
}

/** Points node1's vx0 FDB entry for pod2's MAC (L2 overlay, vxlan-bridge) at `dst`: a wrong VTEP. */
export async function overlayMisdirectPod(lab: OverlayLab, dst: string): Promise<void> {
  const mac = lab.podMacs[1];
  await bridgeCmd(lab.ns.node1, 'fdb', 'del', mac, 'dev', 'vx0', 'dst', lab.addr.ul2);
  await bridgeCmd(lab.ns.node1, 'fdb', 'append', mac, 'dev', 'vx0', 'dst', dst);
}

/** Sends node1's FDB entry for node2's vx0 MAC to `dst` instead (flannel-style lab): a wrong FDB entry. */
export async function overlayMisdirect(lab: OverlayLab, dst: string): Promise<void> {
  const mac = lab.macs[1];
  for (const args of [['fdb', 'del', mac, 'dev', lab.tunnel, 'dst', lab.addr.ul2], ['fdb', 'append', mac, 'dev', lab.tunnel, 'dst', dst]]) {
    const r = await execa('bridge', ['-n', lab.ns.node1, ...args], { reject: false });
    if (r.exitCode !== 0) throw new Error(`bridge ${args.join(' ')} in ${lab.ns.node1}: ${String(r.stderr).trim()}`);
  }
}

export async function overlayLabDown(lab: OverlayLab): Promise<void> {
  for (const n of Object.values(lab.ns)) await execa('ip', ['netns', 'del', n], { reject: false });
}

/**
 * `hoptrace trace --json --filter FILTER` while `traffic` runs (and 2.5 s after, for the last
 * frees): the packets with a hop in the lab's namespaces, and the summary line (for diagnostics).
 * `readyMs`: how long the trace may take to attach (startReady's default 60 s).
 */
export async function traceOverlay(lab: OverlayLab, filter: string, traffic: () => Promise<unknown>, readyMs?: number): Promise<{ packets: Packet[]; summary: string | undefined }> {
  const { child } = await startTrace(['--json', '--filter', filter], {}, readyMs);
  try {
    await traffic();
    await new Promise((r) => setTimeout(r, 2500));
  } finally {
    child.kill('SIGINT');
  }
  const r = await child;
  if (r.exitCode !== 0) throw new Error(`trace exited ${r.exitCode}: ${String(r.stderr)}`);
  const lines = String(r.stdout).split('\n');
  const mine = new Set(Object.values(lab.ns));
  const packets = lines.filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
    .filter((p) => p.hops.some((h) => h.ns !== null && mine.has(h.ns)));
  return { packets, summary: lines.find((l) => l.includes('"summary"')) };
}

/**
 * One overlay lab for a test file's describe block (beforeAll/afterAll), with a UDP echo server
 * on pod2:`echoPort`; `enabled` false (a skipped block) builds nothing.
 */
export function useOverlayLab(tag: string, opts: OverlayOptions, echoPort: number, enabled = true): OverlayLab {
  const lab = overlayLabFor(randomPrefix(tag).slice(0, 8), opts);
  let echo: Server | null = null;
  beforeAll(async () => {
    if (!enabled) return;
    await overlayLabUp(lab, opts);
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, echoPort);
  }, 60_000);
  afterAll(async () => {
    if (!enabled) return;
    await echo?.stop();
    await overlayLabDown(lab);
  });
  return lab;
}

/** A path's hops as ns/ifname/event, leaving out rx and consume (the expected path has neither). */
export function pathSpots(hops: readonly { ns: string | null; ifname: string; event: string }[]): string[] {
  return hops.filter((h) => h.event !== 'rx' && h.event !== 'consume').map((h) => `${h.ns}/${h.ifname}/${h.event}`);
}
