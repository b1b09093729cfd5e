import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeByTime } from '../../src/domain/rows.js';
import type { PacketRow } from '../../src/worker/protocol.js';

function row(n: number, t: number): PacketRow {
  return {
    n, id: `${t}-${n}`, t, proto: 'udp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2,
    path: [], pathNames: [], hops: 1, latencyNs: 0, fate: 'unknown', dropReason: null, nat: null, clone: false,
  };
}

describe('mergeByTime', () => {
  it('should keep the list sorted by time and lose no row, whatever order batches come in', () => {
    fc.assert(fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 30 }), { maxLength: 20 }), (batchTimes) => {
      let n = 0;
      const list: PacketRow[] = [];
      const all: PacketRow[] = [];
      for (const times of batchTimes) {
        const b = times.map((t) => row(n++, t));
        all.push(...b);
        mergeByTime(list, b);
      }
      expect(list.length).toBe(all.length);
      for (let i = 1; i < list.length; i++) expect((list[i] as PacketRow).t).toBeGreaterThanOrEqual((list[i - 1] as PacketRow).t);
      expect(new Set(list.map((r) => r.n)).size).toBe(all.length);
    }));
  });

  it('should only touch the tail when a batch is newer than the list', () => {
    const list = [row(0, 10), row(1, 20)];
    const head = list[0];
    mergeByTime(list, [row(2, 30), row(3, 25)]);
    expect(list.map((r) => r.t)).toEqual([10, 20, 25, 30]);
    expect(list[0]).toBe(head);
  });
});
