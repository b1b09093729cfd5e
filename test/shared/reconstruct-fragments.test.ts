/**
 * A sender's own fragments, rebuilt from real events (test/shared/fixtures/own-fragments.ndjson:
 * the fast tier's recording of test/integration/trace-fragments.test.ts's traffic on the demo
 * lab: a 4000-byte UDP datagram pod1 → pod2 bridged, pod1 → ext through MASQUERADE and pod1 →
 * pod2 over IPv6, each echoed back; conntrack reassembles the IPv4 ones in the node, the
 * receivers all of them).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import type { HopEvent } from '../../shared/hop-event.js';
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
