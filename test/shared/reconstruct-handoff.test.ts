/**
 * Packets that go on in another skb (issue 14): a tunnel device's copy of a packet short of
 * headroom (skb_expand_head: the original is consumed with reason 1, the clone transmitted), and
 * an outer datagram fragmented on the underlay (the fragments are new skbs; the first carries the
 * inner headers, the others only the outer ones; the reassembled datagram goes on in one of them).
 * Event shapes as measured on the overlay lab (probes/README.md "Tunnels").
 */
import { describe, it, expect } from 'vitest';
import { reconstructAll } from '../../shared/reconstruct.js';
import type { HopEvent, HopOuter } from '../../shared/hop-event.js';

const NS = { pod1: 201, n1: 202, n2: 203, pod2: 204 };
const names = new Map<number, string>([[201, 'pod1'], [202, 'n1'], [203, 'n2'], [204, 'pod2']]);
const nsName = (n: number): string | null => names.get(n) ?? null;

function ev(over: Partial<HopEvent>): HopEvent {
  return {
    kind: 'xmit', t: 1_000_000, cpu: 0, skb: 'a', netns: NS.pod1, ifindex: 2, ifname: 'eth0', family: 4,
    proto: 17, len: 1428, ipId: 777, src: '10.42.1.10', dst: '10.42.2.10', sport: 40000, dport: 5433,
    icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0, ...over,
  };
}
const OUTER: HopOuter = { family: 4, proto: 17, src: '10.77.0.1', dst: '10.77.0.2', sport: 35000, dport: 4789, vni: 42, innerRead: true, ipId: 9000, frag: 0 };
const path = (p: { hops: ReadonlyArray<{ ns: string | null; ifname: string; event: string; fragment?: number }> }): string[] =>
  p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}${h.fragment ? `#${h.fragment}` : ''}`);

/** pod1 → n1's vx0, where the original is consumed (reason 1) and a copy `b` goes on. */
function copied(copyAt: number): HopEvent[] {
  return [
    ev({ t: 1_000_000 }),
    ev({ t: 1_010_000, kind: 'recv', netns: NS.n1, ifname: 'br0' }),
    ev({ t: 1_020_000, kind: 'consume', netns: NS.n1, ifname: 'vx0', reason: 1 }),
    ev({ t: copyAt, skb: 'b', netns: NS.n1, ifname: 'vx0' }),
    ev({ t: copyAt + 10_000, skb: 'b', netns: NS.n1, ifname: 'ul0', outer: OUTER }),
    ev({ t: copyAt + 20_000, skb: 'b', kind: 'recv', netns: NS.n2, ifname: 'ul0', outer: OUTER }),
    ev({ t: copyAt + 30_000, skb: 'b', kind: 'recv', netns: NS.n2, ifname: 'vx0' }),
    ev({ t: copyAt + 40_000, skb: 'b', kind: 'recv', netns: NS.pod2, ifname: 'eth0' }),
    ev({ t: copyAt + 50_000, skb: 'b', kind: 'consume', netns: NS.pod2, ifname: 'eth0' }),
  ];
}

describe('a packet handed on to another skb', () => {
  it('joins the copy a tunnel device made (the original freed with reason 1) into one packet', () => {
    const packets = reconstructAll(copied(1_100_000), { nsName });
    expect(packets).toHaveLength(1);
    const [p] = packets as [typeof packets[number]];
    expect(path(p)).toEqual(['pod1/eth0/xmit', 'n1/br0/recv', 'n1/vx0/xmit', 'n1/ul0/xmit', 'n2/ul0/recv', 'n2/vx0/recv', 'pod2/eth0/recv', 'pod2/eth0/consume']);
    expect([p.fate, p.cloneOf, p.id.endsWith('-a')]).toEqual(['delivered', null, true]);
    expect(p.hops.find((h) => h.encap)?.ifname).toBe('vx0');
    expect(p.hops.find((h) => h.decap)?.ns).toBe('n2');
  });

  it('joins it too when the copy was placed before the free (its events came late)', () => {
    const events = copied(1_100_000);
    // The consume reported after the copy's first hops, stamped before them.
    const late = [...events.slice(0, 2), ...events.slice(3, 5), events[2] as HopEvent, ...events.slice(5)];
    const packets = reconstructAll(late, { nsName, reorderWindowNs: 0 });
    expect(packets).toHaveLength(1);
    expect(path(packets[0] as (typeof packets)[number])).toContain('pod2/eth0/recv');
    expect(packets[0]?.hops[0]?.ns).toBe('pod1');
  });

  it('does not join a copy seen too late (past handoffNs)', () => {
    const far = copied(1_020_000 + 1_500_000_000);
    const packets = reconstructAll(far, { nsName });
    expect(packets).toHaveLength(2);
  });

  it('a delivered packet whose data a sniffer\'s clone still shares (reason 1 on its own device) ends there', () => {
    const events = [
      ev({ t: 1_000_000 }),
      ev({ t: 1_010_000, kind: 'recv', netns: NS.pod2, ifname: 'eth0' }),
      ev({ t: 1_020_000, kind: 'consume', netns: NS.pod2, ifname: 'eth0', reason: 1 }),
      // The same datagram sent again from there at once: a new packet, not a continuation.
      ev({ t: 1_030_000, skb: 'c', netns: NS.pod2, ifname: 'eth0' }),
    ];
    const packets = reconstructAll(events, { nsName, reorderWindowNs: 0, idleNs: 10_000_000 });
    expect(packets.map((p) => [p.hops.length, p.fate])).toEqual([[3, 'delivered'], [1, 'unknown']]);
  });

  it('a fragmented outer datagram: both fragments are hops of the packet, which goes on reassembled', () => {
    const fr1 = { ...OUTER, frag: 0x2000 };
    const events = [
      ev({ t: 1_000_000 }),
      ev({ t: 1_010_000, kind: 'recv', netns: NS.n1, ifname: 'br0' }),
      ev({ t: 1_020_000, netns: NS.n1, ifname: 'vx0' }),
      // ip_do_fragment: the first fragment (inner headers in its payload), then the later one (outer only).
      ev({ t: 1_030_000, skb: 'f1', netns: NS.n1, ifname: 'ul0', outer: fr1 }),
      ev({ t: 1_040_000, skb: 'f2', netns: NS.n1, ifname: 'ul0', src: '10.77.0.1', dst: '10.77.0.2', sport: 0, dport: 0, ipId: 9000, len: 222 }),
      ev({ t: 1_050_000, kind: 'consume', netns: NS.n1, ifname: 'ul0', outer: OUTER }),
      ev({ t: 1_060_000, skb: 'f1', kind: 'recv', netns: NS.n2, ifname: 'ul0', outer: fr1 }),
      ev({ t: 1_070_000, skb: 'f2', kind: 'recv', netns: NS.n2, ifname: 'ul0', src: '10.77.0.1', dst: '10.77.0.2', sport: 0, dport: 0, ipId: 9000, len: 222 }),
      // Reassembled into f2's skb (the first fragment's freed), decapsulated on vx0.
      ev({ t: 1_080_000, skb: 'f1', kind: 'consume', netns: 0, ifname: '', outer: fr1, reason: 1 }),
      ev({ t: 1_090_000, skb: 'f2', kind: 'recv', netns: NS.n2, ifname: 'vx0' }),
      ev({ t: 1_100_000, skb: 'f2', kind: 'recv', netns: NS.pod2, ifname: 'eth0' }),
      ev({ t: 1_110_000, skb: 'f2', kind: 'consume', netns: NS.pod2, ifname: 'eth0' }),
    ];
    const packets = reconstructAll(events, { nsName });
    expect(packets).toHaveLength(1);
    const [p] = packets as [typeof packets[number]];
    expect(path(p)).toEqual(['pod1/eth0/xmit', 'n1/br0/recv', 'n1/vx0/xmit', 'n1/ul0/xmit#1', 'n1/ul0/xmit#2', 'n2/ul0/recv#1', 'n2/ul0/recv#2', 'n2/vx0/recv', 'pod2/eth0/recv', 'pod2/eth0/consume']);
    expect(p.fate).toBe('delivered');
    // The later fragment shows the packet's tuple, its own header as the outer one.
    const f2 = p.hops.find((h) => h.fragment === 2);
    expect([f2?.src, f2?.dst, f2?.dport, f2?.outer?.src, f2?.outer?.dport, f2?.nat]).toEqual(['10.42.1.10', '10.42.2.10', 5433, '10.77.0.1', 0, null]);
    expect(p.hops.filter((h) => h.encap).map((h) => h.ifname)).toEqual(['vx0']);
    expect(p.hops.find((h) => h.decap)?.ifname).toBe('vx0');
  });

  it('a datagram another sender fragmented (an IPv6 underlay, no whole skb of it seen): its first fragment\'s packet, the later one joined by the Fragment header id', () => {
    const O6: HopOuter = { family: 6, proto: 17, src: 'fd77::1', dst: 'fd77::2', sport: 40000, dport: 4789, vni: 42, innerRead: true, ipId: 0x5678, frag: 0x2000 };
    const later = { skb: 'f2', family: 6 as const, src: 'fd77::1', dst: 'fd77::2', sport: 0, dport: 0, ipId: 0x5678, len: 274 };
    const events = [
      // The first fragment shows the inner packet (read from its payload), the later one only its IPv6 header.
      ev({ t: 1_000_000, skb: 'f1', netns: NS.n1, ifname: 'ul0', outer: O6 }),
      ev({ t: 1_010_000, netns: NS.n1, ifname: 'ul0', ...later }),
      ev({ t: 1_020_000, skb: 'f1', kind: 'recv', netns: NS.n2, ifname: 'ul0', outer: O6 }),
      ev({ t: 1_030_000, kind: 'recv', netns: NS.n2, ifname: 'ul0', ...later }),
      // Reassembled into the later fragment's skb, decapsulated, delivered.
      ev({ t: 1_040_000, skb: 'f1', kind: 'consume', netns: 0, ifname: '', outer: O6, reason: 1 }),
      ev({ t: 1_050_000, skb: 'f2', kind: 'recv', netns: NS.n2, ifname: 'vx0' }),
      ev({ t: 1_060_000, skb: 'f2', kind: 'recv', netns: NS.pod2, ifname: 'eth0' }),
      ev({ t: 1_070_000, skb: 'f2', kind: 'consume', netns: NS.pod2, ifname: 'eth0' }),
    ];
    const packets = reconstructAll(events, { nsName });
    expect(packets).toHaveLength(1);
    const [p] = packets as [typeof packets[number]];
    expect(path(p)).toEqual(['n1/ul0/xmit#1', 'n1/ul0/xmit#2', 'n2/ul0/recv#1', 'n2/ul0/recv#2', 'n2/vx0/recv', 'pod2/eth0/recv', 'pod2/eth0/consume']);
    expect(p.fate).toBe('delivered');
    const f2 = p.hops.find((h) => h.fragment === 2);
    expect([f2?.src, f2?.dst, f2?.dport, f2?.outer?.family, f2?.outer?.src]).toEqual(['10.42.1.10', '10.42.2.10', 5433, 6, 'fd77::1']);
  });

  it('a lone first fragment whose later ones never show stays one packet, and an unrelated datagram is not joined to it', () => {
    const O6: HopOuter = { family: 6, proto: 17, src: 'fd77::1', dst: 'fd77::2', sport: 40000, dport: 4789, vni: 42, innerRead: true, ipId: 0x1111, frag: 0x2000 };
    const events = [
      ev({ t: 1_000_000, skb: 'f1', netns: NS.n1, ifname: 'ul0', outer: O6 }),
      // Another id: a datagram of its own.
      ev({ t: 1_010_000, skb: 'x', netns: NS.n1, ifname: 'ul0', family: 6, src: 'fd77::1', dst: 'fd77::2', sport: 0, dport: 0, ipId: 0x2222, len: 274 }),
      ev({ t: 1_020_000, skb: 'f1', kind: 'recv', netns: NS.n2, ifname: 'ul0', outer: O6 }),
    ];
    const packets = reconstructAll(events, { nsName });
    expect(packets).toHaveLength(2);
  });
});
