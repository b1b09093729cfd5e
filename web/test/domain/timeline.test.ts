import { describe, expect, it } from 'vitest';
import { buildTimeline } from '../../src/domain/timeline.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import { demoNetns, demoRecording } from '../fixture.js';

function dnatPacket() {
  const rec = demoRecording();
  const packets = reconstructAll(rec.events, { nsName: (n) => rec.names.get(n) ?? null });
  const p = packets.find((x) => x.hops[0]?.netns === demoNetns('ext') && x.hops.some((h) => h.nat?.kind === 'dnat'));
  if (!p) throw new Error('fixture has no DNAT packet');
  return p;
}

describe('buildTimeline', () => {
  it('should give one lane per namespace in the order the packet reached them', () => {
    const p = dnatPacket();
    const tl = buildTimeline(p, (n, f) => f ?? String(n));
    expect(tl.lanes.map((l) => l.name)).toEqual(['demo-ext', 'demo-node', 'demo-pod2']);
    expect(tl.hops.length).toBe(p.hops.length);
    for (const h of tl.hops) expect(tl.lanes[h.lane]?.netns).toBe(h.hop.netns);
  });

  it('should place hops left to right on both axes, with Δt from the previous hop', () => {
    const p = dnatPacket();
    for (const scale of ['compressed', 'linear'] as const) {
      const tl = buildTimeline(p, () => 'x', scale);
      expect(tl.hops[0]?.x).toBe(0);
      expect(tl.hops[tl.hops.length - 1]?.x).toBeCloseTo(1);
      for (let i = 1; i < tl.hops.length; i++) {
        expect(tl.hops[i]?.x).toBeGreaterThanOrEqual(tl.hops[i - 1]?.x ?? 0);
        expect(tl.hops[i]?.deltaNs).toBe((p.hops[i]?.t ?? 0) - (p.hops[i - 1]?.t ?? 0));
      }
    }
    // The compressed axis never stacks two hops on one spot.
    const c = buildTimeline(p, () => 'x', 'compressed');
    for (let i = 1; i < c.hops.length; i++) expect((c.hops[i]?.x ?? 0) - (c.hops[i - 1]?.x ?? 0)).toBeGreaterThan(0.01);
  });

  it('should put a hop without a device in the lane the packet was last in', () => {
    const p = dnatPacket();
    const last = p.hops[p.hops.length - 1];
    const withFree = { ...p, hops: [...p.hops, { ...(last as NonNullable<typeof last>), netns: 0, ns: null, ifname: '', ifindex: 0, event: 'consume' as const, t: (last?.t ?? 0) + 1000 }] };
    const tl = buildTimeline(withFree, () => 'x');
    expect(tl.hops[tl.hops.length - 1]?.lane).toBe(tl.hops[tl.hops.length - 2]?.lane);
    expect(tl.lanes.length).toBe(3);
  });
});
