/**
 * Tunnel kinds this kernel cannot create devices for (geneve, ipip, gre: not built here), and
 * malformed encapsulations, as real traffic: datagrams crafted byte by byte and sent with a raw
 * socket from one namespace to another (issue 14, bad input). Nothing marks them as tunnelled in
 * the kernel (no inner headers), so the probes name them by the outer header (probes/decode.bt):
 * the hop shows the inner packet, the tunnel's kind and its VNI or key; a truncated or foreign
 * one is "encapsulated (unknown kind)", and the trace goes on. Addresses are 10.164.x, only
 * inside the two namespaces made here.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { execa } from 'execa';
import type { Packet } from '../../shared/packet.js';
import { describeEncap } from '../../shared/tunnel.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace, randomPrefix } from '../helpers/cli.js';

// Builds each datagram (outer IPv4 header included: IP_HDRINCL) and sends it once.
const CRAFT = String.raw`
import socket, struct, sys
src, dst = sys.argv[1], sys.argv[2]
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def ip(proto, s, d, payload, ident):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, socket.inet_aton(s), socket.inet_aton(d))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload
def udp(sp, dp, payload):
    return struct.pack('!HHHH', sp, dp, 8 + len(payload), 0) + payload
inner = lambda n: ip(17, '10.164.%d.1' % n, '10.164.%d.2' % n, udp(1111, 2222, b'hello'), 100 + n)
eth = lambda t: b'\x02\0\0\0\0\x02' + b'\x02\0\0\0\0\x01' + struct.pack('!H', t)
geneve = struct.pack('!BBHI', 0, 0, 0x6558, 77 << 8) + eth(0x0800) + inner(200)
gre = struct.pack('!HHI', 0x2000, 0x0800, 0x1234) + inner(201)
ipip = inner(202)
foreign = struct.pack('!BBHI', 0, 0, 0x6558, 78 << 8) + eth(0x0806) + b'\0' * 28
truncated = struct.pack('!BB', 0, 0)
out = [ip(17, src, dst, udp(40001, 6081, geneve), 1), ip(47, src, dst, gre, 2), ip(4, src, dst, ipip, 3),
       ip(17, src, dst, udp(40004, 6081, foreign), 4), ip(17, src, dst, udp(40005, 6081, truncated), 5)]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for p in out: s.sendto(p, (dst, 0))
`;

describe.skipIf(!isRoot)(`trace of crafted tunnel datagrams (${NEEDS_ROOT})`, () => {
  const prefix = randomPrefix('h6k').slice(0, 8);
  const a = `${prefix}-a`;
  const b = `${prefix}-b`;
  const ip = (...args: string[]) => execa('ip', args);

  beforeAll(async () => {
    await ip('netns', 'add', a);
    await ip('netns', 'add', b);
    await ip('link', 'add', 'cr0', 'netns', a, 'type', 'veth', 'peer', 'name', 'cr0', 'netns', b);
    await ip('-n', a, 'addr', 'add', '10.164.9.1/24', 'dev', 'cr0');
    await ip('-n', b, 'addr', 'add', '10.164.9.2/24', 'dev', 'cr0');
    for (const n of [a, b]) {
      await ip('-n', n, 'link', 'set', 'cr0', 'up');
      await ip('-n', n, 'link', 'set', 'lo', 'up');
    }
    // No ARP on the way: the first datagram goes out at once.
    const mac = (await execa('ip', ['-n', b, '-j', 'link', 'show', 'cr0'])).stdout;
    await ip('-n', a, 'neigh', 'replace', '10.164.9.2', 'lladdr', (JSON.parse(mac) as Array<{ address: string }>)[0]?.address ?? '', 'dev', 'cr0', 'nud', 'permanent');
  }, 60_000);

  afterAll(async () => {
    for (const n of [a, b]) await execa('ip', ['netns', 'del', n], { reject: false });
  });

  it('names geneve (VNI), gre (key) and ipip from their headers, and a foreign or truncated one unknown, without losing any', async () => {
    const { child } = await startTrace(['--json', '--filter', 'host 10.164.9.2']);
    const r1 = await execa('ip', ['netns', 'exec', a, 'python3', '-c', CRAFT, '10.164.9.1', '10.164.9.2'], { reject: false });
    expect(r1.exitCode, String(r1.stderr)).toBe(0);
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.some((h) => h.ns === a || h.ns === b));
    const enc = (p: Packet | undefined): string => (p?.hops[0]?.encap ? describeEncap(p.hops[0].encap) : 'none');
    const bySrc = (s: string): Packet | undefined => packets.find((p) => p.src === s);
    // The inner packet is the hop's tuple; the outer header is beside it.
    expect(enc(bySrc('10.164.200.1'))).toBe('geneve vni 77 10.164.9.1:40001 → 10.164.9.2:6081');
    expect(enc(bySrc('10.164.201.1'))).toBe('gre key 4660 10.164.9.1 → 10.164.9.2');
    expect(enc(bySrc('10.164.202.1'))).toBe('ipip 10.164.9.1 → 10.164.9.2');
    for (const s of ['10.164.200.1', '10.164.201.1', '10.164.202.1']) {
      const p = bySrc(s);
      expect([p?.dst, p?.sport, p?.dport]).toEqual([s.replace(/1$/, '2'), 1111, 2222]);
      expect(p?.hops.every((h) => h.outer?.dst === '10.164.9.2')).toBe(true);
      // Followed from the sender's veth to where the receiver, which has no tunnel, dropped it.
      expect(p?.hops[0]?.ns).toBe(a);
      expect(p?.hops.at(-1)?.ns).toBe(b);
    }
    // A geneve header naming an ARP frame, and one cut short: unknown kind, the outer tuple as theirs.
    const unknown = packets.filter((p) => p.src === '10.164.9.1' && p.proto === 'udp');
    expect(unknown.map((p) => p.sport).sort()).toEqual([40004, 40005]);
    for (const p of unknown) {
      expect(p.hops[0]?.encap?.type).toBe('unknown');
      expect(enc(p)).toMatch(/^encapsulated \(unknown kind\) 10\.164\.9\.1 → 10\.164\.9\.2$/);
      expect(p.hops.at(-1)?.ns).toBe(b);
    }
    // Besides them only the receiver's ICMP errors back (no tunnel there: port or protocol unreachable).
    expect(packets.filter((p) => p.proto !== 'icmp')).toHaveLength(5);
    expect(packets.filter((p) => p.proto === 'icmp').every((p) => p.src === '10.164.9.2')).toBe(true);
  }, 120_000);
});
