/**
 * Replays a recording into packets: the same reconstruction `trace` runs live, fed from the
 * file, with namespace names, drop-reason names and the filter all taken from the recording
 * (never from the host replaying it). Used by `replay`, `export` and the round-trip tests.
 *
 * Recordings of sessions with depth (format 1.1) replay their notes into the reconstruction and
 * their netfilter events into a NetfilterStepsQueue, as the live session attached them: packets
 * leave with `notes` and `netfilter` as `trace --json --notes --netfilter` printed them. In a
 * recording of a hub session each note and step carries its `node` and joins that node's packets
 * in the hub's pipeline, as the live hub attached them.
 */
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { Reconstructor, vethPeers, type ReconstructOptions } from '../../shared/reconstruct.js';
import type { Topology } from '../../shared/topology/model.js';
import { recordingNsName } from '../../shared/recording/index.js';
import { parseFilter, packetMatches } from '../../shared/filter/index.js';
import { NetfilterStepsQueue } from '../../shared/netfilter/steps-queue.js';
import type { RecordingFile } from './reader.js';
import { withWorkloads, workloadTableOf } from '../../shared/workload-names.js';
import { RecordingStitch, recordingPipeline, asPacket } from '../../shared/cluster/pipeline.js';
import type { ClusterPacket } from '../../shared/cluster/stitch.js';

/**
 * Events this far before --from (and after --to) are read too, so packets that start inside the
 * range are complete: more than the reconstructor's largest gap between two hops of a packet.
 */
export const RANGE_MARGIN_NS = 2_000_000_000;

export interface RecordingReconstruction {
  readonly options: ReconstructOptions;
  /** Set when the recorded filter does not parse here (all packets are then shown). */
  readonly filterProblem: string | null;
}

/**
 * The topology model the recording carries: the last one in the file, as the dashboard's replay
 * reads it (web/src/api/replay-source.ts); null when the recorder had none.
 */
export async function recordedModel(file: RecordingFile): Promise<Topology | null> {
  let model: Topology | null = null;
  for (const r of await file.topologyRecords()) {
    const m = r.model as { namespaces?: unknown } | null;
    if (typeof m === 'object' && m !== null && Array.isArray(m.namespaces)
      && m.namespaces.every((n: { netns?: unknown; name?: unknown; interfaces?: unknown }) => typeof n?.netns === 'number' && typeof n.name === 'string' && Array.isArray(n.interfaces))) {
      model = r.model as Topology;
    }
  }
  return model;
}

/**
 * Reconstructor options from the recording: its namespace names, its kernel's drop reasons, its
 * filter, and its model's local addresses (as the live trace and the dashboard's replay have them).
 */
export async function reconstructOptionsFor(file: RecordingFile): Promise<RecordingReconstruction> {
  const names = await file.namespaceNames();
  const reasons = file.header.dropReasons;
  let accept: ((p: Packet) => boolean) | undefined;
  let filterProblem: string | null = null;
  if (file.header.filter !== '') {
    try {
      const ast = parseFilter(file.header.filter);
      accept = (p) => packetMatches(ast, p);
    } catch (err) {
      filterProblem = `the recorded filter '${file.header.filter}' does not parse here (${(err as Error).message}); showing every packet`;
    }
  }
  // Which addresses were local to which namespace, from the models the recorder captured: a
  // packet received where it was addressed is delivered, as `trace` said it live (and a socket's
  // discard after delivery is no drop: shared/fate.ts).
  const models = (await file.topologyRecords()).map((r) => r.model);
  const local = localAddressesOf(models);
  const isLocal = local.size > 0 ? (netns: number, addr: string): boolean => local.has(`${netns}|${addr}`) : undefined;
  const peerNetns = vethPeersOf(models);
  return {
    options: {
      nsName: recordingNsName(names), dropReason: (code) => reasons.get(code) ?? `reason-${code}`,
      ...(accept ? { accept } : {}), ...(isLocal ? { isLocal } : {}), ...(peerNetns ? { peerNetns } : {}),
    },
    filterProblem,
  };
}

/** Where each veth leads, from the latest recorded model (as `trace` had it live); undefined without one. */
function vethPeersOf(models: readonly unknown[]): ((netns: number, ifname: string) => number | null) | undefined {
  for (let i = models.length - 1; i >= 0; i--) {
    const m = models[i] as { namespaces?: unknown } | null;
    if (!Array.isArray(m?.namespaces)) continue;
    try {
      return vethPeers(m as Topology);
    } catch {
      // A model this version cannot read: follow packets without it.
      return undefined;
    }
  }
  return undefined;
}

/**
 * `netns|address` for every interface address in the recorded topology models (shared/topology
 * Topology as JSON; anything else in a file is skipped, not trusted).
 */
function localAddressesOf(models: readonly unknown[]): Set<string> {
  const out = new Set<string>();
  for (const m of models) {
    const namespaces = (m as { namespaces?: unknown } | null)?.namespaces;
    if (!Array.isArray(namespaces)) continue;
    for (const ns of namespaces as Array<{ netns?: unknown; interfaces?: unknown } | null>) {
      if (typeof ns?.netns !== 'number' || !Array.isArray(ns.interfaces)) continue;
      for (const itf of ns.interfaces as Array<{ addrs?: unknown } | null>) {
        if (!Array.isArray(itf?.addrs)) continue;
        for (const cidr of itf.addrs) if (typeof cidr === 'string') out.add(`${ns.netns}|${cidr.split('/')[0] ?? cidr}`);
      }
    }
  }
  return out;
}

export interface ReplayOptions {
  /** Only packets whose first hop is at or after this kernel time (ns). */
  readonly fromNs?: number | undefined;
  /** Only packets whose first hop is before this kernel time (ns). */
  readonly toNs?: number | undefined;
  /** Pace output at this multiple of recorded time; undefined: as fast as possible. */
  readonly speed?: number | undefined;
  /** Each packet, as it completes. Return false to stop the replay. */
  readonly onPacket: (p: Packet) => boolean | void;
  /** Lost-event reports, in file order. */
  readonly onLost?: (count: number, total: number) => void;
  /** Every event read in range, before reconstruction (exports, tests). */
  readonly onEvent?: (ev: HopEvent) => void;
  /**
   * Advance the reconstruction at the recorder's clock records (default true): reproduces the
   * packets the recorder saw live. false: events alone drive it, as reconstructAll() does.
   */
  readonly clock?: boolean;
}

export interface ReplayResult {
  /** Events in range. */
  events: number;
  packets: number;
  lost: number;
  firstT: number | null;
  lastT: number | null;
  fates: { delivered: number; dropped: number; unknown: number };
  /** Dropped packets by drop reason name. */
  drops: Map<string, number>;
  /** Delivered packets their socket then freed with a drop reason (Packet.discard), by reason. */
  discards: Map<string, number>;
  /** Packets ended because their skb carried a new one before their free was seen (ReconstructStats.splits). */
  splits: number;
  /** Offset where the file stops mid-record, null when it does not (or was not read to the end). */
  truncatedAt: number | null;
  damagedRegions: number;
  damagedBytes: number;
  firstDamageAt: number | null;
  /** Records that checked out but did not decode. */
  invalid: number;
  /** Whether the end record was read (the recorder finished the file). */
  complete: boolean;
  /** Whether the whole file was read (not stopped by --to or onPacket). */
  readToEnd: boolean;
  filterProblem: string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function replayRecording(file: RecordingFile, opts: ReplayOptions): Promise<ReplayResult> {
  const { options, filterProblem } = await reconstructOptionsFor(file);
  const from = opts.fromNs;
  const to = opts.toNs;
  const res: ReplayResult = {
    events: 0, packets: 0, lost: 0, firstT: null, lastT: null, fates: { delivered: 0, dropped: 0, unknown: 0 }, drops: new Map(), discards: new Map(), splits: 0,
    truncatedAt: null, damagedRegions: 0, damagedBytes: 0, firstDamageAt: null, invalid: 0, complete: false, readToEnd: false, filterProblem,
  };
  const inRange = (t: number): boolean => (from === undefined || t >= from) && (to === undefined || t < to);
  const rec = new Reconstructor(options);
  // A cluster recording (record --hub): each node's events through the hub's pipeline (per-node
  // reconstruction, stitching), advanced on the recorded time (record --hub put every node on one clock).
  const pipeline = recordingPipeline((await file.topologyRecords()).map((r) => r.model), file.header.dropReasons, { netfilter: file.header.netfilter === true });
  const cluster = pipeline ? new RecordingStitch(pipeline) : null;
  const clusterOut: ClusterPacket[] = [];
  // Workload names as the recording host had them (its topology models), never the replaying host's.
  const workloads = new Map<number, string>();
  for (const r of await file.topologyRecords()) for (const [netns, name] of workloadTableOf(r.model)) workloads.set(netns, name);
  // Finished packets wait for their netfilter steps until the recorded clock has moved past them.
  const steps = file.header.netfilter ? new NetfilterStepsQueue() : undefined;
  let nowT = 0;
  const accepted = (ps: ClusterPacket[]): Packet[] => ps.map(asPacket).filter((p) => options.accept?.(p) ?? true);
  const ready = (): Packet[] => (cluster ? accepted(clusterOut.splice(0)) : steps ? steps.pass(rec.drain(), nowT) : rec.drain());
  let stopped = false;
  const deliver = (packets: Packet[]): void => {
    for (const p of packets) {
      if (stopped) return;
      const first = p.hops[0]?.t ?? 0;
      if (!inRange(first)) continue;
      res.packets++;
      res.fates[p.fate]++;
      if (p.drop) res.drops.set(p.drop.reason, (res.drops.get(p.drop.reason) ?? 0) + 1);
      if (p.discard) res.discards.set(p.discard.reason, (res.discards.get(p.discard.reason) ?? 0) + 1);
      if (opts.onPacket(withWorkloads(p, workloads)) === false) stopped = true;
    }
  };

  let t0: number | null = null;
  let w0 = 0;
  /** --speed: waits until recorded time `t` is due; packets finished meanwhile go out first. False: stop. */
  const pace = async (t: number): Promise<boolean> => {
    if (t0 === null) {
      t0 = t;
      w0 = performance.now();
    }
    const lag = w0 + (t - t0) / 1e6 / (opts.speed ?? 1) - performance.now();
    if (lag > 5) {
      deliver(ready());
      if (stopped) return false;
      await sleep(lag);
    }
    return true;
  };
  const start = from !== undefined ? await file.seek(from - RANGE_MARGIN_NS) : file.headerEnd;
  const stream = file.stream(start);
  let pastEnd = false;
  outer: for await (const batch of stream) {
    for (const r of batch) {
      if (r.kind === 'event') {
        const ev = r.event;
        if (from !== undefined && ev.t < from - RANGE_MARGIN_NS) continue;
        if (to !== undefined && ev.t >= to + RANGE_MARGIN_NS) {
          pastEnd = true;
          break outer;
        }
        if (inRange(ev.t)) {
          res.events++;
          if (res.firstT === null || ev.t < res.firstT) res.firstT = ev.t;
          if (res.lastT === null || ev.t > res.lastT) res.lastT = ev.t;
          opts.onEvent?.(ev);
        }
        if (opts.speed !== undefined && !(await pace(ev.t))) break outer;
        if (cluster && ev.node !== undefined) {
          clusterOut.push(...cluster.push(ev as HopEvent & { node: string }));
          continue;
        }
        rec.push(ev);
        if (opts.clock === false && ev.t > nowT) nowT = ev.t;
      } else if (r.kind === 'note') {
        if (from !== undefined && r.note.t < from - RANGE_MARGIN_NS) continue;
        // A hub session's note joins its node's packets (older cluster files have none).
        if (cluster && r.note.node) cluster.note(r.note as typeof r.note & { node: string });
        else rec.pushNote(r.note);
      } else if (r.kind === 'netfilter') {
        if (cluster && r.netfilter.node) cluster.netfilter(r.netfilter as typeof r.netfilter & { node: string });
        else steps?.add(r.netfilter);
      } else if (r.kind === 'lost') {
        if (inRange(r.lost.t)) {
          deliver(ready()); // keep output in file order around the report
          res.lost += r.lost.count;
          opts.onLost?.(r.lost.count, res.lost);
        }
      } else if (r.kind === 'clock') {
        if (opts.clock !== false && (from === undefined || r.clock.t >= from - RANGE_MARGIN_NS)) {
          if (opts.speed !== undefined && !(await pace(r.clock.t))) break outer;
          rec.advance(r.clock.t);
          if (r.clock.t > nowT) nowT = r.clock.t;
        }
      } else if (r.kind === 'end') {
        res.complete = true;
      }
    }
    deliver(ready());
    if (stopped) break;
  }
  if (cluster) clusterOut.push(...cluster.finish());
  if (!stopped) deliver(cluster ? [...ready(), ...rec.flush()] : steps ? steps.flush(rec.flush()) : rec.flush());
  res.splits = rec.stats.splits;
  const s = stream.summary;
  if (s && !pastEnd && !stopped) {
    res.readToEnd = true;
    res.truncatedAt = s.truncatedAt;
    res.damagedRegions = s.damage.regions;
    res.damagedBytes = s.damage.bytes;
    res.firstDamageAt = s.damage.firstOffset;
    res.invalid = s.invalid;
  }
  return res;
}
