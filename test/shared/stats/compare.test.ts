import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseProbeLine } from '../../../probes/hop-line.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import type { HopEvent } from '../../../shared/hop-event.js';
import { statsFromPackets } from '../../../shared/stats/from-packets.js';
import { compareStats, mergeStatsDocuments, segmentId } from '../../../shared/stats/compare.js';
import { StatsTotals, renderPrometheus, escapeLabel } from '../../../shared/stats/prometheus.js';
import { formatStatsDocument } from '../../../shared/stats/format.js';
import type { StatsDocument } from '../../../shared/stats/types.js';

const events: HopEvent[] = readFileSync(new URL('../../../probes/fixtures/lab-round.txt', import.meta.url), 'utf8')
  .split('\n').map(parseProbeLine).flatMap((l) => (l.type === 'hop' ? [l.hop] : []));
const nsNames = new Map([[4026532246, 'pod1'], [4026532177, 'node'], [4026532315, 'pod2'], [4026532667, 'ext']]);
const packets = reconstructAll(events, { nsName: (n) => nsNames.get(n) ?? null, dropReason: (c) => (c === 12 ? 'NETFILTER_DROP' : `reason-${c}`) });

/** The same document with the chosen segments' latencies multiplied (a slower "B" run). */
function slowed(doc: StatsDocument, factor: number, only: (id: string) => boolean): StatsDocument {
  return {
    ...doc,
    segments: doc.segments.map((s) => (only(segmentId(s)) ? {
      ...s, p50_ns: s.p50_ns * factor, p90_ns: s.p90_ns * factor, p99_ns: s.p99_ns * factor, max_ns: s.max_ns * factor,
    } : s)),
  };
}

describe('stats from packets', () => {
  const doc = statsFromPackets(packets);

  it('counts one segment per consecutive hop pair of every packet', () => {
    const pairs = packets.reduce((s, p) => s + Math.max(0, p.hops.length - 1), 0);
    expect(doc.segments.reduce((s, x) => s + x.count, 0)).toBe(pairs);
    for (const s of doc.segments) {
      expect(s.hist.reduce((n, b) => n + b.count, 0)).toBe(s.count);
      expect(s.p50_ns).toBeLessThanOrEqual(s.p99_ns);
      expect(s.p99_ns).toBeLessThanOrEqual(s.max_ns);
    }
  });

  it('finds the veth crossing pod1 → node and the FORWARD drop of the capture', () => {
    const veth = doc.segments.find((s) => s.from.ns === 'pod1' && s.from.event === 'xmit' && s.to.ns === 'node' && s.to.event === 'rx');
    expect(veth?.to.ifname).toBe('veth-pod1');
    expect(veth?.count).toBe(packets.filter((p) => p.hops.some((h, i) => h.ns === 'pod1' && h.event === 'xmit' && p.hops[i + 1]?.ns === 'node' && p.hops[i + 1]?.event === 'rx')).length);
    const dropped = packets.filter((p) => p.fate === 'dropped');
    expect(doc.drops.reduce((s, d) => s + d.count, 0)).toBe(dropped.length);
    expect(doc.drops.map((d) => d.reason)).toContain('NETFILTER_DROP');
  });

  it('counts transit only through namespaces entered from and left to another', () => {
    expect(doc.transit.map((t) => t.ns)).toEqual(['node']);
  });
});

describe('A/B comparison', () => {
  const doc = statsFromPackets(packets);

  it('merges windows exactly: two halves make the whole', () => {
    const mid = packets[Math.floor(packets.length / 2)]?.hops[0]?.t ?? 0;
    const a = statsFromPackets(packets.filter((p) => (p.hops[0]?.t ?? 0) < mid));
    const b = statsFromPackets(packets.filter((p) => (p.hops[0]?.t ?? 0) >= mid));
    const merged = mergeStatsDocuments([a, b]);
    const byId = (d: StatsDocument) => new Map(d.segments.map((s) => [segmentId(s), { count: s.count, hist: s.hist, max: s.max_ns }]));
    expect(byId(merged as StatsDocument)).toEqual(byId(doc));
    expect(mergeStatsDocuments([])).toBeNull();
  });

  it('reports the segment that got slower first, with its difference', () => {
    const target = doc.segments.find((s) => s.from.ns === 'node' && s.to.ns === 'pod2') ?? doc.segments[0];
    const id = segmentId(target as StatsDocument['segments'][number]);
    const cmp = compareStats(doc, slowed(doc, 10, (x) => x === id));
    expect(cmp.segments[0]?.id).toBe(id);
    expect(cmp.segments[0]?.significant).toBe(true);
    expect(cmp.segments[0]?.diff?.p99_ns).toBe((target?.p99_ns ?? 0) * 9);
    expect(cmp.segments.slice(1).every((s) => s.diff?.p99_ns === 0 && !s.significant)).toBe(true);
  });

  it('lists segments seen on one side only, without a difference', () => {
    const b = { ...doc, segments: doc.segments.slice(1) };
    const cmp = compareStats(doc, b);
    const only = cmp.segments.find((s) => s.b === null);
    expect(only?.diff).toBeNull();
    expect(cmp.segments[cmp.segments.length - 1]?.b).toBeNull();
  });
});

describe('Prometheus text', () => {
  const doc = statsFromPackets(packets);
  const totals = new StatsTotals();
  totals.add(doc);
  totals.add(doc);
  const text = renderPrometheus(totals);
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));

  it('writes cumulative, non-decreasing buckets ending in +Inf = _count for every segment', () => {
    const series = new Map<string, number[]>();
    for (const l of lines.filter((x) => x.startsWith('hoptrace_segment_latency_seconds_bucket'))) {
      const m = /^(\w+)\{(.*),le="([^"]+)"\} (\d+)$/.exec(l);
      expect(m).not.toBeNull();
      const k = m?.[2] ?? '';
      series.set(k, [...(series.get(k) ?? []), Number(m?.[4])]);
    }
    expect(series.size).toBe(doc.segments.length);
    for (const [labels, values] of series) {
      for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1] ?? 0);
      const count = lines.find((l) => l.startsWith(`hoptrace_segment_latency_seconds_count{${labels}}`));
      expect(Number(count?.split(' ').pop())).toBe(values[values.length - 1]);
    }
    const total = doc.segments.reduce((s, x) => s + x.count, 0) * 2;
    expect(lines.filter((l) => l.startsWith('hoptrace_segment_latency_seconds_count')).reduce((s, l) => s + Number(l.split(' ').pop()), 0)).toBe(total);
  });

  it('names labels from, to, event and adds drops, interface counters and the sampling rate', () => {
    expect(text).toMatch(/hoptrace_segment_latency_seconds_bucket\{from_ns="pod1",from_ifname="eth0",from_event="xmit",to_ns="node",to_ifname="veth-pod1",to_event="rx",le="[\d.e-]+"\} \d+/);
    expect(text).toContain('# TYPE hoptrace_drops_total counter');
    expect(text).toMatch(/hoptrace_drops_total\{ns="node",ifname="[\w-]+",reason="NETFILTER_DROP"\} 2/);
    expect(text).toMatch(/hoptrace_interface_packets_total\{ns="pod1",ifname="eth0",direction="tx"\} \d+/);
    expect(text).toContain('hoptrace_stats_sample_rate 1');
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});

describe('human format', () => {
  it('prints the sampling rate with the counts and the slowest segment first', () => {
    const doc = { ...statsFromPackets(packets), sample_rate: 8 };
    const text = formatStatsDocument(doc, { top: 3 });
    expect(text.split('\n')[0]).toContain('sampled 1 in 8 flows (counts not scaled)');
    const slowest = [...doc.segments].sort((a, b) => b.p99_ns - a.p99_ns)[0];
    expect(text.split('\n')[3]).toContain(`${slowest?.from.ns} ${slowest?.from.ifname} ${slowest?.from.event}`);
    expect(text).toContain(`… ${doc.segments.length - 3} more segments`);
  });
});
