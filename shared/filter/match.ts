/** Evaluates a filter against a hop in JavaScript: the dashboard, recordings and tests use this. */
import { bytesInPrefix, parseAddress } from './address.js';
import type { FilterAst, FilterExpr, Direction } from './ast.js';
import { PORT_PROTOCOLS, PROTO_INFO } from './ast.js';
import { protoNumber } from '../hop-event.js';
import { unresolved } from './workloads.js';

/** The fields of a hop a filter looks at. `HopEvent` (shared/hop-event.ts) has this shape. */
export interface FilterHop {
  /**
   * 4, 6, or 0 when the packet is not IP: then no address, `ip`, `ip6`, `icmp` or `icmp6`
   * primitive matches, and the probes report proto 0 so `tcp`, `udp` and `port` do not either.
   */
  readonly family: 0 | 4 | 6;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, 132 sctp). */
  readonly proto: number;
  /** Address text; any spelling ipaddr.js parses as the hop's family (hops carry `toString()` form). */
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /**
   * Inside a tunnel: its outer headers (`vni` null when the tunnel has none). The filter is tried
   * on the hop's own (inner) headers and, failing that, on these; `tunnel` and `vni` look here.
   */
  readonly outer?: FilterOuter;
}

export interface FilterOuter {
  readonly family: 4 | 6;
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly vni: number | null;
}

export type HopMatcher = (hop: FilterHop) => boolean;

/** Per-call view of a hop that parses each address at most once, and only if a primitive needs it. */
class HopView {
  private parsed: { src?: readonly number[] | null; dst?: readonly number[] | null } = {};

  constructor(readonly hop: FilterHop) {}

  /** Network-order bytes of the hop's src or dst, or null if it is not an address of the hop's family. */
  addr(which: 'src' | 'dst'): readonly number[] | null {
    const cached = this.parsed[which];
    if (cached !== undefined) return cached;
    const a = this.hop.family === 0 ? null : parseAddress(this.hop[which]);
    const bytes = a && a.family === this.hop.family ? a.bytes : null;
    this.parsed[which] = bytes;
    return bytes;
  }
}

type Test = (view: HopView) => boolean;

function eachSide(dir: Direction, test: (which: 'src' | 'dst') => boolean): boolean {
  return dir === 'either' ? test('src') || test('dst') : test(dir);
}

function build(e: FilterExpr): Test {
  switch (e.kind) {
    case 'and': {
      const parts = e.operands.map(build);
      return (v) => parts.every((p) => p(v));
    }
    case 'or': {
      const parts = e.operands.map(build);
      return (v) => parts.some((p) => p(v));
    }
    case 'not': {
      const inner = build(e.operand);
      return (v) => !inner(v);
    }
    case 'host':
    case 'net': {
      const net = parseAddress(e.addr);
      if (net?.family !== e.family) throw new RangeError(`filter address ${e.addr} is not IPv${e.family}`);
      const prefix = e.kind === 'host' ? net.bytes.length * 8 : e.prefix;
      return (v) => v.hop.family === e.family && eachSide(e.dir, (w) => {
        const bytes = v.addr(w);
        return bytes !== null && bytesInPrefix(bytes, net.bytes, prefix);
      });
    }
    case 'port':
      return (v) => PORT_PROTOCOLS.includes(v.hop.proto)
        && eachSide(e.dir, (w) => (w === 'src' ? v.hop.sport : v.hop.dport) === e.port);
    case 'proto': {
      const info = PROTO_INFO[e.proto];
      return (v) => v.hop.proto === info.number && (info.family === null || v.hop.family === info.family);
    }
    case 'family':
      return (v) => v.hop.family === e.family;
    case 'tunnel':
      return (v) => v.hop.outer !== undefined;
    case 'vni':
      return (v) => v.hop.outer?.vni === e.vni;
    case 'workload':
      throw unresolved(e);
  }
}

/** Turns a filter into a reusable predicate; use this when testing many hops against one filter. */
export function compileMatcher(ast: FilterAst): HopMatcher {
  if (ast.kind === 'all') return () => true;
  const test = build(ast);
  return (hop) => test(new HopView(hop)) || (hop.outer !== undefined && test(new HopView({ ...hop.outer, outer: hop.outer })));
}

// Filters are immutable data, so a compiled predicate can be remembered per AST object.
const matcherCache = new WeakMap<FilterAst, HopMatcher>();

/** True when the hop passes the filter. */
export function matchesHop(ast: FilterAst, hop: FilterHop): boolean {
  let m = matcherCache.get(ast);
  if (!m) {
    m = compileMatcher(ast);
    matcherCache.set(ast, m);
  }
  return m(hop);
}

/** What `packetMatches` needs of a packet (shared/packet.ts `Packet` has this shape). */
export interface FilterPacket {
  readonly family: 4 | 6;
  readonly proto: string;
  readonly hops: ReadonlyArray<Pick<FilterHop, 'src' | 'dst' | 'sport' | 'dport'> & {
    readonly outer?: Omit<FilterOuter, 'vni'>;
    readonly encap?: { readonly vni: number | null };
    /** The rewrite before this hop; on the first hop, from what the sending socket asked for (HopEvent.sent). */
    readonly nat?: { readonly from: Pick<FilterHop, 'src' | 'dst' | 'sport' | 'dport'> } | null;
  }>;
}

/**
 * The product's filter rule for packets: a packet matches when any of its hops matches (so a
 * packet NAT rewrote into or out of the filter still shows, with all its hops), or when its
 * sending socket's tuple does (sentMatches).
 */
export function packetMatches(ast: FilterAst, packet: FilterPacket): boolean {
  return sentMatches(ast, packet) || hopsMatch(ast, packet);
}

/**
 * Whether the tuple its sending socket asked for matches: the first hop's rewrite, from HopEvent.sent
 * (a packet its own namespace's OUTPUT NAT rewrote before any device saw it; the probes match it
 * the same way, probes/emit.bt). Later hops' rewrites start from the hop before them, tried anyway.
 */
export function sentMatches(ast: FilterAst, packet: FilterPacket): boolean {
  if (ast.kind === 'all') return true;
  const sent = packet.hops[0]?.nat?.from;
  return sent !== undefined && matchesHop(ast, { family: packet.family, proto: protoNumber(packet.proto), src: sent.src, dst: sent.dst, sport: sent.sport, dport: sent.dport });
}

/** Whether any hop of the packet matches. */
export function hopsMatch(ast: FilterAst, packet: FilterPacket): boolean {
  if (ast.kind === 'all') return true;
  const proto = protoNumber(packet.proto);
  // The tunnel's VNI is on the hop that entered it (encap); the underlay hops after it carry `outer`.
  let vni: number | null = null;
  return packet.hops.some((h) => {
    if (h.encap) vni = h.encap.vni;
    const outer = h.outer ? { ...h.outer, vni } : undefined;
    return matchesHop(ast, outer ? { family: packet.family, proto, src: h.src, dst: h.dst, sport: h.sport, dport: h.dport, outer } : { family: packet.family, proto, src: h.src, dst: h.dst, sport: h.sport, dport: h.dport });
  });
}
