/**
 * The live stream: one socket.io connection to the service (same origin), subscribed to one
 * session. Batches are passed on as raw ArrayBuffers for the worker to decode; everything else
 * is checked against the contract before it is passed on. Re-subscribes after every reconnect.
 */
import { io, type Socket } from 'socket.io-client';
import type {
  ClientToServerEvents, LiveStats, NamespaceName, RecordingStatus, ServerToClientEvents, SessionStateMessage, SubscribeAck,
} from './contract.js';
import type { Topology } from './contract.js';
import { isDepthMessage, isHopsMessage, isNamespaceNames, isRecordingStatus, isSessionState, isStats, isTopology } from './contract.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'unauthorized';

export interface LiveHandlers {
  connection(state: ConnectionState, detail: string): void;
  subscribed(ack: SubscribeAck): void;
  batch(buf: ArrayBuffer): void;
  /** A DepthBatch (notes, netfilter events) of a session with depth. */
  depth(buf: ArrayBuffer): void;
  /** About once a second: rates and totals, with the session's sample rate. */
  stats(s: LiveStats): void;
  state(s: SessionStateMessage): void;
  /** This session's recording started, stopped or failed (a session-state message about a recording). */
  recording(r: RecordingStatus, message: string): void;
  names(n: readonly NamespaceName[]): void;
  /** The service's live model changed (a `topology` message with `model`); absent: re-read /api/topology on names. */
  model?(t: Topology): void;
}

export interface LiveSource {
  close(): void;
}

export function connectLive(session: string, token: string | null, h: LiveHandlers): LiveSource {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({
    path: '/socket.io',
    // Websocket first: binary batches need no base64, and long-polling adds latency at high rates.
    transports: ['websocket', 'polling'],
    // The token goes with the engine.io handshake, which the service refuses without it (a
    // browser's WebSocket cannot send an Authorization header, so it is in the query).
    query: token ? { token } : {},
    reconnectionDelayMax: 5000,
  });
  h.connection('connecting', 'connecting to the service…');

  socket.on('connect', () => {
    h.connection('connected', '');
    socket.emit('subscribe', { session }, (ack) => h.subscribed(ack));
  });
  socket.on('disconnect', (reason) => {
    h.connection('disconnected', reason === 'io server disconnect' ? 'the service closed the connection' : 'connection lost; retrying…');
    // A server-side disconnect is not retried by socket.io itself.
    if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 2000);
  });
  socket.on('connect_error', (err) => {
    // A handshake refused for its token is a 403 (allowRequest) the client reports as a transport error.
    const unauthorized = /unauthori[sz]ed|token/i.test(err.message) || (err as { description?: unknown }).description === 403;
    h.connection(unauthorized ? 'unauthorized' : 'disconnected', unauthorized
      ? 'the service wants a token: open the dashboard with ?token=… (the value passed to hoptrace serve --token)'
      : `cannot reach the service (${err.message}); retrying…`);
  });
  // Transfer needs an ArrayBuffer of exactly the batch; copy only if we were given a view.
  const own = (b: ArrayBuffer | Uint8Array): ArrayBuffer => (b instanceof ArrayBuffer ? b : (b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
  socket.on('hops', (msg) => {
    if (!isHopsMessage(msg) || msg.session !== session) return;
    h.batch(own(msg.batch));
  });
  socket.on('depth', (msg) => {
    if (!isDepthMessage(msg) || msg.session !== session) return;
    h.depth(own(msg.batch));
  });
  socket.on('stats', (s) => {
    if (isStats(s) && s.session === session) h.stats(s);
  });
  socket.on('session-state', (s) => {
    if (!isSessionState(s) || s.session !== session) return;
    // A message about a recording leaves the session's state as it was; sessions sharing one
    // bpftrace hear each other's recordings, so only ours counts.
    if (s.recording !== undefined) {
      if (isRecordingStatus(s.recording) && s.recording.session === session) h.recording(s.recording, s.message);
      return;
    }
    h.state(s);
  });
  socket.on('topology', (t) => {
    if (!t) return;
    if (isNamespaceNames(t.namespaces)) h.names(t.namespaces);
    if (t.model !== undefined && isTopology(t.model)) h.model?.(t.model);
  });

  return {
    close() {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
