/**
 * The reconstruction engine as it was before the struct-of-arrays rewrite (commit cca7c83),
 * kept verbatim as an oracle: test/shared/reconstruct-oracle.test.ts checks that shared/reconstruct.ts
 * gives the same packets, in the same order, on random event streams. Do not optimise this file.
 */
/**
 * The reconstruction engine: hop events in, packets out. Pure and isomorphic — the CLI, the
 * service and the dashboard's worker all run this same code over the same events, so they agree
 * on packet ids, hops and fates.
 *
 * Rules (see issue 2):
 * - Events are released in kernel-time order: they wait in a reorder buffer until the newest
 *   time seen is `reorderWindowNs` past them, because bpftrace drains per-CPU buffers in turn.
 * - A packet is one skb's life: followed by skb address from its first hop until it is dropped
 *   or consumed. The kernel reuses addresses at once, and some frees have no tracepoint (TCP's
 *   __kfree_skb), so a hop only continues a packet when it could be the same packet: same family
 *   and protocol, same IPv4 id (NAT never changes it), a tuple that at most NAT rewrote (and not
 *   the reverse direction), and no gap over `maxGapNs`. Anything else starts a new packet.
 * - A new skb whose headers equal a live packet's, first seen in the namespace that packet is in,
 *   is a clone of it (bridge flooding, multicast): recorded as `cloneOf`.
 * - Fate: dropped (kfree_skb with a reason), delivered (consume_skb, or — when the caller can tell
 *   local addresses — last seen received in the namespace that owns the destination), else unknown.
 */
import type { HopEvent, HopNote } from '../../../shared/hop-event.js';
import { protoName } from '../../../shared/hop-event.js';
import type { Packet, Hop, Fate, DropInfo, NatRewrite, Tuple, PacketNote } from '../../../shared/packet.js';
import { readFree, reachedItsStack } from '../../../shared/fate.js';

export interface ReconstructOptions {
  /** How long events wait for earlier ones from other CPUs. */
  readonly reorderWindowNs?: number;
  /** A packet with no new hop for this long is finished (fate decided from what was seen). */
  readonly idleNs?: number;
  /** Largest gap between two hops of one packet. */
  readonly maxGapNs?: number;
  /** How close in time a clone's first hop must be to its original's last hop. */
  readonly cloneWindowNs?: number;
  /** Namespace inode → name (null when unknown). */
  readonly nsName?: (netns: number) => string | null;
  /** enum skb_drop_reason value → kernel name without SKB_DROP_REASON_. */
  readonly dropReason?: (code: number) => string;
  /** Whether `addr` is a local address of namespace `netns`: lets a received packet count as delivered. */
  readonly isLocal?: (netns: number, addr: string) => boolean;
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
  splits: number;
}

interface LivePacket {
  readonly skb: string;
  readonly events: HopEvent[];
  cloneOf: string | null;
  last: HopEvent;
  /** cloneKey(last), kept up to date only when the headers change (building it is not free). */
  key: string;
  /** Keys this packet had before NAT changed its headers: forgotten with it when it finishes. */
  oldKeys: string[] | null;
}

/** One CPU's waiting events, in time order (a CPU's events arrive in order, but nothing relies on it). */
interface CpuQueue {
  events: HopEvent[];
  /** Arrival order, to break ties between CPUs the way a stable sort would. */
  seqs: number[];
  head: number;
}

/**
 * The reorder buffer: events wait here until every CPU's earlier events have arrived. bpftrace
 * drains each CPU's buffer in order, so each CPU's events come as a sorted run and releasing is
 * a merge of the runs' heads: no heap, no per-event allocation. An event older than its CPU's
 * newest (tests, or a late arrival) is inserted in place. Ties are broken by arrival order.
 */
class ReorderBuffer {
  private readonly byCpu = new Map<number, CpuQueue>();
  private readonly queues: CpuQueue[] = [];
  size = 0;

  push(ev: HopEvent, seq: number): void {
    let q = this.byCpu.get(ev.cpu);
    if (!q) {
      q = { events: [], seqs: [], head: 0 };
      this.byCpu.set(ev.cpu, q);
      this.queues.push(q);
    }
    const n = q.events.length;
    if (n === q.head || (q.events[n - 1] as HopEvent).t <= ev.t) {
      q.events.push(ev);
      q.seqs.push(seq);
    } else {
      // First waiting event later than ev: ev goes before it (after any of equal time).
      let lo = q.head;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((q.events[mid] as HopEvent).t <= ev.t) lo = mid + 1;
        else hi = mid;
      }
      q.events.splice(lo, 0, ev);
      q.seqs.splice(lo, 0, seq);
    }
    this.size++;
  }

  /** Removes and returns the earliest waiting event at or before `upTo`. */
  pop(upTo: number): HopEvent | undefined {
    let best: CpuQueue | undefined;
    let bestT = upTo;
    let bestSeq = Infinity;
    for (const q of this.queues) {
      if (q.head === q.events.length) continue;
      const ev = q.events[q.head] as HopEvent;
      if (ev.t < bestT || (ev.t === bestT && (q.seqs[q.head] as number) < bestSeq)) {
        best = q;
        bestT = ev.t;
        bestSeq = q.seqs[q.head] as number;
      }
    }
    if (!best) return undefined;
    const ev = best.events[best.head++] as HopEvent;
    this.size--;
    if (best.head === best.events.length) {
      best.events = [];
      best.seqs = [];
      best.head = 0;
    } else if (best.head >= 4096 && best.head * 2 >= best.events.length) {
      best.events = best.events.slice(best.head);
      best.seqs = best.seqs.slice(best.head);
      best.head = 0;
    }
    return ev;
  }
}

const DEFAULTS = {
  reorderWindowNs: 50_000_000,
  idleNs: 1_000_000_000,
  maxGapNs: 1_000_000_000,
  cloneWindowNs: 1_000_000,
};

export function defaultDropReason(code: number): string {
  return `reason-${code}`;
}

/** Key of a packet's headers that NAT does not touch plus its tuple: equal keys across skbs mean a clone. */
function cloneKey(ev: HopEvent): string {
  return `${ev.family}|${ev.proto}|${ev.ipId}|${ev.len}|${ev.tcpSeq}|${ev.icmpId}|${ev.src}|${ev.sport}|${ev.dst}|${ev.dport}`;
}

/** Whether two events have different clone keys, without building them. */
function keyChanged(a: HopEvent, b: HopEvent): boolean {
  return a.ipId !== b.ipId || a.len !== b.len || a.sport !== b.sport || a.dport !== b.dport || a.src !== b.src || a.dst !== b.dst
    || a.tcpSeq !== b.tcpSeq || a.icmpId !== b.icmpId || a.proto !== b.proto || a.family !== b.family;
}

/**
 * Could `ev` be the next hop of the packet whose latest hop is `prev`? (Issue 13 added: TCP's
 * sequence must not change, and a packet received in one namespace does not move to another by
 * a transmit there, nor at all once received by the stack it was addressed to.)
 */
export function continuesPacket(prev: HopEvent, ev: HopEvent, maxGapNs: number, isLocal?: (netns: number, addr: string) => boolean, peerNetns?: (netns: number, ifname: string) => number | null): boolean {
  if (prev.kind === 'drop' || prev.kind === 'consume') return false;
  if (ev.t - prev.t > maxGapNs) return false;
  if (ev.family !== prev.family || ev.proto !== prev.proto) return false;
  if (ev.family === 4 && ev.ipId !== prev.ipId) return false;
  if (ev.proto === 6 && ev.tcpSeq !== prev.tcpSeq) return false;
  if (ev.family === 6) {
    // IPv6 has no id: fall back on what NAT leaves alone.
    if (ev.icmpId !== prev.icmpId) return false;
    if (ev.proto !== 6 && ev.len !== prev.len && ev.kind !== 'drop' && ev.kind !== 'consume') return false;
  }
  if (ev.netns !== 0 && ev.netns !== prev.netns && prev.kind === 'xmit' && (ev.kind === 'rx' || ev.kind === 'recv') && peerNetns) {
    const peer = peerNetns(prev.netns, prev.ifname);
    if (peer !== null && peer !== ev.netns) return false;
  }
  if (ev.netns !== 0 && ev.netns !== prev.netns && (prev.kind === 'recv' || prev.kind === 'rx')) {
    if (ev.kind === 'xmit') return false;
    const delivered = prev.kind === 'recv' && (prev.ifname === 'lo' || prev.dst.startsWith('127.') || prev.dst === '::1' || (isLocal?.(prev.netns, prev.dst) ?? false));
    if (delivered) return false;
  }
  const srcSame = ev.src === prev.src && ev.sport === prev.sport;
  const dstSame = ev.dst === prev.dst && ev.dport === prev.dport;
  if (srcSame || dstSame) return true;
  // Both ends rewritten: only DNAT+SNAT inside one namespace does that, never a reply.
  const reversed = ev.src === prev.dst && ev.dst === prev.src;
  return !reversed && ev.netns === prev.netns;
}

function tupleOf(ev: HopEvent): Tuple {
  return { src: ev.src, dst: ev.dst, sport: ev.sport, dport: ev.dport };
}

function natBetween(prev: HopEvent | undefined, ev: HopEvent): NatRewrite | null {
  if (!prev || ev.kind === 'drop' || ev.kind === 'consume') return null;
  const srcChanged = ev.src !== prev.src || ev.sport !== prev.sport;
  const dstChanged = ev.dst !== prev.dst || ev.dport !== prev.dport;
  if (!srcChanged && !dstChanged) return null;
  return { kind: srcChanged && dstChanged ? 'both' : srcChanged ? 'snat' : 'dnat', from: tupleOf(prev), to: tupleOf(ev) };
}

export class Reconstructor {
  private readonly opts: Required<Omit<ReconstructOptions, 'isLocal' | 'accept' | 'peerNetns'>> & Pick<ReconstructOptions, 'isLocal' | 'accept' | 'peerNetns'>;
  private readonly queue = new ReorderBuffer();
  private readonly live = new Map<string, LivePacket>();
  /** Latest live packet per clone key, for spotting clones. */
  private readonly bySignature = new Map<string, LivePacket>();
  private seq = 0;
  private newest = 0;
  /** Time up to which events have been released in order. */
  private released = 0;
  private expiredAt = 0;
  private out: Packet[] = [];
  readonly stats: ReconstructStats = { events: 0, packets: 0, late: 0, rejected: 0, orphans: 0, splits: 0 };
  /** Notes (probes/notes, probes/deep) waiting for their packet, by skb. Null until the first note. */
  private notes: Map<string, HopNote[]> | null = null;
  private notesPrunedAt = 0;

  constructor(options: ReconstructOptions = {}) {
    this.opts = {
      reorderWindowNs: options.reorderWindowNs ?? DEFAULTS.reorderWindowNs,
      idleNs: options.idleNs ?? DEFAULTS.idleNs,
      maxGapNs: options.maxGapNs ?? DEFAULTS.maxGapNs,
      cloneWindowNs: options.cloneWindowNs ?? DEFAULTS.cloneWindowNs,
      nsName: options.nsName ?? (() => null),
      dropReason: options.dropReason ?? defaultDropReason,
      isLocal: options.isLocal,
      peerNetns: options.peerNetns,
      accept: options.accept,
    };
  }

  /** Adds one event. Call `drain()` to collect packets that are complete. */
  push(ev: HopEvent): void {
    this.stats.events++;
    if (ev.t < this.released) this.stats.late++;
    if (ev.t > this.newest) this.newest = ev.t;
    this.queue.push(ev, this.seq++);
    this.release(this.newest - this.opts.reorderWindowNs);
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
    this.release(this.newest - this.opts.reorderWindowNs);
    this.expire(this.released - this.opts.idleNs);
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
    const rest = [...this.live.values()].sort((a, b) => (a.events[0]?.t ?? 0) - (b.events[0]?.t ?? 0));
    for (const p of rest) this.finish(p);
    return this.drain();
  }

  /** Live packets (not finished yet), for progressive displays. */
  get liveCount(): number {
    return this.live.size;
  }

  private release(upTo: number): void {
    for (let ev = this.queue.pop(upTo); ev; ev = this.queue.pop(upTo)) this.place(ev);
    if (upTo > this.released) {
      this.released = upTo;
      // Finish idle packets now and then, not on every event.
      if (upTo - this.expiredAt > this.opts.idleNs / 4) this.expire(upTo - this.opts.idleNs);
    }
  }

  private place(ev: HopEvent): void {
    let p = this.live.get(ev.skb);
    if (p && !continuesPacket(p.last, ev, this.opts.maxGapNs, this.opts.isLocal, this.opts.peerNetns)) {
      this.stats.splits++;
      this.finish(p);
      p = undefined;
    }
    if (!p) {
      const key = cloneKey(ev);
      p = { skb: ev.skb, events: [ev], cloneOf: this.findOriginal(ev, key), last: ev, key, oldKeys: null };
      this.live.set(ev.skb, p);
    } else {
      p.events.push(ev);
      if (keyChanged(p.last, ev)) {
        (p.oldKeys ??= []).push(p.key);
        p.key = cloneKey(ev);
      }
      p.last = ev;
    }
    if (ev.kind === 'drop' || ev.kind === 'consume') {
      this.finish(p);
    } else {
      this.bySignature.set(p.key, p);
    }
  }

  private findOriginal(ev: HopEvent, key: string): string | null {
    const orig = this.bySignature.get(key);
    if (!orig || orig.skb === ev.skb || !this.live.has(orig.skb)) return null;
    if (ev.t - orig.last.t > this.opts.cloneWindowNs || orig.last.netns !== ev.netns) return null;
    return packetId(orig.events[0] as HopEvent);
  }

  private expire(before: number): void {
    this.expiredAt = before + this.opts.idleNs;
    for (const p of this.live.values()) {
      if (p.last.t < before) this.finish(p);
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

  private finish(p: LivePacket): void {
    if (this.live.get(p.skb) === p) this.live.delete(p.skb);
    if (this.bySignature.get(p.key) === p) this.bySignature.delete(p.key);
    // Its keys from before NAT too, or they would keep the finished packet (and its events) alive.
    if (p.oldKeys) for (const k of p.oldKeys) if (this.bySignature.get(k) === p) this.bySignature.delete(k);
    // A lone consume says nothing about a path (an skb freed under a stale follow entry).
    if (p.events.length === 1 && p.last.kind === 'consume') {
      this.stats.orphans++;
      return;
    }
    const packet = this.toPacket(p);
    if (this.opts.accept && !this.opts.accept(packet)) {
      this.stats.rejected++;
      return;
    }
    this.stats.packets++;
    this.out.push(packet);
  }

  private toPacket(p: LivePacket): Packet {
    const first = p.events[0] as HopEvent;
    const last = p.last;
    const hops: Hop[] = [];
    let prev: HopEvent | undefined;
    for (const ev of p.events) {
      // A free without a device or socket reports netns 0: it happened where the packet last was.
      const netns = ev.netns !== 0 ? ev.netns : (prev?.netns ?? 0);
      hops.push({
        t: ev.t,
        event: ev.kind,
        netns,
        ns: this.opts.nsName(netns),
        ifname: ev.ifname,
        ifindex: ev.ifindex,
        src: ev.src,
        dst: ev.dst,
        sport: ev.sport,
        dport: ev.dport,
        cpu: ev.cpu,
        len: ev.len,
        ipId: ev.ipId,
        tcpFlags: ev.tcpFlags,
        tcpSeq: ev.tcpSeq,
        icmpType: ev.icmpType,
        icmpId: ev.icmpId,
        nat: natBetween(prev, ev),
        ...(ev.head ? { head: bytesToHex(ev.head) } : {}),
      });
      if (ev.kind !== 'drop' && ev.kind !== 'consume') prev = ev;
    }
    let fate: Fate = 'unknown';
    let fateBy: Packet['fateBy'] = 'none';
    let drop: DropInfo | null = null;
    let discard: DropInfo | null = null;
    if (last.kind === 'drop') {
      const where = last.netns !== 0 ? last : (prev ?? last);
      const info: DropInfo = {
        reason: this.opts.dropReason(last.reason),
        netns: where.netns,
        ns: this.opts.nsName(where.netns),
        ifname: last.ifname || prev?.ifname || '',
      };
      const read = readFree(info.reason, prev ? { event: prev.kind, netns: prev.netns, ifname: prev.ifname, dst: prev.dst } : null, last.dst, last.netns, this.opts.isLocal);
      if (read === 'drop') {
        fate = 'dropped';
        fateBy = 'drop';
        drop = info;
      } else {
        fate = 'delivered';
        fateBy = read;
        discard = info;
      }
    } else if (last.kind === 'consume') {
      fate = 'delivered';
      fateBy = 'consume';
    } else if (last.kind === 'recv' && reachedItsStack({ event: last.kind, netns: last.netns, ifname: last.ifname, dst: last.dst }, this.opts.isLocal)) {
      fate = 'delivered';
      fateBy = 'local-address';
    }
    return {
      id: packetId(first),
      proto: protoName(first.proto),
      family: first.family === 6 ? 6 : 4,
      src: first.src,
      dst: first.dst,
      sport: first.sport,
      dport: first.dport,
      fate,
      fateBy,
      drop,
      ...(discard ? { discard } : {}),
      hops,
      cloneOf: p.cloneOf,
      ...(this.notes ? { notes: this.takeNotes(p.skb, hops) } : {}),
    };
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

function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function packetId(first: HopEvent): string {
  return `${first.t.toString(36)}-${first.skb}`;
}

/** Reconstructs a finished list of events in one go (recordings, tests). */
export function reconstructAll(events: Iterable<HopEvent>, options: ReconstructOptions = {}): Packet[] {
  const r = new Reconstructor(options);
  const out: Packet[] = [];
  for (const ev of events) {
    r.push(ev);
    if (r.liveCount > 4096) out.push(...r.drain());
  }
  out.push(...r.flush());
  return out;
}
