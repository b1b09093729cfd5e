/**
 * One observation of a packet by one kernel probe: the unit everything else is built from.
 * The probes in probes/ print these as lines (see probes/README.md), the live stream and
 * recordings carry them as protobuf (shared/wire.proto), and shared/reconstruct.ts turns
 * them into packets. Keep all three in step field for field.
 */

/** Which probe saw the packet. */
export type HopKind =
  /** net:net_dev_start_xmit — handed to a device's driver for transmit. */
  | 'xmit'
  /** net:netif_rx — queued on the receiving CPU's backlog (veth peers use this). */
  | 'rx'
  /** net:netif_receive_skb — taken in by the stack of the receiving device's namespace. */
  | 'recv'
  /** skb:kfree_skb — freed with a drop reason. */
  | 'drop'
  /** skb:consume_skb — freed normally (delivered to a socket, or done with). */
  | 'consume';

export const HOP_KINDS: readonly HopKind[] = ['xmit', 'rx', 'recv', 'drop', 'consume'];

/** The hop kinds to leave out when only `attach` are wanted (`--hops`); undefined: attach all. */
export function hopKindsToSkip(attach: ReadonlySet<HopKind> | undefined): ReadonlySet<HopKind> | undefined {
  return attach ? new Set(HOP_KINDS.filter((k) => !attach.has(k))) : undefined;
}

/** L3 family as the probes report it: 4, 6, or 0 for anything else. */
export type Family = 0 | 4 | 6;

export interface HopEvent {
  readonly kind: HopKind;
  /** Kernel monotonic clock (bpf_ktime_get_ns), in ns. Exact below 2^53 ns (~104 days of uptime). */
  readonly t: number;
  readonly cpu: number;
  /** sk_buff address as lowercase hex without 0x. Identifies a packet only while it lives. */
  readonly skb: string;
  /** Network namespace inode number. */
  readonly netns: number;
  /** 0 when the skb had no device (e.g. dropped in OUTPUT before routing). */
  readonly ifindex: number;
  /** '' when the skb had no device. */
  readonly ifname: string;
  readonly family: Family;
  /** IP protocol number of the L4 header (6 tcp, 17 udp, 1 icmp, 58 icmpv6). */
  readonly proto: number;
  /** IP packet length from the IP header (tot_len, or payload_len + 40). */
  readonly len: number;
  /** IPv4 identification; 0 for IPv6. */
  readonly ipId: number;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly icmpType: number;
  readonly icmpId: number;
  readonly tcpFlags: number;
  readonly tcpSeq: number;
  /** enum skb_drop_reason value for 'drop' events, 0 otherwise. Decode with a DropReasons table. */
  readonly reason: number;
  /** First bytes from the IP header, when the trace captures them (pcapng export); else absent. */
  readonly head?: Uint8Array;
  /**
   * The tunnel headers around the packet, when a tunnel device has encapsulated it (underlay
   * hops, probes/README.md "Tunnels"): the hop's own fields are then the inner packet's. Absent
   * otherwise.
   */
  readonly outer?: HopOuter;
  /**
   * On the first hop of a packet a local socket sent, when the header already differs from the
   * socket's own tuple: what the socket asked for (NAT in its namespace's OUTPUT/POSTROUTING
   * ran before any device saw the packet; `curl 127.0.0.1:PORT` to a published port). Absent
   * otherwise. Same family as the hop.
   */
  readonly sent?: HopSent;
  /**
   * The hop's own IP fragment field, when the packet is a fragment (a datagram larger than its
   * sender's MTU: probes/README.md "A sender's own fragments"): host order in IPv4's layout,
   * 0x2000 more fragments, the low 13 bits the offset in 8-byte units (an IPv6 Fragment header's
   * converted; DF left out). Absent otherwise. Only the first fragment (offset 0) has ports: the
   * later ones share its source, destination, protocol and `ipId` (shared/reconstruct.ts joins them).
   */
  readonly frag?: number;
  /**
   * The cluster node whose kernel saw it (its `t` is that node's clock, or the recording's
   * reference clock in a recording cut from a hub's stream, `record --hub`). Absent on one host.
   */
  readonly node?: string;
}

/** The tuple a sending socket holds (its own address and port, its peer's), host-order ports. */
export interface HopSent {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

/** Outer headers of an encapsulated hop, as the probe read them (ports and VNI host order). */
export interface HopOuter {
  readonly family: 4 | 6;
  /** Outer IP protocol: 17 for UDP tunnels (vxlan, geneve), 4 ipip, 41 IPv6-in-IP, 47 gre. */
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  /** 0 for tunnels that are not UDP. */
  readonly sport: number;
  readonly dport: number;
  /** The 24-bit VNI read where vxlan and geneve carry it (UDP tunnels only; meaningless for others). */
  readonly vni: number;
  /** False when the inner header was not IP: the hop's fields are then the outer headers. */
  readonly innerRead: boolean;
  /**
   * IPv4 outer headers: the id and the fragment field (host order: 0x2000 more fragments, low 13
   * bits the offset in 8-byte units). A datagram too big for the underlay is sent as fragments,
   * new skbs that share this id (shared/reconstruct.ts joins them to their packet). IPv6: the
   * low 16 bits of a Fragment header's id and its offset/M in the same layout (0 without one;
   * Linux never fragments a tunnel's IPv6 datagram itself, another sender may: probes/README.md).
   */
  readonly ipId?: number;
  readonly frag?: number;
}

/** IP protocol numbers by the names users type. */
export const PROTO_NUMBERS = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

export function protoName(proto: number): string {
  switch (proto) {
    case 1: return 'icmp';
    case 6: return 'tcp';
    case 17: return 'udp';
    case 58: return 'icmpv6';
    case 132: return 'sctp';
    default: return `ip-proto-${proto}`;
  }
}

/** Inverse of protoName. */
export function protoNumber(name: string): number {
  switch (name) {
    case 'icmp': return 1;
    case 'tcp': return 6;
    case 'udp': return 17;
    case 'icmpv6': return 58;
    case 'sctp': return 132;
    default: return Number(/^ip-proto-(\d+)$/.exec(name)?.[1] ?? -1);
  }
}

/**
 * Extra observations that explain a hop (the "notes" tier, `trace --notes`): route lookups,
 * bridge learning, queueing, neighbour waits, ICMP errors (tracepoints, probes/notes/), and on
 * kernels with kprobes the function-level tier (probes/deep/): netfilter hook runs, bridge
 * forwarding decisions, veth crossings, ip_forward, NAT rewrites. Printed by the probes as
 * `N <kind> <t> <cpu> <skb> <netns> ...` lines (probes/notes/note-line.ts documents each kind).
 */
export type HopNoteKind =
  | 'fib' | 'fib6' | 'fdb' | 'neigh' | 'icmp' | 'qdisc'
  | 'nfhook' | 'brfwd' | 'brflood' | 'veth' | 'ipfwd' | 'nat';

export const HOP_NOTE_KINDS: readonly HopNoteKind[] = ['fib', 'fib6', 'fdb', 'neigh', 'icmp', 'qdisc', 'nfhook', 'brfwd', 'brflood', 'veth', 'ipfwd', 'nat'];

export interface HopNote {
  readonly kind: HopNoteKind;
  /** Kernel monotonic ns, like HopEvent.t. */
  readonly t: number;
  readonly cpu: number;
  /** The packet's sk_buff address (hex, no 0x), '0' when the note names no packet. */
  readonly skb: string;
  /** Namespace inode, 0 when unknown. */
  readonly netns: number;
  /** The kind's own fields, by the names probes/notes/note-line.ts gives them. */
  readonly data: Readonly<Record<string, number | string>>;
  /** The cluster node that saw it: only in recordings of a hub's sessions (wire field 8). */
  readonly node?: string;
}
