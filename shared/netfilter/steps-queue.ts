/**
 * Reconstructed packets waiting for their netfilter steps: the monitors' events reach hoptrace
 * after the packet's hops (nft prints with a delay), so a finished packet is held until the clock
 * has moved `delayNs` past its last hop, then leaves annotated by the NetfilterCorrelator. The
 * clock is whatever the host goes by — the kernel clock live (the service's packet tail), the
 * newest event time in the browser, the recorder's clock records in a replay — so the same steps
 * come out wherever the same events go in. Pure: no timers; callers pass the time.
 */
import type { Packet } from '../packet.js';
import type { NetfilterEvent } from './types.js';
import { NetfilterCorrelator, type CorrelateOptions } from './correlate.js';

export interface StepsQueueOptions extends CorrelateOptions {
  /** How long (ns) a finished packet waits after its last hop for its events. Default 300 ms. */
  readonly delayNs?: number;
  /** Events older than the cutoff by this much are forgotten (ns). Default 10 s. */
  readonly keepNs?: number;
}

export const DEFAULT_STEPS_DELAY_NS = 300_000_000;

export class NetfilterStepsQueue {
  readonly correlator: NetfilterCorrelator;
  private readonly delayNs: number;
  private readonly keepNs: number;
  private waiting: Packet[] = [];

  constructor(opts: StepsQueueOptions = {}) {
    this.correlator = new NetfilterCorrelator(opts);
    this.delayNs = opts.delayNs ?? DEFAULT_STEPS_DELAY_NS;
    this.keepNs = opts.keepNs ?? 10_000_000_000;
  }

  /** A netfilter event, in the order it was received. */
  add(ev: NetfilterEvent): void {
    this.correlator.add(ev);
  }

  /** Queues finished packets; returns those whose wait is over at `nowNs`, with their steps. */
  pass(packets: readonly Packet[], nowNs: number): Packet[] {
    for (const p of packets) this.waiting.push(p);
    if (this.waiting.length === 0) return [];
    const cutoff = nowNs - this.delayNs;
    const out: Packet[] = [];
    const keep: Packet[] = [];
    for (const p of this.waiting) {
      const last = p.hops[p.hops.length - 1]?.t ?? 0;
      (last <= cutoff ? out : keep).push(p);
    }
    this.waiting = keep;
    // Annotate before pruning: an event may be older than the cutoff and still be this packet's.
    const done = out.map((p) => this.correlator.annotate(p));
    this.correlator.prune(cutoff - this.keepNs);
    return done;
  }

  /** End of input: every queued packet (and `last`) now, with the steps known so far. */
  flush(last: readonly Packet[] = []): Packet[] {
    const all = [...this.waiting, ...last];
    this.waiting = [];
    return all.map((p) => this.correlator.annotate(p));
  }

  /** The earliest first-hop time of a packet waiting (Infinity when none waits). */
  get earliest(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const p of this.waiting) min = Math.min(min, p.hops[0]?.t ?? min);
    return min;
  }

  /** Packets waiting for their steps. */
  get pending(): number {
    return this.waiting.length;
  }
}
