/**
 * Overlay networks (issue 14) on real namespaces with real bpftrace: a pod → pod datagram through
 * a vxlan tunnel between two "node" namespaces is one packet from pod to pod, the tunnel device's
 * transmit says where it was wrapped (vxlan, VNI, outer tuple), the underlay hops carry the inner
 * tuple and the outer one, and the remote tunnel device's receive says where it was unwrapped.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { execa } from 'execa';
import { startEcho, sendUdp, type Server } from '../../server/lab/traffic.js';
import type { Packet } from '../../shared/packet.js';
import type { AnnotatedPacket } from '../../shared/expectation.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startReady, randomPrefix } from '../helpers/cli.js';
import { TIERS_HERE } from '../helpers/tiers.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { overlayLabFor, overlayLabUp, overlayLabDown, traceOverlay, type OverlayLab, type OverlayKind } from '../helpers/overlay-lab.js';

const PORT = 5433;

/** One counter of `nstat -az` in a namespace (NaN when it cannot be read). */
async function nstatOf(ns: string, counter: string): Promise<number> {
  const r = await execa('ip', ['netns', 'exec', ns, 'nstat', '-az', counter], { reject: false });
  return Number(new RegExp(`${counter}\\s+(\\d+)`).exec(String(r.stdout))?.[1] ?? NaN);
}

/** What decides whether a pod's datagram is too big on the way (for a failing assertion's message). */
async function mtuFacts(up: OverlayLab): Promise<string> {
  const run = async (ns: string, ...args: string[]): Promise<string> => {
    const r = await execa('ip', ['netns', 'exec', ns, ...args], { reject: false });
    return `${ns}$ ${args.join(' ')}\n${String(r.stdout).trim()}${r.stderr ? `\n${String(r.stderr).trim()}` : ''}`;
  };
  const out: string[] = [];
  for (const n of [up.ns.node1, up.ns.node2]) {
    out.push(await run(n, 'ip', '-d', 'link', 'show', up.tunnel), await run(n, 'ip', '-6', 'route', 'show', 'cache'));
    out.push(await run(n, 'nstat', '-az', 'Ip6FragFails', 'Ip6ReasmOKs', 'Ip6OutFragOKs', 'Icmp6OutPktTooBigs', 'Ip6InTooBigErrors', 'Ip6OutForwDatagrams'));
  }
  for (const n of [up.ns.pod1, up.ns.pod2]) out.push(await run(n, 'ip', '-6', 'route', 'show', 'cache'), await run(n, 'nstat', '-az', 'Icmp6InPktTooBigs', 'Ip6OutFragOKs'));
  return out.join('\n');
}

// Another VTEP's IPv6-fragmented vxlan datagram (Linux never fragments its own: the test above),
// built byte by byte and sent with a raw socket from a node's namespace: the inner UDP datagram
// src → dst (port 5433) in an Ethernet frame to the far vx0's MAC, VNI 42, in UDP to 4789 (its
// checksum over the IPv6 pseudo-header: vxlan refuses a zero one), split after 1232 bytes into
// two IPv6 fragments with the Fragment header (next header 44) and the given id.
const CRAFT_V6_FRAGMENTS = String.raw`
import socket, struct, sys
osrc, odst, isrc, idst, dmac, smac, fid, size = sys.argv[1:9]
fid, size = int(fid), int(size)
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
mac = lambda m: bytes(int(x, 16) for x in m.split(':'))
iudp = struct.pack('!HHHH', 40123, 5433, 8 + size, 0) + b'x' * size
ih = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(iudp), 777, 0, 64, 17, 0, socket.inet_aton(isrc), socket.inet_aton(idst))
ih = ih[:10] + struct.pack('!H', csum(ih)) + ih[12:]
vx = struct.pack('!BBBBI', 0x08, 0, 0, 0, 42 << 8) + mac(dmac) + mac(smac) + b'\x08\x00' + ih + iudp
s6, d6 = socket.inet_pton(socket.AF_INET6, osrc), socket.inet_pton(socket.AF_INET6, odst)
u = struct.pack('!HHHH', 40000, 4789, 8 + len(vx), 0) + vx
u = u[:6] + struct.pack('!H', csum(s6 + d6 + struct.pack('!I3xB', len(u), 17) + u) or 0xffff) + u[8:]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
for off, chunk, more in [(0, u[:1232], 1), (1232, u[1232:], 0)]:
    fh = struct.pack('!BBHI', 17, 0, (off // 8) << 3 | more, fid)
    s.sendto(struct.pack('!IHBB16s16s', 6 << 28, 8 + len(chunk), 44, 64, s6, d6) + fh + chunk, (odst, 0))
`;

describe.skipIf(!isRoot)(`trace through a vxlan overlay (${NEEDS_ROOT})`, () => {
  let lab: OverlayLab | null = null;
  let echo: Server | null = null;

  afterEach(async () => {
    await echo?.stop();
    if (lab) await overlayLabDown(lab);
    lab = null;
    echo = null;
  });

  it.each<[OverlayKind]>([['vxlan'], ['vxlan-flannel'], ['vxlan-v6underlay'], ['vxlan-v6inner']])('%s: one packet pod to pod, encap and decap on the tunnel devices, outer tuple on the underlay', async (kind) => {
    lab = overlayLabFor(randomPrefix('ov').slice(0, 7), { kind });
    await overlayLabUp(lab, { kind });
    // IPv6 pods over the IPv4 underlay where the lab has them.
    const pod1 = lab.addr.pod1v6 ?? lab.addr.pod1;
    const pod2 = lab.addr.pod2v6 ?? lab.addr.pod2;
    echo = await startEcho(lab.ns.pod2, 'udp', pod2, PORT);
    const up = lab;
    const { packets: seen, summary } = await traceOverlay(up, `udp and host ${pod2} and port ${PORT}`, async () => {
      const sent = await sendUdp(up.ns.pod1, pod2, PORT, 2, 32, 50);
      expect(sent.replies).toBe(2);
    });
    const packets = seen;
    // IPv6 forwarded into the vxlan device lacks the headroom the tunnel needs: the kernel copies
    // it into a new skb (skb_expand_head: the old one is consumed on vx0 while the copy shares its
    // data). The copy's hops are joined: still one packet from pod to pod.
    const requests = packets.filter((p) => p.dst === pod2);
    const replies = packets.filter((p) => p.src === pod2);
    // What was seen, when it is not what is expected (the assertions below show only counts).
    if (requests.length !== 2 || replies.length !== 2) console.log(JSON.stringify([...requests, ...replies].map((p) => [p.fate, p.cloneOf, p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`)])), summary);
    expect(requests).toHaveLength(2);
    expect(replies).toHaveLength(2);
    const { ns, tunnel } = lab;
    for (const p of requests) {
      expect(p.fate).toBe('delivered');
      expect(p.hops.filter((h) => h.event !== 'rx' && h.event !== 'consume').map((h) => `${h.ns}/${h.ifname}/${h.event}`)).toEqual([
        `${ns.pod1}/eth0/xmit`, `${ns.node1}/vp0/recv`, `${ns.node1}/br0/recv`, `${ns.node1}/${tunnel}/xmit`,
        `${ns.node1}/ul0/xmit`, `${ns.node2}/ul0/recv`, `${ns.node2}/${tunnel}/recv`,
        `${ns.node2}/br0/xmit`, `${ns.node2}/vp0/xmit`, `${ns.pod2}/eth0/recv`,
      ]);
      // Every hop carries the inner tuple: no NAT is read into the tunnel.
      for (const h of p.hops) expect([h.src, h.dst, h.dport, h.nat]).toEqual([pod1, pod2, PORT, null]);
      const enc = p.hops.find((h) => h.encap);
      expect(`${enc?.ifname}/${enc?.event}`).toBe(`${tunnel}/xmit`);
      expect(enc?.encap).toMatchObject({ type: 'vxlan', vni: 42, outer: { src: lab.addr.ul1, dst: lab.addr.ul2, dport: 4789, proto: 17 } });
      const under = p.hops.filter((h) => h.outer);
      expect(under.map((h) => h.ifname)).toEqual(['ul0', 'ul0', 'ul0']);
      for (const h of under) expect(h.outer).toMatchObject({ src: lab.addr.ul1, dst: lab.addr.ul2, dport: 4789 });
      const dec = p.hops.find((h) => h.decap);
      expect(`${dec?.ns}/${dec?.ifname}/${dec?.event}`).toBe(`${ns.node2}/${tunnel}/recv`);
      expect(dec?.decap?.vni).toBe(42);
    }
    for (const p of replies) {
      expect(p.fate).toBe('delivered');
      expect(p.hops.find((h) => h.encap)?.encap?.outer).toMatchObject({ src: lab.addr.ul2, dst: lab.addr.ul1, dport: 4789 });
      expect(p.hops.at(-1)?.ns).toBe(ns.pod1);
    }
  }, 120_000);

  it.each<[string, (lab: OverlayLab) => string, boolean]>([
    // The outer datagrams: first matched on the underlay, the packet is followed on from there.
    ['udp port 4789', (l) => `udp port ${l.dstport ?? 0}`, false],
    ['vni 42', () => 'vni 42', false],
    // An underlay address finds the tunnelled pod packets too.
    ['host <node2 underlay>', (l) => `host ${l.addr.ul2}`, false],
    ['tunnel and udp port 5433', () => `tunnel and udp port ${PORT}`, false],
    ['vni 43 (no such tunnel)', () => 'vni 43', true],
  ])('filter %s: catches the pod packets on the underlay, with their inner tuple', async (_name, filter, none) => {
    lab = overlayLabFor(randomPrefix('of').slice(0, 7), { kind: 'vxlan' });
    await overlayLabUp(lab, { kind: 'vxlan' });
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
    const up = lab;
    const { packets: seen } = await traceOverlay(up, filter(up), async () => {
      const sent = await sendUdp(up.ns.pod1, up.addr.pod2, PORT, 2, 32, 50);
      expect(sent.replies).toBe(2);
    });
    // In the order they crossed node1's underlay: a trace prints a packet when it is complete,
    // and under load the second may be complete first.
    const crossed = (p: Packet): number => p.hops.find((h) => h.ns === lab?.ns.node1 && h.ifname === 'ul0' && h.event === 'xmit')?.t ?? 0;
    const requests = seen.filter((p) => p.dst === lab?.addr.pod2 && p.dport === PORT).sort((a, b) => crossed(a) - crossed(b));
    if (none) {
      expect(requests).toEqual([]);
      return;
    }
    expect(requests).toHaveLength(2);
    for (const p of requests) {
      expect(p.fate).toBe('delivered');
      expect(p.hops.find((h) => h.encap)?.encap).toMatchObject({ type: 'vxlan', vni: 42, outer: { dst: lab.addr.ul2, dport: 4789 } });
      expect(p.hops.find((h) => h.decap)?.ifname).toBe(lab.tunnel);
      expect(p.hops.at(-1)?.ns).toBe(lab.ns.pod2);
    }
    // The first is followed from its first underlay hop (the tunnel transmit shows no outer
    // headers yet), which then carries the encap; the flow is remembered (inner tuple), so the
    // second is followed from pod1 and its encap is on the tunnel transmit.
    expect(`${requests[0]?.hops[0]?.ns}/${requests[0]?.hops[0]?.ifname}`).toBe(`${lab.ns.node1}/ul0`);
    expect(requests[0]?.hops[0]?.encap).toBeDefined();
    expect(`${requests[1]?.hops[0]?.ns}/${requests[1]?.hops[0]?.ifname}`).toBe(`${lab.ns.pod1}/eth0`);
    expect(requests[1]?.hops.find((h) => h.encap)?.ifname).toBe(lab.tunnel);
  }, 120_000);

  it.each<[OverlayKind, (lab: OverlayLab) => string]>([
    ['vxlan-v6inner', (l) => `host ${l.addr.pod2v6 ?? ''}`],
    ['vxlan-v6inner', () => 'udp port 4789'],
    ['vxlan-v6underlay', (l) => `host ${l.addr.ul2}`],
    ['vxlan-v6underlay', () => 'udp port 4789'],
    ['vxlan-v6underlay', () => 'vni 42'],
  ])('%s, filter %s: every request is one packet pod to pod', async (kind, filter) => {
    lab = overlayLabFor(randomPrefix('o6').slice(0, 7), { kind });
    await overlayLabUp(lab, { kind });
    const pod2 = lab.addr.pod2v6 ?? lab.addr.pod2;
    echo = await startEcho(lab.ns.pod2, 'udp', pod2, PORT);
    const up = lab;
    const { packets: seen, summary } = await traceOverlay(up, filter(up), async () => {
      const sent = await sendUdp(up.ns.pod1, pod2, PORT, 2, 32, 50);
      expect(sent.replies).toBe(2);
    });
    const requests = seen.filter((p) => p.dst === pod2 && p.dport === PORT);
    if (requests.length !== 2) console.log(JSON.stringify(requests.map((p) => [p.fate, p.cloneOf, p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`)])), summary);
    expect(requests).toHaveLength(2);
    for (const p of requests) {
      expect(p.fate).toBe('delivered');
      expect(p.hops.find((h) => h.encap)?.encap).toMatchObject({ type: 'vxlan', vni: 42, outer: { dst: lab.addr.ul2, dport: 4789 } });
      expect(p.hops.find((h) => h.decap)?.ns).toBe(lab.ns.node2);
      expect(p.hops.at(-1)?.ns).toBe(lab.ns.pod2);
    }
  }, 120_000);

  it('an underlay MTU below the outer datagram: its fragments are hops of the pod packet, which goes on reassembled', async () => {
    // vx0 keeps MTU 1450 from the 1500-byte underlay, which then shrinks to 1280: a 1400-byte
    // datagram's outer packet (1450) leaves node1 in two fragments, new skbs, and node2
    // reassembles it before the decap. The underlay address in the filter lets the kernel follow
    // the later fragment too (it carries no inner header to match).
    lab = overlayLabFor(randomPrefix('om').slice(0, 7), { kind: 'vxlan' });
    await overlayLabUp(lab, { kind: 'vxlan', underlayMtu: 1280 });
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
    const up = lab;
    const { packets: seen, summary } = await traceOverlay(up, `(udp and host ${up.addr.pod2} and port ${PORT}) or host ${up.addr.ul2}`, async () => {
      const sent = await sendUdp(up.ns.pod1, up.addr.pod2, PORT, 2, 1400, 50);
      expect(sent.replies).toBe(2);
    });
    const packets = seen;
    const { ns, tunnel } = lab;
    for (const [src, dst] of [[lab.addr.pod1, lab.addr.pod2], [lab.addr.pod2, lab.addr.pod1]] as const) {
      const dir = packets.filter((p) => p.src === src && p.dst === dst);
      if (dir.length !== 2) console.log(JSON.stringify(dir.map((p) => [p.fate, p.cloneOf, p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}${h.fragment ? `#${h.fragment}` : ''}`)])), summary);
      expect(dir, `${src} → ${dst}`).toHaveLength(2);
      for (const p of dir) {
        expect(p.fate).toBe('delivered');
        expect(p.hops[0]?.ns).toBe(src === lab.addr.pod1 ? ns.pod1 : ns.pod2);
        expect(p.hops.at(-1)?.ns).toBe(dst === lab.addr.pod2 ? ns.pod2 : ns.pod1);
        // Both fragments, transmitted by the sending node's underlay and received by the other's.
        const frags = p.hops.filter((h) => h.fragment !== undefined);
        expect([...new Set(frags.map((h) => h.fragment))].sort()).toEqual([1, 2]);
        for (const f of [1, 2]) expect(frags.filter((h) => h.fragment === f && h.event !== 'rx').map((h) => `${h.ifname}/${h.event}`)).toEqual(['ul0/xmit', 'ul0/recv']);
        for (const h of frags) {
          expect(h.outer).toMatchObject({ src: src === lab.addr.pod1 ? lab.addr.ul1 : lab.addr.ul2 });
          expect([h.src, h.dst]).toEqual([src, dst]);
        }
        expect(p.hops.find((h) => h.encap)?.ifname).toBe(tunnel);
        expect(p.hops.find((h) => h.decap)?.ifname).toBe(tunnel);
      }
    }
    // Nothing of the fragments is left over as a packet of its own (a later fragment has no ports;
    // the ARP inside the tunnel, "encapsulated (unknown kind)", is a packet of the underlay's own).
    expect(packets.filter((p) => (p.src === lab?.addr.ul1 || p.src === lab?.addr.ul2) && p.dport === 0)).toEqual([]);
  }, 120_000);

  it('a pod\'s own IPv4 fragments larger than vx0\'s MTU: the node cuts each again (DF unset), every piece crosses the tunnel as a hop of the one pod packet', async (ctx) => {
    // The pods keep MTU 1500, vx0 has 1450 (the underlay's 1500 less vxlan's 50): a 3000-byte
    // UDP datagram leaves pod1 in three fragments (1500 + 1500 + 68), and node1, forwarding
    // them (no conntrack in the overlay lab's nodes: nothing reassembles), cuts the two 1500-byte
    // ones again to fit vx0 (ip_forward → ip_do_fragment: DF is unset). Every piece is
    // encapsulated on vx0, crosses the underlay, comes out of node2's vx0, and pod2 reassembles.
    lab = overlayLabFor(randomPrefix('of').slice(0, 7), { kind: 'vxlan' });
    await overlayLabUp(lab, { kind: 'vxlan' });
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
    const up = lab;
    const { packets, summary } = await traceOverlay(up, `udp and host ${up.addr.pod2} and port ${PORT}`, async () => {
      const sent = await sendUdp(up.ns.pod1, up.addr.pod2, PORT, 1, 3000, 0);
      expect(sent.replies).toBe(1);
    });
    // In some CI runs node1 reassembled the datagram first (conntrack's defragmentation was on in
    // its namespace: br0's recv shows 3028 bytes) and cut the whole again: a different case, whose
    // new pieces hoptrace does not join yet (issue 14 note). Said, not passed off as this one.
    const reassembled = await nstatOf(up.ns.node1, 'IpReasmOKs');
    if (reassembled > 0) ctx.skip(`node1 reassembled the datagram before cutting it for vx0 (IpReasmOKs ${reassembled}: conntrack defragments in its namespace on this run), not the case this test covers`);
    const mine = packets.filter((p) => p.proto === 'udp') as AnnotatedPacket[];
    const show = (p: AnnotatedPacket): string => `${p.src}:${p.sport} > ${p.dst}:${p.dport} ${p.fate}${p.divergence ? ` DIVERGES ${p.divergence.summary}` : ''}\n${p.hops.map((h) => `  ${h.ns}/${h.ifname}/${h.event} len ${h.len} ${h.sport}>${h.dport} #${h.fragment ?? '-'}${h.encap ? ' encap' : ''}${h.decap ? ' decap' : ''}${h.outer ? ` outer ${h.outer.src}>${h.outer.dst}` : ''}`).join('\n')}`;
    const all = `${mine.map(show).join('\n')}\n${summary ?? ''}`;
    // The request and the echo, one packet each: no piece a packet of its own.
    expect(mine.length, all).toBe(2);
    for (const [src, dst, from, node, far, to] of [[up.addr.pod1, up.addr.pod2, up.ns.pod1, up.ns.node1, up.ns.node2, up.ns.pod2], [up.addr.pod2, up.addr.pod1, up.ns.pod2, up.ns.node2, up.ns.node1, up.ns.pod1]] as const) {
      const p = mine.find((x) => x.src === src && x.dst === dst);
      expect(p, all).toBeDefined();
      if (!p) continue;
      const msg = show(p);
      expect(p.fate, msg).toBe('delivered');
      expect(p.divergence ?? null, msg).toBeNull();
      const at = (ns: string, dev: string, event: string): number[] => p.hops.filter((h) => h.ns === ns && h.ifname === dev && h.event === event).map((h) => h.fragment ?? 0).sort();
      // Three fragments from the pod; more pieces into vx0, each with its encap; the same pieces
      // out of the far vx0, each with its decap, and into the receiving pod.
      expect(at(from, 'eth0', 'xmit'), msg).toEqual([1, 2, 3]);
      const into = at(node, up.tunnel, 'xmit');
      expect(into.length, msg).toBeGreaterThan(3);
      expect(p.hops.filter((h) => h.encap).map((h) => `${h.ns}/${h.ifname}/${h.event}`), msg).toEqual(into.map(() => `${node}/${up.tunnel}/xmit`));
      expect(at(far, up.tunnel, 'recv'), msg).toEqual(into);
      expect(p.hops.filter((h) => h.decap).map((h) => `${h.ns}/${h.ifname}/${h.event}`), msg).toEqual(into.map(() => `${far}/${up.tunnel}/recv`));
      expect(at(to, 'eth0', 'recv'), msg).toEqual(into);
      // Every piece fits vx0; the underlay hops carry the pod's tuple with the outer header beside it.
      expect(p.hops.filter((h) => h.ns === node && h.ifname === up.tunnel && h.event === 'xmit').every((h) => h.len <= 1450), msg).toBe(true);
      expect(p.hops.filter((h) => h.ifname === 'ul0').every((h) => h.outer !== undefined && h.src === src && h.dst === dst), msg).toBe(true);
    }
  }, 120_000);

  it('an IPv6 underlay MTU below the outer datagram: the kernel does not fragment it, the pod packet is dropped on the sending node\'s underlay (both directions)', async () => {
    // vx0 keeps MTU 1430 from the 1500-byte underlay, which then shrinks to 1280 (IPv6's minimum
    // link MTU). A forwarded 1400-byte datagram fits vx0, but its outer IPv6 datagram (1498) does
    // not fit ul0, and IPv6 fragments only what the host itself sends with ignore_df: ip6_fragment
    // drops it (Ip6FragFails, a Packet Too Big to the tunnel's own socket; probes/README.md
    // "Tunnels"). The pod's packet is one packet that ends there, outer tuple on its last hop.
    lab = overlayLabFor(randomPrefix('o6m').slice(0, 7), { kind: 'vxlan-v6underlay' });
    await overlayLabUp(lab, { kind: 'vxlan-v6underlay', underlayMtu: 1280 });
    const up = lab;
    const { ns } = up;
    const echo1 = await startEcho(ns.pod1, 'udp', up.addr.pod1, PORT);
    echo = await startEcho(ns.pod2, 'udp', up.addr.pod2, PORT);
    const { packets, summary } = await traceOverlay(up, `udp and port ${PORT}`, async () => {
      // A small datagram still crosses (the tunnel works; 0.7 s for its reply, ARP and NDP first), then the large ones each way.
      expect((await sendUdp(ns.pod1, up.addr.pod2, PORT, 1, 32, 500)).replies).toBe(1);
      expect((await sendUdp(ns.pod1, up.addr.pod2, PORT, 2, 1400, 50)).replies).toBe(0);
      expect((await sendUdp(ns.pod2, up.addr.pod1, PORT, 2, 1400, 50)).replies).toBe(0);
    }).finally(() => echo1.stop());
    if (packets.filter((p) => (p.hops[0]?.len ?? 0) > 1000).length !== 4) console.log(JSON.stringify(packets.map((p) => [p.src, p.hops[0]?.len, p.fate, p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`)])), summary);
    for (const [src, dst, node, peer, sendingPod] of [
      [up.addr.pod1, up.addr.pod2, ns.node1, up.addr.ul2, ns.pod1],
      [up.addr.pod2, up.addr.pod1, ns.node2, up.addr.ul1, ns.pod2],
    ] as const) {
      const big = packets.filter((p) => p.src === src && p.dst === dst && (p.hops[0]?.len ?? 0) > 1000);
      expect(big, `${src} → ${dst}`).toHaveLength(2);
      for (const p of big) {
        expect(p.fate).toBe('dropped');
        expect(p.hops[0]?.ns).toBe(sendingPod);
        expect(p.drop).toMatchObject({ ns: node, ifname: 'ul0' });
        expect(p.hops.find((h) => h.encap)?.ifname).toBe(up.tunnel);
        expect(p.hops.at(-1)?.outer).toMatchObject({ family: 6, dst: peer, dport: 4789 });
        expect(p.hops.some((h) => h.fragment !== undefined || h.decap)).toBe(false);
      }
    }
    // The small one went through, pod to pod.
    const small = packets.find((p) => p.src === up.addr.pod1 && (p.hops[0]?.len ?? 0) < 100);
    expect(small?.fate).toBe('delivered');
  }, 120_000);

  it('an IPv6 underlay carrying another sender\'s fragmented tunnel datagrams: both fragments are hops of the pod packet (Fragment header id), reassembled and decapsulated on (both directions)', async () => {
    lab = overlayLabFor(randomPrefix('o6f').slice(0, 7), { kind: 'vxlan-v6underlay' });
    await overlayLabUp(lab, { kind: 'vxlan-v6underlay', underlayMtu: 1280 });
    const up = lab;
    const { ns } = up;
    const echo1 = await startEcho(ns.pod1, 'udp', up.addr.pod1, PORT);
    echo = await startEcho(ns.pod2, 'udp', up.addr.pod2, PORT);
    const dirs = [
      { node: ns.node1, far: ns.node2, ul: [up.addr.ul1, up.addr.ul2], pods: [up.addr.pod1, up.addr.pod2], macs: [up.macs[1], up.macs[0]], id: 0x12345678, to: ns.pod2 },
      { node: ns.node2, far: ns.node1, ul: [up.addr.ul2, up.addr.ul1], pods: [up.addr.pod2, up.addr.pod1], macs: [up.macs[0], up.macs[1]], id: 0x2468ace0, to: ns.pod1 },
    ] as const;
    // The underlay addresses let the kernel follow the later fragment (no inner header to match).
    const { packets, summary } = await traceOverlay(up, `(udp and port ${PORT}) or host ${up.addr.ul1} or host ${up.addr.ul2}`, async () => {
      for (const d of dirs) {
        const c = await execa('ip', ['netns', 'exec', d.node, 'python3', '-c', CRAFT_V6_FRAGMENTS, d.ul[0], d.ul[1], d.pods[0], d.pods[1], d.macs[0], d.macs[1], String(d.id), '1400'], { reject: false });
        expect(c.exitCode, String(c.stderr)).toBe(0);
      }
    }).finally(() => echo1.stop());
    if (packets.filter((p) => p.sport === 40123).length !== 2) console.log(JSON.stringify(packets.map((p) => [p.src, p.sport, p.fate, p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}${h.fragment ? `#${h.fragment}` : ''}`)])), summary);
    for (const d of dirs) {
      const dir = packets.filter((p) => p.src === d.pods[0] && p.dst === d.pods[1] && p.sport === 40123);
      expect(dir, `${d.pods[0]} → ${d.pods[1]}`).toHaveLength(1);
      const [p] = dir as [Packet];
      expect(p.fate).toBe('delivered');
      expect(p.hops.at(-1)?.ns).toBe(d.to);
      const frags = p.hops.filter((h) => h.fragment !== undefined);
      for (const f of [1, 2]) {
        expect(frags.filter((h) => h.fragment === f && h.event !== 'rx').map((h) => `${h.ns}/${h.ifname}/${h.event}`)).toEqual([`${d.node}/ul0/xmit`, `${d.far}/ul0/recv`]);
      }
      for (const h of frags) {
        expect(h.outer).toMatchObject({ family: 6, src: d.ul[0], dst: d.ul[1] });
        expect([h.src, h.dst]).toEqual([d.pods[0], d.pods[1]]);
      }
      expect(p.hops.find((h) => h.decap)?.ns).toBe(d.far);
    }
    // No fragment is left over as a packet of its own (the echo replies, too large, are dropped
    // on ul0 with a Packet Too Big to the node itself over lo: ICMPv6, not fragments).
    expect(packets.filter((p) => (p.src === up.addr.ul1 || p.src === up.addr.ul2) && p.proto === 'udp' && p.dport === 0)).toEqual([]);
  }, 120_000);

  it('a pod\'s own IPv6 fragments: the first is traced as UDP with its ports (the Fragment header is read), dropped as too big first, then across the tunnel (both directions)', async (ctx) => {
    // A 2000-byte IPv6 datagram leaves the pod in fragments of its 1500-byte MTU. vx0's MTU is
    // 1450 and IPv6 routers do not fragment: node1 drops the first (PKT_TOO_BIG, a Packet Too Big
    // to the pod), and the pod sends the next ones in 1448-byte fragments that cross. Before the
    // Fragment header was read, such a first fragment showed protocol 44 without ports, and
    // `udp and port` found none of it.
    lab = overlayLabFor(randomPrefix('o6p').slice(0, 7), { kind: 'vxlan-v6inner' });
    await overlayLabUp(lab, { kind: 'vxlan-v6inner' });
    const up = lab;
    const [pod1, pod2] = [up.addr.pod1v6 ?? '', up.addr.pod2v6 ?? ''];
    echo = await startEcho(up.ns.pod2, 'udp', pod2, PORT);
    let replies = 0;
    const { packets, summary } = await traceOverlay(up, `udp and port ${PORT}`, async () => {
      replies = (await sendUdp(up.ns.pod1, pod2, PORT, 3, 2000, 100)).replies;
    });
    // Usually the first request and the first reply meet the MTU and only the third request's
    // reply comes back; CI under load once saw no reply dropped on node2 (its counters said so:
    // mtuFacts). hoptrace must say what the kernel did: as many PKT_TOO_BIG drops per node as the
    // Packet Too Big messages that node sent, and every datagram that came back delivered.
    const kernelTooBig = [await nstatOf(up.ns.node1, 'Icmp6OutPktTooBigs'), await nstatOf(up.ns.node2, 'Icmp6OutPktTooBigs')] as const;
    const facts = `${kernelTooBig.join('/')} Packet Too Big from node1/node2, ${replies} replies\n${await mtuFacts(up)}`;
    // Twice in CI under load node1 forwarded the 1500-byte first fragments into vx0 (MTU 1450)
    // without a Packet Too Big (its counters in the message): then nothing here is too big.
    if (kernelTooBig[0] === 0) ctx.skip(`node1 sent no Packet Too Big on this run (the kernel let the pod's 1500-byte fragments into vx0), not the case this test covers: ${facts.split('\n')[0]}`);
    for (const [src, dst, sender, node, receiver, drops] of [[pod1, pod2, up.ns.pod1, up.ns.node1, up.ns.pod2, kernelTooBig[0]], [pod2, pod1, up.ns.pod2, up.ns.node2, up.ns.pod1, kernelTooBig[1]]] as const) {
      const dir = packets.filter((p) => p.src === src && p.dst === dst);
      if (dir.length < 2) console.log(JSON.stringify(packets.map((p) => [p.src, p.sport, p.dport, p.fate, p.hops.map((h) => `${h.ns}/${h.ifname}/${h.event}`)])), summary);
      for (const p of dir) {
        expect([p.proto, src === pod1 ? p.dport : p.sport]).toEqual(['udp', PORT]);
        expect(p.hops[0]?.ns).toBe(sender);
      }
      const tooBig = dir.filter((p) => p.fate === 'dropped');
      expect(tooBig.map((p) => [p.drop?.reason, p.drop?.ns, p.drop?.ifname]), `${src} → ${dst}: ${facts}`).toEqual(Array.from({ length: drops }, () => ['PKT_TOO_BIG', node, up.tunnel]));
      const crossed = dir.filter((p) => p.fate === 'delivered');
      // Requests: the three less those node1 dropped; replies: those that came back.
      expect(crossed.length, `${src} → ${dst}: ${facts}`).toBe(src === pod1 ? 3 - drops : replies);
      for (const p of crossed) {
        expect(p.hops.at(-1)?.ns).toBe(receiver);
        expect(p.hops.find((h) => h.encap)?.ifname).toBe(up.tunnel);
        expect(p.hops.find((h) => h.decap)?.ifname).toBe(up.tunnel);
      }
    }
  }, 120_000);

  // `stats --json` while 20 requests of `size` bytes go pod1 → pod2 and back; the count of a segment "ns/if/event → ns/if/event".
  async function tunnelStats(up: OverlayLab, size: number, env: Record<string, string> = {}): Promise<(from: string, to: string) => number> {
    echo ??= await startEcho(up.ns.pod2, 'udp', up.addr.pod2, PORT);
    const { child } = await startReady(['stats', '--json', '--filter', `udp and host ${up.addr.pod2} and port ${PORT}`], env, 180_000);
    const sent = await sendUdp(up.ns.pod1, up.addr.pod2, PORT, 20, size, 10);
    expect(sent.replies).toBe(20);
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const doc = JSON.parse(String(r.stdout).trim().split('\n').at(-1) ?? '{}') as StatsDocument;
    return (from, to) => doc.segments
      .filter((g) => `${g.from.ns}/${g.from.ifname}/${g.from.event}` === from && `${g.to.ns}/${g.to.ifname}/${g.to.event}` === to)
      .reduce((n, g) => n + g.count, 0);
  }

  it('stats: the tunnel transmit → the underlay → the remote tunnel receive are segments of the pod packets', async () => {
    lab = overlayLabFor(randomPrefix('os').slice(0, 7), { kind: 'vxlan-flannel' });
    await overlayLabUp(lab, { kind: 'vxlan-flannel' });
    const count = await tunnelStats(lab, 32);
    const { ns, tunnel } = lab;
    // Requests one way, replies the other: the same 20 packets on every step of the tunnel.
    for (const [a, b] of [[ns.node1, ns.node2], [ns.node2, ns.node1]] as const) {
      expect(count(`${a}/${tunnel}/xmit`, `${a}/ul0/xmit`), `encap on ${a}`).toBe(20);
      expect(count(`${a}/ul0/xmit`, `${b}/ul0/rx`), `underlay ${a} → ${b}`).toBe(20);
      expect(count(`${b}/ul0/rx`, `${b}/ul0/recv`)).toBe(20);
      expect(count(`${b}/ul0/recv`, `${b}/${tunnel}/recv`), `decap on ${b}`).toBe(20);
    }
  }, 120_000);

  it('stats: an underlay MTU below the outer datagram: the fragments\' way is the pod packets\' segments, once each, through the reassembly to the decap', async () => {
    // As in the trace test above: each 1400-byte datagram's outer packet leaves in two fragments
    // (new skbs; the original is freed on ul0) and is reassembled on the far node before the decap.
    // Before probes/stats joined them: vx0 xmit → ul0 consume, the first fragment as a packet of its
    // own ending in ul0 consume, and no ul0 recv → vx0 recv.
    lab = overlayLabFor(randomPrefix('of').slice(0, 7), { kind: 'vxlan' });
    await overlayLabUp(lab, { kind: 'vxlan', underlayMtu: 1280 });
    const { ns, tunnel } = lab;
    // Both probe tiers (the step is the same program text, but raw tracepoints read it differently).
    for (const t of TIERS_HERE) {
      const count = await tunnelStats(lab, 1400, t.env);
      for (const [a, b] of [[ns.node1, ns.node2], [ns.node2, ns.node1]] as const) {
        expect(count(`${a}/${tunnel}/xmit`, `${a}/ul0/xmit`), `${t.tier}: encap on ${a}`).toBe(20);
        expect(count(`${a}/${tunnel}/xmit`, `${a}/ul0/consume`), `no end on ${a}'s underlay`).toBe(0);
        expect(count(`${a}/ul0/xmit`, `${b}/ul0/rx`), `underlay ${a} → ${b}: one per packet`).toBe(20);
        expect(count(`${b}/ul0/rx`, `${b}/ul0/recv`)).toBe(20);
        expect(count(`${b}/ul0/recv`, `${b}/${tunnel}/recv`), `reassembled and decapsulated on ${b}`).toBe(20);
        expect(count(`${b}/ul0/recv`, `${b}/ul0/consume`), `no fragment ends on ${b}'s underlay`).toBe(0);
      }
      // And on to the pods: after the decap, the requests reach pod2 and the replies pod1.
      for (const [node, pod] of [[ns.node2, ns.pod2], [ns.node1, ns.pod1]] as const) {
        expect(count(`${node}/${tunnel}/recv`, `${node}/br0/xmit`)).toBe(20);
        expect(count(`${node}/vp0/xmit`, `${pod}/eth0/rx`)).toBe(20);
        expect(count(`${pod}/eth0/rx`, `${pod}/eth0/recv`), t.tier).toBe(20);
      }
    }
  }, 480_000);

  it('names an underlay drop of the tunnel port on the pod packet (flannel-style: no ARP across the tunnel to stall first)', async () => {
    lab = overlayLabFor(randomPrefix('od').slice(0, 7), { kind: 'vxlan-flannel' });
    await overlayLabUp(lab, { kind: 'vxlan-flannel' });
    // node2's INPUT drops the vxlan datagrams: the pod's packet dies on the underlay, inside the tunnel.
    await execa('ip', ['netns', 'exec', lab.ns.node2, 'iptables', '-A', 'INPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP']);
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
    const up = lab;
    const { packets: seen } = await traceOverlay(up, `host ${up.addr.pod2} and udp port ${PORT}`, async () => {
      const sent = await sendUdp(up.ns.pod1, up.addr.pod2, PORT, 1, 32, 50);
      expect(sent.replies).toBe(0);
    });
    const packets = seen;
    expect(packets).toHaveLength(1);
    const [p] = packets as [Packet];
    expect([p.src, p.dst, p.dport, p.fate]).toEqual([lab.addr.pod1, lab.addr.pod2, PORT, 'dropped']);
    expect(p.drop).toMatchObject({ reason: 'NETFILTER_DROP', ns: lab.ns.node2, ifname: 'ul0' });
    expect(p.hops.at(-1)?.outer).toMatchObject({ dst: lab.addr.ul2, dport: 4789 });
    expect(p.hops.find((h) => h.encap)?.ifname).toBe(lab.tunnel);
    expect(p.hops.some((h) => h.decap)).toBe(false);
  }, 120_000);
});
