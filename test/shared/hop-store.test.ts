/**
 * The engine's event store (shared/hop-store.ts): events come back as they went in, slots are
 * recycled, and the arrays a burst grew are given back once the store empties — without the
 * reconstruction noticing.
 */
import { describe, it, expect } from 'vitest';
import { HopStore, F_T, F_NETNS, F_TCPSEQ, R_SKB, R_SRC } from '../../shared/hop-store.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import { Reconstructor as ReferenceReconstructor } from './reference/reconstruct.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';

function hop(i: number, over: Partial<HopEvent> = {}): HopEvent {
  return {
    kind: 'xmit', t: 1_000_000_000 + i * 10, cpu: i & 1, skb: `ffff${i.toString(16)}`, netns: 4026532177, ifindex: 2, ifname: 'eth0', family: 4,
    proto: 17, len: 60, ipId: i & 0xffff, src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 5000, icmpType: 0, icmpId: 0,
    tcpFlags: 0, tcpSeq: 4_000_000_000 + i, reason: 0, ...over,
  };
}

describe('hop store', () => {
  it('gives back what was stored, exactly, and reuses freed slots', () => {
    const store = new HopStore(4);
    const a = store.add(hop(1, { t: 2 ** 53 - 1, netns: 0.5 }), 0);
    const b = store.add(hop(2), 1);
    expect(store.field(a, F_T)).toBe(2 ** 53 - 1);
    expect(store.field(a, F_NETNS)).toBe(0.5);
    expect(store.field(b, F_TCPSEQ)).toBe(4_000_000_002);
    expect(store.str(b, R_SKB)).toBe('ffff2');
    store.next[a] = b;
    store.freeChain(a, b, 2);
    expect(store.size).toBe(0);
    for (let i = 0; i < 100; i++) {
      const s = store.add(hop(i), i);
      store.freeChain(s, s, 1);
    }
    expect(store.slots).toBe(4);
  });

  it('never hands out a slot that is in use, also while the arrays grow', () => {
    const store = new HopStore(8);
    const live = new Map<number, number>();
    let t = 0;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3000; i++) {
        const s = store.add(hop(t, { t }), t);
        expect(live.has(s)).toBe(false);
        live.set(s, t++);
      }
      // Free a third of the live events: the cursor goes round past the ones still in use.
      for (const [s, time] of live) if (time % 3 === 1) {
        store.freeChain(s, s, 1);
        live.delete(s);
      }
    }
    for (const [s, time] of live) expect(store.field(s, F_T)).toBe(time);
    expect(store.size).toBe(live.size);
  });

  it('gives the arrays a burst grew back once every event is gone', () => {
    const store = new HopStore();
    const slots: number[] = [];
    for (let i = 0; i < 200_000; i++) slots.push(store.add(hop(i), i));
    expect(store.slots).toBeGreaterThanOrEqual(200_000);
    for (const s of slots) store.freeChain(s, s, 1);
    expect(store.slots).toBe(1024);
    const s = store.add(hop(7, { src: '10.9.9.9' }), 0);
    expect(store.str(s, R_SRC)).toBe('10.9.9.9');
  });

  it('rebuilds the same packets across a burst that fills and empties the store', () => {
    const run = (r: Pick<Reconstructor, 'push' | 'advance' | 'drain' | 'flush'>): string => {
      const out: Packet[][] = [];
      for (let round = 0; round < 2; round++) {
        const base = round * 5_000_000_000;
        // 90k packets alive at once, two hops each, then silence long enough to finish them all.
        for (let i = 0; i < 90_000; i++) r.push(hop(i, { t: base + 1_000_000_000 + i * 10 }));
        for (let i = 0; i < 90_000; i++) r.push(hop(i, { t: base + 1_002_000_000 + i * 10, kind: 'rx', netns: 4026532246 }));
        r.advance(base + 4_000_000_000);
        out.push(r.drain());
      }
      out.push(r.flush());
      return JSON.stringify(out);
    };
    const fast = new Reconstructor();
    const got = run(fast);
    expect(got).toBe(run(new ReferenceReconstructor()));
    expect(JSON.parse(got)[0]).toHaveLength(90_000);
  });
});
