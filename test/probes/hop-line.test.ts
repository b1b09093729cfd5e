import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseProbeLine, parseHopLine, toPackedLine } from '../../probes/hop-line.js';
import fc from 'fast-check';
import { reconstructAll } from '../../shared/reconstruct.js';

const fixture = readFileSync(new URL('../../probes/fixtures/lab-round.txt', import.meta.url), 'utf8').split('\n').filter(Boolean);

describe('hop line parser', () => {
  it('parses every line of a real capture', () => {
    const parsed = fixture.map(parseProbeLine);
    expect(parsed[0]).toEqual({ type: 'attaching', probes: 8 });
    expect(parsed[1]).toEqual({ type: 'ready' });
    const hops = parsed.filter((l) => l.type === 'hop');
    expect(hops.length).toBe(fixture.filter((l) => l.startsWith('H ')).length);
    expect(parsed.filter((l) => l.type === 'other')).toEqual([]);
  });

  it.each([
    ['net_dev_start_xmit', 'xmit'], ['netif_rx', 'rx'], ['netif_receive_skb', 'recv'], ['kfree_skb', 'drop'], ['consume_skb', 'consume'],
  ])('parses the captured output of %s.bt as %s hops', (probe, kind) => {
    const lines = readFileSync(new URL(`../../probes/fixtures/${probe}.txt`, import.meta.url), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines.length).toBeGreaterThan(0);
    // The packed form the probes print now, and the long form captured before it.
    expect(lines.some((l) => l.startsWith('P '))).toBe(true);
    expect(lines.some((l) => l.startsWith('H '))).toBe(true);
    for (const l of lines) {
      const parsed = parseProbeLine(l);
      expect(parsed.type).toBe('hop');
      if (parsed.type === 'hop') expect(parsed.hop.kind).toBe(kind);
    }
  });

  it('decodes raw network-order fields (addresses, ports, ids, lengths)', () => {
    const hop = parseHopLine(fixture.find((l) => l.startsWith('H 1 ')) ?? '');
    expect(hop).toMatchObject({ kind: 'xmit', family: 4, proto: 17, src: '10.244.1.11', dst: '10.244.1.12', dport: 5000, len: 60, ifname: 'eth0' });
  });

  it('decodes IPv6 hops', () => {
    const v6 = fixture.map(parseProbeLine).flatMap((l) => (l.type === 'hop' && l.hop.family === 6 ? [l.hop] : []));
    expect(v6.length).toBeGreaterThan(0);
    expect(v6[0]).toMatchObject({ src: 'fd00:244:1::11', dst: 'fd00:244:1::12', dport: 5001, proto: 17 });
  });

  it('keeps an empty device name (drop without device) as the last field', () => {
    const line = 'H 4 100 0 ffff8881 0 0 4 17 15360 57024 184677386 0 201454602 0 16527 34835 0 0 0 0 12 ';
    expect(parseHopLine(line)).toMatchObject({ kind: 'drop', ifname: '', reason: 12, netns: 0 });
  });

  it('rejects malformed lines instead of inventing fields', () => {
    expect(parseHopLine('H 9 1 2 ffff 1 1 4 17 0 0 0 0 0 0 0 0 0 0 0 0 0 x')).toBeNull();
    expect(parseHopLine('H 1 1 2 zz 1 1 4 17 0 0 0 0 0 0 0 0 0 0 0 0 0 x')).toBeNull();
    expect(parseHopLine('H 1 1 2')).toBeNull();
    expect(parseHopLine('H 1 1x 2 ffff 1 1 4 17 0 0 0 0 0 0 0 0 0 0 0 0 0 x')).toBeNull();
    expect(parseProbeLine('something else')).toEqual({ type: 'other', text: 'something else' });
  });

  it('reads captured header bytes from HB lines and trims them to the IP length', () => {
    const bytes = '4500001c0001400040110000c0a80001c0a80002' + '13881389000800ff' + 'ffffffff';
    // As the probes print them: 64-bit words read from memory (little-endian), 16 hex digits each.
    const field = bytes.match(/.{16}/g)?.map((w) => w.match(/../g)?.reverse().join('')).join('') ?? '';
    expect(field.slice(0, 16)).toBe('004001001c000045');
    // tot_len 28 (raw 0x1c00 = 7168), udp 5000 → 5001, 4 bytes past the packet's end.
    const line = `HB 1 100 0 ffff8881 7 3 4 17 7168 256 16820416 0 33597632 0 34835 35091 0 0 0 0 0 ${field} veth0`;
    const hop = parseHopLine(line);
    expect(hop).toMatchObject({ kind: 'xmit', len: 28, src: '192.168.0.1', dst: '192.168.0.2', sport: 5000, dport: 5001, ifname: 'veth0' });
    expect(Buffer.from(hop?.head ?? []).toString('hex')).toBe(bytes.slice(0, 56));
    expect(parseProbeLine(line).type).toBe('hop');
    expect(parseHopLine(line.replace('1c000045', '1c0000z5'))).toBeNull();
    expect(parseHopLine(line.replace('1c000045', '1c00004z'))).toBeNull();
    expect(parseHopLine(line.replace(field, field.slice(0, -1)))).toBeNull();
  });

  it('reads the packed form the probes print as the same hop as the long form', () => {
    const long = fixture.filter((l) => l.startsWith('H '));
    expect(long.length).toBeGreaterThan(20);
    for (const l of long) {
      const packed = toPackedLine(l);
      expect(packed).toMatch(/^P [0-9a-f]+ /);
      expect(parseHopLine(packed ?? '')).toEqual(parseHopLine(l));
      expect(parseProbeLine(packed ?? '').type).toBe('hop');
    }
    // Every field at its edges: 32-bit netns and ifindex, IPv6 halves above 2^53, tcpseq 2^32-1,
    // the largest drop reason the packed form carries (subsystem 15, code 4095).
    const edge = 'H 5 9007199254740991 65535 ffffffffffffffff 4294967295 4294967295 6 6 65535 0 18446744073709551615 1 9223372036854775808 0 65535 1 255 65535 255 4294967295 987135 a-b';
    expect(parseHopLine(toPackedLine(edge) ?? '')).toEqual(parseHopLine(edge));
    expect(parseHopLine(toPackedLine(edge) ?? '')).toMatchObject({ netns: 4294967295, ifindex: 4294967295, cpu: 65535, tcpSeq: 4294967295, reason: 987135, ifname: 'a-b' });
  });

  it('parses every line of a real capture in the packed form: IPv4 and IPv6, every hop kind', () => {
    const packed = readFileSync(new URL('../../probes/fixtures/lab-round-packed.txt', import.meta.url), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    const parsed = packed.map(parseProbeLine);
    expect(parsed.filter((l) => l.type === 'other')).toEqual([]);
    const hops = parsed.flatMap((l) => (l.type === 'hop' ? [l.hop] : []));
    expect(hops.length).toBe(packed.filter((l) => l.startsWith('P ')).length);
    expect(new Set(hops.map((h) => h.family))).toEqual(new Set([4, 6]));
    expect(new Set(hops.map((h) => h.kind))).toEqual(new Set(['xmit', 'rx', 'recv', 'drop', 'consume']));
    // The lab's pod → pod UDP echo, as the long-form capture shows it.
    expect(hops.some((h) => h.src === '10.244.1.11' && h.dst === '10.244.1.12' && h.dport === 5000 && h.ifname === 'eth0')).toBe(true);
    expect(hops.some((h) => h.src === 'fd00:244:1::11' && h.dst === 'fd00:244:1::12' && h.dport === 5001)).toBe(true);
  });

  it('reads packed lines with captured bytes, and rejects damaged packed lines', () => {
    const bytes = '4500001c0001400040110000c0a80001c0a80002' + '13881389000800ff';
    const field = bytes.match(/.{16}/g)?.map((w) => w.match(/../g)?.reverse().join('')).join('') ?? '';
    const long = `HB 1 100 0 ffff8881 7 3 4 17 7168 256 16820416 0 33597632 0 34835 35091 0 0 0 0 0 ${field} veth0`;
    const packed = toPackedLine(long) ?? '';
    expect(packed.startsWith('PB ')).toBe(true);
    expect(parseHopLine(packed)).toEqual(parseHopLine(long));
    // Any one character changed, dropped or doubled in the numeric part: rejected or read the same as a valid line would.
    const body = packed.slice(0, packed.lastIndexOf(' '));
    fc.assert(fc.property(fc.nat(body.length - 1), fc.constantFrom('g', ' ', '', 'x', '-'), (at, c) => {
      const damaged = body.slice(0, Math.max(3, at)) + c + body.slice(Math.max(3, at) + (c === '' ? 1 : 0)) + ' veth0';
      const hop = parseHopLine(damaged);
      if (hop !== null) expect(hop.ifname.length).toBeGreaterThan(0);
    }));
    expect(parseHopLine(packed.replace(/^PB [0-9a-f]+/, 'PB 1g'))).toBeNull();
    expect(parseHopLine('P 1 2')).toBeNull();
    // kind 9 and family 5 do not exist.
    expect(parseHopLine('P 64 ffff8881 700000003 9411000000000000 a0bf40a 0 c0bf40a 0 8813 0 eth0')).toBeNull();
    expect(parseHopLine('P 64 ffff8881 700000003 1511000000000000 a0bf40a 0 c0bf40a 0 8813 0 eth0')).toBeNull();
    expect(parseHopLine('P 64 ffff8881 700000003 1411000000000000 a0bf40a 0 c0bf40a 0 8813 0 eth0')).toMatchObject({ kind: 'xmit', netns: 7, ifindex: 3, src: '10.244.11.10', dport: 5000 });
  });

  it("reads a fragment's field from word 9's top 16 bits, and a subsystem's folded drop reason below it", () => {
    // IPv4 udp 10.0.0.1:37029 > 10.0.0.2:5000, id 55403: the first fragment (frag_off MF, raw
    // 0x0020), a later one (MF, offset 185: raw 0xb920, no ports), and the last (offset 370, raw 0x7201).
    // Word 3: kind << 60 | fam << 56 | l4 << 48 | len << 32 | id << 16 | cpu (raw: network order read little-endian).
    const info = (kind: bigint, fam: bigint, rawLen: bigint, rawId: bigint): string => ((kind << 60n) | (fam << 56n) | (17n << 48n) | (rawLen << 32n) | (rawId << 16n)).toString(16);
    const line = (w9: bigint): string => `P 64 ffff8881a0310600 f000000102 ${info(1n, 4n, 0xdc05n, 0x6bd8n)} 100000a 0 200000a 0 ${w9.toString(16)} 0 eth0`;
    const first = parseHopLine(line((0x0020n << 48n) | 0xa5908813n));
    expect(first).toMatchObject({ kind: 'xmit', proto: 17, ipId: 55403, sport: 37029, dport: 5000, frag: 0x2000, reason: 0 });
    expect(parseHopLine(line(0xb920n << 48n))).toMatchObject({ sport: 0, dport: 0, frag: 0x2000 | 185 });
    expect(parseHopLine(line(0x7201n << 48n))).toMatchObject({ frag: 370 });
    // DF alone (raw 0x0040) is no fragment: no field.
    expect(parseHopLine(line((0x0040n << 48n) | 0xa5908813n))?.frag).toBeUndefined();
    // IPv6: the Fragment header's offset/M (offset 181 × 8, M: 0x05a9, raw 0xa905) in IPv4's layout.
    const v6 = `P 64 ffff8881a0310600 f000000102 ${info(1n, 6n, 0xb005n, 0x4a6bn)} 2030000fd 1100000000000000 2030000fd 1200000000000000 ${(0xa905n << 48n).toString(16)} 0 eth0`;
    expect(parseHopLine(v6)).toMatchObject({ family: 6, ipId: 0x6b4a, frag: 0x2000 | 181 });
    // A drop reason of a subsystem (openvswitch, 2 << 16 | 5) is folded to 2 << 12 | 5 by the probe.
    const drop = `P 64 ffff8881a0310600 f000000102 ${info(4n, 4n, 0xdc05n, 0x6bd8n)} 100000a 0 200000a 0 ${((0x2005n << 32n) | 0xa5908813n).toString(16)} 0 eth0`;
    expect(parseHopLine(drop)).toMatchObject({ kind: 'drop', reason: (2 << 16) | 5 });
  });

  it('recognises lost-event reports', () => {
    expect(parseProbeLine('Lost 1234 events')).toEqual({ type: 'lost', count: 1234 });
  });

  it('rebuilds the lab round: DNAT into pod2, SNAT replies, the FORWARD drop', () => {
    const events = fixture.map(parseProbeLine).flatMap((l) => (l.type === 'hop' ? [l.hop] : []));
    const packets = reconstructAll(events, { dropReason: (c) => (c === 12 ? 'NETFILTER_DROP' : `reason-${c}`) });
    const syn = packets.find((p) => p.proto === 'tcp' && p.dport === 8080 && p.hops[0]?.tcpFlags === 2);
    expect(syn?.hops.map((h) => `${h.ifname}/${h.event}`)).toEqual([
      'eth0/xmit', 'eth-node/rx', 'eth-node/recv', 'br0/xmit', 'veth-pod2/xmit', 'eth0/rx', 'eth0/recv', '/consume',
    ]);
    expect(syn?.hops[3]?.nat).toMatchObject({ kind: 'dnat', to: { dst: '10.244.1.12', dport: 80 } });
    const dropped = packets.filter((p) => p.fate === 'dropped');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ dport: 9999, drop: { reason: 'NETFILTER_DROP', ifname: 'br0' } });
  });
});
