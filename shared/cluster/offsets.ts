/**
 * Each node's clock against the reference node's (the first by name), for putting a cluster
 * recording's events on one clock (`record --hub`, server/hub/record.ts; a hub session's recording,
 * server/hub/hub-recording.ts): the stitcher's estimate from joined pairs when it has one, else
 * the node's snapshot's paired clocks (its kernel's t and its wall clock, read together) against
 * the reference's — as good as the nodes' wall clocks agree — else 0, 'unknown'.
 */
import type { ClockOffset } from './stitch.js';

export interface NodeOffset {
  /** This node's clock minus the reference node's (ns): subtract it from the node's `t`. */
  readonly ns: number;
  readonly method: ClockOffset['method'] | 'wall-clock';
}

/** Paired clocks from a node's snapshot: kernel monotonic ns and wall-clock ms at one moment (0: absent). */
export interface PairedClocks {
  readonly t: number;
  readonly wallMs: number;
}

export function nodeOffsets(names: Iterable<string>, pairs: readonly ClockOffset[], clocks: (node: string) => PairedClocks | null): Map<string, NodeOffset> {
  const sorted = [...names].sort();
  const out = new Map<string, NodeOffset>();
  const ref = sorted[0];
  if (ref === undefined) return out;
  const byPairs = new Map(pairs.map((x) => [x.node, x]));
  const refClock = clocks(ref);
  for (const name of sorted) {
    const p = byPairs.get(name);
    const c = clocks(name);
    if (p && p.method !== 'unknown') out.set(name, { ns: p.offsetNs, method: p.method });
    else if (name === ref) out.set(name, { ns: 0, method: 'reference' });
    else if (c && refClock && c.t > 0 && refClock.t > 0) out.set(name, { ns: Math.round((c.t - c.wallMs * 1e6) - (refClock.t - refClock.wallMs * 1e6)), method: 'wall-clock' });
    else out.set(name, { ns: 0, method: 'unknown' });
  }
  return out;
}
