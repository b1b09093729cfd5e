/**
 * Builds the stats document (types.ts) from one interval's counts: groups histogram entries by
 * segment and namespace, reads percentiles off the buckets, names places, and turns interface
 * counters into rates.
 */
import type { StatsCounts, StatsInterval } from './parse.js';
import { parsePlaceKey } from './parse.js';
import type { HistBucket } from './buckets.js';
import { clampMax, histCount, histFromCounts, percentile } from './buckets.js';
import type {
  DropStats, InterfaceStats, LatencySummary, SegmentStats, StatsDocument, StatsNames, StatsPlace, TransitStats,
} from './types.js';

export interface DocumentMeta {
  readonly sampleRate: number;
  readonly filter: string;
  /** Kernel monotonic ns → wall-clock ms since the epoch. */
  readonly wallClock: (ns: number) => number;
}

export function nsName(names: StatsNames, netns: number): string {
  return names.ns(netns) ?? `netns:${netns}`;
}

export function ifName(names: StatsNames, netns: number, ifindex: number): string {
  if (ifindex === 0) return '';
  return names.ifname(netns, ifindex) ?? `if${ifindex}`;
}

/** count, percentiles and max of a histogram. */
export function summarize(hist: HistBucket[], kernelMax: number): LatencySummary {
  const max = clampMax(kernelMax, hist);
  return {
    count: histCount(hist),
    p50_ns: percentile(hist, 0.5, max),
    p90_ns: percentile(hist, 0.9, max),
    p99_ns: percentile(hist, 0.99, max),
    max_ns: max,
    hist,
  };
}

/** Groups `group|bucket` → count into group → (bucket → count). */
function byGroup(m: ReadonlyMap<string, number>): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const [k, v] of m) {
    const bar = k.lastIndexOf('|');
    const group = k.slice(0, bar);
    const inner = out.get(group) ?? new Map<number, number>();
    inner.set(Number(k.slice(bar + 1)), v);
    out.set(group, inner);
  }
  return out;
}

function place(names: StatsNames, key: string): StatsPlace | null {
  const p = parsePlaceKey(key);
  if (!p) return null;
  return { ns: nsName(names, p.netns), ifname: ifName(names, p.netns, p.ifindex), event: p.kind, netns: p.netns, ifindex: p.ifindex };
}

export function segmentsOf(counts: StatsCounts, names: StatsNames): SegmentStats[] {
  const out: SegmentStats[] = [];
  for (const [key, buckets] of byGroup(counts.seg)) {
    const [fromKey = '', toKey = ''] = key.split('>');
    const from = place(names, fromKey);
    const to = place(names, toKey);
    if (!from || !to) continue;
    out.push({ from, to, ...summarize(histFromCounts(buckets), counts.segMax.get(key) ?? 0) });
  }
  return out.sort((a, b) => b.count - a.count || a.from.ns.localeCompare(b.from.ns));
}

export function transitOf(counts: StatsCounts, names: StatsNames): TransitStats[] {
  const out: TransitStats[] = [];
  for (const [key, buckets] of byGroup(counts.transit)) {
    const netns = Number(key);
    out.push({ ns: nsName(names, netns), netns, ...summarize(histFromCounts(buckets), counts.transitMax.get(key) ?? 0) });
  }
  return out.sort((a, b) => b.count - a.count);
}

export function dropsOf(counts: StatsCounts, names: StatsNames): DropStats[] {
  const out: DropStats[] = [];
  for (const [key, count] of counts.drops) {
    const [netns = 0, ifindex = 0, reason = 0] = key.split('|').map(Number);
    out.push({ ns: nsName(names, netns), netns, ifname: ifName(names, netns, ifindex), ifindex, reason: names.reason(reason), count });
  }
  return out.sort((a, b) => b.count - a.count);
}

export function interfacesOf(counts: StatsCounts, names: StatsNames, seconds: number): InterfaceStats[] {
  const by = new Map<string, { netns: number; ifindex: number; rx: number; tx: number; rxB: number; txB: number }>();
  for (const [key, c] of counts.ifs) {
    const [netns = 0, ifindex = 0, kind = 0] = key.split('|').map(Number);
    const k = `${netns}|${ifindex}`;
    const cur = by.get(k) ?? { netns, ifindex, rx: 0, tx: 0, rxB: 0, txB: 0 };
    if (kind === 1) { cur.tx += c.packets; cur.txB += c.bytes; } else { cur.rx += c.packets; cur.rxB += c.bytes; }
    by.set(k, cur);
  }
  const per = seconds > 0 ? 1 / seconds : 0;
  return [...by.values()].map((v) => ({
    ns: nsName(names, v.netns),
    netns: v.netns,
    ifname: ifName(names, v.netns, v.ifindex),
    ifindex: v.ifindex,
    pps: Math.round((v.rx + v.tx) * per * 10) / 10,
    bps: Math.round((v.rxB + v.txB) * 8 * per),
    rx_packets: v.rx,
    tx_packets: v.tx,
    rx_bytes: v.rxB,
    tx_bytes: v.txB,
  })).sort((a, b) => b.pps - a.pps || a.ns.localeCompare(b.ns) || a.ifname.localeCompare(b.ifname));
}

export function buildStatsDocument(interval: StatsInterval, names: StatsNames, meta: DocumentMeta): StatsDocument {
  const seconds = Math.max(0, (interval.endNs - interval.startNs) / 1e9);
  return {
    type: 'stats',
    start_ns: interval.startNs,
    end_ns: interval.endNs,
    start: new Date(meta.wallClock(interval.startNs)).toISOString(),
    end: new Date(meta.wallClock(interval.endNs)).toISOString(),
    duration_s: Math.round(seconds * 1000) / 1000,
    sample_rate: meta.sampleRate,
    filter: meta.filter,
    final: interval.final,
    segments: segmentsOf(interval.counts, names),
    transit: transitOf(interval.counts, names),
    drops: dropsOf(interval.counts, names),
    interfaces: interfacesOf(interval.counts, names, seconds),
  };
}
