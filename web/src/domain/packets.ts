/**
 * What the page shows of packets, as plain data: a list row, a selected packet, the facet that
 * narrows the list, a filter's problem. The ingest worker fills them (worker/protocol.ts carries
 * them across); views and domain logic read them without knowing where they came from.
 */
import type { Fate, Packet } from '../../../shared/packet.js';
import type { PacketExpectation } from '../../../shared/topology/compare.js';
import type { PathTunnel } from './tunnel-marks.js';

/** Narrows the list to packets touching one namespace, one interface, or one link (either end). */
export type Facet =
  | { readonly kind: 'ns'; readonly netns: number }
  | { readonly kind: 'iface'; readonly netns: number; readonly ifindex: number }
  | { readonly kind: 'link'; readonly a: { readonly netns: number; readonly ifindex: number }; readonly b: { readonly netns: number; readonly ifindex: number } };

/** One line of the packet list: everything the row shows, nothing more (the hops stay in the worker). */
export interface PacketRow {
  /** Arrival order in this worker: a stable key for the virtual list. */
  readonly n: number;
  readonly id: string;
  /** Kernel monotonic ns of the first hop. */
  readonly t: number;
  readonly proto: string;
  readonly family: 4 | 6;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /** Namespaces visited, consecutive repeats folded: the path chips. */
  readonly path: readonly number[];
  /** Names the reconstruction knew for `path` (null where it did not). */
  readonly pathNames: readonly (string | null)[];
  readonly hops: number;
  /** Last hop time − first hop time. */
  readonly latencyNs: number;
  readonly fate: Fate;
  readonly dropReason: string | null;
  /**
   * For a delivered packet its socket freed afterwards (Packet.discard: not a drop), what it says
   * as the fate: 'delivered; discarded by TCP: QUEUE_PURGE'. Absent otherwise.
   */
  readonly fateDetail?: string;
  /** Kind of the first header rewrite on the path, null when none. */
  readonly nat: 'snat' | 'dnat' | 'both' | null;
  /** The tunnel it went through and where on `path` (vxlan between two nodes); absent when none. */
  readonly tunnel?: PathTunnel;
  readonly clone: boolean;
  /** Hub mode: the nodes the packet crossed, in order (its hops carry `node`); absent otherwise. */
  readonly nodes?: readonly string[];
}

/** A full packet as the detail view needs it; `expected`/`divergence` when it was put next to a model. */
export interface PacketDetail {
  readonly n: number;
  readonly packet: Packet & Partial<PacketExpectation>;
}

export interface FilterProblem {
  readonly message: string;
  readonly offset: number;
  readonly length: number;
  /** formatFilterError's caret rendering, as the CLI prints it. */
  readonly formatted: string;
}
