/**
 * Puts observed packets next to the model: each packet's expected path and where it diverged
 * (shared/topology), and which addresses are local to which namespace (so a packet received in
 * the namespace that owns its destination counts as delivered). One instance per topology
 * version; simulations are cached per flow since a flow's packets all take the same path.
 * The NATed connections that expected paths create are remembered (shared/topology/conntrack.ts)
 * so that replies and later packets are expected with conntrack's NAT, as the kernel applies
 * it; pass the previous instance when the topology changes to keep them. A TCP packet without
 * SYN, or a UDP datagram, whose connection the model never saw start (it predates the trace, or
 * the trace missed its first packet) gets that connection's NAT from its own observed hops, and
 * its expected path says so.
 */

const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

/**
 * The connection `c` (from the expected path) with the tuple its namespace really sent the
 * packet on, when the kernel kept the addresses the model expected and only picked other ports
 * (MASQUERADE/SNAT with random ports or a port range).
 */
function fitToObserved(c: Connection, packet: Packet): Connection {
  // A later fragment's hops have no ports: the first fragment's say what the NAT picked.
  const out = packet.hops.filter((h) => h.netns === c.netns && h.event === 'xmit' && !isLaterFragment(h)).at(-1);
  if (!out) return c;
  const want = reverseTuple(c.reply);
  if (!sameAddr(out.src, want.src) || !sameAddr(out.dst, want.dst) || (out.sport === want.sport && out.dport === want.dport)) return c;
  return { ...c, reply: reverseTuple({ proto: want.proto, src: want.src, dst: want.dst, sport: out.sport, dport: out.dport }) };
}

/** The NAT each namespace visibly applied to the packet: tuple on entry vs. tuple on leaving. */
function observedConnections(packet: Packet, nsName: (netns: number) => string): Connection[] {
  const proto = protoNumber(packet.proto);
  if (proto === null) return [];
  const tuple = (h: Hop): CtTuple => ({ proto, src: h.src, dst: h.dst, sport: h.sport, dport: h.dport });
  const out: Connection[] = [];
  const hops = packet.hops.filter((h) => h.event !== 'rx' && !isLaterFragment(h));
  for (let i = 0; i < hops.length;) {
    const first = hops[i] as Hop;
    let j = i;
    while (j + 1 < hops.length && (hops[j + 1] as Hop).netns === first.netns) j++;
    // A packet its own namespace's OUTPUT NAT rewrote before its first hop entered as its socket sent it.
    const sent = i === 0 && first.nat !== null && first.event === 'xmit' ? first.nat.from : null;
    const entry = sent ? { proto, src: sent.src, dst: sent.dst, sport: sent.sport, dport: sent.dport } : tuple(first);
    const exit = tuple(hops[j] as Hop);
    // Stored as the reply of a connection whose first packet went the other way: conntrack's
    // rewrite of either direction then gives exactly the observed exit tuple.
    if (!sameTuple(entry, exit)) out.push({ netns: first.netns, ns: nsName(first.netns), orig: reverseTuple(exit), reply: entry });
    i = j + 1;
  }
  return out;
}
import { isLaterFragment, type Hop, type Packet } from './packet.js';
import { sameAddr } from './topology/ip.js';
import type { Topology } from './topology/model.js';
import { flowFromPacket, compareWithAlternatives, netfilterDrop, type PacketExpectation } from './topology/compare.js';
import { simulatePath, FlowError, type ExpectedPath } from './topology/simulate.js';
import { ConntrackTable, reverseTuple, sameTuple, type Connection, type CtTuple } from './topology/conntrack.js';
import { protoNumber } from './topology/proto.js';
import { normalizeAddr } from './topology/ip.js';

export type AnnotatedPacket = Packet & PacketExpectation;

const CACHE_MAX = 10_000;
/**
 * A flow's cached path is simulated again after this long (ns on the hops' clock): the lookup
 * keeps its connection alive in the model's conntrack, and an expired connection stops
 * shaping the path within this time.
 */
const CACHE_TTL_NS = 10e9;

export class PathExpectations {
  private readonly local = new Map<number, Set<string>>();
  private readonly cache = new Map<string, { readonly path: ExpectedPath | null; readonly at: number }>();
  /** Cache keys by the tuple their flow starts with, to forget just the flows a new connection changes. */
  private readonly cacheByTuple = new Map<string, string[]>();
  private readonly conntrack: ConntrackTable;
  /** Model errors already reported through onError (each once). */
  private readonly reported = new Set<string>();

  /**
   * A TCP packet that is not a SYN belongs to a connection conntrack already holds; when the
   * model knew none (it started before the trace) and the packet was visibly NATed, take the
   * NAT from what was observed, remember the connection and simulate again.
   */
  private fromObservedNat(packet: Packet, expected: ExpectedPath, flow: NonNullable<ReturnType<typeof flowFromPacket>>): ExpectedPath | null {
    const first = packet.hops[0];
    if (!first) return null;
    // A TCP packet other than a SYN (a SYN-ACK included) belongs to a connection; so may a UDP
    // datagram (a reply whose request the trace did not see). A plain SYN starts one: its NAT
    // must come from the rules, and a NAT they do not explain is a divergence.
    const startsConnection = packet.proto === 'tcp' && (first.tcpFlags & TCP_SYN) !== 0 && (first.tcpFlags & TCP_ACK) === 0;
    if ((packet.proto !== 'tcp' && packet.proto !== 'udp') || startsConnection) return null;
    if (expected.notes.some((n) => n.startsWith('a reply on the connection') || n.startsWith('a later packet of the connection'))) return null;
    const names = new Map(this.topology.namespaces.map((n) => [n.netns, n.name]));
    const conns = observedConnections(packet, (netns) => names.get(netns) ?? `netns ${netns}`).filter((c) => names.has(c.netns)).map((c) => this.withDnatOrigin(c));
    if (conns.length === 0) return null;
    // UDP has no SYN to tell a first datagram from a reply: only NAT that reads as conntrack
    // reversing a rule of that namespace is taken (arriving for one of its own addresses, as a
    // reply to MASQUERADE/SNAT does; or from the target of one of its DNAT rules).
    if (packet.proto === 'udp' && !conns.every((c) => this.looksLikeReply(c))) return null;
    for (const c of conns) if (this.conntrack.add(c)) this.forget(c);
    const again = simulatePath(this.topology, { ...flow, conntrack: this.conntrack });
    const note = `the connection started before the model saw it: its NAT in ${conns.map((c) => c.ns).join(', ')} was taken from this packet's observed hops`;
    return { ...again, guess: true, notes: [...again.notes, note] };
  }

  /**
   * A reply delivered in the namespace that DNATed its connection shows only half the reverse
   * NAT on its hops: the destination (de-NATed before the bridge's recv), not the source (put
   * back in INPUT, after the last hop). When one DNAT rule there maps a single port to the
   * reply's source, the connection was made to that port on the client's own address (a socket
   * connecting to 127.0.0.1 or a host address gets that address as its source).
   */
  private withDnatOrigin(c: Connection): Connection {
    const ns = this.topology.namespaces.find((n) => n.netns === c.netns);
    const entry = c.reply;
    if (!ns || c.orig.dst !== entry.src || c.orig.dport !== entry.sport || !this.isLocal(c.netns, normalizeAddr(c.orig.src))) return c;
    const ports = ns.netfilter.rules.flatMap((r) => {
      if (r.action.kind !== 'dnat' || r.action.addr === null || normalizeAddr(r.action.addr) !== normalizeAddr(entry.src) || (r.action.port !== null && r.action.port !== entry.sport)) return [];
      const m = r.matches.find((x) => x.kind === 'port' && x.field === 'dport' && !x.neg && x.ranges.length === 1 && x.ranges[0]?.[0] === x.ranges[0]?.[1]);
      return m && m.kind === 'port' ? [m.ranges[0]?.[0] ?? 0] : [];
    });
    const distinct = [...new Set(ports)];
    if (distinct.length !== 1 || distinct[0] === undefined) return c;
    return { ...c, orig: { ...c.orig, dst: c.orig.src, dport: distinct[0] } };
  }

  /** Could `c` (learned from observed hops, its reply tuple the one that entered) be conntrack reversing a NAT rule? */
  private looksLikeReply(c: Connection): boolean {
    const ns = this.topology.namespaces.find((n) => n.netns === c.netns);
    if (!ns) return false;
    const entry = c.reply;
    if (this.isLocal(c.netns, normalizeAddr(entry.dst))) return true;
    return ns.netfilter.rules.some((r) => r.action.kind === 'dnat' && r.action.addr !== null && normalizeAddr(r.action.addr) === normalizeAddr(entry.src) &&
      (r.action.port === null || r.action.port === entry.sport));
  }

  /**
   * @param previous the instance for the topology before a change: its known connections carry over.
   * @param onError told (once per message) when the simulator failed on a packet; the packet
   *   then has no expectation rather than ending the trace.
   */
  constructor(
    private readonly topology: Topology,
    previous?: PathExpectations,
    private readonly onError?: (message: string) => void,
  ) {
    this.conntrack = previous?.conntrack ?? new ConntrackTable();
    for (const ns of topology.namespaces) {
      const set = new Set<string>();
      for (const itf of ns.interfaces) for (const cidr of itf.addrs) set.add(cidr.split('/')[0] ?? cidr);
      this.local.set(ns.netns, set);
    }
  }

  /** The model before the last change, for packets that started before it (`sinceNs`). */
  private before: PathExpectations | undefined;
  private sinceNs: number | undefined;

  /**
   * A new instance for a changed topology that keeps the connections this one knows. With
   * `sinceNs` (when the discovery that read it started, on the hops' clock), a packet whose first
   * hop came earlier is still compared with this one: a packet is expected to follow the host as
   * it was when it was sent. A bridge's or vxlan's FDB learns from the packet's own reply within
   * a millisecond, and a discovery triggered meanwhile (another namespace came or went) would
   * otherwise make the first packet of a flood look unicast. One model back is kept.
   */
  withTopology(topology: Topology, sinceNs?: number): PathExpectations {
    const next = new PathExpectations(topology, this, this.onError);
    if (sinceNs !== undefined) {
      this.before = undefined;
      next.before = this;
      next.sinceNs = sinceNs;
    }
    return next;
  }

  /** How many connection directions the model follows (for tests and stats). */
  get knownConnections(): number {
    return this.conntrack.size;
  }

  private static tupleKey(proto: number | null, src: string, sport: number, dst: string, dport: number): string {
    return `${proto ?? '?'}|${normalizeAddr(src)}|${sport}|${normalizeAddr(dst)}|${dport}`;
  }

  private remember(key: string, flow: NonNullable<ReturnType<typeof flowFromPacket>>, path: ExpectedPath | null): void {
    if (this.cache.size >= CACHE_MAX) {
      this.cache.clear();
      this.cacheByTuple.clear();
    }
    this.cache.set(key, { path, at: this.conntrack.now });
    const tk = PathExpectations.tupleKey(protoNumber(flow.proto), flow.src ?? '', flow.sport ?? 0, flow.dst, flow.dport ?? 0);
    const keys = this.cacheByTuple.get(tk);
    if (keys) keys.push(key);
    else this.cacheByTuple.set(tk, [key]);
  }

  /**
   * Forgets the cached paths of flows that start with either tuple of a new connection: its
   * own later packets and its replies. (A reply that starts behind another NAT would keep a
   * stale path until the cache fills; clearing the whole cache per new connection made every
   * flow re-simulate at every new connection on a busy host.)
   */
  private forget(c: Connection): void {
    for (const t of [c.orig, c.reply, reverseTuple(c.reply)]) {
      const tk = PathExpectations.tupleKey(t.proto, t.src, t.sport, t.dst, t.dport);
      for (const k of this.cacheByTuple.get(tk) ?? []) this.cache.delete(k);
      this.cacheByTuple.delete(tk);
    }
  }

  /**
   * A packet a local socket sent is first seen on a device, after its namespace's NAT: when the
   * model knows the connection (from a reply it took in), the path starts from what the socket
   * sent (`curl 127.0.0.1:PORT`: OUTPUT DNAT to the container, then masquerade) so the NAT shows.
   */
  private asSent(flow: NonNullable<ReturnType<typeof flowFromPacket>>): NonNullable<ReturnType<typeof flowFromPacket>> {
    const proto = protoNumber(flow.proto);
    if (flow.iif !== null || proto === null || typeof flow.from !== 'number') return flow;
    const c = this.conntrack.findSent(flow.from, { proto, src: normalizeAddr(flow.src ?? ''), dst: normalizeAddr(flow.dst), sport: flow.sport ?? 0, dport: flow.dport ?? 0 });
    if (!c || sameTuple(c.orig, reverseTuple(c.reply))) return flow;
    return { ...flow, src: c.orig.src, dst: c.orig.dst, sport: c.orig.sport, dport: c.orig.dport };
  }

  isLocal = (netns: number, addr: string): boolean => this.local.get(netns)?.has(addr) ?? false;

  annotate(packet: Packet): AnnotatedPacket {
    const started = packet.hops[0]?.t;
    if (this.before && this.sinceNs !== undefined && started !== undefined && started < this.sinceNs) return this.before.annotate(packet);
    // A clone (a bridge flooding a frame to every port, a packet socket's copy) has no path of
    // its own: simulated from its first hop it would read as a packet sent there.
    if (packet.cloneOf !== null) return { ...packet, expected: null, divergence: null };
    const seen = flowFromPacket(packet);
    if (!seen) return { ...packet, expected: null, divergence: null };
    // Connections expire on the hops' clock, as conntrack's do on the kernel's.
    this.conntrack.now = packet.hops[0]?.t ?? 0;
    const flow = this.asSent(seen);
    const key = `${flow.from}|${flow.iif ?? ''}|${flow.proto}|${flow.src}|${flow.sport}|${flow.dst}|${flow.dport}${flow.tunnel ? `|in ${flow.tunnel.outer.src}>${flow.tunnel.outer.dst}` : ''}`;
    const cached = this.cache.get(key);
    let expected = cached && this.conntrack.now - cached.at <= CACHE_TTL_NS ? cached.path : undefined;
    try {
      let fresh = false;
      if (expected === undefined) {
        try {
          expected = simulatePath(this.topology, { ...flow, conntrack: this.conntrack });
        } catch (e) {
          if (!(e instanceof FlowError)) throw e;
          expected = null;
        }
        fresh = true;
        this.remember(key, flow, expected);
      }
      const opts = { dropReason: packet.drop?.reason ?? null, droppedBy: netfilterDrop(packet), topology: this.topology };
      let r = expected ? compareWithAlternatives(packet.hops, expected, opts) : null;
      // A new connection changes what its replies and its own later packets expect: it is
      // remembered with the ports the kernel picked (a MASQUERADE --random-fully chooses its own).
      // Where a statistic match decides the way, it is the connection of the way taken.
      if (fresh && r && !(r.divergence && r.path.alternatives)) {
        for (const c of r.path.connections) {
          const fitted = fitToObserved(c, packet);
          if (this.conntrack.add(fitted)) this.forget(fitted);
        }
      }
      if (r?.divergence && expected) {
        const learned = this.fromObservedNat(packet, expected, flow);
        if (learned) {
          expected = learned;
          this.remember(key, flow, expected);
          r = compareWithAlternatives(packet.hops, expected, opts);
        }
      }
      return { ...packet, expected: r?.path ?? expected, divergence: r?.divergence ?? null };
    } catch (e) {
      // A model the simulator trips over must not end a trace: this packet goes without.
      const message = `expected path of a packet from netns ${flow.from} not computed: ${e instanceof Error ? e.message : String(e)}`;
      if (!this.reported.has(message)) {
        this.reported.add(message);
        this.onError?.(message);
      }
      this.remember(key, flow, null);
      return { ...packet, expected: null, divergence: null };
    }
  }
}
