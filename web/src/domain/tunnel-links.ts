/**
 * Tunnels between namespaces, as the topology view draws them (issue 14): each tunnel device
 * (vxlan, geneve, ipip, gre...) links to the tunnel device of the namespace that owns its remote
 * underlay address — the device's static `remote`, or for vxlan without one (flannel) every `dst`
 * of its forwarding database. A remote no namespace in the model owns, or owned by a namespace
 * with no matching tunnel device, is a dangling end labelled with that address. Pure.
 */
import type { NamespaceModel, NetInterface, Topology } from '../../../shared/topology/model.js';

export interface TunnelEndRef {
  readonly netns: number;
  readonly ifindex: number;
}

export interface TunnelLink {
  /** The tunnel device this link was read from. */
  readonly from: TunnelEndRef;
  /** The far tunnel device, or null when the remote address leads to none in the model. */
  readonly to: TunnelEndRef | null;
  /** The underlay address the tunnel sends to. */
  readonly remote: string;
  /** Who owns `remote` when `to` is null but a namespace does (it has no matching tunnel device). */
  readonly remoteOwner: string | null;
  /** The kernel's kind: vxlan, geneve, ipip, gre... */
  readonly type: string;
  readonly vni: number | null;
  readonly dstport: number | null;
  /** How the link reads: "vxlan vni 42 · udp 4789", "ipip". */
  readonly label: string;
}

const addrOf = (cidr: string): string => (cidr.split('/')[0] ?? cidr).toLowerCase();

/** "vxlan vni 42 · udp 4789": the tunnel's kind, VNI and port, as the timeline's encap badge names them. */
export function tunnelLabel(t: { readonly type: string; readonly vni: number | null; readonly dstport: number | null }): string {
  return `${t.type}${t.vni !== null ? ` vni ${t.vni}` : ''}${t.dstport ? ` · udp ${t.dstport}` : ''}`;
}

/** The underlay addresses a tunnel device sends to: its static remote, else its FDB's destinations. */
function remotesOf(ns: NamespaceModel, dev: NetInterface): string[] {
  const out = new Set<string>();
  const t = dev.tunnel;
  if (!t) return [];
  if (t.remote) out.add(t.remote.toLowerCase());
  for (const e of ns.tunnelFdb ?? []) if (e.dev === dev.name && e.dst) out.add(e.dst.toLowerCase());
  // 0.0.0.0 / :: are "no remote", and a multicast group is every member, not one node.
  return [...out].filter((a) => a !== '0.0.0.0' && a !== '::' && !/^(22[4-9]|23\d)\./.test(a) && !/^ff/i.test(a));
}

/** Namespaces joined by veth pairs, as component numbers: a tunnel's far end is looked for in its own lab first. */
function vethComponents(topo: Topology): Map<number, number> {
  const comp = new Map<number, number>();
  const adj = new Map<number, number[]>();
  for (const ns of topo.namespaces) {
    for (const i of ns.interfaces) {
      if (!i.peer || i.peer.netns === ns.netns) continue;
      adj.set(ns.netns, [...(adj.get(ns.netns) ?? []), i.peer.netns]);
      adj.set(i.peer.netns, [...(adj.get(i.peer.netns) ?? []), ns.netns]);
    }
  }
  let next = 0;
  for (const ns of topo.namespaces) {
    if (comp.has(ns.netns)) continue;
    const c = next++;
    const queue = [ns.netns];
    comp.set(ns.netns, c);
    while (queue.length) {
      const cur = queue.shift() as number;
      for (const n of adj.get(cur) ?? []) {
        if (comp.has(n)) continue;
        comp.set(n, c);
        queue.push(n);
      }
    }
  }
  return comp;
}

/** Every tunnel link of the model, each device pair once (the two ends usually name each other). */
export function tunnelLinks(topo: Topology): TunnelLink[] {
  const owners = new Map<string, NamespaceModel[]>();
  for (const ns of topo.namespaces) {
    for (const i of ns.interfaces) {
      for (const a of i.addrs) {
        const key = addrOf(a);
        const list = owners.get(key) ?? [];
        if (!list.includes(ns)) list.push(ns);
        owners.set(key, list);
      }
    }
  }
  const comp = vethComponents(topo);
  const out: TunnelLink[] = [];
  const seen = new Set<string>();
  for (const ns of topo.namespaces) {
    for (const dev of ns.interfaces) {
      const t = dev.tunnel;
      if (!t) continue;
      for (const remote of remotesOf(ns, dev)) {
        // The same private underlay address can exist in several labs: the one joined to this
        // namespace by veths (its underlay) wins, then one with a matching tunnel device.
        const candidates = (owners.get(remote) ?? []).filter((o) => o.netns !== ns.netns);
        const matching = (o: NamespaceModel): NetInterface | undefined => o.interfaces.find((i) => i.tunnel
          && i.tunnel.type === t.type && (t.vni === null || i.tunnel.vni === null || i.tunnel.vni === t.vni));
        const ranked = [...candidates].sort((a, b) => rank(b) - rank(a));
        function rank(o: NamespaceModel): number {
          return (comp.get(o.netns) === comp.get(ns.netns) ? 2 : 0) + (matching(o) ? 1 : 0);
        }
        const owner = ranked[0] ?? null;
        const far = owner ? matching(owner) : undefined;
        const from = { netns: ns.netns, ifindex: dev.ifindex };
        const to = owner && far ? { netns: owner.netns, ifindex: far.ifindex } : null;
        const a = `${from.netns}:${from.ifindex}`;
        const key = to ? [a, `${to.netns}:${to.ifindex}`].sort().join('|') : `${a}>${remote}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({
          from, to, remote, remoteOwner: to ? null : owner?.name ?? null,
          type: t.type, vni: t.vni, dstport: t.dstport, label: tunnelLabel(t),
        });
      }
    }
  }
  return out;
}
