/**
 * The service's stats contract: REST under /api/stats, the socket.io namespace /stats, and
 * /metrics (Prometheus text). Schemas validate at the server's boundary; types are shared with
 * the dashboard. Pure, browser-safe.
 *
 * REST:
 *   POST   /api/stats            {filter, intervalS?, sample?} → 201 StatsSessionInfo (shared by equal requests)
 *   GET    /api/stats            → {sessions: StatsSessionInfo[]}
 *   GET    /api/stats/:id        → StatsSessionInfo & {documents: StatsDocument[]} (the kept history)
 *   DELETE /api/stats/:id        → 204
 *   GET    /api/stats/:id/compare?a_from&a_to&b_from&b_to  (wall-clock ms) → StatsComparison of two windows
 *   GET    /metrics              → Prometheus text of the /metrics session (started on first scrape)
 * Socket.io namespace /stats (same token as the main one):
 *   client → server  subscribe {id} (ack: {ok, session, documents} | {ok: false, error}), unsubscribe {id}
 *   server → client  document {id, doc} per interval; state {id, state, message?}
 */
import { z } from 'zod';
import type { StatsDocument } from './types.js';
import { SampleRate } from '../api-types.js';

export const MAX_STATS_FILTER_TEXT = 4096;
export const STATS_ID_RE = /^s[a-z0-9]{1,31}$/;

const IntervalS = z.number().min(0.1).max(3600);

/**
 * The API is camelCase like the rest of the service's (`SessionInfo.sampleRate`); `interval_s`, the
 * name before, is still taken (one of the two). Stats *documents* keep their snake_case: they are
 * the `stats --json` format, written to files that `compare` reads back.
 */
export const CreateStatsRequest = z.strictObject({
  /** Filter in the pcap-like language; '' counts every IP packet. */
  filter: z.string().max(MAX_STATS_FILTER_TEXT),
  /** Seconds per document (default 1; 0.1–3600). */
  intervalS: IntervalS.optional(),
  /** The same, by its name before (compatibility). */
  interval_s: IntervalS.optional(),
  /** Follow 1 in N flows (default 1; at most MAX_SAMPLE, as everywhere). */
  sample: SampleRate.optional(),
}).refine((r) => r.intervalS === undefined || r.interval_s === undefined, { message: 'give intervalS or interval_s, not both', path: ['intervalS'] })
  .transform(({ interval_s: old, ...r }) => ({ ...r, intervalS: r.intervalS ?? old }));
export type CreateStatsRequest = z.infer<typeof CreateStatsRequest>;

export const StatsCompareQuery = z.strictObject({
  a_from: z.coerce.number(), a_to: z.coerce.number(),
  b_from: z.coerce.number(), b_to: z.coerce.number(),
});
export type StatsCompareQuery = z.infer<typeof StatsCompareQuery>;

export type StatsSessionState = 'starting' | 'running' | 'failed' | 'ended';

export interface StatsSessionInfo {
  readonly id: string;
  /** Canonical filter text. */
  readonly filter: string;
  /** Seconds per document. */
  readonly intervalS: number;
  /** 1 in this many flows are followed (1: all); counts are not scaled. */
  readonly sampleRate: number;
  readonly state: StatsSessionState;
  /** Why it failed or ended, when it did. */
  readonly message: string | null;
  /** Documents produced so far (the newest `kept` are kept). */
  readonly documents: number;
  readonly kept: number;
  /** Wall clock ms. */
  readonly createdAt: number;
}

export interface StatsSessionList {
  readonly sessions: StatsSessionInfo[];
}

export interface StatsSessionDetail extends StatsSessionInfo {
  readonly history: StatsDocument[];
}

export interface StatsDocumentMessage {
  readonly id: string;
  readonly doc: StatsDocument;
}

export interface StatsStateMessage {
  readonly id: string;
  readonly state: StatsSessionState;
  readonly message: string | null;
}

export type StatsSubscribeAck =
  | { readonly ok: true; readonly session: StatsSessionInfo; readonly history: StatsDocument[] }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

export interface StatsServerToClientEvents {
  document: (m: StatsDocumentMessage) => void;
  state: (m: StatsStateMessage) => void;
}

export interface StatsClientToServerEvents {
  subscribe: (req: { id: string }, ack: (a: StatsSubscribeAck) => void) => void;
  unsubscribe: (req: { id: string }, ack?: (a: { ok: boolean }) => void) => void;
}

export const StatsSubscribeRequest = z.strictObject({ id: z.string().regex(STATS_ID_RE, 'not a stats session id') });
