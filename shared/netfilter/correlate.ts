/**
 * Matches netfilter trace events (from `nft monitor trace`, one stream per namespace) to the
 * packets the hop probes reconstructed, and attaches them as `Packet.netfilter`.
 *
 * nft prints no timestamps and its trace ids change from hook to hook, so an event belongs to a
 * packet when, in the same namespace, its headers are the packet's: same family and protocol,
 * same IPv4 id (NAT never changes it; IPv6 has none, so the payload length and ICMPv6 echo id
 * stand in), the source or the destination of one of the packet's hops there (at most NAT rewrote the
 * other side), and a receipt time inside the packet's stay in that namespace (receipt is after
 * the fact: up to `afterNs` later is accepted). Each event goes to one packet only.
 */
import type { Packet, Hop, Tuple } from '../packet.js';
import { protoNumber } from '../hop-event.js';
import type { NetfilterEvent, NetfilterVerdict } from './types.js';

export interface CorrelateOptions {
  /** How long before a packet's first hop in a namespace an event may be stamped (clock skew). */
  readonly beforeNs?: number;
  /** How long after a packet's last hop in a namespace its events may still arrive. */
  readonly afterNs?: number;
  /** Events kept at most (oldest dropped first). */
  readonly maxEvents?: number;
  /** Connections whose NAT rule is remembered, for naming it on their later packets. */
  readonly maxNatFlows?: number;
}

interface Stored {
  readonly ev: NetfilterEvent;
  readonly seq: number;
  used: boolean;
}

const LEAVING = new Set<Hop['event']>(['xmit', 'drop', 'consume']);

/** Index of the hop a step in `netns` happened after: the last hop before the packet left (or was freed in) that namespace. */
export function hopBefore(hops: readonly Hop[], netns: number): number {
  let seenIn = false;
  let last = -1;
  for (let i = 0; i < hops.length; i++) {
    const h = hops[i] as Hop;
    if (h.netns !== netns) {
      if (seenIn) break;
      continue;
    }
    if (LEAVING.has(h.event)) return i - 1;
    seenIn = true;
    last = i;
  }
  return last;
}

function headersMatch(ev: NetfilterEvent, p: Packet, hops: readonly Hop[]): boolean {
  const e = ev.packet;
  if (e.family !== p.family || e.proto !== protoNumber(p.proto)) return false;
  for (const h of hops) {
    if (e.family === 4 && e.ipId !== h.ipId) continue;
    if (e.family === 6) {
      // nft prints no TCP sequence; the IPv6 payload length (which NAT keeps) stands in for an id.
      if (e.len !== 0 && e.len !== h.len) continue;
      if (e.proto === 58 && e.icmpId !== 0 && e.icmpId !== h.icmpId) continue;
    }
    const srcSame = e.src === h.src && e.sport === h.sport;
    const dstSame = e.dst === h.dst && e.dport === h.dport;
    if (srcSame || dstSame) return true;
  }
  return false;
}

function tupleKey(netns: number, proto: string, t: Tuple): string {
  return `${netns}|${proto}|${t.src}|${t.sport}|${t.dst}|${t.dport}`;
}

function reversed(t: Tuple): Tuple {
  return { src: t.dst, sport: t.dport, dst: t.src, dport: t.sport };
}

function keyOf(netns: number, family: number, proto: number, ipId: number): string {
  return `${netns}|${family}|${proto}|${family === 4 ? ipId : 0}`;
}

export class NetfilterCorrelator {
  private readonly beforeNs: number;
  private readonly afterNs: number;
  private readonly maxEvents: number;
  private readonly byKey = new Map<string, Stored[]>();
  private readonly order: Stored[] = [];
  private head = 0;
  private seq = 0;
  /** NAT rule per connection tuple (as seen before the rewrite, both directions), most recent last. */
  private readonly natRules = new Map<string, NetfilterVerdict>();
  private readonly maxNatFlows: number;
  readonly stats = { events: 0, attached: 0, expired: 0 };

  constructor(opts: CorrelateOptions = {}) {
    this.beforeNs = opts.beforeNs ?? 5_000_000;
    this.afterNs = opts.afterNs ?? 2_000_000_000;
    this.maxEvents = opts.maxEvents ?? 100_000;
    this.maxNatFlows = opts.maxNatFlows ?? 10_000;
  }

  add(ev: NetfilterEvent): void {
    if (ev.packet.family === 0) return;
    this.stats.events++;
    const s: Stored = { ev, seq: this.seq++, used: false };
    const k = keyOf(ev.netns, ev.packet.family, ev.packet.proto, ev.packet.ipId);
    const list = this.byKey.get(k);
    if (list) list.push(s);
    else this.byKey.set(k, [s]);
    this.order.push(s);
    if (this.order.length - this.head > this.maxEvents) this.dropOldest(1);
  }

  /** Forgets events received before `beforeNs` (kernel-monotonic ns). */
  prune(beforeNs: number): void {
    let n = 0;
    while (this.head + n < this.order.length && (this.order[this.head + n] as Stored).ev.t < beforeNs) n++;
    this.dropOldest(n);
  }

  private dropOldest(n: number): void {
    for (let i = 0; i < n; i++) {
      const s = this.order[this.head++] as Stored;
      if (!s.used) this.stats.expired++;
      const k = keyOf(s.ev.netns, s.ev.packet.family, s.ev.packet.proto, s.ev.packet.ipId);
      const list = this.byKey.get(k);
      if (!list) continue;
      const at = list.indexOf(s);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.byKey.delete(k);
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The netfilter steps of `p`, in order (empty when none matched). Marks them used. */
  stepsFor(p: Packet): NetfilterVerdict[] {
    const proto = protoNumber(p.proto);
    const out: Array<{ v: NetfilterVerdict; seq: number }> = [];
    const byNs = new Map<number, Hop[]>();
    for (const h of p.hops) {
      const list = byNs.get(h.netns);
      if (list) list.push(h);
      else byNs.set(h.netns, [h]);
    }
    for (const [netns, hops] of byNs) {
      const first = (hops[0] as Hop).t;
      const last = (hops[hops.length - 1] as Hop).t;
      const ids = p.family === 4 ? new Set(hops.map((h) => h.ipId)) : new Set([0]);
      const afterHop = hopBefore(p.hops, netns);
      for (const id of ids) {
        for (const s of this.byKey.get(keyOf(netns, p.family, proto, id)) ?? []) {
          if (s.used) continue;
          if (s.ev.t < first - this.beforeNs || s.ev.t > last + this.afterNs) continue;
          if (!headersMatch(s.ev, p, hops)) continue;
          s.used = true;
          this.stats.attached++;
          const e = s.ev;
          out.push({
            seq: s.seq,
            v: {
              ns: e.ns, netns: e.netns, hook: e.hook, family: e.family, table: e.table, chain: e.chain,
              type: e.type, rule: e.rule, handle: e.handle, verdict: e.verdict, nat: e.nat, afterHop,
            },
          });
        }
      }
    }
    this.natByConntrack(p, out);
    out.sort((a, b) => a.v.afterHop - b.v.afterHop || a.seq - b.seq);
    return out.map((o) => o.v);
  }

  /**
   * NAT rules only run for a connection's first packet; conntrack rewrites the rest. Remember the
   * rule a first packet met (keyed by its tuple before the rewrite, and the reply's), and name it
   * for later packets whose hops show a rewrite in that namespace without a rule step.
   */
  private natByConntrack(p: Packet, out: Array<{ v: NetfilterVerdict; seq: number }>): void {
    for (const [i, h] of p.hops.entries()) {
      if (!h.nat) continue;
      const prevNs = i > 0 ? (p.hops[i - 1] as Hop).netns : h.netns;
      if (prevNs !== h.netns) continue;
      const rule = out.find((o) => o.v.netns === h.netns && o.v.nat !== null);
      const fwd = tupleKey(h.netns, p.proto, h.nat.from);
      if (rule) {
        for (const k of [fwd, tupleKey(h.netns, p.proto, reversed(h.nat.to))]) {
          this.natRules.delete(k);
          this.natRules.set(k, rule.v);
        }
        while (this.natRules.size > this.maxNatFlows) {
          const oldest = this.natRules.keys().next();
          if (oldest.done) break;
          this.natRules.delete(oldest.value);
        }
        continue;
      }
      const known = this.natRules.get(fwd);
      if (!known) continue;
      const hook = h.nat.kind === 'dnat' ? 'prerouting' : h.nat.kind === 'snat' ? 'postrouting' : known.hook;
      out.push({
        seq: -1,
        v: { ...known, ns: h.ns, hook, type: 'conntrack', verdict: 'accept', afterHop: hopBefore(p.hops, h.netns) },
      });
    }
  }

  /** `p` with its netfilter steps attached (`netfilter: []` when none matched). */
  annotate<P extends Packet>(p: P): P {
    return { ...p, netfilter: this.stepsFor(p) };
  }

  get size(): number {
    return this.order.length - this.head;
  }
}
