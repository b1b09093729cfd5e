/**
 * The parsed form of a `--filter` expression. Plain readonly data (JSON-safe), so it can be
 * stored in a recording header or sent to a worker as is.
 */
import type { IpFamily } from './address.js';

export type { IpFamily };

/** Which address or port of a packet a primitive looks at. `either` is pcap's plain `host`/`port`. */
export type Direction = 'src' | 'dst' | 'either';

/** L4 protocols the language names. `icmp` means ICMP over IPv4, `icmp6` ICMPv6 over IPv6. */
export type ProtoName = 'tcp' | 'udp' | 'icmp' | 'icmp6';

/** `host ADDR`, `src host ADDR`, `dst ADDR`, ... */
export interface HostFilter {
  readonly kind: 'host';
  readonly dir: Direction;
  readonly family: IpFamily;
  /** Canonical text (ipaddr.js `toString()`). */
  readonly addr: string;
}

/** `net CIDR`, `src net CIDR`, ... A bare address in `net` is stored as /32 or /128. */
export interface NetFilter {
  readonly kind: 'net';
  readonly dir: Direction;
  readonly family: IpFamily;
  /** Network address, canonical text, no bits set past the prefix. */
  readonly addr: string;
  readonly prefix: number;
}

/** `port N`, `src port N`, `dst port N`. Matches only TCP, UDP and SCTP packets. */
export interface PortFilter {
  readonly kind: 'port';
  readonly dir: Direction;
  readonly port: number;
}

/** `tcp`, `udp`, `icmp`, `icmp6`. */
export interface ProtoFilter {
  readonly kind: 'proto';
  readonly proto: ProtoName;
}

/** `ip` (family 4) or `ip6` (family 6). */
export interface FamilyFilter {
  readonly kind: 'family';
  readonly family: IpFamily;
}

/** Two or more operands, all of which must match. */
export interface AndFilter {
  readonly kind: 'and';
  readonly operands: readonly FilterExpr[];
}

/** Two or more operands, any of which must match. */
export interface OrFilter {
  readonly kind: 'or';
  readonly operands: readonly FilterExpr[];
}

export interface NotFilter {
  readonly kind: 'not';
  readonly operand: FilterExpr;
}

/**
 * `pod NAME`, `container NAME`, `src pod NAME`...: the addresses of that workload's namespace.
 * Names are resolved against the host's containers where the trace starts
 * (shared/filter/workloads.ts) into host filters; matching and compiling need them resolved.
 */
export interface WorkloadFilter {
  readonly kind: 'workload';
  readonly dir: Direction;
  readonly what: 'pod' | 'container';
  readonly name: string;
  /** Where the name was in the filter text, for the error when no such workload exists. */
  readonly offset: number;
  readonly length: number;
}

/** `tunnel`: the hop is inside a tunnel (an underlay hop: shared/tunnel.ts). */
export interface TunnelFilter {
  readonly kind: 'tunnel';
}

/** `vni N`: the hop is inside a vxlan or geneve tunnel with that VNI (0-16777215). */
export interface VniFilter {
  readonly kind: 'vni';
  readonly vni: number;
}

export type FilterPrimitive = HostFilter | NetFilter | PortFilter | ProtoFilter | FamilyFilter | WorkloadFilter | TunnelFilter | VniFilter;

/** Any non-empty filter expression. */
export type FilterExpr = FilterPrimitive | AndFilter | OrFilter | NotFilter;

/** The empty filter: matches every hop. Only ever the whole filter, never an operand. */
export interface MatchAll {
  readonly kind: 'all';
}

export type FilterAst = MatchAll | FilterExpr;

/** IP protocol numbers the `port` primitive applies to: TCP, UDP, SCTP. */
export const PORT_PROTOCOLS: readonly number[] = [6, 17, 132];

/** IP protocol number and the family it implies (if any) for each protocol name. */
export const PROTO_INFO: Readonly<Record<ProtoName, { readonly number: number; readonly family: IpFamily | null }>> = {
  tcp: { number: 6, family: null },
  udp: { number: 17, family: null },
  icmp: { number: 1, family: 4 },
  icmp6: { number: 58, family: 6 },
};
