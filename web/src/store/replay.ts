/**
 * Replaying a recording in the worker: opening one (the bundled demo, a file on the server, the
 * library, this computer), the scrubber's controls, where playback stands, and the way back to
 * the live view.
 */
import { reactive, shallowRef, type ShallowRef } from 'vue';
import { isTopology } from '../api/contract.js';
import type { RecordingInfo, ReplayControl, ReplayHistogram, ReplayPosition } from '../worker/protocol.js';
import type { Ingest, ReplayMessage } from './ingest.js';
import type { Live } from './live.js';
import type { Notice } from './notices.js';
import type { Recordings } from './recordings.js';

/** Where a replayed recording came from: a URL (demo, a file on the server), the library, or this computer. */
export type ReplaySource = 'url' | 'library' | 'local';

/** Playback speeds the scrubber offers (Infinity: as fast as the worker goes). */
export const REPLAY_SPEEDS: readonly number[] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, Number.POSITIVE_INFINITY];

export interface ReplayOptions {
  readonly ingest: Ingest;
  readonly live: Live;
  readonly recordings: Recordings;
  readonly notify: (n: Notice) => void;
  /** Takes the live view's info notices away (a replay starts). */
  readonly dismissInfo: () => void;
  /** Where the bundled demo recording is served (see web/fixtures). */
  readonly demoRecordingUrl: string;
  /** What the address bar asked to replay. */
  readonly replay: string | null;
  readonly recording: string | null;
}

export function createReplay(opts: ReplayOptions) {
  const { ingest, live, recordings, notify } = opts;
  const state = reactive({
    replayName: opts.replay ?? opts.recording,
    replaySource: (opts.recording ? 'library' : opts.replay ? 'url' : null) as ReplaySource | null,
    replayProgress: 0,
    replayDone: false,
    /** The scrubber's view of the replay, null until the worker has the recording. */
    replay: null as ReplayPosition | null,
    recordingInfo: null as RecordingInfo | null,
  });
  /** Packet starts over the replay's timeline (the scrubber's density strip). */
  const replayHistogram: ShallowRef<ReplayHistogram | null> = shallowRef(null);

  ingest.hooks.replay = (msg: ReplayMessage) => {
    switch (msg.type) {
      case 'recording': {
        const info = msg.info;
        state.recordingInfo = info;
        ingest.state.clock = { monotonicNs: info.startMonoNs, epochMs: info.startWallMs };
        ingest.replaceNames(info.names);
        ingest.setTopology(isTopology(info.topology) ? info.topology : null);
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
        if (pos.current && pos.current !== ingest.state.selectedId) {
          ingest.state.follow = true;
          ingest.select(pos.current);
        }
        break;
      }
      case 'replay-histogram':
        replayHistogram.value = msg.hist;
        break;
    }
  };

  function replayControl(control: ReplayControl): void {
    if (ingest.state.mode !== 'replay') return;
    ingest.post({ type: 'replay-control', control });
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

  /**
   * Replays a recording: `source` is a URL on this server, a library name (`kind` 'library', fetched
   * with the token) or the bytes of a local file. `fresh`: the page just opened, keep the selection
   * the URL asked for.
   */
  async function startReplay(source: string | Uint8Array, label: string, fresh = false, kind: ReplaySource = typeof source === 'string' ? 'url' : 'local'): Promise<void> {
    ingest.state.mode = 'replay';
    live.state.connection = 'replay';
    state.replayName = label;
    state.replaySource = kind;
    state.replayDone = false;
    state.replay = null;
    state.recordingInfo = null;
    replayHistogram.value = null;
    live.close();
    recordings.follow(null, null);
    opts.dismissInfo();
    // The list's own pause is a live control: a replay pauses playback instead.
    if (ingest.state.paused) ingest.setPaused(false);
    ingest.post({ type: 'stop-replay' });
    if (!fresh) ingest.clear();
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
    ingest.post({
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

  /**
   * Leaves a replay for the live view of this service: the session the page showed before the
   * replay, or (opened on a replay) the one the service means to show (live.ts pickSession).
   */
  function backToLive(): void {
    const u = new URL(location.href);
    const id = live.state.session?.id;
    u.search = id ? `?${new URLSearchParams({ session: id }).toString()}` : '';
    location.assign(u.toString());
  }

  function openDemo(): void {
    const u = new URL(location.href);
    u.search = '?replay=demo';
    location.assign(u.toString());
  }

  /** Plays what the address bar asked for; false when it asked for no replay. */
  function startFromUrl(): boolean {
    if (opts.recording) {
      void startReplay(opts.recording, opts.recording, true, 'library');
      return true;
    }
    if (!opts.replay) return false;
    const src = opts.replay === 'demo' ? opts.demoRecordingUrl : opts.replay;
    // Only recordings from this origin: a shared link must not make the page fetch elsewhere.
    const ok = opts.replay === 'demo' || /^(\.{0,2}\/)?[\w./-]+\.hoptrace$/.test(opts.replay);
    if (ok) void startReplay(src, opts.replay, true);
    else notify({ kind: 'error', title: 'Bad replay parameter', body: 'replay= takes "demo" or a path to a .hoptrace file on this server.' });
    return true;
  }

  return {
    state, replayHistogram, replayControl, togglePlay, replaySeek, replaySeekBy, replayStep, replaySpeed, replaySpeedStep,
    startReplay, openRecording, openFile, backToLive, openDemo, startFromUrl,
  };
}

export type Replay = ReturnType<typeof createReplay>;
