/**
 * Groups a feed's hop events into protobuf HopBatches by size and by time: a batch is sealed at
 * `maxEvents` events, or `maxDelayMs` after its first event (or first lost-event report). At 10
 * events/s that is a small batch every 50 ms at most; at 100,000 events/s, full batches ~200 times
 * a second. Each batch is encoded once; every client gets the same bytes.
 */
import type { HopEvent } from '../../shared/hop-event.js';
import { encodeBatch } from '../../shared/wire.js';

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

export class HopBatcher {
  private events: HopEvent[] = [];
  private lost = 0;
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
    if (this.events.length >= this.opts.maxEvents) this.flush();
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
    this.lost = 0;
  }

  private arm(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.opts.maxDelayMs);
  }
}
