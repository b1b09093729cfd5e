/**
 * A packet: one sk_buff's journey from its first observed hop until it is freed or consumed,
 * as rebuilt by shared/reconstruct.ts. `PacketJson` is the public NDJSON contract of
 * `hoptrace trace --json` (and the service's packets endpoint, and `replay --json`):
 * add fields, never rename or remove them.
 */
import type { HopKind, HopNote } from './hop-event.js';
import type { NetfilterVerdict } from './netfilter/types.js';

export type Fate = 'delivered' | 'dropped' | 'unknown';

export interface Hop {
  /** Kernel monotonic ns. */
  readonly t: number;
  readonly event: HopKind;
  readonly netns: number;
  /** Namespace name (`ip netns` name, or a label from a process inside it), null when unknown. */
  readonly ns: string | null;
  /** The namespace's workload, as people name it: its pod, or its container(s) (shared/topology/workloads.ts). Absent when none. */
  readonly workload?: string;
  readonly ifname: string;
  readonly ifindex: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly cpu: number;
  readonly len: number;
  readonly ipId: number;
  readonly tcpFlags: number;
  readonly tcpSeq: number;
  readonly icmpType: number;
  readonly icmpId: number;
  /** Set when the tuple differs from the previous hop's: the rewrite NAT did between them. */
  readonly nat: NatRewrite | null;
  /** First bytes from the IP header as hex, when the trace captured them (`--capture-bytes`). */
  readonly head?: string;
  /**
   * On the hop where a tunnel wrapped the packet (the tunnel device's transmit; the first
   * underlay hop when that transmit was not seen): the tunnel and its outer headers. Absent otherwise.
   */
  readonly encap?: Encap;
  /** On underlay hops (the packet inside a tunnel): the outer headers. The hop's own tuple stays the inner one. */
  readonly outer?: OuterTuple;
  /** On the hop where the packet came out of its tunnel (the receiving tunnel device's recv). */
  readonly decap?: Encap;
  /**
   * On hops of a fragment of the packet's outer datagram (an underlay too small for it): which
   * fragment, 1 the first (it carries the inner headers; the others only share its outer IP id).
   */
  readonly fragment?: number;
}

/**
 * Whether hop `h` is of a datagram's later fragment (`fragment` 2, 3, …): it takes the first's
 * way, interleaved with the first's hops, without ports (a sender's own fragments) — a path, a
 * rewrite or a connection is read from the first fragment's hops and the datagram's whole ones.
 */
export function isLaterFragment(h: Pick<Hop, 'fragment'>): boolean {
  return h.fragment !== undefined && h.fragment > 1;
}

/**
 * A tunnel around a packet (shared/tunnel.ts): vxlan, geneve (UDP, with a VNI), ipip, ip6ip (IPv6
 * in IPv4/IPv6), gre; 'unknown' when the outer headers name no tunnel hoptrace knows or the
 * inner header was not IP ("encapsulated (unknown kind)").
 */
export interface Encap {
  readonly type: 'vxlan' | 'geneve' | 'ipip' | 'ip6ip' | 'gre' | 'unknown';
  /** VNI for vxlan and geneve, null otherwise. */
  readonly vni: number | null;
  /** gre: the key in its header, when it has one. */
  readonly key?: number;
  readonly outer: OuterTuple;
}

export interface OuterTuple extends Tuple {
  readonly family: 4 | 6;
  /** Outer IP protocol number (17 for UDP tunnels). */
  readonly proto: number;
}

export interface NatRewrite {
  /** 'snat' when the source changed, 'dnat' when the destination changed, 'both' for both. */
  readonly kind: 'snat' | 'dnat' | 'both';
  readonly from: Tuple;
  readonly to: Tuple;
}

export interface Tuple {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

/** A free with a kernel drop reason: a drop, or a socket's discard after delivery. */
export interface DropInfo {
  /** Kernel name without SKB_DROP_REASON_, e.g. NETFILTER_DROP; `reason-N` when the kernel's table lacks N. */
  readonly reason: string;
  readonly ns: string | null;
  /** The namespace's pod or container name, absent when none. */
  readonly workload?: string;
  readonly netns: number;
  /** Last interface the packet was seen on ('' when it never had one). */
  readonly ifname: string;
}

export interface Packet {
  /** Unique within one trace: `<first hop time>-<skb>`. */
  readonly id: string;
  readonly proto: string;
  readonly family: 4 | 6;
  /** Tuple as at the first hop. */
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly fate: Fate;
  /**
   * How the fate was decided: the free/consume event, or inferred: 'local-address' when it was
   * received in the namespace owning its destination (or on loopback), 'socket' when its free's
   * reason is one only a receiving socket gives (shared/fate.ts).
   */
  readonly fateBy: 'drop' | 'consume' | 'local-address' | 'socket' | 'none';
  /** Set when fate is 'dropped': where and why. */
  readonly drop: DropInfo | null;
  /**
   * Set when a delivered packet was then freed by the socket layer with a drop reason (a pure
   * ACK TCP has read, a queue purged at close: shared/fate.ts): what the kernel said, where.
   * Not a drop: absent otherwise.
   */
  readonly discard?: DropInfo;
  readonly hops: readonly Hop[];
  /** id of the packet this one was cloned from (bridge flooding, taps), null for originals. */
  readonly cloneOf: string | null;
  /**
   * Netfilter rules, policies and returns the packet met, in order (`trace --netfilter`; absent
   * otherwise). Each names the hop it followed. See shared/netfilter/types.ts.
   */
  readonly netfilter?: readonly NetfilterVerdict[];
  /** What the notes tier saw of this packet (`trace --notes`; absent otherwise), in time order. */
  readonly notes?: readonly PacketNote[];
}

/** A note (shared/hop-event.ts HopNote) attached to a packet. */
export interface PacketNote extends HopNote {
  /** Namespace name, null when unknown. */
  readonly ns: string | null;
  /** Index into `hops` of the last hop before the note; -1 when before the first. */
  readonly afterHop: number;
}
