/**
 * Payloads of recording records ⇄ protobuf (shared/wire.proto). Hop events use shared/wire.ts
 * as the live stream does. Readers get plain numbers (kernel monotonic ns stay below 2^53) and
 * bigint for wall-clock ns, which do not fit a double.
 */
import { hoptrace } from '../wire-generated.js';
import type { HopNote } from '../hop-event.js';
import type { NetfilterEvent } from '../netfilter/types.js';
import { HopNoteType, NetfilterEventType, netfilterFromWire, netfilterToWire, noteFromWire, noteToWire } from '../netfilter/wire.js';

// pbjs static code (shared/wire-generated.js), not reflection: the dashboard reads recordings
// under a Content-Security-Policy that forbids the `new Function()` reflection relies on.
const HeaderType = hoptrace.RecordingHeader;
const TopologyType = hoptrace.TopologyRecord;
const LostType = hoptrace.LostRecord;
const IndexType = hoptrace.IndexRecord;
const EndType = hoptrace.EndRecord;
const ClockType = hoptrace.ClockRecord;

export interface NamespaceName {
  readonly netns: number;
  readonly name: string;
}

export interface RecordingHeader {
  readonly host: string;
  /** Kernel release (`uname -r`). */
  readonly kernel: string;
  readonly bpftraceVersion: string;
  /**
   * Probe points attached, as bpftrace names them: `rawtracepoint:net_dev_start_xmit` on the
   * fast tier, `tracepoint:net:net_dev_start_xmit` on the classic one (files before the tier was
   * written say `net:net_dev_start_xmit`).
   */
  readonly probes: readonly string[];
  /** The probe tier the recording was made on; absent in older files. */
  readonly probeTier?: 'fast' | 'classic';
  /** Canonical filter text ('' for none): replay applies it to packets as `trace` does. */
  readonly filter: string;
  /** Unix time in ns at the start ... */
  readonly startWallNs: bigint;
  /** ... and the kernel monotonic clock at the same instant: converts hop times to wall clock. */
  readonly startMonoNs: number;
  /** enum skb_drop_reason value → name (without SKB_DROP_REASON_) of the recording kernel. */
  readonly dropReasons: ReadonlyMap<number, string>;
  /** Program and version that wrote the file. */
  readonly recorder: string;
  /**
   * The session traced netfilter rules (format 1.1): replay attaches `netfilter` steps to every
   * packet, as `trace --netfilter` does. Absent or false in older files.
   */
  readonly netfilter?: boolean;
  /** The session attached the notes tier (format 1.1). */
  readonly notes?: boolean;
  /**
   * 1 in this many flows were recorded (`record --sample N`, a sampled service session; format
   * 1.2): every recorded flow is whole, the others are absent, and counts are not scaled. Absent
   * (older files, or every flow): 1.
   */
  readonly sampleRate?: number;
}

export interface TopologyRecord {
  /** Kernel monotonic ns. */
  readonly t: number;
  /** true: complete state at `t`; false: a change (namespaces added or renamed, `removed` gone). */
  readonly snapshot: boolean;
  readonly namespaces: readonly NamespaceName[];
  /** The topology model (shared/topology) as the recorder had it; null when not captured. */
  readonly model: unknown;
  /** Offset of the previous topology record (0 for the first): readers follow it back from an index. */
  readonly prevOffset: number;
  readonly removed: readonly number[];
}

export interface LostRecord {
  readonly t: number;
  readonly count: number;
}

export interface IndexRecord {
  /** Largest event time in the records before this one: seeking to T may start here when this is < T. */
  readonly maxTBefore: number;
  readonly eventsBefore: number;
  readonly lostBefore: number;
  /** Offset of the latest topology record before this one (0: none). */
  readonly topologyOffset: number;
  /** This record's own offset: an index record copied elsewhere does not point right. */
  readonly offset: number;
}

export interface EndRecord {
  readonly t: number;
  readonly wallNs: bigint;
  readonly events: number;
  readonly lost: number;
  /** Packets reconstructed while recording that the filter accepted. */
  readonly packets: number;
  /** Why recording ended: `duration`, `count`, `interrupted`, `stopped`, `error: ...`. */
  readonly reason: string;
}

interface LongLike { low: number; high: number; unsigned?: boolean; toNumber?(): number }
type U64 = number | LongLike | undefined;

function num(v: U64): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  return (v.high >>> 0) * 4294967296 + (v.low >>> 0);
}

function big(v: U64): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

/** What the generated encoders take for a uint64: a number or a long.js Long. */
type U64In = NonNullable<hoptrace.EndRecord.$Properties['wall_ns']>;

function u64(v: bigint): U64In {
  const x = BigInt.asUintN(64, v);
  const bits: LongLike = { low: Number(x & 0xffffffffn) | 0, high: Number(x >> 32n) | 0, unsigned: true };
  // The encoders read only `low` and `high` of an object (protobufjs LongBits.from), so the bits
  // need not be a full long.js Long, whose package shared/ does not depend on directly.
  return bits as unknown as U64In;
}

export function encodeHeader(h: RecordingHeader): Uint8Array {
  const dropReasons: Record<number, string> = {};
  for (const [k, v] of h.dropReasons) dropReasons[k] = v;
  const w = HeaderType.encode({
    host: h.host, kernel: h.kernel, bpftrace_version: h.bpftraceVersion, probes: [...h.probes], filter: h.filter,
    start_wall_ns: u64(h.startWallNs), start_mono_ns: h.startMonoNs, drop_reasons: dropReasons, recorder: h.recorder,
    netfilter: h.netfilter === true, notes: h.notes === true,
    // proto3 leaves default values out: every flow (0 here) writes nothing, as files before 1.2 did.
    sample_rate: h.sampleRate !== undefined && h.sampleRate > 1 ? h.sampleRate : 0,
    probe_tier: h.probeTier ?? '',
  });
  return w.finish();
}

export function decodeHeader(bytes: Uint8Array): RecordingHeader {
  const m = HeaderType.decode(bytes);
  const sampleRate = m.sample_rate;
  const dropReasons = new Map<number, string>();
  for (const [k, v] of Object.entries(m.drop_reasons)) dropReasons.set(Number(k), v);
  return {
    host: m.host, kernel: m.kernel, bpftraceVersion: m.bpftrace_version, probes: m.probes,
    filter: m.filter, startWallNs: big(m.start_wall_ns), startMonoNs: num(m.start_mono_ns), dropReasons,
    recorder: m.recorder,
    // Only when set: a header without depth reads back exactly as it did before format 1.1.
    ...(m.netfilter ? { netfilter: true } : {}), ...(m.notes ? { notes: true } : {}),
    ...(sampleRate > 1 ? { sampleRate } : {}),
    ...(m.probe_tier === 'fast' || m.probe_tier === 'classic' ? { probeTier: m.probe_tier } : {}),
  };
}

export function encodeTopology(r: TopologyRecord): Uint8Array {
  return TopologyType.encode({
    t: r.t, snapshot: r.snapshot, namespaces: r.namespaces.map((n) => ({ netns: n.netns, name: n.name })),
    model_json: r.model === null || r.model === undefined ? '' : JSON.stringify(r.model),
    prev_offset: r.prevOffset, removed: [...r.removed],
  }).finish();
}

export function decodeTopology(bytes: Uint8Array): TopologyRecord {
  const m = TopologyType.decode(bytes);
  let model: unknown = null;
  if (m.model_json) {
    try {
      model = JSON.parse(m.model_json);
    } catch {
      model = null; // a model we cannot parse is as good as none; names still come from `namespaces`
    }
  }
  return {
    t: num(m.t), snapshot: m.snapshot,
    namespaces: m.namespaces.map((n) => ({ netns: n.netns ?? 0, name: n.name ?? '' })),
    model, prevOffset: num(m.prev_offset), removed: m.removed,
  };
}

export function encodeLost(r: LostRecord): Uint8Array {
  return LostType.encode({ t: r.t, count: r.count }).finish();
}

export function decodeLost(bytes: Uint8Array): LostRecord {
  const m = LostType.decode(bytes);
  return { t: num(m.t), count: num(m.count) };
}

export function encodeIndex(r: IndexRecord): Uint8Array {
  return IndexType.encode({
    max_t_before: r.maxTBefore, events_before: r.eventsBefore, lost_before: r.lostBefore,
    topology_offset: r.topologyOffset, offset: r.offset,
  }).finish();
}

export function decodeIndex(bytes: Uint8Array): IndexRecord {
  const m = IndexType.decode(bytes);
  return {
    maxTBefore: num(m.max_t_before), eventsBefore: num(m.events_before), lostBefore: num(m.lost_before),
    topologyOffset: num(m.topology_offset), offset: num(m.offset),
  };
}

export function encodeEnd(r: EndRecord): Uint8Array {
  return EndType.encode({ t: r.t, wall_ns: u64(r.wallNs), events: r.events, lost: r.lost, packets: r.packets, reason: r.reason }).finish();
}

export function decodeEnd(bytes: Uint8Array): EndRecord {
  const m = EndType.decode(bytes);
  return { t: num(m.t), wallNs: big(m.wall_ns), events: num(m.events), lost: num(m.lost), packets: num(m.packets), reason: m.reason };
}

/** Kernel monotonic ns at which the recorder's live reconstruction advanced its clock. */
export interface ClockRecord {
  readonly t: number;
}

export function encodeClock(r: ClockRecord): Uint8Array {
  return ClockType.encode({ t: r.t }).finish();
}

export function decodeClock(bytes: Uint8Array): ClockRecord {
  const m = ClockType.decode(bytes);
  return { t: num(m.t) };
}

// Depth records (1.1) carry the live stream's own messages (shared/netfilter/wire.ts).

export function encodeNote(n: HopNote): Uint8Array {
  return HopNoteType.encode(noteToWire(n) as hoptrace.HopNote.$Properties).finish();
}

export function decodeNote(bytes: Uint8Array): HopNote {
  return noteFromWire(HopNoteType.decode(bytes) as unknown as Parameters<typeof noteFromWire>[0]);
}

export function encodeNetfilter(e: NetfilterEvent): Uint8Array {
  return NetfilterEventType.encode(netfilterToWire(e) as hoptrace.NetfilterEvent.$Properties).finish();
}

export function decodeNetfilter(bytes: Uint8Array): NetfilterEvent {
  return netfilterFromWire(NetfilterEventType.decode(bytes) as unknown as Parameters<typeof netfilterFromWire>[0]);
}
