/**
 * A sender's own fragments, rebuilt from real events (test/shared/fixtures/own-fragments.ndjson:
 * the fast tier's recording of test/integration/trace-fragments.test.ts's traffic on the demo
 * lab: a 4000-byte UDP datagram pod1 → pod2 bridged, pod1 → ext through MASQUERADE and pod1 →
 * pod2 over IPv6, each echoed back; conntrack reassembles the IPv4 ones in the node, the
 * receivers all of them).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import type { HopEvent, HopKind } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { reconstructAll } from '../../shared/reconstruct.js';
import { decodeHop, encodeHop } from '../../shared/wire.js';

const events = readFileSync(new URL('./fixtures/own-fragments.ndjson', import.meta.url), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HopEvent);
const ROLE: Readonly<Record<number, string>> = { 4026532239: 'pod1', 4026532174: 'node', 4026532304: 'pod2', 4026532369: 'ext' };
const show = (p: Packet): string => p.hops.map((h) => `${ROLE[h.netns] ?? h.netns}/${h.ifname}/${h.event}#${h.fragment ?? '-'}`).join(' ');

describe("a sender's own fragments", () => {
  it('makes each datagram one packet with every fragment a hop, delivered', () => {
    const packets = reconstructAll(events, { dropReason: (c) => (c === 2 ? 'NOT_SPECIFIED' : `reason-${c}`) });
    expect(packets.map((p) => `${p.src}:${p.sport} > ${p.dst}:${p.dport}`).sort()).toEqual([
      '10.203.1.11:34675 > 10.203.99.2:7000', '10.203.1.11:57226 > 10.203.1.12:5000', '10.203.1.12:5000 > 10.203.1.11:57226',
      '10.203.99.2:7000 > 10.203.99.1:34675', 'fd00:203:1::11:37517 > fd00:203:1::12:5001', 'fd00:203:1::12:5001 > fd00:203:1::11:37517',
    ]);
    for (const p of packets) {
      expect(p.fate, show(p)).toBe('delivered');
      // Every fragment left its sender and reached the receiver (the last hop's namespace).
      const from = p.hops[0]?.netns;
      const to = p.hops.at(-1)?.netns;
      expect(p.hops.filter((h) => h.netns === from && h.event === 'xmit').map((h) => h.fragment).sort(), show(p)).toEqual([1, 2, 3]);
      expect(p.hops.filter((h) => h.netns === to && h.event === 'recv' && h.fragment !== undefined).map((h) => h.fragment).sort(), show(p)).toEqual([1, 2, 3]);
      // A later fragment has no ports, and its missing ports are no rewrite: a NAT on its hops is
      // one of its addresses (read between hops of the same fragment).
      for (const h of p.hops) {
        if ((h.fragment ?? 1) === 1) continue;
        expect([h.sport, h.dport], show(p)).toEqual([0, 0]);
        if (h.nat) expect([h.nat.from.sport, h.nat.from.dport, h.nat.to.sport, h.nat.to.dport], show(p)).toEqual([0, 0, 0, 0]);
      }
    }
    // Through MASQUERADE: the node's reassembled datagram (one recv on br0, whole), then the
    // re-fragmented datagram leaves with the node's address; the rewrite shows on fragment 1.
    const masq = packets.find((p) => p.dport === 7000) as Packet;
    expect(show(masq)).toContain('node/br0/recv#-');
    expect(masq.hops.filter((h) => h.nat !== null).map((h) => `${ROLE[h.netns]}/${h.ifname}#${h.fragment ?? '-'} ${h.nat?.kind}`)).toEqual(['node/eth-node#1 snat', 'node/eth-node#2 snat', 'node/eth-node#3 snat']);
  });

  it('needs the fragment field: without it the later fragments are packets of their own', () => {
    const bare = events.map(({ frag: _frag, ...e }) => e);
    expect(reconstructAll(bare).length).toBeGreaterThan(6);
  });

  it('keeps the field on the wire, and reads an event without it as no fragment', () => {
    for (const e of events) expect(decodeHop(encodeHop(e))).toEqual(e);
    const { frag: _frag, ...plain } = events[0] as HopEvent;
    expect(decodeHop(encodeHop(plain)).frag).toBeUndefined();
  });
});

/**
 * A pod's own fragments through a vxlan tunnel (test/shared/fixtures/vxlan-own-fragments.ndjson:
 * the fast tier's recording of one 3000-byte UDP datagram pod1 → pod2 and its echo on the
 * overlay lab, kind vxlan: pods at MTU 1500, vx0 at 1450, no conntrack in the nodes). The pod
 * sends three fragments (1500 + 1500 + 68); the node cuts each 1500-byte one again into 1444 +
 * 76 for vx0 (new skbs; the original consumed on vx0 — before its pieces for the first, which
 * wait for the tunnel's ARP), and every piece crosses the tunnel on its own.
 */
describe("a pod's own fragments through a vxlan tunnel, cut again by the node", () => {
  const vx = readFileSync(new URL('./fixtures/vxlan-own-fragments.ndjson', import.meta.url), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HopEvent);
  const R: Readonly<Record<number, string>> = { 4026532767: 'pod1', 4026532702: 'node1', 4026532768: 'node2', 4026532898: 'pod2' };
  const where = (h: Packet['hops'][number]): string => `${R[h.netns] ?? h.netns}/${h.ifname}/${h.event}`;
  const line = (p: Packet): string => p.hops.map((h) => `${where(h)}#${h.fragment ?? '-'}${h.encap ? '+encap' : ''}${h.decap ? '+decap' : ''}`).join(' ');

  it('one packet each way, every piece encapsulated and decapsulated, delivered', () => {
    const packets = reconstructAll(vx);
    expect(packets.map((p) => `${p.src}:${p.sport} > ${p.dst}:${p.dport}`)).toEqual(['10.210.1.10:58295 > 10.210.2.10:5433', '10.210.2.10:5433 > 10.210.1.10:58295']);
    for (const [p, a, b] of [[packets[0], 'pod1', 'node1'], [packets[1], 'pod2', 'node2']] as const) {
      if (!p) continue;
      const c = b === 'node1' ? 'node2' : 'node1';
      const d = a === 'pod1' ? 'pod2' : 'pod1';
      const at = (spot: string): number[] => p.hops.filter((h) => where(h) === spot).map((h) => h.fragment ?? 0).sort();
      expect(p.fate, line(p)).toBe('delivered');
      expect(at(`${a}/eth0/xmit`), line(p)).toEqual([1, 2, 3]);
      expect(at(`${b}/vx0/xmit`), line(p)).toEqual([1, 2, 3, 4, 5]);
      expect(at(`${c}/vx0/recv`), line(p)).toEqual([1, 2, 3, 4, 5]);
      expect(at(`${d}/eth0/recv`), line(p)).toEqual([1, 2, 3, 4, 5]);
      expect(p.hops.filter((h) => h.encap).map(where), line(p)).toEqual(Array(5).fill(`${b}/vx0/xmit`));
      expect(p.hops.filter((h) => h.decap).map(where), line(p)).toEqual(Array(5).fill(`${c}/vx0/recv`));
      // The original fragments' consumes on vx0 (cut again) are no fate.
      expect(p.hops.filter((h) => h.event === 'consume' && h.ifname === 'vx0'), line(p)).toEqual([]);
    }
  });
});

/**
 * Crafted events, in the shapes the lab showed (probes/README.md "A sender's own fragments"):
 * pod1 sends a 3028-byte UDP datagram as three fragments (1500 + 1500 + 68: offsets 0, 185,
 * 370), its node routes or bridges it on.
 */
describe("a sender's own fragments, crafted", () => {
  const POD1 = 11;
  const NODE = 12;
  const FAR = 13;
  const UDP = { cpu: 0, family: 4 as const, proto: 17, ipId: 777, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0, ifindex: 2, len: 1500, sport: 0, dport: 0 };
  const POD = { src: '10.1.0.11', dst: '10.99.0.2' };
  const A = { skb: 'a1', frag: 0x2000, sport: 40000, dport: 7000 };
  const B = { skb: 'b2', frag: 0x2000 | 185 };
  const C = { skb: 'c3', frag: 370, len: 68 };
  type Part = Partial<HopEvent> & { skb: string };
  /** Events in time order, 5 µs apart. */
  const timeline = (): { at: (kind: HopKind, netns: number, ifname: string, part: Part) => void; events: HopEvent[] } => {
    const events: HopEvent[] = [];
    let t = 1_000_000;
    return { events, at: (kind, netns, ifname, part) => events.push({ ...UDP, ...POD, kind, netns, ifname, t: (t += 5_000), ...part } as HopEvent) };
  };
  const role = (n: number): string => ({ [POD1]: 'pod1', [NODE]: 'node', [FAR]: 'far' })[n] ?? String(n);
  const hopsOf = (p: Packet): string => p.hops.map((h) => `${role(h.netns)}/${h.ifname}/${h.event}#${h.fragment ?? '-'}${h.nat ? ` ${h.nat.kind}` : ''}`).join(' ');
  const fragmentsAt = (p: Packet, netns: number, ifname: string, event: string): number[] =>
    p.hops.filter((h) => h.netns === netns && h.ifname === ifname && h.event === event).map((h) => h.fragment ?? 0).sort();

  /** Bridged through the node (no reassembly there), the fragments in `order`; the receiver reassembles into the last one's skb. */
  const bridged = (order: Part[]): HopEvent[] => {
    const { at, events } = timeline();
    for (const f of order) at('xmit', POD1, 'eth0', f);
    for (const f of order) {
      at('rx', NODE, 'veth-pod1', f);
      at('recv', NODE, 'veth-pod1', f);
      at('xmit', NODE, 'veth-far', f);
      at('rx', FAR, 'eth0', f);
      at('recv', FAR, 'eth0', f);
    }
    const first = order.indexOf(A);
    at('consume', FAR, 'eth0', { ...A, reason: first === order.length - 1 ? 0 : 1 });
    const lastSkb = (order.at(-1) as Part).skb;
    at('consume', FAR, 'eth0', { skb: lastSkb, len: 3028, sport: 40000, dport: 7000 });
    return events;
  };

  it.each([
    ['in order', [A, B, C]],
    ['the second fragment ahead of the first', [B, A, C]],
    ['in reverse', [C, B, A]],
  ])('joins a later fragment seen before its first into the first fragment\'s packet (%s)', (_name, order) => {
    const packets = reconstructAll(bridged(order));
    expect(packets.map(hopsOf)).toHaveLength(1);
    const p = packets[0] as Packet;
    // The packet's tuple is the first fragment's, with its ports, whichever fragment came first.
    expect(`${p.src}:${p.sport} > ${p.dst}:${p.dport}`, hopsOf(p)).toBe('10.1.0.11:40000 > 10.99.0.2:7000');
    expect(p.fate, hopsOf(p)).toBe('delivered');
    for (const [netns, ifname, event] of [[POD1, 'eth0', 'xmit'], [NODE, 'veth-pod1', 'recv'], [NODE, 'veth-far', 'xmit'], [FAR, 'eth0', 'recv']] as const) {
      expect(fragmentsAt(p, netns, ifname, event), hopsOf(p)).toEqual([1, 2, 3]);
    }
  });

  /**
   * Routed through MASQUERADE with a smaller egress MTU (1280): the node's conntrack reassembles
   * (the first fragment's skb consumed, the whole in the last one's: one recv on br0), rewrites
   * the source, and cuts the datagram anew (1276 + 1276 + 516: offsets 0, 157, 314) into new skbs
   * with the node's address before the whole's consume (ip_do_fragment's slow path).
   */
  const recut = (order: Part[], cut: { netns?: number; src?: string; dst?: string } = {}): HopEvent[] => {
    const { at, events } = timeline();
    const NAT = { src: cut.src ?? '10.99.0.1', dst: cut.dst ?? POD.dst };
    for (const f of order) at('xmit', POD1, 'eth0', f);
    for (const f of order) {
      at('rx', NODE, 'veth-pod1', f);
      at('recv', NODE, 'veth-pod1', f);
    }
    at('consume', NODE, 'veth-pod1', { ...A, reason: 1 });
    const whole = (order.at(-1) as Part).skb;
    at('recv', NODE, 'br0', { skb: whole, len: 3028, sport: 40000, dport: 7000 });
    const D = [{ skb: 'd1', frag: 0x2000, len: 1276, sport: 40000, dport: 7000 }, { skb: 'd2', frag: 0x2000 | 157, len: 1276 }, { skb: 'd3', frag: 314, len: 516 }];
    const node = cut.netns ?? NODE;
    for (const f of D) at('xmit', node, 'eth-node', { ...NAT, ...f });
    at('consume', NODE, 'eth-node', { skb: whole, ...NAT, len: 3028, sport: 40000, dport: 7000 });
    for (const f of D) {
      at('rx', FAR, 'eth0', { ...NAT, ...f });
      at('recv', FAR, 'eth0', { ...NAT, ...f });
    }
    at('consume', FAR, 'eth0', { ...NAT, ...(D[0] as Part), reason: 1 });
    at('consume', FAR, 'eth0', { skb: 'd3', ...NAT, len: 3028, sport: 40000, dport: 7000 });
    return events;
  };

  it.each([
    ['in order', [A, B, C]],
    ['the second fragment ahead of the first', [B, A, C]],
  ])('joins fragments a node cut anew after MASQUERADE to their packet (%s)', (_name, order) => {
    const packets = reconstructAll(recut(order));
    expect(packets.map(hopsOf)).toHaveLength(1);
    const p = packets[0] as Packet;
    expect(`${p.src}:${p.sport} > ${p.dst}:${p.dport}`, hopsOf(p)).toBe('10.1.0.11:40000 > 10.99.0.2:7000');
    expect(p.fate, hopsOf(p)).toBe('delivered');
    expect(hopsOf(p)).toContain('node/br0/recv#-');
    // Numbered within their own cutting: 1-3 as the sender's were.
    expect(fragmentsAt(p, POD1, 'eth0', 'xmit'), hopsOf(p)).toEqual([1, 2, 3]);
    expect(fragmentsAt(p, NODE, 'eth-node', 'xmit'), hopsOf(p)).toEqual([1, 2, 3]);
    expect(fragmentsAt(p, FAR, 'eth0', 'recv'), hopsOf(p)).toEqual([1, 2, 3]);
    // The rewrite shows on the new first fragment, against the whole datagram's hop before it.
    expect(p.hops.filter((h) => h.nat !== null).map((h) => `${role(h.netns)}/${h.ifname}#${h.fragment ?? '-'} ${h.nat?.kind}`)).toEqual(['node/eth-node#1 snat']);
  });

  it('a node cutting each fragment again for its vxlan device (MTU 1450): the pieces join the packet, numbered by their place where they passed, each with its encap and decap', () => {
    const { at, events } = timeline();
    for (const f of [A, B, C]) at('xmit', POD1, 'eth0', f);
    // Each 1500-byte fragment into 1444 + 76 bytes (1424 + 56 payload): new skbs; the 68-byte last fits.
    const pieces: Part[] = [
      { skb: 'a1x', frag: 0x2000, len: 1444, sport: 40000, dport: 7000 }, { skb: 'a2x', frag: 0x2000 | 178, len: 76 },
      { skb: 'b1x', frag: 0x2000 | 185, len: 1444 }, { skb: 'b2x', frag: 0x2000 | 363, len: 76 }, C,
    ];
    for (const f of [A, B, C]) {
      at('rx', NODE, 'veth-pod1', f);
      at('recv', NODE, 'veth-pod1', f);
    }
    // Interleaved as the kernel sends them: each piece into vx0 and out of ul0 (encapsulated:
    // the outer header beside the inner one) before the next; the far node takes each out of vx0.
    const outer = { family: 4 as const, proto: 17, src: '10.77.0.1', dst: '10.77.0.2', sport: 51000, dport: 4789, vni: 42, innerRead: true, ipId: 0, frag: 0 };
    for (const f of pieces) {
      at('xmit', NODE, 'vx0', f);
      at('xmit', NODE, 'ul0', { ...f, outer });
    }
    for (const f of [A, B]) at('consume', NODE, 'vx0', { ...f, reason: 0 });
    for (const f of pieces) {
      at('recv', FAR, 'ul0', { ...f, outer });
      at('recv', FAR, 'vx0', f);
      at('xmit', FAR, 'veth-pod2', f);
    }
    at('consume', FAR, 'veth-pod2', { skb: 'c3', len: 3028, sport: 40000, dport: 7000 });
    const packets = reconstructAll(events);
    expect(packets.map(hopsOf)).toHaveLength(1);
    const p = packets[0] as Packet;
    expect(`${p.src}:${p.sport} > ${p.dst}:${p.dport}`, hopsOf(p)).toBe('10.1.0.11:40000 > 10.99.0.2:7000');
    expect(p.fate, hopsOf(p)).toBe('delivered');
    expect(fragmentsAt(p, POD1, 'eth0', 'xmit'), hopsOf(p)).toEqual([1, 2, 3]);
    expect(fragmentsAt(p, NODE, 'vx0', 'xmit'), hopsOf(p)).toEqual([1, 2, 3, 4, 5]);
    expect(fragmentsAt(p, FAR, 'vx0', 'recv'), hopsOf(p)).toEqual([1, 2, 3, 4, 5]);
    // Inside the tunnel too (the probe reads the inner header's field there): the later pieces'
    // underlay hops are later fragments, left out of the expected path's comparison like the others.
    expect(fragmentsAt(p, NODE, 'ul0', 'xmit'), hopsOf(p)).toEqual([1, 2, 3, 4, 5]);
    expect(fragmentsAt(p, FAR, 'ul0', 'recv'), hopsOf(p)).toEqual([1, 2, 3, 4, 5]);
    // Every piece's own encap on vx0's transmit and decap on the far vx0's receive; nothing else marked.
    expect(p.hops.filter((h) => h.encap).map((h) => `${role(h.netns)}/${h.ifname}/${h.event}#${h.fragment}`), hopsOf(p)).toEqual([1, 2, 3, 4, 5].map((n) => `node/vx0/xmit#${n}`));
    expect(p.hops.filter((h) => h.decap).map((h) => `${role(h.netns)}/${h.ifname}/${h.event}#${h.fragment}`), hopsOf(p)).toEqual([1, 2, 3, 4, 5].map((n) => `far/vx0/recv#${n}`));
    expect(p.hops.filter((h) => h.outer).map((h) => h.ifname), hopsOf(p)).toEqual([...Array(5).fill('ul0'), ...Array(5).fill('ul0')]);
  });

  it('a node that reassembles them first (conntrack defragments at the bridge) and cuts the datagram again for vx0: the pieces join the packet', () => {
    // Seen in CI, where conntrack was on in the node: the three fragments reassembled into the
    // first's skb (br0 recv, 3028 bytes, no fragment field), consumed on vx0 once cut into new skbs.
    const { at, events } = timeline();
    for (const f of [A, B, C]) at('xmit', POD1, 'eth0', f);
    for (const f of [A, B, C]) {
      at('rx', NODE, 'veth-pod1', f);
      at('recv', NODE, 'veth-pod1', f);
    }
    const whole = { skb: 'a1', frag: 0, len: 3028, sport: 40000, dport: 7000 };
    at('recv', NODE, 'br0', whole);
    const pieces: Part[] = [
      { skb: 'b2', frag: 0x2000, len: 1444, sport: 40000, dport: 7000 }, { skb: 'c3', frag: 0x2000 | 178, len: 1444 }, { skb: 'n3', frag: 356, len: 180 },
    ];
    const outer = { family: 4 as const, proto: 17, src: '10.77.0.1', dst: '10.77.0.2', sport: 51000, dport: 4789, vni: 42, innerRead: true, ipId: 0, frag: 0 };
    for (const f of pieces) {
      at('xmit', NODE, 'vx0', f);
      at('xmit', NODE, 'ul0', { ...f, outer });
    }
    // The cut datagram is consumed once its pieces are sent (as the kernel printed it in CI).
    at('consume', NODE, 'vx0', { ...whole, reason: 0 });
    for (const f of pieces) {
      at('recv', FAR, 'ul0', { ...f, outer });
      at('recv', FAR, 'vx0', f);
      at('xmit', FAR, 'veth-pod2', f);
    }
    at('consume', FAR, 'veth-pod2', { skb: 'b2', len: 3028, sport: 40000, dport: 7000 });
    const packets = reconstructAll(events);
    expect(packets.map(hopsOf)).toHaveLength(1);
    const p = packets[0] as Packet;
    expect(p.fate, hopsOf(p)).toBe('delivered');
    expect(fragmentsAt(p, POD1, 'eth0', 'xmit'), hopsOf(p)).toEqual([1, 2, 3]);
    expect(fragmentsAt(p, NODE, 'vx0', 'xmit'), hopsOf(p)).toEqual([1, 2, 3]);
    expect(p.hops.filter((h) => h.encap).length, hopsOf(p)).toBe(3);
  });

  it('does not take a datagram of the same id with both addresses other, or cut in another namespace', () => {
    expect(reconstructAll(recut([A, B, C], { src: '10.99.0.1', dst: '10.99.0.9' })).length).toBeGreaterThan(1);
    expect(reconstructAll(recut([A, B, C], { netns: FAR + 1 })).length).toBeGreaterThan(1);
  });
});
