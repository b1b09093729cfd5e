/**
 * The modelled topology of one host: every network namespace with its interfaces, routes,
 * policy rules, forwarding switches and the netfilter rules that matter for a packet's path.
 * server/topology/discover.ts fills it from `ip -j`, `nft -j` and `iptables-save`;
 * shared/topology/simulate.ts walks it. `Topology` is also the public JSON of
 * `hoptrace topology --json`: add fields, never rename or remove them.
 */

import type { Workload } from './workloads.js';

export type IpFamily = 4 | 6;

/** Netfilter hooks in the vocabulary users know (iptables chain names). */
export type NfHook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';

export const NF_HOOKS: readonly NfHook[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

export interface Topology {
  readonly namespaces: readonly NamespaceModel[];
  /** Problems that concern no single namespace (a namespace that vanished mid-discovery...). */
  readonly errors: readonly string[];
  /** Wall clock (ms since epoch) when discovery started. */
  readonly discoveredAt: number;
  /** How long one full discovery took, in ms. */
  readonly durationMs: number;
}

export interface NamespaceModel {
  /** Network namespace inode number: the identity the probes report. */
  readonly netns: number;
  /** `ip netns` name, 'host' for the initial namespace, else a label like `pid 1234 (nginx)`. */
  readonly name: string;
  /** Path usable with `nsenter --net=`: /run/netns/NAME or /proc/PID/ns/net. */
  readonly path: string;
  readonly pids: readonly number[];
  readonly interfaces: readonly NetInterface[];
  /** Routes of all tables (local and main at least), both families. */
  readonly routes: readonly Route[];
  /** Policy routing rules (`ip rule`), both families. Netfilter rules live in `netfilter`. */
  readonly rules: readonly PolicyRule[];
  /** net.ipv4.ip_forward and net.ipv6.conf.all.forwarding; null when they could not be read. */
  readonly forwarding: { readonly ipv4: boolean | null; readonly ipv6: boolean | null };
  /** net.bridge.bridge-nf-call-ip(6)tables: bridged frames traverse the ip/ip6 hooks (br_netfilter). */
  readonly bridgeNfCall: { readonly ipv4: boolean; readonly ipv6: boolean };
  /**
   * net.ipv4.conf.{all,<dev>}.route_localnet: whether a 127.0.0.0/8 source or destination may be
   * routed off the loopback (the kernel checks `all` or the device). Runtimes set it on their
   * bridge for localhost port forwards (OUTPUT DNAT of 127.0.0.1). Read only in namespaces with
   * NAT rules or bridges; absent when not read.
   */
  readonly routeLocalnet?: { readonly all: boolean; readonly devices: readonly string[] };
  readonly netfilter: Netfilter;
  /** The neighbour (ARP/NDP) table, `ip -j neigh show`: which MAC an address had here lately. */
  readonly neighbours?: readonly Neighbour[];
  /** Bridge forwarding databases, `bridge -j fdb show` (namespaces with bridges only): which port a MAC was learned on. */
  readonly fdb?: readonly FdbEntry[];
  /**
   * Tunnel forwarding entries (`bridge -j fdb show` on vxlan devices, entries with `dst`): which
   * node a MAC behind the tunnel is sent to. flannel programs one per peer instead of a static
   * remote; the all-zeros MAC is a static remote's default entry. Absent without vxlan devices.
   */
  readonly tunnelFdb?: readonly TunnelFdbEntry[];
  /** What could not be read or understood in this namespace. The rest of the entry is still valid. */
  readonly errors: readonly string[];
  /**
   * Containers whose processes live here (shared/topology/workloads.ts): empty for the host and
   * for namespaces no runtime owns. Absent in models of older versions.
   */
  readonly workloads?: readonly Workload[];
  /** The name a person knows it by: the pod, else the container names; null when none. */
  readonly workload?: string | null;
  /** Why `workloads` may be incomplete (a runtime missing, slow or unreadable). */
  readonly workloadNote?: string;
}

export interface Neighbour {
  readonly addr: string;
  readonly dev: string;
  /** null while unresolved (INCOMPLETE, FAILED). */
  readonly mac: string | null;
  /** The kernel's NUD states: REACHABLE, STALE, PERMANENT, FAILED... */
  readonly state: readonly string[];
}

export interface FdbEntry {
  readonly mac: string;
  /** The bridge port the MAC is behind. */
  readonly port: string;
  readonly bridge: string;
  /** A permanent entry: one of the bridge's own addresses (not learned from traffic). */
  readonly permanent: boolean;
}

export interface TunnelFdbEntry {
  readonly mac: string;
  /** The tunnel device. */
  readonly dev: string;
  /** The underlay address frames to `mac` are sent to. */
  readonly dst: string;
  readonly permanent: boolean;
}

/** A tunnel device's parameters, from `ip -d -j link` (linkinfo.info_data). Fields the kind has not are null. */
export interface TunnelParams {
  /** The kernel's kind: vxlan, geneve, ipip, sit, gre, gretap, ip6gre, ip6tnl... */
  readonly type: string;
  /** vxlan / geneve VNI. */
  readonly vni: number | null;
  /** Underlay source address (local or local6). */
  readonly local: string | null;
  /** Static remote underlay address (remote or remote6); null when the FDB decides (flannel). */
  readonly remote: string | null;
  /** UDP destination port (vxlan, geneve). */
  readonly dstport: number | null;
  /** The underlay device the tunnel is bound to. */
  readonly underlay: string | null;
  /** vxlan: learns remote MACs from traffic. */
  readonly learning: boolean | null;
  /**
   * gre family: the key sent in each packet's GRE header (iproute2's `okey`, printed as a dotted
   * quad), null without one. Absent in models recorded before it was read.
   */
  readonly key?: number | null;
  /** Metadata-based ("external", collect_metadata: Cilium, OVN): no fixed VNI, remote or key. */
  readonly external?: boolean;
}

export interface PeerRef {
  readonly netns: number;
  readonly ifindex: number;
  readonly name: string;
}

export interface NetInterface {
  readonly ifindex: number;
  readonly name: string;
  /** 'loopback', 'veth', 'bridge', 'physical', or the kernel's kind as is ('vxlan', 'dummy', 'ifb'...). */
  readonly kind: string;
  readonly mac: string | null;
  readonly mtu: number;
  /** Administratively up (IFF_UP). */
  readonly up: boolean;
  /** Carrier present (IFF_LOWER_UP); a veth whose peer is down has none. */
  readonly carrier: boolean;
  /** CIDR strings, e.g. 10.244.1.1/24, fd00::1/64. */
  readonly addrs: readonly string[];
  /** Name of the bridge this interface is a port of, null when none. */
  readonly master: string | null;
  /**
   * A bridge port's hairpin mode (`ip -d link`: bridge_slave hairpin): whether the bridge may send
   * a frame back out of the port it came in on (a container reaching itself through a DNAT).
   * Absent when not a bridge port or not read.
   */
  readonly hairpin?: boolean;
  /** The other end of a veth pair, resolved across namespaces; null when none or unresolved. */
  readonly peer: PeerRef | null;
  /** The kernel's raw link reference (IFLA_LINK / IFLA_LINK_NETNSID), kept for peer resolution. */
  readonly link: {
    /** Peer ifindex; 0 when the kernel gave only a name (peer in the same namespace). */
    readonly ifindex: number;
    readonly nsid: number | null;
    /** Peer name, given by iproute2 when the peer is in the same namespace. */
    readonly name?: string;
  } | null;
  /** For bridges: the bridge's own nf_call_iptables/ip6tables options. */
  readonly bridgeNfCall?: { readonly ipv4: boolean; readonly ipv6: boolean };
  /** For tunnel devices (vxlan, geneve, ipip, sit, gre...): their parameters. */
  readonly tunnel?: TunnelParams;
}

export type RouteType =
  | 'unicast' | 'local' | 'broadcast' | 'multicast' | 'anycast'
  | 'blackhole' | 'unreachable' | 'prohibit' | 'throw' | 'nat' | 'unspec';

export interface Route {
  readonly family: IpFamily;
  /** 'main', 'local', 'default' or the table number as a string. */
  readonly table: string;
  readonly type: RouteType;
  /** CIDR; the default route is 0.0.0.0/0 or ::/0. */
  readonly dst: string;
  readonly gateway: string | null;
  readonly dev: string | null;
  readonly prefsrc: string | null;
  readonly metric: number;
  /** Multipath routes: every next hop (the simulator takes the first and says so). */
  readonly nexthops: readonly { readonly gateway: string | null; readonly dev: string | null }[];
}

export interface PolicyRule {
  readonly family: IpFamily;
  readonly priority: number;
  /** 'lookup' (use `table`), 'blackhole', 'unreachable', 'prohibit', 'goto', 'nop'. */
  readonly action: string;
  readonly table: string | null;
  /** Selector CIDRs; null means all. */
  readonly src: string | null;
  readonly dst: string | null;
  readonly iif: string | null;
  readonly oif: string | null;
  /** `not`: the rule applies when the selectors do not match. */
  readonly invert: boolean;
  /** Selectors the simulator does not model (fwmark, uidrange, ipproto, ports, tos...), as text. */
  readonly unsupported: readonly string[];
}

/** Netfilter families as nft names them; iptables rules show up as ip/ip6 (iptables-nft). */
export type NfFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

export interface Netfilter {
  readonly chains: readonly NfChain[];
  /** In evaluation order within each chain. */
  readonly rules: readonly NfRule[];
}

export interface NfChain {
  readonly family: NfFamily;
  readonly table: string;
  readonly name: string;
  /** Base chains only: nft hook name (prerouting, input, forward, output, postrouting, ingress...). */
  readonly hook: string | null;
  /** Base chains only: filter, nat or route. */
  readonly type: string | null;
  readonly prio: number | null;
  readonly policy: 'accept' | 'drop' | null;
}

export interface NfRule {
  readonly family: NfFamily;
  readonly table: string;
  readonly chain: string;
  readonly handle: number;
  readonly matches: readonly NfMatch[];
  readonly action: NfAction;
  /** The rule as the user wrote it: an iptables-save line for iptables rules, nft syntax otherwise. */
  readonly text: string;
  readonly origin: 'nft' | 'iptables';
}

export type NfMatch =
  /** Addresses: CIDRs, single addresses, or `a-b` ranges. */
  | { readonly kind: 'addr'; readonly field: 'saddr' | 'daddr'; readonly family: IpFamily; readonly neg: boolean; readonly values: readonly string[] }
  /** Ports: `proto` null means any protocol that has ports (nft `th`). Implies that protocol. */
  | { readonly kind: 'port'; readonly field: 'sport' | 'dport'; readonly proto: number | null; readonly neg: boolean; readonly ranges: readonly (readonly [number, number])[] }
  | { readonly kind: 'l4proto'; readonly neg: boolean; readonly protos: readonly number[] }
  /** Interface names; a trailing `*` is a prefix wildcard (iptables `+`). */
  | { readonly kind: 'iface'; readonly field: 'iifname' | 'oifname'; readonly neg: boolean; readonly names: readonly string[] }
  /** Conntrack state: new, established, related, invalid, untracked. */
  | { readonly kind: 'ctstate'; readonly neg: boolean; readonly states: readonly string[] }
  | { readonly kind: 'family'; readonly families: readonly IpFamily[] }
  /** Address type (iptables -m addrtype, nft fib ... type): local, unicast, broadcast, multicast... */
  | { readonly kind: 'addrtype'; readonly field: 'saddr' | 'daddr'; readonly neg: boolean; readonly types: readonly string[] }
  /**
   * The packet's mark (`-m mark`, nft `meta mark`) or its connection's (`-m connmark`, nft
   * `ct mark`): matches when (mark & mask) == value.
   */
  | { readonly kind: 'mark'; readonly of: 'packet' | 'conn'; readonly neg: boolean; readonly value: number; readonly mask: number }
  /**
   * `-m statistic`: matches a share of new packets, at random or every nth. `probability` is
   * that share (1/every for nth). The simulator follows both outcomes as alternative paths.
   */
  | { readonly kind: 'statistic'; readonly mode: 'random' | 'nth'; readonly neg: boolean; readonly probability: number }
  /** Anything the simulator does not evaluate; `text` says what. */
  | { readonly kind: 'unknown'; readonly text: string };

export type NfAction =
  | { readonly kind: 'accept' | 'drop' | 'reject' | 'return' | 'continue' }
  | { readonly kind: 'jump' | 'goto'; readonly target: string }
  /** addr null: keep the address (port-only mapping). A range maps to its first address. */
  | { readonly kind: 'dnat' | 'snat'; readonly addr: string | null; readonly port: number | null }
  | { readonly kind: 'masquerade' }
  | { readonly kind: 'redirect'; readonly port: number | null }
  /**
   * Sets the packet's or its connection's mark, as MARK/CONNMARK `--set-xmark value/mask`
   * and nft `meta mark set`/`ct mark set` do: mark = (mark & ~mask) ^ value. `from`: the
   * value is the other mark masked by `fromMask` instead (CONNMARK --save-mark/--restore-mark,
   * nft `ct mark set meta mark`). The rule goes on to the next one.
   */
  | { readonly kind: 'mark'; readonly of: 'packet' | 'conn'; readonly value: number; readonly mask: number; readonly from?: { readonly of: 'packet' | 'conn'; readonly mask: number } }
  /**
   * nft `numgen random mod N vmap { 0 : goto a, 1 : goto b, ... }` (kube-proxy's nftables mode
   * choosing an endpoint): each verdict with its share of packets; the simulator follows each.
   */
  | { readonly kind: 'numgen'; readonly choices: readonly { readonly share: number; readonly verdict: 'jump' | 'goto'; readonly target: string }[] }
  | { readonly kind: 'unknown'; readonly text: string };

export const EMPTY_NETFILTER: Netfilter = { chains: [], rules: [] };
