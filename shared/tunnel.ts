/**
 * Tunnels on a packet's path (issue 14): the probes report an encapsulated hop's outer headers
 * (shared/hop-event.ts HopOuter) and keep the inner packet as the hop's tuple, so a packet stays
 * one packet from pod to pod. This names the tunnel and marks where it was entered and left.
 */
import type { HopOuter } from './hop-event.js';
import type { Encap, Hop, OuterTuple } from './packet.js';

/** Well-known UDP ports of tunnels: IANA's vxlan and geneve, and Linux's (and flannel's) vxlan default. */
const UDP_TUNNEL_PORTS: ReadonlyMap<number, Encap['type']> = new Map([[4789, 'vxlan'], [8472, 'vxlan'], [6081, 'geneve']]);

export function outerTuple(o: HopOuter): OuterTuple {
  return { family: o.family, proto: o.proto, src: o.src, dst: o.dst, sport: o.sport, dport: o.dport };
}

/** The tunnel an outer header names; 'unknown' when it names none or the inner header was not IP. */
export function tunnelOf(o: HopOuter): Encap {
  let type: Encap['type'] = 'unknown';
  if (o.innerRead) {
    if (o.proto === 17) type = UDP_TUNNEL_PORTS.get(o.dport) ?? 'unknown';
    else if (o.proto === 4) type = 'ipip';
    else if (o.proto === 41) type = 'ip6ip';
    else if (o.proto === 47) type = 'gre';
  }
  const enc: Encap = { type, vni: type === 'vxlan' || type === 'geneve' ? o.vni : null, outer: outerTuple(o) };
  // gre: the probe prints the key in the VNI field (0 without one; a key of 0 reads as none).
  return type === 'gre' && o.vni !== 0 ? { ...enc, key: o.vni } : enc;
}

/** How a hop's tunnel reads in words: "vxlan vni 42 10.77.0.1:35707 → 10.77.0.2:4789". */
export function describeEncap(e: Encap): string {
  if (e.type === 'unknown') return `encapsulated (unknown kind) ${e.outer.src} → ${e.outer.dst}`;
  const ports = e.outer.proto === 17;
  const at = (a: string, p: number): string => (ports ? (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`) : a);
  return `${e.type}${e.vni !== null ? ` vni ${e.vni}` : ''}${e.key !== undefined ? ` key ${e.key}` : ''} ${at(e.outer.src, e.outer.sport)} → ${at(e.outer.dst, e.outer.dport)}`;
}

/**
 * Marks the tunnel on a packet's hops: `outer` on each hop inside it, `encap` where it went in
 * (the transmit just before the first such hop, in the same namespace: the tunnel device's;
 * otherwise the first hop inside), `decap` on the first hop after it that is not a free.
 * `outers[i]` is hop i's tunnel headers, undefined for hops outside a tunnel.
 *
 * Nested tunnels (an overlay whose underlay is itself an overlay): the probe reads the
 * outermost headers (network_header) and the innermost packet (the inner headers the first
 * tunnel marked: a second encapsulation does not reset them), so the tuple stays the pod's and
 * only `outer` changes. A transmit already inside a tunnel followed in its namespace by a new
 * outer header is the outer tunnel's device: it gets that `encap`. On the far side, a hop whose
 * outer header is a tunnel entered earlier (further in) has come out of the ones entered after
 * it: it gets their `decap`.
 */
export function markTunnels(hops: Hop[], outers: ReadonlyArray<HopOuter | undefined>): void {
  // The tunnels the packet is inside, innermost first.
  const stack: Encap[] = [];
  const same = (a: Encap, b: Encap): boolean => a.outer.src === b.outer.src && a.outer.dst === b.outer.dst && a.type === b.type;
  for (let i = 0; i < hops.length; i++) {
    const h = hops[i] as Hop;
    const o = outers[i];
    const isFree = h.event === 'drop' || h.event === 'consume';
    const inside = stack[stack.length - 1] ?? null;
    if (o !== undefined && inside !== null && h.fragment !== undefined) {
      // A fragment of the outer datagram: a later one carries no tunnel header to name.
      hops[i] = { ...h, outer: outerTuple(o) };
    } else if (o !== undefined) {
      const enc = tunnelOf(o);
      if (inside === null || !same(inside, enc)) {
        const further = stack.findIndex((e) => same(e, enc));
        if (further >= 0) {
          // Out of the tunnel(s) entered after that one: this hop's device took the packet out.
          hops[i] = { ...h, decap: inside as Encap };
          stack.length = further + 1;
        } else {
          const before = i > 0 ? (hops[i - 1] as Hop) : null;
          const onDevice = before !== null && before.event === 'xmit' && before.netns === h.netns && !before.encap;
          const nested = onDevice && inside !== null && outers[i - 1] !== undefined;
          if (onDevice && (outers[i - 1] === undefined || nested)) hops[i - 1] = { ...(before as Hop), encap: enc };
          else hops[i] = { ...h, encap: enc };
          if (nested) stack.push(enc);
          else if (stack.length > 0) stack[stack.length - 1] = enc;
          else stack.push(enc);
        }
      }
      hops[i] = { ...(hops[i] as Hop), outer: enc.outer };
    } else if (inside !== null && !isFree) {
      // Out of every tunnel: the innermost one's device gave the packet back.
      hops[i] = { ...h, decap: stack[0] as Encap };
      stack.length = 0;
    }
  }
}

/** The tunnel an outer tuple alone names (no VNI: an underlay hop whose encap was not seen). */
function tunnelOfTuple(o: OuterTuple): Encap['type'] {
  if (o.proto === 17) return UDP_TUNNEL_PORTS.get(o.dport) ?? 'unknown';
  return o.proto === 4 ? 'ipip' : o.proto === 41 ? 'ip6ip' : o.proto === 47 ? 'gre' : 'unknown';
}

/**
 * The tunnel each hop of a packet is inside, with that hop's own outer headers (an underlay NAT
 * may rewrite them on the way), or undefined for hops outside one. The kind and VNI come from the
 * hop that entered the tunnel (`encap`); an underlay hop seen without it is named from its
 * outer protocol and port alone. Used by the pcapng export to write each underlay hop's frame as
 * the outer packet it was.
 */
export function tunnelsAlong(hops: readonly Hop[]): (Encap | undefined)[] {
  let current: Encap | null = null;
  return hops.map((h) => {
    if (h.encap) current = h.encap;
    let out: Encap | undefined;
    if (h.outer) {
      out = current ? { ...current, outer: h.outer } : { type: tunnelOfTuple(h.outer), vni: null, outer: h.outer };
      current = out;
    }
    if (h.decap) current = null;
    return out;
  });
}
