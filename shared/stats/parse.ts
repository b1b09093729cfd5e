/**
 * Reads what the stats program prints (probes/stats/assemble.ts documents the lines) into
 * snapshots of its cumulative maps, and turns consecutive snapshots into per-interval counts.
 * bpftrace prints map keys as signed 64-bit integers, so packed places above 2^63 arrive
 * negative: they are reinterpreted as unsigned here.
 */
import type { HopKind } from '../hop-event.js';

/** A place as packed by the probes: (netns << 32) | (ifindex << 8) | kind. */
export interface PlaceKey {
  readonly netns: number;
  readonly ifindex: number;
  readonly kind: HopKind;
}

const KINDS: ReadonlyArray<HopKind | undefined> = [undefined, 'xmit', 'rx', 'recv', 'drop', 'consume'];

export interface IfaceCounter {
  readonly packets: number;
  readonly bytes: number;
}

/**
 * Counts keyed by strings: places as `netns.ifindex.kind` (kind numeric), segments as
 * `from>to`, histogram entries with `|bucket` appended.
 */
export interface StatsCounts {
  /** `from>to|bucket` → packets. */
  readonly seg: Map<string, number>;
  /** `from>to` → max ns in the interval (not cumulative). */
  readonly segMax: Map<string, number>;
  /** `netns|bucket` → packets. */
  readonly transit: Map<string, number>;
  /** `netns` → max ns in the interval. */
  readonly transitMax: Map<string, number>;
  /** `netns|ifindex|reason` → packets. */
  readonly drops: Map<string, number>;
  /** `netns|ifindex|kind` (1 transmit, 3 receive) → packets and IP bytes. */
  readonly ifs: Map<string, IfaceCounter>;
}

export function emptyCounts(): StatsCounts {
  return { seg: new Map(), segMax: new Map(), transit: new Map(), transitMax: new Map(), drops: new Map(), ifs: new Map() };
}

export interface StatsSnapshot {
  /** Kernel monotonic ns when the snapshot was taken. */
  readonly t: number;
  /** The end-of-run snapshot. */
  readonly final: boolean;
  readonly counts: StatsCounts;
}

const U64 = (s: string): bigint => BigInt.asUintN(64, BigInt(s));

/** `netns.ifindex.kind` of a packed place, or null when the kind is not one the probes use. */
export function placeKey(packed: bigint): string | null {
  const kind = Number(packed & 0xffn);
  if (KINDS[kind] === undefined) return null;
  return `${packed >> 32n}.${(packed >> 8n) & 0xffffffn}.${kind}`;
}

export function parsePlaceKey(key: string): PlaceKey | null {
  const [ns, ifx, k] = key.split('.').map(Number);
  const kind = KINDS[k ?? 0];
  if (ns === undefined || ifx === undefined || kind === undefined) return null;
  return { netns: ns, ifindex: ifx, kind };
}

const MAP_LINE = /^@(\w+)\[([-\d, ]+)\]: (.+)$/;
const STATS_VALUE = /^count (\d+), average -?\d+, total (\d+)$/;

/** Adds one map line to `counts`; false when it is not a line of ours. */
function addLine(counts: StatsCounts, line: string): boolean {
  const m = MAP_LINE.exec(line);
  if (!m) return false;
  const [, name = '', keyText = '', valueText = ''] = m;
  const keys = keyText.split(', ');
  if (name === 'ifs') {
    const v = STATS_VALUE.exec(valueText);
    if (!v || keys.length !== 3) return false;
    counts.ifs.set(`${U64(keys[0] ?? '0')}|${keys[1]}|${keys[2]}`, { packets: Number(v[1]), bytes: Number(v[2]) });
    return true;
  }
  if (!/^\d+$/.test(valueText)) return false;
  const value = Number(valueText);
  switch (name) {
    case 'seg':
    case 'segmax': {
      const from = placeKey(U64(keys[0] ?? '0'));
      const to = placeKey(U64(keys[1] ?? '0'));
      if (!from || !to) return false;
      if (name === 'seg' && keys.length === 3) counts.seg.set(`${from}>${to}|${keys[2]}`, value);
      else if (name === 'segmax' && keys.length === 2) counts.segMax.set(`${from}>${to}`, value);
      else return false;
      return true;
    }
    case 'transit':
      if (keys.length !== 2) return false;
      counts.transit.set(`${U64(keys[0] ?? '0')}|${keys[1]}`, value);
      return true;
    case 'transitmax':
      if (keys.length !== 1) return false;
      counts.transitMax.set(`${U64(keys[0] ?? '0')}`, value);
      return true;
    case 'drops':
      if (keys.length !== 3) return false;
      counts.drops.set(`${U64(keys[0] ?? '0')}|${keys[1]}|${keys[2]}`, value);
      return true;
    default:
      return false;
  }
}

/**
 * Line-by-line reader of the stats program's output. `push` returns a snapshot when a line
 * closes one. Everything after the final snapshot (bpftrace's own dump of the maps at exit)
 * is ignored.
 */
export class StatsOutputParser {
  /** Kernel time the program started (the `B` line), null before. */
  startNs: number | null = null;
  /** Lines inside a snapshot that were not understood (should stay 0). */
  unparsed = 0;
  private open: { t: number; final: boolean; counts: StatsCounts } | null = null;
  private finished = false;

  get done(): boolean {
    return this.finished;
  }

  push(line: string): StatsSnapshot | null {
    if (this.finished || line === '') return null;
    if (this.open) {
      if (line === 'E') {
        const snap = this.open;
        this.open = null;
        if (snap.final) this.finished = true;
        return snap;
      }
      if (!addLine(this.open.counts, line)) this.unparsed++;
      return null;
    }
    const marker = /^([BTF]) (\d+)$/.exec(line);
    if (!marker) return null;
    const t = Number(marker[2]);
    if (marker[1] === 'B') this.startNs = t;
    else this.open = { t, final: marker[1] === 'F', counts: emptyCounts() };
    return null;
  }
}

function subtract<V>(cur: ReadonlyMap<string, V>, prev: ReadonlyMap<string, V> | undefined, minus: (a: V, b: V | undefined) => V | null): Map<string, V> {
  const out = new Map<string, V>();
  for (const [k, v] of cur) {
    const d = minus(v, prev?.get(k));
    if (d !== null) out.set(k, d);
  }
  return out;
}

const minusCount = (a: number, b: number | undefined): number | null => {
  const d = a - (b ?? 0);
  return d > 0 ? d : null;
};
const minusIface = (a: IfaceCounter, b: IfaceCounter | undefined): IfaceCounter | null => {
  const packets = a.packets - (b?.packets ?? 0);
  return packets > 0 ? { packets, bytes: a.bytes - (b?.bytes ?? 0) } : null;
};
const keepMax = (a: number): number | null => (a > 0 ? a : null);

/** What happened between two cumulative snapshots (max maps are already per interval). */
export function deltaCounts(prev: StatsCounts | null, cur: StatsCounts): StatsCounts {
  return {
    seg: subtract(cur.seg, prev?.seg, minusCount),
    segMax: subtract(cur.segMax, undefined, keepMax),
    transit: subtract(cur.transit, prev?.transit, minusCount),
    transitMax: subtract(cur.transitMax, undefined, keepMax),
    drops: subtract(cur.drops, prev?.drops, minusCount),
    ifs: subtract(cur.ifs, prev?.ifs, minusIface),
  };
}

export interface StatsInterval {
  readonly startNs: number;
  readonly endNs: number;
  readonly final: boolean;
  readonly counts: StatsCounts;
}

/** Snapshots in, intervals out: each interval covers only what happened since the previous snapshot. */
export class StatsIntervals {
  private prev: StatsSnapshot | null = null;

  constructor(private startNs: number) {}

  next(snap: StatsSnapshot): StatsInterval {
    const interval: StatsInterval = {
      startNs: this.prev?.t ?? this.startNs,
      endNs: snap.t,
      final: snap.final,
      counts: deltaCounts(this.prev?.counts ?? null, snap.counts),
    };
    this.prev = snap;
    return interval;
  }
}
