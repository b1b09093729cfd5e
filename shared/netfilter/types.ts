/**
 * Netfilter rule traces: what `nft monitor trace` reports for one packet at one hook, and the
 * shape in which those verdicts are attached to a reconstructed packet (`Packet.netfilter`,
 * part of the public NDJSON contract of `trace --json --netfilter`: add fields, never rename).
 */
import type { FilterHop } from '../filter/match.js';

/** Netfilter hooks, in the words nft uses for them. `unknown` when the chain's hook could not be found. */
export type NfHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress' | 'unknown';

/** What a NAT statement in a rule does to the packet (read from the rule text). */
export type NfNatKind = 'snat' | 'dnat' | 'masquerade' | 'redirect';

/**
 * Headers nft printed on a trace's `packet:` line (the packet as it was at that hook). The tuple
 * is a FilterHop (a filter can match it as it matches a hop): `family` 0 when the line had no IP
 * header, `proto` 0 when nft printed none it knows.
 */
export interface NfPacketHeaders extends FilterHop {
  readonly iif: string | null;
  readonly oif: string | null;
  /** IPv4 identification (0 for IPv6). */
  readonly ipId: number;
  /** IP total length (IPv4 `ip length`, IPv6 payload length + 40); 0 when absent. */
  readonly len: number;
  /** TCP sequence number, 0 when absent. */
  readonly tcpSeq: number;
  /** ICMP/ICMPv6 echo id, 0 when absent. */
  readonly icmpId: number;
}

/** One rule, policy or return step of one packet through one chain, as the monitor printed it. */
export interface NetfilterEvent {
  /** Namespace name as the tracer knows it (null when unknown). */
  readonly ns: string | null;
  /** Namespace inode. */
  readonly netns: number;
  /**
   * When the event reached hoptrace, on the kernel's monotonic clock (the one hop events use).
   * nft prints no time, so this is an upper bound, typically a few hundred µs after the fact.
   */
  readonly t: number;
  /** nft's trace id (hex): one per base-chain run; chains jumped to share their base chain's. */
  readonly traceId: string;
  /** nft family of the table: ip, ip6, inet, bridge, arp, netdev. */
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly hook: NfHook;
  /** What the line reports: a rule that matched, the chain's policy, or a return from a chain. */
  readonly type: 'rule' | 'policy' | 'return';
  /** Rule text as nft prints it, counters removed; null for policies and returns. */
  readonly rule: string | null;
  /** Rule handle, null when not printed. */
  readonly handle: number | null;
  /** accept, drop, continue, return, queue, `jump CHAIN`, `goto CHAIN`, ... */
  readonly verdict: string;
  readonly nat: NfNatKind | null;
  readonly packet: NfPacketHeaders;
  /** The cluster node that saw it: only in recordings of a hub's sessions (wire field 26). */
  readonly node?: string;
}

/** A netfilter step attached to a packet (`Packet.netfilter[]`). */
export interface NetfilterVerdict {
  readonly ns: string | null;
  readonly netns: number;
  readonly hook: NfHook;
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  /**
   * `conntrack`: no rule ran — conntrack rewrote the packet as the NAT rule named here told it to
   * for the connection's first packet (seen earlier in this trace); NAT rules only see first packets.
   */
  readonly type: 'rule' | 'policy' | 'return' | 'conntrack';
  /** Rule text (counters removed); null for a policy or return. */
  readonly rule: string | null;
  readonly handle: number | null;
  readonly verdict: string;
  /** The NAT this rule applied, when it is a NAT rule. */
  readonly nat: NfNatKind | null;
  /** Index into `hops` of the hop this step happened after; -1 when before the first hop. */
  readonly afterHop: number;
}

/** Verdicts that end a packet's journey at this hook. */
export function isDropVerdict(verdict: string): boolean {
  return verdict === 'drop' || verdict.startsWith('reject');
}

/** Netfilter hook by iptables chain name, for chains whose definition could not be read. */
export function hookOfIptablesChain(chain: string): NfHook | null {
  switch (chain) {
    case 'PREROUTING': return 'prerouting';
    case 'INPUT': return 'input';
    case 'FORWARD': return 'forward';
    case 'OUTPUT': return 'output';
    case 'POSTROUTING': return 'postrouting';
    default: return null;
  }
}
