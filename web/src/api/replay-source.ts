/**
 * Replay: plays a .hoptrace recording (shared/recording) as if it were live, so the dashboard can
 * be developed, demonstrated and tested without root or a service. Runs inside the ingest worker
 * (the page only fetches the bytes and hands them over): decoding and pacing a large recording
 * never touches the UI thread, and events go straight to the engine without a protobuf round trip.
 */
import type { HopEvent } from '../../../shared/hop-event.js';
import { decodeRecording, namespaceNamesOf } from '../../../shared/recording/index.js';
import type { RecordingHeader, TopologyRecord } from '../../../shared/recording/index.js';
import type { Topology } from './contract.js';
import { isTopology } from './contract.js';

export interface Recording {
  readonly header: RecordingHeader;
  readonly events: readonly HopEvent[];
  readonly names: ReadonlyMap<number, string>;
  readonly topology: Topology | null;
  readonly lost: number;
  /** Damaged or undecodable stretches skipped while reading. */
  readonly damaged: number;
}

export function readRecording(bytes: Uint8Array): Recording {
  const { header, records, summary } = decodeRecording(bytes);
  const events: HopEvent[] = [];
  const topo: TopologyRecord[] = [];
  let lost = 0;
  for (const r of records) {
    if (r.kind === 'event') events.push(r.event);
    else if (r.kind === 'topology') topo.push(r.topology);
    else if (r.kind === 'lost') lost += r.lost.count;
  }
  // Bpftrace drains CPUs in turn, so file order is only roughly time order; the engine copes, but
  // a replay that paces itself by time needs them sorted.
  events.sort((a, b) => a.t - b.t);
  let model: Topology | null = null;
  for (const t of topo) if (isTopology(t.model)) model = t.model;
  return {
    header, events, names: namespaceNamesOf(topo), topology: model, lost,
    damaged: summary.damage.regions + summary.invalid,
  };
}

export interface ReplayHandlers {
  events(events: HopEvent[]): void;
  progress(done: number, total: number): void;
  end(): void;
}

export interface ReplayOptions {
  /** Playback speed relative to the recording (Infinity: as fast as possible). */
  readonly speed: number;
  /** Start over when the end is reached (the demo); time keeps increasing across loops. */
  readonly loop: boolean;
  /** Pause between loops, ms (default 1000: the demo reads as rounds of traffic). */
  readonly loopGapMs?: number;
}

export interface Replay {
  stop(): void;
}

const TICK_MS = 50;
const MAX_BATCH = 2048;

export function playRecording(rec: Recording, opts: ReplayOptions, h: ReplayHandlers): Replay {
  const events = rec.events;
  const first = events[0]?.t ?? 0;
  const span = (events[events.length - 1]?.t ?? first) - first;
  let i = 0;
  let loopShift = 0;
  let stopped = false;
  const startWall = performance.now();
  let loopStartWall = startWall;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const send = (batch: HopEvent[]): void => h.events(batch);

  const step = (): void => {
    if (stopped) return;
    const elapsedNs = Number.isFinite(opts.speed) ? (performance.now() - loopStartWall) * 1e6 * opts.speed : Number.POSITIVE_INFINITY;
    let batch: HopEvent[] = [];
    while (i < events.length) {
      const ev = events[i] as HopEvent;
      if (ev.t - first > elapsedNs) break;
      batch.push(loopShift ? { ...ev, t: ev.t + loopShift } : ev);
      i++;
      if (batch.length >= MAX_BATCH) {
        send(batch);
        batch = [];
        if (!Number.isFinite(opts.speed)) break;
      }
    }
    if (batch.length) send(batch);
    h.progress(i, events.length);
    if (i >= events.length) {
      if (!opts.loop || events.length === 0) {
        h.end();
        return;
      }
      // Next loop: shift times past the end so packets never collide with the previous round.
      loopShift += span + Math.max(1_000_000, (opts.loopGapMs ?? 1000) * 1e6 * (Number.isFinite(opts.speed) ? opts.speed : 1)) + 1_000_000_000;
      i = 0;
      loopStartWall = performance.now() + (opts.loopGapMs ?? 1000);
    }
    timer = setTimeout(step, Number.isFinite(opts.speed) ? TICK_MS : 0);
  };
  step();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
