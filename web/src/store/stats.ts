/**
 * The stats view's state: one stats session of the service (in-kernel latency histograms per
 * segment), its documents over time, the selected segment, an A/B comparison of two windows
 * of intervals, and the p99 per interface and per link for colouring the topology. The numbers
 * come from shared/stats (the same merge and comparison as the service and the CLI).
 */
import { computed, reactive } from 'vue';
import type { StatsSessionInfo } from '../../../shared/stats/api.js';
import type { SegmentStats, StatsDocument } from '../../../shared/stats/types.js';
import { compareStats, mergeStatsDocuments, segmentId, type StatsComparison } from '../../../shared/stats/compare.js';
import { statsFromRecording } from '../../../shared/stats/from-recording.js';
import type { StatsApi, StatsStreamFactory, StatsStream } from '../api/stats.js';
import { ApiError } from '../api/rest.js';
import { ifKey } from '../domain/topology-graph.js';

/** Documents kept in the page (10 minutes at 1 s). */
export const STATS_KEEP = 600;

export interface SegmentSeries {
  /** Interval end, seconds since the epoch (uPlot's time axis). */
  readonly t: number[];
  readonly p50: (number | null)[];
  readonly p90: (number | null)[];
  readonly p99: (number | null)[];
  readonly count: number[];
}

/** p99 (ns) by interface (`ifKey`) and by interface pair (`ifKey>ifKey`) for the topology. */
export interface LatencyHeat {
  readonly ifaces: ReadonlyMap<string, number>;
  readonly pairs: ReadonlyMap<string, number>;
}

export interface StatsStoreEnv {
  readonly api: StatsApi;
  readonly connect: StatsStreamFactory;
  readonly token: () => string | null;
}

export function createStatsStore(env: StatsStoreEnv) {
  const state = reactive({
    open: false,
    filter: '',
    intervalS: 1,
    sample: 1,
    starting: false,
    session: null as StatsSessionInfo | null,
    history: [] as StatsDocument[],
    error: null as string | null,
    selected: null as string | null,
    /** Intervals per A/B window: B = the newest `abSize`, A = the `abSize` before them. */
    abSize: 10,
    /** A/B of two recordings of the library (computed here from their hop events). */
    recordingNames: [] as string[],
    recA: '',
    recB: '',
    recBusy: false,
    recError: null as string | null,
    recCompare: null as StatsComparison | null,
    /** The names `recCompare` was computed from (the pickers may have moved on since). */
    recPair: null as { readonly a: string; readonly b: string } | null,
    /** When the last session was stopped (ms since the epoch), null while one runs or none did. */
    stoppedAt: null as number | null,
  });
  let stream: StatsStream | null = null;

  function push(doc: StatsDocument): void {
    if (state.history.length > 0 && (state.history[state.history.length - 1]?.end_ns ?? 0) >= doc.end_ns) return;
    state.history.push(doc);
    if (state.history.length > STATS_KEEP) state.history.splice(0, state.history.length - STATS_KEEP);
  }

  async function start(): Promise<void> {
    state.starting = true;
    state.error = null;
    try {
      await stop();
      const s = await env.api.start(state.filter.trim(), state.intervalS, state.sample);
      state.session = s;
      state.stoppedAt = null;
      state.history = [];
      stream = env.connect(s.id, env.token(), {
        subscribed: (h) => { for (const d of h) push(d); },
        document: push,
        state: (m) => {
          if (state.session) state.session = { ...state.session, state: m.state, message: m.message };
        },
        error: (m) => { state.error = m; },
      });
    } catch (err) {
      state.error = err instanceof ApiError || err instanceof Error ? err.message : String(err);
    } finally {
      state.starting = false;
    }
  }

  /**
   * Stops the stats session (its bpftrace ends). What it collected stays on screen until the next
   * start: stopping is how one freezes a measurement to read it.
   */
  async function stop(): Promise<void> {
    stream?.close();
    stream = null;
    const s = state.session;
    state.session = null;
    if (s) {
      state.stoppedAt = Date.now();
      await env.api.stop(s.id).catch(() => undefined);
    }
  }

  /** Closing the panel ends its session: nothing goes on measuring (and colouring the topology) unseen. */
  async function close(): Promise<void> {
    state.open = false;
    await stop();
  }

  const latest = computed<StatsDocument | null>(() => state.history[state.history.length - 1] ?? null);

  /**
   * The newest interval that saw packets, and how many intervals came after it without any: an
   * interval with no packet (traffic comes in bursts) keeps the last data on screen, marked
   * stale, rather than blanking the table every other second.
   */
  const shown = computed<{ doc: StatsDocument; staleIntervals: number } | null>(() => {
    for (let i = state.history.length - 1; i >= 0; i--) {
      const doc = state.history[i];
      if (doc && doc.segments.length > 0) return { doc, staleIntervals: state.history.length - 1 - i };
    }
    return null;
  });

  /** The segments of the newest interval with packets, slowest p99 first. */
  const segments = computed<SegmentStats[]>(() => [...(shown.value?.doc.segments ?? [])].sort((a, b) => b.p99_ns - a.p99_ns));

  const selectedSegment = computed<SegmentStats | null>(() => {
    const id = state.selected;
    if (!id) return null;
    const merged = mergeStatsDocuments(state.history.slice(-state.abSize));
    return merged?.segments.find((s) => segmentId(s) === id) ?? null;
  });

  function series(id: string): SegmentSeries {
    const out: SegmentSeries = { t: [], p50: [], p90: [], p99: [], count: [] };
    for (const d of state.history) {
      const s = d.segments.find((x) => segmentId(x) === id);
      out.t.push(Date.parse(d.end) / 1000);
      out.p50.push(s ? s.p50_ns : null);
      out.p90.push(s ? s.p90_ns : null);
      out.p99.push(s ? s.p99_ns : null);
      out.count.push(s?.count ?? 0);
    }
    return out;
  }

  const comparison = computed<StatsComparison | null>(() => {
    const n = state.abSize;
    if (state.history.length < 2) return null;
    const b = state.history.slice(-n);
    const a = state.history.slice(-2 * n, -n);
    const A = mergeStatsDocuments(a.length > 0 ? a : state.history.slice(0, 1));
    const B = mergeStatsDocuments(b);
    return A && B ? compareStats(A, B) : null;
  });

  /** p99 over the newest A/B window, for the topology. */
  const heat = computed<LatencyHeat>(() => {
    const ifaces = new Map<string, number>();
    const pairs = new Map<string, number>();
    const merged = mergeStatsDocuments(state.history.slice(-state.abSize));
    for (const s of merged?.segments ?? []) {
      if (s.to.ifindex) {
        const k = ifKey(s.to.netns, s.to.ifindex);
        ifaces.set(k, Math.max(ifaces.get(k) ?? 0, s.p99_ns));
      }
      if (s.from.ifindex && s.to.ifindex && s.from.netns !== s.to.netns) {
        const a = ifKey(s.from.netns, s.from.ifindex);
        const b = ifKey(s.to.netns, s.to.ifindex);
        for (const k of [`${a}>${b}`, `${b}>${a}`]) pairs.set(k, Math.max(pairs.get(k) ?? 0, s.p99_ns));
      }
    }
    return { ifaces, pairs };
  });

  async function listRecordings(): Promise<void> {
    try {
      state.recordingNames = await env.api.recordings();
      state.recError = null;
    } catch (err) {
      state.recError = err instanceof Error ? err.message : String(err);
    }
  }

  /** Stats of recordings A and B (every hop pair of every packet), compared segment by segment. */
  async function compareRecordings(): Promise<void> {
    const pair = { a: state.recA, b: state.recB };
    if (!pair.a || !pair.b) return;
    state.recBusy = true;
    state.recError = null;
    try {
      const [a, b] = await Promise.all([env.api.recording(pair.a), env.api.recording(pair.b)]);
      state.recCompare = compareStats(statsFromRecording(new Uint8Array(a)), statsFromRecording(new Uint8Array(b)));
      state.recPair = pair;
    } catch (err) {
      state.recCompare = null;
      state.recPair = null;
      state.recError = err instanceof Error ? err.message : String(err);
    } finally {
      state.recBusy = false;
    }
  }

  return {
    state, latest, shown, segments, selectedSegment, comparison, heat, series, start, stop, close, listRecordings, compareRecordings,
    toggle(open?: boolean): void {
      if (open ?? !state.open) state.open = true;
      else void close();
    },
    select(id: string | null): void { state.selected = id; },
    dispose(): void {
      stream?.close();
      stream = null;
    },
  };
}

export type StatsStore = ReturnType<typeof createStatsStore>;

/** Colour of a latency on a log scale: green ≤ 10 µs, amber ≤ 100 µs, orange ≤ 1 ms, red above. */
export function latencyColour(ns: number): string {
  if (ns <= 10_000) return '#3ec27a';
  if (ns <= 100_000) return '#c9c23c';
  if (ns <= 1_000_000) return '#f2913c';
  return '#ff5d5d';
}
