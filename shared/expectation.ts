/**
 * Puts observed packets next to the model: each packet's expected path and where it diverged
 * (shared/topology), and which addresses are local to which namespace (so a packet received in
 * the namespace that owns its destination counts as delivered). One instance per topology
 * version; simulations are cached per flow since a flow's packets all take the same path.
 */
import type { Packet } from './packet.js';
import type { Topology } from './topology/model.js';
import { flowFromPacket, comparePaths, type PacketExpectation } from './topology/compare.js';
import { simulatePath, FlowError, type ExpectedPath } from './topology/simulate.js';

export type AnnotatedPacket = Packet & PacketExpectation;

const CACHE_MAX = 10_000;

export class PathExpectations {
  private readonly local = new Map<number, Set<string>>();
  private readonly cache = new Map<string, ExpectedPath | null>();

  constructor(private readonly topology: Topology) {
    for (const ns of topology.namespaces) {
      const set = new Set<string>();
      for (const itf of ns.interfaces) for (const cidr of itf.addrs) set.add(cidr.split('/')[0] ?? cidr);
      this.local.set(ns.netns, set);
    }
  }

  isLocal = (netns: number, addr: string): boolean => this.local.get(netns)?.has(addr) ?? false;

  annotate(packet: Packet): AnnotatedPacket {
    const flow = flowFromPacket(packet);
    if (!flow) return { ...packet, expected: null, divergence: null };
    const key = `${flow.from}|${flow.iif ?? ''}|${flow.proto}|${flow.src}|${flow.sport}|${flow.dst}|${flow.dport}`;
    let expected = this.cache.get(key);
    if (expected === undefined) {
      try {
        expected = simulatePath(this.topology, flow);
      } catch (e) {
        if (!(e instanceof FlowError)) throw e;
        expected = null;
      }
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(key, expected);
    }
    const divergence = expected ? comparePaths(packet.hops, expected, { dropReason: packet.drop?.reason ?? null, topology: this.topology }) : null;
    return { ...packet, expected, divergence };
  }
}
