/**
 * Puts workload names (a namespace's pod or container, shared/topology/workloads.ts) on a
 * packet's hops and drop, from a table made at trace or record time: `ns` keeps its meaning,
 * `workload` is added where the namespace has one.
 */
import type { Packet } from './packet.js';

/** netns inode → workload display name. */
export type WorkloadTable = ReadonlyMap<number, string>;

/** The table of a topology model (live, or a recording's model JSON): namespaces with a workload. */
export function workloadTableOf(model: unknown): Map<number, string> {
  const out = new Map<number, string>();
  const namespaces = typeof model === 'object' && model !== null ? (model as { namespaces?: unknown }).namespaces : undefined;
  if (!Array.isArray(namespaces)) return out;
  for (const ns of namespaces as unknown[]) {
    if (typeof ns !== 'object' || ns === null) continue;
    const { netns, workload } = ns as { netns?: unknown; workload?: unknown };
    if (typeof netns === 'number' && typeof workload === 'string' && workload !== '') out.set(netns, workload);
  }
  return out;
}

/** The packet with `workload` on every hop (and its drop) whose namespace has one; the same object when none does. */
export function withWorkloads(p: Packet, table: WorkloadTable): Packet {
  if (table.size === 0 || !p.hops.some((h) => table.has(h.netns))) return p;
  const hops = p.hops.map((h) => {
    const w = table.get(h.netns);
    return w === undefined ? h : { ...h, workload: w };
  });
  const dw = p.drop ? table.get(p.drop.netns) : undefined;
  return { ...p, hops, ...(p.drop && dw !== undefined ? { drop: { ...p.drop, workload: dw } } : {}) };
}
