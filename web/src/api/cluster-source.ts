/**
 * Hub mode's live stream: the socket.io namespace /cluster of `serve --hub` — `cluster` (nodes,
 * links, clock offsets) every second and `packets` (stitched packets, JSON) as the hub makes
 * them (of the session the socket follows: the cluster session `hub` until `follow` names
 * another), `topology` when a node's topology changed, `session-ended` when the followed session
 * ends. Same token handshake as the session stream.
 */
import { io, type Socket } from 'socket.io-client';
import type { Packet } from '../../../shared/packet.js';
import { isClusterPackets, isClusterView, type ClusterView } from '../domain/cluster.js';
import type { ConnectionState } from './live-source.js';

export interface ClusterHandlers {
  connection(state: ConnectionState, detail: string): void;
  cluster(view: ClusterView): void;
  packets(packets: Packet[]): void;
  /** A node's topology changed (namespaces by name): the cluster model is worth re-reading. */
  topology?(change: { node: string; added: string[]; removed: string[]; changed: string[] }): void;
  /** The followed session ended (deleted, or nobody watched it). */
  sessionEnded?(session: string): void;
}

export interface ClusterSource {
  /** Follows another session's packets (the hub's sessions: GET /api/sessions); resolves with the hub's answer. */
  follow(session: string): Promise<{ ok: boolean; error?: { message: string } }>;
  close(): void;
}

export function connectCluster(token: string | null, h: ClusterHandlers): ClusterSource {
  const socket: Socket = io('/cluster', { path: '/socket.io', transports: ['websocket', 'polling'], query: token ? { token } : {}, reconnectionDelayMax: 5000 });
  h.connection('connecting', 'connecting to the hub…');
  /** A new connection follows the cluster session: after a reconnect, the one picked is asked for again. */
  let following = 'hub';
  const follow = (session: string): Promise<{ ok: boolean; error?: { message: string } }> => {
    following = session;
    return socket.timeout(10_000).emitWithAck('subscribe', { session }).catch((err: Error) => ({ ok: false, error: { message: err.message } }));
  };
  socket.on('connect', () => {
    h.connection('connected', '');
    if (following !== 'hub') void follow(following);
  });
  socket.on('disconnect', (reason) => {
    h.connection('disconnected', reason === 'io server disconnect' ? 'the hub closed the connection' : 'connection lost; retrying…');
    if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 2000);
  });
  socket.on('connect_error', (err) => {
    const unauthorized = /unauthori[sz]ed|token/i.test(err.message);
    h.connection(unauthorized ? 'unauthorized' : 'disconnected', unauthorized
      ? 'the service wants a token: open the dashboard with ?token=… (the value passed to hoptrace serve --token)'
      : `cannot reach the hub (${err.message}); retrying…`);
  });
  socket.on('cluster', (v: unknown) => {
    if (isClusterView(v)) h.cluster(v);
  });
  socket.on('packets', (p: unknown) => {
    if (isClusterPackets(p)) h.packets(p);
  });
  socket.on('topology', (c: unknown) => {
    const ok = typeof c === 'object' && c !== null && typeof (c as { node?: unknown }).node === 'string';
    if (ok) h.topology?.(c as { node: string; added: string[]; removed: string[]; changed: string[] });
  });
  socket.on('session-ended', (e: unknown) => {
    const id = typeof e === 'object' && e !== null ? (e as { session?: unknown }).session : undefined;
    if (typeof id === 'string') h.sessionEnded?.(id);
  });
  return {
    follow,
    close() {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
