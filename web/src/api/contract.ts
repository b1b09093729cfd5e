/**
 * The service's contract as the dashboard uses it. Types come from shared/api-types.ts and
 * shared/stream-events.ts (imported as types only, so zod stays out of the browser bundle); the
 * guards below check payloads at the browser's boundary before anything trusts them.
 */
import type { Topology } from '../../../shared/topology/model.js';
import type { ProbeTiers } from '../../../shared/probe-tiers.js';
import type {
  ApiErrorBody, Capabilities, DropReasonsResponse, HealthResponse, RecordingEntry, RecordingList, RecordingStatus, SampledStats, SessionDepth,
  SessionInfo, SessionList, SessionState,
} from '../../../shared/api-types.js';
import type {
  ClientToServerEvents, DepthMessage, HopsMessage, NamespaceName, ServerToClientEvents, SessionStateMessage, StreamStats,
  SubscribeAck, TopologyMessage,
} from '../../../shared/stream-events.js';

export type {
  ApiErrorBody, Capabilities, ClientToServerEvents, DepthMessage, DropReasonsResponse, HealthResponse, HopsMessage, NamespaceName,
  RecordingEntry, RecordingList, RecordingStatus, SampledStats, ServerToClientEvents, SessionDepth, SessionInfo, SessionList, SessionState,
  SessionStateMessage, StreamStats, SubscribeAck, Topology, TopologyMessage,
};

/** A `stats` message as the service sends it: StreamStats with the session's sample rate. */
export type LiveStats = StreamStats & SampledStats;

/** A sample rate from the wire: a whole number ≥ 1, else 1 (services older than sampling send none). */
export function sampleRateOf(v: { readonly sampleRate?: unknown } | null | undefined): number {
  const r = v?.sampleRate;
  return typeof r === 'number' && Number.isSafeInteger(r) && r >= 1 ? r : 1;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isSessionInfo(v: unknown): v is SessionInfo {
  return isObject(v) && typeof v.id === 'string' && typeof v.filter === 'string' && typeof v.state === 'string';
}

export function isSessionList(v: unknown): v is SessionList {
  return isObject(v) && Array.isArray(v.sessions) && v.sessions.every(isSessionInfo);
}

export function isTopology(v: unknown): v is Topology {
  return isObject(v) && Array.isArray(v.namespaces)
    && v.namespaces.every((n) => isObject(n) && typeof n.netns === 'number' && typeof n.name === 'string' && Array.isArray(n.interfaces));
}

export function isCapabilities(v: unknown): v is Capabilities {
  return isObject(v) && typeof v.canTrace === 'boolean' && Array.isArray(v.problems);
}

/** The depth tiers of /api/capabilities (shared/probe-tiers.ts), checked before the status bar trusts them. */
export function isProbeTiers(v: unknown): v is ProbeTiers {
  return isObject(v) && Array.isArray(v.areas) && Array.isArray(v.deepScripts)
    && v.areas.every((a) => isObject(a) && typeof a.area === 'string' && (a.tier === null || typeof a.tier === 'string') && Array.isArray(a.options)
      && a.options.every((o) => isObject(o) && typeof o.tier === 'string' && typeof o.available === 'boolean' && typeof o.shows === 'string'));
}

/** What a session traces beyond hops, as a short label ('' for none). */
export function depthLabel(s: { readonly depth?: SessionInfo['depth'] }): string {
  const parts = [s.depth?.netfilter ? 'netfilter' : '', s.depth?.notes ? 'notes' : ''].filter(Boolean);
  return parts.join(' + ');
}

export function isHealth(v: unknown): v is HealthResponse {
  return isObject(v) && v.status === 'ok';
}

export function isApiError(v: unknown): v is ApiErrorBody {
  return isObject(v) && isObject(v.error) && typeof v.error.message === 'string' && typeof v.error.code === 'string';
}

export function isStats(v: unknown): v is LiveStats {
  return isObject(v) && typeof v.session === 'string' && typeof v.eventsPerSec === 'number'
    && typeof v.lostKernel === 'number' && typeof v.droppedBatches === 'number' && isObject(v.bpftrace)
    && (v.sampleRate === undefined || typeof v.sampleRate === 'number');
}

/** A host clock pair (SubscribeAck.clock): kernel monotonic ns and wall ms, both finite. */
export function isClockPair(v: unknown): v is { readonly monotonicNs: number; readonly epochMs: number } {
  return isObject(v) && typeof v.monotonicNs === 'number' && Number.isFinite(v.monotonicNs)
    && typeof v.epochMs === 'number' && Number.isFinite(v.epochMs);
}

export function isSessionState(v: unknown): v is SessionStateMessage {
  return isObject(v) && typeof v.session === 'string' && typeof v.state === 'string' && typeof v.message === 'string';
}

export function isNamespaceNames(v: unknown): v is readonly NamespaceName[] {
  return Array.isArray(v) && v.every((n) => isObject(n) && typeof n.netns === 'number' && typeof n.name === 'string');
}

export function isHopsMessage(v: unknown): v is HopsMessage {
  return isObject(v) && typeof v.session === 'string' && (v.batch instanceof ArrayBuffer || v.batch instanceof Uint8Array);
}

/** A `depth` message has the shape of a `hops` message (its batch is a protobuf DepthBatch). */
export function isDepthMessage(v: unknown): v is DepthMessage {
  return isHopsMessage(v);
}

/** A session's recording (running, or how it ended): POST /api/sessions/:id/recording, session-state messages. */
export function isRecordingStatus(v: unknown): v is RecordingStatus {
  return isObject(v) && typeof v.name === 'string' && typeof v.session === 'string' && typeof v.running === 'boolean'
    && typeof v.events === 'number' && typeof v.bytes === 'number' && typeof v.elapsedMs === 'number'
    && (v.error === null || typeof v.error === 'string');
}

/** One library file of GET /api/recordings (also what upload and stop answer). */
export function isRecordingEntry(v: unknown): v is RecordingEntry {
  return isObject(v) && typeof v.name === 'string' && typeof v.sizeBytes === 'number' && typeof v.events === 'number'
    && typeof v.durationS === 'number' && typeof v.complete === 'boolean'
    && (v.startedAt === null || typeof v.startedAt === 'string') && (v.packets === null || typeof v.packets === 'number');
}

export function isRecordingList(v: unknown): v is RecordingList {
  return isObject(v) && Array.isArray(v.recordings) && v.recordings.every(isRecordingEntry);
}

/** Drop-reason tables arrive as `{code: name}` objects; the worker wants pairs. */
export function dropReasonEntries(table: Readonly<Record<string, string>> | undefined): [number, string][] {
  if (!table) return [];
  const out: [number, string][] = [];
  for (const [k, name] of Object.entries(table)) {
    const code = Number(k);
    if (Number.isInteger(code) && typeof name === 'string') out.push([code, name]);
  }
  return out;
}
