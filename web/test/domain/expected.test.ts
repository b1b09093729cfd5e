import { describe, expect, it } from 'vitest';
import { expectedFor } from '../../src/domain/expected.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import { demoNetns, demoRecording } from '../fixture.js';

function packets() {
  const rec = demoRecording();
  return reconstructAll(rec.events, {
    nsName: (n) => rec.names.get(n) ?? null,
    dropReason: (c) => rec.header.dropReasons.get(c) ?? `reason-${c}`,
  });
}

describe('expectedFor', () => {
  it('should find the FORWARD drop on the expected path of the blocked datagram', () => {
    const topo = demoRecording().topology;
    const p = packets().find((x) => x.fate === 'dropped' && x.dport === 9999);
    if (!p) throw new Error('no blocked datagram in the fixture');
    const v = expectedFor(p, topo);
    expect(v.unavailable).toBeNull();
    expect(v.path?.fate).toBe('dropped');
    expect(v.path?.drop?.hook).toBe('FORWARD');
    expect(v.divergence).toBeNull();
    expect(v.matched.filter((m) => m >= 0).length).toBeGreaterThan(2);
  });

  it('should predict the DNAT into pod2 for a packet sent to the node port', () => {
    const p = packets().find((x) => x.hops[0]?.netns === demoNetns('ext') && x.dport === 8080 && x.hops.some((h) => h.nat));
    if (!p) throw new Error('no DNAT packet in the fixture');
    const v = expectedFor(p, demoRecording().topology);
    expect(v.path?.hops.some((h) => h.netns === demoNetns('pod2'))).toBe(true);
    expect(v.path?.hops.some((h) => h.rules.some((r) => /dnat/i.test(r.verdict)))).toBe(true);
    expect(v.divergence).toBeNull();
  });

  it('should say why there is no expected path instead of guessing', () => {
    const p = packets()[0];
    if (!p) throw new Error('empty fixture');
    expect(expectedFor(p, null).unavailable).toMatch(/topology/);
    const other = { ...p, hops: p.hops.map((h) => ({ ...h, netns: 12345 })) };
    expect(expectedFor(other, demoRecording().topology).unavailable).toMatch(/not in the model/);
  });

  it('should show a packet\'s own expected path and divergence when it carries them', () => {
    const p = packets().find((x) => x.fate === 'dropped' && x.dport === 9999);
    if (!p) throw new Error('no blocked datagram');
    const computed = expectedFor(p, demoRecording().topology);
    const carried = { ...p, expected: computed.path, divergence: { index: 1, observedIndex: 2, expected: null, observed: null, kind: 'path', summary: 'went elsewhere' } };
    const v = expectedFor(carried, null);
    expect(v.path).toBe(computed.path);
    expect(v.divergence?.summary).toBe('went elsewhere');
  });
});
