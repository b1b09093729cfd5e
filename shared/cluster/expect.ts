/**
 * Stitched packets next to the cluster's model (issue 17): each packet's expected path across
 * the nodes it is expected to cross (shared/topology/nodes.ts, each node's own model walked by
 * the one simulator) and where the packet left it (shared/topology/compare.ts, which compares
 * hops on node, namespace, device and event). The hub (server/hub/hub.ts) annotates every
 * stitched packet with it, so GET /api/cluster/packets and the dashboard carry the path.
 *
 * Connections the expected paths NAT are remembered per node (each kernel's conntrack is its
 * own), so replies are expected with conntrack's NAT as on one host. Paths are cached per flow;
 * a new connection or a new model forgets them.
 */
import type { Topology } from '../topology/model.js';
import type { Packet } from '../packet.js';
import type { ClusterPacket } from './stitch.js';
import { ConntrackTable } from '../topology/conntrack.js';
import { compareWithAlternatives, flowFromPacket, type Divergence } from '../topology/compare.js';
import { FlowError } from '../topology/simulate.js';
import { simulateAcrossNodes, type NodesExpectedPath } from '../topology/nodes.js';

export interface ClusterExpectation {
  readonly expected: NodesExpectedPath | null;
  readonly divergence: Divergence | null;
}

export type AnnotatedClusterPacket = ClusterPacket & ClusterExpectation;

const CACHE_MAX = 10_000;

export class ClusterExpectations {
  private readonly conntrack = new Map<string, ConntrackTable>();
  private readonly cache = new Map<string, NodesExpectedPath | null>();
  private readonly reported = new Set<string>();
  /** Every node's namespaces, each with its node: what the comparison knows of (devices it can predict). */
  private readonly known: Topology;

  /**
   * @param nodes each node's own model (its agent's latest topology snapshot).
   * @param previous the instance for the models before a change: its connections carry over.
   * @param onError told (once per message) when the simulator failed on a packet.
   */
  constructor(
    private readonly nodes: ReadonlyMap<string, Topology>,
    previous?: ClusterExpectations,
    private readonly onError?: (message: string) => void,
  ) {
    if (previous) for (const [n, t] of previous.conntrack) this.conntrack.set(n, t);
    const namespaces = [...nodes].flatMap(([node, t]) => t.namespaces.map((ns) => ({ ...ns, node })));
    this.known = { namespaces, errors: [], discoveredAt: 0, durationMs: 0 };
  }

  private table(node: string): ConntrackTable {
    let t = this.conntrack.get(node);
    if (!t) {
      t = new ConntrackTable();
      this.conntrack.set(node, t);
    }
    return t;
  }

  annotate(packet: ClusterPacket): AnnotatedClusterPacket {
    const none = { ...packet, expected: null, divergence: null };
    const asPacket = packet as unknown as Packet;
    if (packet.cloneOf !== null) return none;
    const flow = flowFromPacket(asPacket);
    // The node of the hop the flow starts from (flowFromPacket takes the first hop that is not a free).
    const start = packet.hops.find((h) => h.netns === flow?.from && h.event !== 'drop' && h.event !== 'consume') ?? packet.hops[0];
    if (!flow || !start || !this.nodes.has(start.node)) return none;
    // Connections expire on one clock for every node: the reference node's, which stitched hops' `t` is on.
    for (const t of this.conntrack.values()) t.now = start.t;
    const key = `${start.node}|${flow.from}|${flow.iif ?? ''}|${flow.proto}|${flow.src}|${flow.sport}|${flow.dst}|${flow.dport}${flow.tunnel ? `|in ${flow.tunnel.outer.src}>${flow.tunnel.outer.dst}` : ''}`;
    try {
      let expected = this.cache.get(key);
      if (expected === undefined) {
        try {
          expected = simulateAcrossNodes(this.nodes, { ...flow, node: start.node }, { conntrack: (n) => this.table(n) });
        } catch (e) {
          if (!(e instanceof FlowError)) throw e;
          expected = null;
        }
        if (this.cache.size >= CACHE_MAX) this.cache.clear();
        this.cache.set(key, expected);
      }
      if (!expected) return none;
      const r = compareWithAlternatives(packet.hops, expected, { dropReason: packet.drop?.reason ?? null, discardReason: packet.discard?.reason ?? null, topology: this.known });
      if (!r.divergence) {
        let added = false;
        for (const c of expected.connections) added = this.table(c.node).add(c) || added;
        // A new connection changes what its replies expect.
        if (added) this.cache.clear();
      }
      return { ...packet, expected: r.path as NodesExpectedPath, divergence: r.divergence };
    } catch (e) {
      // A model the simulator trips over must not stop the hub: this packet goes without.
      const message = `expected path across nodes from ${start.node} not computed: ${e instanceof Error ? e.message : String(e)}`;
      if (!this.reported.has(message)) {
        this.reported.add(message);
        this.onError?.(message);
      }
      this.cache.set(key, null);
      return none;
    }
  }
}
