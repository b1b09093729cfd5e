/**
 * One session of the hub (issue 17): what POST /api/sessions asks of the cluster (filter, depth,
 * sample; every node or the nodes named), or the cluster session `serve --hub --filter` starts.
 * Each node's hop batches and depth batches of the session are rebuilt on that node's own clock
 * (shared/reconstruct.ts, notes joining their packets as in `trace --notes`; netfilter steps
 * attached to finished packets by a NetfilterStepsQueue as in `trace --netfilter`), then the
 * pieces are stitched across nodes (shared/cluster/stitch.ts). The session also keeps what each
 * node answered when asked for it: running, refused (and why), or not answering.
 */
import type { HopBatch } from '../../shared/wire.js';
import type { DepthBatch } from '../../shared/netfilter/wire.js';
import type { Packet } from '../../shared/packet.js';
import type { SessionDepth, SessionInfo, SessionState } from '../../shared/api-types.js';
import { Reconstructor, type ReconstructOptions } from '../../shared/reconstruct.js';
import { NetfilterStepsQueue } from '../../shared/netfilter/steps-queue.js';
import { parseFilter, packetMatches } from '../../shared/filter/index.js';
import { Stitcher, type ClusterPacket, type ClockOffset } from '../../shared/cluster/stitch.js';

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

interface Piece {
  readonly engine: Reconstructor;
  readonly steps: NetfilterStepsQueue | undefined;
  /** Newest event time seen (node clock) and when it arrived (hub ms): the node's "now" estimate. */
  lastT: number;
  lastArrivalMs: number;
  lastSeq: number;
  status: { state: NodeSessionStatus['state']; error?: string };
  events: number;
  lost: number;
  gaps: number;
  notes: number;
  netfilter: number;
}

export interface ClusterSessionOptions {
  /** Names, local addresses and drop reasons of a node (its latest topology snapshot). */
  readonly engineFor: (node: string) => ReconstructOptions;
  readonly packetsKept: number;
  readonly holdMs?: number;
}

export class ClusterSession {
  readonly createdAt = new Date();
  lastActive = Date.now();
  /** /cluster sockets following it. */
  watchers = 0;
  packetsTotal = 0;
  private readonly pieces = new Map<string, Piece>();
  private readonly stitcher: Stitcher;
  private readonly ring: ClusterPacket[] = [];
  private readonly accept: (p: Packet) => boolean;

  constructor(readonly id: string, readonly spec: ClusterSessionSpec, private readonly opts: ClusterSessionOptions) {
    const ast = parseFilter(spec.filter);
    this.accept = (p) => packetMatches(ast, p);
    this.stitcher = new Stitcher({ ...(opts.holdMs !== undefined ? { holdMs: opts.holdMs } : {}) });
  }

  /** The nodes to ask, of those known. */
  targets(known: Iterable<string>): string[] {
    return this.spec.nodes ? [...this.spec.nodes] : [...known];
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

  private piece(node: string): Piece {
    let p = this.pieces.get(node);
    if (!p) {
      p = {
        engine: new Reconstructor(this.opts.engineFor(node)),
        steps: this.spec.depth.netfilter ? new NetfilterStepsQueue() : undefined,
        lastT: 0, lastArrivalMs: 0, lastSeq: 0, status: { state: 'starting' }, events: 0, lost: 0, gaps: 0, notes: 0, netfilter: 0,
      };
      this.pieces.set(node, p);
    }
    return p;
  }

  setStatus(node: string, state: NodeSessionStatus['state'], error?: string): void {
    this.piece(node).status = { state, ...(error !== undefined ? { error } : {}) };
  }

  status(node: string): NodeSessionStatus['state'] | undefined {
    return this.pieces.get(node)?.status.state;
  }

  /** A node's hop batch; returns the batches missing before it. */
  hops(node: string, batch: HopBatch): number {
    const p = this.piece(node);
    const gaps = p.lastSeq !== 0 && batch.seq > p.lastSeq + 1 ? batch.seq - p.lastSeq - 1 : 0;
    p.gaps += gaps;
    p.lastSeq = batch.seq;
    p.lost += batch.lostKernel;
    for (const ev of batch.events) {
      p.events++;
      p.engine.push(ev);
      if (ev.t > p.lastT) {
        p.lastT = ev.t;
        p.lastArrivalMs = Date.now();
      }
    }
    return gaps;
  }

  /** A node's depth batch: notes join their packets in its engine, netfilter steps wait in its queue. */
  depth(node: string, batch: DepthBatch): void {
    const p = this.piece(node);
    for (const n of batch.notes) {
      p.notes++;
      p.engine.pushNote(n);
    }
    for (const ev of batch.netfilter) {
      p.netfilter++;
      p.steps?.add(ev);
    }
  }

  /** Advances each node's reconstruction on its own clock and the stitcher on the hub's; returns new packets. */
  tick(nowMs = Date.now()): ClusterPacket[] {
    for (const [node, p] of this.pieces) {
      if (p.lastArrivalMs === 0) continue;
      const nodeNow = p.lastT + (nowMs - p.lastArrivalMs) * 1e6;
      p.engine.advance(nodeNow);
      const done = p.engine.drain();
      for (const packet of p.steps ? p.steps.pass(done, nodeNow) : done) this.stitcher.push(node, packet, nowMs);
    }
    return this.collect(this.stitcher.drain(nowMs));
  }

  /** Gives out everything held (tests, shutdown). */
  flushAll(): ClusterPacket[] {
    for (const [node, p] of this.pieces) {
      const done = p.engine.flush();
      for (const packet of p.steps ? p.steps.flush(done) : done) this.stitcher.push(node, packet, Date.now());
    }
    return this.collect(this.stitcher.drain(Number.POSITIVE_INFINITY));
  }

  packets(limit: number): ClusterPacket[] {
    return this.ring.slice(-limit);
  }

  offsets(): ClockOffset[] {
    return this.stitcher.offsets();
  }

  private collect(out: ClusterPacket[]): ClusterPacket[] {
    const fresh: ClusterPacket[] = [];
    for (const p of out) {
      // The filter applies to the whole packet: a piece alone may not show what it names.
      if (!this.accept(p as unknown as Packet)) continue;
      this.ring.push(p);
      fresh.push(p);
      this.packetsTotal++;
    }
    if (this.ring.length > this.opts.packetsKept) this.ring.splice(0, this.ring.length - this.opts.packetsKept);
    return fresh;
  }

  nodeStatus(): NodeSessionStatus[] {
    return [...this.pieces].sort(([a], [b]) => a.localeCompare(b)).map(([node, p]) => ({
      node, ...p.status, events: p.events, lost: p.lost, gaps: p.gaps, notes: p.notes, netfilter: p.netfilter,
    }));
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
      recording: false,
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
