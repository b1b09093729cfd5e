/**
 * Human output of a stats document, the way `hoptrace stats` prints it: segments (slowest p99
 * first), namespace transit, drops and interfaces as aligned tables, with the sampling rate in
 * the heading whenever counts are shown.
 */
import { formatDuration } from '../format.js';
import type { StatsDocument, StatsPlace } from './types.js';
import type { StatsComparison } from './compare.js';

export function placeLabel(p: StatsPlace): string {
  return [p.ns, p.ifname, p.event].filter((s) => s !== '').join(' ');
}

export function samplingLabel(rate: number): string {
  return rate <= 1 ? 'all flows' : `sampled 1 in ${rate} flows (counts not scaled)`;
}

function table(head: string[], rows: string[][], rightFrom: number): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells
    .map((c, i) => (i >= rightFrom ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
    .join('  ')
    .trimEnd();
  return [line(head), ...rows.map(line)].map((l) => `  ${l}`);
}

function rate(bitsPerSecond: number): string {
  if (bitsPerSecond >= 1e9) return `${(bitsPerSecond / 1e9).toFixed(2)} Gbit/s`;
  if (bitsPerSecond >= 1e6) return `${(bitsPerSecond / 1e6).toFixed(2)} Mbit/s`;
  if (bitsPerSecond >= 1e3) return `${(bitsPerSecond / 1e3).toFixed(1)} kbit/s`;
  return `${Math.round(bitsPerSecond)} bit/s`;
}

export interface FormatStatsOptions {
  /** Rows per table (default 20); the rest are summarised in one line. */
  readonly top?: number;
}

export function formatStatsDocument(doc: StatsDocument, opts: FormatStatsOptions = {}): string {
  const top = opts.top ?? 20;
  const time = (iso: string): string => iso.slice(11, 23);
  const out: string[] = [];
  out.push(`stats ${time(doc.start)}–${time(doc.end)} (${doc.duration_s.toFixed(2)} s)${doc.final ? ', end of run' : ''}  ${samplingLabel(doc.sample_rate)}${doc.filter ? `  filter: ${doc.filter}` : ''}`);
  const more = (n: number, what: string): void => {
    if (n > top) out.push(`  … ${n - top} more ${what}`);
  };
  if (doc.segments.length === 0) {
    out.push('  no packets followed');
  } else {
    const segs = [...doc.segments].sort((a, b) => b.p99_ns - a.p99_ns).slice(0, top);
    out.push('segments (time between consecutive hops of one packet)');
    out.push(...table(['from', 'to', 'packets', 'p50', 'p90', 'p99', 'max'], segs.map((s) => [
      placeLabel(s.from), `→ ${placeLabel(s.to)}`, String(s.count),
      formatDuration(s.p50_ns), formatDuration(s.p90_ns), formatDuration(s.p99_ns), formatDuration(s.max_ns),
    ]), 2));
    more(doc.segments.length, 'segments');
  }
  if (doc.transit.length > 0) {
    out.push('namespace transit (entered from another namespace, left to another)');
    out.push(...table(['namespace', 'packets', 'p50', 'p90', 'p99', 'max'], doc.transit.slice(0, top).map((t) => [
      t.ns, String(t.count), formatDuration(t.p50_ns), formatDuration(t.p90_ns), formatDuration(t.p99_ns), formatDuration(t.max_ns),
    ]), 1));
    more(doc.transit.length, 'namespaces');
  }
  if (doc.drops.length > 0) {
    out.push('drops');
    out.push(...table(['namespace', 'interface', 'reason', 'packets'], doc.drops.slice(0, top).map((d) => [
      d.ns, d.ifname || '-', d.reason, String(d.count),
    ]), 3));
    more(doc.drops.length, 'drop places');
  }
  if (doc.interfaces.length > 0) {
    out.push('interfaces (IP packets transmitted + received)');
    out.push(...table(['namespace', 'interface', 'packets/s', 'rate', 'rx', 'tx'], doc.interfaces.slice(0, top).map((i) => [
      i.ns, i.ifname, i.pps.toFixed(1), rate(i.bps), String(i.rx_packets), String(i.tx_packets),
    ]), 2));
    more(doc.interfaces.length, 'interfaces');
  }
  return out.join('\n');
}

export interface FormatComparisonOptions extends FormatStatsOptions {
  /** What each side is (file names, window names). */
  readonly labels?: { readonly a: string; readonly b: string };
}

/** A signed duration: `+195µs`, `-3.0µs`, `0ns`. */
function signedDuration(ns: number): string {
  return `${ns > 0 ? '+' : ns < 0 ? '-' : ''}${formatDuration(Math.abs(Math.round(ns)))}`;
}

/**
 * A/B of two stats documents as `hoptrace compare` prints it: each side's span and sampling, then
 * the segments, largest p99 change first, with both sides' packets and percentiles, the change and
 * a mark where the change is larger than the buckets can blur; segments seen on one side only last.
 */
export function formatStatsComparison(cmp: StatsComparison, opts: FormatComparisonOptions = {}): string {
  const top = opts.top ?? 20;
  const labels = opts.labels ?? { a: 'A', b: 'B' };
  const when = (m: StatsComparison['a']): string => `${m.start.replace('T', ' ').slice(0, 19)}, ${m.duration_s.toFixed(2)} s, ${samplingLabel(m.sample_rate)}`;
  const out = [`A  ${labels.a}  (${when(cmp.a)})`, `B  ${labels.b}  (${when(cmp.b)})`];
  // Counts of differently sampled sides are not comparable; their latencies are.
  if (cmp.a.sample_rate !== cmp.b.sample_rate) out.push('note: A and B were sampled differently: compare their latencies, not their packet counts');
  const both = cmp.segments.filter((s) => s.a && s.b);
  const oneSide = cmp.segments.filter((s) => !s.a || !s.b);
  if (cmp.segments.length === 0) {
    out.push('  no segments on either side');
    return out.join('\n');
  }
  if (both.length > 0) {
    out.push('segments on both sides, largest p99 change first (* the change is beyond the buckets\' blur: 25 % and 1 µs)');
    const dur = (v: number | undefined): string => (v === undefined ? '-' : formatDuration(v));
    out.push(...table(['from', 'to', 'A pkts', 'B pkts', 'A p50', 'B p50', 'A p99', 'B p99', 'Δ p99', 'B/A', ''], both.slice(0, top).map((s) => [
      placeLabel(s.from), `→ ${placeLabel(s.to)}`, String(s.a?.count ?? 0), String(s.b?.count ?? 0),
      dur(s.a?.p50_ns), dur(s.b?.p50_ns), dur(s.a?.p99_ns), dur(s.b?.p99_ns),
      signedDuration(s.diff?.p99_ns ?? 0), s.p99_ratio === null ? '-' : `${s.p99_ratio.toFixed(2)}×`, s.significant ? '*' : '',
    ]), 2));
    if (both.length > top) out.push(`  … ${both.length - top} more segments`);
  }
  if (oneSide.length > 0) {
    out.push('segments on one side only');
    out.push(...table(['from', 'to', 'side', 'packets', 'p50', 'p99'], oneSide.slice(0, top).map((s) => {
      const side = s.a ?? s.b;
      return [placeLabel(s.from), `→ ${placeLabel(s.to)}`, s.a ? 'A' : 'B', String(side?.count ?? 0), formatDuration(side?.p50_ns ?? 0), formatDuration(side?.p99_ns ?? 0)];
    }), 3));
    if (oneSide.length > top) out.push(`  … ${oneSide.length - top} more segments`);
  }
  return out.join('\n');
}
