/**
 * The stats document computed in user space from reconstructed packets (recordings, `trace`
 * output, tests), with the kernel program's definitions: a segment is two consecutive hops of
 * one packet; a free without a device happened where the packet last was; transit counts only
 * namespaces a packet entered from another and left to another; interfaces count transmit
 * (xmit) and receive (recv) hops. Values go through the same buckets, so documents from
 * recordings and from the kernel compare like for like (compare.ts).
 *
 * Packets stitched across nodes (a hub's sessions: hops with `node` and `tNode`) are counted per
 * node — places, transit, drops and interfaces carry their `node`, since inodes and names are each
 * node's own — and each segment says whose clock timed it: two hops on one node by that node's
 * own clock (`tNode`, exact); a segment crossing nodes by the stitched `t` (the reference clock,
 * through the hub's estimated offsets), marked `clock: 'estimate'`, a negative one counted as 0.
 */
import type { Packet } from '../packet.js';
import type { HopKind } from '../hop-event.js';
import { bucketIndex, histFromCounts } from './buckets.js';
import { summarize } from './document.js';
import type { DropStats, InterfaceStats, SegmentStats, StatsDocument, StatsPlace, TransitStats } from './types.js';

export interface FromPacketsOptions {
  /** Interval bounds in kernel ns (default: first and last hop). */
  readonly startNs?: number;
  readonly endNs?: number;
  readonly wallClock?: (ns: number) => number;
  readonly sampleRate?: number;
  readonly filter?: string;
}

class Latencies {
  readonly buckets = new Map<number, number>();
  max = 0;
  add(ns: number): void {
    const b = bucketIndex(ns);
    this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
    if (ns > this.max) this.max = ns;
  }
}

interface Where {
  readonly node: string | undefined;
  /** The hop's time on its node's own clock (`t` on one host). */
  readonly tNode: number;
  readonly netns: number;
  readonly ns: string;
  readonly ifindex: number;
  readonly ifname: string;
  readonly event: HopKind;
  readonly t: number;
}

/** The same document, packet by packet: a recording streams through it without being held. */
export class PacketStats {
  private readonly segs = new Map<string, { from: StatsPlace; to: StatsPlace; lat: Latencies }>();
  private readonly segClock = new Map<string, 'node' | 'estimate'>();
  private readonly transit = new Map<string, { ns: string; netns: number; node: string | undefined; lat: Latencies }>();
  private readonly drops = new Map<string, DropStats>();
  private readonly ifs = new Map<string, { node: string | undefined; ns: string; netns: number; ifname: string; ifindex: number; rx: number; tx: number; rxB: number; txB: number }>();
  private first = Infinity;
  private last = -Infinity;

  add(p: Packet): void {
    const { segs, transit, drops, ifs } = this;
    let prev: Where | null = null;
    /** The last hop that was not a free: a packet leaves a node by it (a free after it, e.g. the driver's consume, stays on that node). */
    let moved: Where | null = null;
    let enter = 0;
    let entered = false;
    for (const hop of p.hops) {
      // Stitched hops (a hub's packets) carry their node and their node's own time.
      const h = hop as typeof hop & { readonly node?: string; readonly tNode?: number };
      const node = typeof h.node === 'string' ? h.node : undefined;
      const tNode = typeof h.tNode === 'number' ? h.tNode : h.t;
      const at = node !== undefined ? `${node}|` : '';
      this.first = Math.min(this.first, h.t);
      this.last = Math.max(this.last, h.t);
      const terminal = h.event === 'drop' || h.event === 'consume';
      const here: Where = terminal && h.ifindex === 0 && prev && prev.node === node
        ? { ...prev, event: h.event, t: h.t, tNode }
        : { node, tNode, netns: h.netns, ns: h.ns ?? `netns:${h.netns}`, ifindex: h.ifindex, ifname: h.ifname, event: h.event, t: h.t };
      const place = (w: Where): StatsPlace => ({ ns: w.ns, ifname: w.ifname, event: w.event, netns: w.netns, ifindex: w.ifindex, ...(w.node !== undefined ? { node: w.node } : {}) });
      if (h.event === 'xmit' || h.event === 'recv') {
        const k = `${at}${here.netns}|${here.ifindex}`;
        const c = ifs.get(k) ?? { node, ns: here.ns, netns: here.netns, ifname: here.ifname, ifindex: here.ifindex, rx: 0, tx: 0, rxB: 0, txB: 0 };
        if (h.event === 'xmit') { c.tx++; c.txB += h.len; } else { c.rx++; c.rxB += h.len; }
        ifs.set(k, c);
      }
      // Across nodes the segment runs from the hop the packet left its node by to the one it entered the next by.
      if (prev && prev.node !== node && moved) prev = moved;
      if (prev) {
        const k = `${prev.node ?? ''}|${prev.netns}.${prev.ifindex}.${prev.event}>${node ?? ''}|${here.netns}.${here.ifindex}.${here.event}`;
        const s = segs.get(k) ?? { from: place(prev), to: place(here), lat: new Latencies() };
        // On one node its own clock times the segment; across nodes only the stitched (estimated) clock can.
        const crossing = prev.node !== node;
        s.lat.add(crossing ? Math.max(0, here.t - prev.t) : here.tNode - prev.tNode);
        segs.set(k, s);
        if (node !== undefined) this.segClock.set(k, crossing ? 'estimate' : 'node');
        if (prev.netns !== here.netns || crossing) {
          if (entered) {
            const tk = `${prev.node ?? ''}|${prev.netns}`;
            const tr = transit.get(tk) ?? { ns: prev.ns, netns: prev.netns, node: prev.node, lat: new Latencies() };
            tr.lat.add(prev.tNode - enter);
            transit.set(tk, tr);
          }
          entered = true;
          enter = here.tNode;
        }
      } else {
        enter = here.tNode;
      }
      // A socket's discard after delivery (Packet.discard, shared/fate.ts) is no drop. The kernel
      // tier (probes/stats) counts every kfree_skb: it cannot tell delivery.
      if (h.event === 'drop' && !p.discard) {
        const reason = p.drop?.reason ?? 'reason-0';
        const k = `${at}${here.netns}|${here.ifindex}|${reason}`;
        const d = drops.get(k);
        drops.set(k, d ? { ...d, count: d.count + 1 } : { ...(node !== undefined ? { node } : {}), ns: here.ns, netns: here.netns, ifname: here.ifname, ifindex: here.ifindex, reason, count: 1 });
      }
      prev = here;
      if (!terminal) moved = here;
    }
  }

  document(opts: FromPacketsOptions = {}): StatsDocument {
    const { segs, transit, drops, ifs, first, last } = this;
    const startNs = opts.startNs ?? (Number.isFinite(first) ? first : 0);
    const endNs = opts.endNs ?? (Number.isFinite(last) ? last : startNs);
    const seconds = Math.max(0, (endNs - startNs) / 1e9);
    const wall = opts.wallClock ?? ((ns: number) => ns / 1e6);
    const segments: SegmentStats[] = [...segs].map(([k, s]) => {
      const clock = this.segClock.get(k);
      return { from: s.from, to: s.to, ...summarize(histFromCounts(s.lat.buckets), s.lat.max), ...(clock ? { clock } : {}) };
    });
    const transits: TransitStats[] = [...transit.values()].map((t) => ({ ns: t.ns, netns: t.netns, ...(t.node !== undefined ? { node: t.node } : {}), ...summarize(histFromCounts(t.lat.buckets), t.lat.max) }));
    const interfaces: InterfaceStats[] = [...ifs.values()].map((c) => ({
      ...(c.node !== undefined ? { node: c.node } : {}),
      ns: c.ns, netns: c.netns, ifname: c.ifname, ifindex: c.ifindex,
      pps: seconds > 0 ? Math.round(((c.rx + c.tx) / seconds) * 10) / 10 : 0,
      bps: seconds > 0 ? Math.round(((c.rxB + c.txB) * 8) / seconds) : 0,
      rx_packets: c.rx, tx_packets: c.tx, rx_bytes: c.rxB, tx_bytes: c.txB,
    }));
    return {
      type: 'stats',
      start_ns: startNs,
      end_ns: endNs,
      start: new Date(wall(startNs)).toISOString(),
      end: new Date(wall(endNs)).toISOString(),
      duration_s: Math.round(seconds * 1000) / 1000,
      sample_rate: opts.sampleRate ?? 1,
      filter: opts.filter ?? '',
      final: true,
      segments: segments.sort((a, b) => b.count - a.count),
      transit: transits.sort((a, b) => b.count - a.count),
      drops: [...drops.values()].sort((a, b) => b.count - a.count),
      interfaces: interfaces.sort((a, b) => b.pps - a.pps),
    };
  }
}

export function statsFromPackets(packets: Iterable<Packet>, opts: FromPacketsOptions = {}): StatsDocument {
  const acc = new PacketStats();
  for (const p of packets) acc.add(p);
  return acc.document(opts);
}
