// @vitest-environment happy-dom
/**
 * A/B of two recordings in the latency view: two small recordings written by the shared
 * recording encoder (../ab-fixture.ts: the same lab path, recreated between them, where B's node
 * forwards 40× slower) picked from the (fake) library, computed in the page and shown
 * per segment with packets and p50/p90/p99 of each side and the difference. Only the slowed
 * segment is flagged; the others are equal within the buckets.
 */
import { describe, it, expect } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import { createStatsStore } from '../../src/store/stats.js';
import type { StatsApi } from '../../src/api/stats.js';
import StatsPanel from '../../src/ui/StatsPanel.vue';
import { bucketIndex, bucketRange } from '../../../shared/stats/buckets.js';
import { AB_AFTER, AB_BEFORE } from '../ab-fixture.js';

function library() {
  const fetched: string[] = [];
  const files: Record<string, Uint8Array> = { before: AB_BEFORE, after: AB_AFTER };
  const api: StatsApi = {
    async start() { throw new Error('no stats sessions here'); },
    async detail() { throw new Error('no stats sessions here'); },
    async stop() { /* nothing to stop */ },
    async recordings() { return Object.keys(files); },
    async recording(name) {
      fetched.push(name);
      const b = files[name];
      if (!b) throw new Error(`no recording ${name}`);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  };
  return { store: createStatsStore({ api, token: () => null, connect: () => ({ close: () => undefined }) }), fetched };
}

/** A latency as the buckets report it: somewhere in the bucket that holds it. */
function inBucketOf(ns: number, reported: number): boolean {
  const { lo, hi } = bucketRange(bucketIndex(ns));
  return reported >= lo && reported <= hi;
}

describe('A/B of two recordings', () => {
  it('should flag only the segment that got slower, with both sides\' packets and percentiles and the difference', async () => {
    const { store, fetched } = library();
    await store.listRecordings();
    expect(store.state.recordingNames).toEqual(['before', 'after']);
    store.state.recA = 'before';
    store.state.recB = 'after';
    await store.compareRecordings();
    expect(fetched.sort()).toEqual(['after', 'before']);
    expect(store.state.recError).toBeNull();
    expect(store.state.recPair).toEqual({ a: 'before', b: 'after' });

    const rows = store.state.recCompare?.segments ?? [];
    // Seven hop pairs per packet, the same seven in both recordings.
    expect(rows).toHaveLength(7);
    const slow = rows.filter((r) => r.significant);
    expect(slow).toHaveLength(1);
    const s = slow[0];
    expect(s?.from).toMatchObject({ ns: 'lab-node', ifname: 'veth-pod1', event: 'recv' });
    expect(s?.to).toMatchObject({ ns: 'lab-node', ifname: 'br0', event: 'xmit' });
    // Sorted by |Δ p99|: the slowed segment first.
    expect(rows[0]?.id).toBe(s?.id);
    expect(s?.a?.count).toBe(40);
    expect(s?.b?.count).toBe(60);
    for (const k of ['p50_ns', 'p90_ns', 'p99_ns'] as const) {
      expect(inBucketOf(5_000, s?.a?.[k] ?? -1)).toBe(true);
      expect(inBucketOf(200_000, s?.b?.[k] ?? -1)).toBe(true);
      expect(s?.diff?.[k]).toBe((s?.b?.[k] ?? 0) - (s?.a?.[k] ?? 0));
    }
    for (const r of rows.filter((x) => !x.significant)) {
      expect([r.a?.count, r.b?.count]).toEqual([40, 60]);
      expect(r.diff?.p99_ns).toBe(0);
    }
  });

  it('should show both sides per segment in the latency view, the slowed segment marked worse', async () => {
    const { store } = library();
    store.state.recA = 'before';
    store.state.recB = 'after';
    await store.compareRecordings();
    const w = mount(StatsPanel, { props: { stats: store } });
    await flushPromises();
    const table = w.get('[data-testid="stats-rec-table"]');
    const rows = table.findAll('[data-testid="cmp-row"]');
    expect(rows).toHaveLength(7);
    const flagged = rows.filter((r) => r.attributes('data-significant') === 'yes');
    expect(flagged).toHaveLength(1);
    const row = flagged[0];
    if (!row) throw new Error('no flagged row');
    expect(row.text()).toContain('lab-node veth-pod1 recv');
    expect(row.text()).toContain('→ lab-node br0 xmit');
    expect(row.get('[data-testid="cmp-count"]').text()).toBe('40 / 60');
    const cmp = store.state.recCompare?.segments[0];
    for (const p of ['p50', 'p90', 'p99'] as const) {
      // Each side's percentile is shown in its own unit (µs here), the difference signed.
      expect(row.get(`[data-testid="cmp-a-${p}"]`).text()).toMatch(/^[\d.]+ µs$/);
      expect(row.get(`[data-testid="cmp-b-${p}"]`).text()).toMatch(/^[\d.]+ µs$/);
      expect(row.get(`[data-testid="cmp-d-${p}"]`).text()).toMatch(/^\+[\d.]+ µs$/);
    }
    expect(cmp?.diff?.p99_ns).toBeGreaterThan(150_000);
    expect(row.get('[data-testid="cmp-d-p99"]').classes()).toContain('worse');
    // Unflagged rows carry no verdict colour.
    const calm = rows.find((r) => r.attributes('data-significant') === 'no');
    expect(calm?.get('[data-testid="cmp-d-p99"]').classes()).not.toContain('worse');
    expect(calm?.get('[data-testid="cmp-d-p99"]').text()).toBe('+0 ns');
    expect(w.get('[data-testid="stats-rec-meta"]').text()).toMatch(/^A: before · .+ — B: after · .+$/);
    // The pickers moving on does not relabel the comparison on screen.
    store.state.recA = 'after';
    await flushPromises();
    expect(w.get('[data-testid="stats-rec-meta"]').text()).toContain('A: before ·');
    w.unmount();
  });
});
