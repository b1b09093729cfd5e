/**
 * The page's stores, wired together in one place — each does one thing, and this file only says
 * who talks to whom:
 *
 *   notices      the page's notices (notices.ts)
 *   ingest       the worker bridge: rows, selection, filter, model, clock (ingest.ts)
 *   recordings   the library and the live recording (recordings.ts)
 *   live         the service: session picking, the socket.io subscription, token (live.ts)
 *   replay       recordings replayed in the worker, scrubber controls (replay.ts)
 *   url sync     the address bar follows the view (url-sync.ts)
 *   stats        latency histograms of a stats session (stats.ts)
 *   forms        the top bar's new-session and recording forms (forms.ts)
 *
 * The returned object is the views' (and the end-to-end tests' `window.__hoptrace`) single handle:
 * the stores' states merged into one reactive `state`, and their actions.
 */
import { computed, reactive, toRefs } from 'vue';
import { sampleRateOf } from '../api/contract.js';
import { restClient, type RestClient } from '../api/rest.js';
import { readToken } from '../api/token.js';
import { connectStats, statsApi } from '../api/stats.js';
import { parseUrlState } from '../domain/url-state.js';
import { createNotices } from './notices.js';
import { createIngest, type WorkerLike } from './ingest.js';
import { createLive } from './live.js';
import { createReplay } from './replay.js';
import { syncUrl } from './url-sync.js';
import { createRecordings } from './recordings.js';
import { createStatsStore, type StatsStore } from './stats.js';
import { createRecordForm, createSessionForm } from './forms.js';

export type { Notice } from './notices.js';
export type { WorkerLike, RatePoint } from './ingest.js';
export { ROWS_MAX } from './ingest.js';
export type { Connection } from './live.js';
export { REPLAY_SPEEDS, type ReplaySource } from './replay.js';

export interface DashboardEnv {
  readonly createWorker: () => WorkerLike;
  readonly rest?: RestClient;
  /** Where the bundled demo recording is served (see web/fixtures). */
  readonly demoRecordingUrl: string;
  /** The latency panel's store; default: one on this service's stats API. */
  readonly stats?: StatsStore;
}

export function createDashboard(env: DashboardEnv) {
  const url = parseUrlState(location.search);
  const rest = env.rest ?? restClient(readToken);

  const notices = createNotices();
  const notify = notices.notify;
  const ingest = createIngest({
    worker: env.createWorker(), notify,
    mode: url.replay || url.recording ? 'replay' : 'live',
    filter: url.filter, facet: url.facet, packet: url.packet,
  });
  const recordings = createRecordings(rest, notify);
  const live = createLive({ rest, ingest, recordings, notify, session: url.session, sample: url.sample ?? null });
  const replay = createReplay({ ingest, live, recordings, notify, dismissInfo: notices.dismissInfo, demoRecordingUrl: env.demoRecordingUrl, replay: url.replay, recording: url.recording });
  syncUrl(ingest, live, replay);
  const stats = env.stats ?? createStatsStore({ api: statsApi(restClient(readToken)), connect: connectStats, token: readToken });
  const forms = { session: createSessionForm(live.newSession), record: createRecordForm(recordings) };

  const state = reactive({ ...toRefs(ingest.state), ...toRefs(live.state), ...toRefs(replay.state), ...toRefs(notices.state) });

  /**
   * 1 in this many flows are in what the page shows (1: all): the live session's rate (its info,
   * or the stats messages of a service that sends it there), or the replayed recording's. Every
   * count the page shows is of those flows, not scaled up: views say so beside them.
   */
  const sampleRate = computed(() => {
    if (ingest.state.mode === 'replay') return replay.state.recordingInfo?.sampleRate ?? 1;
    const fromInfo = sampleRateOf(live.state.session);
    return fromInfo > 1 ? fromInfo : sampleRateOf(live.state.serverStats);
  });

  function start(): void {
    const max = Number(new URLSearchParams(location.search).get('max'));
    ingest.start(Number.isInteger(max) && max > 0 ? max : null);
    if (!replay.startFromUrl()) void live.start();
  }

  function stop(): void {
    live.close();
    recordings.dispose();
    stats.dispose();
    ingest.stop();
  }

  return {
    state, sampleRate, recordings, stats, forms,
    rows: ingest.rows, rowsVersion: ingest.rowsVersion, rowsTrimmed: ingest.rowsTrimmed, topology: ingest.topology, names: ingest.names,
    detail: ingest.detail, expected: ingest.expected, rates: ingest.rates, replayHistogram: replay.replayHistogram,
    nsName: ingest.nsName, nsLabel: ingest.nsLabel, applyFilter: ingest.applyFilter, checkFilter: ingest.checkFilter, setFacet: ingest.setFacet,
    select: ingest.select, setPaused: ingest.setPaused,
    newSession: live.newSession, switchSession: live.switchSession, refreshSessions: live.refreshSessions, setToken: live.setToken,
    startReplay: replay.startReplay, openRecording: replay.openRecording, openFile: replay.openFile, backToLive: replay.backToLive,
    openDemo: replay.openDemo, replayControl: replay.replayControl, togglePlay: replay.togglePlay, replaySeek: replay.replaySeek,
    replaySeekBy: replay.replaySeekBy, replayStep: replay.replayStep, replaySpeed: replay.replaySpeed, replaySpeedStep: replay.replaySpeedStep,
    dismiss: notices.dismiss, start, stop,
  };
}

export type Dashboard = ReturnType<typeof createDashboard>;
