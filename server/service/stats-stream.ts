/**
 * The live stats stream: socket.io namespace /stats. A client subscribes to a stats session by
 * id and gets the kept history in the ack, then one `document` per interval and `state` changes.
 * The namespace shares the main one's token check (server/service/index.ts installs it).
 */
import type { Namespace } from 'socket.io';
import {
  StatsSubscribeRequest, type StatsClientToServerEvents, type StatsServerToClientEvents,
} from '../../shared/stats/api.js';
import type { StatsHub } from '../stats/hub.js';

export type StatsNamespace = Namespace<StatsClientToServerEvents, StatsServerToClientEvents>;

export function attachStatsStream(nsp: StatsNamespace, hub: StatsHub): { close(): void } {
  const onDocument = (s: { id: string }, doc: Parameters<StatsServerToClientEvents['document']>[0]['doc']): void => {
    nsp.to(s.id).emit('document', { id: s.id, doc });
  };
  const onState = (s: { id: string; state: Parameters<StatsServerToClientEvents['state']>[0]['state']; message: string | null }): void => {
    nsp.to(s.id).emit('state', { id: s.id, state: s.state, message: s.message });
  };
  hub.on('document', onDocument);
  hub.on('state', onState);
  nsp.on('connection', (socket) => {
    const watching = new Set<string>();
    socket.on('subscribe', (req, ack) => {
      if (typeof ack !== 'function') return;
      const parsed = StatsSubscribeRequest.safeParse(req);
      const s = parsed.success ? hub.get(parsed.data.id) : undefined;
      if (!s) {
        ack({ ok: false, error: { code: parsed.success ? 'not-found' : 'bad-request', message: parsed.success ? `no stats session ${parsed.data.id}` : 'subscribe takes {id: <stats session id>}' } });
        return;
      }
      if (!watching.has(s.id)) {
        watching.add(s.id);
        hub.watch(s, 1);
        void socket.join(s.id);
      }
      ack({ ok: true, session: hub.info(s), history: s.history });
    });
    socket.on('unsubscribe', (req, ack) => {
      const parsed = StatsSubscribeRequest.safeParse(req);
      const s = parsed.success ? hub.get(parsed.data.id) : undefined;
      if (s && watching.delete(s.id)) {
        hub.watch(s, -1);
        void socket.leave(s.id);
      }
      if (typeof ack === 'function') ack({ ok: s !== undefined });
    });
    socket.on('disconnect', () => {
      for (const id of watching) {
        const s = hub.get(id);
        if (s) hub.watch(s, -1);
      }
      watching.clear();
    });
  });
  return {
    close() {
      hub.off('document', onDocument);
      hub.off('state', onState);
    },
  };
}
