// @vitest-environment happy-dom
/**
 * The stats view's state and panel against a fake service: documents arrive over the (fake)
 * /stats stream after the kept history; segments sort by p99; the A/B comparison flags the
 * segment that got slower; the topology heat maps p99 onto interfaces and veth pairs.
 */
import { describe, it, expect } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import { createStatsStore, latencyColour } from '../../src/store/stats.js';
import type { StatsApi, StatsStreamHandlers } from '../../src/api/stats.js';
import type { StatsSessionInfo } from '../../../shared/stats/api.js';
import type { StatsDocument, SegmentStats } from '../../../shared/stats/types.js';
import { bucketIndex, histFromCounts } from '../../../shared/stats/buckets.js';
import { ifKey } from '../../src/domain/topology-graph.js';
import StatsPanel from '../../src/ui/StatsPanel.vue';
import { readFileSync } from 'node:fs';
import { FIXTURE_PATH } from '../fixture.js';

const POD1 = 101;
const NODE = 102;

function seg(fromNs: number, fromIf: number, fromEv: 'xmit' | 'recv', toNs: number, toIf: number, toEv: 'rx' | 'xmit', count: number, ns: number): SegmentStats {
  const name = (n: number) => (n === POD1 ? 'pod1' : 'node');
  return {
    from: { ns: name(fromNs), ifname: fromNs === POD1 ? 'eth0' : `veth${fromIf}`, event: fromEv, netns: fromNs, ifindex: fromIf },
    to: { ns: name(toNs), ifname: toNs === POD1 ? 'eth0' : `veth${toIf}`, event: toEv, netns: toNs, ifindex: toIf },
    count, p50_ns: ns, p90_ns: ns, p99_ns: ns, max_ns: ns, hist: histFromCounts(new Map([[bucketIndex(ns), count]])),
  };
}

let t = 1_700_000_000_000;
function doc(vethNs: number, bridgeNs: number): StatsDocument {
  const start = t;
  t += 1000;
  return {
    type: 'stats', start_ns: start * 1e6, end_ns: t * 1e6, start: new Date(start).toISOString(), end: new Date(t).toISOString(),
    duration_s: 1, sample_rate: 4, filter: 'udp', final: false,
    segments: [seg(POD1, 2, 'xmit', NODE, 2, 'rx', 100, vethNs), seg(NODE, 2, 'recv', NODE, 3, 'xmit', 100, bridgeNs)],
    transit: [], drops: [], interfaces: [],
  };
}

function fakes() {
  const calls: string[] = [];
  let handlers: StatsStreamHandlers | null = null;
  const info: StatsSessionInfo = { id: 'sabc', filter: 'udp', intervalS: 1, sampleRate: 4, state: 'running', message: null, documents: 0, kept: 0, createdAt: 0 };
  const api: StatsApi = {
    async start(filter, intervalS, sample) { calls.push(`start ${filter} ${intervalS} ${sample}`); return info; },
    async detail() { return { ...info, history: [] }; },
    async stop(id) { calls.push(`stop ${id}`); },
    async recordings() { return ['demo', 'demo-again']; },
    async recording(name) { calls.push(`recording ${name}`); const b = readFileSync(FIXTURE_PATH); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer; },
  };
  const store = createStatsStore({ api, token: () => null, connect: (id, _token, h) => { calls.push(`connect ${id}`); handlers = h; return { close: () => calls.push('close') }; } });
  return { store, calls, emit: () => handlers as StatsStreamHandlers };
}

describe('stats store', () => {
  it('starts a session with the chosen settings and takes the history, then live documents', async () => {
    const { store, calls, emit } = fakes();
    store.state.filter = ' udp ';
    store.state.sample = 4;
    await store.start();
    expect(calls).toEqual(['start udp 1 4', 'connect sabc']);
    emit().subscribed([doc(2_000, 5_000), doc(2_000, 5_000)]);
    emit().document(doc(2_000, 5_000));
    expect(store.state.history).toHaveLength(3);
    // A repeated document (re-subscription after a reconnect) is not added twice.
    emit().subscribed([...store.state.history]);
    expect(store.state.history).toHaveLength(3);
    expect(store.segments.value.map((s) => s.p99_ns)).toEqual([5_000, 2_000]);
    await store.stop();
    expect(calls.slice(-2)).toEqual(['close', 'stop sabc']);
  });

  it('compares the newest window with the one before and flags the segment that got slower', async () => {
    const { store, emit } = fakes();
    await store.start();
    store.state.abSize = 5;
    for (let i = 0; i < 5; i++) emit().document(doc(2_000, 5_000));
    for (let i = 0; i < 5; i++) emit().document(doc(2_000, 400_000));
    const rows = store.comparison.value?.segments ?? [];
    expect(rows[0]?.from.ifindex).toBe(2);
    expect(rows[0]?.to.event).toBe('xmit');
    expect(rows[0]?.significant).toBe(true);
    expect(rows[1]?.significant).toBe(false);
    const series = store.series(`${'node'}/veth2/recv>node/veth3/xmit`);
    expect(series.p99.slice(-6)).toEqual([5_000, 400_000, 400_000, 400_000, 400_000, 400_000]);
  });

  it('maps p99 onto interfaces and onto the veth pair for the topology', async () => {
    const { store, emit } = fakes();
    await store.start();
    emit().document(doc(30_000, 5_000));
    const h = store.heat.value;
    expect(h.ifaces.get(ifKey(NODE, 2))).toBe(30_000);
    expect(h.ifaces.get(ifKey(NODE, 3))).toBe(5_000);
    expect(h.pairs.get(`${ifKey(POD1, 2)}>${ifKey(NODE, 2)}`)).toBe(30_000);
    expect(h.pairs.get(`${ifKey(NODE, 2)}>${ifKey(POD1, 2)}`)).toBe(30_000);
    expect([latencyColour(5_000), latencyColour(50_000), latencyColour(500_000), latencyColour(5e6)]).toEqual(['#3ec27a', '#c9c23c', '#f2913c', '#ff5d5d']);
  });
});

describe('A/B of two recordings', () => {
  it('reads both from the library and compares them segment by segment', async () => {
    const { store, calls } = fakes();
    await store.listRecordings();
    expect(store.state.recordingNames).toEqual(['demo', 'demo-again']);
    store.state.recA = 'demo';
    store.state.recB = 'demo-again';
    await store.compareRecordings();
    expect(calls).toEqual(['recording demo', 'recording demo-again']);
    const rows = store.state.recCompare?.segments ?? [];
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.every((r) => r.diff?.p99_ns === 0)).toBe(true);
    const w = mount(StatsPanel, { props: { stats: store } });
    expect(w.findAll('[data-testid="stats-rec-table"] tbody tr').length).toBe(Math.min(20, rows.length));
    w.unmount();
  });

  it('says why when a recording cannot be read', async () => {
    const broken = createStatsStore({
      api: { start: async () => { throw new Error('x'); }, detail: async () => { throw new Error('x'); }, stop: async () => undefined, recordings: async () => ['a'], recording: async () => new ArrayBuffer(8) },
      token: () => null, connect: () => ({ close: () => undefined }),
    });
    broken.state.recA = 'a';
    broken.state.recB = 'a';
    await broken.compareRecordings();
    expect(broken.state.recCompare).toBeNull();
    expect(broken.state.recError).toMatch(/.+/);
  });
});

describe('StatsPanel', () => {
  it('shows the sampling rate with the counts, the segments by p99, and the selected segment\'s histogram', async () => {
    const { store, emit } = fakes();
    await store.start();
    for (let i = 0; i < 3; i++) emit().document(doc(2_000, 5_000));
    const w = mount(StatsPanel, { props: { stats: store } });
    await flushPromises();
    expect(w.get('[data-testid="stats-session"]').text()).toContain('sampled 1 in 4 flows — counts not scaled');
    const rows = w.findAll('[data-testid="stats-segment"]');
    expect(rows.map((r) => r.text())[0]).toContain('node veth2 recv');
    await rows[0]?.trigger('click');
    expect(w.find('[data-testid="latency-hist"]').exists()).toBe(true);
    expect(w.get('[data-testid="stats-detail"]').text()).toContain('300 packets');
    w.unmount();
  });

  it('names each place\'s node on a hub, and marks a segment crossing nodes as an estimate', async () => {
    const { store, emit } = fakes();
    await store.start();
    const within: SegmentStats = { ...seg(POD1, 2, 'xmit', NODE, 2, 'rx', 10, 2_000), clock: 'node' };
    const n1 = { ...within, from: { ...within.from, node: 'node1' }, to: { ...within.to, node: 'node1' } };
    const crossing: SegmentStats = {
      ...seg(NODE, 3, 'xmit', NODE, 3, 'rx', 10, 9_000), clock: 'estimate',
      from: { ns: 'n1-host', ifname: 'under0', event: 'xmit', netns: 1102, ifindex: 3, node: 'node1' },
      to: { ns: 'n2-host', ifname: 'under0', event: 'recv', netns: 2202, ifindex: 3, node: 'node2' },
    };
    emit().document({ ...doc(0, 0), segments: [n1, crossing], transit: [{ ns: 'n1-host', netns: 1102, node: 'node1', count: 10, p50_ns: 1, p90_ns: 1, p99_ns: 1, max_ns: 1, hist: [] }] });
    const w = mount(StatsPanel, { props: { stats: store } });
    await flushPromises();
    const rows = w.findAll('[data-testid="stats-segment"]').map((r) => r.text());
    // Slowest first: the crossing one, named by node, said to be an estimate; the one within node1 is not.
    expect(rows[0]).toContain('node1: n1-host under0 xmit');
    expect(rows[0]).toContain('→ node2: n2-host under0 recv ≈ estimate');
    expect(rows[1]).toContain('node1: pod1 eth0 xmit');
    expect(rows[1]).not.toContain('estimate');
    expect(w.findAll('[data-testid="stats-estimate"]')).toHaveLength(1);
    expect(w.get('[data-testid="stats-transit"]').text()).toContain('node1: n1-host');
    w.unmount();
  });

  it('says what went wrong when the service refuses', async () => {
    const failing = createStatsStore({
      api: {
        start: async () => { throw new Error('bad filter: port needs a number'); }, detail: async () => { throw new Error('x'); }, stop: async () => undefined,
        recordings: async () => [], recording: async () => new ArrayBuffer(0),
      },
      token: () => null, connect: () => ({ close: () => undefined }),
    });
    await failing.start();
    const w = mount(StatsPanel, { props: { stats: failing } });
    expect(w.get('[data-testid="stats-error"]').text()).toBe('bad filter: port needs a number');
    w.unmount();
  });
});
