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
import type { HopEvent } from './hop-event.js';
import { protoName } from './hop-event.js';
import type { Packet, Hop, Fate, DropInfo, NatRewrite, Tuple } from './packet.js';
import { MinHeap } from './min-heap.js';

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
}

interface LivePacket {
  readonly skb: string;
  readonly events: HopEvent[];
  cloneOf: string | null;
  last: HopEvent;
}

interface Queued {
  readonly ev: HopEvent;
  readonly seq: number;
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

/** Could `ev` be the next hop of the packet whose latest hop is `prev`? */
export function continuesPacket(prev: HopEvent, ev: HopEvent, maxGapNs: number): boolean {
  if (prev.kind === 'drop' || prev.kind === 'consume') return false;
  if (ev.t - prev.t > maxGapNs) return false;
  if (ev.family !== prev.family || ev.proto !== prev.proto) return false;
  if (ev.family === 4 && ev.ipId !== prev.ipId) return false;
  if (ev.family === 6) {
    // IPv6 has no id: fall back on what NAT leaves alone.
    if (ev.tcpSeq !== prev.tcpSeq || ev.icmpId !== prev.icmpId) return false;
    if (ev.proto !== 6 && ev.len !== prev.len && ev.kind !== 'drop' && ev.kind !== 'consume') return false;
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
  private readonly opts: Required<Omit<ReconstructOptions, 'isLocal' | 'accept'>> & Pick<ReconstructOptions, 'isLocal' | 'accept'>;
  private readonly queue = new MinHeap<Queued>((a, b) => a.ev.t < b.ev.t || (a.ev.t === b.ev.t && a.seq < b.seq));
  private readonly live = new Map<string, LivePacket>();
  /** Latest live packet per clone key, for spotting clones. */
  private readonly bySignature = new Map<string, LivePacket>();
  private seq = 0;
  private newest = 0;
  /** Time up to which events have been released in order. */
  private released = 0;
  private expiredAt = 0;
  private out: Packet[] = [];
  readonly stats: ReconstructStats = { events: 0, packets: 0, late: 0, rejected: 0 };

  constructor(options: ReconstructOptions = {}) {
    this.opts = {
      reorderWindowNs: options.reorderWindowNs ?? DEFAULTS.reorderWindowNs,
      idleNs: options.idleNs ?? DEFAULTS.idleNs,
      maxGapNs: options.maxGapNs ?? DEFAULTS.maxGapNs,
      cloneWindowNs: options.cloneWindowNs ?? DEFAULTS.cloneWindowNs,
      nsName: options.nsName ?? (() => null),
      dropReason: options.dropReason ?? defaultDropReason,
      isLocal: options.isLocal,
      accept: options.accept,
    };
  }

  /** Adds one event. Call `drain()` to collect packets that are complete. */
  push(ev: HopEvent): void {
    this.stats.events++;
    if (ev.t < this.released) this.stats.late++;
    if (ev.t > this.newest) this.newest = ev.t;
    this.queue.push({ ev, seq: this.seq++ });
    if (this.queue.size > 0) this.release(this.newest - this.opts.reorderWindowNs);
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
    for (let top = this.queue.peek(); top && top.ev.t <= upTo; top = this.queue.peek()) {
      this.queue.pop();
      this.place(top.ev);
    }
    if (upTo > this.released) {
      this.released = upTo;
      // Finish idle packets now and then, not on every event.
      if (upTo - this.expiredAt > this.opts.idleNs / 4) this.expire(upTo - this.opts.idleNs);
    }
  }

  private place(ev: HopEvent): void {
    let p = this.live.get(ev.skb);
    if (p && !continuesPacket(p.last, ev, this.opts.maxGapNs)) {
      this.finish(p);
      p = undefined;
    }
    if (!p) {
      p = { skb: ev.skb, events: [ev], cloneOf: this.findOriginal(ev), last: ev };
      this.live.set(ev.skb, p);
    } else {
      p.events.push(ev);
      p.last = ev;
    }
    if (ev.kind === 'drop' || ev.kind === 'consume') {
      this.finish(p);
    } else {
      this.bySignature.set(cloneKey(ev), p);
    }
  }

  private findOriginal(ev: HopEvent): string | null {
    const orig = this.bySignature.get(cloneKey(ev));
    if (!orig || orig.skb === ev.skb || !this.live.has(orig.skb)) return null;
    if (ev.t - orig.last.t > this.opts.cloneWindowNs || orig.last.netns !== ev.netns) return null;
    return packetId(orig.events[0] as HopEvent);
  }

  private expire(before: number): void {
    this.expiredAt = before + this.opts.idleNs;
    for (const p of this.live.values()) {
      if (p.last.t < before) this.finish(p);
    }
  }

  private finish(p: LivePacket): void {
    if (this.live.get(p.skb) === p) this.live.delete(p.skb);
    const key = cloneKey(p.last);
    if (this.bySignature.get(key) === p) this.bySignature.delete(key);
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
      });
      if (ev.kind !== 'drop' && ev.kind !== 'consume') prev = ev;
    }
    let fate: Fate = 'unknown';
    let fateBy: Packet['fateBy'] = 'none';
    let drop: DropInfo | null = null;
    if (last.kind === 'drop') {
      fate = 'dropped';
      fateBy = 'drop';
      const where = last.netns !== 0 ? last : (prev ?? last);
      drop = {
        reason: this.opts.dropReason(last.reason),
        netns: where.netns,
        ns: this.opts.nsName(where.netns),
        ifname: last.ifname || prev?.ifname || '',
      };
    } else if (last.kind === 'consume') {
      fate = 'delivered';
      fateBy = 'consume';
    } else if (last.kind === 'recv' && this.opts.isLocal?.(last.netns, last.dst)) {
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
      hops,
      cloneOf: p.cloneOf,
    };
  }
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
