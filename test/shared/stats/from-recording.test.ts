import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { statsFromRecording } from '../../../shared/stats/from-recording.js';
import { compareStats } from '../../../shared/stats/compare.js';
import { statsFromPackets } from '../../../shared/stats/from-packets.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import { decodeRecording } from '../../../shared/recording/index.js';
import { buildRecording } from '../../recording/fixtures.js';
import { syntheticEvents } from '../../recording/synthetic.js';

const bytes = new Uint8Array(readFileSync(new URL('../../../web/fixtures/demo-lab.hoptrace', import.meta.url)));

describe('stats of a recording', () => {
  it('names the demo lab\'s segments and counts one per hop pair of its packets', () => {
    const doc = statsFromRecording(bytes);
    const veth = doc.segments.find((s) => s.from.ns === 'demo-pod1' && s.from.event === 'xmit' && s.to.ns === 'demo-node' && s.to.event === 'rx');
    expect(veth?.to.ifname).toBe('veth-pod1');
    expect(veth?.count).toBeGreaterThan(0);
    const events = decodeRecording(bytes).records.filter((r) => r.kind === 'event').length;
    const pairs = doc.segments.reduce((n, s) => n + s.count, 0);
    // Each event except a packet's first ends a segment.
    expect(pairs).toBeLessThan(events);
    expect(pairs).toBeGreaterThan(events / 2);
    expect(Date.parse(doc.start)).toBeGreaterThan(Date.parse('2020-01-01'));
    expect(doc.drops.map((d) => d.reason)).toContain('NETFILTER_DROP');
  });

  it('counts no drop for a packet its socket freed after delivery (issue 19), and a closed port\'s as one', () => {
    const base = { cpu: 0, netns: 7, ifindex: 2, ifname: 'eth0', family: 4 as const, proto: 6, len: 52, src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, icmpType: 0, icmpId: 0, tcpFlags: 16, tcpSeq: 1, reason: 0 };
    const packets = reconstructAll([
      { ...base, kind: 'recv', t: 1_000, skb: 'a', ipId: 1 },
      { ...base, kind: 'drop', t: 2_000, skb: 'a', ipId: 1, ifindex: 0, ifname: '', reason: 2 },
      { ...base, kind: 'recv', t: 3_000, skb: 'b', ipId: 2, dport: 81 },
      { ...base, kind: 'drop', t: 4_000, skb: 'b', ipId: 2, dport: 81, ifindex: 0, ifname: '', reason: 3 },
    ], { nsName: () => 'pod', dropReason: (c) => (c === 2 ? 'NOT_SPECIFIED' : 'NO_SOCKET'), isLocal: (n, a) => n === 7 && a === '10.0.0.2' });
    expect(packets.map((p) => p.fate)).toEqual(['delivered', 'dropped']);
    expect(statsFromPackets(packets).drops.map((d) => [d.reason, d.count])).toEqual([['NO_SOCKET', 1]]);
  });

  it('compares a recording with itself as no difference', () => {
    const doc = statsFromRecording(bytes);
    const cmp = compareStats(doc, doc);
    expect(cmp.segments.every((s) => s.diff?.p99_ns === 0 && !s.significant)).toBe(true);
  });

  it('carries the recording\'s flow sampling, so an A/B of sampled recordings says so', () => {
    const events = syntheticEvents(20);
    const sampled = statsFromRecording(buildRecording(events, { header: { sampleRate: 16 } }).bytes);
    const whole = statsFromRecording(buildRecording(events).bytes);
    expect([sampled.sample_rate, whole.sample_rate]).toEqual([16, 1]);
    const cmp = compareStats(whole, sampled);
    expect([cmp.a.sample_rate, cmp.b.sample_rate]).toEqual([1, 16]);
  });
});
