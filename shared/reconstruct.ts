/**
 * The reconstruction engine: hop events in, packets out. Pure and isomorphic — the CLI, the
 * service and the dashboard's worker all run this same code over the same events, so they agree
 * on packet ids, hops and fates.
 *
 * Rules (see issue 2):
 * - Events are released in kernel-time order: they wait in a reorder buffer until the newest
 *   time seen is `reorderWindowNs` past them, because bpftrace drains per-CPU buffers in turn.
 *   An event that comes later than that (a CPU's buffer drained in one piece behind the others,
 *   a reader that fell behind) is counted late and widens the window to twice how far behind the
 *   newest event it was, up to `maxReorderWindowNs`, so a backlog does not go on splitting
 *   packets; the window narrows again after a while without late events (issue 15).
 *   The engine's clock moves only on event times and `advance`; callers that drive `advance`
 *   from a wall clock take it through `idleClock`, which moves it only while nothing arrives.
 * - A packet is one skb's life: followed by skb address from its first hop until it is dropped
 *   or consumed. The kernel reuses addresses at once, and some frees have no tracepoint (TCP's
 *   __kfree_skb), so a hop only continues a packet when it could be the same packet: same family
 *   and protocol, same IPv4 id (NAT never changes it), a tuple that at most NAT rewrote (and not
 *   the reverse direction), and no gap over `maxGapNs`. Anything else starts a new packet.
 * - A new skb whose headers equal a live packet's, first seen in the namespace that packet is in,
 *   is a clone of it (bridge flooding, multicast): recorded as `cloneOf`.
 * - Fate: dropped (kfree_skb with a reason), delivered (consume_skb, or — when the caller can tell
 *   local addresses — last seen received in the namespace that owns the destination, or on
 *   loopback), else unknown. A kfree_skb that is a socket's discard after delivery (a pure ACK
 *   TCP has read, a queue purged at close: shared/fate.ts) is delivered, with `discard`.
 * - Never join two packets (issue 13): TCP's sequence does not change along a path, and a packet
 *   a namespace's stack took in leaves it only by a transmit there (continuesPacket). Each such
 *   split is counted in `stats.splits`.
 * - Handed on (issue 14): a packet whose skb is freed while its data lives on goes on in the new
 *   skb. A consume with reason 1 (the probe saw a clone sharing the data: a tunnel device short of
 *   headroom copies the packet, skb_expand_head) waits `handoffNs` for a new skb with the same
 *   headers in that namespace; an encapsulated skb consumed on the underlay (fragmented: the
 *   fragments are new skbs) waits for one anywhere. Fragments of an outer datagram are hops of
 *   their packet (`fragment` on the hop): the first carries the inner headers, the others share
 *   its outer id (IPv4's, or an IPv6 Fragment header's). The reassembled datagram goes on as the
 *   packet. A datagram seen only as fragments (another sender's, received) is its first fragment's.
 * - A sender's own fragments (HopEvent.frag; probes/README.md "A sender's own fragments"): new
 *   skbs of one datagram, joined by "proto|src|dst|ipId" (`datagrams`, each key the fragments
 *   showed, NAT's too) into the packet of the first seen; the datagram reassembled whole in one of
 *   them (conntrack's defrag, the receiver) goes on as the packet, an skb going fragment →
 *   datagram → fragment is no split, hops carry `fragment` by their place where they passed
 *   (fragmentNumber), and the fate is the datagram's (ownFragments), not that of a fragment freed
 *   after the reassembly nor of one a node cut again (cutAgain). A later fragment seen before the
 *   first (reordered) starts the packet, which takes the first's tuple when it comes; fragments a
 *   node cut anew after NAT rewrote the datagram join it by protocol, id and one address
 *   (rewrittenDatagram); a fragment's tunnel marks are its own skb's (markTunnelsPerSkb).
 */
import type { HopEvent, HopNote, HopOuter, HopSent } from './hop-event.js';
import { markTunnels } from './tunnel.js';
import { protoName } from './hop-event.js';
import type { Packet, Hop, Fate, DropInfo, NatRewrite, Tuple, PacketNote } from './packet.js';
import { readFree, reachedItsStack } from './fate.js';
import type { Topology } from './topology/model.js';
import { CloneIndex, cloneKeyHash, keyChanged } from './clone-index.js';
import { HopStore, smallInt, STORE_NUM, STORE_REFS, F_T, F_SEQ, F_CPU, F_NETNS, F_IFINDEX, F_FAMILY, F_PROTO, F_LEN, F_IPID, F_SPORT, F_DPORT, F_ICMPTYPE, F_ICMPID, F_TCPFLAGS, F_TCPSEQ, F_REASON, R_KIND, R_SKB, R_IFNAME, R_SRC, R_DST } from './hop-store.js';

export interface ReconstructOptions {
  /** How long events wait for earlier ones from other CPUs (at least: see maxReorderWindowNs). */
  readonly reorderWindowNs?: number;
  /**
   * How wide late events may make the reorder window. Bounds the events held back (rate ×
   * window) and how long a packet waits before it is reported.
   */
  readonly maxReorderWindowNs?: number;
  /** A packet with no new hop for this long is finished (fate decided from what was seen). */
  readonly idleNs?: number;
  /** Largest gap between two hops of one packet. */
  readonly maxGapNs?: number;
  /** How close in time a clone's first hop must be to its original's last hop. */
  readonly cloneWindowNs?: number;
  /** How long a packet whose skb was freed while its data lives on waits for the skb it goes on in. */
  readonly handoffNs?: number;
  /** Namespace inode → name (null when unknown). */
  readonly nsName?: (netns: number) => string | null;
  /** enum skb_drop_reason value → kernel name without SKB_DROP_REASON_. */
  readonly dropReason?: (code: number) => string;
  /** Whether `addr` is a local address of namespace `netns`: lets a received packet count as delivered. */
  readonly isLocal?: (netns: number, addr: string) => boolean;
  /**
   * The namespace of the peer of veth `ifname` in `netns` (the model's), null when unknown or
   * not a veth: a packet sent out of a veth arrives only in its peer's namespace (vethPeers).
   */
  readonly peerNetns?: (netns: number, ifname: string) => number | null;
  /** Final say on which packets are reported (the user's filter: any hop matches). */
  readonly accept?: (packet: Packet) => boolean;
}

export interface ReconstructStats {
  events: number;
  packets: number;
  /** Events that arrived later than the reorder window allowed (placed as well as possible). */
  late: number;
  /** Packets discarded by `accept` (followed by the kernel for a reason the filter rejects). */
  rejected: number;
  /** Lone consume events, not reported as packets. */
  orphans: number;
  /**
   * Times an skb address showed a new packet before the free of the one it carried was seen
   * (continuesPacket said no): the packet followed so far was ended there, not joined to it.
   */
  splits: number;
  /** The reorder window now, and the widest it has been (ns): late events widen it. */
  windowNs: number;
  widestWindowNs: number;
}

/**
 * What a packet made of several skbs keeps (LivePackets.extra): other skbs carrying parts of it,
 * its outer datagram's fragment keys (a tunnel's underlay fragments), and its own datagram's
 * keys (`dgKeys`, "proto|src|dst|ipId": a sender's own fragments, one a NAT rewrote; `dgSport`
 * `dgDport` the first fragment's ports, -1 until seen: an IPv6 datagram's reassembled whole has
 * no Fragment header, so no id, and is known by them).
 */
interface PacketExtra {
  skbs: string[];
  fragKeys: string[];
  count: number;
  outer: HopOuter | null;
  fragSkb: string | null;
  dgKeys: string[];
  dgSport: number;
  dgDport: number;
}

function newExtra(): PacketExtra {
  return { skbs: [], fragKeys: [], count: 0, outer: null, fragSkb: null, dgKeys: [], dgSport: -1, dgDport: -1 };
}

/**
 * The packets being followed, as a table (one row per packet, rows recycled) rather than an
 * object each: a packet lives for tens of milliseconds at least, long enough for an object to be
 * copied and promoted by the collector. A packet's events are a chain of slots in the HopStore.
 */
class LivePackets {
  /** First and latest event (store slots), and how many there are. */
  first: Int32Array = new Int32Array(256);
  last: Int32Array = new Int32Array(256);
  /** Latest event of the packet's current skb (differs from `last` when other skbs carry parts of it). */
  primLast: Int32Array = new Int32Array(256);
  count: Int32Array = new Int32Array(256);
  /** Event whose clone key is the packet's current one, and that key's hash (shared/clone-index.ts). */
  keySlot: Int32Array = new Int32Array(256);
  keyHash: Int32Array = new Int32Array(256);
  /**
   * 1 while the clone index maps the packet's current key to it (through `keySlot`): setting it
   * again would change nothing, and every hop of a packet did (a lookup and a key comparison).
   * Cleared when the key changes or another packet takes the key over.
   */
  keyOwned: Uint8Array = new Uint8Array(256);
  skb: string[] = new Array<string>(256).fill('');
  cloneOf: Array<string | null> = new Array<string | null>(256).fill(null);
  /** packetId, once something asked for it (a clone names its original). */
  id: Array<string | null> = new Array<string | null>(256).fill(null);
  /**
   * Keys the packet had before NAT changed its headers, forgotten with it when it finishes: the
   * first as (event, hash) here (-1 for none), any more as pairs in `moreOldKeys` (an array per
   * NATed packet cost the collector more than the rest of the packet's bookkeeping).
   */
  oldKeySlot: Int32Array = new Int32Array(256);
  oldKeyHash: Int32Array = new Int32Array(256);
  moreOldKeys: Array<number[] | null> = new Array<number[] | null>(256).fill(null);
  /**
   * Handing on (see the header): 0 no; 1 its skb was freed with a clone holding the data (goes
   * on in that namespace); 2 freed encapsulated (goes on anywhere). `heldAt` is the free's time.
   */
  held: Uint8Array = new Uint8Array(256);
  heldAt: Float64Array = new Float64Array(256);
  /**
   * Other skbs carrying parts of the packet (its fragments), and fragment keys naming it;
   * `fragSkb`: the packet's own skb when that is its first fragment (a datagram sent already in
   * fragments: no whole skb of it was seen).
   */
  extra: Array<PacketExtra | null> = new Array<PacketExtra | null>(256).fill(null);
  private used = 0;
  /** Free rows, linked through `count`. */
  private freeHead = -1;

  alloc(skb: string, s: number, hash: number, cloneOf: string | null): number {
    let p = this.freeHead;
    if (p >= 0) this.freeHead = this.count[p] as number;
    else {
      if (this.used === this.first.length) this.grow();
      p = this.used++;
    }
    this.first[p] = s;
    this.last[p] = s;
    this.primLast[p] = s;
    this.count[p] = 1;
    this.keySlot[p] = s;
    this.keyHash[p] = hash;
    this.keyOwned[p] = 0;
    this.skb[p] = skb;
    this.cloneOf[p] = cloneOf;
    this.id[p] = null;
    this.oldKeySlot[p] = -1;
    this.moreOldKeys[p] = null;
    this.held[p] = 0;
    this.extra[p] = null;
    return p;
  }

  /** Remembers the packet's current key as an old one (its headers are about to change). */
  keepOldKey(p: number): void {
    if (this.oldKeySlot[p] === -1) {
      this.oldKeySlot[p] = this.keySlot[p] as number;
      this.oldKeyHash[p] = this.keyHash[p] as number;
    } else {
      (this.moreOldKeys[p] ??= []).push(this.keySlot[p] as number, this.keyHash[p] as number);
    }
  }

  free(p: number): void {
    this.moreOldKeys[p] = null;
    this.extra[p] = null;
    this.held[p] = 0;
    this.cloneOf[p] = null;
    this.id[p] = null;
    this.count[p] = this.freeHead;
    this.freeHead = p;
  }

  private grow(): void {
    const n = this.first.length * 2;
    const widen = (a: Int32Array): Int32Array => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.first = widen(this.first);
    this.last = widen(this.last);
    this.primLast = widen(this.primLast);
    this.count = widen(this.count);
    this.keySlot = widen(this.keySlot);
    this.keyHash = widen(this.keyHash);
    this.oldKeySlot = widen(this.oldKeySlot);
    this.oldKeyHash = widen(this.oldKeyHash);
    const owned = new Uint8Array(n);
    owned.set(this.keyOwned);
    this.keyOwned = owned;
    const held = new Uint8Array(n);
    held.set(this.held);
    this.held = held;
    const heldAt = new Float64Array(n);
    heldAt.set(this.heldAt);
    this.heldAt = heldAt;
    for (let i = this.skb.length; i < n; i++) {
      this.skb.push('');
      this.cloneOf.push(null);
      this.id.push(null);
      this.moreOldKeys.push(null);
      this.extra.push(null);
    }
  }
}

/**
 * One CPU's waiting events (store slots) in time order (a CPU's events arrive in order, but
 * nothing relies on it): a ring buffer, so that queueing costs the collector nothing.
 */
class CpuQueue {
  buf = new Int32Array(1024);
  head = 0;
  length = 0;

  /** The `i`th waiting slot. */
  at(i: number): number {
    return this.buf[(this.head + i) & (this.buf.length - 1)] as number;
  }

  /** Inserts `slot` before the `i`th waiting one (at the end when i = length). */
  insert(i: number, slot: number): void {
    if (this.length === this.buf.length) this.grow();
    const buf = this.buf;
    const mask = buf.length - 1;
    for (let j = this.length; j > i; j--) buf[(this.head + j) & mask] = buf[(this.head + j - 1) & mask] as number;
    buf[(this.head + i) & mask] = slot;
    this.length++;
  }

  shift(): number {
    const slot = this.buf[this.head] as number;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.length--;
    return slot;
  }

  private grow(): void {
    const buf = new Int32Array(this.buf.length * 2);
    for (let i = 0; i < this.length; i++) buf[i] = this.at(i);
    this.buf = buf;
    this.head = 0;
  }
}

/**
 * The reorder buffer: events wait here until every CPU's earlier events have arrived. bpftrace
 * drains each CPU's buffer in order, so each CPU's events come as a sorted run and releasing is
 * a merge of the runs' heads: no heap, no per-event allocation. An event older than its CPU's
 * newest (tests, or a late arrival) is inserted in place. Ties are broken by arrival order
 * (the store's F_SEQ).
 */
class ReorderBuffer {
  private readonly byCpu = new Map<number, CpuQueue>();
  private readonly queues: CpuQueue[] = [];
  /** The queue of the last CPU pushed: consecutive events mostly come from one CPU's buffer. */
  private lastCpu = Number.NaN;
  private lastQueue: CpuQueue | null = null;
  size = 0;

  constructor(private readonly store: HopStore) {}

  push(slot: number, cpu: number): void {
    let q = cpu === this.lastCpu ? this.lastQueue : this.byCpu.get(cpu);
    if (!q) {
      q = new CpuQueue();
      this.byCpu.set(cpu, q);
      this.queues.push(q);
    }
    this.lastCpu = cpu;
    this.lastQueue = q;
    const num = this.store.num;
    const t = num[slot * STORE_NUM + F_T] as number;
    const n = q.length;
    if (n === 0 || (num[q.at(n - 1) * STORE_NUM + F_T] as number) <= t) {
      q.insert(n, slot);
    } else {
      // First waiting event later than this one: it goes before it (after any of equal time).
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((num[q.at(mid) * STORE_NUM + F_T] as number) <= t) lo = mid + 1;
        else hi = mid;
      }
      q.insert(lo, slot);
    }
    this.size++;
  }

  /** Removes and returns the earliest waiting event at or before `upTo`; -1 when there is none. */
  pop(upTo: number): number {
    const num = this.store.num;
    let best: CpuQueue | undefined;
    let bestT = upTo;
    let bestSeq = Infinity;
    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i] as CpuQueue;
      if (q.length === 0) continue;
      const o = (q.buf[q.head] as number) * STORE_NUM;
      const t = num[o + F_T] as number;
      if (t < bestT || (t === bestT && (num[o + F_SEQ] as number) < bestSeq)) {
        best = q;
        bestT = t;
        bestSeq = num[o + F_SEQ] as number;
      }
    }
    if (!best) return -1;
    this.size--;
    return best.shift();
  }
}

const DEFAULTS = {
  reorderWindowNs: 50_000_000,
  // 2 s of a busy trace (15k packets/s, ~100k hop events/s) is ~200k events held, ~20 MiB of
  // store; a reader further behind than that is a loss of order, counted late, not of events.
  maxReorderWindowNs: 2_000_000_000,
  idleNs: 1_000_000_000,
  maxGapNs: 1_000_000_000,
  cloneWindowNs: 1_000_000,
  // As long as a packet may pause between hops (maxGapNs): a loaded host's softirq lags
  // reassembly and neighbour resolution by more than 100 ms (seen in the overlay tests).
  handoffNs: 1_000_000_000,
};

/** Event time without a late event after which a widened reorder window narrows by half. */
const NARROW_AFTER_NS = 30_000_000_000;

export function defaultDropReason(code: number): string {
  return `reason-${code}`;
}

/**
 * Could the packet whose latest hop is `prev` still move on to namespace `evNetns` by hop
 * `evKind`? Not when it is a new packet in a reused skb whose free was not seen (issue 13):
 * - Sent out of a veth, it arrives in the namespace of the veth's peer, when the model says
 *   which that is (`peerNetns`); without a model any namespace may be the next.
 * - A packet taken in by a namespace's stack (`recv`, `rx`) leaves that namespace only by a
 *   transmit there: a transmit from another namespace is that namespace's own new packet (seen:
 *   a reply read in the host, then a container's next packet in the same skb). A transmit can
 *   hand on to another namespace's device (macvlan to its parent, a tunnel to its underlay), a
 *   receive to another's (macvlan's receive handler), so those may cross.
 * - A packet received by the stack it was addressed to (its namespace owns the destination, or
 *   loopback: shared/fate.ts) was delivered there: it goes on only in that namespace (forwarded
 *   after DNAT, or freed).
 * Frees without a device (netns 0) happen where the packet last was.
 */
function staysOnPath(prevKind: string, prevNetns: number, prevIfname: string, prevDst: string, evKind: string, evNetns: number, isLocal: IsLocal | undefined, peerNetns: PeerNetns | undefined): boolean {
  if (evNetns === 0 || evNetns === prevNetns) return true;
  if (prevKind === 'xmit') {
    // Out of a veth: into its peer's namespace only (with a model; a transmit may also hand on
    // to another device's transmit, macvlan to its parent, so only receives are checked).
    if ((evKind !== 'rx' && evKind !== 'recv') || !peerNetns) return true;
    const peer = peerNetns(prevNetns, prevIfname);
    return peer === null || peer === evNetns;
  }
  if (prevKind !== 'recv' && prevKind !== 'rx') return true;
  if (evKind === 'xmit') return false;
  return !(prevKind === 'recv' && reachedItsStack({ event: prevKind, netns: prevNetns, ifname: prevIfname, dst: prevDst }, isLocal));
}

type IsLocal = (netns: number, addr: string) => boolean;
type PeerNetns = (netns: number, ifname: string) => number | null;

/**
 * Could `ev` be the next hop of the packet whose latest hop is `prev`? `isLocal` (optional)
 * tells which namespace owns an address, for the delivered-then-moved rule (staysOnPath).
 */
export function continuesPacket(prev: HopEvent, ev: HopEvent, maxGapNs: number, isLocal?: IsLocal, peerNetns?: PeerNetns): boolean {
  if (prev.kind === 'drop' || prev.kind === 'consume') return false;
  if (ev.t - prev.t > maxGapNs) return false;
  if (ev.family !== prev.family || ev.proto !== prev.proto) return false;
  if (ev.family === 4 && ev.ipId !== prev.ipId) return false;
  // NAT leaves TCP's sequence alone (IPv4 ids repeat: Linux sends id 0 with DF on some paths).
  if (ev.proto === 6 && ev.tcpSeq !== prev.tcpSeq) return false;
  if (ev.family === 6) {
    // IPv6 has no id: fall back on what NAT leaves alone.
    if (ev.icmpId !== prev.icmpId) return false;
    if (ev.proto !== 6 && ev.len !== prev.len && ev.kind !== 'drop' && ev.kind !== 'consume') return false;
  }
  if (!staysOnPath(prev.kind, prev.netns, prev.ifname, prev.dst, ev.kind, ev.netns, isLocal, peerNetns)) return false;
  const srcSame = ev.src === prev.src && ev.sport === prev.sport;
  const dstSame = ev.dst === prev.dst && ev.dport === prev.dport;
  if (srcSame || dstSame) return true;
  // Both ends rewritten: only DNAT+SNAT inside one namespace does that, never a reply.
  const reversed = ev.src === prev.dst && ev.dst === prev.src;
  return !reversed && ev.netns === prev.netns;
}

/** continuesPacket on two store slots (the engine's copy of it: keep the two in step). */
function continuesAt(st: HopStore, a: number, b: number, maxGapNs: number, isLocal: IsLocal | undefined, peerNetns: PeerNetns | undefined): boolean {
  const n = st.num;
  const r = st.ref;
  const qa = a * STORE_REFS;
  const qb = b * STORE_REFS;
  const ka = r[qa + R_KIND] as string;
  if (ka === 'drop' || ka === 'consume') return false;
  const oa = a * STORE_NUM;
  const ob = b * STORE_NUM;
  if ((n[ob + F_T] as number) - (n[oa + F_T] as number) > maxGapNs) return false;
  const family = n[ob + F_FAMILY];
  const proto = n[ob + F_PROTO];
  if (family !== n[oa + F_FAMILY] || proto !== n[oa + F_PROTO]) return false;
  if (family === 4 && n[ob + F_IPID] !== n[oa + F_IPID]) return false;
  if (proto === 6 && n[ob + F_TCPSEQ] !== n[oa + F_TCPSEQ]) return false;
  if (family === 6) {
    if (n[ob + F_ICMPID] !== n[oa + F_ICMPID]) return false;
    const kb = r[qb + R_KIND];
    if (proto !== 6 && n[ob + F_LEN] !== n[oa + F_LEN] && kb !== 'drop' && kb !== 'consume') return false;
  }
  const netnsA = n[oa + F_NETNS] as number;
  const netnsB = n[ob + F_NETNS] as number;
  if (netnsB !== 0 && netnsB !== netnsA && !staysOnPath(ka, netnsA, r[qa + R_IFNAME] as string, r[qa + R_DST] as string, r[qb + R_KIND] as string, netnsB, isLocal, peerNetns)) return false;
  const srcA = r[qa + R_SRC];
  const dstA = r[qa + R_DST];
  const srcB = r[qb + R_SRC];
  const dstB = r[qb + R_DST];
  const srcSame = srcB === srcA && n[ob + F_SPORT] === n[oa + F_SPORT];
  const dstSame = dstB === dstA && n[ob + F_DPORT] === n[oa + F_DPORT];
  if (srcSame || dstSame) return true;
  const reversed = srcB === dstA && dstB === srcA;
  return !reversed && netnsB === netnsA;
}

function tupleAt(st: HopStore, s: number): Tuple {
  const o = s * STORE_NUM;
  const q = s * STORE_REFS;
  return { src: st.ref[q + R_SRC] as string, dst: st.ref[q + R_DST] as string, sport: smallInt(st.num[o + F_SPORT] as number), dport: smallInt(st.num[o + F_DPORT] as number) };
}

/**
 * The rewrite between `prev` (the latest hop that was not a free) and `ev`, which is not a free.
 * Its slot-offset preamble has the shape of clone-index.ts keyChanged's by accident: each reads
 * two slots' fields in place, once per hop, where a shared accessor would cost a call a field.
 */
function natBetween(st: HopStore, prev: number, ev: number): NatRewrite | null {
  const n = st.num;
  const r = st.ref;
  const op = prev * STORE_NUM;
  const oe = ev * STORE_NUM;
  const qp = prev * STORE_REFS;
  const qe = ev * STORE_REFS;
  const srcChanged = r[qe + R_SRC] !== r[qp + R_SRC] || n[oe + F_SPORT] !== n[op + F_SPORT];
  const dstChanged = r[qe + R_DST] !== r[qp + R_DST] || n[oe + F_DPORT] !== n[op + F_DPORT];
  if (!srcChanged && !dstChanged) return null;
  return { kind: srcChanged && dstChanged ? 'both' : srcChanged ? 'snat' : 'dnat', from: tupleAt(st, prev), to: tupleAt(st, ev) };
}

/** The rewrite between what the sending socket asked for and the first hop `ev` (HopEvent.sent). */
function natFromSent(st: HopStore, sent: HopSent, ev: number): NatRewrite | null {
  const to = tupleAt(st, ev);
  const srcChanged = sent.src !== to.src || sent.sport !== to.sport;
  const dstChanged = sent.dst !== to.dst || sent.dport !== to.dport;
  if (!srcChanged && !dstChanged) return null;
  return { kind: srcChanged && dstChanged ? 'both' : srcChanged ? 'snat' : 'dnat', from: { src: sent.src, dst: sent.dst, sport: sent.sport, dport: sent.dport }, to };
}

export class Reconstructor {
  private readonly opts: Required<Omit<ReconstructOptions, 'isLocal' | 'accept' | 'peerNetns'>> & Pick<ReconstructOptions, 'isLocal' | 'accept' | 'peerNetns'>;
  /** The reorder window now: reorderWindowNs, widened by late events (see pushStored). */
  private window: number;
  /** Event time of the last late event, or of the last narrowing: the window narrows 30 s after. */
  private lateAt = 0;
  /** Newest event time pushed (`newest` also moves on advance). */
  private newestEvent = 0;
  /** idleClock: the newest event time at its last call, and the wall time the input went quiet (-1: it was not). */
  private idleSeen = 0;
  private quietSince = -1;
  private idleLast = 0;
  /** Every event the engine holds, waiting in `queue` or part of a live packet. */
  private readonly store = new HopStore();
  private readonly queue = new ReorderBuffer(this.store);
  private readonly packets = new LivePackets();
  /** skb → its live packet (a row of `packets`). Insertion order is creation order: idle packets finish in it. */
  private readonly live = new Map<string, number>();
  /** Latest live packet per clone key, for spotting clones. */
  private readonly bySignature = new CloneIndex(this.store);
  private seq = 0;
  private newest = 0;
  /** Time up to which events have been released in order. */
  private released = 0;
  private expiredAt = 0;
  private out: Packet[] = [];
  readonly stats: ReconstructStats;
  /** Notes (probes/notes, probes/deep) waiting for their packet, by skb. Null until the first note. */
  private notes: Map<string, HopNote[]> | null = null;
  private notesPrunedAt = 0;
  /** Skbs carrying part of a live packet besides its own (fragments, the skb it was copied from). */
  private readonly aliases = new Map<string, number>();
  /** Outer "src|dst|ipId" of a packet's fragmented datagram → the packet. */
  private readonly fragKeys = new Map<string, number>();
  /** Packets waiting for the skb they are handed on to (not in `live`). */
  private readonly heldList: number[] = [];
  /** A sender's own datagram, "proto|src|dst|ipId" (PacketExtra.dgKeys) → the packet its fragments are hops of. */
  private readonly datagrams = new Map<string, number>();
  /**
   * A sender's own datagram by "proto|ipId" → its packet (the latest): a datagram a node cut anew
   * after NAT rewrote it (rewrittenDatagram) is found by it.
   */
  private readonly datagramIds = new Map<string, number>();
  /** Fragment number (1 = the first) of events of fragment skbs, by store slot. */
  private readonly fragSlots = new Map<number, number>();

  constructor(options: ReconstructOptions = {}) {
    this.opts = {
      reorderWindowNs: options.reorderWindowNs ?? DEFAULTS.reorderWindowNs,
      maxReorderWindowNs: Math.max(options.maxReorderWindowNs ?? DEFAULTS.maxReorderWindowNs, options.reorderWindowNs ?? DEFAULTS.reorderWindowNs),
      idleNs: options.idleNs ?? DEFAULTS.idleNs,
      maxGapNs: options.maxGapNs ?? DEFAULTS.maxGapNs,
      cloneWindowNs: options.cloneWindowNs ?? DEFAULTS.cloneWindowNs,
      handoffNs: options.handoffNs ?? DEFAULTS.handoffNs,
      nsName: options.nsName ?? (() => null),
      dropReason: options.dropReason ?? defaultDropReason,
      isLocal: options.isLocal,
      peerNetns: options.peerNetns,
      accept: options.accept,
    };
    this.window = this.opts.reorderWindowNs;
    this.stats = { events: 0, packets: 0, late: 0, rejected: 0, orphans: 0, splits: 0, windowNs: this.window, widestWindowNs: this.window };
  }

  /**
   * Adds one event. Call `drain()` to collect packets that are complete. The engine copies what
   * it needs: the caller may reuse or drop `ev` afterwards.
   */
  push(ev: HopEvent): void {
    this.pushStored(this.store.add(ev, 0));
  }

  /**
   * The engine's event store, for parsers that write an event straight into it
   * (probes/hop-line.ts parseHopLineInto, pushHopLines) and hand it over with `pushStored`.
   */
  get hopStore(): HopStore {
    return this.store;
  }

  /**
   * Adds the event written into slot `s` of `hopStore` (taken with its claim(), every field but
   * F_SEQ filled): what `push` does with an event, without one.
   */
  pushStored(s: number): void {
    this.stats.events++;
    const num = this.store.num;
    const o = s * STORE_NUM;
    num[o + F_SEQ] = this.seq++;
    const t = num[o + F_T] as number;
    if (t < this.released) this.late(t);
    if (t > this.newest) this.newest = t;
    if (t > this.newestEvent) this.newestEvent = t;
    this.queue.push(s, num[o + F_CPU] as number);
    this.release(this.newest - this.window);
  }

  /**
   * Event time `t` came after the window had released past it. Counted, and the window widens to
   * twice how far behind the newest time it was (at least twice as far as it was late), so the
   * same lag next time waits instead of splitting packets. Events of one CPU, and of 0.21+'s one
   * ring buffer, come in order, so a lag is a backlog of whole runs, not single strays.
   */
  private late(t: number): void {
    this.stats.late++;
    this.lateAt = this.newest;
    const want = Math.min(this.opts.maxReorderWindowNs, Math.max(this.window, 2 * (this.newest - t), 2 * (this.released - t)));
    if (want > this.window) {
      this.window = want;
      this.stats.windowNs = want;
      if (want > this.stats.widestWindowNs) this.stats.widestWindowNs = want;
    }
  }

  /**
   * The clock to `advance` the engine to at a caller's periodic tick, from its wall clock
   * `wallNs` (the kernel's clock: CLOCK_MONOTONIC for bpftrace's nsecs). While events arrive the
   * engine's clock is theirs: a reader behind by seconds must not release on the wall clock past
   * events still in its pipe (issue 15: packets split with nothing lost). Once a tick sees no new
   * event the input is quiet, and from then on the clock moves on with the wall clock from the
   * newest event, so idle packets finish when traffic stops. A tick that comes late (the
   * process was stopped or starved) only marks the start of the quiet: the time it was away
   * is not counted, since the events of that time may still be on their way.
   */
  /** The newest event time pushed so far (0 before any): the hops' own clock, for callers that stamp their changes on it. */
  get newestEventT(): number {
    return this.newestEvent;
  }

  idleClock(wallNs: number): number {
    let clock: number;
    if (this.newestEvent !== this.idleSeen || this.newestEvent === 0) {
      this.idleSeen = this.newestEvent;
      this.quietSince = -1;
      clock = this.newestEvent;
    } else {
      if (this.quietSince < 0) this.quietSince = wallNs;
      clock = this.newestEvent + Math.max(0, wallNs - this.quietSince);
    }
    // Never back (recordings keep these as clock lines): events after a quiet may be older
    // than where the quiet had taken the clock.
    if (clock > this.idleLast) this.idleLast = clock;
    return this.idleLast;
  }

  /**
   * Adds a note (the notes tier). Notes naming an skb join the packet that skb carries at the
   * note's time: from shortly before its first hop (a qdisc wait ends just before the transmit
   * hop) to its last. Packets get a `notes` field once any note was pushed; notes for packets the
   * engine never sees are forgotten after a while.
   */
  pushNote(note: HopNote): void {
    this.notes ??= new Map();
    if (note.skb === '0' || note.skb === '') return;
    const list = this.notes.get(note.skb);
    if (list) list.push(note);
    else this.notes.set(note.skb, [note]);
  }

  /**
   * Tells the engine the kernel clock has reached `nowNs` although no event says so (traffic
   * stopped): waiting events are released and idle packets finished.
   */
  advance(nowNs: number): void {
    if (nowNs > this.newest) this.newest = nowNs;
    this.release(this.newest - this.window);
    this.expire(this.released - this.opts.idleNs);
  }

  /**
   * The earliest first-hop time of any packet the engine may still give out (the hub's stitching
   * watermark, shared/cluster/stitch.ts): the time events are released up to, or the first hop
   * of an older packet still live (idle ones wait `idleNs`) or waiting for its handoff.
   */
  pendingSince(): number {
    const st = this.store;
    const first = this.packets.first;
    let min = this.released;
    for (const p of this.live.values()) min = Math.min(min, st.t(first[p] as number));
    for (const p of this.heldList) min = Math.min(min, st.t(first[p] as number));
    return min;
  }

  /** Packets completed since the last call, in the order they completed. */
  drain(): Packet[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  /** End of input: releases every waiting event and finishes every live packet. */
  flush(): Packet[] {
    this.release(Number.POSITIVE_INFINITY);
    const st = this.store;
    const first = this.packets.first;
    const rest = [...this.live.values(), ...this.heldList].sort((a, b) => st.t(first[a] as number) - st.t(first[b] as number));
    for (const p of rest) this.finish(p);
    return this.drain();
  }

  /** Live packets (not finished yet), for progressive displays. */
  get liveCount(): number {
    return this.live.size;
  }

  private release(upTo: number): void {
    for (let s = this.queue.pop(upTo); s >= 0; s = this.queue.pop(upTo)) this.place(s);
    if (this.heldList.length > 0) {
      const due = this.heldList.filter((p) => upTo - (this.packets.heldAt[p] as number) > this.opts.handoffNs);
      for (const p of due) this.finish(p);
    }
    if (upTo > this.released) {
      this.released = upTo;
      if (this.window > this.opts.reorderWindowNs && this.newest - this.lateAt > NARROW_AFTER_NS) {
        // Caught up a while ago: halve the widening, so packets are reported sooner again.
        this.lateAt = this.newest;
        this.window = Math.max(this.opts.reorderWindowNs, this.window / 2);
        this.stats.windowNs = this.window;
      }
      // Finish idle packets now and then, not on every event.
      if (upTo - this.expiredAt > this.opts.idleNs / 4) this.expire(upTo - this.opts.idleNs);
    }
  }

  private place(s: number): void {
    const st = this.store;
    const P = this.packets;
    const skb = st.ref[s * STORE_REFS + R_SKB] as string;
    if (this.aliases.size > 0) {
      const a = this.aliases.get(skb);
      if (a !== undefined && this.placeAlias(a, s, skb)) return;
    }
    let p = this.live.get(skb) ?? -1;
    /** The packet's latest hop before this one (-1 for a new packet). */
    let prevSlot = -1;
    // A sender's own fragment (not a tunnel's outer one): its header field, 0 for other events.
    const pf = st.frags !== null && st.outers?.[s] === undefined ? st.frag(s) : 0;
    if (p >= 0 && !continuesAt(st, P.primLast[p] as number, s, this.opts.maxGapNs, this.opts.isLocal, this.opts.peerNetns)
      // An skb of a fragmented datagram changes size and ports as it goes from fragment to
      // datagram (reassembly into the last fragment's skb) and back (it leaves as the first).
      && !(this.datagrams.size > 0 && (P.extra[p]?.dgKeys.length ?? 0) > 0 && (pf !== 0 ? this.datagrams.get(this.dgKey(s)) === p : this.wholeOf(p, s)))) {
      // The skb carries a new packet although the last one's free was not seen (TCP frees
      // without a tracepoint): the two are told apart, and counted.
      this.stats.splits++;
      this.finish(p);
      p = -1;
    }
    if (p < 0 && pf !== 0 && this.datagrams.size > 0) {
      const q = this.datagrams.get(this.dgKey(s)) ?? this.rewrittenDatagram(s);
      if (q !== undefined && st.t(s) - st.t(P.last[q] as number) <= this.opts.handoffNs) {
        this.joinFragment(q, s, skb);
        return;
      }
    }
    if (p < 0) {
      const hash = cloneKeyHash(st, s);
      const orig = this.bySignature.get(s, hash);
      if ((orig >= 0 || this.fragKeys.size > 0) && this.joins(orig, s, skb)) return;
      p = P.alloc(skb, s, hash, this.findOriginal(s, skb, orig));
      this.live.set(skb, p);
      const outer = st.outers?.[s];
      // The first fragment of an outer datagram no whole skb of was seen (another sender's
      // fragments, received): the packet itself; its later fragments join it by the id.
      if (outer !== undefined && ((outer.frag ?? 0) & 0x3fff) === 0x2000) {
        this.fragmentOf(p, s, outer);
        (P.extra[p] as PacketExtra).fragSkb = skb;
      }
      if (pf !== 0) this.registerDatagram(p, s);
    } else {
      const last = P.primLast[p] as number;
      prevSlot = last;
      this.append(p, s);
      if (this.fragSlots.size > 0 && P.extra[p]?.fragSkb === skb) this.fragSlots.set(s, 1);
      if (pf !== 0) this.registerDatagram(p, s);
      if (keyChanged(st, last, s)) {
        P.keepOldKey(p);
        P.keySlot[p] = s;
        P.keyHash[p] = cloneKeyHash(st, s);
        P.keyOwned[p] = 0;
      }
    }
    if (st.isFree(s)) {
      // Freed while the packet lives on (see the header): it waits for the skb it goes on in.
      const handed = st.kind(s) === 'consume' ? (st.field(s, F_REASON) === 1 && this.copiedAway(prevSlot, s) ? 1 : st.outers?.[s] !== undefined ? 2 : 0) : 0;
      if (handed !== 0 || (P.extra[p] !== null && (this.hasAliases(p) || this.cutAgain(p, prevSlot, s)))) {
        // The skb it went on in may have been placed already (its events came late): join it now.
        const q = this.bySignature.get(P.keySlot[p] as number, P.keyHash[p] as number);
        if (q >= 0 && q !== p && this.wentOnIn(p, q, handed === 1 ? 1 : 2, st.t(s))) this.absorb(p, q);
        else this.hold(p, handed === 1 ? 1 : 2, st.t(s));
      } else this.finish(p);
    } else if (P.keyOwned[p] === 0) {
      const before = this.bySignature.set(P.keySlot[p] as number, P.keyHash[p] as number, p);
      if (before >= 0 && before !== p) P.keyOwned[before] = 0;
      P.keyOwned[p] = 1;
    }
  }

  /** Adds event `s` at the end of packet `p`'s chain, as its current skb's latest. */
  private append(p: number, s: number): void {
    const P = this.packets;
    this.store.next[P.last[p] as number] = s;
    P.count[p] = (P.count[p] as number) + 1;
    P.last[p] = s;
    P.primLast[p] = s;
  }

  /** Adds event `s` of another skb carrying part of packet `p` (the packet's own skb's latest stays). */
  private appendPart(p: number, s: number): void {
    const P = this.packets;
    this.store.next[P.last[p] as number] = s;
    P.count[p] = (P.count[p] as number) + 1;
    P.last[p] = s;
  }

  private hasAliases(p: number): boolean {
    const e = this.packets.extra[p];
    return e !== null && e !== undefined && e.skbs.some((x) => this.aliases.get(x) === p);
  }

  /**
   * Whether consume `s` (its data still shared by a clone) after hop `prev` is a packet copied on
   * its way out (skb_expand_head: freed on the output device, after a hop on another one) rather
   * than a delivered packet a sniffer's clone (AF_PACKET) or a flood's sibling still shares.
   */
  private copiedAway(prev: number, s: number): boolean {
    if (prev < 0) return false;
    const st = this.store;
    const dev = st.str(s, R_IFNAME);
    if (dev === '' || dev === st.str(prev, R_IFNAME)) return false;
    return !reachedItsStack({ event: st.kind(prev), netns: smallInt(st.field(prev, F_NETNS)), ifname: st.str(prev, R_IFNAME), dst: st.str(prev, R_DST) }, this.opts.isLocal);
  }

  /**
   * Whether consume `s` after hop `prev` is a fragment of packet `p`'s own datagram cut again on
   * its way out (ip_do_fragment's slow path, a forwarded fragment larger than the egress MTU:
   * the pieces are new skbs, the original is consumed on the output device). Measured on the
   * vxlan lab: the consume can come first, when the pieces wait in the neighbour queue for the
   * device's first ARP; the packet then waits for them (they join by the datagram key).
   */
  private cutAgain(p: number, prev: number, s: number): boolean {
    const st = this.store;
    return st.kind(s) === 'consume' && (this.packets.extra[p]?.dgKeys.length ?? 0) > 0 && innerFrag(st, s) !== 0 && this.copiedAway(prev, s);
  }

  /** Whether live packet `q`, with packet `p`'s headers, is the skb `p` went on in (freed at `t`, `kind` as `held`). */
  private wentOnIn(p: number, q: number, kind: number, t: number): boolean {
    const st = this.store;
    const P = this.packets;
    const skb = P.skb[q] as string;
    if (this.live.get(skb) !== q || skb === P.skb[p]) return false;
    const first = P.first[q] as number;
    // A copy starts after its original's free (kernel time), soon.
    if (st.t(first) < t || st.t(first) - t > this.opts.handoffNs) return false;
    return kind !== 1 || (st.kind(first) === 'xmit' && st.field(first, F_NETNS) === st.field(P.last[p] as number, F_NETNS));
  }

  /** Live packet `q` is where packet `p` went on (placed before `p`'s free was): its hops become `p`'s. */
  private absorb(p: number, q: number): void {
    const st = this.store;
    const P = this.packets;
    this.bySignature.deleteIf(P.keySlot[q] as number, P.keyHash[q] as number, q);
    const oldSlot = P.oldKeySlot[q] as number;
    if (oldSlot >= 0) this.bySignature.deleteIf(oldSlot, P.oldKeyHash[q] as number, q);
    const qskb = P.skb[q] as string;
    this.live.delete(qskb);
    // `p`'s own skb was just freed.
    if (this.live.get(P.skb[p] as string) === p) this.live.delete(P.skb[p] as string);
    P.id[p] ??= packetIdOf(st.t(P.first[p] as number), P.skb[p] as string);
    st.next[P.last[p] as number] = P.first[q] as number;
    P.last[p] = P.last[q] as number;
    P.primLast[p] = P.primLast[q] as number;
    P.count[p] = (P.count[p] as number) + (P.count[q] as number);
    P.keySlot[p] = P.keySlot[q] as number;
    P.keyHash[p] = P.keyHash[q] as number;
    P.keyOwned[p] = 0;
    const qe = P.extra[q];
    if (qe) for (const x of qe.skbs) if (this.aliases.get(x) === q) this.alias(p, x);
    if (qe && qe.dgKeys.length > 0) {
      const pe = (P.extra[p] ??= newExtra());
      for (const k of qe.dgKeys) if (this.datagrams.get(k) === q) { this.datagrams.set(k, p); pe.dgKeys.push(k); }
      for (const k of qe.dgKeys) if (this.datagramIds.get(datagramId(k)) === q) this.datagramIds.set(datagramId(k), p);
      if (pe.dgSport < 0) { pe.dgSport = qe.dgSport; pe.dgDport = qe.dgDport; }
    }
    P.skb[p] = qskb;
    this.live.set(qskb, p);
    P.free(q);
    this.bySignature.set(P.keySlot[p] as number, P.keyHash[p] as number, p);
    P.keyOwned[p] = 1;
  }

  /** Packet `p`'s skb was freed while it lives on: it leaves `live` and waits (`heldList`). */
  private hold(p: number, kind: number, t: number): void {
    const P = this.packets;
    const skb = P.skb[p] as string;
    if (this.live.get(skb) === p) this.live.delete(skb);
    P.held[p] = kind;
    P.heldAt[p] = t;
    this.heldList.push(p);
  }

  private unhold(p: number): void {
    const P = this.packets;
    P.held[p] = 0;
    const i = this.heldList.indexOf(p);
    if (i >= 0) this.heldList.splice(i, 1);
  }

  /** Makes `skb` (whose event `s` is the packet's next) packet `p`'s own skb. */
  private switchTo(p: number, skb: string, s: number): void {
    const P = this.packets;
    const st = this.store;
    // The id names the first skb for the packet's whole life.
    P.id[p] ??= packetIdOf(st.t(P.first[p] as number), P.skb[p] as string);
    const old = P.skb[p] as string;
    if (this.live.get(old) === p) {
      this.live.delete(old);
      this.alias(p, old);
    }
    if (P.held[p] !== 0) this.unhold(p);
    this.aliases.delete(skb);
    P.skb[p] = skb;
    this.live.set(skb, p);
    this.append(p, s);
  }

  private alias(p: number, skb: string): void {
    const P = this.packets;
    const e = (P.extra[p] ??= newExtra());
    e.skbs.push(skb);
    this.aliases.set(skb, p);
  }

  /**
   * A new skb's first event `s`: a fragment of a live packet's outer datagram, or the skb a
   * packet was handed on to (`orig`: the packet with the same headers, -1 if none). Places it
   * and returns true when it is one.
   */
  private joins(orig: number, s: number, skb: string): boolean {
    const st = this.store;
    const P = this.packets;
    const t = st.t(s);
    const outer = st.outers?.[s];
    const frag = outer?.frag ?? 0;
    if (orig >= 0 && outer !== undefined && (frag & 0x3fff) !== 0 && t - st.t(P.last[orig] as number) <= this.opts.handoffNs) {
      // The first fragment: it carries the inner headers.
      this.alias(orig, skb);
      this.fragmentOf(orig, s, outer);
      this.appendPart(orig, s);
      return true;
    }
    if (this.fragKeys.size > 0 && outer === undefined && st.field(s, F_SPORT) === 0 && st.field(s, F_DPORT) === 0) {
      const p = this.fragKeys.get(`${st.str(s, R_SRC)}|${st.str(s, R_DST)}|${st.field(s, F_IPID)}`);
      if (p !== undefined) {
        // A later fragment: its own header is the outer one.
        this.alias(p, skb);
        const e = P.extra[p] as PacketExtra;
        e.count++;
        this.fragSlots.set(s, e.count);
        this.asFragment(p, s);
        this.appendPart(p, s);
        return true;
      }
    }
    if (orig < 0 || P.held[orig] === 0 || t - (P.heldAt[orig] as number) > this.opts.handoffNs) return false;
    // Handed on: a copy goes on where its original was freed; a reassembled datagram anywhere.
    if (P.held[orig] === 1 && (st.field(s, F_NETNS) !== st.field(P.last[orig] as number, F_NETNS) || st.kind(s) !== 'xmit')) return false;
    this.switchTo(orig, skb, s);
    return true;
  }

  /** Event `s`'s datagram key: a sender's own fragments share it (NAT changes it, the id stays). */
  private dgKey(s: number): string {
    const st = this.store;
    return `${st.field(s, F_PROTO)}|${st.str(s, R_SRC)}|${st.str(s, R_DST)}|${st.field(s, F_IPID)}`;
  }

  /**
   * Fragment event `s` of packet `p`'s own datagram: its key names the packet from now on (the
   * first's, and again after NAT rewrote it); the first fragment's ports are kept.
   */
  private registerDatagram(p: number, s: number): void {
    const st = this.store;
    const e = (this.packets.extra[p] ??= newExtra());
    const key = this.dgKey(s);
    if (this.datagrams.get(key) !== p) {
      this.datagrams.set(key, p);
      e.dgKeys.push(key);
      this.datagramIds.set(datagramId(key), p);
    }
    if (e.dgSport < 0 && (st.frag(s) & 0x1fff) === 0) {
      e.dgSport = st.field(s, F_SPORT);
      e.dgDport = st.field(s, F_DPORT);
    }
  }

  /**
   * The packet whose datagram fragment event `s` (of a new skb, its key unknown) was cut from
   * after a NAT rewrote it: a node that reassembled the datagram (conntrack's defrag), rewrote
   * its source (SNAT, MASQUERADE) or destination (DNAT), and had to cut it anew for a smaller
   * egress MTU sends new skbs with the rewritten header before any hop of the rewritten datagram
   * shows (ip_do_fragment's slow path; the whole is consumed after them). Same protocol and id
   * (NAT keeps it), one address the same, the other not; the datagram last seen in this
   * namespace (`anyNs`: anywhere, for an skb known to carry a part of it), within `handoffNs`.
   * Undefined when none.
   */
  private rewrittenDatagram(s: number, anyNs = false): number | undefined {
    const st = this.store;
    const P = this.packets;
    const q = this.datagramIds.get(`${st.field(s, F_PROTO)}|${st.field(s, F_IPID)}`);
    if (q === undefined) return undefined;
    const e = P.extra[q];
    const last = P.last[q] as number;
    // A free without a device reports namespace 0: it happened where the packet last was.
    const ns = st.field(last, F_NETNS);
    if (!e || (!anyNs && ns !== 0 && ns !== st.field(s, F_NETNS)) || st.t(s) - st.t(last) > this.opts.handoffNs) return undefined;
    const src = st.str(s, R_SRC);
    const dst = st.str(s, R_DST);
    for (const k of e.dgKeys) {
      const [, ksrc, kdst] = k.split('|');
      if ((ksrc === src) !== (kdst === dst)) return q;
    }
    return undefined;
  }

  /**
   * Whether event `s` (no fragment field) is packet `p`'s datagram whole: reassembled (into the
   * last fragment's skb, inet_frag_reasm_prepare) by conntrack's defrag or the receiver. IPv4: its
   * key is one of the packet's; IPv6 (the whole has no Fragment header): addresses, protocol and
   * the first fragment's ports.
   */
  private wholeOf(p: number, s: number): boolean {
    const st = this.store;
    const e = this.packets.extra[p];
    if (!e || e.dgKeys.length === 0 || st.frag(s) !== 0 || st.outers?.[s] !== undefined) return false;
    if (st.field(s, F_FAMILY) === 4) return this.datagrams.get(this.dgKey(s)) === p;
    const k = this.packets.keySlot[p] as number;
    return st.field(s, F_PROTO) === st.field(k, F_PROTO) && st.str(s, R_SRC) === st.str(k, R_SRC) && st.str(s, R_DST) === st.str(k, R_DST)
      && st.field(s, F_SPORT) === e.dgSport && st.field(s, F_DPORT) === e.dgDport;
  }

  /**
   * Event `s` of a new skb `skb` is a fragment of packet `p`'s own datagram: the skb carries part
   * of the packet from now on. A free (the sender's datagram skb, consumed once its fragments are
   * cut from it) is only a part's end; while `p`'s own skb is gone (freed into a reassembly) the
   * packet goes on in this one.
   */
  private joinFragment(p: number, s: number, skb: string): void {
    const P = this.packets;
    if (this.store.isFree(s)) {
      this.appendPart(p, s);
      return;
    }
    this.registerDatagram(p, s);
    if (P.held[p] !== 0) {
      this.switchTo(p, skb, s);
      return;
    }
    this.alias(p, skb);
    this.appendPart(p, s);
  }

  /** Event `s` is the first fragment of packet `p`'s outer datagram: its later ones join by the outer id. */
  private fragmentOf(p: number, s: number, outer: HopOuter): void {
    const P = this.packets;
    const e = (P.extra[p] ??= newExtra());
    e.count++;
    e.outer ??= outer;
    const key = `${outer.src}|${outer.dst}|${outer.ipId ?? 0}`;
    e.fragKeys.push(key);
    this.fragKeys.set(key, p);
    this.fragSlots.set(s, e.count);
  }

  /**
   * A later fragment's event shows the outer header (it has no other): it becomes a hop of
   * packet `p` with the packet's tuple and that header as its `outer`.
   */
  private asFragment(p: number, s: number): void {
    const st = this.store;
    const n = st.num;
    const r = st.ref;
    const e = this.packets.extra[p];
    const k = (this.packets.keySlot[p] as number);
    const o = s * STORE_NUM;
    const q = s * STORE_REFS;
    st.setOuter(s, {
      family: n[o + F_FAMILY] === 6 ? 6 : 4, proto: n[o + F_PROTO] as number, src: r[q + R_SRC] as string, dst: r[q + R_DST] as string,
      sport: 0, dport: 0, vni: e?.outer?.vni ?? 0, innerRead: true, ipId: n[o + F_IPID] as number, frag: 0,
    });
    const ok = k * STORE_NUM;
    const qk = k * STORE_REFS;
    for (const f of [F_FAMILY, F_PROTO, F_IPID, F_SPORT, F_DPORT, F_ICMPID, F_ICMPTYPE, F_TCPSEQ, F_TCPFLAGS]) n[o + f] = n[ok + f] as number;
    r[q + R_SRC] = r[qk + R_SRC] as string;
    r[q + R_DST] = r[qk + R_DST] as string;
  }

  /** An event of an skb carrying part of packet `p`. False when it is not (a stale alias). */
  private placeAlias(p: number, s: number, skb: string): boolean {
    const st = this.store;
    const P = this.packets;
    if (st.t(s) - st.t(P.last[p] as number) > this.opts.maxGapNs) {
      this.aliases.delete(skb);
      return false;
    }
    const e = P.extra[p];
    if (e && e.dgKeys.length > 0 && !st.isFree(s) && st.outers?.[s] === undefined) {
      // A part of the packet's own fragmented datagram: another fragment, or the datagram whole
      // (reassembled in this skb), in which the packet goes on; as it does in any part once its
      // own skb was freed (the first fragment's, consumed into the reassembly).
      if (st.frag(s) !== 0 && this.datagrams.get(this.dgKey(s)) !== p && this.rewrittenDatagram(s, true) !== p) {
        // Another datagram's fragment in a reused address (a part's free was not seen: the
        // receiver's reassembly frees the parts it kept without a tracepoint): a stale alias.
        this.aliases.delete(skb);
        return false;
      }
      if (st.frag(s) !== 0) {
        this.registerDatagram(p, s);
        if (P.held[p] !== 0) this.switchTo(p, skb, s);
        else this.appendPart(p, s);
        return true;
      }
      if (this.wholeOf(p, s)) {
        this.switchTo(p, skb, s);
        return true;
      }
    }
    const n = this.fragSlots.size > 0 ? this.fragNumberOf(p, skb) : 0;
    if (st.isFree(s)) {
      this.aliases.delete(skb);
      if (n > 0) this.fragSlots.set(s, n);
      this.appendPart(p, s);
      if (P.held[p] === 2 && !this.hasAliases(p) && st.kind(s) !== 'consume') this.finish(p);
      return true;
    }
    const outer = st.outers?.[s];
    if (outer === undefined && this.fragKeys.get(`${st.str(s, R_SRC)}|${st.str(s, R_DST)}|${st.field(s, F_IPID)}`) === p) {
      this.fragSlots.set(s, n);
      this.asFragment(p, s);
      this.appendPart(p, s);
      return true;
    }
    if (outer === undefined && !keyChanged(st, P.keySlot[p] as number, s)) {
      // The reassembled, decapsulated datagram: the packet goes on in this skb.
      this.switchTo(p, skb, s);
      return true;
    }
    if (n > 0) this.fragSlots.set(s, n);
    this.appendPart(p, s);
    return true;
  }

  /** The fragment number of alias `skb` of packet `p`, from its earlier events (0: not a fragment). */
  private fragNumberOf(p: number, skb: string): number {
    const st = this.store;
    const P = this.packets;
    for (let x = P.first[p] as number; x >= 0; x = x === P.last[p] ? -1 : (st.next[x] as number)) {
      if (st.str(x, R_SKB) === skb) {
        const f = this.fragSlots.get(x);
        if (f !== undefined) return f;
      }
    }
    return 0;
  }

  private findOriginal(s: number, skb: string, orig: number): string | null {
    if (orig < 0) return null;
    const P = this.packets;
    const origSkb = P.skb[orig] as string;
    if (origSkb === skb || !this.live.has(origSkb)) return null;
    const st = this.store;
    const origLast = P.last[orig] as number;
    if (st.t(s) - st.t(origLast) > this.opts.cloneWindowNs || st.field(origLast, F_NETNS) !== st.field(s, F_NETNS)) return null;
    return (P.id[orig] ??= packetIdOf(st.t(P.first[orig] as number), origSkb));
  }

  private expire(before: number): void {
    this.expiredAt = before + this.opts.idleNs;
    const st = this.store;
    const last = this.packets.last;
    for (const p of this.live.values()) {
      if (st.t(last[p] as number) < before) this.finish(p);
    }
    if (this.notes && before - this.notesPrunedAt > this.opts.idleNs) {
      // After finishing: every live packet now had a hop since `before`, so notes older than
      // that (and the 10 ms a note may precede its packet) belong to no packet still to come.
      this.notesPrunedAt = before;
      const cutoff = before - this.opts.idleNs;
      for (const [skb, list] of this.notes) {
        const keep = list.filter((n) => n.t >= cutoff);
        if (keep.length === 0) this.notes.delete(skb);
        else if (keep.length !== list.length) this.notes.set(skb, keep);
      }
    }
  }

  private finish(p: number): void {
    const P = this.packets;
    const skb = P.skb[p] as string;
    if (this.live.get(skb) === p) this.live.delete(skb);
    const extra = P.extra[p];
    if (extra) {
      for (const x of extra.skbs) if (this.aliases.get(x) === p) this.aliases.delete(x);
      for (const k of extra.fragKeys) if (this.fragKeys.get(k) === p) this.fragKeys.delete(k);
      for (const k of extra.dgKeys) if (this.datagrams.get(k) === p) this.datagrams.delete(k);
      for (const k of extra.dgKeys) {
        const id = datagramId(k);
        if (this.datagramIds.get(id) === p) this.datagramIds.delete(id);
      }
    }
    // A packet of its own fragments decides its fate from them (ownFragments), not from the hold.
    const wasHeld = P.held[p] === 2 && (extra?.dgKeys.length ?? 0) === 0;
    if (P.held[p] !== 0) this.unhold(p);
    this.bySignature.deleteIf(P.keySlot[p] as number, P.keyHash[p] as number, p);
    // Its keys from before NAT too, or they would name a finished packet.
    const oldSlot = P.oldKeySlot[p] as number;
    if (oldSlot >= 0) {
      this.bySignature.deleteIf(oldSlot, P.oldKeyHash[p] as number, p);
      const more = P.moreOldKeys[p];
      if (more) for (let i = 0; i < more.length; i += 2) this.bySignature.deleteIf(more[i] as number, more[i + 1] as number, p);
    }
    const st = this.store;
    const first = P.first[p] as number;
    const last = P.last[p] as number;
    const count = P.count[p] as number;
    // A lone consume says nothing about a path (an skb freed under a stale follow entry).
    if (count === 1 && st.kind(last) === 'consume') {
      st.freeChain(first, last, count);
      P.free(p);
      this.stats.orphans++;
      return;
    }
    let packet = this.toPacket(p);
    // Freed encapsulated on the underlay, and the skb it went on in never showed: where it ended
    // is not known. (A copy that never showed keeps its consume: most such frees are deliveries.)
    if (wasHeld && packet.fate === 'delivered' && packet.fateBy === 'consume') packet = { ...packet, fate: 'unknown', fateBy: 'none' };
    if (this.fragSlots.size > 0) for (let x = first; x >= 0; x = x === last ? -1 : (st.next[x] as number)) this.fragSlots.delete(x);
    st.freeChain(first, last, count);
    P.free(p);
    if (this.opts.accept && !this.opts.accept(packet)) {
      this.stats.rejected++;
      return;
    }
    this.stats.packets++;
    this.out.push(packet);
  }

  private toPacket(p: number): Packet {
    const P = this.packets;
    const pFirst = P.first[p] as number;
    const pLast = P.last[p] as number;
    const skb = P.skb[p] as string;
    const st = this.store;
    const num = st.num;
    const ref = st.ref;
    const next = st.next;
    const heads = st.heads;
    const outers = st.outers;
    /** Tunnel headers by hop index, when any hop of this packet was inside a tunnel. */
    let hopOuters: Array<HopOuter | undefined> | null = null;
    const nsName = this.opts.nsName;
    const hops: Hop[] = [];
    /** The latest hop that was not a free. */
    let prev = -1;
    const own = P.extra[p]?.dgKeys.length ? this.ownFragments(p) : null;
    /** Of a packet of its own fragments: each hop's skb (a fragment's tunnel marks are its own skb's). */
    const hopSkbs: string[] | null = own !== null ? [] : null;
    /** The free that says how the packet ended (its last event, unless it is a datagram's: ownFragments). */
    const fateSlot = own?.fateSlot ?? pLast;
    /**
     * Of a packet of its own fragments: the latest hop of each fragment (by offset; the datagram
     * whole counts as the first, whose header it has), so a rewrite is read between hops of one
     * fragment, not between a later fragment (no ports) and the first.
     */
    const prevOfFragment = own !== null ? new Map<number, number>() : null;
    for (let s = pFirst; s >= 0; s = s === pLast ? -1 : (next[s] as number)) {
      const o = s * STORE_NUM;
      const q = s * STORE_REFS;
      const kind = ref[q + R_KIND] as Hop['event'];
      const isFree = kind === 'drop' || kind === 'consume';
      // A free before the last hop is a part's or a copy's original's (the packet went on): not a hop.
      if (isFree && s !== fateSlot) continue;
      // A free without a device or socket reports netns 0: it happened where the packet last was.
      const evNetns = smallInt(num[o + F_NETNS] as number);
      const netns = evNetns !== 0 ? evNetns : prev >= 0 ? smallInt(num[prev * STORE_NUM + F_NETNS] as number) : 0;
      const outer = outers?.[s];
      if (outer !== undefined) (hopOuters ??= [])[hops.length] = outer;
      if (hopSkbs !== null) hopSkbs[hops.length] = ref[q + R_SKB] as string;
      // Where the inner header could not be read the hop shows the outer headers: not a NAT.
      // The first hop of a packet NATed before any device (OUTPUT DNAT of `curl 127.0.0.1:PORT`)
      // carries the sending socket's tuple: the rewrite is from that.
      const sent = prev < 0 && !isFree ? st.sents?.[s] : undefined;
      let natPrev = prev;
      if (prevOfFragment !== null && outer === undefined) {
        const offset = st.frag(s) & 0x1fff;
        natPrev = prevOfFragment.get(offset) ?? -1;
        if (!isFree) prevOfFragment.set(offset, s);
      }
      const nat = sent !== undefined ? natFromSent(st, sent, s)
        : natPrev >= 0 && !isFree && (outers === null || (outers[s]?.innerRead !== false && outers[natPrev]?.innerRead !== false)) ? natBetween(st, natPrev, s) : null;
      const head = heads?.[s];
      // Two literals rather than a spread or a shared builder: same keys in the same order, one
      // hidden class each (2a44e1d); this runs once per hop of every packet built.
      hops.push(head ? {
        t: num[o + F_T] as number,
        event: kind,
        netns,
        ns: nsName(netns),
        ifname: ref[q + R_IFNAME] as string,
        ifindex: smallInt(num[o + F_IFINDEX] as number),
        src: ref[q + R_SRC] as string,
        dst: ref[q + R_DST] as string,
        sport: smallInt(num[o + F_SPORT] as number),
        dport: smallInt(num[o + F_DPORT] as number),
        cpu: smallInt(num[o + F_CPU] as number),
        len: smallInt(num[o + F_LEN] as number),
        ipId: smallInt(num[o + F_IPID] as number),
        tcpFlags: smallInt(num[o + F_TCPFLAGS] as number),
        tcpSeq: smallInt(num[o + F_TCPSEQ] as number),
        icmpType: smallInt(num[o + F_ICMPTYPE] as number),
        icmpId: smallInt(num[o + F_ICMPID] as number),
        nat,
        head: bytesToHex(head),
      } : {
        t: num[o + F_T] as number,
        event: kind,
        netns,
        ns: nsName(netns),
        ifname: ref[q + R_IFNAME] as string,
        ifindex: smallInt(num[o + F_IFINDEX] as number),
        src: ref[q + R_SRC] as string,
        dst: ref[q + R_DST] as string,
        sport: smallInt(num[o + F_SPORT] as number),
        dport: smallInt(num[o + F_DPORT] as number),
        cpu: smallInt(num[o + F_CPU] as number),
        len: smallInt(num[o + F_LEN] as number),
        ipId: smallInt(num[o + F_IPID] as number),
        tcpFlags: smallInt(num[o + F_TCPFLAGS] as number),
        tcpSeq: smallInt(num[o + F_TCPSEQ] as number),
        icmpType: smallInt(num[o + F_ICMPTYPE] as number),
        icmpId: smallInt(num[o + F_ICMPID] as number),
        nat,
      });
      if (this.fragSlots.size > 0) {
        const fragment = this.fragSlots.get(s);
        if (fragment !== undefined) hops[hops.length - 1] = { ...(hops[hops.length - 1] as Hop), fragment };
      }
      if (own !== null && innerFrag(st, s) !== 0) {
        hops[hops.length - 1] = { ...(hops[hops.length - 1] as Hop), fragment: fragmentNumber(own, pointOf(st, s), st.frag(s), st.field(s, F_FAMILY)) };
      }
      if (!isFree) prev = s;
    }
    if (hopOuters !== null) {
      if (hopSkbs !== null) markTunnelsPerSkb(hops, hopOuters, hopSkbs);
      else markTunnels(hops, hopOuters);
    }
    const last = fateSlot;
    const lastKind = st.kind(last);
    let fate: Fate = 'unknown';
    let fateBy: Packet['fateBy'] = 'none';
    let drop: DropInfo | null = null;
    let discard: DropInfo | null = null;
    if (lastKind === 'drop') {
      const where = st.field(last, F_NETNS) !== 0 ? last : prev >= 0 ? prev : last;
      const whereNetns = smallInt(st.field(where, F_NETNS));
      const info: DropInfo = {
        reason: this.opts.dropReason(smallInt(st.field(last, F_REASON))),
        netns: whereNetns,
        ns: nsName(whereNetns),
        ifname: st.str(last, R_IFNAME) || (prev >= 0 ? st.str(prev, R_IFNAME) : ''),
      };
      const arrival = prev >= 0 ? { event: st.kind(prev), netns: smallInt(st.field(prev, F_NETNS)), ifname: st.str(prev, R_IFNAME), dst: st.str(prev, R_DST) } : null;
      const read = readFree(info.reason, arrival, st.str(last, R_DST), smallInt(st.field(last, F_NETNS)), this.opts.isLocal);
      if (read === 'drop') {
        fate = 'dropped';
        fateBy = 'drop';
        drop = info;
      } else {
        // Delivered, then discarded by its socket (shared/fate.ts): not a drop.
        fate = 'delivered';
        fateBy = read;
        discard = info;
      }
    } else if (lastKind === 'consume') {
      fate = 'delivered';
      fateBy = 'consume';
    } else if (lastKind === 'recv' && reachedItsStack({ event: lastKind, netns: smallInt(st.field(last, F_NETNS)), ifname: st.str(last, R_IFNAME), dst: st.str(last, R_DST) }, this.opts.isLocal)) {
      fate = 'delivered';
      fateBy = 'local-address';
    }
    // The packet's tuple is its first event's; of a packet of its own fragments whose first event
    // was a later fragment (reordered ahead of the first on the way), the first fragment's: a
    // later fragment has no ports.
    const f = own !== null && own.firstSlot >= 0 ? own.firstSlot : pFirst;
    const fo = f * STORE_NUM;
    const fq = f * STORE_REFS;
    const id = P.id[p] ?? packetIdOf(num[pFirst * STORE_NUM + F_T] as number, skb);
    const family = num[fo + F_FAMILY] === 6 ? 6 : 4;
    const proto = protoName(smallInt(num[fo + F_PROTO] as number));
    const src = ref[fq + R_SRC] as string;
    const dst = ref[fq + R_DST] as string;
    const sport = smallInt(num[fo + F_SPORT] as number);
    const dport = smallInt(num[fo + F_DPORT] as number);
    const cloneOf = P.cloneOf[p] ?? null;
    if (discard) {
      if (this.notes) return { id, proto, family, src, dst, sport, dport, fate, fateBy, drop, discard, hops, cloneOf, notes: this.takeNotes(skb, hops) };
      return { id, proto, family, src, dst, sport, dport, fate, fateBy, drop, discard, hops, cloneOf };
    }
    if (this.notes) {
      return { id, proto, family, src, dst, sport, dport, fate, fateBy, drop, hops, cloneOf, notes: this.takeNotes(skb, hops) };
    }
    return { id, proto, family, src, dst, sport, dport, fate, fateBy, drop, hops, cloneOf };
  }

  /**
   * Of packet `p` made of its own datagram's fragments: their offsets in order, the steps of the
   * cuttings seen and what passed each point (fragmentNumber), the first fragment's first event
   * (its tuple is the packet's: a later fragment reordered ahead of it has no ports), and the
   * free that says how it ended. Not simply the last: a receiver frees the fragments it kept (the
   * reassembled datagram's frag_list) after the socket took the datagram, with NOT_SPECIFIED.
   * The last free of the datagram whole (a socket took it, or a rule dropped it after
   * reassembly; not a consume with hops after it: a node cut the whole anew) or a real drop of
   * any part of it; without one, the last free of the skb the packet ended in; else its last event.
   */
  private ownFragments(p: number): OwnFragments {
    const st = this.store;
    const P = this.packets;
    const last = P.last[p] as number;
    const offsets: number[] = [];
    const steps: number[] = [];
    const points = new Map<string, { offsets: number[]; lens: number[] }>();
    let strong = -1;
    let own = -1;
    let firstSlot = -1;
    for (let s = P.first[p] as number; s >= 0; s = s === last ? -1 : (st.next[s] as number)) {
      const frag = innerFrag(st, s);
      if (frag !== 0 && !offsets.includes(frag & 0x1fff)) offsets.push(frag & 0x1fff);
      if ((frag & 0x2000) !== 0) {
        const step = fragmentStep(st.field(s, F_LEN), st.field(s, F_FAMILY));
        if (step > 0 && !steps.includes(step)) steps.push(step);
      }
      if (frag !== 0 && !st.isFree(s)) {
        const key = pointOf(st, s);
        let pt = points.get(key);
        if (!pt) points.set(key, (pt = { offsets: [], lens: [] }));
        if (!pt.offsets.includes(frag & 0x1fff)) pt.offsets.push(frag & 0x1fff);
        if ((frag & 0x2000) !== 0 && !pt.lens.includes(st.field(s, F_LEN))) pt.lens.push(st.field(s, F_LEN));
      }
      if (!st.isFree(s)) {
        if (firstSlot < 0 && (frag & 0x1fff) === 0) firstSlot = s;
        // The whole consumed and the datagram still going on: a node cut it anew (its new
        // fragments are sent, then the whole consumed on the egress device), no delivery.
        if (strong >= 0 && st.kind(strong) === 'consume') strong = -1;
        continue;
      }
      const reason = st.field(s, F_REASON);
      if (frag === 0 || (st.kind(s) === 'drop' && reason > 1 && this.opts.dropReason(smallInt(reason)) !== 'NOT_SPECIFIED')) strong = s;
      if (st.str(s, R_SKB) === P.skb[p]) own = s;
    }
    offsets.sort((a, b) => a - b);
    for (const pt of points.values()) pt.offsets.sort((a, b) => a - b);
    return { offsets, steps, points, fateSlot: strong >= 0 ? strong : own >= 0 ? own : last, firstSlot };
  }

  /**
   * The notes of the packet with these hops (and remove them): from 10 ms before its first hop
   * (a qdisc wait ends just before it) to its free — or, when no free was seen, 1 ms after its
   * last hop (a local delivery's route lookup follows the receive). A note after the free belongs
   * to the next packet the kernel builds in the same skb.
   */
  private takeNotes(skb: string, hops: readonly Hop[]): PacketNote[] {
    const list = this.notes?.get(skb);
    const first = hops[0];
    const last = hops[hops.length - 1];
    if (!list || !first || !last) return [];
    const end = last.event === 'drop' || last.event === 'consume' ? last.t : last.t + 1_000_000;
    const mine: PacketNote[] = [];
    const rest: HopNote[] = [];
    for (const n of list) {
      if (n.t < first.t - 10_000_000 || n.t > end) {
        rest.push(n);
        continue;
      }
      let after = -1;
      while (after + 1 < hops.length && (hops[after + 1] as Hop).t <= n.t) after++;
      mine.push({ ...n, ns: this.opts.nsName(n.netns), afterHop: after });
    }
    if (rest.length === 0) this.notes?.delete(skb);
    else this.notes?.set(skb, rest);
    return mine.sort((a, b) => a.t - b.t);
  }
}

/** What toPacket needs of a packet of its own datagram's fragments (ownFragments). */
interface OwnFragments {
  /** Every fragment offset its hops showed (8-byte units), in order. */
  readonly offsets: readonly number[];
  /** The step (payload / 8) of each cutting a fragment with more to follow showed. */
  readonly steps: readonly number[];
  /** By point (pointOf): the offsets of the fragments that passed it, in order, and the lengths of those with more to follow. */
  readonly points: ReadonlyMap<string, { readonly offsets: readonly number[]; readonly lens: readonly number[] }>;
  readonly fateSlot: number;
  /** The first event of its first fragment (offset 0), -1 when none was seen. */
  readonly firstSlot: number;
}

/**
 * The step, in 8-byte units, of the cutting a fragment with more to follow belongs to: its
 * payload (every fragment but the last of one cutting has the same). Assumes a plain header
 * (IPv4 without options; IPv6 with only its Fragment header); 0 when that gives no step.
 */
function fragmentStep(len: number, family: number): number {
  const payload = len - (family === 6 ? 48 : 20);
  return payload > 0 && payload % 8 === 0 ? payload / 8 : 0;
}

/**
 * markTunnels on each skb's hops apart: a datagram's fragments cross a tunnel interleaved, each
 * in its own skb (a fragment's transmit on the tunnel device comes between another's underlay
 * hops, and is no decap of it), so each gets its own encap and decap.
 */
function markTunnelsPerSkb(hops: Hop[], outers: ReadonlyArray<HopOuter | undefined>, skbs: readonly string[]): void {
  const bySkb = new Map<string, number[]>();
  for (let i = 0; i < hops.length; i++) {
    const k = skbs[i] as string;
    const list = bySkb.get(k);
    if (list) list.push(i);
    else bySkb.set(k, [i]);
  }
  for (const idx of bySkb.values()) {
    if (!idx.some((i) => outers[i] !== undefined)) continue;
    const sub = idx.map((i) => hops[i] as Hop);
    markTunnels(sub, idx.map((i) => outers[i]));
    idx.forEach((i, j) => { hops[i] = sub[j] as Hop; });
  }
}

/**
 * Event `s`'s own fragment field as a sender's own fragment: the packet's header's, also inside a
 * tunnel (the probe reads the inner header there), unless the outer datagram is itself a
 * fragment (a tunnel's underlay fragments: their field is the outer one's). 0: none.
 */
function innerFrag(st: HopStore, s: number): number {
  const outer = st.outers?.[s];
  return outer === undefined || ((outer.frag ?? 0) & 0x3fff) === 0 ? st.frag(s) : 0;
}

/** Where a hop was: "netns|device|event" (a point fragments pass). */
function pointOf(st: HopStore, s: number): string {
  return `${st.field(s, F_NETNS)}|${st.str(s, R_IFNAME)}|${st.kind(s)}`;
}

/**
 * A fragment hop's number, 1 the first: its place among the fragments as they were cut where it
 * passed. Where every fragment that passed that point is of one cutting (those with more to
 * follow all one size, every offset a multiple of it): offset / step + 1, so a fragment lost
 * before that point leaves its number out, and fragments a node cut anew from the whole (after
 * its reassembly, for a smaller egress MTU) are numbered 1, 2, … as the sender's were. Where
 * several cuttings passed (a router cutting each fragment again, to fit a smaller MTU): its
 * offset's place among theirs. A point that saw no fragment with more to follow (only the last):
 * the step of a cutting seen elsewhere that divides its offset; else its place among all offsets.
 */
function fragmentNumber(own: OwnFragments, point: string, frag: number, family: number): number {
  const offset = frag & 0x1fff;
  if (offset === 0) return 1;
  const pt = own.points.get(point);
  if (pt && pt.lens.length === 1) {
    const k = fragmentStep(pt.lens[0] as number, family);
    if (k > 0 && pt.offsets.every((o) => o % k === 0)) return offset / k + 1;
  }
  if (pt && pt.lens.length > 1) return pt.offsets.indexOf(offset) + 1;
  let step = 0;
  for (const k of own.steps) if (offset % k === 0 && k > step) step = k;
  return step > 0 ? offset / step + 1 : own.offsets.indexOf(offset) + 1;
}

/** A datagram key's "proto|ipId" (PacketExtra.dgKeys: "proto|src|dst|ipId"). */
function datagramId(key: string): string {
  const a = key.indexOf('|');
  return `${key.slice(0, a)}${key.slice(key.lastIndexOf('|'))}`;
}

function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** 36^6: below it, and for each part of a larger time, Number#toString(36) is fast. */
const B36_SPLIT = 2_176_782_336;

/**
 * `t.toString(36)`. For large integers (kernel times are ~10^13 ns) that call is slow (~0.4 µs
 * here, once per packet): split into two parts it is several times faster, same digits.
 */
function base36(t: number): string {
  if (!(t >= B36_SPLIT && t <= Number.MAX_SAFE_INTEGER && Math.floor(t) === t)) return t.toString(36);
  const hi = Math.floor(t / B36_SPLIT);
  const lo = (t - hi * B36_SPLIT).toString(36);
  return `${hi.toString(36)}${'00000'.slice(lo.length - 1)}${lo}`;
}

function packetIdOf(t: number, skb: string): string {
  return `${base36(t)}-${skb}`;
}

export function packetId(first: HopEvent): string {
  return packetIdOf(first.t, first.skb);
}

/**
 * `peerNetns` for the engine from a topology model: the namespace of each veth's peer. Other
 * devices (and veths whose peer the model could not resolve) answer null: anything may follow.
 */
export function vethPeers(topology: Pick<Topology, 'namespaces'>): (netns: number, ifname: string) => number | null {
  const peers = new Map<number, Map<string, number>>();
  for (const ns of topology.namespaces) {
    const byName = new Map<string, number>();
    for (const itf of ns.interfaces) if (itf.kind === 'veth' && itf.peer) byName.set(itf.name, itf.peer.netns);
    if (byName.size > 0) peers.set(ns.netns, byName);
  }
  return (netns, ifname) => peers.get(netns)?.get(ifname) ?? null;
}

/** Reconstructs a finished list of events in one go (recordings, tests). */
export function reconstructAll(events: Iterable<HopEvent>, options: ReconstructOptions = {}): Packet[] {
  const r = new Reconstructor(options);
  const out: Packet[] = [];
  const take = (list: readonly Packet[]): void => {
    // A loop, not push(...list): a long recording's list would overflow the call stack.
    for (let i = 0; i < list.length; i++) out.push(list[i] as Packet);
  };
  for (const ev of events) {
    r.push(ev);
    if (r.liveCount > 4096) take(r.drain());
  }
  take(r.flush());
  return out;
}
