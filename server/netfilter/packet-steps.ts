/**
 * Glue between a trace's reconstructed packets and the netfilter tracer: packets wait a moment
 * (the monitors' events arrive after the hops), then leave with their `netfilter` steps attached.
 * `trace --netfilter` uses this; the holding itself is shared/netfilter/steps-queue.ts, which the
 * service, the dashboard's worker and replay use too.
 */
import { EventEmitter } from 'node:events';
import { execa } from 'execa';
import type { FilterAst } from '../../shared/filter/index.js';
import type { Packet } from '../../shared/packet.js';
import { NetfilterStepsQueue, DEFAULT_STEPS_DELAY_NS } from '../../shared/netfilter/steps-queue.js';
import { kernelNowNs } from '../clock.js';
import { NetfilterTracer, type NetfilterTracerOptions } from './tracer.js';
import { CannotTraceError } from '../trace-session.js';

export interface PacketStepsOptions extends NetfilterTracerOptions {
  /** How long a finished packet waits for its netfilter events (ns after its last hop). */
  readonly delayNs?: number;
}

/** Checks that nft and nsenter can run; one sentence per problem. */
export async function netfilterPreflight(): Promise<string[]> {
  const problems: string[] = [];
  const nft = await execa('nft', ['--version'], { reject: false });
  if (nft.failed || nft.exitCode !== 0) problems.push('--netfilter needs nft (nftables): run `hoptrace setup` as root (it installs nftables).');
  const ns = await execa('nsenter', ['--version'], { reject: false });
  if (ns.failed || ns.exitCode !== 0) problems.push('--netfilter needs nsenter (util-linux).');
  if (process.getuid?.() !== 0) problems.push('--netfilter must run as root to add nft tables in each namespace.');
  return problems;
}

export class PacketNetfilterSteps extends EventEmitter<{ warning: [string] }> {
  readonly tracer: NetfilterTracer;
  /** The hold-and-attach step the service, the dashboard and replay use too, on the kernel clock here. */
  private readonly queue: NetfilterStepsQueue;
  private readonly delayNs: number;
  private readonly now: () => number;
  private readonly seenNetns = new Set<number>();

  constructor(opts: PacketStepsOptions = {}) {
    super();
    this.now = opts.now ?? kernelNowNs;
    this.delayNs = opts.delayNs ?? DEFAULT_STEPS_DELAY_NS;
    this.queue = new NetfilterStepsQueue({ delayNs: this.delayNs });
    this.tracer = new NetfilterTracer(opts);
    this.tracer.on('event', (ev) => this.queue.add(ev));
    this.tracer.on('warning', (w) => this.emit('warning', w));
  }

  /** Checks the host, then starts tracing in every namespace. Throws CannotTraceError (sentences naming the fix). */
  async start(filter: FilterAst): Promise<void> {
    const problems = await netfilterPreflight();
    if (problems.length > 0) throw new CannotTraceError(problems);
    await this.tracer.start(filter);
  }

  /** A hop was seen in `netns`: make sure that namespace is traced too. */
  noteNetns(netns: number): void {
    if (this.seenNetns.has(netns)) return;
    this.seenNetns.add(netns);
    void this.tracer.trackNetns(netns);
  }

  /** Queues finished packets; returns those whose wait is over, with their steps. */
  pass(packets: readonly Packet[]): Packet[] {
    return this.queue.pass(packets, this.now());
  }

  /** End of the trace: waits out the delay once, then returns every queued packet with its steps. */
  async finish(last: readonly Packet[]): Promise<Packet[]> {
    if (this.queue.pending + last.length > 0) await new Promise((r) => setTimeout(r, this.delayNs / 1e6));
    return this.queue.flush(last);
  }

  stop(): Promise<void> {
    return this.tracer.stop();
  }
}
