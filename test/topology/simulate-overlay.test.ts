/**
 * The expected path across a tunnel (issue 14), on hand-written models shaped like the overlay
 * lab (test/helpers/overlay-lab.ts): into the tunnel device with its encap, across the underlay
 * as the outer packet (routes and filters of the underlay's namespaces), out of the far node's
 * tunnel device with its decap, on to the pod; and what stops it on the way.
 */
import { describe, it, expect } from 'vitest';
import { TopoBuilder } from './builder.js';
import { simulatePath } from '../../shared/topology/simulate.js';
import type { ExpectedPath } from '../../shared/topology/simulate.js';
import { comparePaths, flowFromPacket } from '../../shared/topology/compare.js';
import { formatPath } from '../../shared/topology/format.js';
import type { Hop, Packet } from '../../shared/packet.js';

const MAC1 = '02:42:77:00:00:01';
const MAC2 = '02:42:77:00:00:02';
const MAC3 = '02:42:77:00:00:03';

type Kind = 'static' | 'flannel' | 'ipip';

/** Two nodes on an underlay veth (10.163.77.1 ↔ .2), a pod behind each node's bridge, a tunnel between. */
function overlay(kind: Kind, opts: { routedUnderlay?: boolean; node3?: boolean } = {}): TopoBuilder {
  const b = new TopoBuilder().ns('n1', { forward: true }).ns('n2', { forward: true }).ns('p1').ns('p2');
  const ul2 = opts.routedUnderlay ? '10.163.78.2' : '10.163.77.2';
  if (opts.routedUnderlay) {
    // node1 ─ router ─ node2: the router forwards the outer packets.
    b.ns('r', { forward: true })
      .veth(['n1', 'ul0', ['10.163.77.1/24']], ['r', 'u1', ['10.163.77.254/24']])
      .veth(['n2', 'ul0', ['10.163.78.2/24']], ['r', 'u2', ['10.163.78.254/24']])
      .route('n1', '10.163.78.0/24', { via: '10.163.77.254', dev: 'ul0' })
      .route('n2', '10.163.77.0/24', { via: '10.163.78.254', dev: 'ul0' });
  } else {
    b.veth(['n1', 'ul0', ['10.163.77.1/24']], ['n2', 'ul0', ['10.163.77.2/24']]);
  }
  for (const [n, p, i] of [['n1', 'p1', 1], ['n2', 'p2', 2]] as const) {
    b.bridge(n, 'br0', [`10.163.${i}.1/24`])
      .veth([p, 'eth0', [`10.163.${i}.10/24`]], [n, 'vp0', [], 'br0'])
      .route(p, 'default', { via: `10.163.${i}.1`, dev: 'eth0' });
  }
  const locals = { n1: '10.163.77.1', n2: ul2 };
  if (kind === 'ipip') {
    b.tunnel('n1', 'tun0', { type: 'ipip', local: locals.n1, remote: locals.n2, underlay: 'ul0' })
      .tunnel('n2', 'tun0', { type: 'ipip', local: locals.n2, remote: locals.n1, underlay: 'ul0' })
      .route('n1', '10.163.2.0/24', { dev: 'tun0' })
      .route('n2', '10.163.1.0/24', { dev: 'tun0' });
    return b;
  }
  if (kind === 'static') {
    b.tunnel('n1', 'vx0', { type: 'vxlan', vni: 42, local: locals.n1, remote: locals.n2, dstport: 4789, underlay: 'ul0', learning: true }, ['10.163.255.1/24'], { mac: MAC1 })
      .tunnel('n2', 'vx0', { type: 'vxlan', vni: 42, local: locals.n2, remote: locals.n1, dstport: 4789, underlay: 'ul0', learning: true }, ['10.163.255.2/24'], { mac: MAC2 })
      .route('n1', '10.163.2.0/24', { via: '10.163.255.2', dev: 'vx0' })
      .route('n2', '10.163.1.0/24', { via: '10.163.255.1', dev: 'vx0' });
    return b;
  }
  // flannel: no remote, no learning; per peer a route via its network address onlink, a permanent
  // neighbour entry with the peer vx0's MAC, an FDB entry sending that MAC to the peer node.
  b.tunnel('n1', 'vx0', { type: 'vxlan', vni: 42, local: locals.n1, dstport: 4789, underlay: 'ul0', learning: false }, ['10.163.1.0/32'], { mac: MAC1 })
    .tunnel('n2', 'vx0', { type: 'vxlan', vni: 42, local: locals.n2, dstport: 4789, underlay: 'ul0', learning: false }, ['10.163.2.0/32'], { mac: MAC2 })
    .route('n1', '10.163.2.0/24', { via: '10.163.2.0', dev: 'vx0' })
    .route('n2', '10.163.1.0/24', { via: '10.163.1.0', dev: 'vx0' })
    .neigh('n1', '10.163.2.0', 'vx0', MAC2, 'PERMANENT')
    .neigh('n2', '10.163.1.0', 'vx0', MAC1, 'PERMANENT')
    .tunnelFdb('n1', MAC2, 'vx0', locals.n2)
    .tunnelFdb('n2', MAC1, 'vx0', locals.n1);
  if (opts.node3) {
    // A third node on node1's second underlay link, with a vxlan device of the same VNI.
    b.ns('n3', { forward: true })
      .veth(['n1', 'ul1', ['10.163.79.1/24']], ['n3', 'ul1', ['10.163.79.3/24']])
      .tunnel('n3', 'vx0', { type: 'vxlan', vni: 42, local: '10.163.79.3', dstport: 4789, underlay: 'ul1', learning: false }, ['10.163.3.0/32'], { mac: MAC3 });
  }
  return b;
}

const udp = { from: 'p1', dst: '10.163.2.10', proto: 'udp', sport: 40000, dport: 5433 } as const;

function spots(path: ExpectedPath): string[] {
  return path.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`);
}

const ACROSS = ['p1/eth0/xmit', 'n1/vp0/recv', 'n1/br0/recv', 'n1/vx0/xmit', 'n1/ul0/xmit', 'n2/ul0/recv', 'n2/vx0/recv', 'n2/br0/xmit', 'n2/vp0/xmit', 'p2/eth0/recv'];

/** Observed hops as the probes would show them for an expected path (the kernel doing what the model says). */
function observedFrom(path: ExpectedPath, edit: (h: Hop, i: number) => Hop | null = (h) => h): Hop[] {
  const out: Hop[] = [];
  path.hops.forEach((e, i) => {
    const h: Hop = {
      t: i, event: e.event, netns: e.netns, ns: e.ns, ifname: e.ifname, ifindex: e.ifindex, src: e.src, dst: e.dst, sport: e.sport, dport: e.dport,
      cpu: 0, len: 60, ipId: 1, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null,
      ...(e.encap ? { encap: e.encap } : {}), ...(e.outer ? { outer: { ...e.outer, sport: 51234 } } : {}), ...(e.decap ? { decap: e.decap } : {}),
    };
    const x = edit(h, i);
    if (x) out.push(x);
  });
  return out;
}

describe('expected path across a vxlan tunnel', () => {
  it.each<[Kind, string]>([['static', 'default FDB entry 00:00:00:00:00:00 dst 10.163.77.2'], ['flannel', `FDB entry ${MAC2} dst 10.163.77.2`]])('%s: pod to pod through both nodes, encap, outer and decap on the hops', (kind, via) => {
    const path = simulatePath(overlay(kind).build(), udp);
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual(ACROSS);
    expect(path.guess, path.notes.join('; ')).toBe(kind === 'static');
    // Every hop shows the inner tuple.
    for (const h of path.hops) expect([h.src, h.dst, h.dport]).toEqual(['10.163.1.10', '10.163.2.10', 5433]);
    const enc = path.hops.find((h) => h.encap);
    expect(`${enc?.ns}/${enc?.ifname}/${enc?.event}`).toBe('n1/vx0/xmit');
    expect(enc?.encap).toEqual({ type: 'vxlan', vni: 42, outer: { family: 4, proto: 17, src: '10.163.77.1', dst: '10.163.77.2', sport: 0, dport: 4789 } });
    expect(enc?.tunnelVia).toBe(via);
    expect(enc?.tunnelFault).toBeUndefined();
    expect(path.hops.filter((h) => h.outer).map((h) => `${h.ns}/${h.ifname}`)).toEqual(['n1/ul0', 'n2/ul0']);
    const dec = path.hops.find((h) => h.decap);
    expect(`${dec?.ns}/${dec?.ifname}/${dec?.event}`).toBe('n2/vx0/recv');
    expect(dec?.decap?.vni).toBe(42);
    // The static lab has not resolved its overlay neighbour yet: the path says it assumed it.
    if (kind === 'static') expect(path.notes.join('\n')).toMatch(/no neighbour entry for 10\.163\.255\.2 on vx0/);
  });

  it('the static remote with its neighbour learned: no guess', () => {
    const topo = overlay('static').neigh('n1', '10.163.255.2', 'vx0', MAC2).tunnelFdb('n1', MAC2, 'vx0', '10.163.77.2').build();
    const path = simulatePath(topo, udp);
    expect([path.fate, path.guess]).toEqual(['delivered', false]);
    expect(path.hops.find((h) => h.encap)?.tunnelVia).toBe(`FDB entry ${MAC2} dst 10.163.77.2`);
  });

  it('the reply goes back the same way', () => {
    const path = simulatePath(overlay('flannel').build(), { from: 'p2', dst: '10.163.1.10', proto: 'udp', sport: 5433, dport: 40000 });
    expect(path.fate).toBe('delivered');
    expect(path.hops.find((h) => h.encap)?.encap?.outer).toMatchObject({ src: '10.163.77.2', dst: '10.163.77.1' });
    expect(path.hops.at(-1)?.ns).toBe('p1');
  });

  it('an INPUT drop of UDP 4789 on the far node: dropped on its underlay device, by that rule', () => {
    const topo = overlay('flannel').iptables('n2', '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 4789 -j DROP\nCOMMIT\n').build();
    const path = simulatePath(topo, udp);
    expect(path.fate).toBe('dropped');
    expect(spots(path)).toEqual([...ACROSS.slice(0, 6), 'n2/ul0/drop']);
    expect(path.drop).toMatchObject({ ns: 'n2', ifname: 'ul0', hook: 'INPUT', kernelReason: 'NETFILTER_DROP', rule: '-A INPUT -p udp -m udp --dport 4789 -j DROP' });
    // The drop hop shows the pod's packet and the outer datagram the rule matched.
    const last = path.hops.at(-1);
    expect([last?.dst, last?.dport, last?.outer?.dst, last?.outer?.dport]).toEqual(['10.163.2.10', 5433, '10.163.77.2', 4789]);
    expect(formatPath(path)).toMatch(/INPUT filter INPUT: drop\s+\[-A INPUT -p udp -m udp --dport 4789 -j DROP\]/);
  });

  it('a FORWARD drop of UDP 4789 on a router between the nodes, and the path through it otherwise', () => {
    const ok = simulatePath(overlay('flannel', { routedUnderlay: true }).build(), udp);
    expect(ok.fate, ok.reason).toBe('delivered');
    expect(spots(ok)).toEqual([...ACROSS.slice(0, 5), 'r/u1/recv', 'r/u2/xmit', 'n2/ul0/recv', ...ACROSS.slice(6)]);
    expect(ok.hops.find((h) => h.ns === 'r' && h.event === 'xmit')?.outer).toMatchObject({ src: '10.163.77.1', dst: '10.163.78.2', dport: 4789 });
    const topo = overlay('flannel', { routedUnderlay: true }).iptables('r', '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p udp -m udp --dport 4789 -j DROP\nCOMMIT\n').build();
    const path = simulatePath(topo, udp);
    expect(path.fate).toBe('dropped');
    expect(path.drop).toMatchObject({ ns: 'r', ifname: 'u1', hook: 'FORWARD', rule: '-A FORWARD -p udp -m udp --dport 4789 -j DROP' });
  });

  it('the underlay NAT shows on the outer headers, not on the inner tuple', () => {
    const topo = overlay('flannel', { routedUnderlay: true }).iptables('r', '*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o u2 -j MASQUERADE\nCOMMIT\n').build();
    const path = simulatePath(topo, udp);
    // The far node sees the router's address as the outer source, and still decapsulates.
    expect(path.fate, path.reason).toBe('delivered');
    expect(path.hops.find((h) => h.ns === 'n2' && h.ifname === 'ul0')?.outer?.src).toBe('10.163.78.254');
    for (const h of path.hops) expect([h.src, h.dst]).toEqual(['10.163.1.10', '10.163.2.10']);
  });

  it('no vxlan device with that VNI on the far node: dropped there (VXLAN_VNI_NOT_FOUND)', () => {
    const b = overlay('flannel');
    const n2 = b.get('n2');
    n2.interfaces = n2.interfaces.map((i) => (i.name === 'vx0' && i.tunnel ? { ...i, tunnel: { ...i.tunnel, vni: 43 } } : i));
    const path = simulatePath(b.build(), udp);
    expect(path.fate).toBe('dropped');
    expect(path.drop).toMatchObject({ ns: 'n2', ifname: 'ul0', kernelReason: 'VXLAN_VNI_NOT_FOUND' });
    expect(path.reason).toMatch(/no vxlan device with VNI 42 in n2 \(on UDP 4789: vx0 VNI 43\)/);
  });

  it('no vxlan device on the far node at all (or down): no socket on the port', () => {
    const b = overlay('flannel');
    const n2 = b.get('n2');
    n2.interfaces = n2.interfaces.map((i) => (i.name === 'vx0' ? { ...i, up: false } : i));
    const path = simulatePath(b.build(), udp);
    expect(path.drop).toMatchObject({ ns: 'n2', ifname: 'ul0', kernelReason: 'NO_SOCKET' });
  });

  it('no FDB entry and no remote: freed on the tunnel device (NO_TX_TARGET)', () => {
    const b = overlay('flannel');
    b.get('n1').tunnelFdb = [];
    // Nothing says which node the frame is for either: the far vx0 does not own the next hop.
    const n2 = b.get('n2');
    n2.interfaces = n2.interfaces.map((i) => (i.name === 'vx0' ? { ...i, addrs: [], mac: '02:42:77:00:00:99' } : i));
    const path = simulatePath(b.build(), udp);
    expect(path.fate).toBe('dropped');
    expect(spots(path).slice(-2)).toEqual(['n1/vx0/xmit', 'n1/vx0/drop']);
    expect(path.drop?.kernelReason).toBe('NO_TX_TARGET');
  });

  it('an FDB entry pointing at the wrong node: the path goes to the node the frame is meant for, and names the entry', () => {
    const b = overlay('flannel', { node3: true });
    b.get('n1').tunnelFdb = [{ mac: MAC2, dev: 'vx0', dst: '10.163.79.3', permanent: true }];
    const topo = b.build();
    const path = simulatePath(topo, udp);
    expect(path.fate).toBe('delivered');
    expect(spots(path)).toEqual(ACROSS);
    const enc = path.hops.find((h) => h.encap);
    expect(enc?.tunnelFault).toBe(`vx0 in n1 sends ${MAC2} to 10.163.79.3 by its FDB entry ${MAC2} dst 10.163.79.3, but vx0 of n2 (10.163.77.2) has ${MAC2}: the entry points at the wrong node`);
    expect(path.notes).toContain(enc?.tunnelFault);
    expect(path.guess).toBe(false);
    // What the kernel does: to node3, which takes it out of the tunnel and frees it (the frame is for node2's MAC).
    const wrong = [
      ...path.hops.slice(0, 4),
      { ...path.hops[4], ifname: 'ul1', outer: { ...path.hops[4]?.outer, dst: '10.163.79.3' } },
    ];
    const observed = observedFrom({ ...path, hops: wrong as ExpectedPath['hops'] });
    const d = comparePaths([...observed, { ...(observed.at(-1) as Hop), event: 'recv', ns: 'n3', netns: topo.namespaces.find((n) => n.name === 'n3')?.netns ?? 0 }], path, { topology: topo });
    expect(d?.kind).toBe('path');
    expect(d?.summary).toBe(`expected to leave n1 through ul0 (xmit), left n1 through ul1 (xmit); inside the tunnel to 10.163.79.3, expected 10.163.77.2: ${enc?.tunnelFault}`);
  });

  it('an FDB entry to an address nobody has: the packet dies on node1, and the divergence names the entry', () => {
    const b = overlay('flannel');
    b.get('n1').tunnelFdb = [{ mac: MAC2, dev: 'vx0', dst: '10.163.77.9', permanent: true }];
    const topo = b.build();
    const path = simulatePath(topo, udp);
    // The neighbour of 10.163.77.9 never answers: the kernel frees the outer packet on ul0.
    const observed = observedFrom(path, (h, i) => (i < 4 ? h : i === 4 ? { ...h, event: 'drop', outer: { family: 4, proto: 17, src: '10.163.77.1', dst: '10.163.77.9', sport: 51234, dport: 4789 } } : null));
    const d = comparePaths(observed, path, { topology: topo, dropReason: 'NEIGH_FAILED' });
    expect(d?.kind).toBe('drop');
    expect(d?.summary).toMatch(/^expected to leave n1 through ul0 \(xmit\), was dropped in n1 \(reason NEIGH_FAILED\); inside the tunnel to 10\.163\.77\.9, expected 10\.163\.77\.2: vx0 in n1 sends 02:42:77:00:00:02 to 10\.163\.77\.9/);
  });

  it('observed hops that follow the expected path across the tunnel do not diverge', () => {
    const topo = overlay('flannel').build();
    const path = simulatePath(topo, udp);
    expect(comparePaths(observedFrom(path), path, { topology: topo })).toBeNull();
  });

  it('ipip: an L3 tunnel to its static remote (the kernel here has no ipip: model only)', () => {
    const path = simulatePath(overlay('ipip').build(), udp);
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual(ACROSS.map((s) => s.replace('vx0', 'tun0')));
    expect(path.hops.find((h) => h.encap)?.encap).toEqual({ type: 'ipip', vni: null, outer: { family: 4, proto: 4, src: '10.163.77.1', dst: '10.163.77.2', sport: 0, dport: 0 } });
    expect(path.hops.find((h) => h.decap)?.ifname).toBe('tun0');
  });
});

describe('the expected path across a tunnel, in words', () => {
  it('shows the encap with how the remote was chosen, the outer headers on underlay hops, the decap, and an FDB fault once', () => {
    const b = overlay('flannel', { node3: true });
    b.get('n1').tunnelFdb = [{ mac: MAC2, dev: 'vx0', dst: '10.163.79.3', permanent: true }];
    const text = formatPath(simulatePath(b.build(), udp));
    expect(text).toMatch(/n1 +vx0 +xmit .*\n +↳ encap vxlan vni 42 10\.163\.77\.1 → 10\.163\.77\.2:4789 {2}\(vx0 of n2 \(10\.163\.77\.2\) has 02:42:77:00:00:02\)\n +! vx0 in n1 sends/);
    expect(text).toMatch(/n1 +ul0 +xmit .* in tunnel 10\.163\.77\.1 → 10\.163\.77\.2:4789/);
    expect(text).toMatch(/n2 +vx0 +recv .*\n +↳ decap vxlan vni 42/);
    expect(text.match(/the entry points at the wrong node/g)).toHaveLength(1);
  });
});

describe('a packet first seen inside the tunnel (a filter that matched only the outer datagram)', () => {
  it.each([[4, 'n1/ul0/xmit'], [5, 'n2/ul0/recv']])('from observed hop %i (%s): the outer packet is followed on, the hops show the inner tuple', (from) => {
    const topo = overlay('flannel').build();
    const full = simulatePath(topo, udp);
    const hops = observedFrom(full).slice(from);
    // The probes put the encap on the first hop inside when the tunnel's transmit was not seen.
    hops[0] = { ...(hops[0] as Hop), encap: { type: 'vxlan', vni: 42, outer: hops[0]?.outer as NonNullable<Hop['outer']> } };
    const packet = { id: 'x', proto: 'udp', family: 4, src: '10.163.1.10', dst: '10.163.2.10', sport: 40000, dport: 5433, fate: 'delivered', fateBy: 'local-address', drop: null, hops, cloneOf: null } as Packet;
    const flow = flowFromPacket(packet);
    expect(flow?.tunnel?.outer).toMatchObject({ src: '10.163.77.1', dst: '10.163.77.2', sport: 51234, dport: 4789 });
    const path = simulatePath(topo, flow as NonNullable<typeof flow>);
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual(ACROSS.slice(from));
    expect(path.hops[0]?.encap?.vni).toBe(42);
    expect(path.hops.find((h) => h.decap)?.ns).toBe('n2');
    expect(comparePaths(hops, path, { topology: topo })).toBeNull();
  });
});

describe('tunnels of other families', () => {
  it('vxlan over an IPv6 underlay: the outer packet is IPv6, the far device has an IPv6 socket', () => {
    const b = new TopoBuilder().ns('n1', { forward: true }).ns('n2', { forward: true }).ns('p1').ns('p2')
      .veth(['n1', 'ul0', ['fd63:77::1/64']], ['n2', 'ul0', ['fd63:77::2/64']]);
    for (const [n, p, i] of [['n1', 'p1', 1], ['n2', 'p2', 2]] as const) {
      b.bridge(n, 'br0', [`10.163.${i}.1/24`]).veth([p, 'eth0', [`10.163.${i}.10/24`]], [n, 'vp0', [], 'br0']).route(p, 'default', { via: `10.163.${i}.1`, dev: 'eth0' });
    }
    b.tunnel('n1', 'vx0', { type: 'vxlan', vni: 42, local: 'fd63:77::1', remote: 'fd63:77::2', dstport: 4789, underlay: 'ul0' }, ['10.163.255.1/24'], { mac: MAC1 })
      .tunnel('n2', 'vx0', { type: 'vxlan', vni: 42, local: 'fd63:77::2', remote: 'fd63:77::1', dstport: 4789, underlay: 'ul0' }, ['10.163.255.2/24'], { mac: MAC2 })
      .route('n1', '10.163.2.0/24', { via: '10.163.255.2', dev: 'vx0' })
      .neigh('n1', '10.163.255.2', 'vx0', MAC2);
    const path = simulatePath(b.build(), udp);
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual(ACROSS);
    expect(path.hops.find((h) => h.encap)?.encap?.outer).toEqual({ family: 6, proto: 17, src: 'fd63:77::1', dst: 'fd63:77::2', sport: 0, dport: 4789 });
    // A far device with only an IPv4 socket on the port does not take it.
    const v4only = b.build();
    const n2 = v4only.namespaces.find((n) => n.name === 'n2');
    const patched = { ...v4only, namespaces: v4only.namespaces.map((n) => (n !== n2 ? n : { ...n, interfaces: n.interfaces.map((i) => (i.name === 'vx0' && i.tunnel ? { ...i, tunnel: { ...i.tunnel, local: '10.163.77.2', remote: null } } : i)) })) };
    expect(simulatePath(patched, udp).drop).toMatchObject({ ns: 'n2', ifname: 'ul0', kernelReason: 'NO_SOCKET' });
  });

  it('IPv6 pods over an IPv4 vxlan: the inner packet is IPv6, the outer IPv4', () => {
    const b = overlay('static');
    for (const [n, p, i] of [['n1', 'p1', 1], ['n2', 'p2', 2]] as const) {
      const ns = b.get(n);
      ns.interfaces = ns.interfaces.map((x) => (x.name === 'br0' ? { ...x, addrs: [...x.addrs, `fd63:${i}::1/64`] } : x.name === 'vx0' ? { ...x, addrs: [...x.addrs, `fd63:255::${i}/64`] } : x));
      const pod = b.get(p);
      pod.interfaces = pod.interfaces.map((x) => (x.name === 'eth0' ? { ...x, addrs: [...x.addrs, `fd63:${i}::10/64`] } : x));
      b.route(p, '::/0', { via: `fd63:${i}::1`, dev: 'eth0' }).route(n, `fd63:${3 - i}::/64`, { via: `fd63:255::${3 - i}`, dev: 'vx0' });
    }
    const path = simulatePath(b.build(), { from: 'p1', dst: 'fd63:2::10', proto: 'udp', sport: 40000, dport: 5433 });
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual(ACROSS);
    expect(path.hops.find((h) => h.encap)?.encap).toMatchObject({ type: 'vxlan', outer: { family: 4, dst: '10.163.77.2' } });
    for (const h of path.hops) expect(h.dst).toBe('fd63:2::10');
  });
});

describe('an L2 overlay: vxlan as a bridge port', () => {
  const POD1 = '02:42:78:00:00:01';
  const POD2 = '02:42:78:00:00:02';
  /** Both pods in 10.163.1.0/24, vx0 a port of each node's br0 (Docker swarm, EVPN); `fdb` programs node1's vx0. */
  function l2(fdb: (b: TopoBuilder) => TopoBuilder, opts: { node3?: boolean; podNeigh?: boolean } = {}): TopoBuilder {
    const b = new TopoBuilder().ns('n1').ns('n2').ns('p1').ns('p2')
      .veth(['n1', 'ul0', ['10.163.77.1/24']], ['n2', 'ul0', ['10.163.77.2/24']]);
    for (const [n, p, i, mac] of [['n1', 'p1', 1, MAC1], ['n2', 'p2', 2, MAC2]] as const) {
      b.bridge(n, 'br0')
        .veth([p, 'eth0', [`10.163.1.${i}0/24`]], [n, 'vp0', [], 'br0'])
        .tunnel(n, 'vx0', { type: 'vxlan', vni: 42, local: `10.163.77.${i}`, dstport: 4789, underlay: 'ul0', learning: false }, [], { mac, master: 'br0' });
    }
    if (opts.podNeigh !== false) b.neigh('p1', '10.163.1.20', 'eth0', POD2, 'PERMANENT');
    b.tunnelFdb('n2', POD1, 'vx0', '10.163.77.1');
    if (opts.node3) {
      b.ns('n3').veth(['n1', 'ul1', ['10.163.79.1/24']], ['n3', 'ul1', ['10.163.79.3/24']])
        .tunnel('n3', 'vx0', { type: 'vxlan', vni: 42, local: '10.163.79.3', dstport: 4789, underlay: 'ul1', learning: false }, [], { mac: MAC3 });
    }
    return fdb(b);
  }
  const flow = { from: 'p1', dst: '10.163.1.20', proto: 'udp', sport: 40000, dport: 5433 } as const;
  const BRIDGED = ['p1/eth0/xmit', 'n1/vp0/recv', 'n1/vx0/xmit', 'n1/ul0/xmit', 'n2/ul0/recv', 'n2/vx0/recv', 'n2/vp0/xmit', 'p2/eth0/recv'];

  it('bridges onto vx0, encapsulates to the VTEP the pod MAC\'s FDB entry names, and bridges out to the pod', () => {
    const p = simulatePath(l2((b) => b.tunnelFdb('n1', POD2, 'vx0', '10.163.77.2')).build(), flow);
    expect(p.fate, p.reason).toBe('delivered');
    expect(spots(p)).toEqual(BRIDGED);
    const enc = p.hops.find((h) => h.encap);
    expect(enc?.encap).toMatchObject({ type: 'vxlan', vni: 42, outer: { src: '10.163.77.1', dst: '10.163.77.2', dport: 4789 } });
    expect(enc?.tunnelVia).toBe(`FDB entry ${POD2} dst 10.163.77.2`);
    expect(enc?.tunnelFault).toBeUndefined();
    expect(p.hops.find((h) => h.decap)?.ns).toBe('n2');
  });

  it('an FDB entry sending the pod\'s MAC to another VTEP is a fault the path names', () => {
    const p = simulatePath(l2((b) => b.tunnelFdb('n1', POD2, 'vx0', '10.163.79.3'), { node3: true }).build(), flow);
    expect(spots(p)).toEqual(BRIDGED);
    expect(p.hops.find((h) => h.encap)?.tunnelFault).toBe(`vx0 in n1 sends ${POD2} to 10.163.79.3 by its FDB entry ${POD2} dst 10.163.79.3, but vx0 of n2 (10.163.77.2) leads to 10.163.1.20 (${POD2}) through br0: the entry points at the wrong node`);
  });

  it('the all-zeros entry with several destinations: a copy to each, the path to the one whose bridge leads there', () => {
    const p = simulatePath(l2((b) => b.tunnelFdb('n1', '00:00:00:00:00:00', 'vx0', '10.163.79.3').tunnelFdb('n1', '00:00:00:00:00:00', 'vx0', '10.163.77.2'), { node3: true }).build(), flow);
    expect(p.fate, p.reason).toBe('delivered');
    expect(spots(p)).toEqual(BRIDGED);
    const enc = p.hops.find((h) => h.encap);
    expect(enc?.tunnelCopies).toEqual(['10.163.79.3', '10.163.77.2']);
    expect(enc?.encap?.outer.dst).toBe('10.163.77.2');
    expect(enc?.tunnelVia).toBe('default FDB entry 00:00:00:00:00:00 dst 10.163.77.2');
    expect(enc?.tunnelFault).toBeUndefined();
    expect(p.notes.some((n) => n.includes('head-end replication'))).toBe(true);
    expect(formatPath(p)).toContain('a copy to each of 10.163.79.3, 10.163.77.2 (head-end replication)');
  });

  it('no MAC for the destination in any neighbour table: still the VTEP whose bridge leads there, as a guess', () => {
    const p = simulatePath(l2((b) => b.tunnelFdb('n1', '00:00:00:00:00:00', 'vx0', '10.163.77.2'), { podNeigh: false }).build(), flow);
    expect(spots(p)).toEqual(BRIDGED);
    expect(p.hops.find((h) => h.encap)?.guess?.some((g) => g.includes('is in no neighbour table'))).toBe(true);
  });
});

describe('nested tunnels: vxlan VNI 100 whose underlay is the vxlan VNI 42 overlay (overlay-lab `nested`)', () => {
  const MACI1 = '02:42:79:00:00:01';
  const MACI2 = '02:42:79:00:00:02';
  /** The static overlay, with vxi (VNI 100, remote the peer's vx0 address, bound to vx0) carrying the pods' routes. */
  function nested(): TopoBuilder {
    const b = new TopoBuilder().ns('n1', { forward: true }).ns('n2', { forward: true }).ns('p1').ns('p2')
      .veth(['n1', 'ul0', ['10.163.77.1/24']], ['n2', 'ul0', ['10.163.77.2/24']]);
    for (const [n, p, i] of [['n1', 'p1', 1], ['n2', 'p2', 2]] as const) {
      b.bridge(n, 'br0', [`10.163.${i}.1/24`])
        .veth([p, 'eth0', [`10.163.${i}.10/24`]], [n, 'vp0', [], 'br0'])
        .route(p, 'default', { via: `10.163.${i}.1`, dev: 'eth0' });
    }
    return b
      .tunnel('n1', 'vx0', { type: 'vxlan', vni: 42, local: '10.163.77.1', remote: '10.163.77.2', dstport: 4789, underlay: 'ul0', learning: true }, ['10.163.255.1/24'], { mac: MAC1 })
      .tunnel('n2', 'vx0', { type: 'vxlan', vni: 42, local: '10.163.77.2', remote: '10.163.77.1', dstport: 4789, underlay: 'ul0', learning: true }, ['10.163.255.2/24'], { mac: MAC2 })
      .tunnel('n1', 'vxi', { type: 'vxlan', vni: 100, local: '10.163.255.1', remote: '10.163.255.2', dstport: 4789, underlay: 'vx0', learning: true }, ['10.163.254.1/24'], { mac: MACI1 })
      .tunnel('n2', 'vxi', { type: 'vxlan', vni: 100, local: '10.163.255.2', remote: '10.163.255.1', dstport: 4789, underlay: 'vx0', learning: true }, ['10.163.254.2/24'], { mac: MACI2 })
      .neigh('n1', '10.163.255.2', 'vx0', MAC2).neigh('n2', '10.163.255.1', 'vx0', MAC1)
      .neigh('n1', '10.163.254.2', 'vxi', MACI2).neigh('n2', '10.163.254.1', 'vxi', MACI1)
      .route('n1', '10.163.2.0/24', { via: '10.163.254.2', dev: 'vxi' })
      .route('n2', '10.163.1.0/24', { via: '10.163.254.1', dev: 'vxi' });
  }
  const NESTED = ['p1/eth0/xmit', 'n1/vp0/recv', 'n1/br0/recv', 'n1/vxi/xmit', 'n1/vx0/xmit', 'n1/ul0/xmit', 'n2/ul0/recv', 'n2/vx0/recv', 'n2/vxi/recv', 'n2/br0/xmit', 'n2/vp0/xmit', 'p2/eth0/recv'];

  it('goes through both tunnels: each encap on its own device, each decap where it ends, the packet\'s tuple on every hop', () => {
    const path = simulatePath(nested().build(), udp);
    expect(path.fate, path.reason).toBe('delivered');
    expect(spots(path)).toEqual(NESTED);
    for (const h of path.hops) expect([h.src, h.dst, h.dport]).toEqual(['10.163.1.10', '10.163.2.10', 5433]);
    expect(path.hops.filter((h) => h.encap || h.decap).map((h) => `${h.ns}/${h.ifname}/${h.event} ${h.encap ? `encap ${h.encap.vni} ${h.encap.outer.src}>${h.encap.outer.dst}` : `decap ${h.decap?.vni}`}`)).toEqual([
      'n1/vxi/xmit encap 100 10.163.255.1>10.163.255.2', 'n1/vx0/xmit encap 42 10.163.77.1>10.163.77.2', 'n2/vx0/recv decap 42', 'n2/vxi/recv decap 100',
    ]);
    // Between the encaps (and after the first decap) the inner tunnel's outer headers; on the underlay the outer tunnel's.
    expect(path.hops.filter((h) => h.outer).map((h) => `${h.ns}/${h.ifname}/${h.event} ${h.outer?.src}>${h.outer?.dst}`)).toEqual([
      'n1/vx0/xmit 10.163.255.1>10.163.255.2', 'n1/ul0/xmit 10.163.77.1>10.163.77.2', 'n2/ul0/recv 10.163.77.1>10.163.77.2', 'n2/vx0/recv 10.163.255.1>10.163.255.2',
    ]);
    // And back.
    const back = simulatePath(nested().build(), { from: 'p2', dst: '10.163.1.10', proto: 'udp', sport: 5433, dport: 40000 });
    expect(back.fate, back.reason).toBe('delivered');
    expect(spots(back)).toEqual(['p2/eth0/xmit', 'n2/vp0/recv', 'n2/br0/recv', 'n2/vxi/xmit', 'n2/vx0/xmit', 'n2/ul0/xmit', 'n1/ul0/recv', 'n1/vx0/recv', 'n1/vxi/recv', 'n1/br0/xmit', 'n1/vp0/xmit', 'p1/eth0/recv']);
  });

  it('observed hops that follow it do not diverge', () => {
    const topo = nested().build();
    const path = simulatePath(topo, udp);
    expect(comparePaths(observedFrom(path), path, { topology: topo })).toBeNull();
  });

  it('a tunnel whose route leads back into itself is a loop, not a walk without end', () => {
    // vxi's remote routed through vxi itself.
    const topo = nested().route('n1', '10.163.255.2/32', { dev: 'vxi' }).build();
    const path = simulatePath(topo, udp);
    expect(path.fate, formatPath(path)).toBe('loop');
    expect(path.reason).toMatch(/vxi .*a tunnel loop/);
  });
});
