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
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace, randomPrefix } from '../helpers/cli.js';
import { overlayLabFor, overlayLabUp, overlayLabDown, type OverlayLab, type OverlayKind } from '../helpers/overlay-lab.js';

const PORT = 5433;

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
    const { child } = await startTrace(['--json', '--filter', `udp and host ${pod2} and port ${PORT}`]);
    const sent = await sendUdp(lab.ns.pod1, pod2, PORT, 2, 32, 50);
    expect(sent.replies).toBe(2);
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const mine = new Set(Object.values(lab.ns));
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.some((h) => h.ns !== null && mine.has(h.ns)));
    // IPv6 forwarded into the vxlan device lacks the headroom the tunnel needs: the kernel copies
    // it into a new skb (skb_expand_head: the old one is consumed on vx0 while the copy shares its
    // data). The copy's hops are joined: still one packet from pod to pod.
    const requests = packets.filter((p) => p.dst === pod2);
    const replies = packets.filter((p) => p.src === pod2);
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
    const { child } = await startTrace(['--json', '--filter', filter(lab)]);
    const sent = await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 2, 32, 50);
    expect(sent.replies).toBe(2);
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const mine = new Set(Object.values(lab.ns));
    const requests = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.some((h) => h.ns !== null && mine.has(h.ns)) && p.dst === lab?.addr.pod2 && p.dport === PORT);
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

  it('names an underlay drop of the tunnel port on the pod packet (flannel-style: no ARP across the tunnel to stall first)', async () => {
    lab = overlayLabFor(randomPrefix('od').slice(0, 7), { kind: 'vxlan-flannel' });
    await overlayLabUp(lab, { kind: 'vxlan-flannel' });
    // node2's INPUT drops the vxlan datagrams: the pod's packet dies on the underlay, inside the tunnel.
    await execa('ip', ['netns', 'exec', lab.ns.node2, 'iptables', '-A', 'INPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP']);
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
    const { child } = await startTrace(['--json', '--filter', `host ${lab.addr.pod2} and udp port ${PORT}`]);
    const sent = await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 1, 32, 50);
    expect(sent.replies).toBe(0);
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const mine = new Set(Object.values(lab.ns));
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.some((h) => h.ns !== null && mine.has(h.ns)));
    expect(packets).toHaveLength(1);
    const [p] = packets as [Packet];
    expect([p.src, p.dst, p.dport, p.fate]).toEqual([lab.addr.pod1, lab.addr.pod2, PORT, 'dropped']);
    expect(p.drop).toMatchObject({ reason: 'NETFILTER_DROP', ns: lab.ns.node2, ifname: 'ul0' });
    expect(p.hops.at(-1)?.outer).toMatchObject({ dst: lab.addr.ul2, dport: 4789 });
    expect(p.hops.find((h) => h.encap)?.ifname).toBe(lab.tunnel);
    expect(p.hops.some((h) => h.decap)).toBe(false);
  }, 120_000);
});
