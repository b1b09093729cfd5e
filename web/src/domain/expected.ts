/**
 * How the page shows a packet's expected path and where the packet left it: presentation only.
 * The path and divergence themselves come with the packet, computed once by
 * shared/expectation.ts `PathExpectations` — in the ingest worker as it reconstructs (live and
 * replay), or by the service or `trace --json` for packets that arrive annotated — so the page,
 * `trace`, `replay` and /api/sessions/:id/packets never disagree about a packet.
 */
import type { Packet } from '../../../shared/packet.js';
import type { Topology } from '../../../shared/topology/model.js';
import type { ExpectedPath } from '../../../shared/topology/simulate.js';
import { flowFromPacket, type Divergence } from '../../../shared/topology/compare.js';

export type { Divergence };

export interface ExpectedView {
  readonly path: ExpectedPath | null;
  /** Why there is no expected path (no model, the namespace is not modelled, bad flow...). */
  readonly unavailable: string | null;
  readonly divergence: Divergence | null;
  /** Namespace where the packet left the expected path (for the topology), null when it did not. */
  readonly divergeNetns: number | null;
  /** For each observed hop, the expected hop at the same spot (or -1). */
  readonly matched: readonly number[];
}

function isExpectedPath(v: unknown): v is ExpectedPath {
  return typeof v === 'object' && v !== null && Array.isArray((v as { hops?: unknown }).hops) && typeof (v as { fate?: unknown }).fate === 'string';
}

function isDivergence(v: unknown): v is Divergence {
  return typeof v === 'object' && v !== null && typeof (v as { summary?: unknown }).summary === 'string' && typeof (v as { kind?: unknown }).kind === 'string';
}

/**
 * Observed hop → expected hop at the same namespace, device and event (rx counts as recv); on a
 * packet stitched across nodes, on the same node too (namespace inodes are each kernel's own).
 */
export function matchHops(packet: Packet, path: ExpectedPath): number[] {
  let from = 0;
  return packet.hops.map((h) => {
    const event = h.event === 'rx' ? 'recv' : h.event;
    const node = (h as { node?: string }).node;
    const k = path.hops.findIndex((e, i) => i >= from && e.netns === h.netns && e.ifname === h.ifname && e.event === event && e.node === node);
    if (k < 0) return -1;
    from = k;
    return k;
  });
}

/**
 * The view of a packet's expected path. `topo` only explains why a packet has none; nothing is
 * simulated here.
 */
export function expectedFor(packet: Packet & { expected?: unknown; divergence?: unknown }, topo: Topology | null): ExpectedView {
  if (isExpectedPath(packet.expected)) {
    const divergence = isDivergence(packet.divergence) ? packet.divergence : null;
    return {
      path: packet.expected, unavailable: null, divergence,
      divergeNetns: divergence ? divergence.observed?.netns ?? divergence.expected?.netns ?? null : null,
      matched: matchHops(packet, packet.expected),
    };
  }
  return { path: null, unavailable: whyNone(packet, topo), divergence: null, divergeNetns: null, matched: packet.hops.map(() => -1) };
}

/** Why a packet carries no expected path, in the order the model would have stopped. */
function whyNone(packet: Packet & { expected?: unknown }, topo: Topology | null): string {
  // The hub's stitched packets (hops with `node`) come with their path across the nodes' models
  // (shared/cluster/expect.ts); one without had none the hub could compute.
  if (packet.hops.some((h) => typeof (h as { node?: unknown }).node === 'string')) {
    return 'the hub has no path for it: a node\'s model is missing (its agent has not published its topology yet), or the packet\'s first namespace is not in it.';
  }
  if (packet.cloneOf !== null) return 'it is a copy of another packet (a bridge flooding, a packet socket): the original has the path.';
  if (!topo) return 'no topology model (the service could not discover it).';
  const flow = flowFromPacket(packet);
  if (!flow) return 'the packet was only seen being freed.';
  if (!topo.namespaces.some((n) => n.netns === flow.from)) {
    return `its first namespace (netns ${String(flow.from)}) is not in the model: gone, or created after discovery.`;
  }
  if (!('expected' in packet)) return 'it was seen before the model was known.';
  return 'the model could not compute it (see the notices).';
}
