/**
 * The filter rule of a live trace, with the flow memory the probes have (probes/emit.bt @flows).
 * A connection made from a namespace to an address its OUTPUT NAT rewrites (`curl
 * 127.0.0.1:18080` to a published port) matches `tcp port 18080` only by what its socket sent
 * (sentMatches): no hop of it carries 18080. Its replies carry it only after a de-NAT a traced
 * hop may never show (TCP frees the delivered reply without a tracepoint). The kernel follows
 * them by the flow its requests left; so does this: the tuples of a packet found by its socket
 * are remembered (both directions) for FLOW_MEMORY_NS, and a later packet showing one of them
 * matches too. Packets that match by their hops are not remembered: for them the rule stays
 * "any hop matches", as everywhere else.
 */
import type { FilterAst } from './ast.js';
import { hopsMatch, sentMatches, type FilterPacket } from './match.js';

/** As long as the probes remember a flow (probes/assemble.ts FLOW_MEMORY_NS). */
export const SENT_FLOW_MEMORY_NS = 10_000_000_000;

/** What FlowFilter needs of a packet: FilterPacket with hop times (kernel ns). */
export interface TimedFilterPacket extends FilterPacket {
  readonly hops: ReadonlyArray<FilterPacket['hops'][number] & { readonly t: number }>;
}

export class FlowFilter {
  /** Tuple key → time of the last packet that showed it. */
  private readonly flows = new Map<string, number>();
  private sweepAt = 0;

  constructor(
    readonly ast: FilterAst,
    private readonly memoryNs = SENT_FLOW_MEMORY_NS,
  ) {}

  accepts(packet: TimedFilterPacket): boolean {
    if (hopsMatch(this.ast, packet)) return true;
    const t = packet.hops[0]?.t ?? 0;
    const keys = packet.hops.map((h) => `${packet.proto} ${h.src} ${h.sport} ${h.dst} ${h.dport}`);
    if (!sentMatches(this.ast, packet)) {
      const known = keys.some((k) => {
        const seen = this.flows.get(k);
        return seen !== undefined && t - seen < this.memoryNs;
      });
      if (!known) return false;
    }
    const last = packet.hops[packet.hops.length - 1]?.t ?? t;
    for (const h of packet.hops) {
      this.flows.set(`${packet.proto} ${h.src} ${h.sport} ${h.dst} ${h.dport}`, last);
      this.flows.set(`${packet.proto} ${h.dst} ${h.dport} ${h.src} ${h.sport}`, last);
    }
    // Forget stale flows now and then, so a long trace's memory stays bounded by its live flows.
    if (this.flows.size > 4096 && last > this.sweepAt) {
      for (const [k, seen] of this.flows) if (last - seen >= this.memoryNs) this.flows.delete(k);
      this.sweepAt = last + this.memoryNs;
    }
    return true;
  }
}
