/**
 * Stats sessions of the service: REST (/api/stats) and the socket.io namespace /stats, checked
 * against the contract in shared/stats/api.ts before anything is passed on.
 */
import { io, type Socket } from 'socket.io-client';
import type { RestClient } from './rest.js';
import { isRecordingList } from './contract.js';
import type {
  StatsClientToServerEvents, StatsServerToClientEvents, StatsSessionDetail, StatsSessionInfo, StatsStateMessage, StatsSubscribeAck,
} from '../../../shared/stats/api.js';
import type { StatsDocument } from '../../../shared/stats/types.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export function isStatsSessionInfo(v: unknown): v is StatsSessionInfo {
  return isObj(v) && typeof v.id === 'string' && typeof v.filter === 'string' && typeof v.intervalS === 'number'
    && typeof v.sampleRate === 'number' && typeof v.state === 'string';
}

export function isStatsDocument(v: unknown): v is StatsDocument {
  return isObj(v) && v.type === 'stats' && Array.isArray(v.segments) && Array.isArray(v.transit) && Array.isArray(v.drops)
    && Array.isArray(v.interfaces) && typeof v.start === 'string' && typeof v.end === 'string' && typeof v.sample_rate === 'number';
}

export function isStatsDetail(v: unknown): v is StatsSessionDetail {
  return isStatsSessionInfo(v) && Array.isArray((v as { history?: unknown }).history);
}

export interface StatsStreamHandlers {
  document(doc: StatsDocument): void;
  state(s: StatsStateMessage): void;
  /** Subscribed (again, after a reconnect): the history the service kept. */
  subscribed(history: StatsDocument[]): void;
  error(message: string): void;
}

export interface StatsStream {
  close(): void;
}

export type StatsStreamFactory = (id: string, token: string | null, h: StatsStreamHandlers) => StatsStream;

/** Subscribes to one stats session on the /stats namespace; re-subscribes after reconnects. */
export const connectStats: StatsStreamFactory = (id, token, h) => {
  const socket: Socket<StatsServerToClientEvents, StatsClientToServerEvents> = io('/stats', {
    path: '/socket.io',
    transports: ['websocket', 'polling'],
    // The token goes with the engine.io handshake, which the service refuses without it (a
    // browser's WebSocket cannot send an Authorization header, so it is in the query).
    query: token ? { token } : {},
    reconnectionDelayMax: 5000,
  });
  socket.on('connect', () => {
    socket.emit('subscribe', { id }, (ack: StatsSubscribeAck) => {
      if (!isObj(ack)) return;
      if (ack.ok) h.subscribed(ack.history.filter(isStatsDocument));
      else h.error(ack.error.message);
    });
  });
  socket.on('connect_error', (err) => h.error(/unauthori[sz]ed/i.test(err.message) || (err as { description?: unknown }).description === 403 ? 'the service wants a token' : `cannot reach the service (${err.message})`));
  socket.on('document', (m) => {
    if (isObj(m) && m.id === id && isStatsDocument(m.doc)) h.document(m.doc);
  });
  socket.on('state', (m) => {
    if (isObj(m) && m.id === id && typeof m.state === 'string') h.state(m);
  });
  return {
    close() {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
};

export interface StatsApi {
  start(filter: string, intervalS: number, sample: number): Promise<StatsSessionInfo>;
  detail(id: string): Promise<StatsSessionDetail>;
  stop(id: string): Promise<void>;
  /** Names in the service's recordings library (for A/B of two recordings). */
  recordings(): Promise<string[]>;
  /** A recording's bytes. */
  recording(name: string): Promise<ArrayBuffer>;
}

export function statsApi(rest: RestClient): StatsApi {
  return {
    start: (filter, intervalS, sample) => rest.post('/api/stats', { filter, intervalS, sample }, isStatsSessionInfo),
    detail: (id) => rest.get(`/api/stats/${encodeURIComponent(id)}`, isStatsDetail),
    stop: (id) => rest.del(`/api/stats/${encodeURIComponent(id)}`),
    recordings: async () => (await rest.get('/api/recordings', isRecordingList)).recordings.filter((r) => !r.problem).map((r) => r.name),
    recording: (name) => rest.bytes(`/api/recordings/${encodeURIComponent(name)}`),
  };
}
