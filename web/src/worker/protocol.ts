/**
 * Messages between the UI thread and the ingest worker. The UI sends raw hop batches (protobuf
 * bytes, transferred, never copied) and settings; the worker answers with slim packet rows for the
 * list, full packets on request, and once-a-second statistics.
 */
import type { HopEvent } from '../../../shared/hop-event.js';
import type { Packet } from '../../../shared/packet.js';
import type { Topology } from '../../../shared/topology/model.js';

// The list's and detail view's shapes are the page's own (domain/packets.ts); the worker fills them.
export type { Facet, FilterProblem, PacketDetail, PacketRow } from '../domain/packets.js';
import type { Facet, FilterProblem, PacketDetail, PacketRow } from '../domain/packets.js';

export interface WorkerStats {
  readonly events: number;
  readonly eventsPerSec: number;
  /** Reconstructed packets, before the filter. */
  readonly packets: number;
  readonly packetsPerSec: number;
  /** Packets the filter and facet let through since the last reset. */
  readonly shown: number;
  /** Packets kept for re-filtering and detail (oldest evicted first). */
  readonly history: number;
  /** Packets still being followed. */
  readonly live: number;
  /** Events that came later than the reorder window. */
  readonly late: number;
  /** Packets ended because their skb carried a new packet before their free was seen (ReconstructStats.splits). */
  readonly splits?: number;
  readonly decodeErrors: number;
  /** Why the last undecodable batch failed (null when none did). */
  readonly lastDecodeError: string | null;
  /** Batches missing from the stream, seen as jumps in the batch sequence number. */
  readonly seqGaps: number;
  /** Sum of the batches' lostKernel fields. */
  readonly lostKernel: number;
  /** Share of wall time the worker spent ingesting over the last second (0..1). */
  readonly busy: number;
  /** Total time spent decoding and reconstructing since the last reset, ms. */
  readonly busyMsTotal: number;
  /**
   * Estimated wall clock (ms since epoch) of kernel time 0: the smallest (arrival − event time)
   * seen, i.e. the offset with the least delivery delay in it. Null before the first batch.
   */
  readonly clockOffsetMs: number | null;
  /** Rows held back while the list is paused. */
  readonly pending: number;
  /** Packets per second seen on each interface: [netns, ifindex, pps]. */
  readonly ifaceRates: readonly (readonly [number, number, number])[];
  /** Drops since the last reset: [netns, ifname, reason, count, last kernel ns]. */
  readonly drops: readonly (readonly [number, string, string, number, number])[];
}

export type ToWorker =
  | { readonly type: 'batch'; readonly buf: ArrayBuffer }
  /** A protobuf DepthBatch (notes, netfilter events) of a session with depth, transferred. */
  | { readonly type: 'depth'; readonly buf: ArrayBuffer }
  /** The session's depth (SessionInfo.depth): with `netfilter`, packets wait for their steps. */
  | { readonly type: 'depth-config'; readonly netfilter: boolean }
  /** The live session's canonical filter: packets it rejects are not the session's (as in /packets). */
  | { readonly type: 'session-filter'; readonly text: string }
  | { readonly type: 'events'; readonly events: readonly HopEvent[] }
  /** Packets made elsewhere: the hub's stitched packets (`node` on every hop), as they arrive. */
  | { readonly type: 'packets'; readonly packets: readonly Packet[] }
  /** Namespace names, local addresses and (when it changed) the model packets are put next to (null: none). */
  | { readonly type: 'topology'; readonly names: readonly (readonly [number, string])[]; readonly local: readonly (readonly [number, string])[]; readonly model?: Topology | null }
  | { readonly type: 'drop-reasons'; readonly entries: readonly (readonly [number, string])[] }
  | { readonly type: 'filter'; readonly text: string; readonly facet: Facet | null }
  | { readonly type: 'pause'; readonly paused: boolean }
  | { readonly type: 'get'; readonly id: string; readonly req: number }
  /** Play a .hoptrace recording (bytes transferred) as the source; `paused`: load it and wait at its start. */
  | { readonly type: 'replay'; readonly bytes: ArrayBuffer; readonly speed: number; readonly loop: boolean; readonly loopGapMs: number; readonly paused?: boolean }
  | { readonly type: 'replay-control'; readonly control: ReplayControl }
  | { readonly type: 'stop-replay' }
  /** End of a finite input: finish every live packet now. */
  | { readonly type: 'flush' }
  /** A new session: forget everything. */
  | { readonly type: 'reset' }
  | { readonly type: 'config'; readonly historyMax?: number; readonly flushMs?: number };

export type FromWorker =
  /** New rows (or, with `reset`, every row); `removed`: ids of listed rows taken back (a replay stepping back). */
  | { readonly type: 'rows'; readonly reset: boolean; readonly rows: readonly PacketRow[]; readonly removed?: readonly string[] }
  | { readonly type: 'stats'; readonly stats: WorkerStats }
  | { readonly type: 'filter'; readonly ok: true; readonly text: string } | { readonly type: 'filter'; readonly ok: false; readonly text: string; readonly problem: FilterProblem }
  | { readonly type: 'packet'; readonly req: number; readonly detail: PacketDetail | null }
  | { readonly type: 'recording'; readonly info: RecordingInfo }
  | { readonly type: 'replay-position'; readonly pos: ReplayPosition }
  | { readonly type: 'replay-histogram'; readonly hist: ReplayHistogram }
  /** `model`: the model could not compute a packet's expected path (once per message). */
  | { readonly type: 'error'; readonly message: string; readonly context?: 'replay' | 'model' };

/** What the page needs to know about a recording the worker plays. */
export interface RecordingInfo {
  readonly names: readonly (readonly [number, string])[];
  /** The topology model captured with the recording (shared/topology Topology), or null. */
  readonly topology: unknown;
  /** Wall clock at the start, ms since the epoch (fractional: µs kept). */
  readonly startWallMs: number;
  /** Kernel monotonic ns read together with startWallMs: hop time → wall clock. */
  readonly startMonoNs: number;
  readonly events: number;
  readonly lost: number;
  readonly damaged: number;
  readonly host: string;
  readonly kernel: string;
  readonly filter: string;
  /** 1 in this many flows were recorded (the header's sample rate; 1 for every flow and older files). */
  readonly sampleRate: number;
  /** The recorder finished the file (an end record). */
  readonly complete: boolean;
  /** Where a cut-short file stops, null when it does not. */
  readonly truncatedAt: number | null;
}

/** What the time scrubber asks of the replay player. Times are the recording's kernel ns. */
export type ReplayControl =
  | { readonly op: 'play' }
  | { readonly op: 'pause' }
  /** Times the recorded pace; Infinity: as fast as the worker goes. */
  | { readonly op: 'speed'; readonly speed: number }
  /** Shows the recording as it was at `t`: every packet that started by then. */
  | { readonly op: 'seek'; readonly t: number }
  /** To the next (1) or previous (-1) start of a packet the filter and facet show; pauses. */
  | { readonly op: 'step'; readonly dir: 1 | -1 };

/** Where a replay stands. Times are the recording's kernel monotonic ns (loops not added). */
export interface ReplayPosition {
  /** The timeline: the recording's start (header) to its last event or end record. */
  readonly t0: number;
  readonly t1: number;
  /** The playhead: packets that started by then are listed. */
  readonly cursor: number;
  readonly playing: boolean;
  readonly speed: number;
  /** At the end, not looping. */
  readonly ended: boolean;
  /** Rounds completed when looping (the list keeps earlier rounds, their times moved on). */
  readonly round: number;
  /** Time up to which packets are rebuilt: the playhead waits here until t1 while the worker works. */
  readonly builtTo: number;
  readonly building: boolean;
  /** Packets listed in time order so far (the playhead's packet index) and packets known. */
  readonly index: number;
  readonly total: number;
  /** First hop time of the oldest packet the page still holds (the history is bounded), null when none. */
  readonly loadedFrom: number | null;
  /** Set once, right after a step: the packet stepped to (the page selects it). */
  readonly current: string | null;
}

/** Packet starts over the timeline, for the scrubber's density strip. */
export interface ReplayHistogram {
  readonly t0: number;
  readonly t1: number;
  readonly counts: readonly number[];
  /** Dropped packets per bucket. */
  readonly drops: readonly number[];
}
