/**
 * What the topology highlights for the selected packet — the interfaces and namespaces it was
 * seen on (and where it was dropped), and those of its expected path — and how the list's facet
 * reads in words.
 */
import type { Packet } from '../../../shared/packet.js';
import type { Topology } from '../../../shared/topology/model.js';
import type { ExpectedPath } from '../../../shared/topology/simulate.js';
import { ifKey, type PathHighlight } from './topology-graph.js';
import type { Facet } from './packets.js';

export function observedHighlight(p: Packet | null | undefined): PathHighlight | null {
  if (!p) return null;
  const ifaces = new Set<string>();
  const netns = new Set<number>();
  for (const h of p.hops) {
    if (h.netns === 0) continue;
    netns.add(h.netns);
    if (h.ifindex) ifaces.add(ifKey(h.netns, h.ifindex));
  }
  const last = p.hops[p.hops.length - 1];
  const dropHop = p.fate === 'dropped' ? [...p.hops].reverse().find((h) => h.ifindex !== 0) : undefined;
  return { ifaces, netns, drop: dropHop && last ? ifKey(dropHop.netns, dropHop.ifindex) : null };
}

export function expectedHighlight(e: ExpectedPath | null | undefined): PathHighlight | null {
  if (!e) return null;
  const ifaces = new Set<string>();
  const netns = new Set<number>();
  for (const h of e.hops) {
    netns.add(h.netns);
    if (h.ifindex) ifaces.add(ifKey(h.netns, h.ifindex));
  }
  return { ifaces, netns };
}

/** "X" (a namespace: the chip's title says so), "X/eth0" or "link X/a ↔ Y/b"; null without a facet. */
export function facetLabel(f: Facet | null, topology: Topology | null, nsName: (netns: number) => string): string | null {
  if (!f) return null;
  const ifname = (netns: number, ifindex: number): string =>
    topology?.namespaces.find((n) => n.netns === netns)?.interfaces.find((i) => i.ifindex === ifindex)?.name ?? `if${ifindex}`;
  if (f.kind === 'ns') return nsName(f.netns);
  if (f.kind === 'iface') return `${nsName(f.netns)}/${ifname(f.netns, f.ifindex)}`;
  return `link ${nsName(f.a.netns)}/${ifname(f.a.netns, f.a.ifindex)} ↔ ${nsName(f.b.netns)}/${ifname(f.b.netns, f.b.ifindex)}`;
}
