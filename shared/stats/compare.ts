/**
 * Windows and A/B: merge several interval documents into one (exact, since histograms share the
 * bucket grid), and compare two documents segment by segment — two windows of one run, or two
 * runs/recordings. Places are matched by names (namespace, interface, event), not inodes, so two
 * runs of the same lab compare even though its namespaces were recreated.
 */
import { mergeHists } from './buckets.js';
import { summarize } from './document.js';
import type { DropStats, InterfaceStats, LatencySummary, SegmentStats, StatsDocument, StatsPlace, TransitStats } from './types.js';

/** `ns/ifname/event`, with `node:` in front on a hub (two nodes may have namespaces of one name). */
export function placeId(p: Pick<StatsPlace, 'ns' | 'ifname' | 'event' | 'node'>): string {
  return `${p.node !== undefined ? `${p.node}:` : ''}${p.ns}/${p.ifname}/${p.event}`;
}

const nodePrefix = (x: { readonly node?: string }): string => (x.node !== undefined ? `${x.node}:` : '');

export function segmentId(s: Pick<SegmentStats, 'from' | 'to'>): string {
  return `${placeId(s.from)}>${placeId(s.to)}`;
}

function mergeBy<T, K>(items: T[], key: (t: T) => K, merge: (a: T, b: T) => T): T[] {
  const by = new Map<K, T>();
  for (const it of items) {
    const k = key(it);
    const cur = by.get(k);
    by.set(k, cur === undefined ? it : merge(cur, it));
  }
  return [...by.values()];
}

function mergeSummary<T extends LatencySummary>(a: T, b: T): T {
  return { ...a, ...summarize(mergeHists([a.hist, b.hist]), Math.max(a.max_ns, b.max_ns)) };
}

/** One document covering all of `docs` (consecutive or not): counts add, histograms merge, rates over the summed durations. */
export function mergeStatsDocuments(docs: readonly StatsDocument[]): StatsDocument | null {
  const first = docs[0];
  const last = docs[docs.length - 1];
  if (!first || !last) return null;
  const seconds = docs.reduce((s, d) => s + d.duration_s, 0);
  const segments = mergeBy<SegmentStats, string>(docs.flatMap((d) => d.segments), segmentId, mergeSummary);
  const transit = mergeBy<TransitStats, string>(docs.flatMap((d) => d.transit), (t) => `${nodePrefix(t)}${t.ns}`, mergeSummary);
  const drops = mergeBy<DropStats, string>(docs.flatMap((d) => d.drops), (d) => `${nodePrefix(d)}${d.ns}/${d.ifname}/${d.reason}`, (a, b) => ({ ...a, count: a.count + b.count }));
  const interfaces = mergeBy<InterfaceStats, string>(docs.flatMap((d) => d.interfaces), (i) => `${nodePrefix(i)}${i.ns}/${i.ifname}`, (a, b) => ({
    ...a, rx_packets: a.rx_packets + b.rx_packets, tx_packets: a.tx_packets + b.tx_packets, rx_bytes: a.rx_bytes + b.rx_bytes, tx_bytes: a.tx_bytes + b.tx_bytes,
  })).map((i) => ({
    ...i,
    pps: seconds > 0 ? Math.round(((i.rx_packets + i.tx_packets) / seconds) * 10) / 10 : 0,
    bps: seconds > 0 ? Math.round(((i.rx_bytes + i.tx_bytes) * 8) / seconds) : 0,
  }));
  return {
    ...last,
    start_ns: first.start_ns,
    start: first.start,
    duration_s: Math.round(seconds * 1000) / 1000,
    final: docs.some((d) => d.final),
    segments: segments.sort((a, b) => b.count - a.count),
    transit: transit.sort((a, b) => b.count - a.count),
    drops: drops.sort((a, b) => b.count - a.count),
    interfaces: interfaces.sort((a, b) => b.pps - a.pps),
  };
}

export interface SideSummary {
  readonly count: number;
  /** Packets per second over the document's duration. */
  readonly rate: number;
  readonly p50_ns: number;
  readonly p90_ns: number;
  readonly p99_ns: number;
  readonly max_ns: number;
}

export interface SegmentComparison {
  readonly id: string;
  readonly from: StatsPlace;
  readonly to: StatsPlace;
  readonly a: SideSummary | null;
  readonly b: SideSummary | null;
  /** b − a, ns (null when a side has no packets). */
  readonly diff: { readonly p50_ns: number; readonly p90_ns: number; readonly p99_ns: number; readonly max_ns: number } | null;
  /** b.p99 / a.p99 (null when a side has no packets or a is 0). */
  readonly p99_ratio: number | null;
  /** Whether the p99 difference is larger than the buckets can blur (both sides' 25 % and 1 µs). */
  readonly significant: boolean;
}

export interface StatsComparison {
  readonly a: { readonly start: string; readonly end: string; readonly duration_s: number; readonly sample_rate: number };
  readonly b: { readonly start: string; readonly end: string; readonly duration_s: number; readonly sample_rate: number };
  /** Largest |p99 difference| first; segments seen on one side only at the end. */
  readonly segments: SegmentComparison[];
}

function side(s: SegmentStats | undefined, seconds: number): SideSummary | null {
  if (!s || s.count === 0) return null;
  return { count: s.count, rate: seconds > 0 ? s.count / seconds : 0, p50_ns: s.p50_ns, p90_ns: s.p90_ns, p99_ns: s.p99_ns, max_ns: s.max_ns };
}

export function compareStats(a: StatsDocument, b: StatsDocument): StatsComparison {
  const as = new Map(a.segments.map((s) => [segmentId(s), s]));
  const bs = new Map(b.segments.map((s) => [segmentId(s), s]));
  const ids = [...new Set([...as.keys(), ...bs.keys()])];
  const rows = ids.map((id): SegmentComparison => {
    const sa = as.get(id);
    const sb = bs.get(id);
    const ref = (sa ?? sb) as SegmentStats;
    const A = side(sa, a.duration_s);
    const B = side(sb, b.duration_s);
    const diff = A && B ? { p50_ns: B.p50_ns - A.p50_ns, p90_ns: B.p90_ns - A.p90_ns, p99_ns: B.p99_ns - A.p99_ns, max_ns: B.max_ns - A.max_ns } : null;
    const blur = A && B ? 0.25 * Math.max(A.p99_ns, B.p99_ns) + 1000 : 0;
    return {
      id,
      from: ref.from,
      to: ref.to,
      a: A,
      b: B,
      diff,
      p99_ratio: A && B && A.p99_ns > 0 ? B.p99_ns / A.p99_ns : null,
      significant: diff !== null && Math.abs(diff.p99_ns) > blur,
    };
  });
  rows.sort((x, y) => (y.diff ? Math.abs(y.diff.p99_ns) : -1) - (x.diff ? Math.abs(x.diff.p99_ns) : -1));
  const meta = (d: StatsDocument) => ({ start: d.start, end: d.end, duration_s: d.duration_s, sample_rate: d.sample_rate });
  return { a: meta(a), b: meta(b), segments: rows };
}
