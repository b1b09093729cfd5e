/**
 * Puts observed packets next to the model: each packet's expected path and where it diverged
 * (shared/topology), and which addresses are local to which namespace (so a packet received in
 * the namespace that owns its destination counts as delivered). One instance per topology
 * version; simulations are cached per flow since a flow's packets all take the same path.
 * The NATed connections that expected paths create are remembered (shared/topology/conntrack.ts)
 * so that replies and later packets are expected with conntrack's NAT, as the kernel applies
 * it; pass the previous instance when the topology changes to keep them.
 */
import type { Packet } from './packet.js';
import type { Topology } from './topology/model.js';
import { flowFromPacket, comparePaths, type PacketExpectation } from './topology/compare.js';
import { simulatePath, FlowError, type ExpectedPath } from './topology/simulate.js';
import { ConntrackTable } from './topology/conntrack.js';

export type AnnotatedPacket = Packet & PacketExpectation;

const CACHE_MAX = 10_000;

export class PathExpectations {
  private readonly local = new Map<number, Set<string>>();
  private readonly cache = new Map<string, ExpectedPath | null>();
  private readonly conntrack: ConntrackTable;
  /** Model errors already reported through onError (each once). */
  private readonly reported = new Set<string>();

  /**
   * @param previous the instance for the topology before a change: its known connections carry over.
   * @param onError told (once per message) when the simulator failed on a packet; the packet
   *   then has no expectation rather than ending the trace.
   */
  constructor(
    private readonly topology: Topology,
    previous?: PathExpectations,
    private readonly onError?: (message: string) => void,
  ) {
    this.conntrack = previous?.conntrack ?? new ConntrackTable();
    for (const ns of topology.namespaces) {
      const set = new Set<string>();
      for (const itf of ns.interfaces) for (const cidr of itf.addrs) set.add(cidr.split('/')[0] ?? cidr);
      this.local.set(ns.netns, set);
    }
  }

  /** A new instance for a changed topology that keeps the connections this one knows. */
  withTopology(topology: Topology): PathExpectations {
    return new PathExpectations(topology, this, this.onError);
  }

  /** How many connection directions the model follows (for tests and stats). */
  get knownConnections(): number {
    return this.conntrack.size;
  }

  isLocal = (netns: number, addr: string): boolean => this.local.get(netns)?.has(addr) ?? false;

  annotate(packet: Packet): AnnotatedPacket {
    const flow = flowFromPacket(packet);
    if (!flow) return { ...packet, expected: null, divergence: null };
    const key = `${flow.from}|${flow.iif ?? ''}|${flow.proto}|${flow.src}|${flow.sport}|${flow.dst}|${flow.dport}`;
    let expected = this.cache.get(key);
    try {
      if (expected === undefined) {
        try {
          expected = simulatePath(this.topology, { ...flow, conntrack: this.conntrack });
        } catch (e) {
          if (!(e instanceof FlowError)) throw e;
          expected = null;
        }
        // A new connection changes what its replies (and flows simulated before) expect.
        let added = false;
        for (const c of expected?.connections ?? []) if (this.conntrack.add(c)) added = true;
        if (added || this.cache.size >= CACHE_MAX) this.cache.clear();
        this.cache.set(key, expected);
      }
      const divergence = expected ? comparePaths(packet.hops, expected, { dropReason: packet.drop?.reason ?? null, topology: this.topology }) : null;
      return { ...packet, expected, divergence };
    } catch (e) {
      // A model the simulator trips over must not end a trace: this packet goes without.
      const message = `expected path of a packet from netns ${flow.from} not computed: ${e instanceof Error ? e.message : String(e)}`;
      if (!this.reported.has(message)) {
        this.reported.add(message);
        this.onError?.(message);
      }
      this.cache.set(key, null);
      return { ...packet, expected: null, divergence: null };
    }
  }
}
