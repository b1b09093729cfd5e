/**
 * Reading a .hoptrace recording (shared/recording) for the dashboard: everything the replay player
 * (worker/replay-player.ts) needs, decoded once. Runs inside the ingest worker (the page only
 * fetches the bytes and hands them over), so decoding a large recording never touches the UI
 * thread, and events go straight to the engine without a protobuf round trip.
 */
import type { HopEvent, HopNote } from '../../../shared/hop-event.js';
import type { NetfilterEvent } from '../../../shared/netfilter/types.js';
import { decodeRecording, namespaceNamesOf } from '../../../shared/recording/index.js';
import type { RecordingHeader, TopologyRecord } from '../../../shared/recording/index.js';
import type { Topology } from './contract.js';
import { isTopology } from './contract.js';

/** The recorder's clock record: reconstruction advanced to `t` after `after` events (file order). */
export type ClockMark = readonly [after: number, t: number];

/** A note or netfilter event of a recording with depth (format 1.1), after `after` events (file order). */
export type DepthMark =
  | { readonly after: number; readonly note: HopNote }
  | { readonly after: number; readonly netfilter: NetfilterEvent };

export interface Recording {
  readonly header: RecordingHeader;
  /** Events in time order. */
  readonly events: readonly HopEvent[];
  /** The same events in file order (as bpftrace delivered them to the recorder). */
  readonly fileEvents: readonly HopEvent[];
  /** Clock records, in file order: replaying them reproduces the recorder's live packets exactly. */
  readonly clocks: readonly ClockMark[];
  /** Notes and netfilter events, in file order (recordings of sessions with depth). */
  readonly depth: readonly DepthMark[];
  readonly names: ReadonlyMap<number, string>;
  readonly topology: Topology | null;
  /** Every topology record's model, in file order: a cluster recording's per-node models (record --hub). */
  readonly models?: readonly unknown[];
  readonly lost: number;
  /** Damaged or undecodable stretches skipped while reading. */
  readonly damaged: number;
  /** The end record's time (the recorder finished the file), null when there is none. */
  readonly endT: number | null;
  /** Byte offset where the file stops mid-record (a cut-short file), null when it does not. */
  readonly truncatedAt: number | null;
}

export function readRecording(bytes: Uint8Array): Recording {
  const { header, records, summary } = decodeRecording(bytes);
  const fileEvents: HopEvent[] = [];
  const clocks: ClockMark[] = [];
  const depth: DepthMark[] = [];
  const topo: TopologyRecord[] = [];
  let lost = 0;
  let endT: number | null = null;
  for (const r of records) {
    if (r.kind === 'event') fileEvents.push(r.event);
    else if (r.kind === 'clock') clocks.push([fileEvents.length, r.clock.t]);
    else if (r.kind === 'note') depth.push({ after: fileEvents.length, note: r.note });
    else if (r.kind === 'netfilter') depth.push({ after: fileEvents.length, netfilter: r.netfilter });
    else if (r.kind === 'topology') topo.push(r.topology);
    else if (r.kind === 'lost') lost += r.lost.count;
    else if (r.kind === 'end') endT = r.end.t;
  }
  // Bpftrace drains CPUs in turn, so file order is only roughly time order: pacing and seeking by
  // time want them sorted.
  const events = fileEvents.slice().sort((a, b) => a.t - b.t);
  let model: Topology | null = null;
  for (const t of topo) if (isTopology(t.model)) model = t.model;
  return {
    header, events, fileEvents, clocks, depth, names: namespaceNamesOf(topo), topology: model, models: topo.map((t) => t.model), lost,
    damaged: summary.damage.regions + summary.invalid, endT, truncatedAt: summary.truncatedAt,
  };
}
