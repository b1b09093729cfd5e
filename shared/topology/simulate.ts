/**
 * The expected path of one packet through the modelled topology, hop by hop, in the same
 * vocabulary as observed hops (see shared/kernel-notes.md, "What a packet looks like"):
 * - leaving namespace A by veth a0 whose peer b0 is in B: xmit(A, a0), recv(B, b0);
 * - arriving on a bridge port: recv(port); if the bridge's namespace routes it (it owns the
 *   next hop), recv(bridge) follows; if bridged to another port: xmit(egress port);
 * - routed out of a bridge: xmit(bridge), xmit(egress port);
 * - loopback: xmit(lo), recv(lo);
 * - into a tunnel (shared/topology/overlay.ts): xmit(tunnel device) with `encap`, then the outer
 *   packet as the tunnel's node sends it (OUTPUT, POSTROUTING, the underlay's routes and
 *   filters), its hops showing the inner tuple with `outer`, up to the far node's INPUT; then
 *   recv(far tunnel device) with `decap`, and the inner packet goes on from there.
 * Netfilter hooks run where the kernel runs them; the tuple on each hop is the one the kernel
 * shows there (a recv hop is before DNAT, an xmit hop after SNAT). The simulation assumes the
 * first packet of a new connection unless told otherwise, and says where it guessed.
 */
import type { IpFamily, NamespaceModel, NetInterface, NfHook, NfRule, Topology } from './model.js';
import type { AppliedRule, HookResult, PacketState } from './nf-eval.js';
import { isTracerTable, runHook } from './nf-eval.js';
import { formatAddr, parseAddr } from './ip.js';
import { hasPorts, protoLabel, protoNumber } from './proto.js';
import { lookupRoute, ownsAddress, primaryAddress } from './routing.js';
import type { Connection, ConntrackView, CtMatch } from './conntrack.js';
import { applyConnection, reverseTuple, sameTuple, tupleOf, tupleText } from './conntrack.js';
import type { Encap, OuterTuple } from '../packet.js';
import { encapType, isFollowedTunnel, isL2Tunnel, outerProto, tunnelPeers, tunnelPort, tunnelReceiver, tunnelSource, tunnelTarget, type BridgedFrame } from './overlay.js';

/**
 * How the expected path ends:
 * - delivered: reached a namespace that owns the destination and passed its INPUT hook;
 * - dropped: a netfilter verdict, a blackhole route, forwarding switched off, TTL, a down link;
 * - unreachable: no route, an unreachable/prohibit route, or no neighbour answers for the next hop;
 * - left-model: left through an interface whose far side the model does not know (physical NIC, tunnel...);
 * - loop: the hop guard stopped it.
 */
export type PathFate = 'delivered' | 'dropped' | 'unreachable' | 'left-model' | 'loop';

export interface Flow {
  /** Namespace name, or inode number (as number or decimal string). */
  readonly from: string | number;
  /** Source address; default: the preferred source of the route to dst. */
  readonly src?: string | null;
  readonly dst: string;
  /** Protocol name (tcp, udp, icmp, icmpv6...) or number. */
  readonly proto: string | number;
  readonly sport?: number;
  readonly dport?: number;
  /**
   * Start as a packet received on this interface of `from` (e.g. the first observed hop was a
   * recv) instead of one sent by a local socket.
   */
  readonly iif?: string | null;
  /** Conntrack state to assume: 'new' (default; NAT rules apply) or 'established'. */
  readonly ctState?: 'new' | 'established';
  /**
   * Connections known from earlier packets: a packet that belongs to one gets that
   * connection's NAT (reversed for replies) instead of a nat-table lookup, as the kernel does.
   */
  readonly conntrack?: ConntrackView;
  /**
   * The packet starts inside this tunnel (its first observed hop was on the underlay): the walk
   * follows the outer packet from `from`, its hops showing the inner tuple (src, dst, ports).
   */
  readonly tunnel?: Encap | null;
}

export interface ExpectedHop {
  readonly ns: string;
  readonly netns: number;
  readonly ifname: string;
  readonly ifindex: number;
  /** 'drop' only as the last hop of a packet the kernel would free in that namespace. */
  readonly event: 'xmit' | 'recv' | 'drop';
  /** Hook of the last rule that applied at this hop (null when none did). */
  readonly hook: NfHook | null;
  /** Table of that rule (nat, filter, or an nft table's name). */
  readonly table: string | null;
  /** Hooks the packet traverses at this hop (after a recv, before an xmit). */
  readonly hooks: NfHook[];
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /** Rules that changed the packet or decided its fate here. */
  readonly rules: AppliedRule[];
  /** Present when this hop rests on an assumption. */
  guess?: string[];
  /**
   * True when the kernel shows this hop only sometimes (a bridged DNAT's transmit on the bridge
   * device, taken only while the neighbour's header cache is cold): its absence is no divergence.
   */
  optional?: boolean;
  /**
   * On the tunnel device's transmit: the tunnel and the outer headers, as on an observed hop
   * (outer.sport is 0: the kernel picks it from a hash of the inner flow).
   */
  encap?: Encap;
  /** On the tunnel device's transmit: how the remote node was chosen (FDB entry, static remote, owner of the next hop). */
  tunnelVia?: string;
  /**
   * On the tunnel device's transmit: the tunnel's own tables (the vxlan FDB) send the packet
   * elsewhere than the node it is meant for, or nowhere. The path goes to the node it is meant
   * for; a packet that follows the tables diverges there, and the divergence says this.
   */
  tunnelFault?: string;
  /**
   * On the tunnel device's transmit, when its FDB entry has several destinations (head-end
   * replication of broadcast and unknown unicast): every VTEP the kernel sends a copy to, the
   * path's own remote among them. The copies show in a trace as clones of the packet.
   */
  tunnelCopies?: readonly string[];
  /** On hops inside a tunnel (the underlay): the outer headers. The hop's tuple stays the inner one. */
  outer?: OuterTuple;
  /** On the far tunnel device's receive: the tunnel the packet came out of. */
  decap?: Encap;
  /** On a path across nodes (shared/topology/nodes.ts): the node whose model this hop is from. */
  node?: string;
}

/**
 * Where a path left the model through a device whose far side it does not know (a physical NIC,
 * an underlay veth whose peer is on another node): what went out on the wire, so a model of the
 * next node can take it over (shared/topology/nodes.ts).
 */
export interface PathExit {
  readonly ns: string;
  readonly netns: number;
  readonly ifname: string;
  /** The next hop it was sent to (null: on-link, the destination itself). */
  readonly nexthop: string | null;
  /** The packet on the wire: the outer one inside a tunnel. */
  readonly wire: { readonly family: IpFamily; readonly proto: number; readonly src: string; readonly dst: string; readonly sport: number; readonly dport: number };
  /** Inside a tunnel: the inner tuple (what hops show) and the tunnel. */
  readonly inner?: { readonly src: string; readonly dst: string; readonly sport: number; readonly dport: number };
  readonly encap?: Encap;
}

export interface ExpectedDrop {
  readonly ns: string;
  readonly netns: number;
  readonly ifname: string;
  readonly reason: string;
  /** The kernel's skb drop reason name (without SKB_DROP_REASON_) expected for it, when known. */
  readonly kernelReason: string | null;
  readonly hook: NfHook | null;
  readonly table: string | null;
  readonly chain: string | null;
  /** The rule's text, or `policy drop`; null when no rule dropped it. */
  readonly rule: string | null;
}

export interface ExpectedPath {
  readonly flow: {
    readonly ns: string;
    readonly netns: number;
    readonly src: string;
    readonly dst: string;
    readonly proto: string;
    readonly sport: number;
    readonly dport: number;
    readonly iif: string | null;
  };
  readonly fate: PathFate;
  readonly reason: string;
  readonly hops: readonly ExpectedHop[];
  readonly drop: ExpectedDrop | null;
  /** True when any step rests on a guess (see notes and hops[].guess). */
  readonly guess: boolean;
  readonly notes: readonly string[];
  /**
   * The NATed connections this packet would create (conntrack entries), one per namespace
   * that rewrote it: later packets and replies are simulated against them.
   */
  readonly connections: readonly Connection[];
  /**
   * Present when a `statistic` match (kube-proxy's endpoint choice) decides the way: the share
   * of packets that take this path, the statistic rules it passed with their outcome, and every
   * other way with its own share. A packet seen on one of the alternatives is on its expected
   * path; `trace` then shows that alternative as the path (the others stay in `alternatives`).
   */
  readonly probability?: number;
  readonly via?: readonly string[];
  readonly alternatives?: readonly PathAlternative[];
  /** Left the model through a device whose far side it does not know: what went out there (fate left-model). */
  readonly exit?: PathExit;
}

/** Another way a packet may go when `statistic` matches decide it (see ExpectedPath.alternatives). */
export interface PathAlternative {
  readonly probability: number;
  /** The statistic rules met and their outcome: `matched: RULE` or `did not match: RULE`. */
  readonly via: readonly string[];
  readonly fate: PathFate;
  readonly reason: string;
  readonly hops: readonly ExpectedHop[];
  readonly drop: ExpectedDrop | null;
  readonly connections: readonly Connection[];
}

/** Bad input (unknown namespace, unparsable address...): the caller's mistake, not a path. */
export class FlowError extends Error {
  override readonly name = 'FlowError';
}

export interface SimulateOptions {
  /** Stop after this many hops (default 64). */
  readonly maxHops?: number;
  /**
   * Namespaces of other nodes (their own models): where a tunnel's frame is meant to go may be
   * there (shared/topology/overlay.ts tunnelTarget), though the walk stays in `topo`.
   */
  readonly tunnelPeers?: readonly NamespaceModel[];
}

/** Finds a namespace by name or inode number; null when none. */
export function resolveNamespace(topo: Topology, ref: string | number): NamespaceModel | null {
  if (typeof ref === 'number') return topo.namespaces.find((n) => n.netns === ref) ?? null;
  const byName = topo.namespaces.find((n) => n.name === ref);
  if (byName) return byName;
  if (/^\d+$/.test(ref)) return topo.namespaces.find((n) => n.netns === Number(ref)) ?? null;
  return null;
}

/** A tunnel the walk is inside (Walk.tunnels). */
interface Tunnel {
  readonly inner: PacketState;
  encap: Encap;
  readonly hop: ExpectedHop | null;
  shown: boolean;
  readonly innerMac: string | null;
  /** The device that encapsulated, "netns/ifindex" (null: started inside it). */
  readonly dev: string | null;
}

/** How many tunnels deep the walk follows a packet (a vxlan in a vxlan is 2). */
const MAX_TUNNEL_DEPTH = 4;

interface End {
  fate: PathFate;
  reason: string;
  drop?: ExpectedDrop;
  exit?: PathExit;
}

/** One stay of the packet in a namespace: conntrack works per namespace. */
interface Visit {
  readonly ns: NamespaceModel;
  /** The packet as it entered (before any hook). */
  readonly entry: PacketState;
  /** The connection it belongs to, when one is known. */
  readonly ct: CtMatch | null;
  /** The packet after the last hook so far. */
  last: PacketState;
}

class Walk {
  readonly hops: ExpectedHop[] = [];
  readonly notes: string[] = [];
  /** Notes that state facts (a known connection's NAT), not guesses. */
  readonly facts = new Set<string>();
  readonly connections: Connection[] = [];
  private ctUsed = false;
  private visit: Visit | null = null;
  /**
   * The tunnels the packet is inside, outermost last (a tunnel inside a tunnel: a vxlan whose
   * underlay is another vxlan's overlay): each with its inner packet and its encap hop. Walked
   * packets are the outermost one; hops show the first tunnel's inner packet (the packet).
   */
  private readonly tunnels: Tunnel[] = [];

  /** The outermost tunnel the packet is in, null outside any. */
  private get tunnel(): Tunnel | null {
    return this.tunnels[this.tunnels.length - 1] ?? null;
  }

  /** Starts the walk inside a tunnel: the packets walked are the outer one, `inner` is what hops show. */
  beginTunnel(inner: PacketState, encap: Encap): void {
    this.tunnels.push({ inner, encap, hop: null, shown: false, innerMac: null, dev: null });
  }
  /** Every `statistic` match met, in order, with the outcome this walk took. */
  readonly decisions: { readonly probability: number; readonly took: boolean; readonly rule: string }[] = [];
  constructor(
    readonly topo: Topology,
    readonly ctState: 'new' | 'established',
    readonly maxHops: number,
    readonly conntrack: ConntrackView | null,
    /** Outcomes of the first statistic matches (walking the alternatives); later ones hit when they can. */
    readonly choices: readonly boolean[] = [],
    /** The model tunnels look for their far end in: `topo` and other nodes' namespaces. */
    readonly tunnelTopo: Topology = topo,
  ) {}

  /** Decides the next statistic match as `choices` say (default: it hits, unless it never can). */
  private readonly choose = (probability: number, rule: NfRule): boolean => {
    const i = this.decisions.length;
    const took = this.choices[i] ?? probability > 0;
    this.decisions.push({ probability, took, rule: rule.text });
    return took;
  };

  /**
   * The packet enters `ns` (sent there, or received from another namespace). The stay before
   * is over: a NAT it made there becomes a connection (the kernel confirms the conntrack
   * entry as the packet leaves the namespace).
   */
  enter(ns: NamespaceModel, p0: PacketState): PacketState {
    this.confirm();
    const ct = this.conntrack?.find(ns.netns, tupleOf(p0)) ?? null;
    // skb->mark does not cross namespaces (skb_scrub_packet); the connection's mark is conntrack's.
    const p: PacketState = { ...p0, mark: 0, ctmark: ct?.conn.mark ?? 0 };
    this.visit = { ns, entry: p, ct, last: p };
    if (ct) {
      const text = `${ct.dir === 'reply' ? 'a reply on' : 'a later packet of'} the connection ${protoLabel(ct.conn.orig.proto)} ${tupleText(ct.conn.orig)} that ${ns.name} NATed: conntrack applies its NAT${ct.dir === 'reply' ? ' in reverse' : ''}, the nat table is not consulted`;
      this.facts.add(text);
      this.note(text);
    }
    return p;
  }

  /** Ends the current stay; records its NAT as a connection (when delivered or passed on). */
  confirm(): void {
    const v = this.visit;
    this.visit = null;
    if (!v || v.ct) return;
    const orig = tupleOf(v.entry);
    const out = tupleOf(v.last);
    if (sameTuple(orig, out)) return;
    const mark = v.last.ctmark ?? 0;
    this.connections.push({ netns: v.ns.netns, ns: v.ns.name, orig, reply: reverseTuple(out), ...(mark !== 0 ? { mark } : {}) });
  }

  note(text: string, hop?: ExpectedHop): void {
    if (!this.notes.includes(text)) this.notes.push(text);
    if (hop) (hop.guess ??= []).push(text);
  }

  get usedCt(): boolean {
    return this.ctUsed;
  }

  emit(ns: NamespaceModel, iface: NetInterface | null, ifname: string, event: ExpectedHop['event'], p: PacketState): ExpectedHop | End {
    if (this.hops.length >= this.maxHops) {
      return { fate: 'loop', reason: `stopped after ${this.maxHops} hops (routing or bridging loop?)` };
    }
    // Inside a tunnel the hop shows the inner packet, and the outer one beside it (as observed
    // hops do): inside nested tunnels, the packet itself and the outermost headers.
    const t = this.tunnel;
    const shown = this.tunnels[0]?.inner ?? p;
    const hop: ExpectedHop = {
      ns: ns.name, netns: ns.netns, ifname, ifindex: iface?.ifindex ?? 0, event, hook: null, table: null, hooks: [],
      src: shown.src, dst: shown.dst, sport: shown.sport, dport: shown.dport, rules: [],
    };
    if (t) {
      hop.outer = { family: p.family, proto: p.proto, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport };
      if (!t.shown) {
        // The encap names the outer headers as the first underlay hop shows them (after the node's NAT).
        t.shown = true;
        t.encap = { ...t.encap, outer: hop.outer };
        // Started inside the tunnel: the first hop says which (as an observed packet's does).
        (t.hop ?? hop).encap = t.encap;
      }
    }
    this.hops.push(hop);
    if (event === 'recv') this.noteUnmodelledChains(ns, hop);
    return hop;
  }

  private readonly chainNoted = new Set<number>();

  /** netdev (ingress) and bridge-family chains see frames too; the model does not evaluate them. */
  private noteUnmodelledChains(ns: NamespaceModel, hop: ExpectedHop): void {
    if (this.chainNoted.has(ns.netns)) return;
    const other = ns.netfilter.chains.filter((c) => c.hook !== null && (c.family === 'netdev' || c.family === 'bridge' || c.family === 'arp') && !isTracerTable(c.table));
    if (other.length === 0) return;
    this.chainNoted.add(ns.netns);
    const names = [...new Set(other.map((c) => `${c.family} ${c.table} ${c.name}`))].join(', ');
    this.note(`${ns.name} has ${names} (netdev/bridge/arp family chains), which the model does not evaluate`, hop);
  }

  /** Runs a hook and records it on `hop` (rules, guesses). */
  hook(hop: ExpectedHop | null, ns: NamespaceModel, hook: NfHook, p0: PacketState, iif: string | null, oif: string | null, skipNat: boolean): HookResult {
    const visit = this.visit && this.visit.ns.netns === ns.netns ? this.visit : null;
    const ct = visit?.ct ?? null;
    // A known connection: its NAT comes from conntrack (destination in PREROUTING/OUTPUT,
    // source in POSTROUTING/INPUT), never from the nat table, and it is not new.
    const ctRule = (from: PacketState, to: PacketState): AppliedRule | null => {
      if (!ct || sameTuple(tupleOf(from), tupleOf(to))) return null;
      const host = (a: string, port: number): string => (port === 0 ? a : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
      const changed = hook === 'PREROUTING' || hook === 'OUTPUT' ? `destination ${host(to.dst, to.dport)}` : `source ${host(to.src, to.sport)}`;
      return {
        hook, family: p0.family === 4 ? 'ip' : 'ip6', table: 'nat', chain: 'conntrack', type: 'nat', handle: null,
        rule: `${ct.dir === 'reply' ? 'reply of' : 'connection'} ${protoLabel(ct.conn.orig.proto)} ${tupleText(ct.conn.orig)}`,
        verdict: `${ct.dir === 'reply' ? 'reverse NAT' : 'NAT'}: ${changed}`,
      };
    };
    let p = p0;
    const pre = ct && (hook === 'PREROUTING' || hook === 'OUTPUT') ? applyConnection(ct, 'dst', p0) : null;
    const preRule = pre ? ctRule(p0, pre) : null;
    if (pre) p = pre;
    let r = runHook({
      ns, hook, iif, oif, ctState: ct ? 'established' : this.ctState, skipNat: skipNat || ct !== null,
      masqueradeSource: (dev) => this.sourceFor(ns, dev, p),
      choose: this.choose,
    }, p);
    if (r.dependsOnCt && !ct) this.ctUsed = true;
    if (preRule) r = { ...r, applied: [preRule, ...r.applied] };
    if (ct && r.verdict === 'accept' && (hook === 'POSTROUTING' || hook === 'INPUT')) {
      const post = applyConnection(ct, 'src', r.packet);
      const postRule = ctRule(r.packet, post);
      if (postRule) r = { ...r, packet: post, applied: [...r.applied, postRule] };
    }
    if (visit && r.verdict === 'accept') visit.last = r.packet;
    if (hop) {
      hop.hooks.push(hook);
      // The dropping rule goes on the drop hop (netfilterDrop), not on the hop before it.
      const applied = r.applied.filter((a) => a !== r.dropBy);
      if (applied.length > 0) {
        hop.rules.push(...applied);
        const last = applied[applied.length - 1];
        if (last) {
          (hop as { hook: NfHook | null }).hook = last.hook;
          (hop as { table: string | null }).table = last.table;
        }
      }
    }
    for (const g of r.guesses) this.note(g, hop ?? undefined);
    return r;
  }

  sourceFor(ns: NamespaceModel, dev: string | null, p: PacketState): string | null {
    const dst = parseAddr(p.dst);
    if (dst) {
      const lookup = lookupRoute(ns, dst, null, 'lo');
      const r = lookup.result;
      if (r.kind === 'unicast' && r.dev === dev && r.route.prefsrc) return r.route.prefsrc;
    }
    return primaryAddress(ns, dev, p.family);
  }

  nsByInode(netns: number): NamespaceModel | null {
    return this.topo.namespaces.find((n) => n.netns === netns) ?? null;
  }

  dropAt(ns: NamespaceModel, ifname: string, p: PacketState, d: Omit<ExpectedDrop, 'ns' | 'netns' | 'ifname'>, fate: PathFate = 'dropped', by: AppliedRule | null = null): End {
    const iface = ns.interfaces.find((i) => i.name === ifname) ?? null;
    const hop = this.emit(ns, iface, ifname, 'drop', p);
    if ('fate' in hop) return hop;
    if (d.hook) {
      (hop as { hook: NfHook | null }).hook = d.hook;
      (hop as { table: string | null }).table = d.table;
    }
    if (by) hop.rules.push(by);
    return { fate, reason: d.reason, drop: { ns: ns.name, netns: ns.netns, ifname, ...d } };
  }

  netfilterDrop(ns: NamespaceModel, ifname: string, p: PacketState, r: HookResult, hook: NfHook): End {
    const by = r.dropBy;
    const what = by ? `${by.verdict} in ${hook} (${by.table} ${by.chain}): ${by.rule}` : `dropped in ${hook}`;
    return this.dropAt(ns, ifname, p, {
      reason: what, kernelReason: 'NETFILTER_DROP', hook, table: by?.table ?? null, chain: by?.chain ?? null, rule: by?.rule ?? null,
    }, 'dropped', by);
  }

  // ---- the walk ----

  /** A packet sent by a socket in `ns`. */
  /** The output route of a locally generated packet: device and next hop, or how it ends. */
  private outputRoute(ns: NamespaceModel, p: PacketState): { oif: string; nexthop: string | null } | End {
    const dst = parseAddr(p.dst);
    if (!dst) return { fate: 'unreachable', reason: `bad destination ${p.dst}` };
    const lookup = lookupRoute(ns, dst, parseAddr(p.src), 'lo');
    for (const g of lookup.guesses) this.note(g);
    const r = lookup.result;
    switch (r.kind) {
      case 'none':
        return { fate: 'unreachable', reason: `no route to ${p.dst} in ${ns.name}` };
      case 'unreachable':
      case 'prohibit':
        return { fate: 'unreachable', reason: `${r.kind} route to ${r.route?.dst ?? p.dst} in ${ns.name}` };
      case 'blackhole':
        return {
          fate: 'dropped', reason: `blackhole route to ${r.route?.dst ?? p.dst} in ${ns.name}`,
          drop: { ns: ns.name, netns: ns.netns, ifname: '', reason: 'blackhole route', kernelReason: null, hook: null, table: null, chain: null, rule: null },
        };
      case 'broadcast':
      case 'multicast':
        return { fate: 'left-model', reason: `${r.kind} to ${p.dst} is not modelled` };
      case 'local':
        return { oif: 'lo', nexthop: null };
      case 'unicast':
        return { oif: r.dev, nexthop: r.nexthop };
    }
  }

  /** A packet sent by a socket in `ns`: route, OUTPUT, (re-route after DNAT), POSTROUTING, transmit. */
  localOut(ns: NamespaceModel, sent: PacketState): End {
    const p0 = this.enter(ns, sent);
    let route = this.outputRoute(ns, p0);
    if ('fate' in route) return route;
    // OUTPUT runs before the packet has a device (skb->dev is unset: a drop shows no interface).
    const pending: ExpectedHop = this.pendingHop(ns, p0);
    const out = this.hook(pending, ns, 'OUTPUT', p0, null, route.oif, false);
    if (out.verdict === 'drop') return this.mergeAndDrop(pending, ns, '', out.packet, out, 'OUTPUT');
    let p = out.packet;
    if (p.dst !== p0.dst) {
      // DNAT in OUTPUT: the kernel routes again with the new destination (ip_route_me_harder).
      route = this.outputRoute(ns, p);
      if ('fate' in route) return route;
    }
    if (route.oif !== 'lo' && p.family === 4 && isLoopback4(p.src)) {
      // A loopback source may leave through another device only with route_localnet=1 on it
      // (or on all): else ip_route_me_harder fails and the NAT hook drops the packet in OUTPUT.
      // Runtimes set it on their bridge for localhost port forwards. (A socket never sends
      // from 127.0.0.1 off lo by itself: such a packet, first seen already NATed, had a DNAT.)
      const allowed = localnetAllowed(ns, route.oif);
      if (allowed === false) {
        const by = pending.rules.find((x) => x.hook === 'OUTPUT' && (x.verdict.startsWith('dnat') || x.verdict.startsWith('NAT: destination'))) ?? null;
        const reason = `${p.src} may not leave ${ns.name} through ${route.oif} after the OUTPUT DNAT: route_localnet is 0 on ${route.oif} and on all`;
        const end = this.dropAt(ns, '', p, { reason, kernelReason: 'NETFILTER_DROP', hook: 'OUTPUT', table: by?.table ?? 'nat', chain: by?.chain ?? null, rule: by?.rule ?? null });
        const hop = this.hops[this.hops.length - 1];
        if (hop && hop.event === 'drop') {
          hop.rules.unshift(...pending.rules);
          hop.hooks.unshift(...pending.hooks);
        }
        return end;
      }
      const text = allowed === true
        ? `${p.src} leaves ${ns.name} through ${route.oif} after the OUTPUT DNAT: route_localnet=1 on ${route.oif} allows it`
        : `${p.src} leaves ${ns.name} through ${route.oif} after the OUTPUT DNAT: the kernel allows it with route_localnet=1 on ${route.oif} (not read)`;
      // Not read, it stays a guess: the packet may as well have been dropped in OUTPUT.
      if (allowed === true) this.facts.add(text);
      this.note(text);
    }
    const post = this.hook(pending, ns, 'POSTROUTING', p, null, route.oif, false);
    if (post.verdict === 'drop') return this.mergeAndDrop(pending, ns, route.oif, post.packet, post, 'POSTROUTING');
    p = post.packet;
    return this.transmit(ns, route.oif, route.nexthop, p, pending);
  }

  private pendingHop(ns: NamespaceModel, p: PacketState): ExpectedHop {
    return {
      ns: ns.name, netns: ns.netns, ifname: '', ifindex: 0, event: 'xmit', hook: null, table: null,
      hooks: [], src: p.src, dst: p.dst, sport: p.sport, dport: p.dport, rules: [],
    };
  }

  private mergeAndDrop(pending: ExpectedHop, ns: NamespaceModel, ifname: string, p: PacketState, r: HookResult, hook: NfHook): End {
    const end = this.netfilterDrop(ns, ifname, p, r, hook);
    const hop = this.hops[this.hops.length - 1];
    if (hop && hop.event === 'drop') {
      hop.rules.push(...pending.rules);
      hop.hooks.push(...pending.hooks);
      if (pending.guess) (hop.guess ??= []).push(...pending.guess);
    }
    return end;
  }

  /** Emits the xmit hop on `dev` (taking hooks and rules from `pending`) and follows the frame. */
  transmit(ns: NamespaceModel, dev: string, nexthop: string | null, p: PacketState, pending: ExpectedHop | null): End {
    const iface = ns.interfaces.find((i) => i.name === dev) ?? null;
    if (!iface) return { fate: 'left-model', reason: `output device ${dev} is not in the model of ${ns.name}` };
    if (!iface.up) return this.dropAt(ns, dev, p, { reason: `${dev} in ${ns.name} is down`, kernelReason: null, hook: null, table: null, chain: null, rule: null });
    const emitXmit = (onto: NetInterface): ExpectedHop | End => {
      const h = this.emit(ns, onto, onto.name, 'xmit', p);
      if ('fate' in h) return h;
      if (pending && onto === iface) {
        h.hooks.push(...pending.hooks);
        h.rules.push(...pending.rules);
        (h as { hook: NfHook | null }).hook = pending.hook;
        (h as { table: string | null }).table = pending.table;
        if (pending.guess) (h.guess ??= []).push(...pending.guess);
      }
      return h;
    };
    switch (iface.kind) {
      case 'loopback': {
        const x = emitXmit(iface);
        if ('fate' in x) return x;
        const r = this.emit(ns, iface, iface.name, 'recv', p);
        if ('fate' in r) return r;
        // NAT was settled on the way out; the loopback re-entry only sees filter chains.
        return this.l3In(ns, iface, p, r, true);
      }
      case 'bridge': {
        const target = nexthop ?? p.dst;
        const port = this.bridgeEgress(ns, iface, target, null, p.family);
        if (port === 'outside') {
          const x = emitXmit(iface);
          if ('fate' in x) return x;
          return { fate: 'left-model', reason: `${target} is not behind any modelled port of ${dev} in ${ns.name}; it may be behind a physical or tunnel port` };
        }
        if (!port) return { fate: 'unreachable', reason: `no neighbour: nothing on bridge ${dev} in ${ns.name} owns ${target}` };
        const x = emitXmit(iface);
        if ('fate' in x) return x;
        const y = emitXmit(port);
        if ('fate' in y) return y;
        return this.cross(ns, port, target, p);
      }
      case 'veth': {
        const target = nexthop ?? p.dst;
        const reach = this.l2Reaches(ns, iface, target, p.family, new Set());
        if (reach === false) return { fate: 'unreachable', reason: `no neighbour: nothing behind ${dev} in ${ns.name} owns ${target}` };
        const x = emitXmit(iface);
        if ('fate' in x) return x;
        return this.cross(ns, iface, target, p);
      }
      default: {
        if (isFollowedTunnel(iface)) {
          // A tunnel inside a tunnel (this one's underlay is another's overlay) is followed too,
          // unless it would take the packet into a tunnel it is already inside (a loop).
          const key = `${ns.netns}/${iface.ifindex}`;
          if (this.tunnels.length < MAX_TUNNEL_DEPTH && !this.tunnels.some((x) => x.dev === key)) return this.encapsulate(ns, iface, nexthop ?? p.dst, p, emitXmit);
        }
        const x = emitXmit(iface);
        if ('fate' in x) return x;
        if (isFollowedTunnel(iface)) return { fate: 'loop', reason: `leaves ${ns.name} through ${dev} (${iface.kind}) inside ${this.tunnels.length} tunnels, ${dev} among them: a tunnel loop` };
        return { fate: 'left-model', reason: `leaves ${ns.name} through ${dev} (${iface.kind}), beyond the model`, exit: this.exitAt(ns, dev, nexthop, p) };
      }
    }
  }

  /**
   * A packet routed into tunnel device `dev`: its transmit carries the encap, then the outer
   * packet is sent by `ns` like a local socket's (the tunnel's UDP or IP output runs OUTPUT and
   * POSTROUTING there) to the remote the tunnel picks, across the underlay.
   */
  private encapsulate(ns: NamespaceModel, dev: NetInterface, nexthop: string, p: PacketState, emitXmit: (onto: NetInterface) => ExpectedHop | End, bridged: BridgedFrame | null = null): End {
    const target = tunnelTarget(this.tunnelTopo, ns, dev, nexthop, bridged);
    const x = emitXmit(dev);
    if ('fate' in x) return x;
    for (const g of target.guesses) this.note(g, x);
    if (target.remote === null) {
      const why = target.noRemote ?? { reason: `${dev.name} in ${ns.name} has no remote`, kernelReason: null };
      return this.dropAt(ns, dev.name, p, { reason: why.reason, kernelReason: why.kernelReason, hook: null, table: null, chain: null, rule: null });
    }
    const remote = parseAddr(target.remote);
    if (!remote) return { fate: 'left-model', reason: `${dev.name} in ${ns.name}: remote ${target.remote} is not an address` };
    const src = tunnelSource(ns, dev, target.remote);
    if (src === null) return this.dropAt(ns, dev.name, p, { reason: `no route to the tunnel's remote ${target.remote} in ${ns.name}`, kernelReason: null, hook: null, table: null, chain: null, rule: null }, 'unreachable');
    const port = tunnelPort(dev);
    const outer: PacketState = { family: remote.family, proto: outerProto(dev, p.family), src, dst: formatAddr(remote), sport: 0, dport: port ?? 0 };
    const encap: Encap = {
      type: encapType(dev, p.family), vni: dev.tunnel?.vni ?? null,
      outer: { family: outer.family, proto: outer.proto, src: outer.src, dst: outer.dst, sport: 0, dport: outer.dport },
    };
    x.encap = encap;
    x.tunnelVia = target.via;
    if (target.copies.length > 1) {
      x.tunnelCopies = target.copies;
      this.note(`${dev.name} in ${ns.name} sends a copy to each destination of its ${target.copiesBy ?? 'FDB entry'}: ${target.copies.join(', ')} (head-end replication); the path follows the one to ${target.remote}`);
    }
    if (target.fault) {
      x.tunnelFault = target.fault;
      this.facts.add(target.fault);
      this.note(target.fault);
    }
    // The inner packet's stay in this namespace ends here (its conntrack entry is confirmed); the
    // outer one is a new packet of the node's own.
    this.confirm();
    this.tunnels.push({ inner: p, encap, hop: x, shown: false, innerMac: target.innerMac, dev: `${ns.netns}/${dev.ifindex}` });
    return this.localOut(ns, outer);
  }

  /**
   * An outer packet delivered to `ns` (after INPUT): the tunnel device listening for it takes
   * the inner packet out, which is received on that device and goes on from there.
   */
  private decapsulate(ns: NamespaceModel, dev: NetInterface, p: PacketState): End {
    const t = this.tunnel;
    if (!t) return { fate: 'delivered', reason: `${p.dst} is local to ${ns.name}` };
    const rx = tunnelReceiver(ns, t.encap.type, t.encap.vni, p);
    if ('reason' in rx) return this.dropAt(ns, dev.name, p, { reason: rx.reason, kernelReason: rx.kernelReason, hook: null, table: null, chain: null, rule: null });
    this.tunnels.pop();
    const inner = t.inner;
    const recv = this.emit(ns, rx.dev, rx.dev.name, 'recv', inner);
    if ('fate' in recv) return recv;
    recv.decap = t.encap;
    const mac = rx.dev.mac?.toLowerCase() ?? null;
    if (t.innerMac !== null && mac !== null && t.innerMac !== mac && !rx.dev.master) {
      // An L2 tunnel delivers the frame as addressed: a MAC not the device's is another host's (PACKET_OTHERHOST).
      return this.dropAt(ns, rx.dev.name, inner, { reason: `the frame is for ${t.innerMac}, not ${rx.dev.name} of ${ns.name} (${mac}): IP does not take it`, kernelReason: 'OTHERHOST', hook: null, table: null, chain: null, rule: null });
    }
    const q = this.enter(ns, inner);
    if (rx.dev.master) return this.bridgeIn(ns, rx.dev, null, q, recv);
    return this.l3In(ns, rx.dev, q, recv, false);
  }

  /** What leaves `ns` through `ifname` for a next model to take over (PathExit). */
  private exitAt(ns: NamespaceModel, ifname: string, nexthop: string | null, p: PacketState): PathExit {
    const t = this.tunnel;
    // Inside nested tunnels: the packet itself, and the outermost tunnel (the wire's).
    const inner = this.tunnels[0]?.inner;
    const wire = { family: p.family, proto: p.proto, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport };
    const onLink = nexthop === null || nexthop === p.dst;
    return {
      ns: ns.name, netns: ns.netns, ifname, nexthop: onLink ? null : nexthop, wire,
      ...(t && inner ? { inner: { src: inner.src, dst: inner.dst, sport: inner.sport, dport: inner.dport }, encap: { ...t.encap, outer: { ...wire } } } : {}),
    };
  }

  /** Crosses veth `iface` of `ns` into its peer and continues there. */
  cross(ns: NamespaceModel, iface: NetInterface, nexthop: string, p: PacketState): End {
    if (iface.master && isL2Tunnel(iface) && !this.tunnel) {
      // A bridge's tunnel port (an L2 overlay): the bridge has emitted the port's xmit; the frame
      // is encapsulated there for the VTEP its MAC is at.
      const x = this.hops[this.hops.length - 1];
      if (!x || x.ifname !== iface.name || x.event !== 'xmit') return { fate: 'left-model', reason: `${iface.name} in ${ns.name}: no transmit to encapsulate on` };
      return this.encapsulate(ns, iface, nexthop, p, () => x, this.bridgedFrame(ns, iface, nexthop, p.family, new Set()));
    }
    if (iface.kind !== 'veth') {
      return { fate: 'left-model', reason: `leaves ${ns.name} through ${iface.name} (${iface.kind}), beyond the model`, exit: this.exitAt(ns, iface.name, nexthop, p) };
    }
    const peer = iface.peer;
    const peerNs = peer ? this.nsByInode(peer.netns) : null;
    const peerIf = peer && peerNs ? peerNs.interfaces.find((i) => i.ifindex === peer.ifindex) ?? null : null;
    if (!peer || !peerNs || !peerIf) {
      return { fate: 'left-model', reason: `the peer of ${iface.name} in ${ns.name} is not in the model`, exit: this.exitAt(ns, iface.name, nexthop, p) };
    }
    if (!peerIf.up) {
      return { fate: 'dropped', reason: `${peerIf.name} in ${peerNs.name} (peer of ${iface.name}) is down`, drop: { ns: ns.name, netns: ns.netns, ifname: iface.name, reason: 'veth peer down', kernelReason: null, hook: null, table: null, chain: null, rule: null } };
    }
    const recv = this.emit(peerNs, peerIf, peerIf.name, 'recv', p);
    if ('fate' in recv) return recv;
    const q = this.enter(peerNs, p);
    if (peerIf.master) return this.bridgeIn(peerNs, peerIf, nexthop, q, recv);
    return this.l3In(peerNs, peerIf, q, recv, false);
  }

  /** Can a frame sent on veth `iface` reach an owner of `addr` at layer 2? 'outside' when it may be beyond the model. */
  l2Reaches(ns: NamespaceModel, iface: NetInterface, addr: string, family: IpFamily, seen: Set<string>): boolean | 'outside' {
    const key = `${ns.netns}/${iface.ifindex}`;
    if (seen.has(key)) return false;
    seen.add(key);
    if (iface.master && isL2Tunnel(iface)) {
      // A bridge's tunnel port: the address is behind it when a far VTEP's bridge leads there;
      // else it may be anywhere the tunnel's FDB sends frames.
      return tunnelPeers(this.tunnelTopo, ns, iface, this.bridgedFrame(ns, iface, addr, family, seen)).length > 0 ? true : 'outside';
    }
    if (iface.kind !== 'veth') return 'outside';
    const peer = iface.peer;
    const peerNs = peer ? this.nsByInode(peer.netns) : null;
    const peerIf = peer && peerNs ? peerNs.interfaces.find((i) => i.ifindex === peer.ifindex) ?? null : null;
    if (!peerNs || !peerIf) return 'outside';
    if (ownsAddress(peerNs, addr)) return true;
    if (!peerIf.master) return false;
    const br = peerNs.interfaces.find((i) => i.name === peerIf.master && i.kind === 'bridge');
    if (!br) return 'outside';
    const port = this.bridgeEgress(peerNs, br, addr, peerIf, family, seen);
    return port === 'outside' ? 'outside' : port !== null;
  }

  /** The port of bridge `br` behind which `addr` lives; 'outside' when only unmodelled ports could lead there. */
  bridgeEgress(ns: NamespaceModel, br: NetInterface, addr: string, except: NetInterface | null, family: IpFamily, seen = new Set<string>()): NetInterface | 'outside' | null {
    let outside = false;
    for (const port of ns.interfaces) {
      if (port.master !== br.name || port === except) continue;
      const r = this.l2Reaches(ns, port, addr, family, seen);
      if (r === true) return port;
      if (r === 'outside') outside = true;
    }
    if (!outside) return null;
    // The owner is not in the model: the bridge's forwarding database may still say which port
    // its MAC was learned on (a physical port, a tunnel to another host).
    return this.learnedPort(ns, br, addr, except) ?? 'outside';
  }

  /** A frame for `addr` that bridge port `port` (a tunnel device) carries: its MAC, and which far VTEPs lead to `addr`. */
  private bridgedFrame(ns: NamespaceModel, port: NetInterface, addr: string, family: IpFamily, seen: Set<string>): BridgedFrame {
    const br = ns.interfaces.find((i) => i.name === port.master && i.kind === 'bridge');
    return {
      mac: br ? this.macInDomain(ns, br, addr) : null,
      reaches: (other, dev) => {
        const far = other.interfaces.find((i) => i.name === dev.master && i.kind === 'bridge');
        if (!far || seen.has(`${other.netns}/${dev.ifindex}`)) return false;
        // The far VTEP's bridge: its other ports (the frame does not go back into the tunnel).
        seen.add(`${other.netns}/${dev.ifindex}`);
        const r = ownsAddress(other, addr) ? far : this.bridgeEgress(other, far, addr, dev, family, seen);
        return r !== null && r !== 'outside';
      },
    };
  }

  /** The MAC the neighbour tables of `br`'s layer 2 domain give `addr` (lower case), null when none. */
  private macInDomain(ns: NamespaceModel, br: NetInterface, addr: string): string | null {
    const a = parseAddr(addr);
    if (!a) return null;
    // Only this bridge's layer 2 domain: its namespace and those behind its veth ports (labs
    // elsewhere on the host may reuse the same addresses).
    const domain = [ns, ...ns.interfaces.filter((i) => i.master === br.name && i.peer).flatMap((i) => {
      const other = i.peer ? this.nsByInode(i.peer.netns) : null;
      return other ? [other] : [];
    })];
    let mac: string | null = null;
    for (const n of domain) {
      const hit = (n.neighbours ?? []).find((e) => e.mac !== null && !e.state.includes('FAILED') && !e.state.includes('INCOMPLETE') &&
        parseAddr(e.addr)?.value === a.value && parseAddr(e.addr)?.family === a.family);
      if (hit?.mac) {
        mac = hit.mac.toLowerCase();
        break;
      }
    }
    return mac;
  }

  /** The port of `br` whose forwarding-database entry holds the MAC the neighbour tables give `addr`. */
  private learnedPort(ns: NamespaceModel, br: NetInterface, addr: string, except: NetInterface | null): NetInterface | null {
    if (!ns.fdb || ns.fdb.length === 0) return null;
    const mac = this.macInDomain(ns, br, addr);
    if (mac === null) return null;
    const entry = ns.fdb.find((e) => e.bridge === br.name && e.mac === mac && !e.permanent);
    const port = entry ? ns.interfaces.find((i) => i.name === entry.port && i.master === br.name) ?? null : null;
    if (!port || port === except) return null;
    this.note(`${br.name} in ${ns.name} forwards to ${port.name}: its forwarding database learned ${mac} (${addr} in the neighbour table) there; what is beyond ${port.name} is not modelled`);
    return port;
  }

  /** A frame arrived on bridge port `port` (recv hop already emitted). */
  bridgeIn(ns: NamespaceModel, port: NetInterface, nexthop: string | null, p: PacketState, recv: ExpectedHop): End {
    const br = ns.interfaces.find((i) => i.name === port.master && i.kind === 'bridge');
    if (!br) return { fate: 'left-model', reason: `${port.name} in ${ns.name} has master ${port.master ?? '?'}, which is not a bridge in the model` };
    // Which MAC the frame is for: the owner of the sender's next hop. Starting mid-path we do
    // not know the sender's next hop: bridge towards dst if a port leads there, else go up.
    let egress: NetInterface | 'outside' | null = null;
    const target = nexthop ?? p.dst;
    if (!ownsAddress(ns, target)) egress = this.bridgeEgress(ns, br, target, port, p.family);
    if (egress === null && !ownsAddress(ns, target) && nexthop !== null) {
      return this.dropAt(ns, port.name, p, { reason: `nothing on bridge ${br.name} in ${ns.name} owns ${target}`, kernelReason: null, hook: null, table: null, chain: null, rule: null }, 'unreachable');
    }
    if (egress === 'outside') {
      return { fate: 'left-model', reason: `${target} is not behind any modelled port of ${br.name} in ${ns.name}` };
    }
    // With br_netfilter (bridge-nf-call-iptables) the ip hooks see bridged frames, with the
    // bridge as the logical in/out device, and PREROUTING runs at bridge level for every IP
    // frame, also those the bridge then passes up: conntrack's NAT (a new DNAT, a reply's
    // reverse NAT) is done before the bridge device's own recv (br_nf_pre_routing).
    const nfCall = p.family === 4
      ? ns.bridgeNfCall.ipv4 || (br.bridgeNfCall?.ipv4 ?? false)
      : ns.bridgeNfCall.ipv6 || (br.bridgeNfCall?.ipv6 ?? false);
    let q = p;
    if (nfCall) {
      const pre = this.hook(recv, ns, 'PREROUTING', q, br.name, null, false);
      if (pre.verdict === 'drop') return this.netfilterDrop(ns, port.name, q, pre, 'PREROUTING');
      q = pre.packet;
      if (q.dst !== p.dst) {
        // br_nf_pre_routing_finish: the new destination is routed; when that route leads back
        // out of the bridge itself the frame is bridged there (bridged DNAT: a container
        // reaching its own network's published port through the host address), else the
        // bridge passes it up to be routed or delivered.
        const to = parseAddr(q.dst);
        const lookup = to ? lookupRoute(ns, to, parseAddr(q.src), br.name) : null;
        if (lookup && lookup.result.kind === 'unicast' && lookup.result.dev === br.name) {
          return this.bridgedDnat(ns, br, port, lookup.result.nexthop ?? q.dst, q);
        }
        egress = null;
      }
    } else if (egress === null) {
      if (nexthop === null && !ownsAddress(ns, target)) this.note(`started mid-path on ${port.name}: assumed the frame was addressed to ${br.name} (routed by ${ns.name})`, recv);
      const up = this.emit(ns, br, br.name, 'recv', q);
      if ('fate' in up) return up;
      return this.l3In(ns, br, q, up, false);
    }
    if (egress === null) {
      if (nexthop === null && !ownsAddress(ns, target) && q.dst === p.dst) this.note(`started mid-path on ${port.name}: assumed the frame was addressed to ${br.name} (routed by ${ns.name})`, recv);
      const up = this.emit(ns, br, br.name, 'recv', q);
      if ('fate' in up) return up;
      return this.routeIn(ns, br, q, up);
    }
    return this.bridgeForward(ns, br, egress, target, q, nfCall);
  }

  /**
   * A frame the bridge forwards to port `egress`: FORWARD and POSTROUTING with the bridge as
   * in/out device when br_netfilter calls the ip hooks, then the port's xmit.
   */
  private bridgeForward(ns: NamespaceModel, br: NetInterface, egress: NetInterface, target: string, p: PacketState, nfCall: boolean): End {
    let q = p;
    const pending: ExpectedHop = this.pendingHop(ns, p);
    if (nfCall) {
      const fwd = this.hook(pending, ns, 'FORWARD', q, br.name, br.name, false);
      // The kernel has already switched skb->dev to the egress port when FORWARD drops it.
      if (fwd.verdict === 'drop') return this.mergeAndDrop(pending, ns, egress.name, fwd.packet, fwd, 'FORWARD');
      const post = this.hook(pending, ns, 'POSTROUTING', fwd.packet, null, br.name, false);
      if (post.verdict === 'drop') return this.mergeAndDrop(pending, ns, egress.name, post.packet, post, 'POSTROUTING');
      q = post.packet;
    }
    const x = this.emit(ns, egress, egress.name, 'xmit', q);
    if ('fate' in x) return x;
    x.hooks.push(...pending.hooks);
    x.rules.push(...pending.rules);
    if (pending.hook) {
      (x as { hook: NfHook | null }).hook = pending.hook;
      (x as { table: string | null }).table = pending.table;
    }
    if (pending.guess) (x.guess ??= []).push(...pending.guess);
    return this.cross(ns, egress, target, q);
  }

  /**
   * Bridged DNAT (br_nf_pre_routing_finish_bridge): the DNATed frame goes back out of the
   * bridge it came in on. The kernel sends it through the neighbour's output, which shows as a
   * transmit on the bridge device, unless the neighbour's cached header lets it skip straight
   * to forwarding: that hop is optional.
   */
  private bridgedDnat(ns: NamespaceModel, br: NetInterface, ingress: NetInterface, nexthop: string, p: PacketState): End {
    const egress = this.bridgeEgress(ns, br, nexthop, null, p.family);
    if (egress === 'outside') return { fate: 'left-model', reason: `${nexthop} is not behind any modelled port of ${br.name} in ${ns.name}` };
    if (egress === null) return { fate: 'unreachable', reason: `no neighbour: nothing on bridge ${br.name} in ${ns.name} owns ${nexthop}` };
    if (egress.name === ingress.name && egress.hairpin === false) {
      // br_forward's should_deliver: never back out of the port a frame came in on, unless that
      // port is in hairpin mode. The kernel frees it at once (NOT_SPECIFIED), before any xmit:
      // a container calling its own published port through the host address, on a runtime that
      // leaves hairpin mode off (netavark does; the CNI bridge plugin's hairpinMode sets it).
      return this.dropAt(ns, ingress.name, p, {
        reason: `${nexthop} is behind ${ingress.name}, the port the frame came in on, and ${ingress.name} is not in hairpin mode: ${br.name} does not send it back`,
        kernelReason: 'NOT_SPECIFIED', hook: null, table: null, chain: null, rule: null,
      });
    }
    const via = this.emit(ns, br, br.name, 'xmit', p);
    if ('fate' in via) return via;
    via.optional = true;
    return this.bridgeForward(ns, br, egress, nexthop, p, true);
  }

  /** Layer 3 receive in `ns` on `dev` (recv hop already emitted). */
  l3In(ns: NamespaceModel, dev: NetInterface, p: PacketState, recv: ExpectedHop, skipNat: boolean): End {
    const pre = this.hook(recv, ns, 'PREROUTING', p, dev.name, null, skipNat);
    if (pre.verdict === 'drop') return this.netfilterDrop(ns, dev.name, p, pre, 'PREROUTING');
    return this.routeIn(ns, dev, pre.packet, recv);
  }

  /** Routing decision for a received packet, then INPUT or FORWARD/POSTROUTING. */
  routeIn(ns: NamespaceModel, dev: NetInterface, p: PacketState, recv: ExpectedHop): End {
    const dst = parseAddr(p.dst);
    if (!dst) return { fate: 'unreachable', reason: `bad destination ${p.dst}` };
    const plain = { hook: null, table: null, chain: null, rule: null };
    if (p.family === 4 && dev.kind !== 'loopback' && (isLoopback4(p.dst) || isLoopback4(p.src)) && localnetAllowed(ns, dev.name) === false) {
      // ip_route_input_slow: 127.0.0.0/8 received on a device without route_localnet is martian
      // (a reply de-NATed to 127.0.0.1 on a bridge needs it as much as the request leaving).
      const which = isLoopback4(p.dst) ? `destination ${p.dst}` : `source ${p.src}`;
      return this.dropAt(ns, dev.name, p, { reason: `martian ${which} on ${dev.name} in ${ns.name}: route_localnet is 0 on ${dev.name} and on all`, kernelReason: null, ...plain });
    }
    const lookup = lookupRoute(ns, dst, parseAddr(p.src), dev.name);
    for (const g of lookup.guesses) this.note(g, recv);
    const r = lookup.result;
    switch (r.kind) {
      case 'local':
      case 'broadcast': {
        const input = this.hook(recv, ns, 'INPUT', p, dev.name, null, false);
        if (input.verdict === 'drop') return this.netfilterDrop(ns, dev.name, p, input, 'INPUT');
        if (this.tunnel) return this.decapsulate(ns, dev, input.packet);
        return { fate: 'delivered', reason: `${p.dst} is local to ${ns.name}` };
      }
      case 'none':
        return this.dropAt(ns, dev.name, p, { reason: `no route to ${p.dst} in ${ns.name}`, kernelReason: 'IP_INNOROUTES', ...plain }, 'unreachable');
      case 'unreachable':
      case 'prohibit':
        return this.dropAt(ns, dev.name, p, { reason: `${r.kind} route to ${r.route?.dst ?? p.dst} in ${ns.name}`, kernelReason: null, ...plain }, 'unreachable');
      case 'blackhole':
        return this.dropAt(ns, dev.name, p, { reason: `blackhole route to ${r.route?.dst ?? p.dst} in ${ns.name}`, kernelReason: null, ...plain });
      case 'multicast':
        return { fate: 'left-model', reason: `multicast to ${p.dst} is not modelled` };
      case 'unicast':
        break;
    }
    const fw = p.family === 4 ? ns.forwarding.ipv4 : ns.forwarding.ipv6;
    if (fw === false) {
      const sw = p.family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding';
      return this.dropAt(ns, dev.name, p, { reason: `${ns.name} does not forward (${sw}=0)`, kernelReason: null, ...plain });
    }
    if (fw === null) this.note(`forwarding switch of ${ns.name} unknown; assumed on`, recv);
    const out = r.dev;
    const fwd = this.hook(recv, ns, 'FORWARD', p, dev.name, out, false);
    if (fwd.verdict === 'drop') return this.netfilterDrop(ns, dev.name, p, fwd, 'FORWARD');
    const pending = this.pendingHop(ns, fwd.packet);
    const post = this.hook(pending, ns, 'POSTROUTING', fwd.packet, dev.name, out, false);
    if (post.verdict === 'drop') return this.mergeAndDrop(pending, ns, out, post.packet, post, 'POSTROUTING');
    return this.transmit(ns, out, r.nexthop, post.packet, pending);
  }

  startReceived(ns: NamespaceModel, iif: NetInterface, p0: PacketState): End {
    const recv = this.emit(ns, iif, iif.name, 'recv', p0);
    if ('fate' in recv) return recv;
    const p = this.enter(ns, p0);
    if (iif.master) return this.bridgeIn(ns, iif, null, p, recv);
    return this.l3In(ns, iif, p, recv, false);
  }
}

function isLoopback4(a: string): boolean {
  return a.startsWith('127.');
}

/**
 * May 127.0.0.0/8 be routed through `dev` (net.ipv4.conf.{all,dev}.route_localnet, either one)?
 * Null when the model did not read the switches.
 */
export function localnetAllowed(ns: NamespaceModel, dev: string): boolean | null {
  const rl = ns.routeLocalnet;
  if (!rl) return null;
  return rl.all || rl.devices.includes(dev);
}

function anyAddress(ns: NamespaceModel, family: IpFamily): string | null {
  for (const i of ns.interfaces) {
    if (i.kind === 'loopback') continue;
    const a = primaryAddress(ns, i.name, family);
    if (a !== null && !a.toLowerCase().startsWith('fe80:')) return a;
  }
  return null;
}

function checkPort(v: number | undefined, what: string): number {
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new FlowError(`${what} must be a port number 0-65535, got ${v}`);
  return v;
}

/**
 * Simulates the expected path of `flow`. Throws FlowError for bad input (unknown namespace
 * or interface, unparsable address, mixed families); never for what the model cannot tell.
 */
export function simulatePath(topo: Topology, flow: Flow, opts: SimulateOptions = {}): ExpectedPath {
  const ns = resolveNamespace(topo, flow.from);
  if (!ns) throw new FlowError(`unknown namespace ${String(flow.from)} (known: ${topo.namespaces.map((n) => n.name).join(', ') || 'none'})`);
  const dst = parseAddr(flow.dst);
  if (!dst) throw new FlowError(`bad destination address ${flow.dst}`);
  const proto = protoNumber(flow.proto);
  if (proto === null) throw new FlowError(`unknown protocol ${String(flow.proto)}`);
  const ports = hasPorts(proto);
  const sport = ports ? checkPort(flow.sport, 'sport') : 0;
  const dport = ports ? checkPort(flow.dport, 'dport') : 0;
  let iif: NetInterface | null = null;
  if (flow.iif) {
    iif = ns.interfaces.find((i) => i.name === flow.iif) ?? null;
    if (!iif) throw new FlowError(`no interface ${flow.iif} in ${ns.name}`);
  }
  let src: string;
  const notes: string[] = [];
  if (flow.src) {
    const s = parseAddr(flow.src);
    if (!s) throw new FlowError(`bad source address ${flow.src}`);
    if (s.family !== dst.family) throw new FlowError(`source ${flow.src} and destination ${flow.dst} are of different families`);
    src = formatAddr(s);
    if (!iif && !ownsAddress(ns, s)) notes.push(`source ${src} is not an address of ${ns.name}`);
  } else {
    const lookup = lookupRoute(ns, dst, null, 'lo');
    const r = lookup.result;
    const chosen = r.kind === 'unicast'
      ? r.route.prefsrc ?? primaryAddress(ns, r.dev, dst.family)
      : r.kind === 'local' ? formatAddr(dst) : null;
    // Without a route the kernel would not pick a source either; any address of the family
    // lets the walk report the missing route.
    src = chosen ?? anyAddress(ns, dst.family) ?? (dst.family === 4 ? '0.0.0.0' : '::');
  }
  const p: PacketState = { family: dst.family, proto, src, dst: formatAddr(dst), sport, dport };
  const t = flow.tunnel ?? null;
  const outer: PacketState | null = t ? { family: t.outer.family, proto: t.outer.proto, src: t.outer.src, dst: t.outer.dst, sport: t.outer.sport, dport: t.outer.dport } : null;
  const tunnelTopo = opts.tunnelPeers && opts.tunnelPeers.length > 0 ? { ...topo, namespaces: [...topo.namespaces, ...opts.tunnelPeers] } : topo;
  const once = (choices: readonly boolean[]): { path: ExpectedPath; decisions: Walk['decisions'] } => {
    const walk = new Walk(topo, flow.ctState ?? 'new', opts.maxHops ?? 64, flow.conntrack ?? null, choices, tunnelTopo);
    for (const n of notes) walk.note(n);
    if (t) walk.beginTunnel(p, t);
    const start = outer ?? p;
    const end = iif ? walk.startReceived(ns, iif, start) : walk.localOut(ns, start);
    // The last stay counts when the packet was delivered there or passed beyond the model.
    if (end.fate === 'delivered' || end.fate === 'left-model') walk.confirm();
    if (walk.usedCt) {
      walk.note(flow.ctState === 'established'
        ? 'assumed a packet of an established connection: NAT rules not consulted (the reverse mapping is not modelled)'
        : 'assumed the first packet of a new connection (conntrack state new): NAT rules apply');
    }
    const guess = walk.notes.some((n) => !n.startsWith('assumed the first packet') && !walk.facts.has(n));
    return {
      path: {
        flow: { ns: ns.name, netns: ns.netns, src, dst: p.dst, proto: protoLabel(proto), sport, dport, iif: iif?.name ?? null },
        fate: end.fate,
        reason: end.reason,
        hops: walk.hops,
        drop: end.drop ?? null,
        guess,
        notes: walk.notes,
        connections: walk.connections,
        ...(end.exit ? { exit: end.exit } : {}),
      },
      decisions: walk.decisions,
    };
  };
  const first = once([]);
  if (first.decisions.length === 0) return first.path;
  return withAlternatives(first, once);
}

/** Most ways a packet may take that one path lists (kube-proxy: one per endpoint of a service). */
const MAX_ALTERNATIVES = 64;

type Decisions = Walk['decisions'];

function share(d: Decisions): number {
  return d.reduce((acc, x) => acc * (x.took ? x.probability : 1 - x.probability), 1);
}

function viaText(d: Decisions): string[] {
  return d.map((x) => `${x.took ? 'matched' : 'did not match'}: ${x.rule}`);
}

/**
 * Walks every outcome of the statistic matches met (depth first: each decision of a walk is
 * flipped in turn, keeping those before it), and folds walks with the same hops together.
 */
function withAlternatives(first: { path: ExpectedPath; decisions: Decisions }, once: (choices: readonly boolean[]) => { path: ExpectedPath; decisions: Decisions }): ExpectedPath {
  const walks: { path: ExpectedPath; decisions: Decisions }[] = [first];
  const todo: boolean[][] = [];
  const branch = (w: { decisions: Decisions }, from: number): void => {
    for (let j = w.decisions.length - 1; j >= from; j--) {
      const d = w.decisions[j];
      if (!d) continue;
      const flipped = !d.took;
      if ((flipped ? d.probability : 1 - d.probability) <= 0) continue;
      todo.push([...w.decisions.slice(0, j).map((x) => x.took), flipped]);
    }
  };
  branch(first, 0);
  let capped = false;
  while (todo.length > 0) {
    if (walks.length >= MAX_ALTERNATIVES) {
      capped = true;
      break;
    }
    const choices = todo.pop() as boolean[];
    const w = once(choices);
    walks.push(w);
    branch(w, choices.length);
  }
  const key = (path: ExpectedPath): string => path.hops.map((h) => `${h.netns}/${h.ifname}/${h.event}/${h.src}/${h.sport}/${h.dst}/${h.dport}`).join(' ') + `|${path.fate}`;
  const merged = new Map<string, { path: ExpectedPath; probability: number; via: string[] }>();
  for (const w of walks) {
    const k = key(w.path);
    const m = merged.get(k);
    if (m) m.probability += share(w.decisions);
    else merged.set(k, { path: w.path, probability: share(w.decisions), via: viaText(w.decisions) });
  }
  const [main, ...rest] = [...merged.values()];
  if (!main) return first.path;
  if (rest.length === 0) return first.path;
  const notes = capped ? [...main.path.notes, `statistic matches allow more than ${MAX_ALTERNATIVES} ways; the first ${MAX_ALTERNATIVES} are listed`] : main.path.notes;
  return {
    ...main.path,
    notes,
    probability: main.probability,
    via: main.via,
    alternatives: rest.map((a) => ({
      probability: a.probability, via: a.via, fate: a.path.fate, reason: a.path.reason, hops: a.path.hops, drop: a.path.drop, connections: a.path.connections,
    })),
  };
}

/**
 * The expected path with alternative `index` (of `path.alternatives`) as its main way: what a
 * packet seen taking that alternative was expected to do. The former main way becomes an
 * alternative.
 */
export function takeAlternative(path: ExpectedPath, index: number): ExpectedPath {
  const alt = path.alternatives?.[index];
  if (!alt) return path;
  const former: PathAlternative = {
    probability: path.probability ?? 1, via: path.via ?? [], fate: path.fate, reason: path.reason, hops: path.hops, drop: path.drop, connections: path.connections,
  };
  const others = (path.alternatives ?? []).filter((_, i) => i !== index);
  return {
    ...path,
    fate: alt.fate, reason: alt.reason, hops: alt.hops, drop: alt.drop, connections: alt.connections,
    probability: alt.probability, via: alt.via,
    alternatives: [former, ...others],
  };
}
