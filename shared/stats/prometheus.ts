/**
 * Prometheus text exposition (format 0.0.4) of stats: totals since the session started, built
 * by adding interval documents (StatsTotals), rendered as
 *   hoptrace_segment_latency_seconds   histogram {from_ns, from_ifname, from_event, to_ns, to_ifname, to_event}
 *   hoptrace_transit_seconds           histogram {ns}
 *   hoptrace_drops_total               counter   {ns, ifname, reason}
 *   hoptrace_interface_packets_total   counter   {ns, ifname, direction}
 *   hoptrace_interface_bytes_total     counter   {ns, ifname, direction}  (IP length)
 *   hoptrace_stats_sample_rate         gauge     (1 in N flows; counts are not scaled)
 * Histogram buckets are the powers of two from 128 ns to ~1.07 s, where the kernel's buckets have
 * exact boundaries; `_sum` is estimated from bucket midpoints (within 12.5 %).
 */
import type { HistBucket } from './buckets.js';
import { histSumEstimate, mergeHists } from './buckets.js';
import type { StatsDocument } from './types.js';

const LE_BOUNDS_NS: readonly number[] = Array.from({ length: 24 }, (_, i) => 2 ** (i + 7));

interface HistTotal {
  readonly labels: Record<string, string>;
  hist: HistBucket[];
}

interface CounterTotal {
  readonly labels: Record<string, string>;
  value: number;
}

export class StatsTotals {
  readonly segments = new Map<string, HistTotal>();
  readonly transit = new Map<string, HistTotal>();
  readonly drops = new Map<string, CounterTotal>();
  readonly packets = new Map<string, CounterTotal>();
  readonly bytes = new Map<string, CounterTotal>();
  sampleRate = 1;
  documents = 0;

  add(doc: StatsDocument): void {
    this.documents++;
    this.sampleRate = doc.sample_rate;
    for (const s of doc.segments) {
      const labels = {
        from_ns: s.from.ns, from_ifname: s.from.ifname, from_event: s.from.event,
        to_ns: s.to.ns, to_ifname: s.to.ifname, to_event: s.to.event,
      };
      addHist(this.segments, labels, s.hist);
    }
    for (const t of doc.transit) addHist(this.transit, { ns: t.ns }, t.hist);
    for (const d of doc.drops) addCounter(this.drops, { ns: d.ns, ifname: d.ifname, reason: d.reason }, d.count);
    for (const i of doc.interfaces) {
      addCounter(this.packets, { ns: i.ns, ifname: i.ifname, direction: 'rx' }, i.rx_packets);
      addCounter(this.packets, { ns: i.ns, ifname: i.ifname, direction: 'tx' }, i.tx_packets);
      addCounter(this.bytes, { ns: i.ns, ifname: i.ifname, direction: 'rx' }, i.rx_bytes);
      addCounter(this.bytes, { ns: i.ns, ifname: i.ifname, direction: 'tx' }, i.tx_bytes);
    }
  }
}

function keyOf(labels: Record<string, string>): string {
  return JSON.stringify(labels);
}

function addHist(m: Map<string, HistTotal>, labels: Record<string, string>, hist: HistBucket[]): void {
  const k = keyOf(labels);
  const cur = m.get(k);
  if (cur) cur.hist = mergeHists([cur.hist, hist]);
  else m.set(k, { labels, hist });
}

function addCounter(m: Map<string, CounterTotal>, labels: Record<string, string>, n: number): void {
  if (n === 0 && !m.has(keyOf(labels))) return;
  const k = keyOf(labels);
  const cur = m.get(k);
  if (cur) cur.value += n;
  else m.set(k, { labels, value: n });
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Record<string, string>, extra?: [string, string]): string {
  const all = Object.entries(labels);
  if (extra) all.push(extra);
  return all.length === 0 ? '' : `{${all.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

function seconds(ns: number): string {
  return String(ns / 1e9);
}

function histogramLines(name: string, help: string, items: Iterable<HistTotal>): string[] {
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const { labels, hist } of items) {
    let total = 0;
    let i = 0;
    for (const le of LE_BOUNDS_NS) {
      // Buckets never straddle a power of two, so "hi ≤ le" counts exactly the values ≤ le.
      while (i < hist.length && (hist[i]?.hi_ns ?? Infinity) <= le) total += hist[i++]?.count ?? 0;
      out.push(`${name}_bucket${labelText(labels, ['le', seconds(le)])} ${total}`);
    }
    const count = hist.reduce((s, b) => s + b.count, 0);
    out.push(`${name}_bucket${labelText(labels, ['le', '+Inf'])} ${count}`);
    out.push(`${name}_sum${labelText(labels)} ${histSumEstimate(hist) / 1e9}`);
    out.push(`${name}_count${labelText(labels)} ${count}`);
  }
  return out;
}

function counterLines(name: string, help: string, items: Iterable<CounterTotal>): string[] {
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} counter`];
  for (const { labels, value } of items) out.push(`${name}${labelText(labels)} ${value}`);
  return out;
}

export function renderPrometheus(t: StatsTotals): string {
  return [
    ...histogramLines('hoptrace_segment_latency_seconds', 'Time between consecutive hops of one packet, by segment (from/to namespace, interface, event). _sum is estimated from bucket midpoints.', t.segments.values()),
    ...histogramLines('hoptrace_transit_seconds', 'Time packets spent crossing a namespace (entered from another, left to another). _sum is estimated from bucket midpoints.', t.transit.values()),
    ...counterLines('hoptrace_drops_total', 'Packets dropped, by namespace, interface and kernel drop reason.', t.drops.values()),
    ...counterLines('hoptrace_interface_packets_total', 'IP packets transmitted (tx) and received (rx) per interface.', t.packets.values()),
    ...counterLines('hoptrace_interface_bytes_total', 'IP bytes (IP header length field) transmitted and received per interface.', t.bytes.values()),
    '# HELP hoptrace_stats_sample_rate Packets of 1 in this many flows are counted (1: all); counts are not scaled.',
    '# TYPE hoptrace_stats_sample_rate gauge',
    `hoptrace_stats_sample_rate ${t.sampleRate}`,
    '',
  ].join('\n');
}
