/**
 * The latency buckets the stats probes count into (probes/stats/assemble.ts bucketCode):
 * log-linear, four buckets per power of two. Values 0-3 ns get a bucket each; a value v ≥ 4
 * with e = floor(log2 v) falls in bucket 4e + (the two bits below the top one), which covers
 * [(4 + s) · 2^(e-2), (5 + s) · 2^(e-2)). A bucket is at most 25 % of its lower bound wide, so
 * a percentile read from the histogram (linear interpolation inside its bucket) is within 25 %
 * of the true value, typically far less; every power of two is a bucket boundary, so counts
 * "at most 2^k ns" are exact.
 */

export interface BucketRange {
  /** Inclusive lower bound, ns. */
  readonly lo: number;
  /** Exclusive upper bound, ns. */
  readonly hi: number;
}

/** Largest relative error of a percentile read from these buckets. */
export const BUCKET_RELATIVE_ERROR = 0.25;

/** The bucket index of a latency in ns, exactly as the kernel computes it. */
export function bucketIndex(ns: number): number {
  const v = Math.max(0, Math.floor(ns));
  if (v < 4) return v;
  const e = Math.floor(Math.log2(v));
  // Math.log2 can be off by one just below a power of two: correct against the integers.
  const exp = 2 ** e > v ? e - 1 : 2 ** (e + 1) <= v ? e + 1 : e;
  return exp * 4 + (Math.floor(v / 2 ** (exp - 2)) & 3);
}

/** The range of values a bucket index stands for. */
export function bucketRange(index: number): BucketRange {
  if (index < 4) return { lo: index, hi: index + 1 };
  const e = index >> 2;
  const s = index & 3;
  const unit = 2 ** (e - 2);
  return { lo: (4 + s) * unit, hi: (5 + s) * unit };
}

export interface HistBucket {
  readonly lo_ns: number;
  readonly hi_ns: number;
  readonly count: number;
}

/** Sorted, non-empty buckets of a map index → count. */
export function histFromCounts(counts: ReadonlyMap<number, number>): HistBucket[] {
  return [...counts].filter(([, c]) => c > 0).sort((a, b) => a[0] - b[0]).map(([i, count]) => {
    const r = bucketRange(i);
    return { lo_ns: r.lo, hi_ns: r.hi, count };
  });
}

/**
 * The q-quantile (0..1) of a histogram: the bucket holding the rank-⌈q·n⌉ value, interpolated
 * linearly inside it, and never above `max` when the true maximum is known.
 */
export function percentile(hist: readonly HistBucket[], q: number, max?: number): number {
  const total = hist.reduce((s, b) => s + b.count, 0);
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let before = 0;
  for (const b of hist) {
    if (before + b.count >= rank) {
      const v = b.lo_ns + ((b.hi_ns - b.lo_ns) * (rank - before)) / b.count;
      const r = Math.round(b.hi_ns - b.lo_ns <= 1 ? b.lo_ns : v);
      return max !== undefined && max > 0 ? Math.min(r, max) : r;
    }
    before += b.count;
  }
  return max ?? 0;
}

/** Sum of the counts. */
export function histCount(hist: readonly HistBucket[]): number {
  return hist.reduce((s, b) => s + b.count, 0);
}

/** Bucket-wise sum of histograms (exact: they share the bucket grid). */
export function mergeHists(hists: ReadonlyArray<readonly HistBucket[]>): HistBucket[] {
  const by = new Map<number, HistBucket>();
  for (const h of hists) {
    for (const b of h) {
      const cur = by.get(b.lo_ns);
      by.set(b.lo_ns, cur ? { ...cur, count: cur.count + b.count } : b);
    }
  }
  return [...by.values()].sort((a, b) => a.lo_ns - b.lo_ns);
}

/** Estimated sum of the values (bucket midpoints): within 12.5 % of the true sum. */
export function histSumEstimate(hist: readonly HistBucket[]): number {
  return hist.reduce((s, b) => s + ((b.lo_ns + b.hi_ns - 1) / 2) * b.count, 0);
}

/**
 * The maximum to report: the kernel's, unless a race lost it (it is zeroed right after each
 * snapshot) — then the top bucket's bounds pull it back in range.
 */
export function clampMax(max: number, hist: readonly HistBucket[]): number {
  const top = hist[hist.length - 1];
  if (!top) return max;
  return Math.min(Math.max(max, top.lo_ns), top.hi_ns - 1);
}
