/**
 * The cluster model: every node's topology (as its agent published it) linked into one — which
 * node owns an address, which nodes an underlay joins, and where each tunnel's remote end lives.
 * Pure: the hub (server/hub/hub.ts) feeds it snapshots.
 */
import type { Topology } from '../topology/model.js';
import { parseAddress } from '../filter/address.js';

export interface ClusterLink {
  readonly kind: 'underlay' | 'tunnel';
  readonly from: { readonly node: string; readonly ns: string; readonly ifname: string; readonly addr: string };
  readonly to: { readonly node: string; readonly ns: string; readonly ifname: string; readonly addr: string };
  /** Tunnels: the device's type and VNI (vxlan, geneve, ipip, ...). */
  readonly tunnel?: { readonly type: string; readonly vni: number | null };
}

export interface ClusterModel {
  readonly nodes: readonly string[];
  /** Address (no prefix length) → the node and namespace that own it. */
  readonly owner: ReadonlyMap<string, { readonly node: string; readonly ns: string; readonly ifname: string }>;
  readonly links: readonly ClusterLink[];
}

/** "10.1.2.3/24" → { addr, prefix } */
function splitCidr(cidr: string): { addr: string; prefix: number } | null {
  const [a, p] = cidr.split('/');
  if (!a) return null;
  const parsed = parseAddress(a);
  if (!parsed) return null;
  return { addr: a, prefix: p === undefined ? parsed.bytes.length * 8 : Number(p) };
}

function samePrefix(a: string, b: string, prefix: number): boolean {
  const pa = parseAddress(a);
  const pb = parseAddress(b);
  if (!pa || !pb || pa.bytes.length !== pb.bytes.length) return false;
  for (let bit = 0; bit < prefix; bit++) {
    const i = bit >> 3;
    const m = 0x80 >> (bit & 7);
    if (((pa.bytes[i] ?? 0) & m) !== ((pb.bytes[i] ?? 0) & m)) return false;
  }
  return true;
}

interface Iface { node: string; ns: string; ifname: string; addr: string; prefix: number; tunnel: boolean }

export function buildClusterModel(topologies: ReadonlyMap<string, Topology>): ClusterModel {
  const owner = new Map<string, { node: string; ns: string; ifname: string }>();
  const ifaces: Iface[] = [];
  const nodes = [...topologies.keys()].sort();
  for (const node of nodes) {
    for (const ns of topologies.get(node)!.namespaces) {
      for (const i of ns.interfaces) {
        if (i.kind === 'loopback' || i.name === 'lo') continue;
        for (const cidr of i.addrs) {
          const c = splitCidr(cidr);
          if (!c || c.addr.startsWith('fe80:')) continue;
          owner.set(c.addr, { node, ns: ns.name, ifname: i.name });
          ifaces.push({ node, ns: ns.name, ifname: i.name, addr: c.addr, prefix: c.prefix, tunnel: i.tunnel !== undefined });
        }
      }
    }
  }
  const links: ClusterLink[] = [];
  // Underlay: two nodes' (non-tunnel) interfaces on one subnet. Each pair once, lower node first.
  for (const [i, a] of ifaces.entries()) {
    if (a.tunnel) continue;
    for (const b of ifaces.slice(i + 1)) {
      if (b.tunnel || b.node === a.node || a.prefix !== b.prefix || a.prefix === 32 || a.prefix === 128) continue;
      if (!samePrefix(a.addr, b.addr, a.prefix)) continue;
      links.push({ kind: 'underlay', from: { node: a.node, ns: a.ns, ifname: a.ifname, addr: a.addr }, to: { node: b.node, ns: b.ns, ifname: b.ifname, addr: b.addr } });
    }
  }
  // Tunnels: a tunnel device's remote end (or a flannel-style FDB entry's dst) owned by another node.
  for (const node of nodes) {
    for (const ns of topologies.get(node)!.namespaces) {
      const remotes: Array<{ dev: string; remote: string; local: string | null; type: string; vni: number | null }> = [];
      for (const i of ns.interfaces) {
        if (!i.tunnel) continue;
        if (i.tunnel.remote) remotes.push({ dev: i.name, remote: i.tunnel.remote, local: i.tunnel.local, type: i.tunnel.type, vni: i.tunnel.vni });
        for (const f of ns.tunnelFdb ?? []) {
          if (f.dev === i.name && f.dst && f.dst !== i.tunnel.remote) remotes.push({ dev: i.name, remote: f.dst, local: i.tunnel.local, type: i.tunnel.type, vni: i.tunnel.vni });
        }
      }
      for (const r of remotes) {
        const to = owner.get(r.remote);
        if (!to || to.node === node) continue;
        links.push({
          kind: 'tunnel',
          from: { node, ns: ns.name, ifname: r.dev, addr: r.local ?? '' },
          to: { node: to.node, ns: to.ns, ifname: to.ifname, addr: r.remote },
          tunnel: { type: r.type, vni: r.vni },
        });
      }
    }
  }
  return { nodes, owner, links };
}

/** A namespace of the cluster topology: its node's model entry, with the node's name. */
export type ClusterNamespace = Topology['namespaces'][number] & { readonly node: string };

/**
 * Every node's topology as one (GET /api/cluster/topology, what the dashboard draws in hub mode):
 * each namespace tagged with its `node`, nodes in name order. Namespace inodes are each kernel's
 * own: when two nodes report the same inode (the hosts' initial namespaces usually do) the
 * second is left out and said in `errors`, since the probes' hops name namespaces by inode alone.
 */
export type ClusterTopology = Omit<Topology, 'namespaces'> & { readonly namespaces: readonly ClusterNamespace[] };

export function mergeTopologies(topologies: ReadonlyMap<string, Topology>): ClusterTopology {
  const namespaces: ClusterNamespace[] = [];
  const errors: string[] = [];
  const seen = new Map<number, string>();
  let discoveredAt = 0;
  let durationMs = 0;
  for (const node of [...topologies.keys()].sort()) {
    const t = topologies.get(node)!;
    discoveredAt = Math.max(discoveredAt, t.discoveredAt);
    durationMs = Math.max(durationMs, t.durationMs);
    for (const e of t.errors) errors.push(`${node}: ${e}`);
    for (const ns of t.namespaces) {
      const other = seen.get(ns.netns);
      if (other !== undefined) {
        errors.push(`${node}: namespace ${ns.name} has the inode ${ns.netns} of one on ${other}; only ${other}'s is drawn`);
        continue;
      }
      seen.set(ns.netns, node);
      namespaces.push({ ...ns, node });
    }
  }
  return { namespaces, errors, discoveredAt, durationMs };
}
