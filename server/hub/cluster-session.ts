/**
 * One session of the hub (issue 17): what POST /api/sessions asks of the cluster (filter, depth,
 * sample; every node or the nodes named), or the cluster session `serve --hub --filter` starts.
 * Each session runs its own ClusterPipeline (shared/cluster/pipeline.ts — the one per-node
 * reconstruction and stitching the hub, `record --hub` and replay share; notes and netfilter
 * steps join their node's packets there), and gives each stitched packet its expected path
 * across the nodes' models (shared/cluster/expect.ts), rebuilt when a node's snapshot changes.
 * The session also keeps what each node answered when asked for it: running, refused (and why),
 * or not answering.
 */
import type { HopBatch } from '../../shared/wire.js';
import type { DepthBatch } from '../../shared/netfilter/wire.js';
import type { Packet } from '../../shared/packet.js';
import type { RecordingStatus, SessionDepth, SessionInfo, SessionState } from '../../shared/api-types.js';
import { parseFilter, packetMatches } from '../../shared/filter/index.js';
import type { ClusterPacket, ClockOffset } from '../../shared/cluster/stitch.js';
import { ClusterPipeline, type BatchOutcome, type ParsedSnapshot } from '../../shared/cluster/pipeline.js';
import { ClusterExpectations, type AnnotatedClusterPacket } from '../../shared/cluster/expect.js';

export interface ClusterSessionSpec {
  /** Canonical filter text ('' for every packet). */
  readonly filter: string;
  readonly sample: number;
  readonly depth: SessionDepth;
  /** The nodes asked; null: every node, those that come later too. */
  readonly nodes: readonly string[] | null;
  /** Started by `serve --hub` itself: never reaped for want of watchers. */
  readonly pinned: boolean;
}

/** What a node answered when asked for the session. */
export interface NodeSessionStatus {
  readonly node: string;
  /** 'starting' until it answers; 'refused' with the agent's reason; 'lost' when no agent answers. */
  readonly state: 'starting' | 'running' | 'refused' | 'lost';
  readonly error?: string;
  readonly events: number;
  /** Events the node's kernel lost, or its agent dropped for a slow bus. */
  readonly lost: number;
  /** Batches missing in the node's sequence for this session. */
  readonly gaps: number;
  readonly notes: number;
  readonly netfilter: number;
}

/** A hub session as GET /api/sessions lists it: the single-host shape, plus each node's part. */
export interface ClusterSessionInfo extends SessionInfo {
  readonly nodes: readonly NodeSessionStatus[];
}

export interface ClusterSessionOptions {
  readonly packetsKept: number;
  readonly holdMs?: number;
  readonly maxHoldMs?: number;
  /** Told when the expected-path simulator trips over a model (once per message). */
  readonly log?: (line: string) => void;
}

/** What a recording of the session (server/hub/hub-recording.ts) is given: every batch and snapshot as the session takes them. */
export interface SessionTap {
  batch(node: string, batch: HopBatch, dropped: number): void;
  /** A node's depth batch (notes, netfilter steps), sessions with depth. */
  depth(node: string, batch: DepthBatch): void;
  snapshot(snap: ParsedSnapshot): void;
}

export class ClusterSession {
  readonly createdAt = new Date();
  lastActive = Date.now();
  /** /cluster sockets following it (and a stats session counting it). */
  watchers = 0;
  /** A recording of it is running (never reaped meanwhile). */
  recording = false;
  /** Its running or last recording, set by the hub's recordings (server/hub/hub-recording.ts). */
  recordingStatus: (() => RecordingStatus | null) | null = null;
  /** Recordings tapping what it takes. */
  readonly taps = new Set<SessionTap>();
  packetsTotal = 0;
  /** This session's per-node reconstruction and stitching. */
  readonly pipeline: ClusterPipeline;
  /** What each node answered when asked for the session. */
  private readonly answers = new Map<string, { state: NodeSessionStatus['state']; error?: string }>();
  private expectations: ClusterExpectations | null = null;
  private readonly ring: AnnotatedClusterPacket[] = [];
  private accept: (p: Packet) => boolean;

  /**
   * The cluster session of `serve --hub --filter 'pod NAME'` before any node that has the pod sent
   * its topology: what it waits for (one sentence); no agent is asked meanwhile. Null otherwise.
   */
  waiting: string | null = null;

  constructor(readonly id: string, public spec: ClusterSessionSpec, private readonly opts: ClusterSessionOptions) {
    const ast = parseFilter(spec.filter);
    this.accept = (p) => packetMatches(ast, p);
    this.pipeline = new ClusterPipeline({
      stitch: { ...(opts.holdMs !== undefined ? { holdMs: opts.holdMs } : {}), ...(opts.maxHoldMs !== undefined ? { maxHoldMs: opts.maxHoldMs } : {}) },
      netfilter: spec.depth.netfilter,
    });
  }

  /** The nodes to ask, of those known (none while it waits for its filter to resolve). */
  targets(known: Iterable<string>): string[] {
    if (this.waiting !== null) return [];
    return this.spec.nodes ? [...this.spec.nodes] : [...known];
  }

  /**
   * A new filter (the cluster session's `pod NAME` resolved again: the pod came or moved): packets
   * are judged by it from now on, and every node is asked for it anew (a start, not a renewal:
   * its agent restarts the trace).
   */
  refilter(filter: string): void {
    const ast = parseFilter(filter);
    this.spec = { ...this.spec, filter };
    this.accept = (p) => packetMatches(ast, p);
    this.waiting = null;
    this.answers.clear();
  }

  /** The request each target node's agent gets (and again at every renewal). */
  request(leaseMs: number): object {
    return {
      op: 'start', session: this.id, filter: this.spec.filter, leaseMs,
      ...(this.spec.sample > 1 ? { sample: this.spec.sample } : {}),
      ...(this.spec.depth.notes ? { notes: true } : {}),
      ...(this.spec.depth.netfilter ? { netfilter: true } : {}),
    };
  }

  setStatus(node: string, state: NodeSessionStatus['state'], error?: string): void {
    this.answers.set(node, { state, ...(error !== undefined ? { error } : {}) });
  }

  status(node: string): NodeSessionStatus['state'] | undefined {
    return this.answers.get(node)?.state;
  }

  /**
   * A node's topology snapshot (already checked and modelled by the hub): its names from now on,
   * and the expected paths rebuilt over every node's model (connections NATed so far carry over).
   */
  snapshot(snap: ParsedSnapshot, nowMs: number): void {
    const { modelError } = this.pipeline.snapshot(snap, nowMs);
    for (const t of this.taps) t.snapshot(snap);
    if (modelError) return;
    try {
      this.expectations = new ClusterExpectations(this.pipeline.topologies(), this.expectations ?? undefined, (m) => this.opts.log?.(`hub: session ${this.id}: ${m}`));
    } catch (err) {
      this.opts.log?.(`hub: session ${this.id}: expected paths not rebuilt: ${(err as Error).message}`);
    }
  }

  /**
   * A node's hop batch (`dropped`: batches its agent said it dropped before it; `epoch`: the
   * agent run it comes from): what it was in the node's sequence and the change to its gaps. A
   * copy (redelivered) is neither rebuilt nor recorded again.
   */
  hops(node: string, batch: HopBatch, nowMs: number, dropped = 0, epoch = ''): BatchOutcome {
    const out = this.pipeline.batch(node, batch, nowMs, dropped, epoch);
    if (out.verdict !== 'duplicate') for (const t of this.taps) t.batch(node, batch, dropped);
    return out;
  }

  /** A node's depth batch: notes join their packets, netfilter steps wait for theirs. */
  depth(node: string, batch: DepthBatch, nowMs: number, epoch = ''): void {
    // A copy (redelivered) is neither attached nor recorded again.
    if (!this.pipeline.depth(node, batch, nowMs, epoch)) return;
    for (const t of this.taps) t.depth(node, batch);
  }

  /**
   * Advances each node's reconstruction on its own clock and the stitcher on the nodes'
   * watermarks and the hub's clock (`live`: nodes still waited for); returns new packets.
   */
  tick(nowMs = Date.now(), live?: (node: string) => boolean): AnnotatedClusterPacket[] {
    return this.collect(this.pipeline.tick(nowMs, live));
  }

  /** Gives out everything held (tests, shutdown). */
  flushAll(): AnnotatedClusterPacket[] {
    return this.collect(this.pipeline.flushAll(Date.now()));
  }

  packets(limit: number): AnnotatedClusterPacket[] {
    return this.ring.slice(-limit);
  }

  offsets(): ClockOffset[] {
    return this.pipeline.stitcher.offsets();
  }

  private collect(out: ClusterPacket[]): AnnotatedClusterPacket[] {
    const fresh: AnnotatedClusterPacket[] = [];
    for (const raw of out) {
      // The filter applies to the whole packet: a piece alone may not show what it names.
      if (!this.accept(raw as unknown as Packet)) continue;
      const p = this.expectations ? this.expectations.annotate(raw) : { ...raw, expected: null, divergence: null };
      this.ring.push(p);
      fresh.push(p);
      this.packetsTotal++;
    }
    if (this.ring.length > this.opts.packetsKept) this.ring.splice(0, this.ring.length - this.opts.packetsKept);
    return fresh;
  }

  nodeStatus(): NodeSessionStatus[] {
    const names = new Set([...this.answers.keys(), ...[...this.pipeline.nodes.values()].filter((n) => n.batches + n.heartbeats + n.notes + n.netfilter > 0).map((n) => n.name)]);
    return [...names].sort((a, b) => a.localeCompare(b)).map((node) => {
      const p = this.pipeline.nodes.get(node);
      return {
        node, ...(this.answers.get(node) ?? { state: 'starting' as const }),
        events: p?.events ?? 0, lost: p?.lost ?? 0, gaps: p?.gaps ?? 0, notes: p?.notes ?? 0, netfilter: p?.netfilter ?? 0,
      };
    });
  }

  info(): ClusterSessionInfo {
    const nodes = this.nodeStatus();
    const sum = (k: 'events' | 'lost' | 'notes' | 'netfilter'): number => nodes.reduce((a, n) => a + n[k], 0);
    // Running while any node traces it; starting while any has not answered; failed when none can.
    const state: SessionState = nodes.some((n) => n.state === 'running') ? 'running' : nodes.some((n) => n.state === 'starting') ? 'starting' : 'failed';
    const { depth } = this.spec;
    return {
      id: this.id,
      filter: this.spec.filter,
      state,
      createdAt: this.createdAt.toISOString(),
      watchers: this.watchers,
      recording: this.recording,
      ...(this.recordingStatus ? { recordingStatus: this.recordingStatus() } : {}),
      ...(this.spec.pinned ? { pinned: true } : {}),
      // The bpftraces run on the nodes: no pid here.
      bpftrace: { pid: null, restarts: 0, lastExit: null, sharedBy: 1 },
      events: sum('events'),
      lostKernel: sum('lost'),
      packets: this.packetsTotal,
      sampleRate: this.spec.sample,
      depth,
      ...(depth.notes || depth.netfilter
        ? { depthEvents: { notes: sum('notes'), netfilter: sum('netfilter') }, depthWarnings: nodes.filter((n) => n.state === 'refused').map((n) => `${n.node}: ${n.error ?? 'refused'}`) }
        : {}),
      nodes,
    };
  }
}
