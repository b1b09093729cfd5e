/**
 * The hub's pipeline, pure (issue 17): each node's hop events reconstructed into packets on their
 * own (shared/reconstruct.ts, with that node's namespace names, local addresses and drop reasons
 * from its topology snapshot, on that node's own clock), then the pieces stitched across nodes
 * (stitch.ts). Depth events (notes, netfilter rule-trace steps) join their node's packets as in
 * `trace --notes` / `--netfilter` before stitching. One implementation for the places that need it:
 *   - the live hub (server/hub/hub.ts), one per session (server/hub/cluster-session.ts), with the
 *     hub's wall clock as `nowMs`;
 *   - `record --hub --since` (server/hub/record.ts), reading the stream after the fact, with each
 *     message's JetStream time as `nowMs` — when it reached the bus, as a live hub would have seen it;
 *   - replay of such a recording (server/recording/replay.ts), with the recorded event time.
 *
 * Each node's reconstruction moves on that node's own watermark: the clock its agent vouches for
 * in every hop batch (heartbeats, batches with no events, say it while the node is quiet), so a
 * node whose batches lag (its agent reconnecting after a bus outage) is not run ahead of what it
 * has sent. Batches without one (older agents) and nodes no longer live are extrapolated with
 * `nowMs` from their newest time, as before. The stitcher then waits for each live node's
 * watermark (stitch.ts), not for the wall clock alone.
 */
import type { HopEvent, HopNote } from '../hop-event.js';
import type { NetfilterEvent } from '../netfilter/types.js';
import type { Packet } from '../packet.js';
import type { Topology } from '../topology/model.js';
import type { DepthBatch } from '../netfilter/wire.js';
import { Reconstructor } from '../reconstruct.js';
import { NetfilterStepsQueue } from '../netfilter/steps-queue.js';
import { buildClusterModel, mergeTopologies, type ClusterModel, type ClusterTopology } from './model.js';
import { Stitcher, type ClusterPacket, type StitcherOptions } from './stitch.js';
import { BatchSequence, type SeqVerdict } from './sequence.js';
import { parseCapability, type NodeCapability } from './capability.js';

export interface PipelineNode {
  readonly name: string;
  topology: Topology | null;
  names: Map<number, string>;
  locals: Map<number, Set<string>>;
  reasons: Map<number, string>;
  readonly engine: Reconstructor;
  /** Netfilter steps waiting for their finished packets (pipelines with `netfilter` only). */
  readonly steps: NetfilterStepsQueue | undefined;
  /** Depth events taken: notes, netfilter steps. */
  notes: number;
  netfilter: number;
  /**
   * Newest time the node vouched for (node clock): its batches' clock, or its newest event's; and
   * when it arrived (`nowMs`): the node's "now", extrapolated from there when not vouched for.
   */
  lastT: number;
  lastArrivalMs: number;
  /** Its batches carry the agent's clock: the reconstruction moves on it, not on `nowMs`. */
  clocked: boolean;
  /** Hop batches with no events (an agent's heartbeats): not counted in `batches`. */
  heartbeats: number;
  lastSeenMs: number;
  events: number;
  batches: number;
  /** Events the node's kernel lost, or its agent dropped for a slow bus. */
  lost: number;
  /**
   * Batches missing in the sequence (dropped on the way, or before the retention); one that comes
   * late (after a newer one) is no longer missing (sequence.ts).
   */
  gaps: number;
  /** Hop and depth batches that came again (JetStream redelivered them): skipped. */
  duplicates: number;
  /** Its sequences, per agent run (the epoch in its message ids; '' without one), the newest last: hop batches', depth batches'. */
  readonly seqs: Map<string, BatchSequence>;
  readonly depthSeqs: Map<string, BatchSequence>;
  /** Batches the node's agent said it dropped from its outbox (the bus away too long). */
  agentDropped: number;
  lastSeq: number;
  /** The node's latest snapshot as published (kernel t and wall clock at one moment, agent counters). */
  snapshot: ParsedSnapshot | null;
}

/** What an agent's counters say, from its latest snapshot (absent from older agents). */
export interface AgentCounters {
  /** Hop batches its bus buffer dropped (oldest first) because they did not fit while the bus was away. */
  readonly droppedBatches: number;
  /** Events in them. */
  readonly droppedEvents: number;
  /** Batches waiting for the bus when the snapshot was taken. */
  readonly buffered: number;
}

export interface ParsedSnapshot {
  readonly node: string;
  readonly topology: Topology;
  /** Kernel monotonic ns and wall-clock ms read together on the node (0 when absent). */
  readonly t: number;
  readonly wallMs: number;
  readonly dropReasons: ReadonlyMap<number, string> | null;
  readonly agent: AgentCounters | null;
  /** Whether the node can trace (its agent's word); null from older agents. */
  readonly capability: NodeCapability | null;
}

/** A snapshot's JSON bytes, checked; a sentence when it is not one of `node`. */
export function parseSnapshot(node: string, data: Uint8Array): ParsedSnapshot | string {
  let snap: { node?: unknown; topology?: unknown; dropReasons?: unknown; t?: unknown; wallMs?: unknown; agent?: unknown; capability?: unknown };
  try {
    snap = JSON.parse(new TextDecoder().decode(data)) as typeof snap;
  } catch {
    return 'not JSON';
  }
  const topo = snap?.topology as Topology | undefined;
  if (snap?.node !== node || !topo || !Array.isArray(topo.namespaces)) return 'not a node snapshot of this node';
  const reasons = snap.dropReasons && typeof snap.dropReasons === 'object'
    ? new Map(Object.entries(snap.dropReasons as Record<string, unknown>).filter(([, v]) => typeof v === 'string').map(([k, v]) => [Number(k), v as string]))
    : null;
  const a = snap.agent as Record<string, unknown> | undefined;
  const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
  return {
    node, topology: topo, dropReasons: reasons,
    t: count(snap.t), wallMs: count(snap.wallMs),
    agent: a && typeof a === 'object' ? { droppedBatches: count(a.droppedBatches), droppedEvents: count(a.droppedEvents), buffered: count(a.buffered) } : null,
    capability: parseCapability(snap.capability),
  };
}

/** What a hop batch was in its node's sequence, and the change it made to the node's gaps. */
export interface BatchOutcome {
  readonly node: PipelineNode;
  readonly verdict: SeqVerdict;
  readonly gaps: number;
}

export interface PipelineOptions {
  readonly stitch?: StitcherOptions;
  /** Most nodes kept (default 1024): a publisher inventing node names cannot grow it without bound. */
  readonly maxNodes?: number;
  /** Netfilter steps are attached to finished packets (a session with depth netfilter). */
  readonly netfilter?: boolean;
}

export class ClusterPipeline {
  readonly nodes = new Map<string, PipelineNode>();
  readonly stitcher: Stitcher;
  model: ClusterModel = { nodes: [], owner: new Map(), links: [] };

  constructor(private readonly opts: PipelineOptions = {}) {
    this.stitcher = new Stitcher(opts.stitch ?? {});
  }

  /** Whether a message from `name` may be taken (a known node, or room for another). */
  admits(name: string): boolean {
    return this.nodes.has(name) || this.nodes.size < (this.opts.maxNodes ?? 1024);
  }

  node(name: string, nowMs: number): PipelineNode {
    let n = this.nodes.get(name);
    if (!n) {
      const state = {
        name, topology: null, names: new Map(), locals: new Map(), reasons: new Map(),
        steps: this.opts.netfilter ? new NetfilterStepsQueue() : undefined, notes: 0, netfilter: 0,
        lastT: 0, lastArrivalMs: 0, clocked: false, heartbeats: 0, lastSeenMs: nowMs, events: 0, batches: 0, lost: 0, gaps: 0, duplicates: 0, seqs: new Map(), depthSeqs: new Map(), agentDropped: 0, lastSeq: 0, snapshot: null,
      } as Omit<PipelineNode, 'engine'> as PipelineNode;
      (state as { engine: Reconstructor }).engine = new Reconstructor({
        nsName: (netns) => state.names.get(netns) ?? null,
        isLocal: (netns, addr) => state.locals.get(netns)?.has(addr) ?? false,
        dropReason: (code) => state.reasons.get(code) ?? `reason-${code}`,
      });
      n = state;
      this.nodes.set(name, n);
    }
    return n;
  }

  /**
   * A node's topology snapshot: its names, local addresses and drop reasons from now on.
   * Returns the node (first: whether it is new), or a sentence when the cluster cannot be modelled with it.
   */
  snapshot(s: ParsedSnapshot, nowMs: number): { node: PipelineNode; first: boolean; modelError: string | null } {
    const n = this.node(s.node, nowMs);
    const first = n.topology === null;
    n.topology = s.topology;
    n.snapshot = s;
    n.lastSeenMs = nowMs;
    this.stitcher.clockHint(s.node, s.t, s.wallMs);
    n.names = new Map();
    n.locals = new Map();
    for (const ns of s.topology.namespaces) {
      if (typeof ns?.netns !== 'number' || typeof ns.name !== 'string' || !Array.isArray(ns.interfaces)) continue;
      n.names.set(ns.netns, ns.name);
      const ifaces = ns.interfaces as ReadonlyArray<{ addrs?: unknown }>;
      n.locals.set(ns.netns, new Set(ifaces.flatMap((i) => (Array.isArray(i.addrs) ? i.addrs.map((a: unknown) => String(a).split('/')[0]!) : []))));
    }
    if (s.dropReasons) n.reasons = new Map(s.dropReasons);
    let modelError: string | null = null;
    try {
      this.model = buildClusterModel(this.topologies());
    } catch (err) {
      modelError = (err as Error).message;
    }
    return { node: n, first, modelError };
  }

  /**
   * One hop batch of a node: its sequence checked for gaps, late batches and copies
   * (sequence.ts), its losses counted, its events reconstructed. `dropped`: batches its agent says
   * it dropped just before this one (the Hoptrace-Dropped header): those are not gaps, they are
   * the agent's. `epoch`: the agent run it comes from (its message id's; a restarted agent numbers
   * from 1 again). A copy of a batch already taken (JetStream redelivered it) is skipped: its
   * events are not reconstructed twice.
   */
  batch(name: string, b: { readonly events: readonly HopEvent[]; readonly seq: number; readonly lostKernel: number; readonly clockNs?: number }, nowMs: number, dropped = 0, epoch = ''): BatchOutcome {
    const n = this.node(name, nowMs);
    n.lastSeenMs = nowMs;
    let seq = n.seqs.get(epoch);
    if (!seq) {
      seq = new BatchSequence();
      n.seqs.set(epoch, seq);
      // A few runs back are kept, for their late batches; older runs' missing batches stay counted.
      if (n.seqs.size > 4) n.seqs.delete(n.seqs.keys().next().value!);
    }
    const heartbeat = b.events.length === 0;
    const fingerprint = b.clockNs !== undefined && b.clockNs > 0 ? b.clockNs : (b.events[0]?.t ?? 0);
    const { verdict, gaps } = seq.take(b.seq, heartbeat, fingerprint, dropped);
    if (verdict === 'duplicate') {
      n.duplicates++;
      return { node: n, verdict, gaps: 0 };
    }
    n.gaps += gaps;
    n.agentDropped += dropped;
    n.lastSeq = seq.high;
    if (!heartbeat) n.batches++;
    else n.heartbeats++;
    n.lost += b.lostKernel;
    for (const ev of b.events) this.push(n, ev, nowMs);
    if (b.clockNs !== undefined && b.clockNs > 0) {
      n.clocked = true;
      if (b.clockNs > n.lastT) {
        n.lastT = b.clockNs;
        n.lastArrivalMs = nowMs;
      }
    }
    return { node: n, verdict, gaps };
  }

  /**
   * A node's depth batch: notes join their packets in its engine, netfilter steps wait in its
   * queue. A copy of one already taken (its `seq` in the agent run's depth sequence: JetStream
   * redelivered it) is skipped — its notes would be attached twice; returns null then.
   */
  depth(name: string, b: DepthBatch, nowMs: number, epoch = ''): PipelineNode | null {
    const n = this.node(name, nowMs);
    n.lastSeenMs = nowMs;
    if (b.seq > 0) {
      let seq = n.depthSeqs.get(epoch);
      if (!seq) {
        seq = new BatchSequence();
        n.depthSeqs.set(epoch, seq);
        if (n.depthSeqs.size > 4) n.depthSeqs.delete(n.depthSeqs.keys().next().value!);
      }
      const fingerprint = b.notes[0]?.t ?? b.netfilter[0]?.t ?? 0;
      if (seq.take(b.seq, false, fingerprint).verdict === 'duplicate') {
        n.duplicates++;
        return null;
      }
    }
    for (const note of b.notes) {
      n.notes++;
      n.engine.pushNote(note);
    }
    for (const ev of b.netfilter) {
      n.netfilter++;
      n.steps?.add(ev);
    }
    return n;
  }

  push(n: PipelineNode, ev: HopEvent, nowMs: number): void {
    n.events++;
    n.engine.push(ev);
    if (ev.t > n.lastT) {
      n.lastT = ev.t;
      n.lastArrivalMs = nowMs;
    }
  }

  /**
   * Advances each node's reconstruction on its own clock — its watermark, or extrapolated with
   * `nowMs` for a node without one or no longer `live` — and gives the stitcher each node's
   * watermark and `nowMs`: stitched packets ready. `live`: whether a node is still expected to
   * send (the hub's view: its agent answers, it was heard from lately); absent: every node.
   */
  tick(nowMs: number, live?: (node: string) => boolean): ClusterPacket[] {
    for (const n of this.nodes.values()) {
      if (n.lastArrivalMs === 0) continue;
      const extrapolate = !n.clocked || (live !== undefined && !live(n.name));
      const nodeNow = extrapolate ? n.lastT + (nowMs - n.lastArrivalMs) * 1e6 : n.lastT;
      n.engine.advance(nodeNow);
      const done = n.engine.drain();
      for (const p of n.steps ? n.steps.pass(done, nodeNow) : done) this.stitcher.push(n.name, p, nowMs);
      this.stitcher.watermark(n.name, Math.min(n.engine.pendingSince(), n.steps?.earliest ?? Number.POSITIVE_INFINITY));
    }
    return this.stitcher.drain(nowMs, live);
  }

  /** End of input: everything held, stitched. */
  flushAll(nowMs: number): ClusterPacket[] {
    for (const n of this.nodes.values()) {
      const done = n.engine.flush();
      for (const p of n.steps ? n.steps.flush(done) : done) this.stitcher.push(n.name, p, nowMs);
    }
    return this.stitcher.drain(Number.POSITIVE_INFINITY);
  }

  topologies(): Map<string, Topology> {
    return new Map([...this.nodes.values()].filter((x) => x.topology).map((x) => [x.name, x.topology!]));
  }

  /** Every node's latest topology as one, each namespace with its `node`. */
  clusterTopology(): ClusterTopology {
    return mergeTopologies(this.topologies());
  }
}

/** A stitched packet where a Packet is taken (replay, export): its hops are Hops with `node` and `tNode`. */
export function asPacket(p: ClusterPacket): Packet {
  return p as unknown as Packet;
}

/**
 * A cluster recording's pipeline (`record --hub` files): one node per topology record whose
 * model carries `node` (its topology, drop reasons), or null for a one-host recording. Used by
 * `replay`/`export` (server/recording/replay.ts) and the dashboard's replay player alike.
 * `netfilter`: the recording's header says its session traced netfilter rules.
 */
export function recordingPipeline(models: Iterable<unknown>, fallbackReasons: ReadonlyMap<number, string>, opts: { readonly netfilter?: boolean } = {}): ClusterPipeline | null {
  const nodes = new Map<string, ParsedSnapshot>();
  for (const model of models) {
    const m = model as { node?: unknown; namespaces?: unknown; dropReasons?: unknown } | null;
    if (typeof m?.node !== 'string' || !Array.isArray(m.namespaces)) continue;
    const reasons = m.dropReasons && typeof m.dropReasons === 'object'
      ? new Map(Object.entries(m.dropReasons as Record<string, unknown>).filter(([, v]) => typeof v === 'string').map(([k, v]) => [Number(k), v as string]))
      : null;
    nodes.set(m.node, { node: m.node, topology: m as unknown as Topology, t: 0, wallMs: 0, dropReasons: reasons ?? fallbackReasons, agent: null, capability: null });
  }
  if (nodes.size === 0) return null;
  // A recording of a session with netfilter (its header says so): each node's steps join its packets.
  const pipeline = new ClusterPipeline(opts.netfilter ? { netfilter: true } : {});
  for (const s of nodes.values()) pipeline.snapshot(s, 0);
  return pipeline;
}

/**
 * Feeds a recorded event (times on the recording's one clock) to a recording's pipeline; every
 * 250 ms of recorded time the reconstruction and stitching advance: what is ready comes back.
 */
export class RecordingStitch {
  private nextTick = 0;
  constructor(readonly pipeline: ClusterPipeline) {}

  push(ev: HopEvent & { readonly node: string }): ClusterPacket[] {
    const ms = ev.t / 1e6;
    this.pipeline.push(this.pipeline.node(ev.node, ms), ev, ms);
    if (ms < this.nextTick) return [];
    this.nextTick = ms + 250;
    return this.pipeline.tick(ms);
  }

  /**
   * A recorded note or netfilter step with its `node` (recordings of hub sessions with depth):
   * it joins that node's packets, as the live hub attached it. Its `node` is left out of the
   * packet, as live.
   */
  note(n: HopNote & { readonly node: string }): void {
    const { node, ...note } = n;
    this.pipeline.depth(node, { notes: [note], netfilter: [], seq: 0 }, note.t / 1e6);
  }

  netfilter(ev: NetfilterEvent & { readonly node: string }): void {
    const { node, ...step } = ev;
    this.pipeline.depth(node, { notes: [], netfilter: [step], seq: 0 }, step.t / 1e6);
  }

  finish(): ClusterPacket[] {
    return this.pipeline.flushAll(Number.POSITIVE_INFINITY);
  }
}
