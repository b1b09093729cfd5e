/**
 * How a packet's tunnel reads on screen (issue 14): the encap and decap marks on the hops where
 * it entered and left a tunnel, the outer (underlay) headers on the hops in between, and where
 * the tunnel lies on the packet's path of namespaces (the list's path chips). Pure; the facts
 * come from shared/tunnel.ts (Hop.encap, Hop.outer, Hop.decap).
 */
import type { Encap, Hop, OuterTuple } from '../../../shared/packet.js';
import { protoName } from '../../../shared/hop-event.js';
import { endpoint } from './format.js';

/** "vxlan vni 42", "ipip", "encapsulated (unknown kind)". */
export function tunnelName(e: Pick<Encap, 'type' | 'vni'>): string {
  if (e.type === 'unknown') return 'encapsulated (unknown kind)';
  return `${e.type}${e.vni !== null ? ` vni ${e.vni}` : ''}`;
}

/** The badge on the hop where a tunnel wrapped the packet: "encap vxlan vni 42". */
export function encapText(e: Encap): string {
  return e.type === 'unknown' ? tunnelName(e) : `encap ${tunnelName(e)}`;
}

/** The badge on the hop where the packet came out: "decap vxlan vni 42". */
export function decapText(e: Encap): string {
  return e.type === 'unknown' ? 'decap (unknown kind)' : `decap ${tunnelName(e)}`;
}

/** The underlay headers around the packet: "10.77.0.1:35707 → 10.77.0.2:4789 udp"; no ports for ipip/gre. */
export function outerText(o: OuterTuple): string {
  const ports = o.proto === 17 || o.proto === 6;
  return `${endpoint(o.src, ports ? o.sport : 0)} → ${endpoint(o.dst, ports ? o.dport : 0)} ${outerProtoName(o.proto)}`;
}

/** The outer protocol as tunnels name it: 4 ipip, 41 ip6ip (IPv6 inside), 47 gre; else as packets do. */
function outerProtoName(proto: number): string {
  return proto === 4 ? 'ipip' : proto === 41 ? 'ip6ip' : proto === 47 ? 'gre' : protoName(proto);
}

/** A packet's tunnel on its path, for a list row: where on `path` it went in and came out. */
export interface PathTunnel {
  /** "vxlan vni 42". */
  readonly name: string;
  /** Index in the row's path of the namespace where the packet was wrapped. */
  readonly from: number;
  /** Index of the namespace where it came out; the path's last when it never did. */
  readonly to: number;
}

/**
 * The first tunnel a packet went through, placed on its path of namespaces (`pathOf[i]`: the
 * path index hop i belongs to). Null when it went through none.
 */
export function pathTunnel(hops: readonly Hop[], pathOf: readonly number[]): PathTunnel | null {
  let start = -1;
  let enc: Encap | null = null;
  for (let i = 0; i < hops.length; i++) {
    const h = hops[i] as Hop;
    if (start < 0 && (h.encap || h.outer)) {
      start = i;
      enc = h.encap ?? null;
    }
    if (start >= 0 && h.decap) {
      return { name: tunnelName(enc ?? h.decap), from: pathOf[start] ?? 0, to: pathOf[i] ?? 0 };
    }
  }
  if (start < 0) return null;
  const last = pathOf[hops.length - 1] ?? 0;
  const first = hops[start] as Hop;
  return { name: enc ? tunnelName(enc) : first.outer ? `${outerProtoName(first.outer.proto)} tunnel` : 'tunnel', from: pathOf[start] ?? 0, to: last };
}
