/**
 * Hub mode's live stream: the socket.io namespace /cluster of `serve --hub` — `cluster` (nodes,
 * links, clock offsets) every second and `packets` (stitched packets, JSON) as the hub makes
 * them. Same token handshake as the session stream.
 */
import { io, type Socket } from 'socket.io-client';
import type { Packet } from '../../../shared/packet.js';
import { isClusterPackets, isClusterView, type ClusterView } from '../domain/cluster.js';
import type { ConnectionState } from './live-source.js';

export interface ClusterHandlers {
  connection(state: ConnectionState, detail: string): void;
  cluster(view: ClusterView): void;
  packets(packets: Packet[]): void;
}

export function connectCluster(token: string | null, h: ClusterHandlers): { close(): void } {
  const socket: Socket = io('/cluster', { path: '/socket.io', transports: ['websocket', 'polling'], query: token ? { token } : {}, reconnectionDelayMax: 5000 });
  h.connection('connecting', 'connecting to the hub…');
  socket.on('connect', () => h.connection('connected', ''));
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
  return {
    close() {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
