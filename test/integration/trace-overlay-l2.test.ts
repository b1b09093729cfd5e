/**
 * An L2 overlay (issue 14): a vxlan device as a port of each node's bridge, as Docker swarm
 * overlays, EVPN and OVN-style setups have it — both pods in one subnet, the pod's frame bridged
 * onto vx0, encapsulated, carried across the underlay, decapsulated on the far node and bridged
 * to the pod. Real namespaces (test/helpers/overlay-lab.ts kind vxlan-bridge, 10.172/16), real
 * `hoptrace trace --json`: one packet from pod to pod, on its expected path; an FDB entry that
 * sends the pod's MAC to the wrong VTEP is a divergence that names the entry.
 */
import { describe, it, expect } from 'vitest';
import { sendUdp } from '../../server/lab/traffic.js';
import type { AnnotatedPacket } from '../../shared/expectation.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { overlayMisdirectPod, pathSpots as spots, traceOverlay, useOverlayLab, type OverlayLab } from '../helpers/overlay-lab.js';

const PORT = 5434;

describe.skipIf(!isRoot)(`L2 overlay: vxlan as a bridge port, real trace (${NEEDS_ROOT})`, () => {
  const lab: OverlayLab = useOverlayLab('l2b', { kind: 'vxlan-bridge', thirdNode: true, addressBase: 172 }, PORT);

  it('pod → pod across the bridged vxlan port: one packet, encap and decap, on its expected path', async () => {
    const { packets } = await traceOverlay(lab, `udp and host ${lab.addr.pod2} and port ${PORT}`, async () => {
      expect((await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 2, 32, 50)).replies).toBe(2);
    }, 150_000);
    const requests = packets.filter((p) => p.dst === lab.addr.pod2);
    const replies = packets.filter((p) => p.src === lab.addr.pod2);
    expect(requests).toHaveLength(2);
    expect(replies).toHaveLength(2);
    for (const p of packets as AnnotatedPacket[]) {
      const request = p.dst === lab.addr.pod2;
      expect(p.fate).toBe('delivered');
      const from = request ? { pod: lab.ns.pod1, node: lab.ns.node1 } : { pod: lab.ns.pod2, node: lab.ns.node2 };
      const to = request ? { pod: lab.ns.pod2, node: lab.ns.node2 } : { pod: lab.ns.pod1, node: lab.ns.node1 };
      expect(spots(p.hops)).toEqual([
        `${from.pod}/eth0/xmit`, `${from.node}/vp0/recv`, `${from.node}/vx0/xmit`, `${from.node}/ul0/xmit`,
        `${to.node}/ul0/recv`, `${to.node}/vx0/recv`, `${to.node}/vp0/xmit`, `${to.pod}/eth0/recv`,
      ]);
      const enc = p.hops.find((h) => h.encap);
      expect(`${enc?.ns}/${enc?.ifname}`).toBe(`${from.node}/vx0`);
      expect(enc?.encap).toMatchObject({ type: 'vxlan', vni: 42, outer: { src: request ? lab.addr.ul1 : lab.addr.ul2, dst: request ? lab.addr.ul2 : lab.addr.ul1, dport: 4789 } });
      expect(p.hops.find((h) => h.decap)?.ns).toBe(to.node);
      expect(p.hops.find((h) => h.ifname === 'ul0' && h.event === 'xmit')?.outer).toMatchObject({ dport: 4789 });
      // The model follows the frame across the bridge port into the tunnel and out of the far bridge.
      expect(p.divergence, JSON.stringify(p.divergence)).toBeNull();
      expect(p.expected?.fate, p.expected?.reason).toBe('delivered');
      expect(spots(p.expected?.hops ?? [])).toEqual(spots(p.hops));
      expect(p.expected?.hops.find((h) => h.encap)?.tunnelVia).toBe(`FDB entry ${request ? lab.podMacs[1] : lab.podMacs[0]} dst ${request ? lab.addr.ul2 : lab.addr.ul1}`);
    }
  }, 240_000);

  it('the FDB entry for the remote pod\'s MAC points at the wrong VTEP: the packet goes there, and the divergence names the entry', async () => {
    await overlayMisdirectPod(lab, lab.addr.ul3 as string);
    const { packets } = await traceOverlay(lab, `udp and host ${lab.addr.pod2} and port ${PORT}`, async () => {
      expect((await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 1, 32, 0)).replies).toBe(0);
    }, 150_000);
    const [p, ...more] = packets as AnnotatedPacket[];
    expect(more).toEqual([]);
    expect(p?.hops.some((h) => h.ns === lab.ns.node3)).toBe(true);
    expect(p?.fate).toBe('dropped');
    expect(p?.expected?.fate).toBe('delivered');
    expect(p?.divergence?.summary).toContain(`inside the tunnel to ${lab.addr.ul3}, expected ${lab.addr.ul2}`);
    expect(p?.divergence?.summary).toContain(`vx0 in ${lab.ns.node1} sends ${lab.podMacs[1]} to ${lab.addr.ul3} by its FDB entry ${lab.podMacs[1]} dst ${lab.addr.ul3}`);
    expect(p?.divergence?.summary).toContain('the entry points at the wrong node');
  }, 240_000);
});

describe.skipIf(!isRoot)(`L2 overlay flooding: head-end replication to every VTEP, real trace (${NEEDS_ROOT})`, () => {
  const lab: OverlayLab = useOverlayLab('l2f', { kind: 'vxlan-bridge-flood', thirdNode: true, addressBase: 172 }, PORT);

  it('an unknown unicast goes to each destination of the all-zeros FDB entry: the copies are clones of the one packet, each expected by the model', async () => {
    const ul3 = lab.addr.ul3 as string;
    // No VTEP knows a pod's MAC yet (no learning traffic: the pods have no IPv6), so the first
    // datagram floods; pod2's reply teaches node1 its MAC, and the second goes to node2 alone.
    const { packets } = await traceOverlay(lab, `udp and host ${lab.addr.pod2} and port ${PORT}`, async () => {
      expect((await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 2, 32, 300)).replies).toBe(2);
    }, 150_000);
    const requests = packets.filter((p) => p.dst === lab.addr.pod2 && p.cloneOf === null) as AnnotatedPacket[];
    expect(requests).toHaveLength(2);
    const [first, second] = requests.sort((a, b) => (a.hops[0]?.t ?? 0) - (b.hops[0]?.t ?? 0)) as [AnnotatedPacket, AnnotatedPacket];
    const copies = packets.filter((p) => p.cloneOf !== null);
    // One copy, of the first datagram: node1's vx0 sent it to node3, whose vx0 took it out of
    // the tunnel and freed it (a frame for pod2's MAC; node3's vx0 is no bridge port).
    expect(copies.map((c) => c.cloneOf)).toEqual([first.id]);
    const copy = copies[0];
    // Its first hop is on node1's link to node3 (ul1), with vx0's local address as the outer source.
    expect(copy?.hops[0]).toMatchObject({ ns: lab.ns.node1, ifname: 'ul1', event: 'xmit', outer: { src: lab.addr.ul1, dst: ul3, dport: 4789 } });
    expect(copy?.hops.find((h) => h.decap)?.ns).toBe(lab.ns.node3);
    expect(copy?.drop).toMatchObject({ ns: lab.ns.node3, ifname: 'vx0', reason: 'OTHERHOST' });
    // The original went on to node2 and pod2, as expected.
    expect(first.fate).toBe('delivered');
    expect(first.divergence, JSON.stringify(first.divergence)).toBeNull();
    expect(spots(first.expected?.hops ?? [])).toEqual(spots(first.hops));
    // The model expects a copy to each VTEP of the all-zeros entry: the observed copy's among them.
    const enc = first.expected?.hops.find((h) => h.encap);
    expect(enc?.tunnelCopies).toEqual([lab.addr.ul2, ul3]);
    expect(enc?.tunnelCopies).toContain(copy?.hops[0]?.outer?.dst);
    expect(enc?.encap?.outer.dst).toBe(lab.addr.ul2);
    expect(second.fate).toBe('delivered');
    expect(first.hops.find((h) => h.encap)?.encap?.outer.dst).toBe(lab.addr.ul2);
    expect(second.hops.find((h) => h.encap)?.encap?.outer.dst).toBe(lab.addr.ul2);
  }, 240_000);
});
