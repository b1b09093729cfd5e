/**
 * Protobuf codec for the depth tiers (shared/wire.proto: HopNote, NetfilterEvent, DepthBatch):
 * notes and netfilter rule-trace events on the live stream and in recordings, beside the hop
 * batches of shared/wire.ts. Same pbjs static code (shared/wire-generated.js), no reflection: the
 * dashboard's Content-Security-Policy forbids the `new Function()` reflection relies on.
 */
import { hoptrace } from '../wire-generated.js';
import { HOP_NOTE_KINDS, type HopNote, type HopNoteKind } from '../hop-event.js';
import type { NetfilterEvent, NfHook, NfNatKind } from './types.js';

export const HopNoteType = hoptrace.HopNote;
export const NetfilterEventType = hoptrace.NetfilterEvent;
export const DepthBatchType = hoptrace.DepthBatch;

export interface DepthBatch {
  readonly notes: readonly HopNote[];
  readonly netfilter: readonly NetfilterEvent[];
  readonly seq: number;
}

export class DepthWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DepthWireError';
  }
}

type Long = number | { toNumber(): number };
const n = (v: Long | undefined | null): number => (v === undefined || v === null ? 0 : typeof v === 'number' ? v : v.toNumber());

interface WireNote { kind: string; t: Long; cpu: number; skb: string; netns: number; num: Record<string, Long>; text: Record<string, string>; node?: string }

export function noteToWire(note: HopNote): WireNote {
  const num: Record<string, number> = {};
  const text: Record<string, string> = {};
  for (const [k, v] of Object.entries(note.data)) {
    if (typeof v === 'number') num[k] = v;
    else text[k] = v;
  }
  return { kind: note.kind, t: note.t, cpu: note.cpu, skb: note.skb, netns: note.netns, num, text, ...(note.node ? { node: note.node } : {}) };
}

const NOTE_KINDS = new Set<string>(HOP_NOTE_KINDS);

export function noteFromWire(w: WireNote): HopNote {
  if (!NOTE_KINDS.has(w.kind)) throw new DepthWireError(`unknown note kind ${JSON.stringify(w.kind)}`);
  const data: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(w.num ?? {})) data[k] = n(v);
  for (const [k, v] of Object.entries(w.text ?? {})) data[k] = v;
  return { kind: w.kind as HopNoteKind, t: n(w.t), cpu: w.cpu ?? 0, skb: w.skb || '0', netns: w.netns ?? 0, data, ...(w.node ? { node: w.node } : {}) };
}

interface WireNf {
  ns: string; netns: number; t: Long; trace_id: string; family: string; table: string; chain: string; hook: string; type: string;
  rule: string; handle: Long; verdict: string; nat: string; iif: string; oif: string; pkt_family: number; proto: number;
  src: string; dst: string; sport: number; dport: number; ip_id: number; len: number; tcp_seq: number; icmp_id: number; node?: string;
}

export function netfilterToWire(e: NetfilterEvent): WireNf {
  const p = e.packet;
  return {
    ns: e.ns ?? '', netns: e.netns, t: e.t, trace_id: e.traceId, family: e.family, table: e.table, chain: e.chain, hook: e.hook,
    type: e.type, rule: e.rule ?? '', handle: e.handle ?? -1, verdict: e.verdict, nat: e.nat ?? '', iif: p.iif ?? '', oif: p.oif ?? '',
    pkt_family: p.family, proto: p.proto, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport, ip_id: p.ipId, len: p.len,
    tcp_seq: p.tcpSeq, icmp_id: p.icmpId, ...(e.node ? { node: e.node } : {}),
  };
}

const TYPES = new Set(['rule', 'policy', 'return']);

export function netfilterFromWire(w: WireNf): NetfilterEvent {
  if (!TYPES.has(w.type)) throw new DepthWireError(`unknown netfilter step type ${JSON.stringify(w.type)}`);
  const fam = w.pkt_family ?? 0;
  if (fam !== 0 && fam !== 4 && fam !== 6) throw new DepthWireError(`bad packet family ${fam}`);
  const handle = n(w.handle);
  return {
    ns: w.ns || null, netns: w.netns ?? 0, t: n(w.t), traceId: w.trace_id ?? '', family: w.family ?? '', table: w.table ?? '',
    chain: w.chain ?? '', hook: (w.hook || 'unknown') as NfHook, type: w.type as NetfilterEvent['type'], rule: w.type === 'rule' ? (w.rule ?? '') || null : null,
    handle: handle >= 0 ? handle : null, verdict: w.verdict ?? '', nat: (w.nat || null) as NfNatKind | null,
    packet: {
      iif: w.iif || null, oif: w.oif || null, family: fam, proto: w.proto ?? 0, src: w.src ?? '', dst: w.dst ?? '',
      sport: w.sport ?? 0, dport: w.dport ?? 0, ipId: w.ip_id ?? 0, len: w.len ?? 0, tcpSeq: w.tcp_seq ?? 0, icmpId: w.icmp_id ?? 0,
    },
    ...(w.node ? { node: w.node } : {}),
  };
}

export function encodeDepthBatch(b: DepthBatch): Uint8Array {
  // The generated types want long.js Longs for 64-bit fields; the encoder takes numbers as well.
  const notes = b.notes.map(noteToWire) as hoptrace.HopNote.$Properties[];
  const netfilter = b.netfilter.map(netfilterToWire) as hoptrace.NetfilterEvent.$Properties[];
  return DepthBatchType.encode({ notes, netfilter, seq: b.seq }).finish();
}

export function decodeDepthBatch(bytes: Uint8Array): DepthBatch {
  let msg: hoptrace.DepthBatch;
  try {
    msg = DepthBatchType.decode(bytes);
  } catch (err) {
    throw new DepthWireError(`not a DepthBatch: ${(err as Error).message}`);
  }
  // The decoder fills the lists with message instances whose absent fields read as the
  // prototype's defaults (what toObject({ defaults: true }) gave); the types only promise optionals.
  const notes = msg.notes as unknown as WireNote[];
  const netfilter = msg.netfilter as unknown as WireNf[];
  return { notes: notes.map(noteFromWire), netfilter: netfilter.map(netfilterFromWire), seq: n(msg.seq) };
}
