/**
 * The bridge to the ingest worker: what the page sends it (batches, the model, filter, facet,
 * selection) and what comes back (rows, the selected packet, statistics). Packet rows and the
 * topology are shallow refs: 100,000 rows made deeply reactive would cost more than drawing them.
 * Which source feeds the worker (`mode`) lives here too, since rows and clock depend on it; the
 * replay store gets the worker's replay messages through `onReplay`.
 */
import { computed, reactive, shallowRef, toRaw, triggerRef, watch, type ShallowRef } from 'vue';
import type { Topology } from '../api/contract.js';
import type { ClockRef } from '../domain/format.js';
import { expectedFor, type ExpectedView } from '../domain/expected.js';
import { mergeByTime, sortByTime } from '../domain/rows.js';
import { localAddresses } from '../domain/topology-graph.js';
import { shortNsLabels } from '../domain/ns-labels.js';
import type { Facet, FilterProblem, PacketDetail, PacketRow } from '../domain/packets.js';
import type { FromWorker, ToWorker, WorkerStats } from '../worker/protocol.js';
import { parseFilter, FilterError, formatFilterError } from '../../../shared/filter/index.js';
import type { Notice } from './notices.js';

export interface WorkerLike {
  postMessage(msg: ToWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<FromWorker>) => void) | null;
  terminate(): void;
}

export const ROWS_MAX = 100_000;
const SPARK_POINTS = 120;

export interface RatePoint {
  readonly t: number;
  readonly server: number | null;
  readonly worker: number;
}

/** The worker's messages about a replay (the replay store handles them). */
export type ReplayMessage = Extract<FromWorker, { type: 'recording' | 'replay-position' | 'replay-histogram' }>;

export interface IngestOptions {
  readonly worker: WorkerLike;
  readonly notify: (n: Notice) => void;
  readonly mode: 'live' | 'replay';
  /** The address bar's view: filter, facet, selected packet. */
  readonly filter: string;
  readonly facet: Facet | null;
  readonly packet: string | null;
}

export function createIngest(opts: IngestOptions) {
  const { worker, notify } = opts;
  const state = reactive({
    /** What feeds the worker: the live service or a replayed recording. */
    mode: opts.mode,
    workerStats: null as WorkerStats | null,
    clock: null as ClockRef | null,
    /** Kernel time of the first packet this view saw: the origin of relative times. */
    originNs: 0,
    filterText: opts.filter,
    filterProblem: null as FilterProblem | null,
    facet: opts.facet,
    paused: false,
    follow: true,
    selectedId: opts.packet,
    detailMissing: false,
  });

  const rows: ShallowRef<PacketRow[]> = shallowRef([]);
  /** Bumped whenever `rows` changes in place (appends do not replace the array). */
  const rowsVersion = shallowRef(0);
  /** Rows dropped from the front of the list so far (the list keeps the newest ROWS_MAX). */
  const rowsTrimmed = shallowRef(0);
  const topology: ShallowRef<Topology | null> = shallowRef(null);
  /** netns → name from the model and the stream's name updates. */
  const names: ShallowRef<ReadonlyMap<number, string>> = shallowRef(new Map());
  const detail: ShallowRef<PacketDetail | null> = shallowRef(null);
  const expected: ShallowRef<ExpectedView | null> = shallowRef(null);
  const rates: ShallowRef<RatePoint[]> = shallowRef([]);

  /** Set by the other stores when they are wired (main.ts / store/dashboard.ts). */
  const hooks = {
    /** The service's event rate for the sparkline (null: none known). */
    serverRate: (): number | null => null,
    /** The host's clock pair from the live subscription, when the service sent one. */
    hostClock: (): ClockRef | null => null,
    replay: (_msg: ReplayMessage): void => undefined,
  };

  let req = 0;
  let pendingSelect: string | null = opts.packet;

  const post = (msg: ToWorker, transfer?: Transferable[]): void => worker.postMessage(msg, transfer);
  /** The facet as plain data: reactive proxies cannot cross postMessage. */
  const rawFacet = (): Facet | null => (state.facet ? toRaw(state.facet) : null);

  /** Pod or container name of each namespace that has one (the model's `workload`). */
  const workloads = computed(() => new Map((topology.value?.namespaces ?? []).flatMap((n): [number, string][] => (n.workload ? [[n.netns, n.workload]] : []))));
  /** A namespace as timeline rows and details name it: `web (netns-55c52e9d…)` for a container's. */
  function nsName(netns: number, fallback: string | null = null): string {
    const name = names.value.get(netns) ?? fallback ?? `netns:${netns}`;
    const w = workloads.value.get(netns);
    return w ? `${w} (${/^netns-[0-9a-f]{8}-/.test(name) ? `${name.slice(0, 14)}…` : name})` : name;
  }

  /** Every known namespace's short label (domain/ns-labels.ts), for the list's path chips: a container's is its name. */
  const nsLabels = computed(() => shortNsLabels(names.value.values()));
  function nsLabel(netns: number, fallback: string | null = null): string {
    const w = workloads.value.get(netns);
    if (w) return w;
    const name = names.value.get(netns) ?? fallback ?? `netns:${netns}`;
    return nsLabels.value.get(name) ?? name;
  }

  worker.onmessage = (e) => {
    const msg = e.data;
    switch (msg.type) {
      case 'rows': {
        let base = rows.value;
        if (msg.removed?.length) {
          const gone = new Set(msg.removed);
          base = base.filter((r) => !gone.has(r.id));
        }
        let list = msg.reset ? sortByTime([...msg.rows]) : mergeByTime(base, msg.rows);
        if (list.length > ROWS_MAX) {
          if (!msg.reset) rowsTrimmed.value += list.length - ROWS_MAX;
          list = list.slice(list.length - ROWS_MAX);
        }
        if (state.originNs === 0 && list[0]) state.originNs = list[0].t;
        rows.value = list;
        triggerRef(rows);
        rowsVersion.value++;
        if (pendingSelect) requestDetail(pendingSelect);
        break;
      }
      case 'stats': {
        state.workerStats = msg.stats;
        // Live: times as the service host's clock times, from the pair its subscribe ack carried;
        // from an older service, the worker's estimate (a recording brings its own pair).
        if (state.mode === 'live' && !hooks.hostClock() && msg.stats.clockOffsetMs !== null) {
          state.clock = { monotonicNs: 0, epochMs: msg.stats.clockOffsetMs };
        }
        if (msg.stats.lastDecodeError) {
          // The codecs are static (shared/wire-generated.js), so no page policy can stop them: bytes
          // that do not decode were written against another wire.proto, or damaged on the way.
          notify({
            kind: 'error', title: 'Batches from the service cannot be decoded',
            body: `${msg.stats.decodeErrors} hop or depth batch(es) did not match this page's wire format: ${msg.stats.lastDecodeError}`,
            hints: [
              'This page and the service were likely built from different versions of shared/wire.proto: reload the page; if it goes on, rebuild the dashboard (npm run build) and restart the service.',
              'Their packets are missing from the views until then; the other batches are shown.',
            ],
          });
        }
        const point = { t: Date.now() / 1000, server: hooks.serverRate(), worker: msg.stats.eventsPerSec };
        const next = rates.value.length >= SPARK_POINTS ? rates.value.slice(1) : rates.value.slice();
        next.push(point);
        rates.value = next;
        break;
      }
      case 'filter':
        state.filterProblem = msg.ok ? null : msg.problem;
        break;
      case 'packet':
        if (msg.req !== req) break;
        if (msg.detail) {
          pendingSelect = null;
          detail.value = msg.detail;
          state.detailMissing = false;
          computeExpected();
        } else if (!pendingSelect) {
          detail.value = null;
          state.detailMissing = true;
        }
        break;
      case 'recording':
      case 'replay-position':
      case 'replay-histogram':
        hooks.replay(msg);
        break;
      case 'error':
        notify(msg.context === 'replay'
          ? { kind: 'error', title: 'Cannot replay the recording', body: msg.message }
          : msg.context === 'model'
            ? { kind: 'warning', title: 'Some expected paths are missing', body: `${msg.message}. Those packets show without the model's path; the trace goes on.` }
            : { kind: 'error', title: 'Packet reconstruction failed', body: msg.message });
        break;
    }
  };

  function computeExpected(): void {
    const d = detail.value;
    expected.value = d ? expectedFor(d.packet, topology.value) : null;
  }

  function setTopology(t: Topology | null): void {
    topology.value = t;
    if (t) {
      const m = new Map(names.value);
      for (const ns of t.namespaces) m.set(ns.netns, ns.name);
      names.value = m;
    }
    // The worker puts every packet it reconstructs next to this model (shared/expectation.ts).
    post({ type: 'topology', names: [...names.value], local: localAddresses(t), model: t ? toRaw(t) : null });
    computeExpected();
  }

  /** Names from a recording: they replace what the page knew. */
  function replaceNames(entries: readonly (readonly [number, string])[]): void {
    names.value = new Map(entries);
  }

  function setNames(list: readonly { netns: number; name: string }[]): void {
    const m = new Map(names.value);
    for (const n of list) m.set(n.netns, n.name);
    names.value = m;
    post({ type: 'topology', names: [...names.value], local: localAddresses(topology.value) });
  }

  /** Checks a draft filter in the UI thread (cheap) so errors show while typing. */
  function checkFilter(text: string): FilterProblem | null {
    try {
      parseFilter(text);
      return null;
    } catch (err) {
      if (err instanceof FilterError) return { message: err.message, offset: err.offset, length: err.length, formatted: formatFilterError(text, err) };
      throw err;
    }
  }

  function applyFilter(text: string): void {
    const problem = checkFilter(text);
    state.filterProblem = problem;
    if (problem) return;
    state.filterText = text;
    post({ type: 'filter', text, facet: rawFacet() });
  }

  function setFacet(facet: Facet | null): void {
    state.facet = facet;
    post({ type: 'filter', text: state.filterText, facet });
  }

  function requestDetail(id: string): void {
    req++;
    post({ type: 'get', id, req });
  }

  function select(id: string | null): void {
    state.selectedId = id;
    pendingSelect = null;
    if (!id) {
      detail.value = null;
      expected.value = null;
      state.detailMissing = false;
      return;
    }
    requestDetail(id);
  }

  function setPaused(p: boolean): void {
    state.paused = p;
    post({ type: 'pause', paused: p });
  }

  /** A new source: the list, the selection and the worker's history start over. */
  function clear(): void {
    rows.value = [];
    rowsVersion.value++;
    state.originNs = 0;
    select(null);
    post({ type: 'reset' });
  }

  // Following the tail wants new rows promptly; someone scrolling through history is better
  // served by fewer, larger updates that leave the UI thread to the scrolling.
  watch(() => state.follow, (f) => post({ type: 'config', flushMs: f ? 100 : 400 }));

  /** The first settings: history size (`max=`), filter and facet from the address bar. */
  function start(historyMax: number | null): void {
    if (historyMax !== null) post({ type: 'config', historyMax });
    post({ type: 'filter', text: state.filterText, facet: rawFacet() });
    if (state.filterText) state.filterProblem = checkFilter(state.filterText);
  }

  return {
    state, rows, rowsVersion, rowsTrimmed, topology, names, detail, expected, rates, hooks,
    post, nsName, nsLabel, setTopology, setNames, replaceNames, checkFilter, applyFilter, setFacet, select, setPaused, clear, start,
    stop: () => worker.terminate(),
  };
}

export type Ingest = ReturnType<typeof createIngest>;
