/**
 * Stitching: one packet's pieces, reconstructed separately on each node it crossed, made one.
 *
 * Each node's agent sees only its own kernel, so the hub rebuilds packets per node (the same
 * shared/reconstruct.ts) and gets, for a pod-to-pod packet across two nodes, a piece that ends
 * with a transmit on node 1 (last seen leaving) and a piece that starts with a receive on node 2.
 * They are joined when the leaving hop and the entering hop carry the same packet: same tunnel
 * outer tuple (when tunnelled), same inner tuple, IP length, and IPv4 id or TCP sequence (or ICMP
 * id) — fields no router or tunnel between the nodes changes — within a time window.
 *
 * Node clocks differ (each hop's `t` is its own kernel's monotonic clock). Every joined pair
 * gives one sample of (entering t on B) − (leaving t on A) = offset(B−A) + wire time. The minimum
 * over samples in each direction bounds it; with both directions, offset = (minAB − minBA) / 2
 * cancels the wire time (NTP's reasoning); with one direction only, the minimum is used as is
 * (it then includes the wire time, microseconds on a LAN). Stitched hops are put on the
 * reference node's clock (the first node by name), each keeping its own `tNode`.
 *
 * When to stop waiting is event time, not the hub's wall clock: nodes' streams lag each other (an
 * agent flushes its outbox when IT reconnects after a bus outage, seconds after another), so a
 * group that can still take a piece is given out only once every other live node's watermark —
 * the earliest first-hop time of a piece that node may still give (shared/cluster/pipeline.ts),
 * put on the group's clock with the offsets known so far — has passed the group's waiting hop by
 * a margin; or after a maximum hold. A node the hub knows is gone (its agent lost) is not waited for.
 */
import type { Hop, Packet, PacketNote } from '../packet.js';
import type { NetfilterVerdict } from '../netfilter/types.js';

export interface ClusterHop extends Hop {
  /** The node that saw this hop. */
  readonly node: string;
  /** `t` on that node's own clock; `t` itself is on the reference node's clock. */
  readonly tNode: number;
}

export interface Stitch {
  readonly from: string;
  readonly to: string;
  /** Index in `hops` of the leaving hop and the entering hop. */
  readonly leave: number;
  readonly enter: number;
  /** entering t − leaving t on the reference clock (ns): wire time plus the offset's error. */
  readonly gapNs: number;
  /** 'tunnel' when the pieces met on encapsulated hops (an overlay), 'routed' otherwise. */
  readonly via: 'tunnel' | 'routed';
}

/** A note (depth: notes) of a stitched packet: `afterHop` indexes the stitched hops; `t` is on the reference clock, `tNode` the node's. */
export interface ClusterNote extends PacketNote {
  readonly node: string;
  readonly tNode: number;
}

/** A netfilter step (depth: netfilter) of a stitched packet, with the node whose rules it met. */
export interface ClusterNetfilterStep extends NetfilterVerdict {
  readonly node: string;
}

export interface ClusterPacket extends Omit<Packet, 'hops' | 'notes' | 'netfilter'> {
  readonly hops: readonly ClusterHop[];
  /** Every piece's notes and netfilter steps, each with its node (present when a piece had them). */
  readonly notes?: readonly ClusterNote[];
  readonly netfilter?: readonly ClusterNetfilterStep[];
  /** Nodes in the order the packet crossed them. */
  readonly nodes: readonly string[];
  readonly stitches: readonly Stitch[];
}

export interface ClockOffset {
  readonly node: string;
  /** This node's clock minus the reference node's, in ns (0 for the reference). */
  readonly offsetNs: number;
  /** Joined pairs it was estimated from. */
  readonly samples: number;
  /** 'reference', 'two-way' (wire time cancelled), 'one-way' (includes wire time), or 'unknown' (no pair yet). */
  readonly method: 'reference' | 'two-way' | 'one-way' | 'unknown';
}

export interface StitcherOptions {
  /**
   * Largest |entering t − leaving t| (after the offsets known so far) for two pieces to be one
   * packet. Default 10 s: wide enough for unknown clock offsets of a few seconds before the first
   * pairs; the id/sequence in the key keeps it specific.
   */
  readonly windowNs?: number;
  /**
   * A piece waits this long (hub wall clock) for its other pieces before it is given out. Default
   * 2000 ms. A group that can take no more pieces — its first piece did not enter by a receive and
   * its last did not leave by a transmit — is given out at the next drain without waiting.
   */
  readonly holdMs?: number;
  /** Most pieces waiting; beyond it the oldest group is given out as it is. Default 100 000. */
  readonly maxPending?: number;
  /**
   * A group waits beyond holdMs until every other live node's watermark has passed its waiting
   * hop by this much (ns, on the group's clock). Default 250 ms: wider than the error of a
   * one-way offset (the wire time) and of an offset estimated from wall clocks (NTP).
   */
  readonly marginNs?: number;
  /** Longest a group waits for lagging nodes (hub wall clock, from its first piece). Default 30 000 ms. */
  readonly maxHoldMs?: number;
}

interface Piece { readonly node: string; readonly packet: Packet }

interface Group {
  pieces: Piece[];
  changedMs: number;
  /** When its first piece came (the max hold counts from it). */
  addedMs: number;
  done: boolean;
}

const FREES = new Set(['drop', 'consume']);

/** The fields that survive the trip between nodes, as a key. */
export function crossingKey(proto: string, h: Hop): string {
  const o = h.outer;
  const outer = o ? `${o.src}>${o.dst}/${o.proto}/${o.sport}/${o.dport}|` : '';
  const id = proto === 'tcp' ? `s${h.tcpSeq}` : proto === 'icmp' || proto === 'icmpv6' ? `i${h.icmpType}/${h.icmpId}` : '';
  return `${outer}${h.src}>${h.dst}/${proto}/${h.sport}/${h.dport}/${h.len}/${h.ipId}/${id}`;
}

/**
 * The hop a piece left its node by: its last hop that is not a free, when it is a transmit. Its
 * fate does not matter: a real NIC's driver frees a sent skb normally (consume), so a packet
 * that left a node looks delivered there.
 */
export function leavingHop(p: Packet): number {
  for (let i = p.hops.length - 1; i >= 0; i--) {
    const h = p.hops[i]!;
    if (FREES.has(h.event)) continue;
    return h.event === 'xmit' ? i : -1;
  }
  return -1;
}

/** The hop a piece entered its node by: its first hop, when it is a receive. */
export function enteringHop(p: Packet): number {
  const h = p.hops[0];
  return h && (h.event === 'rx' || h.event === 'recv') ? 0 : -1;
}

export class Stitcher {
  private readonly windowNs: number;
  private readonly holdMs: number;
  private readonly maxPending: number;
  private readonly marginNs: number;
  private readonly maxHoldMs: number;
  /** Per node: the earliest first-hop time (its clock) of a piece it may still give. */
  private readonly marks = new Map<string, number>();
  /** Per node: its clock minus the wall clock (ns), from its snapshots: offsets before any pair. */
  private readonly hints = new Map<string, number>();
  /** Groups by the key of their last piece's leaving hop / first piece's entering hop. */
  private readonly byExit = new Map<string, Group[]>();
  private readonly byEntry = new Map<string, Group[]>();
  private readonly groups = new Set<Group>();
  /** Smallest (entering t − leaving t) per direction "A\u0000B", raw node clocks, and its count. */
  private readonly pairMin = new Map<string, { min: number; n: number }>();
  private readonly nodesSeen = new Set<string>();
  private offsetCache: Map<string, ClockOffset> | null = null;
  private seq = 0;
  /** Pieces joined to another (each join counts once). */
  joins = 0;

  constructor(opts: StitcherOptions = {}) {
    this.windowNs = opts.windowNs ?? 10_000_000_000;
    this.holdMs = opts.holdMs ?? 2000;
    this.maxPending = opts.maxPending ?? 100_000;
    this.marginNs = opts.marginNs ?? 250_000_000;
    this.maxHoldMs = opts.maxHoldMs ?? 30_000;
  }

  /**
   * A node's watermark, on its own clock: no piece it gives from now on has a first hop before
   * `t`. Never moves back. A node with none is not waited for (it never sent anything).
   */
  watermark(node: string, t: number): void {
    if (t > (this.marks.get(node) ?? Number.NEGATIVE_INFINITY)) this.marks.set(node, t);
  }

  /**
   * A node's clock read together with the wall clock (its snapshot's `t` and `wallMs`): until
   * pairs measure its offset, watermarks are compared through the wall clocks (NTP-close).
   */
  clockHint(node: string, monoNs: number, wallMs: number): void {
    if (monoNs > 0 && wallMs > 0) this.hints.set(node, monoNs - wallMs * 1e6);
  }

  /** One node's finished packet (times on that node's clock); `nowMs` is the hub's wall clock. */
  push(node: string, packet: Packet, nowMs: number): void {
    this.nodesSeen.add(node);
    const piece: Piece = { node, packet };
    let group: Group = { pieces: [piece], changedMs: nowMs, addedMs: nowMs, done: false };
    this.groups.add(group);
    const enter = enteringHop(packet);
    if (enter >= 0) {
      const key = crossingKey(packet.proto, packet.hops[enter]!);
      const before = this.take(this.byExit, key, (g) => this.fits(g.pieces[g.pieces.length - 1]!, piece));
      if (before) group = this.merge(before, group, nowMs);
    }
    const leave = leavingHop(packet);
    if (leave >= 0) {
      const key = crossingKey(packet.proto, packet.hops[leave]!);
      const after = this.take(this.byEntry, key, (g) => this.fits(piece, g.pieces[0]!));
      if (after) group = this.merge(group, after, nowMs);
    }
    if (enteringHop(group.pieces[0]!.packet) < 0 && leavingHop(group.pieces[group.pieces.length - 1]!.packet) < 0) {
      // Nothing can join it (only groups in the indexes are joined): holding it would only add
      // holdMs to every packet's latency (bench/hub.ts measured p50 ≈ holdMs + the tick).
      this.groups.delete(group);
      group.done = true;
      this.complete.push(group);
    } else {
      this.index(group);
    }
    while (this.groups.size > this.maxPending) {
      const oldest = this.groups.values().next().value as Group;
      this.groups.delete(oldest);
      oldest.done = true;
      this.overflow.push(oldest);
    }
  }

  private readonly overflow: Group[] = [];
  /** Groups no piece can join any more, in the order they became so. */
  private readonly complete: Group[] = [];

  /**
   * Complete groups, and groups nothing was added to for holdMs whose other pieces no live node
   * can still give (or held maxHoldMs), stitched; pass Infinity to give out everything. `live`:
   * whether a node is still waited for (absent: every node with a watermark).
   */
  drain(nowMs: number, live?: (node: string) => boolean): ClusterPacket[] {
    const out: ClusterPacket[] = [...this.overflow.splice(0), ...this.complete.splice(0)].map((g) => this.build(g));
    for (const g of this.groups) {
      if (nowMs - g.changedMs < this.holdMs) continue;
      if (nowMs - g.addedMs < this.maxHoldMs && !this.othersPassed(g, live)) continue;
      this.groups.delete(g);
      g.done = true;
      out.push(this.build(g));
    }
    if (out.length > 0) this.prune();
    return out;
  }

  /**
   * Whether every other live node's watermark has passed the group's waiting hops: its last
   * piece's leaving hop (a node's next piece would enter about then), its first piece's entering
   * hop (a piece that left for it left then, so began before).
   */
  private othersPassed(g: Group, live: ((node: string) => boolean) | undefined): boolean {
    const first = g.pieces[0]!;
    const last = g.pieces[g.pieces.length - 1]!;
    const e = enteringHop(first.packet);
    const l = leavingHop(last.packet);
    const ends: Array<readonly [string, number]> = [];
    if (e >= 0) ends.push([first.node, first.packet.hops[e]!.t]);
    if (l >= 0) ends.push([last.node, last.packet.hops[l]!.t]);
    for (const [node, t] of ends) {
      for (const [other, mark] of this.marks) {
        if (other === node || (live && !live(other))) continue;
        if (mark + this.shift(other, node) < t + this.marginNs) return false;
      }
    }
    return true;
  }

  /**
   * What to add to a time on `from`'s clock to put it on `to`'s: the offsets pairs measured when
   * both are known, else the wall-clock hints when both nodes have one, else 0 for an unknown one.
   */
  private shift(from: string, to: string): number {
    const m = this.offsetMap();
    const a = m.get(from);
    const b = m.get(to);
    const known = (o: ClockOffset | undefined): boolean => o !== undefined && o.method !== 'unknown';
    if (known(a) && known(b)) return b!.offsetNs - a!.offsetNs;
    const ha = this.hints.get(from);
    const hb = this.hints.get(to);
    if (ha !== undefined && hb !== undefined) return hb - ha;
    return (known(b) ? b!.offsetNs : 0) - (known(a) ? a!.offsetNs : 0);
  }

  /** Per-node clock offsets against the reference node (first by name). */
  offsets(): ClockOffset[] {
    return [...this.offsetMap().values()].sort((a, b) => a.node.localeCompare(b.node));
  }

  private offsetMap(): Map<string, ClockOffset> {
    if (this.offsetCache) return this.offsetCache;
    const nodes = [...this.nodesSeen].sort();
    const out = new Map<string, ClockOffset>();
    const ref = nodes[0];
    if (ref !== undefined) {
      out.set(ref, { node: ref, offsetNs: 0, samples: 0, method: 'reference' });
      // Breadth-first from the reference over directions with samples.
      const queue = [ref];
      while (queue.length > 0) {
        const a = queue.shift()!;
        const base = out.get(a)!.offsetNs;
        for (const b of nodes) {
          if (out.has(b)) continue;
          const ab = this.pairMin.get(`${a}\u0000${b}`);
          const ba = this.pairMin.get(`${b}\u0000${a}`);
          if (!ab && !ba) continue;
          let rel: number;
          let method: ClockOffset['method'];
          if (ab && ba) { rel = (ab.min - ba.min) / 2; method = 'two-way'; }
          else if (ab) { rel = ab.min; method = 'one-way'; }
          else { rel = -ba!.min; method = 'one-way'; }
          out.set(b, { node: b, offsetNs: Math.round(base + rel), samples: (ab?.n ?? 0) + (ba?.n ?? 0), method });
          queue.push(b);
        }
      }
      for (const n of nodes) if (!out.has(n)) out.set(n, { node: n, offsetNs: 0, samples: 0, method: 'unknown' });
    }
    this.offsetCache = out;
    return out;
  }

  private offsetOf(node: string): number {
    return this.offsetMap().get(node)?.offsetNs ?? 0;
  }

  /** Whether `to`'s entering hop can be `from`'s leaving hop, in time. */
  private fits(from: Piece, to: Piece): boolean {
    if (from.node === to.node) return false;
    const l = from.packet.hops[leavingHop(from.packet)];
    const e = to.packet.hops[enteringHop(to.packet)];
    if (!l || !e) return false;
    const d = (e.t - this.offsetOf(to.node)) - (l.t - this.offsetOf(from.node));
    return Math.abs(d) <= this.windowNs;
  }

  private take(index: Map<string, Group[]>, key: string, ok: (g: Group) => boolean): Group | undefined {
    const list = index.get(key);
    if (!list) return undefined;
    const i = list.findIndex((g) => !g.done && ok(g));
    if (i < 0) return undefined;
    const [g] = list.splice(i, 1);
    if (list.length === 0) index.delete(key);
    return g;
  }

  /** `a`'s last piece left where `b`'s first piece entered: one group, a's pieces first. */
  private merge(a: Group, b: Group, nowMs: number): Group {
    const from = a.pieces[a.pieces.length - 1]!;
    const to = b.pieces[0]!;
    const l = from.packet.hops[leavingHop(from.packet)]!;
    const e = to.packet.hops[enteringHop(to.packet)]!;
    const dir = `${from.node}\u0000${to.node}`;
    const d = e.t - l.t;
    const m = this.pairMin.get(dir);
    this.pairMin.set(dir, { min: m ? Math.min(m.min, d) : d, n: (m?.n ?? 0) + 1 });
    this.offsetCache = null;
    this.joins++;
    // Entries of b and a in the indexes are replaced by the merged group's.
    this.unindex(a);
    this.unindex(b);
    this.groups.delete(a);
    this.groups.delete(b);
    a.done = true;
    b.done = true;
    const g: Group = { pieces: [...a.pieces, ...b.pieces], changedMs: nowMs, addedMs: Math.min(a.addedMs, b.addedMs), done: false };
    this.groups.add(g);
    return g;
  }

  private index(g: Group): void {
    const first = g.pieces[0]!;
    const last = g.pieces[g.pieces.length - 1]!;
    const enter = enteringHop(first.packet);
    if (enter >= 0) push(this.byEntry, crossingKey(first.packet.proto, first.packet.hops[enter]!), g);
    const leave = leavingHop(last.packet);
    if (leave >= 0) push(this.byExit, crossingKey(last.packet.proto, last.packet.hops[leave]!), g);
  }

  private unindex(g: Group): void {
    const first = g.pieces[0]!;
    const last = g.pieces[g.pieces.length - 1]!;
    const enter = enteringHop(first.packet);
    if (enter >= 0) remove(this.byEntry, crossingKey(first.packet.proto, first.packet.hops[enter]!), g);
    const leave = leavingHop(last.packet);
    if (leave >= 0) remove(this.byExit, crossingKey(last.packet.proto, last.packet.hops[leave]!), g);
  }

  /** Index entries of groups already given out. */
  private prune(): void {
    for (const index of [this.byExit, this.byEntry]) {
      for (const [k, list] of index) {
        const live = list.filter((g) => !g.done);
        if (live.length === 0) index.delete(k);
        else if (live.length !== list.length) index.set(k, live);
      }
    }
  }

  private build(g: Group): ClusterPacket {
    const hops: ClusterHop[] = [];
    const stitches: Stitch[] = [];
    const nodes: string[] = [];
    const notes: ClusterNote[] = [];
    const netfilter: ClusterNetfilterStep[] = [];
    for (const [i, piece] of g.pieces.entries()) {
      const off = this.offsetOf(piece.node);
      // Depth of each piece follows its hops: afterHop moves by the hops before the piece; a
      // step before a later piece's first hop (-1) comes after the previous piece's last.
      const base = hops.length;
      for (const n of piece.packet.notes ?? []) notes.push({ ...n, node: piece.node, tNode: n.t, t: n.t - off, afterHop: base + n.afterHop });
      for (const v of piece.packet.netfilter ?? []) netfilter.push({ ...v, node: piece.node, afterHop: base + v.afterHop });
      if (i > 0) {
        const prev = g.pieces[i - 1]!;
        const leave = hops.length - prev.packet.hops.length + leavingHop(prev.packet);
        const enter = hops.length + enteringHop(piece.packet);
        const e = piece.packet.hops[enteringHop(piece.packet)]!;
        stitches.push({
          from: prev.node, to: piece.node, leave, enter,
          gapNs: Math.round(e.t - off - hops[leave]!.t),
          via: e.outer ? 'tunnel' : 'routed',
        });
      }
      if (nodes[nodes.length - 1] !== piece.node) nodes.push(piece.node);
      for (const h of piece.packet.hops) hops.push({ ...h, node: piece.node, tNode: h.t, t: h.t - off });
    }
    const first = g.pieces[0]!.packet;
    const last = g.pieces[g.pieces.length - 1]!.packet;
    const { hops: _h, notes: _n, netfilter: _f, ...head } = first;
    const had = (k: 'notes' | 'netfilter'): boolean => g.pieces.some((p) => p.packet[k] !== undefined);
    return {
      ...head,
      id: `c${++this.seq}`,
      fate: last.fate, fateBy: last.fateBy, drop: last.drop,
      ...(last.discard ? { discard: last.discard } : {}),
      hops, nodes, stitches,
      ...(had('notes') ? { notes } : {}),
      ...(had('netfilter') ? { netfilter } : {}),
    };
  }
}

function push(index: Map<string, Group[]>, key: string, g: Group): void {
  const list = index.get(key);
  if (list) list.push(g);
  else index.set(key, [g]);
}

function remove(index: Map<string, Group[]>, key: string, g: Group): void {
  const list = index.get(key);
  if (!list) return;
  const i = list.indexOf(g);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) index.delete(key);
}
