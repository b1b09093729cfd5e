/**
 * The dashboard's state and the glue between its parts: a data source (the live service or a
 * replayed recording) feeds the ingest worker; the worker's rows and statistics land here; the
 * views read this state and call its actions. Packet rows and the topology are shallow refs:
 * 100,000 rows made deeply reactive would cost more than drawing them.
 */
import { computed, reactive, shallowRef, toRaw, triggerRef, watch, type ShallowRef } from 'vue';
import type { Capabilities, LiveStats, SessionDepth, SessionInfo, SessionList, SessionStateMessage, Topology } from '../api/contract.js';
import { dropReasonEntries, isCapabilities, isClockPair, isHealth, isSessionInfo, isSessionList, isTopology, sampleRateOf } from '../api/contract.js';
import { ApiError, restClient, type RestClient } from '../api/rest.js';
import { connectLive, type LiveSource } from '../api/live-source.js';
import { readToken, saveToken } from '../api/token.js';
import type { ClockRef } from '../domain/format.js';
import { formatUrlState, parseUrlState } from '../domain/url-state.js';
import { expectedFor, type ExpectedView } from '../domain/expected.js';
import { mergeByTime, sortByTime } from '../domain/rows.js';
import { localAddresses } from '../domain/topology-graph.js';
import { shortNsLabels } from '../domain/ns-labels.js';
import type {
  Facet, FilterProblem, FromWorker, PacketDetail, PacketRow, RecordingInfo, ReplayControl, ReplayHistogram, ReplayPosition, ToWorker,
  WorkerStats,
} from '../worker/protocol.js';
import { createRecordings } from './recordings.js';
import { parseFilter, FilterError, formatFilterError } from '../../../shared/filter/index.js';

/** Where the page stands with the service; 'no-session': the service answers but no trace could start (not root, no bpftrace...). */
export type Connection = 'starting' | 'connecting' | 'connected' | 'disconnected' | 'offline' | 'unauthorized' | 'no-session' | 'replay';

export interface Notice {
  readonly kind: 'error' | 'warning' | 'info';
  readonly title: string;
  readonly body: string;
  readonly hints?: readonly string[];
}

export interface WorkerLike {
  postMessage(msg: ToWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<FromWorker>) => void) | null;
  terminate(): void;
}

export interface DashboardEnv {
  readonly createWorker: () => WorkerLike;
  readonly rest?: RestClient;
  /** Where the bundled demo recording is served (see web/fixtures). */
  readonly demoRecordingUrl: string;
}

export const ROWS_MAX = 100_000;
const SPARK_POINTS = 120;

export interface RatePoint {
  readonly t: number;
  readonly server: number | null;
  readonly worker: number;
}

/** Where a replayed recording came from: a URL (demo, a file on the server), the library, or this computer. */
export type ReplaySource = 'url' | 'library' | 'local';

/** Playback speeds the scrubber offers (Infinity: as fast as the worker goes). */
export const REPLAY_SPEEDS: readonly number[] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, Number.POSITIVE_INFINITY];

export function createDashboard(env: DashboardEnv) {
  const url = parseUrlState(location.search);
  const rest = env.rest ?? restClient(readToken);
  const worker = env.createWorker();

  const state = reactive({
    mode: (url.replay || url.recording ? 'replay' : 'live') as 'live' | 'replay',
    replayName: url.replay ?? url.recording,
    replaySource: (url.recording ? 'library' : url.replay ? 'url' : null) as ReplaySource | null,
    replayProgress: 0,
    replayDone: false,
    /** The scrubber's view of the replay, null until the worker has the recording. */
    replay: null as ReplayPosition | null,
    recordingInfo: null as RecordingInfo | null,
    connection: 'starting' as Connection,
    connectionDetail: '',
    capabilities: null as Capabilities | null,
    sessions: [] as SessionInfo[],
    session: null as SessionInfo | null,
    sessionState: null as SessionStateMessage | null,
    serverStats: null as LiveStats | null,
    workerStats: null as WorkerStats | null,
    clock: null as ClockRef | null,
    /** Kernel time of the first packet this view saw: the origin of relative times. */
    originNs: 0,
    filterText: url.filter,
    filterProblem: null as FilterProblem | null,
    facet: url.facet,
    paused: false,
    follow: true,
    selectedId: url.packet,
    detailMissing: false,
    notices: [] as Notice[],
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
  /** Packet starts over the replay's timeline (the scrubber's density strip). */
  const replayHistogram: ShallowRef<ReplayHistogram | null> = shallowRef(null);
  /**
   * 1 in this many flows are in what the page shows (1: all): the live session's rate (its info,
   * or the stats messages of a service that sends it there), or the replayed recording's. Every
   * count the page shows is of those flows, not scaled up: views say so beside them.
   */
  const sampleRate = computed(() => {
    if (state.mode === 'replay') return state.recordingInfo?.sampleRate ?? 1;
    const fromInfo = sampleRateOf(state.session);
    return fromInfo > 1 ? fromInfo : sampleRateOf(state.serverStats);
  });

  let live: LiveSource | null = null;
  /** Sessions the user started or picked: a slower default pick must not replace theirs. */
  let userSwitches = 0;
  /** The service host's clock pair from the subscribe ack (null: an older service; estimate instead). */
  let hostClock: ClockRef | null = null;
  let req = 0;
  let pendingSelect: string | null = url.packet;

  const post = (msg: ToWorker, transfer?: Transferable[]): void => worker.postMessage(msg, transfer);
  /** The facet as plain data: reactive proxies cannot cross postMessage. */
  const rawFacet = (): Facet | null => (state.facet ? toRaw(state.facet) : null);

  const recordings = createRecordings(rest, (n) => notify(n));

  function nsName(netns: number, fallback: string | null = null): string {
    return names.value.get(netns) ?? fallback ?? `netns:${netns}`;
  }

  /** Every known namespace's short label (domain/ns-labels.ts), for the list's path chips. */
  const nsLabels = computed(() => shortNsLabels(names.value.values()));
  function nsLabel(netns: number, fallback: string | null = null): string {
    const name = nsName(netns, fallback);
    return nsLabels.value.get(name) ?? name;
  }

  // ---- worker ----
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
        if (state.mode === 'live' && !hostClock && msg.stats.clockOffsetMs !== null) {
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
        const s = state.serverStats;
        const point = { t: Date.now() / 1000, server: s ? s.eventsPerSec : null, worker: msg.stats.eventsPerSec };
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
      case 'recording': {
        const info = msg.info;
        state.recordingInfo = info;
        state.clock = { monotonicNs: info.startMonoNs, epochMs: info.startWallMs };
        names.value = new Map(info.names);
        setTopology(isTopology(info.topology) ? info.topology : null);
        if (info.damaged > 0) notify({ kind: 'warning', title: 'Recording partly damaged', body: `${info.damaged} damaged stretch(es) were skipped.` });
        if (info.truncatedAt !== null) {
          notify({ kind: 'warning', title: 'Recording cut short', body: `It stops mid-record at byte ${info.truncatedAt}; everything before is shown.` });
        }
        break;
      }
      case 'replay-position': {
        const pos = msg.pos;
        state.replay = pos;
        const span = pos.t1 - pos.t0;
        state.replayProgress = span > 0 ? (pos.cursor - pos.t0) / span : 1;
        state.replayDone = pos.ended;
        // A step lands on a packet: show it (it is the newest listed, so the list follows it).
        if (pos.current && pos.current !== state.selectedId) {
          state.follow = true;
          select(pos.current);
        }
        break;
      }
      case 'replay-histogram':
        replayHistogram.value = msg.hist;
        break;
      case 'error':
        notify(msg.context === 'replay'
          ? { kind: 'error', title: 'Cannot replay the recording', body: msg.message }
          : { kind: 'error', title: 'Packet reconstruction failed', body: msg.message });
        break;
    }
  };

  function computeExpected(): void {
    const d = detail.value;
    expected.value = d ? expectedFor(d.packet, topology.value) : null;
  }

  /** Shows a notice; one with the same title is updated in place rather than repeated. */
  function notify(n: Notice): void {
    const i = state.notices.findIndex((x) => x.title === n.title);
    if (i >= 0) state.notices.splice(i, 1, n);
    else state.notices.push(n);
  }

  function dismiss(i: number): void {
    state.notices.splice(i, 1);
  }

  function setTopology(t: Topology | null): void {
    topology.value = t;
    if (t) {
      const m = new Map(names.value);
      for (const ns of t.namespaces) m.set(ns.netns, ns.name);
      names.value = m;
    }
    pushNames();
    computeExpected();
  }

  function setNames(list: readonly { netns: number; name: string }[]): void {
    const m = new Map(names.value);
    for (const n of list) m.set(n.netns, n.name);
    names.value = m;
    pushNames();
  }

  function pushNames(): void {
    post({ type: 'topology', names: [...names.value], local: localAddresses(topology.value) });
  }

  // ---- filter, facet, selection ----
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

  // ---- replay: the scrubber's controls ----
  function replayControl(control: ReplayControl): void {
    if (state.mode !== 'replay') return;
    post({ type: 'replay-control', control });
  }

  /** Play/pause in a replay (the list's own pause stays for live). */
  function togglePlay(): void {
    replayControl({ op: state.replay?.playing ? 'pause' : 'play' });
  }

  function replaySeek(t: number): void {
    replayControl({ op: 'seek', t });
  }

  /** Moves the playhead by `ns` (negative: back). */
  function replaySeekBy(ns: number): void {
    const r = state.replay;
    if (r) replaySeek(Math.max(r.t0, Math.min(r.t1, r.cursor + ns)));
  }

  function replayStep(dir: 1 | -1): void {
    replayControl({ op: 'step', dir });
  }

  function replaySpeed(speed: number): void {
    replayControl({ op: 'speed', speed });
  }

  /** One notch along REPLAY_SPEEDS (`[` slower, `]` faster). */
  function replaySpeedStep(dir: 1 | -1): void {
    const cur = state.replay?.speed ?? 1;
    const next = dir > 0 ? REPLAY_SPEEDS.find((v) => v > cur) : [...REPLAY_SPEEDS].reverse().find((v) => v < cur);
    if (next !== undefined) replaySpeed(next);
  }

  // ---- sources ----
  async function startLive(): Promise<void> {
    state.connection = 'connecting';
    try {
      const health = await rest.get('/api/health', isHealth);
      void health;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'unauthorized') {
        state.connection = 'unauthorized';
        state.connectionDetail = err.message;
        return;
      }
      state.connection = 'offline';
      state.connectionDetail = err instanceof Error ? err.message : String(err);
      // Keep trying: the page comes to life when the service does.
      setTimeout(() => void startLive(), 3000);
      return;
    }
    try {
      state.capabilities = await rest.get('/api/capabilities', isCapabilities);
    } catch {
      state.capabilities = null;
    }
    void refreshTopology();
    // The service answered; a new session's bpftrace takes seconds to compile and attach: say
    // that rather than "connecting", which reads as a network problem.
    state.connection = 'starting';
    state.connectionDetail = 'bpftrace is compiling and attaching its probes; this takes a few seconds.';
    const switchesBefore = userSwitches;
    let picked: SessionInfo;
    try {
      picked = await pickSession();
    } catch (err) {
      if (userSwitches !== switchesBefore) return;
      const e = err as ApiError;
      // The service is there (it answered): saying "disconnected" would send people after the
      // wrong problem.
      state.connection = 'no-session';
      state.connectionDetail = e.message;
      notify(e.code === 'cannot-trace'
        ? { kind: 'error', title: 'This host cannot trace', body: e.message, hints: state.capabilities?.problems.filter((p) => p !== e.message) }
        : { kind: 'error', title: 'Could not start a trace session', body: e.message });
      return;
    }
    // Starting the default session can take seconds (bpftrace attaching): a session the user
    // started or picked meanwhile wins.
    if (userSwitches !== switchesBefore) return;
    state.session = picked;
    subscribe(picked);
  }

  async function pickSession(): Promise<SessionInfo> {
    const list: SessionList = await rest.get('/api/sessions', isSessionList);
    state.sessions = [...list.sessions];
    if (url.session) {
      const s = list.sessions.find((x) => x.id === url.session);
      if (s) return s;
      notify({ kind: 'warning', title: `Session ${url.session} is gone`, body: 'It ended (sessions nobody watches stop after a while). Showing a new session instead.' });
    }
    // A session someone started with depth costs more (nft tables, more probes): not the default
    // view. A sampled one shows only some flows: taken only when the link asked for that rate.
    const sample = url.sample ?? 1;
    const open = list.sessions.find((x) => x.filter === '' && !x.depth?.netfilter && !x.depth?.notes && sampleRateOf(x) === sample
      && x.state !== 'failed' && x.state !== 'stopped');
    if (open) return open;
    return rest.post('/api/sessions', { filter: '', ...(sample > 1 ? { sample } : {}) }, isSessionInfo);
  }

  /**
   * Starts a session; `depth` adds the netfilter rule trace and/or the notes tier, `sample` > 1
   * follows 1 in that many flows (POST /api/sessions).
   */
  async function newSession(filter: string, depth: Partial<SessionDepth> = {}, sample = 1): Promise<FilterProblem | null> {
    const problem = checkFilter(filter);
    if (problem) return problem;
    try {
      const body = { filter, ...(depth.netfilter ? { netfilter: true } : {}), ...(depth.notes ? { notes: true } : {}), ...(sample > 1 ? { sample } : {}) };
      const s = await rest.post('/api/sessions', body, isSessionInfo);
      state.sessions = [...state.sessions.filter((x) => x.id !== s.id), s];
      switchSession(s);
      return null;
    } catch (err) {
      const e = err as ApiError;
      if (e.code === 'bad-filter' && e.detail) return { message: e.message, offset: e.detail.offset, length: e.detail.length, formatted: e.message };
      notify({ kind: 'error', title: 'Could not start the session', body: e.message });
      return null;
    }
  }

  function switchSession(s: SessionInfo): void {
    userSwitches++;
    state.session = s;
    recordings.follow(s.id, s.recordingStatus);
    state.serverStats = null;
    state.sessionState = null;
    state.originNs = 0;
    rows.value = [];
    rowsVersion.value++;
    select(null);
    post({ type: 'reset' });
    subscribe(s);
  }

  async function refreshSessions(): Promise<void> {
    try {
      const list = await rest.get('/api/sessions', isSessionList);
      state.sessions = [...list.sessions];
    } catch {
      // The connection state already tells when the service is gone.
    }
  }

  let topoTimer: ReturnType<typeof setTimeout> | undefined;
  async function refreshTopology(): Promise<void> {
    try {
      setTopology(await rest.get('/api/topology', isTopology));
    } catch (err) {
      if (!topology.value) {
        notify({ kind: 'warning', title: 'No topology model', body: `${(err as Error).message} Packets still show; namespaces appear by inode.` });
      }
    }
  }

  function subscribe(s: SessionInfo): void {
    live?.close();
    live = connectLive(s.id, readToken(), {
      connection(c, detail) {
        state.connection = c;
        state.connectionDetail = detail;
      },
      subscribed(ack) {
        if (!ack.ok) {
          notify({ kind: 'error', title: 'Subscription refused', body: ack.error.message });
          return;
        }
        state.session = ack.session;
        hostClock = isClockPair(ack.clock) ? ack.clock : null;
        if (hostClock && state.mode === 'live') state.clock = hostClock;
        recordings.follow(ack.session.id, ack.session.recordingStatus);
        post({ type: 'drop-reasons', entries: dropReasonEntries(ack.dropReasons) });
        post({ type: 'depth-config', netfilter: ack.session.depth?.netfilter === true });
        setNames(ack.namespaces);
      },
      batch(buf) {
        post({ type: 'batch', buf }, [buf]);
      },
      depth(buf) {
        post({ type: 'depth', buf }, [buf]);
      },
      stats(st) {
        state.serverStats = st;
      },
      state(st) {
        state.sessionState = st;
        if (state.session) state.session = { ...state.session, state: st.state };
      },
      recording(r, message) {
        recordings.onStreamStatus(r, message);
      },
      names(list) {
        setNames(list);
        // Names changed: namespaces came or went; the model is worth re-reading (debounced).
        clearTimeout(topoTimer);
        topoTimer = setTimeout(() => void refreshTopology(), 1000);
      },
    });
  }

  /**
   * Replays a recording: `source` is a URL on this server, a library name (`kind` 'library', fetched
   * with the token) or the bytes of a local file. `fresh`: the page just opened, keep the selection
   * the URL asked for.
   */
  async function startReplay(source: string | Uint8Array, label: string, fresh = false, kind: ReplaySource = typeof source === 'string' ? 'url' : 'local'): Promise<void> {
    state.mode = 'replay';
    state.connection = 'replay';
    state.replayName = label;
    state.replaySource = kind;
    state.replayDone = false;
    state.replay = null;
    state.recordingInfo = null;
    replayHistogram.value = null;
    live?.close();
    live = null;
    recordings.follow(null, null);
    // Info notices are about the live view (a recording saved): stale over a replay.
    state.notices = state.notices.filter((n) => n.kind !== 'info');
    // The list's own pause is a live control: a replay pauses playback instead.
    if (state.paused) setPaused(false);
    post({ type: 'stop-replay' });
    if (!fresh) {
      rows.value = [];
      rowsVersion.value++;
      state.originNs = 0;
      select(null);
      post({ type: 'reset' });
    }
    let bytes: Uint8Array;
    try {
      if (kind === 'library' && typeof source === 'string') {
        bytes = new Uint8Array(await recordings.bytes(source));
      } else if (typeof source === 'string') {
        const res = await fetch(source);
        if (!res.ok) throw new Error(`${source}: HTTP ${res.status}`);
        bytes = new Uint8Array(await res.arrayBuffer());
      } else {
        bytes = source;
      }
    } catch (err) {
      notify({ kind: 'error', title: 'Cannot replay the recording', body: err instanceof Error ? err.message : String(err) });
      return;
    }
    // The address bar's playback settings are for the recording the page opened with; another
    // one opened from here plays once, at 1×.
    const params = new URLSearchParams(fresh ? location.search : '');
    if (!fresh) {
      const u = new URL(location.href);
      for (const k of ['speed', 'loop', 'gap', 'paused']) u.searchParams.delete(k);
      history.replaceState(history.state, '', u.toString());
    }
    const speed = params.get('speed') === 'max' ? Number.POSITIVE_INFINITY : Number(params.get('speed') ?? 1) || 1;
    const gap = Number(params.get('gap') ?? 1000);
    // The demo loops (rounds of traffic); a recording someone opens plays once.
    const loop = params.has('loop') ? params.get('loop') !== '0' : kind === 'url' && label === 'demo';
    // The worker decodes and plays it: a big recording never blocks this thread.
    const buf = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? (bytes.buffer as ArrayBuffer)
      : (bytes.slice().buffer as ArrayBuffer);
    post({
      type: 'replay', bytes: buf, speed, loop, paused: params.get('paused') === '1',
      loopGapMs: Number.isFinite(gap) && gap >= 0 ? gap : 1000,
    }, [buf]);
  }

  /** Opens a recording of the library (downloaded with the token, replayed here). */
  function openRecording(name: string): Promise<void> {
    recordings.toggle(false);
    return startReplay(name, name, false, 'library');
  }

  /** Opens a file from this computer: replayed here, never uploaded. */
  async function openFile(file: Blob & { readonly name: string }): Promise<void> {
    recordings.toggle(false);
    await startReplay(new Uint8Array(await file.arrayBuffer()), file.name, false, 'local');
  }

  /** Leaves a replay for the live view of this service. */
  function backToLive(): void {
    const u = new URL(location.href);
    u.search = '';
    location.assign(u.toString());
  }

  function openDemo(): void {
    const u = new URL(location.href);
    u.search = '?replay=demo';
    location.assign(u.toString());
  }

  function setToken(token: string): void {
    saveToken(token);
    location.reload();
  }

  // Following the tail wants new rows promptly; someone scrolling through history is better
  // served by fewer, larger updates that leave the UI thread to the scrolling.
  watch(() => state.follow, (f) => post({ type: 'config', flushMs: f ? 100 : 400 }));

  // ---- URL ----
  watch(
    () => [state.session?.id, state.session?.sampleRate, state.filterText, state.facet, state.selectedId, state.replayName, state.replaySource] as const,
    () => {
      // A local file cannot be fetched again from a link: it stays out of the address bar.
      const q = formatUrlState({
        session: state.mode === 'live' ? state.session?.id ?? null : null,
        sample: state.mode === 'live' && state.session ? sampleRateOf(state.session) : null,
        replay: state.mode === 'replay' && state.replaySource === 'url' ? state.replayName : null,
        recording: state.mode === 'replay' && state.replaySource === 'library' ? state.replayName : null,
        filter: state.filterText,
        facet: state.facet,
        packet: state.selectedId,
      });
      // Keep other parameters (speed, loop) that are not part of the shared view.
      const keep = new URLSearchParams(location.search);
      const next = new URLSearchParams(q);
      for (const k of ['speed', 'loop', 'gap', 'max', 'paused']) {
        const v = keep.get(k);
        if (v !== null) next.set(k, v);
      }
      const s = next.toString();
      const target = `${location.pathname}${s ? `?${s}` : ''}${location.hash}`;
      if (target !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(history.state, '', target);
    },
    { deep: true },
  );

  function start(): void {
    const max = Number(new URLSearchParams(location.search).get('max'));
    if (Number.isInteger(max) && max > 0) post({ type: 'config', historyMax: max });
    post({ type: 'filter', text: state.filterText, facet: rawFacet() });
    if (state.filterText) state.filterProblem = checkFilter(state.filterText);
    if (url.recording) {
      void startReplay(url.recording, url.recording, true, 'library');
    } else if (url.replay) {
      const src = url.replay === 'demo' ? env.demoRecordingUrl : url.replay;
      // Only recordings from this origin: a shared link must not make the page fetch elsewhere.
      const ok = url.replay === 'demo' || /^(\.{0,2}\/)?[\w./-]+\.hoptrace$/.test(url.replay);
      if (ok) void startReplay(src, url.replay, true);
      else notify({ kind: 'error', title: 'Bad replay parameter', body: 'replay= takes "demo" or a path to a .hoptrace file on this server.' });
    } else {
      void startLive();
    }
  }

  function stop(): void {
    live?.close();
    recordings.dispose();
    worker.terminate();
  }

  return {
    state, rows, rowsVersion, rowsTrimmed, topology, names, detail, expected, rates, replayHistogram, recordings, sampleRate,
    nsName, nsLabel, applyFilter, checkFilter, setFacet, select, setPaused, newSession, switchSession, refreshSessions,
    startReplay, openRecording, openFile, backToLive, openDemo, setToken, dismiss, start, stop,
    replayControl, togglePlay, replaySeek, replaySeekBy, replayStep, replaySpeed, replaySpeedStep,
  };
}

export type Dashboard = ReturnType<typeof createDashboard>;
