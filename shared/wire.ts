/**
 * The typed wire: hop events ⇄ protobuf (shared/wire.proto, through the static code pbjs
 * generates into shared/wire-generated.js). Used by the live stream (socket.io `hops` batches),
 * recordings and tests, in Node and in the browser alike. Static code, not reflection: reflection
 * builds its codecs with `new Function()`, which the dashboard's Content-Security-Policy forbids.
 */
import { hoptrace } from './wire-generated.js';
import { HOP_KINDS, type HopEvent, type HopKind, type HopOuter, type HopSent, type Family } from './hop-event.js';
import { parseAddress, bytesToAddress } from './filter/address.js';

export const HopEventType = hoptrace.HopEvent;
export const HopBatchType = hoptrace.HopBatch;

/** A batch as the live stream carries it. */
export interface HopBatch {
  readonly events: readonly HopEvent[];
  /** Per-session batch number: a client that sees a jump knows batches were dropped for it. */
  readonly seq: number;
  /** Events bpftrace reported lost in the kernel since the previous batch. */
  readonly lostKernel: number;
  /**
   * A hub agent's watermark (its clock, the hops' clock, in ns): every hop it saw before this
   * time is in this batch or an earlier one. Absent: unknown (older agents, the live stream).
   * An agent's heartbeat is a batch with no events and this alone.
   */
  readonly clockNs?: number;
}

interface WireHop {
  kind: number; t: number | { toNumber(): number }; cpu: number; skb: string; netns: number; ifindex: number;
  ifname: string; family: number; proto: number; len: number; ip_id: number; src: Uint8Array; dst: Uint8Array;
  sport: number; dport: number; icmp_type: number; icmp_id: number; tcp_flags: number; tcp_seq: number; reason: number;
  head?: Uint8Array | null;
  outer?: WireOuter | null;
  sent?: WireSent | null;
  node?: string | null;
  frag?: number | null;
}

interface WireSent { src?: Uint8Array | null; dst?: Uint8Array | null; sport?: number | null; dport?: number | null }

/** As pbjs types a nested message: every field optional (proto3 leaves defaults out). */
interface WireOuter {
  family?: number | null; proto?: number | null; src?: Uint8Array | null; dst?: Uint8Array | null;
  sport?: number | null; dport?: number | null; vni?: number | null; inner_read?: boolean | null;
  ip_id?: number | null; frag?: number | null;
}

// Address text ⇄ bytes is the costly part of a round trip; flows repeat addresses, so cache both ways.
const toBytesCache = new Map<string, Uint8Array>();
const CACHE_MAX = 4096;
// Bytes → text, keyed by numbers rather than strings built from the bytes (building a key string
// per address was ~7% of decode time): an IPv4 address is its own 32-bit key; an IPv6 address is
// keyed by a hash of its bytes and the entry keeps the bytes to tell a collision from a hit.
const v4TextCache = new Map<number, string>();
interface V6Entry { readonly bytes: Uint8Array; readonly text: string }
const v6TextCache = new Map<number, V6Entry>();

function addrBytes(text: string): Uint8Array {
  let b = toBytesCache.get(text);
  if (!b) {
    const parsed = parseAddress(text);
    b = parsed ? Uint8Array.from(parsed.bytes) : new Uint8Array(0);
    if (toBytesCache.size >= CACHE_MAX) toBytesCache.clear();
    toBytesCache.set(text, b);
  }
  return b;
}

function addrText(bytes: Uint8Array): string {
  if (bytes.length === 4) {
    const key = (bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!;
    let t = v4TextCache.get(key);
    if (t === undefined) {
      t = bytesToAddress(Array.from(bytes));
      if (v4TextCache.size >= CACHE_MAX) v4TextCache.clear();
      v4TextCache.set(key, t);
    }
    return t;
  }
  if (bytes.length !== 16) return '';
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193); // FNV-1a
  const e = v6TextCache.get(h);
  if (e !== undefined && sameBytes16(e.bytes, bytes)) return e.text;
  const text = bytesToAddress(Array.from(bytes));
  if (v6TextCache.size >= CACHE_MAX) v6TextCache.clear();
  v6TextCache.set(h, { bytes: Uint8Array.from(bytes), text }); // a copy: `bytes` may view a reused buffer
  return text;
}

function sameBytes16(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function hopToWire(ev: HopEvent): WireHop & { t: number } {
  return {
    kind: HOP_KINDS.indexOf(ev.kind), t: ev.t, cpu: ev.cpu, skb: ev.skb, netns: ev.netns, ifindex: ev.ifindex,
    ifname: ev.ifname, family: ev.family, proto: ev.proto, len: ev.len, ip_id: ev.ipId,
    src: addrBytes(ev.src), dst: addrBytes(ev.dst), sport: ev.sport, dport: ev.dport,
    icmp_type: ev.icmpType, icmp_id: ev.icmpId, tcp_flags: ev.tcpFlags, tcp_seq: ev.tcpSeq, reason: ev.reason,
    ...(ev.head ? { head: ev.head } : {}),
    ...(ev.outer ? {
      outer: {
        family: ev.outer.family, proto: ev.outer.proto, src: addrBytes(ev.outer.src), dst: addrBytes(ev.outer.dst),
        sport: ev.outer.sport, dport: ev.outer.dport, vni: ev.outer.vni, inner_read: ev.outer.innerRead,
        ip_id: ev.outer.ipId ?? 0, frag: ev.outer.frag ?? 0,
      },
    } : {}),
    ...(ev.sent ? { sent: { src: addrBytes(ev.sent.src), dst: addrBytes(ev.sent.dst), sport: ev.sent.sport, dport: ev.sent.dport } } : {}),
    ...(ev.node ? { node: ev.node } : {}),
    ...(ev.frag ? { frag: ev.frag } : {}),
  };
}

function sentFromWire(o: WireSent, family: number): HopSent {
  const none = new Uint8Array(0);
  const src = addrText(o.src ?? none);
  const dst = addrText(o.dst ?? none);
  if ((o.src?.length ?? 0) !== (family === 6 ? 16 : 4) || (o.dst?.length ?? 0) !== (o.src?.length ?? 0)) throw new WireError("a sending socket's tuple of another family than its hop");
  return { src, dst, sport: o.sport ?? 0, dport: o.dport ?? 0 };
}

function outerFromWire(o: WireOuter): HopOuter {
  if (o.family !== 4 && o.family !== 6) throw new WireError(`unknown tunnel family ${o.family ?? 0}`);
  const none = new Uint8Array(0);
  return {
    family: o.family, proto: o.proto ?? 0, src: addrText(o.src ?? none), dst: addrText(o.dst ?? none),
    sport: o.sport ?? 0, dport: o.dport ?? 0, vni: o.vni ?? 0, innerRead: o.inner_read ?? false,
    ipId: o.ip_id ?? 0, frag: o.frag ?? 0,
  };
}

/** Thrown for bytes that do not decode to a valid hop event. */
export class WireError extends Error {
  override name = 'WireError';
}

export function hopFromWire(w: WireHop): HopEvent {
  const kind: HopKind | undefined = HOP_KINDS[w.kind];
  if (kind === undefined) throw new WireError(`unknown hop kind ${w.kind}`);
  if (w.family !== 0 && w.family !== 4 && w.family !== 6) throw new WireError(`unknown family ${w.family}`);
  const t = typeof w.t === 'number' ? w.t : w.t.toNumber();
  return {
    kind, t, cpu: w.cpu, skb: w.skb, netns: w.netns, ifindex: w.ifindex, ifname: w.ifname,
    family: w.family as Family, proto: w.proto, len: w.len, ipId: w.ip_id,
    src: addrText(w.src), dst: addrText(w.dst), sport: w.sport, dport: w.dport,
    icmpType: w.icmp_type, icmpId: w.icmp_id, tcpFlags: w.tcp_flags, tcpSeq: w.tcp_seq, reason: w.reason,
    ...(w.head && w.head.length > 0 ? { head: w.head } : {}),
    ...(w.outer ? { outer: outerFromWire(w.outer) } : {}),
    // Recordings made before the field existed read as 0: not a fragment.
    ...(w.frag ? { frag: w.frag } : {}),
    ...(w.sent ? { sent: sentFromWire(w.sent, w.family) } : {}),
    ...(w.node ? { node: w.node } : {}),
  };
}

export function encodeHop(ev: HopEvent): Uint8Array {
  return HopEventType.encode(hopToWire(ev)).finish();
}

export function decodeHop(bytes: Uint8Array): HopEvent {
  let msg: WireHop;
  try {
    msg = HopEventType.decode(bytes);
  } catch (err) {
    throw new WireError(`not a hop event: ${(err as Error).message}`);
  }
  return hopFromWire(msg);
}

export function encodeBatch(batch: HopBatch): Uint8Array {
  return HopBatchType.encode({ events: batch.events.map(hopToWire), seq: batch.seq, lost_kernel: batch.lostKernel, ...(batch.clockNs ? { clock: batch.clockNs } : {}) }).finish();
}

export function decodeBatch(bytes: Uint8Array): HopBatch {
  let msg: hoptrace.HopBatch;
  try {
    msg = HopBatchType.decode(bytes);
  } catch (err) {
    throw new WireError(`not a hop batch: ${(err as Error).message}`);
  }
  // The decoder fills `events` with HopEvent instances (their absent fields read as the
  // prototype's defaults); the generated types only promise the optional-field shape.
  const events = msg.events as unknown as readonly WireHop[];
  const seq = typeof msg.seq === 'number' ? msg.seq : msg.seq.toNumber();
  const clock = msg.clock === undefined || msg.clock === null ? 0 : typeof msg.clock === 'number' ? msg.clock : msg.clock.toNumber();
  return { events: events.map(hopFromWire), seq, lostKernel: msg.lost_kernel, ...(clock > 0 ? { clockNs: clock } : {}) };
}
