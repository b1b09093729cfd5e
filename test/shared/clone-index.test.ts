/**
 * The clone-key index (shared/clone-index.ts) behaves as a Map from clone key to packet, also
 * when a tiny table makes every key collide, grow and shift entries back on deletion.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { CloneIndex, cloneKeyHash, keyChanged } from '../../shared/clone-index.js';
import { HopStore } from '../../shared/hop-store.js';
import type { HopEvent } from '../../shared/hop-event.js';

function hop(i: number, k: number): HopEvent {
  return {
    kind: 'xmit', t: i, cpu: 0, skb: `s${i}`, netns: 1, ifindex: 2, ifname: 'eth0', family: 4, proto: 17, len: 60,
    ipId: k % 3, src: `10.0.0.${k % 5}`, dst: '10.0.0.9', sport: 1000 + (k % 2), dport: 53, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
}

/** The string key the engine used to build, as the model's key. */
const keyOf = (e: HopEvent): string => `${e.family}|${e.proto}|${e.ipId}|${e.len}|${e.tcpSeq}|${e.icmpId}|${e.src}|${e.sport}|${e.dst}|${e.dport}`;

describe('clone-key index', () => {
  it('agrees with a Map keyed by the key string through sets, gets and deletions', () => {
    const op = fc.record({ what: fc.integer({ min: 0, max: 2 }), key: fc.integer({ min: 0, max: 40 }), packet: fc.integer({ min: 0, max: 7 }), owner: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 1, max: 3 }), (ops, bits) => {
        const store = new HopStore(4);
        const index = new CloneIndex(store, bits);
        const model = new Map<string, number>();
        ops.forEach(({ what, key, packet: given, owner }, i) => {
          const ev = hop(i, key);
          const s = store.add(ev, i);
          const h = cloneKeyHash(store, s);
          // Deleting for the packet that holds the key (it finished), or for another one (a no-op).
          const packet = what === 1 && owner ? (model.get(keyOf(ev)) ?? given) : given;
          if (what === 0) {
            index.set(s, h, packet);
            model.set(keyOf(ev), packet);
          } else if (what === 1) {
            index.deleteIf(s, h, packet);
            if (model.get(keyOf(ev)) === packet) model.delete(keyOf(ev));
          }
          expect(index.get(s, h)).toBe(model.get(keyOf(ev)) ?? -1);
          expect(index.size).toBe(model.size);
        });
        // Every key the model holds is still found (no entry lost behind a shifted one).
        for (let key = 0; key <= 40; key++) {
          const ev = hop(10_000 + key, key);
          const s = store.add(ev, 0);
          expect(index.get(s, cloneKeyHash(store, s))).toBe(model.get(keyOf(ev)) ?? -1);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('calls two events the same key exactly when the key strings are equal', () => {
    const store = new HopStore(2);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 }), (a, b) => {
        const ea = hop(1, a);
        const eb = hop(2, b);
        const sa = store.add(ea, 0);
        const sb = store.add(eb, 1);
        expect(keyChanged(store, sa, sb)).toBe(keyOf(ea) !== keyOf(eb));
        if (keyOf(ea) === keyOf(eb)) expect(cloneKeyHash(store, sa)).toBe(cloneKeyHash(store, sb));
        store.freeChain(sa, sa, 1);
        store.freeChain(sb, sb, 1);
      }),
    );
  });
});
