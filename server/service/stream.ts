/**
 * The live stream: socket.io handlers for subscribe/unsubscribe, fan-out of each feed's batches
 * and state changes into the subscribers' channels, periodic `stats`, and `topology` messages when
 * the set of namespaces changes (with the whole model when the live model changed). Authentication and origin checks happen in index.ts before a
 * socket gets here.
 */
import type { Server } from 'socket.io';
import type {
  ClientToServerEvents, NamespaceName, ServerToClientEvents, SubscribeAck, UnsubscribeAck,
} from '../../shared/stream-events.js';
import { SubscribeRequest } from '../../shared/stream-events.js';
import { describeZodError } from '../../shared/api-types.js';
import type { SessionRegistry, Session } from './sessions.js';
import type { FeedListener } from './feed.js';
import { ClientChannel, type ChannelLimits, type ServiceSocket } from './client-channel.js';
import type { LiveNamespaceNamer } from '../topology/namespace-names.js';
import type { NamespaceNamer } from '../../shared/namespace-names.js';
import { pairedClocks } from '../clock.js';
import type { TopologyChange } from '../topology/watch.js';

/** The host's monotonic and wall clocks as one pair (server/clock.ts reads them back to back). */
function hostClock(): { monotonicNs: number; epochMs: number } {
  const { wallNs, monoNs } = pairedClocks();
  return { monotonicNs: monoNs, epochMs: Number(wallNs) / 1e6 };
}

export type ServiceIo = Server<ClientToServerEvents, ServerToClientEvents>;

export interface StreamOptions {
  readonly registry: SessionRegistry;
  readonly limits: ChannelLimits;
  readonly statsIntervalMs: number;
  readonly names: LiveNamespaceNamer | null;
  /** The live topology model's changes (model.ts); absent: names only. */
  readonly onTopologyChange?: (listener: (change: TopologyChange) => void) => () => void;
  readonly log: (line: string) => void;
}

interface Subscription {
  readonly session: Session;
  readonly listener: FeedListener;
}

interface Client {
  readonly channel: ClientChannel;
  readonly subs: Map<string, Subscription>;
}

export interface Stream {
  /** Clients connected now. */
  readonly clientCount: number;
  close(): void;
}

function namespaceList(names: NamespaceNamer | null): NamespaceName[] {
  return names ? names.entries().map(([netns, name]) => ({ netns, name })) : [];
}

/** The ack callback a client may or may not have passed. */
function replyTo<A>(ack: unknown): (res: A) => void {
  return (res) => {
    if (typeof ack === 'function') (ack as (res: A) => void)(res);
  };
}

/** The session id of a subscribe/unsubscribe payload, or null once the client was told why not. */
function sessionOf(raw: unknown, reply: (res: { ok: false; error: { code: 'bad-request'; message: string } }) => void): string | null {
  const parsed = SubscribeRequest.safeParse(raw);
  if (parsed.success) return parsed.data.session;
  reply({ ok: false, error: { code: 'bad-request', message: describeZodError(parsed.error) } });
  return null;
}

export function attachStream(io: ServiceIo, opts: StreamOptions): Stream {
  const { registry } = opts;
  const clients = new Map<string, Client>();

  const unsubscribe = (client: Client, id: string): boolean => {
    const sub = client.subs.get(id);
    if (!sub) return false;
    client.subs.delete(id);
    sub.session.feed.removeListener(sub.listener);
    client.channel.forget(id);
    registry.unwatch(sub.session);
    return true;
  };

  io.on('connection', (socket: ServiceSocket) => {
    const client: Client = { channel: new ClientChannel(socket, opts.limits), subs: new Map() };
    clients.set(socket.id, client);

    socket.on('subscribe', (raw, ack) => {
      const reply = replyTo<SubscribeAck>(ack);
      const id = sessionOf(raw, reply);
      if (id === null) return;
      const session = registry.get(id);
      if (!session) {
        reply({ ok: false, error: { code: 'not-found', message: `no session ${id}` } });
        return;
      }
      const feed = session.feed;
      if (!client.subs.has(id)) {
        const listener: FeedListener = {
          batch: (b) => client.channel.sendBatch(id, b),
          depth: (b) => client.channel.sendDepth(id, b),
          state: (c) => client.channel.sendState({ session: id, at: Date.now(), ...c }),
        };
        registry.watch(session);
        client.subs.set(id, { session, listener });
        feed.addListener(listener);
      }
      const reasons: Record<string, string> = {};
      for (const [code, name] of feed.dropReasons?.names ?? []) reasons[String(code)] = name;
      // The ack is emitted directly, ahead of any batch still queued for this client.
      reply({
        ok: true,
        session: registry.info(session),
        dropReasons: reasons,
        namespaces: namespaceList(opts.names),
        batching: { maxEvents: feed.batching.maxEvents, maxDelayMs: feed.batching.maxDelayMs },
        clock: hostClock(),
      });
    });

    socket.on('unsubscribe', (raw, ack) => {
      const reply = replyTo<UnsubscribeAck>(ack);
      const id = sessionOf(raw, reply);
      if (id === null) return;
      if (unsubscribe(client, id)) reply({ ok: true });
      else reply({ ok: false, error: { code: 'not-found', message: `not subscribed to ${id}` } });
    });

    socket.on('disconnect', () => {
      for (const id of [...client.subs.keys()]) unsubscribe(client, id);
      client.channel.close();
      clients.delete(socket.id);
    });
  });

  // A session ended under its subscribers: tell them, then let go.
  const onEnded = (session: Session, why: string): void => {
    for (const client of clients.values()) {
      const sub = client.subs.get(session.id);
      if (!sub) continue;
      client.channel.sendState({ session: session.id, state: 'stopped', at: Date.now(), message: why });
      client.subs.delete(session.id);
      session.feed.removeListener(sub.listener);
    }
  };
  registry.on('ended', onEnded);

  const statsTimer = setInterval(() => {
    const now = Date.now();
    for (const client of clients.values()) {
      for (const [id, { session }] of client.subs) {
        const f = session.feed;
        client.channel.sendStats({
          session: id,
          at: now,
          eventsPerSec: f.eventsPerSec,
          sourceLagMs: f.sourceLagMs,
          events: f.events,
          lostKernel: f.lostKernel,
          seq: f.seq,
          droppedBatches: client.channel.droppedFor(id),
          queuedBatches: client.channel.queuedFor(id),
          bpftrace: { state: f.state, pid: f.pid, restarts: f.restarts },
          sampleRate: f.sampleRate,
        });
      }
    }
  }, opts.statsIntervalMs);
  statsTimer.unref();

  // Namespaces come and go (labs, containers): push the new list when it changes.
  let lastTopology = '';
  const sortedNames = (names: LiveNamespaceNamer): NamespaceName[] => namespaceList(names).sort((a, b) => a.netns - b.netns);
  const namesKey = (list: readonly NamespaceName[]): string => list.map((n) => `${n.netns}=${n.name}`).join(',');
  const topologyTimer = setInterval(() => {
    const names = opts.names;
    // Reading /proc for every namespace is cheap but not free: only while someone listens.
    if (!names || clients.size === 0) return;
    void names.refresh().then(() => {
      const list = sortedNames(names);
      const key = namesKey(list);
      if (key === lastTopology) return;
      lastTopology = key;
      for (const client of clients.values()) client.channel.sendTopology({ namespaces: list });
    });
  }, 2000);
  topologyTimer.unref();

  // The live model changed (interfaces, routes, bridge ports, rules, namespaces): every client gets
  // the new model, so a dashboard's topology view follows the host without polling /api/topology.
  const offTopology = opts.onTopologyChange?.((change) => {
    if (clients.size === 0) return;
    const names = opts.names;
    void (names ? names.refresh() : Promise.resolve()).then(() => {
      const list = names ? sortedNames(names) : change.topology.namespaces.map((n) => ({ netns: n.netns, name: n.name }));
      lastTopology = namesKey(list);
      const msg = { namespaces: list, model: change.topology, changes: { added: change.added, removed: change.removed, changed: change.changed } };
      for (const client of clients.values()) client.channel.sendTopology(msg);
    });
  });

  return {
    get clientCount() {
      return clients.size;
    },
    close() {
      clearInterval(statsTimer);
      clearInterval(topologyTimer);
      offTopology?.();
      registry.off('ended', onEnded);
      for (const client of clients.values()) client.channel.close();
    },
  };
}
