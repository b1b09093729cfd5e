import { describe, it, expect } from 'vitest';
import { Reconstructor, reconstructAll, vethPeers } from '../../shared/reconstruct.js';
import type { HopEvent } from '../../shared/hop-event.js';

const NS = { pod1: 101, node: 102, pod2: 103, ext: 104 };
const names = new Map<number, string>([[101, 'pod1'], [102, 'node'], [103, 'pod2'], [104, 'ext']]);
const nsName = (n: number): string | null => names.get(n) ?? null;

function ev(over: Partial<HopEvent>): HopEvent {
  return {
    kind: 'xmit', t: 1_000_000, cpu: 0, skb: 'ffff0001', netns: NS.pod1, ifindex: 2, ifname: 'eth0', family: 4,
    proto: 17, len: 60, ipId: 4242, src: '10.244.1.11', dst: '10.244.1.12', sport: 40000, dport: 5000,
    icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0, ...over,
  };
}

/** pod1 → pod2 across the bridge: the kernel's real hop order for one skb. */
function podToPod(skb: string, t0: number, over: Partial<HopEvent> = {}): HopEvent[] {
  return [
    ev({ skb, t: t0, kind: 'xmit', netns: NS.pod1, ifname: 'eth0', ...over }),
    ev({ skb, t: t0 + 30_000, kind: 'rx', netns: NS.node, ifname: 'veth-pod1', ...over }),
    ev({ skb, t: t0 + 45_000, kind: 'recv', netns: NS.node, ifname: 'veth-pod1', ...over }),
    ev({ skb, t: t0 + 100_000, kind: 'xmit', netns: NS.node, ifname: 'veth-pod2', ...over }),
    ev({ skb, t: t0 + 110_000, kind: 'rx', netns: NS.pod2, ifname: 'eth0', ...over }),
    ev({ skb, t: t0 + 120_000, kind: 'recv', netns: NS.pod2, ifname: 'eth0', ...over }),
  ];
}

describe('reconstruction', () => {
  it('follows one skb across a veth pair and the bridge until it is consumed', () => {
    const events = [...podToPod('a1', 1_000_000), ev({ skb: 'a1', t: 1_130_000, kind: 'consume', netns: NS.pod2, ifname: '' })];
    const [p, ...rest] = reconstructAll(events, { nsName });
    expect(rest).toHaveLength(0);
    expect(p?.fate).toBe('delivered');
    expect(p?.fateBy).toBe('consume');
    expect(p?.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`)).toEqual([
      'pod1/eth0/xmit', 'node/veth-pod1/rx', 'node/veth-pod1/recv', 'node/veth-pod2/xmit', 'pod2/eth0/rx', 'pod2/eth0/recv', 'pod2//consume',
    ]);
    expect(p?.src).toBe('10.244.1.11');
    expect(p?.proto).toBe('udp');
  });

  it('never glues two lifetimes of a reused skb address together', () => {
    const first = [...podToPod('a1', 1_000_000), ev({ skb: 'a1', t: 1_130_000, kind: 'consume', netns: NS.pod2 })];
    // Same address, same headers even: a free ended the first life, so this is a new packet.
    const second = podToPod('a1', 1_200_000, { ipId: 4243 });
    const packets = reconstructAll([...first, ...second], { nsName });
    expect(packets).toHaveLength(2);
    expect(packets[0]?.hops).toHaveLength(7);
    expect(packets[1]?.hops).toHaveLength(6);
    expect(packets[0]?.id).not.toBe(packets[1]?.id);
  });

  it('splits a reused address whose free had no tracepoint (new IP id)', () => {
    const tcp = { proto: 6, tcpFlags: 16 };
    const first = podToPod('b2', 1_000_000, { ...tcp, ipId: 1 });
    const second = podToPod('b2', 1_500_000, { ...tcp, ipId: 2 });
    const packets = reconstructAll([...first, ...second], { nsName });
    expect(packets.map((p) => p.hops.length)).toEqual([6, 6]);
    expect(packets.every((p) => p.fate === 'unknown')).toBe(true);
  });

  it('splits when the same address carries the reply direction', () => {
    const req = podToPod('c3', 1_000_000).slice(0, 3);
    const reply = [ev({ skb: 'c3', t: 1_100_000, netns: NS.node, ifname: 'veth-pod1', src: '10.244.1.12', dst: '10.244.1.11', sport: 5000, dport: 40000 })];
    expect(reconstructAll([...req, ...reply])).toHaveLength(2);
  });

  it('orders hops by kernel time when CPUs deliver events out of order', () => {
    const events = podToPod('d4', 1_000_000).map((e, i) => ({ ...e, cpu: i % 2 }));
    // bpftrace drains one CPU's buffer, then the other's.
    const shuffled = [...events.filter((e) => e.cpu === 1), ...events.filter((e) => e.cpu === 0)];
    const r = new Reconstructor({ nsName });
    for (const e of shuffled) r.push(e);
    const [p] = r.flush();
    expect(p?.hops.map((h) => h.t)).toEqual(events.map((e) => e.t));
    expect(r.stats.late).toBe(0);
  });

  it('shows NAT as a tuple change between consecutive hops and keeps the first tuple', () => {
    const out = [
      ev({ skb: 'e5', t: 1_000_000, netns: NS.pod1, ifname: 'eth0', dst: '10.99.0.2', dport: 7000 }),
      ev({ skb: 'e5', t: 1_050_000, kind: 'recv', netns: NS.node, ifname: 'veth-pod1', dst: '10.99.0.2', dport: 7000 }),
      ev({ skb: 'e5', t: 1_100_000, netns: NS.node, ifname: 'eth-node', src: '10.99.0.1', dst: '10.99.0.2', dport: 7000 }),
      ev({ skb: 'e5', t: 1_120_000, kind: 'recv', netns: NS.ext, src: '10.99.0.1', dst: '10.99.0.2', dport: 7000 }),
    ];
    const [p] = reconstructAll(out, { nsName });
    expect(p?.hops).toHaveLength(4);
    expect(p?.src).toBe('10.244.1.11');
    expect(p?.hops[2]?.nat).toEqual({
      kind: 'snat',
      from: { src: '10.244.1.11', dst: '10.99.0.2', sport: 40000, dport: 7000 },
      to: { src: '10.99.0.1', dst: '10.99.0.2', sport: 40000, dport: 7000 },
    });
    expect(p?.hops[3]?.nat).toBeNull();
    const dnat = reconstructAll([
      ev({ skb: 'f6', t: 1, netns: NS.ext, src: '10.99.0.2', dst: '10.99.0.1', dport: 8080 }),
      ev({ skb: 'f6', t: 2, netns: NS.node, ifname: 'br0', src: '10.99.0.2', dst: '10.244.1.12', dport: 80 }),
    ]);
    expect(dnat[0]?.hops[1]?.nat?.kind).toBe('dnat');
  });

  it('reports a drop with the kernel reason, namespace and last interface', () => {
    const events = [
      ...podToPod('g7', 1_000_000).slice(0, 3),
      ev({ skb: 'g7', t: 1_200_000, kind: 'drop', netns: NS.node, ifname: 'br0', reason: 12 }),
    ];
    const [p] = reconstructAll(events, { nsName, dropReason: (c) => (c === 12 ? 'NETFILTER_DROP' : `reason-${c}`) });
    expect(p?.fate).toBe('dropped');
    expect(p?.drop).toEqual({ reason: 'NETFILTER_DROP', ns: 'node', netns: NS.node, ifname: 'br0' });
  });

  it('places a free without device in the namespace the packet was last seen in', () => {
    const events = [...podToPod('h8', 1_000_000), ev({ skb: 'h8', t: 1_200_000, kind: 'drop', netns: 0, ifname: '', reason: 3 })];
    const [p] = reconstructAll(events, { nsName });
    expect(p?.drop).toMatchObject({ ns: 'pod2', ifname: 'eth0', reason: 'reason-3' });
    expect(p?.hops.at(-1)?.ns).toBe('pod2');
  });

  it('groups a clone made by bridge flooding with its original', () => {
    const orig = podToPod('i9', 1_000_000).slice(0, 4);
    const clone = [
      ev({ skb: 'j0', t: 1_100_500, kind: 'xmit', netns: NS.node, ifname: 'veth-pod3' }),
      ev({ skb: 'j0', t: 1_110_000, kind: 'recv', netns: 105, ifname: 'eth0' }),
    ];
    const packets = reconstructAll([...orig, ...clone].sort((a, b) => a.t - b.t), { nsName });
    expect(packets).toHaveLength(2);
    const c = packets.find((p) => p.hops[0]?.ifname === 'veth-pod3');
    const o = packets.find((p) => p !== c);
    expect(c?.cloneOf).toBe(o?.id);
    expect(o?.cloneOf).toBeNull();
  });

  it('does not call an unrelated packet with other headers a clone', () => {
    const a = podToPod('k1', 1_000_000).slice(0, 3);
    const b = [ev({ skb: 'k2', t: 1_050_000, netns: NS.node, ifname: 'veth-pod2', ipId: 999 })];
    const packets = reconstructAll([...a, ...b].sort((x, y) => x.t - y.t));
    expect(packets.every((p) => p.cloneOf === null)).toBe(true);
  });

  it('counts a packet received in the namespace that owns its destination as delivered', () => {
    const isLocal = (netns: number, addr: string): boolean => netns === NS.pod2 && addr === '10.244.1.12';
    const [p] = reconstructAll(podToPod('l2', 1_000_000), { nsName, isLocal });
    expect(p?.fate).toBe('delivered');
    expect(p?.fateBy).toBe('local-address');
    const [q] = reconstructAll(podToPod('l3', 1_000_000).slice(0, 3), { nsName, isLocal });
    expect(q?.fate).toBe('unknown');
  });

  it('drops packets the filter rejects and counts them', () => {
    const r = new Reconstructor({ accept: (p) => p.dport === 5000 });
    for (const e of [...podToPod('m1', 1_000_000), ...podToPod('m2', 1_000_500, { dport: 6000, ipId: 7 })]) r.push(e);
    const packets = r.flush();
    expect(packets.map((p) => p.dport)).toEqual([5000]);
    expect(r.stats.rejected).toBe(1);
  });

  it('finishes idle packets when the clock advances without events', () => {
    const r = new Reconstructor({ idleNs: 1_000_000, reorderWindowNs: 100_000 });
    for (const e of podToPod('n1', 1_000_000)) r.push(e);
    expect(r.drain()).toHaveLength(0);
    r.advance(1_000_000 + 120_000 + 1_200_000);
    const done = r.drain();
    expect(done).toHaveLength(1);
    expect(r.liveCount).toBe(0);
  });

  it('gives the same packets whatever the batch boundaries (live vs replay)', () => {
    const events = [...podToPod('o1', 1_000_000), ...podToPod('o2', 1_010_000, { ipId: 5 }), ...podToPod('o1', 3_000_000_000, { ipId: 6 })];
    const all = reconstructAll(events, { nsName });
    const r = new Reconstructor({ nsName });
    const incremental = [];
    for (const e of events) {
      r.push(e);
      incremental.push(...r.drain());
    }
    incremental.push(...r.flush());
    expect(incremental.map((p) => p.id).sort()).toEqual(all.map((p) => p.id).sort());
    expect(all).toHaveLength(3);
  });

  describe('never joins two packets in a reused skb whose free was not seen (issue 13)', () => {
    const HOST = 100;
    const WEB = 106;
    /** A TCP reply from the web container, taken in by the host (which owns 10.89.0.1). */
    const reply = (skb: string, t0: number, over: Partial<HopEvent> = {}): HopEvent[] => {
      const tcp = { proto: 6, tcpFlags: 0x10, tcpSeq: 1000, ipId: 0, src: '10.89.0.2', dst: '10.89.0.1', sport: 80, dport: 43000, ...over };
      return [
        ev({ skb, t: t0, kind: 'xmit', netns: WEB, ifname: 'eth0', ...tcp }),
        ev({ skb, t: t0 + 10_000, kind: 'rx', netns: HOST, ifname: 'veth0', ...tcp }),
        ev({ skb, t: t0 + 20_000, kind: 'recv', netns: HOST, ifname: 'podman1', ...tcp }),
      ];
    };
    const hostOwns = (netns: number, addr: string): boolean => netns === HOST && addr === '10.89.0.1';

    it('splits the seen case: host recv, then a transmit from a container in the same skb', () => {
      // The next segment of the same connection: same tuple, same IP id (0 with DF), even the
      // same sequence (pure ACKs): only where it shows up tells it apart.
      const events = [...reply('s1', 1_000_000), ...reply('s1', 1_400_000)];
      for (const isLocal of [undefined, hostOwns]) {
        const r = new Reconstructor({ nsName, ...(isLocal ? { isLocal } : {}) });
        for (const e of events) r.push(e);
        const packets = r.flush();
        expect(packets.map((p) => p.hops.map((h) => `${h.netns}/${h.event}`).join(' '))).toEqual([
          `${WEB}/xmit ${HOST}/rx ${HOST}/recv`, `${WEB}/xmit ${HOST}/rx ${HOST}/recv`,
        ]);
        expect(r.stats.splits).toBe(1);
      }
    });

    it('splits on a TCP sequence change that NAT cannot explain, in one namespace', () => {
      const events = [...reply('s2', 1_000_000), ev({ skb: 's2', t: 1_100_000, kind: 'xmit', netns: HOST, ifname: 'podman1', proto: 6, tcpSeq: 2000, ipId: 0, src: '10.89.0.1', dst: '10.89.0.2', sport: 43000, dport: 80 })];
      expect(reconstructAll(events).map((p) => p.hops.length)).toEqual([3, 1]);
      // The same sequence with DNAT (port forward) is one packet.
      const fwd = [...reply('s3', 1_000_000).slice(0, 3), ev({ skb: 's3', t: 1_100_000, kind: 'xmit', netns: HOST, ifname: 'eth0', proto: 6, tcpSeq: 1000, ipId: 0, src: '10.89.0.2', dst: '192.0.2.9', sport: 80, dport: 43000 })];
      expect(reconstructAll(fwd).map((p) => p.hops.length)).toEqual([4]);
    });

    it('splits a packet the destination stack took in from any later hop in another namespace, with the model', () => {
      const later = ev({ skb: 's4', t: 1_100_000, kind: 'recv', netns: WEB, ifname: 'eth0', proto: 6, tcpSeq: 1000, ipId: 0, src: '10.89.0.2', dst: '10.89.0.1', sport: 80, dport: 43000 });
      const events = [...reply('s4', 1_000_000), later];
      expect(reconstructAll(events, { isLocal: hostOwns }).map((p) => p.hops.length)).toEqual([3, 1]);
      // Without the model a receive may hand on to another namespace's device (macvlan): kept.
      expect(reconstructAll(events).map((p) => p.hops.length)).toEqual([4]);
    });

    it('splits a packet that arrives elsewhere than the sending veth leads, when the model says where it leads', () => {
      // pod1's eth0 leads to the node; a receive in pod2 right after it is another packet.
      const events = [
        ev({ skb: 's7', t: 1, kind: 'xmit', netns: NS.pod1, ifname: 'eth0' }),
        ev({ skb: 's7', t: 2, kind: 'recv', netns: NS.pod2, ifname: 'eth0' }),
      ];
      const peerNetns = (netns: number, ifname: string): number | null => (netns === NS.pod1 && ifname === 'eth0' ? NS.node : null);
      expect(reconstructAll(events, { peerNetns }).map((p) => p.hops.length)).toEqual([1, 1]);
      expect(reconstructAll(events).map((p) => p.hops.length)).toEqual([2]);
      // Into the peer's namespace: one packet.
      expect(reconstructAll([...podToPod('s8', 1_000_000)], { peerNetns }).map((p) => p.hops.length)).toEqual([6]);
      // The map from a model: veths with a resolved peer only.
      const peers = vethPeers({ namespaces: [
        { netns: NS.pod1, interfaces: [{ name: 'eth0', kind: 'veth', peer: { netns: NS.node, ifindex: 5, name: 'veth-pod1' } }, { name: 'lo', kind: 'loopback', peer: null }] },
      ] } as unknown as Parameters<typeof vethPeers>[0]);
      expect([peers(NS.pod1, 'eth0'), peers(NS.pod1, 'lo'), peers(NS.node, 'eth0')]).toEqual([NS.node, null, null]);
    });

    it('keeps a transmit handing on to another namespace (macvlan to its parent, a tunnel to its underlay) and DNAT after a local receive', () => {
      const macvlan = [
        ev({ skb: 's5', t: 1, kind: 'xmit', netns: NS.pod1, ifname: 'mv0' }),
        ev({ skb: 's5', t: 2, kind: 'xmit', netns: NS.node, ifname: 'eth-node' }),
      ];
      expect(reconstructAll(macvlan).map((p) => p.hops.length)).toEqual([2]);
      const nodeOwns = (netns: number, addr: string): boolean => netns === NS.node && addr === '10.99.0.1';
      const dnat = [
        ev({ skb: 's6', t: 1, kind: 'recv', netns: NS.node, ifname: 'eth-node', src: '10.99.0.2', dst: '10.99.0.1', dport: 8080 }),
        ev({ skb: 's6', t: 2, kind: 'xmit', netns: NS.node, ifname: 'br0', src: '10.99.0.2', dst: '10.244.1.12', dport: 80 }),
        ev({ skb: 's6', t: 3, kind: 'recv', netns: NS.pod2, ifname: 'eth0', src: '10.99.0.2', dst: '10.244.1.12', dport: 80 }),
      ];
      const r = new Reconstructor({ isLocal: nodeOwns });
      for (const e of dnat) r.push(e);
      expect(r.flush().map((p) => p.hops.length)).toEqual([3]);
      expect(r.stats.splits).toBe(0);
    });
  });
});
