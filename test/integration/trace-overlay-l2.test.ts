/**
 * An L2 overlay (issue 14): a vxlan device as a port of each node's bridge, as Docker swarm
 * overlays, EVPN and OVN-style setups have it — both pods in one subnet, the pod's frame bridged
 * onto vx0, encapsulated, carried across the underlay, decapsulated on the far node and bridged
 * to the pod. Real namespaces (test/helpers/overlay-lab.ts kind vxlan-bridge, 10.172/16), real
 * `hoptrace trace --json`: one packet from pod to pod, on its expected path; an FDB entry that
 * sends the pod's MAC to the wrong VTEP is a divergence that names the entry.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startEcho, sendUdp, type Server } from '../../server/lab/traffic.js';
import type { AnnotatedPacket } from '../../shared/expectation.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { randomPrefix } from '../helpers/cli.js';
import { overlayLabFor, overlayLabUp, overlayLabDown, overlayMisdirectPod, traceOverlay, type OverlayLab, type OverlayOptions } from '../helpers/overlay-lab.js';

const PORT = 5434;

function spots(hops: readonly { ns: string | null; ifname: string; event: string }[]): string[] {
  return hops.filter((h) => h.event !== 'rx' && h.event !== 'consume').map((h) => `${h.ns}/${h.ifname}/${h.event}`);
}

describe.skipIf(!isRoot)(`L2 overlay: vxlan as a bridge port, real trace (${NEEDS_ROOT})`, () => {
  const opts: OverlayOptions = { kind: 'vxlan-bridge', thirdNode: true, addressBase: 172 };
  const lab: OverlayLab = overlayLabFor(randomPrefix('l2b').slice(0, 8), opts);
  let echo: Server | null = null;

  beforeAll(async () => {
    await overlayLabUp(lab, opts);
    echo = await startEcho(lab.ns.pod2, 'udp', lab.addr.pod2, PORT);
  }, 60_000);

  afterAll(async () => {
    await echo?.stop();
    await overlayLabDown(lab);
  });

  it('pod → pod across the bridged vxlan port: one packet, encap and decap, on its expected path', async () => {
    const { packets } = await traceOverlay(lab, `udp and host ${lab.addr.pod2} and port ${PORT}`, async () => {
      expect((await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 2, 32, 50)).replies).toBe(2);
    });
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
  }, 120_000);

  it('the FDB entry for the remote pod\'s MAC points at the wrong VTEP: the packet goes there, and the divergence names the entry', async () => {
    await overlayMisdirectPod(lab, lab.addr.ul3 as string);
    const { packets } = await traceOverlay(lab, `udp and host ${lab.addr.pod2} and port ${PORT}`, async () => {
      expect((await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 1, 32, 0)).replies).toBe(0);
    });
    const [p, ...more] = packets as AnnotatedPacket[];
    expect(more).toEqual([]);
    expect(p?.hops.some((h) => h.ns === lab.ns.node3)).toBe(true);
    expect(p?.fate).toBe('dropped');
    expect(p?.expected?.fate).toBe('delivered');
    expect(p?.divergence?.summary).toContain(`inside the tunnel to ${lab.addr.ul3}, expected ${lab.addr.ul2}`);
    expect(p?.divergence?.summary).toContain(`vx0 in ${lab.ns.node1} sends ${lab.podMacs[1]} to ${lab.addr.ul3} by its FDB entry ${lab.podMacs[1]} dst ${lab.addr.ul3}`);
    expect(p?.divergence?.summary).toContain('the entry points at the wrong node');
  }, 120_000);
});
