/**
 * Tunnels (issue 14): the probes' encapsulated hop lines (`PE`, captured from real vxlan labs),
 * the tunnel a hop's outer headers name, and reconstruction keeping one packet through a tunnel
 * with encap, outer and decap marked on its hops.
 */
import { describe, it, expect } from 'vitest';
import { parseHopLine, parseProbeLine, pushHopLines } from '../../probes/hop-line.js';
import { Reconstructor, reconstructAll } from '../../shared/reconstruct.js';
import { describeEncap, tunnelOf } from '../../shared/tunnel.js';
import { formatPacket } from '../../shared/format.js';
import { decodeHop, encodeHop } from '../../shared/wire.js';
import type { HopEvent, HopOuter } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { describeFilter, matchesHop, packetMatches, parseFilter } from '../../shared/filter/index.js';

// Real lines (test/integration's overlay lab): IPv6 pods over an IPv4 underlay, and IPv4 pods over an IPv6 one.
const V6_IN_V4 = 'PE 4cd42fff4a9 ffff888134c15700 f000025400000002 1611280000000001 20042fd 1000000000000000 10042fd 1000000000000000 391595cc 0 14110000002a0000 2004d0a 0 1004d0a 0 b512428d ul0';
const V4_IN_V6 = 'PE 4cb475d2bab ffff8881025ff600 f000029b00000002 14113c00abfa0000 a022a0a 0 a012a0a 0 39152ee4 0 16110000002a0000 77fd 200000000000000 77fd 100000000000000 b512a3ad ul0';

describe('encapsulated hop lines', () => {
  it('reads the inner packet as the hop and the outer headers beside it (IPv6 in IPv4)', () => {
    const h = parseHopLine(V6_IN_V4);
    expect(h).toMatchObject({ kind: 'xmit', family: 6, proto: 17, src: 'fd42:2::10', dst: 'fd42:1::10', sport: 5433, ifname: 'ul0' });
    expect(h?.outer).toEqual({ family: 4, proto: 17, src: '10.77.0.2', dst: '10.77.0.1', sport: 36162, dport: 4789, vni: 42, innerRead: true, ipId: 0, frag: 0 });
  });

  it('reads an IPv6 Fragment header\'s id and offset/M into the outer id and fragment field (IPv4\'s layout)', () => {
    // decode.bt's word 15: offset/M (raw) << 48 | the id's low 16 bits (raw) << 32 | ports. First
    // fragment of id 0x12345678: offset 0, M (bytes 00 01); the later one at 1232 bytes (04 d0).
    const words = V4_IN_V6.split(' ');
    const first = [...words.slice(0, 16), '1007856b512a3ad', 'ul0'].join(' ');
    const later = [...words.slice(0, 16), 'd004785600000000', 'ul0'].join(' ');
    expect(parseHopLine(first)?.outer).toMatchObject({ family: 6, ipId: 0x5678, frag: 0x2000, dport: 4789 });
    expect(parseHopLine(later)?.outer).toMatchObject({ family: 6, ipId: 0x5678, frag: 154 });
  });

  it('reads an IPv6 outer header (IPv4 in IPv6)', () => {
    const h = parseHopLine(V4_IN_V6);
    expect(h).toMatchObject({ family: 4, src: '10.42.2.10', dst: '10.42.1.10', sport: 5433 });
    expect(h?.outer).toMatchObject({ family: 6, src: 'fd77::2', dst: 'fd77::1', dport: 4789, vni: 42 });
  });

  it('takes the B (captured bytes) and E tags together, and plain lines stay without outer', () => {
    const withBytes = V6_IN_V4.replace(/^PE /, 'PBE ').replace(/ ul0$/, ' 0011223344556677 ul0');
    expect(parseHopLine(withBytes)?.outer?.vni).toBe(42);
    expect(parseHopLine(withBytes)?.head).toBeDefined();
    const plain = 'P 4cb475d9a89 ffff8881025ff600 f000025400000005 34113c00abfa0000 a022a0a 0 a012a0a 0 39152ee4 0 vx0';
    expect(parseHopLine(plain)?.outer).toBeUndefined();
    expect(parseProbeLine(V6_IN_V4).type).toBe('hop');
  });

  it('refuses malformed encapsulated lines rather than guess', () => {
    // An encap word that says none of "inner read" (1), "inner not IP" (2), "the sending socket's tuple" (3).
    expect(parseHopLine(V6_IN_V4.replace(' 14110000002a0000 ', ' 44110000002a0000 '))).toBeNull();
    // Words missing.
    expect(parseHopLine(V6_IN_V4.replace(' 0 b512428d ul0', ' ul0'))).toBeNull();
    // An IPv4 outer address wider than 32 bits.
    expect(parseHopLine(V6_IN_V4.replace(' 2004d0a 0 1004d0a ', ' 12004d0a00 0 1004d0a '))).toBeNull();
  });
});

const OUTER: HopOuter = { family: 4, proto: 17, src: '10.77.0.1', dst: '10.77.0.2', sport: 40000, dport: 4789, vni: 42, innerRead: true };

describe('which tunnel', () => {
  it.each<[Partial<HopOuter>, string, number | null]>([
    [{}, 'vxlan', 42],
    [{ dport: 8472 }, 'vxlan', 42],
    [{ dport: 6081 }, 'geneve', 42],
    [{ proto: 4, sport: 0, dport: 0 }, 'ipip', null],
    [{ proto: 41, sport: 0, dport: 0 }, 'ip6ip', null],
    [{ proto: 47, sport: 0, dport: 0 }, 'gre', null],
    [{ dport: 9999 }, 'unknown', null],
    [{ innerRead: false }, 'unknown', null],
  ])('%j is %s', (over, type, vni) => {
    const e = tunnelOf({ ...OUTER, ...over });
    expect(e.type).toBe(type);
    expect(e.vni).toBe(vni);
  });

  it('describes it in words', () => {
    expect(describeEncap(tunnelOf(OUTER))).toBe('vxlan vni 42 10.77.0.1:40000 → 10.77.0.2:4789');
    expect(describeEncap(tunnelOf({ ...OUTER, dport: 9999 }))).toBe('encapsulated (unknown kind) 10.77.0.1 → 10.77.0.2');
    expect(describeEncap(tunnelOf({ ...OUTER, family: 6, src: 'fd77::1', dst: 'fd77::2' }))).toBe('vxlan vni 42 [fd77::1]:40000 → [fd77::2]:4789');
  });
});

const N1 = 201;
const N2 = 202;
function ev(over: Partial<HopEvent>): HopEvent {
  return {
    kind: 'xmit', t: 1_000_000, cpu: 0, skb: 'ffff0009', netns: N1, ifindex: 2, ifname: 'vx0', family: 4,
    proto: 17, len: 60, ipId: 77, src: '10.42.1.10', dst: '10.42.2.10', sport: 40001, dport: 5433,
    icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0, ...over,
  };
}

/** node1's tunnel transmit, the underlay, node2's tunnel receive, as the probes report them. */
function acrossTunnel(outer: HopOuter | ((i: number) => HopOuter)): HopEvent[] {
  const o = (i: number): HopOuter => (typeof outer === 'function' ? outer(i) : outer);
  return [
    ev({ t: 1_000_000, kind: 'recv', ifname: 'br0' }),
    ev({ t: 1_010_000, kind: 'xmit', ifname: 'vx0' }),
    ev({ t: 1_020_000, kind: 'xmit', ifname: 'ul0', outer: o(0) }),
    ev({ t: 1_030_000, kind: 'rx', netns: N2, ifname: 'ul0', outer: o(1) }),
    ev({ t: 1_040_000, kind: 'recv', netns: N2, ifname: 'ul0', outer: o(2) }),
    ev({ t: 1_050_000, kind: 'recv', netns: N2, ifname: 'vx0' }),
    ev({ t: 1_060_000, kind: 'xmit', netns: N2, ifname: 'br0' }),
    ev({ t: 1_070_000, kind: 'consume', netns: N2, ifname: '' }),
  ];
}

describe('reconstruction through a tunnel', () => {
  it('keeps one packet, with encap on the tunnel transmit, outer on the underlay and decap on the tunnel receive', () => {
    const [p, ...rest] = reconstructAll(acrossTunnel(OUTER));
    expect(rest).toHaveLength(0);
    expect(p?.fate).toBe('delivered');
    const marks = p?.hops.map((h) => `${h.ifname}/${h.event}${h.encap ? ' encap' : ''}${h.outer ? ' outer' : ''}${h.decap ? ' decap' : ''}`);
    expect(marks).toEqual(['br0/recv', 'vx0/xmit encap', 'ul0/xmit outer', 'ul0/rx outer', 'ul0/recv outer', 'vx0/recv decap', 'br0/xmit', '/consume']);
    expect(p?.hops[1]?.encap).toEqual({ type: 'vxlan', vni: 42, outer: { family: 4, proto: 17, src: '10.77.0.1', dst: '10.77.0.2', sport: 40000, dport: 4789 } });
    expect(p?.hops.every((h) => h.nat === null && h.src === '10.42.1.10')).toBe(true);
  });

  it('marks encap on the first underlay hop when the tunnel transmit was not seen', () => {
    const events = acrossTunnel(OUTER).filter((e) => !(e.ifname === 'vx0' && e.kind === 'xmit'));
    const [p] = reconstructAll(events);
    expect(p?.hops.find((h) => h.encap)?.ifname).toBe('ul0');
    expect(p?.hops.find((h) => h.encap)?.event).toBe('xmit');
  });

  it('goes on past an encapsulation it cannot read: "unknown", the outer tuple not read as NAT', () => {
    // Inner header not IP: the probe reports the outer headers as the hop's tuple.
    const bad: HopOuter = { ...OUTER, innerRead: false };
    const events = acrossTunnel(bad).map((e) => (e.outer ? { ...e, src: '10.77.0.1', dst: '10.77.0.2', sport: 40000, dport: 4789 } : e));
    const [p, ...rest] = reconstructAll(events);
    expect(rest).toHaveLength(0);
    expect(p?.hops).toHaveLength(8);
    expect(p?.hops[1]?.encap?.type).toBe('unknown');
    expect(describeEncap(p?.hops[1]?.encap as NonNullable<Packet['hops'][number]['encap']>)).toMatch(/^encapsulated \(unknown kind\)/);
    expect(p?.hops.slice(2, 6).every((h) => h.nat === null)).toBe(true);
  });

  it('nested tunnels (vxlan VNI 100 over vxlan VNI 42): one packet, each encap on its own device, each decap where it ends', () => {
    // The hops a real trace shows (a nested lab: vxi over vx0 over ul0, veth underlay): the probe
    // reads the innermost packet and the outermost header, so only `outer` changes on the way.
    const middle: HopOuter = { ...OUTER, src: '10.77.255.1', dst: '10.77.255.2', vni: 100 };
    const events = [
      ev({ t: 1_000_000, kind: 'recv', ifname: 'br0' }),
      ev({ t: 1_010_000, kind: 'xmit', ifname: 'vxi' }),
      ev({ t: 1_020_000, kind: 'xmit', ifname: 'vx0', outer: middle }),
      ev({ t: 1_030_000, kind: 'xmit', ifname: 'ul0', outer: OUTER }),
      ev({ t: 1_040_000, kind: 'recv', netns: N2, ifname: 'ul0', outer: OUTER }),
      ev({ t: 1_050_000, kind: 'recv', netns: N2, ifname: 'vx0', outer: middle }),
      ev({ t: 1_060_000, kind: 'recv', netns: N2, ifname: 'vxi' }),
      ev({ t: 1_070_000, kind: 'xmit', netns: N2, ifname: 'br0' }),
    ];
    const [p, ...rest] = reconstructAll(events);
    expect(rest).toHaveLength(0);
    const vni = (e: { vni: number | null } | undefined): string => (e ? ` ${e.vni}` : '');
    expect(p?.hops.map((h) => `${h.ifname}/${h.event}${h.encap ? ` encap${vni(h.encap)}` : ''}${h.outer ? ` outer ${h.outer.dst}` : ''}${h.decap ? ` decap${vni(h.decap)}` : ''}`)).toEqual([
      'br0/recv', 'vxi/xmit encap 100', 'vx0/xmit encap 42 outer 10.77.255.2', 'ul0/xmit outer 10.77.0.2',
      'ul0/recv outer 10.77.0.2', 'vx0/recv outer 10.77.255.2 decap 42', 'vxi/recv decap 100', 'br0/xmit',
    ]);
    expect(p?.hops.every((h) => h.src === '10.42.1.10' && h.nat === null)).toBe(true);
  });

  it('keeps the tunnel marks through the live line path (pushHopLines into the store)', () => {
    const lines = [
      'P 4cd42ffd000 ffff888134c15700 f000025400000005 1611280000000001 20042fd 1000000000000000 10042fd 1000000000000000 391595cc 0 vx0',
      V6_IN_V4,
      V6_IN_V4.replace(' 4cd42fff4a9 ', ' 4cd430010ff ').replace(' f000025400000002 1611', ' f000029b00000002 3611'),
      'P 4cd43005b46 ffff888134c15700 f000029b00000005 3611280000000001 20042fd 1000000000000000 10042fd 1000000000000000 391595cc 0 vx0',
      '',
    ].join('\n');
    const r = new Reconstructor();
    const others: string[] = [];
    expect(pushHopLines(r, lines, 0, lines.length, (l) => others.push(l))).toBe(4);
    expect(others).toEqual([]);
    const [p, ...rest] = r.flush();
    expect(rest).toHaveLength(0);
    expect(p?.hops.map((h) => `${h.ifname}/${h.event}${h.encap ? ' encap' : ''}${h.outer ? ' outer' : ''}${h.decap ? ' decap' : ''}`))
      .toEqual(['vx0/xmit encap', 'ul0/xmit outer', 'ul0/recv outer', 'vx0/recv decap']);
  });
});

describe('filters inside tunnels', () => {
  const inner = { family: 4 as const, proto: 17, src: '10.42.1.10', dst: '10.42.2.10', sport: 40000, dport: 5433 };
  const outer = { family: 4 as const, proto: 17, src: '10.77.0.1', dst: '10.77.0.2', sport: 35707, dport: 4789, vni: 42 };

  it('parses and describes tunnel and vni, and refuses bad VNIs with a clear message', () => {
    expect(parseFilter('tunnel and vni 42')).toEqual({ kind: 'and', operands: [{ kind: 'tunnel' }, { kind: 'vni', vni: 42 }] });
    expect(describeFilter(parseFilter('TUNNEL or not vni 16777215'))).toBe('tunnel or not vni 16777215');
    expect(() => parseFilter('vni 16777216')).toThrow(/VNI 16777216 is out of range \(0-16777215\)/);
    expect(() => parseFilter('vni')).toThrow(/expected a VNI \(0-16777215\) after 'vni', got the end of the filter/);
    expect(() => parseFilter('vni x')).toThrow(/expected a VNI/);
    expect(() => parseFilter('vni 9999999999999')).toThrow(/out of range/);
  });

  it.each<[string, boolean, boolean]>([
    // filter, matches the underlay hop, matches the same packet outside the tunnel
    ['host 10.42.2.10', true, true],
    ['host 10.77.0.2', true, false],
    ['udp port 4789', true, false],
    ['udp port 5433', true, true],
    ['tunnel', true, false],
    ['not tunnel', false, true],
    ['vni 42', true, false],
    ['vni 43', false, false],
    ['tunnel and host 10.42.1.10', true, false],
    ['host 10.99.9.9', false, false],
  ])('%s', (text, onUnderlay, outside) => {
    const ast = parseFilter(text);
    expect(matchesHop(ast, { ...inner, outer })).toBe(onUnderlay);
    expect(matchesHop(ast, inner)).toBe(outside);
  });

  it('matches a packet by its underlay hops, with the VNI from where it entered the tunnel', () => {
    const [p] = reconstructAll(acrossTunnel(OUTER));
    const pkt = p as Packet;
    expect(packetMatches(parseFilter('vni 42'), pkt)).toBe(true);
    expect(packetMatches(parseFilter('vni 7'), pkt)).toBe(false);
    expect(packetMatches(parseFilter('host 10.77.0.2'), pkt)).toBe(true);
    expect(packetMatches(parseFilter('udp dst port 4789'), pkt)).toBe(true);
    expect(packetMatches(parseFilter('host 10.77.0.9'), pkt)).toBe(false);
  });
});

describe('human form of a tunnelled packet', () => {
  it('marks encap and decap and shows the outer tuple on the underlay hops', () => {
    const [p] = reconstructAll(acrossTunnel(OUTER), { nsName: (n) => (n === N1 ? 'node1' : n === N2 ? 'node2' : null) });
    const lines = formatPacket(p as Packet, 1).split('\n').filter((l) => /^\s+\+/.test(l));
    expect(lines[1]).toMatch(/node1\s+vx0\s+xmit\s+10\.42\.1\.10:40001 → 10\.42\.2\.10:5433\s+⇢ encap vxlan vni 42 10\.77\.0\.1:40000 → 10\.77\.0\.2:4789$/);
    expect(lines[2]).toMatch(/node1\s+ul0\s+xmit\s+10\.42\.1\.10:40001 → 10\.42\.2\.10:5433\s+in tunnel 10\.77\.0\.1:40000 → 10\.77\.0\.2:4789$/);
    expect(lines[5]).toMatch(/node2\s+vx0\s+recv\s+.*⇠ decap vxlan vni 42$/);
  });

  it('says "encapsulated (unknown kind)" where the tunnel is not known', () => {
    const [p] = reconstructAll(acrossTunnel({ ...OUTER, dport: 9999 }));
    const text = formatPacket(p as Packet, 1);
    expect(text).toContain('⇢ encap encapsulated (unknown kind) 10.77.0.1 → 10.77.0.2');
    expect(text).toContain('⇠ decap encapsulated (unknown kind)');
  });
});

describe('tunnel headers on the wire (live stream, recordings)', () => {
  it('round-trip through protobuf, IPv4 and IPv6 outer, and stay absent on plain hops', () => {
    for (const line of [V6_IN_V4, V4_IN_V6]) {
      const ev = parseHopLine(line) as HopEvent;
      expect(decodeHop(encodeHop(ev))).toEqual(ev);
    }
    const plain = ev({});
    expect(decodeHop(encodeHop(plain)).outer).toBeUndefined();
  });

  it('refuses a tunnel of no known family', () => {
    const bytes = encodeHop({ ...ev({}), outer: { ...OUTER, family: 5 as 4 } });
    expect(() => decodeHop(bytes)).toThrow(/unknown tunnel family 5/);
  });
});
