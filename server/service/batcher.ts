/**
 * Groups a feed's hop events into protobuf HopBatches by size and by time: a batch is sealed at
 * `maxEvents` events, or `maxDelayMs` after its first event (or first lost-event report). At 10
 * events/s that is a small batch every 50 ms at most; at 100,000 events/s, full batches ~200 times
 * a second. Each batch is encoded once; every client gets the same bytes.
 *
 * Sessions with depth also push notes and netfilter events: they count toward the size limit and
 * are sealed at the same moment, as a DepthBatch handed over just before the HopBatch, so a client
 * receives them in step with the hops they explain.
 */
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { encodeBatch } from '../../shared/wire.js';
import { encodeDepthBatch } from '../../shared/netfilter/wire.js';

export interface BatchingOptions {
  readonly maxEvents: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_BATCHING: BatchingOptions = { maxEvents: 512, maxDelayMs: 50 };

export interface EncodedBatch {
  readonly seq: number;
  readonly bytes: Uint8Array;
  readonly events: number;
  readonly lostKernel: number;
}

/** A sealed DepthBatch (its own sequence: depth batches are rarer than hop batches). */
export interface EncodedDepthBatch {
  readonly seq: number;
  readonly bytes: Uint8Array;
  readonly notes: number;
  readonly netfilter: number;
}

export class HopBatcher {
  private events: HopEvent[] = [];
  private notes: HopNote[] = [];
  private netfilter: NetfilterEvent[] = [];
  private lost = 0;
  /** Seq of the last sealed depth batch. */
  depthSeq = 0;
  /** Called with each sealed depth batch, before the hop batch sealed with it. */
  onDepth: ((batch: EncodedDepthBatch) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Seq of the last sealed batch; the first batch is 1 so that 0 means "none yet". */
  seq = 0;

  constructor(private readonly opts: BatchingOptions, private readonly onBatch: (batch: EncodedBatch) => void) {}

  /** Events waiting for the current batch to be sealed. */
  get pendingEvents(): number {
    return this.events.length;
  }

  push(ev: HopEvent): void {
    this.events.push(ev);
    this.sealIfFull();
  }

  pushNote(note: HopNote): void {
    this.notes.push(note);
    this.sealIfFull();
  }

  pushNetfilter(ev: NetfilterEvent): void {
    this.netfilter.push(ev);
    this.sealIfFull();
  }

  private sealIfFull(): void {
    if (this.events.length + this.notes.length + this.netfilter.length >= this.opts.maxEvents) this.flush();
    else this.arm();
  }

  addLost(count: number): void {
    this.lost += count;
    this.arm();
  }

  /** Seals whatever is pending now (no-op when nothing is). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.notes.length > 0 || this.netfilter.length > 0) {
      const notes = this.notes;
      const netfilter = this.netfilter;
      this.notes = [];
      this.netfilter = [];
      this.depthSeq++;
      const bytes = encodeDepthBatch({ notes, netfilter, seq: this.depthSeq });
      this.onDepth?.({ seq: this.depthSeq, bytes, notes: notes.length, netfilter: netfilter.length });
    }
    if (this.events.length === 0 && this.lost === 0) return;
    const events = this.events;
    const lostKernel = this.lost;
    this.events = [];
    this.lost = 0;
    this.seq++;
    this.onBatch({ seq: this.seq, bytes: encodeBatch({ events, seq: this.seq, lostKernel }), events: events.length, lostKernel });
  }

  /** Drops pending events without sending them and stops the timer. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.events = [];
    this.notes = [];
    this.netfilter = [];
    this.lost = 0;
  }

  private arm(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.opts.maxDelayMs);
  }
}
