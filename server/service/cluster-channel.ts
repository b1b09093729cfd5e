/**
 * One /cluster socket.io client's outgoing stream on a hub (issue 17), with the single host's
 * backpressure (server/service/client-channel.ts): stitched packets wait in this client's own
 * bounded queue and are handed to socket.io only while engine.io's write buffer for the
 * connection is short, so a client that stops reading soon stops draining, its queue fills, and
 * the oldest lots of packets are dropped — counted per session (`droppedPackets`, `droppedLots`),
 * said to the client in its `cluster` view (`stream`) and added to the hub's totals
 * (GET /api/cluster `streamDrops`). A volatile emit would have dropped them unseen.
 *
 * The `cluster` view is latest-wins and jumps the queue; `topology` and `session-ended` are never
 * dropped for lag (they are rare) and keep their place among the packets.
 */
import type { Socket } from 'socket.io';

export interface ClusterChannelLimits {
  /** Lots of packets (one per hub tick and session) queued before the oldest is dropped. */
  readonly maxLots: number;
  /** Packets queued before the oldest lot is dropped. */
  readonly maxPackets: number;
  /** engine.io packets allowed in the connection's write buffer. */
  readonly maxEnginePackets: number;
}

export const DEFAULT_CLUSTER_CHANNEL_LIMITS: ClusterChannelLimits = { maxLots: 64, maxPackets: 8192, maxEnginePackets: 8 };

/** What the hub counts over every client: packets and lots dropped for slow /cluster clients. */
export interface StreamDrops {
  packets: number;
  lots: number;
}

/** A client's part of a session's stream, sent with its `cluster` view. */
export interface ClusterStreamState {
  readonly session: string;
  /** Packets of the session dropped for this client (its connection too slow), since it follows it. */
  readonly droppedPackets: number;
  readonly droppedLots: number;
  /** Packets waiting for the connection. */
  readonly queuedPackets: number;
}

type Outgoing =
  | { readonly kind: 'packets'; readonly session: string; readonly packets: readonly unknown[] }
  | { readonly kind: 'control'; readonly event: 'topology' | 'session-ended'; readonly payload: object };

const MAX_CONTROL = 256;

export class ClusterChannel {
  private queue: Outgoing[] = [];
  private lots = 0;
  private packets = 0;
  private control = 0;
  private view: (() => object) | null = null;
  private readonly dropped = new Map<string, { packets: number; lots: number }>();
  private engineBuffered = 0;
  private pumping = false;
  private closed = false;

  constructor(private readonly socket: Socket, private readonly limits: ClusterChannelLimits, private readonly totals: StreamDrops) {
    const conn = socket.conn;
    // engine.io's write buffer, as ClientChannel follows it: packetCreate adds one, flush empties it, drain follows.
    conn.on('packetCreate', () => {
      this.engineBuffered++;
    });
    conn.on('flush', () => {
      this.engineBuffered = 0;
    });
    conn.on('drain', () => this.pump());
  }

  /** This client's part of `session`'s stream. */
  state(session: string): ClusterStreamState {
    const d = this.dropped.get(session);
    let queued = 0;
    for (const o of this.queue) if (o.kind === 'packets' && o.session === session) queued += o.packets.length;
    return { session, droppedPackets: d?.packets ?? 0, droppedLots: d?.lots ?? 0, queuedPackets: queued };
  }

  sendPackets(session: string, packets: readonly unknown[]): void {
    if (this.closed || packets.length === 0) return;
    this.queue.push({ kind: 'packets', session, packets });
    this.lots++;
    this.packets += packets.length;
    while (this.lots > this.limits.maxLots || (this.packets > this.limits.maxPackets && this.lots > 1)) this.dropOldestLot();
    this.pump();
  }

  sendControl(event: 'topology' | 'session-ended', payload: object): void {
    if (this.closed) return;
    this.queue.push({ kind: 'control', event, payload });
    if (++this.control > MAX_CONTROL) {
      const i = this.queue.findIndex((x) => x.kind === 'control');
      if (i >= 0) this.queue.splice(i, 1);
      this.control--;
    }
    this.pump();
  }

  /** The cluster view, built when it goes out (latest wins). */
  sendView(build: () => object): void {
    if (this.closed) return;
    this.view = build;
    this.pump();
  }

  /** Forgets a session's waiting packets and counts (the client follows another). */
  forget(session: string): void {
    this.queue = this.queue.filter((o) => {
      if (o.kind !== 'packets' || o.session !== session) return true;
      this.lots--;
      this.packets -= o.packets.length;
      return false;
    });
    this.dropped.delete(session);
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.view = null;
  }

  private dropOldestLot(): void {
    const i = this.queue.findIndex((o) => o.kind === 'packets');
    const o = this.queue[i];
    if (!o || o.kind !== 'packets') return;
    this.queue.splice(i, 1);
    this.lots--;
    this.packets -= o.packets.length;
    const d = this.dropped.get(o.session) ?? { packets: 0, lots: 0 };
    d.packets += o.packets.length;
    d.lots++;
    this.dropped.set(o.session, d);
    this.totals.packets += o.packets.length;
    this.totals.lots++;
  }

  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.engineBuffered < this.limits.maxEnginePackets && this.socket.connected) {
        if (this.view) {
          const build = this.view;
          this.view = null;
          this.socket.emit('cluster', build());
          continue;
        }
        const next = this.queue.shift();
        if (!next) break;
        if (next.kind === 'packets') {
          this.lots--;
          this.packets -= next.packets.length;
          this.socket.emit('packets', next.packets);
        } else {
          this.control--;
          this.socket.emit(next.event, next.payload);
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
