/**
 * Resolves veth peers across namespaces. The kernel tells each veth end its peer's ifindex
 * and, when the peer lives elsewhere, an nsid that only means something inside this
 * namespace. Pairs are found by mutual reference (A points at B's ifindex and B at A's);
 * ties are broken with the nsid → namespace mapping from `ip netns list-id` when known, and
 * with mappings learned from pairs already resolved.
 */
import type { NamespaceModel, NetInterface, PeerRef } from './model.js';

/** netns inode → (nsid → netns inode), as far as known. */
export type NsidMaps = ReadonlyMap<number, ReadonlyMap<number, number>>;

interface End {
  readonly netns: number;
  readonly iface: NetInterface;
}

export function resolvePeers(namespaces: readonly NamespaceModel[], nsids: NsidMaps, errors: string[]): NamespaceModel[] {
  const ends: End[] = [];
  for (const ns of namespaces) for (const iface of ns.interfaces) if (iface.link) ends.push({ netns: ns.netns, iface });
  const learned = new Map<string, number>();
  for (const [netns, m] of nsids) for (const [nsid, target] of m) learned.set(`${netns}/${nsid}`, target);

  const peers = new Map<End, End>();
  let pending = ends.filter((e) => e.iface.link !== null);
  for (let round = 0; round < 3 && pending.length > 0; round++) {
    const next: End[] = [];
    for (const e of pending) {
      const link = e.iface.link;
      if (!link) continue;
      if (link.nsid === null) {
        const p = ends.find((o) => o.netns === e.netns && o !== e &&
          (link.ifindex > 0 ? o.iface.ifindex === link.ifindex : o.iface.name === link.name));
        if (p) peers.set(e, p);
        else next.push(e);
        continue;
      }
      let candidates = ends.filter((o) => o.netns !== e.netns && o.iface.ifindex === link.ifindex &&
        o.iface.link !== null && o.iface.link.ifindex === e.iface.ifindex && o.iface.link.nsid !== null);
      const known = learned.get(`${e.netns}/${link.nsid}`);
      if (known !== undefined) candidates = candidates.filter((o) => o.netns === known);
      if (candidates.length === 1 && candidates[0]) {
        const p = candidates[0];
        peers.set(e, p);
        learned.set(`${e.netns}/${link.nsid}`, p.netns);
        const back = p.iface.link?.nsid;
        if (back !== undefined && back !== null) learned.set(`${p.netns}/${back}`, e.netns);
      } else {
        next.push(e);
      }
    }
    if (next.length === pending.length) {
      pending = next;
      break;
    }
    pending = next;
  }
  const byNs = new Map<number, string>(namespaces.map((n) => [n.netns, n.name]));
  for (const e of pending) {
    const link = e.iface.link;
    errors.push(`veth ${e.iface.name} in ${byNs.get(e.netns) ?? e.netns}: peer (ifindex ${link?.ifindex ?? '?'}, nsid ${link?.nsid ?? 'same'}) not found in the listed namespaces`);
  }
  return namespaces.map((ns) => ({
    ...ns,
    interfaces: ns.interfaces.map((iface) => {
      const end = ends.find((e) => e.netns === ns.netns && e.iface === iface);
      const p = end ? peers.get(end) : undefined;
      const peer: PeerRef | null = p ? { netns: p.netns, ifindex: p.iface.ifindex, name: p.iface.name } : null;
      return { ...iface, peer };
    }),
  }));
}
