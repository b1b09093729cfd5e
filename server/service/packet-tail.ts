/**
 * The server's own reconstruction of a feed, for GET /api/sessions/:id/packets: the shared
 * engine over the same events the clients get, keeping the last `capacity` finished packets.
 * The kernel clock is CLOCK_MONOTONIC (bpf_ktime_get_ns), which is also what
 * process.hrtime reads, so `tick()` can advance the engine when traffic stops.
 *
 * With depth, notes join their packets in the engine (as in `trace --notes`) and finished
 * packets wait for their netfilter steps in a NetfilterStepsQueue (as in `trace --netfilter`),
 * so /packets has the shape `trace --json` prints.
 */
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { Reconstructor, type ReconstructOptions } from '../../shared/reconstruct.js';
import { NetfilterStepsQueue } from '../../shared/netfilter/steps-queue.js';
import { kernelNowNs } from '../clock.js';


export class PacketTail {
  private engine: Reconstructor;
  private readonly ring: Array<Packet | undefined>;
  private next = 0;
  /** Packets finished (and accepted by the filter) since the start. */
  total = 0;

  private readonly steps: NetfilterStepsQueue | undefined;

  constructor(private readonly capacity: number, private readonly options: ReconstructOptions, depth: { readonly netfilter?: boolean } = {}) {
    this.ring = new Array<Packet | undefined>(capacity);
    this.engine = new Reconstructor(options);
    this.steps = depth.netfilter ? new NetfilterStepsQueue() : undefined;
  }

  push(ev: HopEvent): void {
    // Finished packets are collected on tick(), not per event.
    this.engine.push(ev);
  }

  pushNote(note: HopNote): void {
    this.engine.pushNote(note);
  }

  addNetfilter(ev: NetfilterEvent): void {
    this.steps?.add(ev);
  }

  /** Releases waiting events and finishes idle packets (up to the kernel clock's now once no events come). */
  tick(nowNs = kernelNowNs()): void {
    // The events' own clock while they arrive (Reconstructor.idleClock): a service behind by
    // seconds does not release past the hops still in its pipe; the wall clock once quiet.
    this.engine.advance(this.engine.idleClock(nowNs));
    const done = this.engine.drain();
    this.collect(this.steps ? this.steps.pass(done, nowNs) : done);
  }

  /**
   * bpftrace stopped: finish every packet in flight (their fate is what was seen) and start
   * afresh, since the next bpftrace's events cannot continue them.
   */
  cut(): void {
    const done = this.engine.flush();
    // Their netfilter events may still be on their way: they wait in the queue like any other.
    this.collect(this.steps ? this.steps.pass(done, kernelNowNs()) : done);
    this.engine = new Reconstructor(this.options);
  }

  /** The newest `limit` packets, oldest first. */
  last(limit: number): Packet[] {
    const n = Math.min(limit, this.capacity, this.total);
    const out: Packet[] = [];
    for (let i = n; i > 0; i--) {
      const p = this.ring[(this.next - i + this.capacity) % this.capacity];
      if (p) out.push(p);
    }
    return out;
  }

  private collect(packets: Packet[]): void {
    for (const p of packets) {
      this.ring[this.next] = p;
      this.next = (this.next + 1) % this.capacity;
      this.total++;
    }
  }
}
