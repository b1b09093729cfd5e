import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { StatsOutputParser, StatsIntervals, deltaCounts, placeKey, parsePlaceKey, emptyCounts } from '../../../shared/stats/parse.js';
import { buildStatsDocument } from '../../../shared/stats/document.js';
import type { StatsDocument, StatsNames } from '../../../shared/stats/types.js';

const fixture = readFileSync(new URL('../../../probes/stats/fixtures/udp-intervals.txt', import.meta.url), 'utf8').split('\n');
const LAB = { node: 4026533036, pod1: 4026533105, pod2: 4026533174 };
const labNames = new Map([[LAB.node, 'node'], [LAB.pod1, 'pod1'], [LAB.pod2, 'pod2']]);
const names: StatsNames = {
  ns: (n) => labNames.get(n) ?? null,
  ifname: (n, i) => (n === LAB.node ? ({ 2: 'veth-pod1', 3: 'veth-pod2' } as Record<number, string>)[i] ?? null : i === 2 ? 'eth0' : null),
  reason: (c) => (c === 12 ? 'NETFILTER_DROP' : `reason-${c}`),
};
const meta = { sampleRate: 1, filter: 'udp', wallClock: (ns: number) => 1_700_000_000_000 + ns / 1e6 };

function documents(lines: string[]): StatsDocument[] {
  const parser = new StatsOutputParser();
  let intervals: StatsIntervals | null = null;
  const docs: StatsDocument[] = [];
  for (const l of lines) {
    const snap = parser.push(l);
    if (parser.startNs !== null && !intervals) intervals = new StatsIntervals(parser.startNs);
    if (snap && intervals) docs.push(buildStatsDocument(intervals.next(snap), names, meta));
  }
  expect(parser.unparsed).toBe(0);
  return docs;
}

const key = (netns: number, ifindex: number, kind: number): string => (BigInt.asIntN(64, (BigInt(netns) << 32n) | (BigInt(ifindex) << 8n) | BigInt(kind))).toString();

describe('stats output parser', () => {
  it('reads a real capture: one document per interval, the end-of-run one last, the exit dump ignored', () => {
    const docs = documents(fixture);
    expect(docs.map((d) => d.final)).toEqual([false, false, false, true]);
    for (const [i, d] of docs.entries()) {
      if (i > 0) expect(d.start_ns).toBe(docs[i - 1]?.end_ns);
      expect(d.end_ns).toBeGreaterThan(d.start_ns);
    }
    expect(docs[0]?.duration_s).toBeCloseTo(0.72, 1);
  });

  it('gives every hop pair of the pod1 → pod2 path the same count in each interval (each packet crosses each once)', () => {
    const docs = documents(fixture);
    let total = 0;
    for (const d of docs) {
      const fwd = ['pod1/eth0/xmit>node/veth-pod1/rx', 'node/veth-pod1/rx>node/veth-pod1/recv', 'node/veth-pod1/recv>node/veth-pod2/xmit', 'node/veth-pod2/xmit>pod2/eth0/rx', 'pod2/eth0/rx>pod2/eth0/recv'];
      const counts = fwd.map((id) => d.segments.find((s) => `${s.from.ns}/${s.from.ifname}/${s.from.event}>${s.to.ns}/${s.to.ifname}/${s.to.event}` === id)?.count ?? 0);
      expect(new Set(counts).size).toBe(1);
      total += counts[0] ?? 0;
      const pod1 = d.interfaces.find((i) => i.ns === 'pod1');
      expect(pod1?.tx_packets ?? 0).toBeGreaterThanOrEqual(counts[0] ?? 0);
      // Transit through the node: every forwarded packet entered it from pod1 and left it to pod2.
      expect(d.transit.find((t) => t.ns === 'node')?.count ?? 0).toBeGreaterThanOrEqual(counts[0] ?? 0);
    }
    // iperf3 sent 250 packets/s for 2 s.
    expect(total).toBeGreaterThanOrEqual(480);
    expect(total).toBeLessThanOrEqual(520);
  });

  it('reinterprets negative (signed) keys as unsigned places', () => {
    const packed = (BigInt(LAB.pod1) << 32n) | (2n << 8n) | 1n;
    expect(packed >= 1n << 63n).toBe(true);
    expect(placeKey(BigInt.asUintN(64, BigInt.asIntN(64, packed)))).toBe(`${LAB.pod1}.2.1`);
    expect(parsePlaceKey(`${LAB.pod1}.2.1`)).toEqual({ netns: LAB.pod1, ifindex: 2, kind: 'xmit' });
    expect(placeKey(7n)).toBeNull();
  });

  it('subtracts cumulative maps and keeps per-interval maxima', () => {
    const from = key(LAB.pod1, 2, 1);
    const to = key(LAB.node, 2, 2);
    const lines = (t: number, c: number, max: number, final = false): string[] => [
      `${final ? 'F' : 'T'} ${t}`,
      `@seg[${from}, ${to}, 40]: ${c}`,
      `@segmax[${from}, ${to}]: ${max}`,
      `@drops[${LAB.node}, 9, 12]: ${c}`,
      `@ifs[${LAB.pod1}, 2, 1]: count ${c}, average 100, total ${c * 100}`,
      'E',
    ];
    const docs = documents(['B 1000', 'READY', ...lines(2_000_001_000, 5, 900), ...lines(4_000_001_000, 5, 0), ...lines(5_000_001_000, 12, 1100, true), '@skbs[0xffff]: (1, 2, 3, 4, 5)']);
    expect(docs.map((d) => d.segments[0]?.count ?? 0)).toEqual([5, 0, 7]);
    expect(docs.map((d) => d.drops[0]?.count ?? 0)).toEqual([5, 0, 7]);
    expect(docs[0]?.drops[0]).toMatchObject({ ns: 'node', reason: 'NETFILTER_DROP', ifname: 'if9' });
    expect(docs[2]?.segments[0]).toMatchObject({ from: { ns: 'pod1', ifname: 'eth0', event: 'xmit' }, to: { ns: 'node', ifname: 'veth-pod1', event: 'rx' }, max_ns: 1100 });
    expect(docs[0]?.interfaces[0]).toMatchObject({ tx_packets: 5, tx_bytes: 500, rx_packets: 0, pps: 2.5, bps: 2000 });
    expect(docs[2]?.interfaces[0]).toMatchObject({ tx_packets: 7, pps: 7 });
  });

  it('names unknown namespaces and interfaces by number', () => {
    const d = buildStatsDocument({ startNs: 0, endNs: 1e9, final: false, counts: { ...emptyCounts(), drops: new Map([['42|0|2', 3], ['42|7|2', 1]]) } }, names, meta);
    expect(d.drops.map((x) => [x.ns, x.ifname, x.reason])).toEqual([['netns:42', '', 'reason-2'], ['netns:42', 'if7', 'reason-2']]);
  });

  it('treats a map that lost a key as nothing new, not a negative count', () => {
    const a = { ...emptyCounts(), seg: new Map([['1.2.1>3.4.2|40', 10]]) };
    const b = { ...emptyCounts(), seg: new Map([['1.2.1>3.4.2|40', 4]]) };
    expect(deltaCounts(a, b).seg.size).toBe(0);
  });
});
