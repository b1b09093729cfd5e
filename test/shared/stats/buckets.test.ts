import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  BUCKET_RELATIVE_ERROR, bucketIndex, bucketRange, clampMax, histFromCounts, mergeHists, percentile, histSumEstimate,
} from '../../../shared/stats/buckets.js';

function histOf(values: number[]) {
  const m = new Map<number, number>();
  for (const v of values) m.set(bucketIndex(v), (m.get(bucketIndex(v)) ?? 0) + 1);
  return histFromCounts(m);
}

function exactPercentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)] ?? 0;
}

describe('latency buckets', () => {
  it('puts every value inside the range of its bucket, and ranges tile the line', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 50 }), (v) => {
      const r = bucketRange(bucketIndex(v));
      expect(v).toBeGreaterThanOrEqual(r.lo);
      expect(v).toBeLessThan(r.hi);
    }));
    // Indexes 4-7 are unused (values below 4 have their own); from 8 on, each bucket ends where the next begins.
    for (let i = 8; i < 200; i++) expect(bucketRange(i).hi).toBe(bucketRange(i + 1).lo);
  });

  it('has every power of two as a bucket boundary and buckets no wider than 25 %', () => {
    for (let e = 2; e < 50; e++) {
      expect(bucketRange(bucketIndex(2 ** e)).lo).toBe(2 ** e);
      const r = bucketRange(bucketIndex(2 ** e + 1));
      expect((r.hi - r.lo) / r.lo).toBeLessThanOrEqual(BUCKET_RELATIVE_ERROR);
    }
  });

  it('reads percentiles within the documented error of the exact ones', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 4, max: 10_000_000 }), { minLength: 1, maxLength: 400 }),
      fc.constantFrom(0.5, 0.9, 0.99),
      (values, q) => {
        const max = Math.max(...values);
        const got = percentile(histOf(values), q, max);
        const exact = exactPercentile(values, q);
        expect(Math.abs(got - exact)).toBeLessThanOrEqual(exact * BUCKET_RELATIVE_ERROR + 1);
      },
    ));
  });

  it('never reports a percentile above the known maximum', () => {
    const h = histOf([1000, 1000, 1000, 1001]);
    expect(percentile(h, 0.99, 1001)).toBeLessThanOrEqual(1001);
    expect(percentile([], 0.5)).toBe(0);
  });

  it('merges histograms bucket by bucket', () => {
    const a = histOf([10, 20, 20, 3000]);
    const b = histOf([20, 5000]);
    expect(mergeHists([a, b])).toEqual(histOf([10, 20, 20, 3000, 20, 5000]));
  });

  it('pulls a maximum lost to the zeroing race back into the top bucket', () => {
    const h = histOf([1000, 70_000]);
    expect(clampMax(0, h)).toBe(bucketRange(bucketIndex(70_000)).lo);
    expect(clampMax(70_000, h)).toBe(70_000);
    expect(clampMax(10 ** 9, h)).toBe(bucketRange(bucketIndex(70_000)).hi - 1);
  });

  it('estimates the sum within 12.5 %', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 4, max: 10 ** 8 }), { minLength: 1 }), (values) => {
      const sum = values.reduce((s, v) => s + v, 0);
      expect(Math.abs(histSumEstimate(histOf(values)) - sum)).toBeLessThanOrEqual(sum * 0.125 + values.length);
    }));
  });
});
