/**
 * A packet's hops as a timeline: one lane per namespace (in the order the packet reached them),
 * each hop placed on a time axis. Pure; HopTimeline.vue paints it.
 *
 * Consecutive hops are often nanoseconds apart and then suddenly milliseconds (a queue, a
 * reply), so the default axis is compressed: each gap takes space growing with log(Δt), never
 * less than a minimum, so that no hop hides another and big gaps still look big. 'linear' is the
 * honest proportional axis.
 */
import type { Hop, Packet } from '../../../shared/packet.js';

export type TimeScale = 'compressed' | 'linear';

export interface Lane {
  readonly netns: number;
  readonly name: string;
  /** Hub mode: the node this namespace is on (from its hops' `node`). */
  readonly node?: string;
}

/** The node a stitched packet's hop was seen on, and the time on that node's own clock (hub mode). */
export function hopNode(h: Hop): { readonly node: string; readonly tNode: number | null } | null {
  const x = h as Hop & { node?: unknown; tNode?: unknown };
  return typeof x.node === 'string' ? { node: x.node, tNode: typeof x.tNode === 'number' ? x.tNode : null } : null;
}

export interface TimelineHop {
  readonly index: number;
  readonly hop: Hop;
  readonly lane: number;
  /** Position on the axis, 0..1. */
  readonly x: number;
  /** Since the first hop. */
  readonly sinceStartNs: number;
  /** Since the previous hop (0 for the first). */
  readonly deltaNs: number;
}

export interface Timeline {
  readonly lanes: readonly Lane[];
  readonly hops: readonly TimelineHop[];
  readonly totalNs: number;
}

/** Space a gap takes on the compressed axis: 1 unit for simultaneous hops, +1 per ×4 of Δt above 1 µs. */
function gapUnits(deltaNs: number): number {
  return 1 + Math.log(1 + Math.max(0, deltaNs) / 1000) / Math.log(4);
}

export function buildTimeline(packet: Packet, nameOf: (netns: number, fallback: string | null) => string, scale: TimeScale = 'compressed'): Timeline {
  const lanes: Lane[] = [];
  const laneOf = new Map<number, number>();
  const hops = packet.hops;
  const t0 = hops[0]?.t ?? 0;
  const totalNs = (hops[hops.length - 1]?.t ?? t0) - t0;

  const units: number[] = [];
  let acc = 0;
  hops.forEach((h, i) => {
    if (i > 0) acc += gapUnits(h.t - (hops[i - 1]?.t ?? h.t));
    units.push(acc);
  });

  const out: TimelineHop[] = [];
  let prevLane = 0;
  hops.forEach((h, i) => {
    let lane: number;
    if (h.netns === 0) {
      // A hop with no device (freed before routing) belongs where the packet last was.
      lane = prevLane;
    } else {
      const known = laneOf.get(h.netns);
      if (known === undefined) {
        lane = lanes.length;
        laneOf.set(h.netns, lane);
        const node = hopNode(h)?.node;
        lanes.push({ netns: h.netns, name: nameOf(h.netns, h.ns), ...(node !== undefined ? { node } : {}) });
      } else {
        lane = known;
      }
    }
    if (lanes.length === 0) lanes.push({ netns: 0, name: nameOf(0, h.ns) });
    prevLane = lane;
    const x = scale === 'linear'
      ? (totalNs > 0 ? (h.t - t0) / totalNs : hops.length > 1 ? i / (hops.length - 1) : 0)
      : (acc > 0 ? (units[i] ?? 0) / acc : 0);
    out.push({ index: i, hop: h, lane, x, sinceStartNs: h.t - t0, deltaNs: i > 0 ? h.t - (hops[i - 1]?.t ?? h.t) : 0 });
  });
  return { lanes, hops: out, totalNs };
}
