/**
 * The expected path of an observed packet and where the observation left it, computed the way
 * `trace` does (shared/topology/compare.ts: flowFromPacket → simulatePath → comparePaths), so
 * the dashboard and the CLI never disagree about a packet.
 *
 * Only the selected packet is simulated, on demand: one simulation per click costs nothing,
 * one per packet at 100,000 packets/s would. A packet that already carries `expected` and
 * `divergence` (trace --json, the packets endpoint) is shown as it came.
 */
import type { Packet } from '../../../shared/packet.js';
import type { Topology } from '../../../shared/topology/model.js';
import { simulatePath, type ExpectedPath } from '../../../shared/topology/simulate.js';
import { comparePaths, flowFromPacket, type Divergence } from '../../../shared/topology/compare.js';

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

/** Observed hop → expected hop at the same namespace, device and event (rx counts as recv). */
function matchHops(packet: Packet, path: ExpectedPath): number[] {
  let from = 0;
  return packet.hops.map((h) => {
    const event = h.event === 'rx' ? 'recv' : h.event;
    const k = path.hops.findIndex((e, i) => i >= from && e.netns === h.netns && e.ifname === h.ifname && e.event === event);
    if (k < 0) return -1;
    from = k;
    return k;
  });
}

function view(packet: Packet, path: ExpectedPath, divergence: Divergence | null): ExpectedView {
  return {
    path, unavailable: null, divergence,
    divergeNetns: divergence ? divergence.observed?.netns ?? divergence.expected?.netns ?? null : null,
    matched: matchHops(packet, path),
  };
}

export function expectedFor(packet: Packet & { expected?: unknown; divergence?: unknown }, topo: Topology | null): ExpectedView {
  if (isExpectedPath(packet.expected)) {
    return view(packet, packet.expected, isDivergence(packet.divergence) ? packet.divergence : null);
  }
  const none = (why: string): ExpectedView => ({ path: null, unavailable: why, divergence: null, divergeNetns: null, matched: packet.hops.map(() => -1) });
  if (!topo) return none('no topology model (the service could not discover it).');
  const flow = flowFromPacket(packet);
  if (!flow) return none('the packet was only seen being freed.');
  if (!topo.namespaces.some((n) => n.netns === flow.from)) {
    return none(`its first namespace (netns ${String(flow.from)}) is not in the model: gone, or created after discovery.`);
  }
  let path: ExpectedPath;
  try {
    path = simulatePath(topo, flow);
  } catch (err) {
    return none(err instanceof Error ? err.message : String(err));
  }
  return view(packet, path, comparePaths(packet.hops, path, { dropReason: packet.drop?.reason ?? null, topology: topo }));
}
