import { describe, expect, it } from 'vitest';
import type { Hop, Packet, OuterTuple } from '../../../shared/packet.js';
import { Stitcher, crossingKey } from '../../../shared/cluster/stitch.js';
import { buildClusterModel } from '../../../shared/cluster/model.js';
import type { Topology, NamespaceModel, NetInterface } from '../../../shared/topology/model.js';

const OUTER: OuterTuple = { family: 4, proto: 17, src: '10.168.0.1', dst: '10.168.0.2', sport: 40000, dport: 4789 };

function hop(t: number, event: Hop['event'], ns: string, ifname: string, extra: Partial<Hop> = {}): Hop {
  return {
    t, event, netns: 1, ns, ifname, ifindex: 2, src: '10.168.1.10', dst: '10.168.2.10', sport: 5000, dport: 6000,
    cpu: 0, len: 40, ipId: 777, tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null, ...extra,
  };
}

function packet(id: string, hops: Hop[], fate: Packet['fate'] = 'unknown'): Packet {
  return {
    id, proto: 'udp', family: 4, src: '10.168.1.10', dst: '10.168.2.10', sport: 5000, dport: 6000,
    fate, fateBy: fate === 'delivered' ? 'consume' : 'none', drop: null, hops, cloneOf: null,
  };
}

/** node1's piece of a pod → pod packet: leaves by the underlay with the tunnel's outer headers. */
function leaving(t0: number, ipId = 777): Packet {
  return packet('a', [
    hop(t0, 'xmit', 'n1-pod', 'eth0', { ipId }),
    hop(t0 + 1000, 'rx', 'n1-node', 'vp0', { ipId }),
    hop(t0 + 3000, 'xmit', 'n1-node', 'vx0', { ipId }),
    hop(t0 + 5000, 'xmit', 'n1-node', 'ul0', { ipId, outer: OUTER }),
  ]);
}

function entering(t0: number, ipId = 777): Packet {
  return packet('b', [
    hop(t0, 'rx', 'n2-node', 'ul0', { ipId, outer: OUTER }),
    hop(t0 + 2000, 'recv', 'n2-node', 'vx0', { ipId }),
    hop(t0 + 4000, 'xmit', 'n2-node', 'vp0', { ipId }),
    hop(t0 + 6000, 'consume', 'n2-pod', '', { ipId }),
  ], 'delivered');
}

describe('Stitcher', () => {
  it('joins the piece leaving one node with the one entering another, in either arrival order', () => {
    for (const order of ['leave-first', 'enter-first'] as const) {
      const s = new Stitcher({ holdMs: 100 });
      const [a, b] = [leaving(1_000_000), entering(1_010_000)];
      if (order === 'leave-first') { s.push('node1', a, 0); s.push('node2', b, 10); }
      else { s.push('node2', b, 0); s.push('node1', a, 10); }
      expect(s.drain(50)).toEqual([]); // still held
      const out = s.drain(200);
      expect(out).toHaveLength(1);
      const p = out[0]!;
      expect(p.nodes).toEqual(['node1', 'node2']);
      expect(p.hops.map((h) => h.node)).toEqual(['node1', 'node1', 'node1', 'node1', 'node2', 'node2', 'node2', 'node2']);
      expect(p.fate).toBe('delivered');
      expect(p.stitches).toEqual([{ from: 'node1', to: 'node2', leave: 3, enter: 4, gapNs: expect.any(Number), via: 'tunnel' }]);
    }
  });

  it('gives a group out without the hold once no piece can join it, and holds one that may still grow', () => {
    const s = new Stitcher({ holdMs: 2000 });
    // Into node2's pod this time: its last hops are the pod's receive and the socket's consume.
    const b = entering(1_010_000);
    const inPod = { ...b, hops: [...b.hops.slice(0, 3), hop(1_015_000, 'recv', 'n2-pod', 'eth0'), b.hops[3]!] };
    s.push('node1', leaving(1_000_000), 0);
    expect(s.drain(10)).toEqual([]); // waits for the piece entering node2
    s.push('node2', inPod, 20);
    const out = s.drain(21);
    expect(out.map((p) => p.nodes)).toEqual([['node1', 'node2']]);
    // A piece that left by a transmit (the packet's last hop in view) still waits its 2 s.
    s.push('node1', leaving(2_000_000, 778), 30);
    expect(s.drain(1000)).toEqual([]);
    expect(s.drain(2031).map((p) => p.nodes)).toEqual([['node1']]);
  });

  it('carries each piece\'s notes and netfilter steps, tagged with their node, after the same hops', () => {
    const s = new Stitcher({ holdMs: 0 });
    const note = (t: number, afterHop: number, ns: string) => ({ kind: 'fib' as const, t, cpu: 0, skb: 'ff', netns: 1, data: { dst: '10.168.2.10' }, ns, afterHop });
    const step = (afterHop: number, ns: string) => ({
      ns, netns: 1, hook: 'forward' as const, family: 'inet', table: 't', chain: 'c', type: 'rule' as const, rule: 'accept', handle: 2, verdict: 'accept', nat: null, afterHop,
    });
    const a = { ...leaving(1_000_000), notes: [note(1_001_500, 1, 'n1-node')], netfilter: [step(1, 'n1-node')] };
    // node2's first step came before its first hop (-1): it follows node1's last hop in the whole.
    const b = { ...entering(1_010_000), notes: [note(1_012_500, 1, 'n2-node')], netfilter: [step(-1, 'n2-node')] };
    s.push('node1', a, 0);
    s.push('node2', b, 0);
    const [p] = s.drain(1);
    expect(p?.nodes).toEqual(['node1', 'node2']);
    expect(p?.notes?.map((n) => [n.node, n.afterHop, p.hops[n.afterHop]?.node, n.tNode])).toEqual([['node1', 1, 'node1', 1_001_500], ['node2', 5, 'node2', 1_012_500]]);
    expect(p?.netfilter?.map((v) => [v.node, v.afterHop])).toEqual([['node1', 1], ['node2', 3]]);
    // A packet without depth gets none.
    const plain = new Stitcher({ holdMs: 0 });
    plain.push('node1', leaving(1_000_000), 0);
    expect(plain.drain(1)[0]).not.toHaveProperty('notes');
  });

  it('keeps pieces apart when the IP id differs, and gives each out alone', () => {
    const s = new Stitcher({ holdMs: 0 });
    s.push('node1', leaving(1_000_000, 1), 0);
    s.push('node2', entering(1_010_000, 2), 0);
    const out = s.drain(1);
    expect(out.map((p) => p.nodes)).toEqual([['node1'], ['node2']]);
    expect(s.joins).toBe(0);
  });

  it('does not join pieces of one node, nor pieces further apart than the window', () => {
    const s = new Stitcher({ holdMs: 0, windowNs: 1_000_000 });
    s.push('node1', leaving(1_000_000), 0);
    s.push('node1', entering(1_010_000), 0);
    s.push('node2', entering(9_000_000), 0);
    expect(s.drain(1).every((p) => p.nodes.length === 1)).toBe(true);
  });

  it('estimates a node clock 2 s ahead from pairs both ways and puts hops on the reference clock', () => {
    const s = new Stitcher({ holdMs: 0 });
    const skew = 2_000_000_000;
    const wire = 30_000;
    // node1 → node2 (node2's clock reads skew more) and node2 → node1.
    for (let i = 0; i < 5; i++) {
      const t = 1e9 + i * 1e7;
      s.push('node1', leaving(t, 100 + i), 0);
      s.push('node2', entering(t + 5000 + wire + skew, 100 + i), 0);
      const back: Packet = { ...leaving(t + skew + 5e6, 200 + i), hops: leaving(t + skew + 5e6, 200 + i).hops.map((h) => ({ ...h, ns: 'n2' })) };
      s.push('node2', back, 0);
      s.push('node1', entering(t + 5e6 + 5000 + wire, 200 + i), 0);
    }
    const out = s.drain(1);
    expect(out).toHaveLength(10);
    expect(out.every((p) => p.nodes.length === 2)).toBe(true);
    const off = s.offsets();
    expect(off[0]).toMatchObject({ node: 'node1', offsetNs: 0, method: 'reference' });
    expect(off[1]).toMatchObject({ node: 'node2', method: 'two-way', samples: 10 });
    expect(off[1]!.offsetNs).toBe(skew);
    // On the reference clock, the entering hop comes one wire time after the leaving hop.
    const p = out.find((x) => x.nodes[0] === 'node1')!;
    const st = p.stitches[0]!;
    expect(p.hops[st.enter]!.t - p.hops[st.leave]!.t).toBe(wire);
    expect(p.hops[st.enter]!.tNode - p.hops[st.enter]!.t).toBe(skew);
  });

  it('keys on fields that survive the crossing', () => {
    const a = leaving(0).hops[3]!;
    const b = entering(0).hops[0]!;
    expect(crossingKey('udp', a)).toBe(crossingKey('udp', b));
    expect(crossingKey('udp', { ...a, len: 41 })).not.toBe(crossingKey('udp', b));
  });
});

function iface(name: string, addrs: string[], extra: Partial<NetInterface> = {}): NetInterface {
  return { ifindex: 2, name, kind: 'veth', mac: null, mtu: 1500, up: true, carrier: true, addrs, master: null, peer: null, link: null, ...extra };
}

function ns(name: string, interfaces: NetInterface[]): NamespaceModel {
  return {
    netns: 1, name, path: '', pids: [], interfaces, routes: [], rules: [], forwarding: { ipv4: true, ipv6: null },
    bridgeNfCall: { ipv4: false, ipv6: false }, netfilter: { tables: [], errors: [] } as unknown as NamespaceModel['netfilter'], errors: [],
  };
}

const topo = (namespaces: NamespaceModel[]): Topology => ({ namespaces, errors: [], discoveredAt: 0, durationMs: 0 });

describe('buildClusterModel', () => {
  it('links nodes by underlay subnet and tunnels by their remote ends', () => {
    const tunnel = (local: string, remote: string) => ({ type: 'vxlan', vni: 42, local, remote, dstport: 4789, underlay: 'ul0', learning: true });
    const m = buildClusterModel(new Map([
      ['node1', topo([ns('n1', [iface('ul0', ['10.168.0.1/24']), iface('vx0', ['10.168.255.1/24'], { kind: 'vxlan', tunnel: tunnel('10.168.0.1', '10.168.0.2') })])])],
      ['node2', topo([ns('n2', [iface('ul0', ['10.168.0.2/24']), iface('vx0', ['10.168.255.2/24'], { kind: 'vxlan', tunnel: tunnel('10.168.0.2', '10.168.0.1') })])])],
    ]));
    expect(m.owner.get('10.168.0.2')).toEqual({ node: 'node2', ns: 'n2', ifname: 'ul0' });
    expect(m.links.filter((l) => l.kind === 'underlay').map((l) => [l.from.node, l.to.node])).toEqual([['node1', 'node2']]);
    expect(m.links.filter((l) => l.kind === 'tunnel').map((l) => [l.from.node, l.to.node, l.tunnel?.type])).toEqual([['node1', 'node2', 'vxlan'], ['node2', 'node1', 'vxlan']]);
  });
});

describe('Stitcher on event time (watermarks)', () => {
  // node1's piece leaves at 1_005_000 (its ul0 transmit); node2's would enter at 1_010_000.
  const LEAVE = 1_005_000;

  it('should join a lagging node\'s piece that comes 5 s of wall clock later', () => {
    const s = new Stitcher({ holdMs: 2000 });
    s.watermark('node1', 3e9);
    // node2's agent last vouched for a time before the packet (its outbox waits for the bus).
    s.watermark('node2', 500_000);
    s.push('node1', leaving(1_000_000), 0);
    expect(s.drain(2000)).toEqual([]);
    expect(s.drain(4999)).toEqual([]);
    s.push('node2', entering(1_010_000), 5000);
    s.watermark('node2', 3e9);
    // Joined at once; the whole waits its hold from the join (its last transmit could leave node2).
    expect(s.joins).toBe(1);
    expect(s.drain(6999)).toEqual([]);
    const out = s.drain(7000);
    expect(out.map((p) => p.nodes)).toEqual([['node1', 'node2']]);
    expect(s.joins).toBe(1);
  });

  it('should give a group out at holdMs, no later, when every other node is current (an idle node\'s heartbeat)', () => {
    const s = new Stitcher({ holdMs: 2000 });
    s.watermark('node1', LEAVE);
    s.push('node1', leaving(1_000_000), 0);
    // node2 idle: its heartbeat vouches for a time past the leaving hop and the margin.
    s.watermark('node2', LEAVE + 300_000_000);
    expect(s.drain(1999)).toEqual([]);
    expect(s.drain(2000).map((p) => p.nodes)).toEqual([['node1']]);
  });

  it('should wait for the margin past the group\'s hop, and for the entering side too', () => {
    const s = new Stitcher({ holdMs: 0, marginNs: 100_000_000 });
    s.watermark('node2', LEAVE + 99_000_000);
    s.push('node1', leaving(1_000_000), 0);
    expect(s.drain(10)).toEqual([]);
    s.watermark('node2', LEAVE + 100_000_000);
    expect(s.drain(20)).toHaveLength(1);
    // node2's piece came first (it entered at 1_010_000): it waits for node1's piece that left then.
    s.watermark('node1', 900_000);
    s.push('node2', entering(1_010_000, 9), 30);
    expect(s.drain(40)).toEqual([]);
    // (Its last transmit, into the pod at 1_014_000, could leave the node too: that end waits as well.)
    s.watermark('node1', 1_010_000 + 100_000_000);
    expect(s.drain(50)).toEqual([]);
    s.watermark('node1', 1_014_000 + 100_000_000);
    expect(s.drain(60).map((p) => p.nodes)).toEqual([['node2']]);
  });

  it('should not wait for a node the hub knows is lost beyond holdMs', () => {
    const s = new Stitcher({ holdMs: 2000 });
    s.watermark('node2', 500_000);
    s.push('node1', leaving(1_000_000), 0);
    const live = (n: string): boolean => n !== 'node2';
    expect(s.drain(1999, live)).toEqual([]);
    expect(s.drain(2000, live).map((p) => p.nodes)).toEqual([['node1']]);
  });

  it('should give a group out after the longest hold whatever the watermarks', () => {
    const s = new Stitcher({ holdMs: 2000, maxHoldMs: 10_000 });
    s.watermark('node2', 500_000);
    s.push('node1', leaving(1_000_000), 0);
    expect(s.drain(9999)).toEqual([]);
    expect(s.drain(10_000).map((p) => p.nodes)).toEqual([['node1']]);
    // Default: 30 s.
    const d = new Stitcher();
    d.watermark('node2', 0);
    d.push('node1', leaving(1_000_000), 0);
    expect(d.drain(29_999)).toEqual([]);
    expect(d.drain(30_000)).toHaveLength(1);
  });

  it('should compare clocks with unknown offsets as equal, or through the nodes\' wall-clock hints, then through pairs', () => {
    const behind = 100e9;
    // node2's clock reads 100 s less, nothing says so: its watermark looks 100 s behind (max hold).
    const a = new Stitcher({ holdMs: 0, maxHoldMs: 10_000 });
    a.watermark('node2', 200e9 - behind);
    a.push('node1', leaving(200e9), 0);
    expect(a.drain(9999)).toEqual([]);
    expect(a.drain(10_000)).toHaveLength(1);
    // Its snapshots' (t, wallMs) say it: 1 s past the hop on node2's clock is past it on node1's.
    const b = new Stitcher({ holdMs: 0 });
    b.clockHint('node1', 500e9, 1_700_000_000_000);
    b.clockHint('node2', 500e9 - behind, 1_700_000_000_000);
    b.watermark('node2', 200e9 - behind + 1e9);
    b.push('node1', leaving(200e9, 1), 0);
    expect(b.drain(1)).toHaveLength(1);
    b.watermark('node2', 0); // never back
    b.push('node1', leaving(202e9, 2), 2);
    expect(b.drain(3)).toEqual([]);
    // A pair measures the offset (here 5 µs of wire): it is used from then on.
    const c = new Stitcher({ holdMs: 0, windowNs: 200e9 });
    c.push('node1', leaving(200e9, 3), 0);
    c.push('node2', entering(200e9 + 10_000 - behind, 3), 0);
    expect(c.drain(1)).toHaveLength(1);
    expect(c.offsets()[1]).toMatchObject({ node: 'node2', method: 'one-way', offsetNs: -behind + 5000 });
    c.watermark('node2', 201e9 - behind);
    c.push('node1', leaving(200.5e9, 4), 2);
    expect(c.drain(3)).toHaveLength(1);
    c.push('node1', leaving(201e9, 5), 4);
    expect(c.drain(5)).toEqual([]);
  });

  it('should keep maxPending\'s bound while groups wait for a lagging node', () => {
    const s = new Stitcher({ holdMs: 0, maxPending: 3 });
    s.watermark('node2', 0);
    for (let i = 0; i < 5; i++) s.push('node1', leaving(1_000_000 + i * 1e6, i), 0);
    expect(s.drain(1).map((p) => p.hops[0]!.ipId)).toEqual([0, 1]);
  });
});
