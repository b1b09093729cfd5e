/**
 * A node's hop-batch sequence as the hub sees it (issue 17): which batches are missing (gaps),
 * which came late and filled one, and which came twice. Pure; ClusterPipeline.batch
 * (pipeline.ts) keeps one per node and agent run.
 *
 * Batches do not always come in order or once: JetStream redelivers what a hub did not
 * acknowledge (a hub restarted between taking a batch and acking it), and after an outage a
 * batch can come after a newer one. Counting gaps as "seq minus the last seq" counts the same
 * missing batches twice when the sequence goes back and forward again. Here:
 *   - a batch above the highest seen: the batches between are missing (less those its agent said
 *     it dropped just before it: Hoptrace-Dropped, the oldest first, so the ones right after the
 *     highest seen);
 *   - a batch at or below it that is missing: it came late, and is no longer missing;
 *   - one already taken (within the last WINDOW sequence numbers): a copy, to be skipped;
 *   - one at or below it neither missing nor taken (from before the hub first heard the node,
 *     or older than the window): late, taken, no gap changes;
 *   - a heartbeat carries the sequence number of the last batch its agent made: above the
 *     highest seen, that batch and those before it are missing (until they come).
 * A new agent run restarts the sequence at 1: its batches are told apart by the run's epoch
 * (pipeline.ts keeps one BatchSequence per epoch), or, without one, by a batch whose number was
 * taken with different contents (`fingerprint`): the sequence starts again from it.
 */

/** What a batch is, in its node's sequence. */
export type SeqVerdict = 'next' | 'late' | 'duplicate' | 'restart';

export interface SeqOutcome {
  readonly verdict: SeqVerdict;
  /** Change of the number of batches missing (negative when a late one fills a gap). */
  readonly gaps: number;
}

/** Sequence numbers remembered below the highest (copies older than this are taken again). */
export const SEQ_WINDOW = 4096;
/** Missing ranges remembered (the oldest beyond these stay counted, and a late one of them is taken without filling it). */
const MAX_RANGES = 1024;

export class BatchSequence {
  /** Highest batch sequence number seen (0: none yet). */
  high = 0;
  /** Batches missing now. */
  missing = 0;
  /** Missing sequence numbers as inclusive ranges, ascending. */
  private ranges: Array<[number, number]> = [];
  /** Batches taken within the window: their fingerprints. */
  private readonly taken = new Map<number, number>();

  /**
   * One message of the sequence. `heartbeat`: a batch with no events, carrying the number of the
   * last batch made; `fingerprint`: what tells two batches of one number apart (its clock, or its
   * first event's time); `dropped`: batches its agent said it dropped just before it.
   */
  take(seq: number, heartbeat: boolean, fingerprint: number, dropped = 0): SeqOutcome {
    if (this.high === 0) {
      // The first the hub hears of this run: what came before is not counted (it may be from before the hub started).
      this.high = seq;
      if (!heartbeat) this.remember(seq, fingerprint);
      return { verdict: 'next', gaps: 0 };
    }
    if (heartbeat) {
      if (seq <= this.high) return { verdict: 'next', gaps: 0 };
      // Batch `seq` was made before the heartbeat: it and those since the highest seen are missing (until they come).
      return { verdict: 'next', gaps: this.advance(seq, seq, dropped) };
    }
    if (seq > this.high) {
      const gaps = this.advance(seq, seq - 1, dropped);
      this.remember(seq, fingerprint);
      return { verdict: 'next', gaps };
    }
    const had = this.taken.get(seq);
    if (had !== undefined) {
      if (had === fingerprint) return { verdict: 'duplicate', gaps: 0 };
      // Same number, other contents: the agent started its sequence again (an agent without
      // epochs). The old run's missing batches will not come now: they stay counted.
      this.high = seq;
      this.missing = 0;
      this.ranges = [];
      this.taken.clear();
      this.remember(seq, fingerprint);
      return { verdict: 'restart', gaps: 0 };
    }
    this.remember(seq, fingerprint);
    return { verdict: 'late', gaps: this.fill(seq) ? -1 : 0 };
  }

  /** The highest becomes `high`; batches after the old highest up to `last` are missing, less the `dropped` first. */
  private advance(high: number, last: number, dropped: number): number {
    const from = this.high + 1 + dropped;
    this.high = high;
    if (last < from) return 0;
    this.ranges.push([from, last]);
    if (this.ranges.length > MAX_RANGES) this.ranges.splice(0, this.ranges.length - MAX_RANGES);
    this.missing += last - from + 1;
    return last - from + 1;
  }

  /** A late batch: out of the missing ranges if it was there. */
  private fill(seq: number): boolean {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = this.ranges[mid]!;
      if (seq < a) hi = mid - 1;
      else if (seq > b) lo = mid + 1;
      else {
        if (a === b) this.ranges.splice(mid, 1);
        else if (seq === a) this.ranges[mid] = [a + 1, b];
        else if (seq === b) this.ranges[mid] = [a, b - 1];
        else this.ranges.splice(mid, 1, [a, seq - 1], [seq + 1, b]);
        if (this.ranges.length > MAX_RANGES) this.ranges.shift();
        this.missing--;
        return true;
      }
    }
    return false;
  }

  private remember(seq: number, fingerprint: number): void {
    this.taken.set(seq, fingerprint);
    if (this.taken.size > 2 * SEQ_WINDOW) for (const s of this.taken.keys()) if (s <= this.high - SEQ_WINDOW) this.taken.delete(s);
  }
}
