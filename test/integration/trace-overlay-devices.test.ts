/**
 * geneve and ipip on real devices (issue 14): a pod → pod datagram through a real tunnel device
 * of each kind, traced and compared with its expected path, like the vxlan tests do. Runs where
 * the kernel can create the device (tried in a scratch namespace); elsewhere it is skipped, and
 * the skip says why in the kernel's words (the `ip link add` error, the kernel configuration).
 * Which tunnel kinds are verified on a real device and which only with crafted packets:
 * probes/README.md ("Tunnels: what is verified how").
 */
import { describe, it, expect } from 'vitest';
import { sendUdp } from '../../server/lab/traffic.js';
import type { AnnotatedPacket } from '../../shared/expectation.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { randomPrefix } from '../helpers/cli.js';
import { tunnelUnsupported } from '../helpers/tunnel-support.js';
import { pathSpots as spots, traceOverlay, useOverlayLab, type OverlayLab } from '../helpers/overlay-lab.js';

const PORT = 5435;

const why = {
  geneve: isRoot ? await tunnelUnsupported('geneve', randomPrefix('tgs').slice(0, 9)) : NEEDS_ROOT,
  ipip: isRoot ? await tunnelUnsupported('ipip', randomPrefix('tis').slice(0, 9)) : NEEDS_ROOT,
};

describe.each<['geneve' | 'ipip']>([['geneve'], ['ipip']])('%s on a real device, real trace', (kind) => {
  const skip = why[kind];
  const lab: OverlayLab = useOverlayLab(kind === 'geneve' ? 'rdg' : 'rdi', { kind, addressBase: 172 }, PORT, skip === null);

  it.skipIf(skip !== null)(`pod → pod through ${kind}: one packet, encap and decap facts, on its expected path${skip ? ` — skipped: ${skip}` : ''}`, async () => {
    const { packets } = await traceOverlay(lab, `udp and host ${lab.addr.pod2} and port ${PORT}`, async () => {
      expect((await sendUdp(lab.ns.pod1, lab.addr.pod2, PORT, 2, 32, 50)).replies).toBe(2);
    });
    expect(packets.filter((p) => p.dst === lab.addr.pod2)).toHaveLength(2);
    expect(packets.filter((p) => p.src === lab.addr.pod2)).toHaveLength(2);
    for (const p of packets as AnnotatedPacket[]) {
      const request = p.dst === lab.addr.pod2;
      const [from, to] = request ? [lab.ns.node1, lab.ns.node2] : [lab.ns.node2, lab.ns.node1];
      expect(p.fate).toBe('delivered');
      const enc = p.hops.find((h) => h.encap);
      expect(`${enc?.ns}/${enc?.ifname}/${enc?.event}`).toBe(`${from}/${lab.tunnel}/xmit`);
      expect(enc?.encap).toMatchObject(kind === 'geneve'
        ? { type: 'geneve', vni: 42, outer: { proto: 17, dport: 6081, dst: request ? lab.addr.ul2 : lab.addr.ul1 } }
        : { type: 'ipip', outer: { proto: 4, src: request ? lab.addr.ul1 : lab.addr.ul2, dst: request ? lab.addr.ul2 : lab.addr.ul1 } });
      expect(p.hops.some((h) => h.ns === from && h.ifname === 'ul0' && h.outer)).toBe(true);
      expect(p.hops.find((h) => h.decap)).toMatchObject({ ns: to, ifname: lab.tunnel, event: 'recv' });
      expect(p.divergence, JSON.stringify(p.divergence)).toBeNull();
      expect(spots(p.expected?.hops ?? [])).toEqual(spots(p.hops));
    }
  }, 120_000);
});
