import { describe, expect, it } from 'vitest';
import { expectedFor } from '../../src/domain/expected.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import { demoNetns, demoPackets, demoRecording } from '../fixture.js';

describe('expectedFor', () => {
  it('should find the FORWARD drop on the expected path of the blocked datagram', () => {
    const topo = demoRecording().topology;
    const p = demoPackets().find((x) => x.fate === 'dropped' && x.dport === 9999);
    if (!p) throw new Error('no blocked datagram in the fixture');
    const v = expectedFor(p, topo);
    expect(v.unavailable).toBeNull();
    expect(v.path?.fate).toBe('dropped');
    expect(v.path?.drop?.hook).toBe('FORWARD');
    expect(v.divergence).toBeNull();
    expect(v.matched.filter((m) => m >= 0).length).toBeGreaterThan(2);
  });

  it('should show the DNAT into pod2 for a packet sent to the node port', () => {
    const p = demoPackets().find((x) => x.hops[0]?.netns === demoNetns('ext') && x.dport === 8080 && x.hops.some((h) => h.nat));
    if (!p) throw new Error('no DNAT packet in the fixture');
    const v = expectedFor(p, demoRecording().topology);
    expect(v.path?.hops.some((h) => h.netns === demoNetns('pod2'))).toBe(true);
    expect(v.path?.hops.some((h) => h.rules.some((r) => /dnat/i.test(r.verdict)))).toBe(true);
    expect(v.divergence).toBeNull();
  });

  it('should keep a reply through MASQUERADE on its path: the model remembers the request\'s connection', () => {
    const p = demoPackets().find((x) => x.hops[0]?.netns === demoNetns('ext') && x.sport === 7000 && x.hops.some((h) => h.nat));
    if (!p) throw new Error('no de-NATed reply in the fixture');
    const v = expectedFor(p, demoRecording().topology);
    expect(v.path).not.toBeNull();
    expect(v.divergence).toBeNull();
  });

  it('should say why there is no expected path instead of guessing', () => {
    const rec = demoRecording();
    const p = reconstructAll(rec.events, { nsName: (n) => rec.names.get(n) ?? null })[0];
    if (!p) throw new Error('empty fixture');
    expect(expectedFor(p, null).unavailable).toMatch(/topology/);
    expect(expectedFor(p, rec.topology).unavailable).toMatch(/before the model was known/);
    const other = { ...p, hops: p.hops.map((h) => ({ ...h, netns: 12345 })) };
    expect(expectedFor(other, rec.topology).unavailable).toMatch(/not in the model/);
    expect(expectedFor({ ...p, cloneOf: 'x', expected: null, divergence: null }, rec.topology).unavailable).toMatch(/copy/);
  });

  it('should show a packet\'s own expected path and divergence as it carries them, without simulating', () => {
    const p = demoPackets().find((x) => x.fate === 'dropped' && x.dport === 9999);
    if (!p?.expected) throw new Error('no blocked datagram');
    const carried = { ...p, divergence: { index: 1, observedIndex: 2, expected: null, observed: null, kind: 'path', summary: 'went elsewhere' } };
    const v = expectedFor(carried, null);
    expect(v.path).toBe(p.expected);
    expect(v.divergence?.summary).toBe('went elsewhere');
  });
});
