/**
 * The live stream's socket.io event map, typed once for the server (`Server<ClientToServerEvents,
 * ServerToClientEvents>`) and its clients (`Socket<ServerToClientEvents, ClientToServerEvents>`).
 *
 * Protocol:
 * 1. Connect to the service's own origin; with a token, pass it as `auth: { token }`.
 * 2. `subscribe {session}` → ack `{ok: true, ...}` with what reconstruction needs (drop reason
 *    names, namespace names, the canonical filter), or `{ok: false, error}`.
 * 3. The server sends `hops` (raw hop events, protobuf HopBatch — decode with shared/wire.ts
 *    `decodeBatch(batchBytes(msg.batch))` and feed shared/reconstruct.ts), for sessions with depth
 *    `depth` (notes and netfilter rule-trace events, protobuf DepthBatch — decode with
 *    shared/netfilter/wire.ts `decodeDepthBatch`; notes go to `Reconstructor.pushNote`, netfilter
 *    events to shared/netfilter/steps-queue.ts), `stats` about once a
 *    second, `session-state` when bpftrace dies, restarts or the session ends (and, with a
 *    `recording` field, when a recording starts, stops or fails), and `topology` when namespaces
 *    appear or go, with the whole model when it changed (TopologyMessage.model).
 * 4. Batches a slow client could not take are dropped oldest first, for that client only: it sees
 *    the jump in `seq` and the running count in `stats.droppedBatches`.
 */
import { z } from 'zod';
import type { BpftraceExitInfo, ErrorCode, RecordingStatus, SessionInfo, SessionState } from './api-types.js';
import type { Topology } from './topology/model.js';
import { SESSION_ID_RE } from './api-types.js';

export const SubscribeRequest = z.strictObject({ session: z.string().regex(SESSION_ID_RE, 'not a session id') });
export type SubscribeRequest = z.infer<typeof SubscribeRequest>;

export interface StreamError {
  readonly code: ErrorCode;
  readonly message: string;
}

export interface NamespaceName {
  readonly netns: number;
  readonly name: string;
}

export type SubscribeAck =
  | {
      readonly ok: true;
      readonly session: SessionInfo;
      /** enum skb_drop_reason value → name (this kernel's table), for ReconstructOptions.dropReason. */
      readonly dropReasons: Readonly<Record<string, string>>;
      /** Namespace inode → name as known now; `topology` messages bring changes. */
      readonly namespaces: readonly NamespaceName[];
      /** How the server batches: a batch is sent at `maxEvents` events or `maxDelayMs` after its first event. */
      readonly batching: { readonly maxEvents: number; readonly maxDelayMs: number };
      /**
       * The service host's clocks read back to back: kernel monotonic ns (the clock of every hop's
       * `t`) and wall clock ms since epoch. Hop times become the host's clock times with it, the
       * same clock as its logs and captures. Absent from older services.
       */
      readonly clock?: { readonly monotonicNs: number; readonly epochMs: number };
    }
  | { readonly ok: false; readonly error: StreamError };

export type UnsubscribeAck = { readonly ok: true } | { readonly ok: false; readonly error: StreamError };

export interface HopsMessage {
  readonly session: string;
  /** protobuf `hoptrace.HopBatch` (shared/wire.proto). ArrayBuffer in browsers, Buffer in Node. */
  readonly batch: ArrayBuffer | Uint8Array;
}

/**
 * Notes and netfilter events of a session with depth (SessionInfo.depth). A depth batch is sent
 * just before the hop batch sealed at the same moment, and shares its queue (and its drop-oldest
 * backpressure): a client sees them in the order bpftrace and the nft monitors produced them.
 */
export interface DepthMessage {
  readonly session: string;
  /** protobuf `hoptrace.DepthBatch` (shared/wire.proto). ArrayBuffer in browsers, Buffer in Node. */
  readonly batch: ArrayBuffer | Uint8Array;
}

export interface StreamStats {
  readonly session: string;
  /** Wall clock, ms since epoch. */
  readonly at: number;
  /** Hop events per second from bpftrace over the last interval (before any per-client drop). */
  readonly eventsPerSec: number;
  /**
   * How far behind the kernel the newest event was when the server got it from bpftrace (ms): high
   * values mean bpftrace cannot keep up (the host is busy); the stream adds its own delay on top.
   */
  readonly sourceLagMs: number;
  /** Totals since the session started. */
  readonly events: number;
  readonly lostKernel: number;
  /** Seq of the newest batch the session produced. */
  readonly seq: number;
  /** Batches dropped for this client because it did not keep up (running total). */
  readonly droppedBatches: number;
  /** Batches waiting in this client's queue on the server. */
  readonly queuedBatches: number;
  readonly bpftrace: { readonly state: SessionState; readonly pid: number | null; readonly restarts: number };
}

export interface SessionStateMessage {
  readonly session: string;
  readonly state: SessionState;
  /** Wall clock, ms since epoch. */
  readonly at: number;
  /** One sentence for people: what happened. */
  readonly message: string;
  /** When bpftrace died on its own: how (stderr included). */
  readonly exit?: BpftraceExitInfo;
  /** When restarting: how long until the next attempt. */
  readonly retryInMs?: number;
  /**
   * On the `running` that follows a restart: from when bpftrace was found dead to when its
   * successor was attached, in kernel monotonic ns (the clock of every hop's `t`). What happened
   * in it was not seen (a few events at its very end may come from the new bpftrace, attached
   * just before it reported ready). Packets in flight when bpftrace died end at its start (the
   * server's reconstruction finishes them as seen); a timeline can mark it.
   */
  readonly gap?: { readonly fromNs: number; readonly toNs: number };
  /**
   * Set when the message is about a recording rather than a state change (`state` is then the
   * session's unchanged state): one started, stopped or failed (disk full, file removed). Sessions
   * sharing a bpftrace see each other's recording messages; `recording.session` says whose it is.
   */
  readonly recording?: RecordingStatus;
}

export interface TopologyMessage {
  /** Every namespace known now (a full snapshot, not a diff). */
  readonly namespaces: readonly NamespaceName[];
  /**
   * The whole topology model (the body of GET /api/topology) when the service's live model
   * changed: a namespace came or went, or an interface, address, route, bridge port or
   * netfilter rule changed in one. Absent when only names changed, and from services without a
   * live model (then re-read /api/topology when `namespaces` changes).
   */
  readonly model?: Topology;
  /** With `model`: the namespaces (by name) added, removed and changed since the previous model. */
  readonly changes?: { readonly added: readonly string[]; readonly removed: readonly string[]; readonly changed: readonly string[] };
}

export interface ClientToServerEvents {
  subscribe: (req: SubscribeRequest, ack: (res: SubscribeAck) => void) => void;
  unsubscribe: (req: SubscribeRequest, ack: (res: UnsubscribeAck) => void) => void;
}

export interface ServerToClientEvents {
  hops: (msg: HopsMessage) => void;
  depth: (msg: DepthMessage) => void;
  stats: (msg: StreamStats) => void;
  'session-state': (msg: SessionStateMessage) => void;
  topology: (msg: TopologyMessage) => void;
}

/** The batch bytes of a `hops` message as a Uint8Array, whichever way the transport delivered them. */
export function batchBytes(batch: ArrayBuffer | Uint8Array): Uint8Array {
  return batch instanceof Uint8Array ? batch : new Uint8Array(batch);
}
