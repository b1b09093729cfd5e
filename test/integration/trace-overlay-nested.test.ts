/**
 * Nested tunnels (issue 14): vxlan VNI 100 (vxi) whose underlay is the vxlan VNI 42 overlay
 * (vx0), on real namespaces (test/helpers/overlay-lab.ts `nested`, 10.172/16), real trace. The
 * pod's datagram stays one packet with the pod's tuple on every hop; the inner tunnel's encap is
 * on vxi's transmit, the outer one's on vx0's, and on the far node vx0's receive takes the packet
 * out of VNI 42 and vxi's out of VNI 100. The model follows both tunnels: the packet is on its
 * expected path from pod to pod, each tunnel's encap and decap where the trace shows them.
 */
import { describe, it, expect } from 'vitest';
import { sendUdp } from '../../server/lab/traffic.js';
import type { AnnotatedPacket } from '../../shared/expectation.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { traceOverlay, useOverlayLab, type OverlayLab } from '../helpers/overlay-lab.js';

const PORT = 5436;

describe.skipIf(!isRoot)(`nested tunnels: vxlan in vxlan, real trace (${NEEDS_ROOT})`, () => {
  const lab: OverlayLab = useOverlayLab('nst', { kind: 'vxlan', nested: true, addressBase: 172 }, PORT);

  it('one packet pod to pod; each tunnel\'s encap and decap on its own device', async () => {
    const { packets } = await traceOverlay(lab, `udp and host ${lab.addr.pod2} and port ${PORT}`, async () => {
      expect((await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 2, 32, 100)).replies).toBe(2);
    }, 150_000);
    expect(packets.filter((p) => p.dst === lab.addr.pod2)).toHaveLength(2);
    expect(packets.filter((p) => p.src === lab.addr.pod2)).toHaveLength(2);
    const ov = (node: 1 | 2): string => `10.172.255.${node}`;
    for (const p of packets as AnnotatedPacket[]) {
      const request = p.dst === lab.addr.pod2;
      const [from, to, a, b] = request ? [lab.ns.node1, lab.ns.node2, 1, 2] as const : [lab.ns.node2, lab.ns.node1, 2, 1] as const;
      expect(p.fate).toBe('delivered');
      // The pod's tuple on every hop: neither tunnel's headers are read as the packet.
      expect(p.hops.every((h) => h.src === p.src && h.dst === p.dst && h.nat === null)).toBe(true);
      const marks = p.hops.filter((h) => h.encap || h.decap).map((h) => `${h.ns}/${h.ifname}/${h.event} ${h.encap ? `encap ${h.encap.vni} ${h.encap.outer.dst}` : `decap ${h.decap?.vni}`}`);
      expect(marks).toEqual([
        `${from}/vxi/xmit encap 100 ${ov(b)}`, `${from}/vx0/xmit encap 42 ${request ? lab.addr.ul2 : lab.addr.ul1}`,
        `${to}/vx0/recv decap 42`, `${to}/vxi/recv decap 100`,
      ]);
      // Between the two encaps the hop carries the inner tunnel's outer header; on the underlay the outer one's.
      expect(p.hops.find((h) => h.ns === from && h.ifname === 'vx0')?.outer).toMatchObject({ src: ov(a), dst: ov(b), dport: 4789 });
      expect(p.hops.find((h) => h.ns === from && h.ifname === 'ul0')?.outer).toMatchObject({ src: request ? lab.addr.ul1 : lab.addr.ul2, dport: 4789 });
      // The model goes through both tunnels to the pod: no divergence anywhere on the way.
      expect(p.expected?.fate, p.expected?.reason).toBe('delivered');
      expect(p.divergence ?? null).toBeNull();
      expect(p.expected?.hops.filter((h) => h.encap || h.decap).map((h) => `${h.ns}/${h.ifname}/${h.event} ${h.encap ? `encap ${h.encap.vni}` : `decap ${h.decap?.vni}`}`)).toEqual([
        `${from}/vxi/xmit encap 100`, `${from}/vx0/xmit encap 42`, `${to}/vx0/recv decap 42`, `${to}/vxi/recv decap 100`,
      ]);
    }
  }, 240_000);
});
