/**
 * The typed wire: hop events ⇄ protobuf (shared/wire.proto, loaded from the generated
 * shared/wire-schema.ts). Used by the live stream (socket.io `hops` batches), recordings and
 * tests, in Node and in the browser alike.
 */
import protobuf from 'protobufjs/light.js';
import { WIRE_SCHEMA } from './wire-schema.js';
import { HOP_KINDS, type HopEvent, type HopKind, type Family } from './hop-event.js';
import { parseAddress, bytesToAddress } from './filter/address.js';

const root = protobuf.Root.fromJSON(WIRE_SCHEMA as unknown as protobuf.INamespace);
export const HopEventType = root.lookupType('hoptrace.HopEvent');
export const HopBatchType = root.lookupType('hoptrace.HopBatch');

/** A batch as the live stream carries it. */
export interface HopBatch {
  readonly events: readonly HopEvent[];
  /** Per-session batch number: a client that sees a jump knows batches were dropped for it. */
  readonly seq: number;
  /** Events bpftrace reported lost in the kernel since the previous batch. */
  readonly lostKernel: number;
}

interface WireHop {
  kind: number; t: number | { toNumber(): number }; cpu: number; skb: string; netns: number; ifindex: number;
  ifname: string; family: number; proto: number; len: number; ip_id: number; src: Uint8Array; dst: Uint8Array;
  sport: number; dport: number; icmp_type: number; icmp_id: number; tcp_flags: number; tcp_seq: number; reason: number;
}

// Address text ⇄ bytes is the costly part of a round trip; flows repeat addresses, so cache both ways.
const toBytesCache = new Map<string, Uint8Array>();
const toTextCache = new Map<string, string>();
const CACHE_MAX = 4096;

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
  if (bytes.length !== 4 && bytes.length !== 16) return '';
  const key = bytes.join('.');
  let t = toTextCache.get(key);
  if (t === undefined) {
    t = bytesToAddress(Array.from(bytes));
    if (toTextCache.size >= CACHE_MAX) toTextCache.clear();
    toTextCache.set(key, t);
  }
  return t;
}

export function hopToWire(ev: HopEvent): WireHop {
  return {
    kind: HOP_KINDS.indexOf(ev.kind), t: ev.t, cpu: ev.cpu, skb: ev.skb, netns: ev.netns, ifindex: ev.ifindex,
    ifname: ev.ifname, family: ev.family, proto: ev.proto, len: ev.len, ip_id: ev.ipId,
    src: addrBytes(ev.src), dst: addrBytes(ev.dst), sport: ev.sport, dport: ev.dport,
    icmp_type: ev.icmpType, icmp_id: ev.icmpId, tcp_flags: ev.tcpFlags, tcp_seq: ev.tcpSeq, reason: ev.reason,
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
  };
}

export function encodeHop(ev: HopEvent): Uint8Array {
  return HopEventType.encode(hopToWire(ev)).finish();
}

export function decodeHop(bytes: Uint8Array): HopEvent {
  let msg: protobuf.Message;
  try {
    msg = HopEventType.decode(bytes);
  } catch (err) {
    throw new WireError(`not a hop event: ${(err as Error).message}`);
  }
  return hopFromWire(msg as unknown as WireHop);
}

export function encodeBatch(batch: HopBatch): Uint8Array {
  return HopBatchType.encode({ events: batch.events.map(hopToWire), seq: batch.seq, lost_kernel: batch.lostKernel }).finish();
}

export function decodeBatch(bytes: Uint8Array): HopBatch {
  let msg: { events?: WireHop[]; seq?: number | { toNumber(): number }; lost_kernel?: number };
  try {
    msg = HopBatchType.decode(bytes) as unknown as typeof msg;
  } catch (err) {
    throw new WireError(`not a hop batch: ${(err as Error).message}`);
  }
  const seq = msg.seq === undefined ? 0 : typeof msg.seq === 'number' ? msg.seq : msg.seq.toNumber();
  return { events: (msg.events ?? []).map(hopFromWire), seq, lostKernel: msg.lost_kernel ?? 0 };
}
