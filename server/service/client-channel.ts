/**
 * One socket.io client's outgoing stream, with backpressure that costs nobody else anything.
 *
 * Messages wait in this client's own bounded queue and are handed to socket.io only while
 * engine.io's write buffer for the connection is short. engine.io writes one round of packets to
 * the transport at a time and buffers the rest until the transport says it is writable again (the
 * websocket's write callback, the next long-poll), so a client that stops reading soon stops
 * draining: its queue fills and the oldest batches are dropped — counted per session and reported
 * in `stats.droppedBatches`, and visible to the client as a jump in `seq`. Batch bytes are shared
 * by every client of a feed, so a stalled client holds references, not copies.
 *
 * `stats` are latest-wins (one pending per session) and jump the queue; session-state and
 * topology messages are never dropped for lag (they are rare) and keep their place among batches.
 */
import type { Socket } from 'socket.io';
import type {
  ClientToServerEvents, ServerToClientEvents, SessionStateMessage, StreamStats, TopologyMessage,
} from '../../shared/stream-events.js';
import type { EncodedBatch, EncodedDepthBatch } from './batcher.js';
import type { SampledStats } from '../../shared/api-types.js';

export type ServiceSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

export interface ChannelLimits {
  /** Batches queued per client before the oldest is dropped. */
  readonly maxBatches: number;
  /** Bytes of batches queued per client before the oldest is dropped. */
  readonly maxBytes: number;
  /** engine.io packets allowed in the connection's write buffer (a binary event is two). */
  readonly maxEnginePackets: number;
}

export const DEFAULT_CHANNEL_LIMITS: ChannelLimits = { maxBatches: 128, maxBytes: 8 * 1024 * 1024, maxEnginePackets: 8 };

type Outgoing =
  | { readonly kind: 'batch'; readonly session: string; readonly batch: EncodedBatch }
  // Depth batches (notes, netfilter events) count as batches: same limits, same drop-oldest.
  | { readonly kind: 'depth'; readonly session: string; readonly batch: EncodedDepthBatch }
  | { readonly kind: 'state'; readonly msg: SessionStateMessage }
  | { readonly kind: 'topology'; readonly msg: TopologyMessage };

/** Control messages (state, topology) a client may have pending before the oldest goes. */
const MAX_CONTROL = 256;

export class ClientChannel {
  private queue: Outgoing[] = [];
  private queuedBatches = 0;
  private queuedBytes = 0;
  private queuedControl = 0;
  private readonly pendingStats = new Map<string, StreamStats & SampledStats>();
  private readonly dropped = new Map<string, number>();
  private engineBuffered = 0;
  private pumping = false;
  private closed = false;
  /** Batches handed to socket.io, all sessions (for the load test and logs). */
  sentBatches = 0;

  constructor(private readonly socket: ServiceSocket, private readonly limits: ChannelLimits) {
    const conn = socket.conn;
    // engine.io's write buffer, followed through its public events: packetCreate adds one,
    // flush hands the whole buffer to the transport, drain follows the flush.
    conn.on('packetCreate', () => {
      this.engineBuffered++;
    });
    conn.on('flush', () => {
      this.engineBuffered = 0;
    });
    conn.on('drain', () => this.pump());
  }

  get id(): string {
    return this.socket.id;
  }

  droppedFor(session: string): number {
    return this.dropped.get(session) ?? 0;
  }

  queuedFor(session: string): number {
    let n = 0;
    for (const o of this.queue) if ((o.kind === 'batch' || o.kind === 'depth') && o.session === session) n++;
    return n;
  }

  sendBatch(session: string, batch: EncodedBatch): void {
    this.enqueueBatch({ kind: 'batch', session, batch });
  }

  sendDepth(session: string, batch: EncodedDepthBatch): void {
    this.enqueueBatch({ kind: 'depth', session, batch });
  }

  private enqueueBatch(o: Extract<Outgoing, { kind: 'batch' | 'depth' }>): void {
    if (this.closed) return;
    const batch = o.batch;
    this.queue.push(o);
    this.queuedBatches++;
    this.queuedBytes += batch.bytes.byteLength;
    while (this.queuedBatches > this.limits.maxBatches || (this.queuedBytes > this.limits.maxBytes && this.queuedBatches > 1)) {
      this.dropOldestBatch();
    }
    this.pump();
  }

  sendState(msg: SessionStateMessage): void {
    this.pushControl({ kind: 'state', msg });
  }

  sendTopology(msg: TopologyMessage): void {
    // A topology message is a full snapshot: a newer one replaces any still waiting, keeping the
    // waiting one's model when the newer carries names only (the model is still the latest).
    const before = this.queue.length;
    let model: Pick<TopologyMessage, 'model' | 'changes'> = {};
    this.queue = this.queue.filter((o) => {
      if (o.kind !== 'topology') return true;
      if (o.msg.model) model = { model: o.msg.model, ...(o.msg.changes ? { changes: o.msg.changes } : {}) };
      return false;
    });
    this.queuedControl -= before - this.queue.length;
    this.pushControl({ kind: 'topology', msg: msg.model ? msg : { ...msg, ...model } });
  }

  /** Stats carry the session's sample rate beside StreamStats (shared/api-types.ts SampledStats). */
  sendStats(msg: StreamStats & SampledStats): void {
    if (this.closed) return;
    this.pendingStats.set(msg.session, msg);
    this.pump();
  }

  /** Forgets a session's pending batches (after unsubscribe). */
  forget(session: string): void {
    this.queue = this.queue.filter((o) => {
      if ((o.kind !== 'batch' && o.kind !== 'depth') || o.session !== session) return true;
      this.queuedBatches--;
      this.queuedBytes -= o.batch.bytes.byteLength;
      return false;
    });
    this.pendingStats.delete(session);
    this.dropped.delete(session);
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.pendingStats.clear();
  }

  private pushControl(o: Outgoing): void {
    if (this.closed) return;
    this.queue.push(o);
    this.queuedControl++;
    if (this.queuedControl > MAX_CONTROL) {
      const i = this.queue.findIndex((x) => x.kind !== 'batch' && x.kind !== 'depth');
      if (i >= 0) this.queue.splice(i, 1);
      this.queuedControl--;
    }
    this.pump();
  }

  private dropOldestBatch(): void {
    const i = this.queue.findIndex((o) => o.kind === 'batch' || o.kind === 'depth');
    const o = this.queue[i];
    if (!o || (o.kind !== 'batch' && o.kind !== 'depth')) return;
    this.queue.splice(i, 1);
    this.queuedBatches--;
    this.queuedBytes -= o.batch.bytes.byteLength;
    this.dropped.set(o.session, (this.dropped.get(o.session) ?? 0) + 1);
  }

  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.engineBuffered < this.limits.maxEnginePackets && this.socket.connected) {
        const stats = this.pendingStats.entries().next();
        if (!stats.done) {
          const [session, msg] = stats.value;
          this.pendingStats.delete(session);
          // The drop count can have grown since the stats were built: send the current one.
          this.socket.emit('stats', { ...msg, droppedBatches: this.droppedFor(session), queuedBatches: this.queuedFor(session) });
          continue;
        }
        const next = this.queue.shift();
        if (!next) break;
        if (next.kind === 'batch') {
          this.queuedBatches--;
          this.queuedBytes -= next.batch.bytes.byteLength;
          this.sentBatches++;
          this.socket.emit('hops', { session: next.session, batch: next.batch.bytes });
        } else if (next.kind === 'depth') {
          this.queuedBatches--;
          this.queuedBytes -= next.batch.bytes.byteLength;
          this.socket.emit('depth', { session: next.session, batch: next.batch.bytes });
        } else {
          this.queuedControl--;
          if (next.kind === 'state') this.socket.emit('session-state', next.msg);
          else this.socket.emit('topology', next.msg);
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
