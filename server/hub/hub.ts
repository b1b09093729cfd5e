/**
 * The hub of `hoptrace serve --hub` (issue 17): reads every node's stream from JetStream through
 * a durable consumer (a restarted hub resumes where it left off), keeps a model per node (its
 * topology snapshot and its own packet reconstruction, on its own clock), links the nodes into a
 * cluster model (shared/cluster/model.ts), and stitches the pieces of a packet that crossed
 * nodes into one (shared/cluster/stitch.ts), with the nodes' clock offsets. Each stitched packet
 * gets its expected path across the nodes' models and its divergence (shared/cluster/expect.ts).
 *
 * It asks each node's agent for the cluster session (filter, sample) over request/reply and
 * renews it while it runs, so agents trace only what a hub wants.
 *
 * Whatever arrives on the bus, the hub does not fall over: a message on a subject that is not a
 * node's, a payload that is not a hop batch or a snapshot, or one over the size limit is counted
 * by reason and dropped, and the reason is logged once per source.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ConsumerMessages, JsMsg, JetStreamManager } from '@nats-io/jetstream';
import type { Topology } from '../../shared/topology/model.js';
import type { Packet } from '../../shared/packet.js';
import { decodeBatch } from '../../shared/wire.js';
import { parseFilter, describeFilter, packetMatches } from '../../shared/filter/index.js';
import { STREAM, SESSION_HEADER, DROPPED_HEADER, droppedCount, controlSubject, parseSubject, type SessionReply } from '../../shared/cluster/subjects.js';
import type { ClusterModel } from '../../shared/cluster/model.js';
import type { ClusterPacket, ClockOffset } from '../../shared/cluster/stitch.js';
import { ClusterPipeline, parseSnapshot } from '../../shared/cluster/pipeline.js';
import { ClusterExpectations, type AnnotatedClusterPacket } from '../../shared/cluster/expect.js';
import { connectBus, ensureStream, type BusOptions, type RetentionOptions } from './connect.js';

export interface HubOptions {
  readonly bus: BusOptions;
  /** The stream's retention, when this hub makes the stream (or to change it). */
  readonly retention?: RetentionOptions;
  /** The durable consumer's name: a hub restarted with the same name resumes its position. */
  readonly durable?: string;
  /** The cluster session every agent is asked for. */
  readonly filter?: string;
  readonly sample?: number;
  /** Largest hop batch accepted (bytes; default 4 MiB) and most events in one (default 65 536). */
  readonly maxBatchBytes?: number;
  readonly maxBatchEvents?: number;
  /** Stitched packets kept for GET /api/cluster/packets (default 2000). */
  readonly packetsKept?: number;
  /** How long a piece waits for its other pieces (default 2000 ms). */
  readonly holdMs?: number;
  /** Most nodes kept (default 1024): a publisher inventing node names cannot grow the hub without bound. */
  readonly maxNodes?: number;
  /** How often sessions are asked for again (default 10 s; agents drop them after 3×). */
  readonly renewMs?: number;
  readonly log?: (line: string) => void;
}

export interface NodeInfo {
  readonly name: string;
  /**
   * 'up'; 'lost' when its agent did not answer the hub's last session request (killed, cut off);
   * 'silent' when nothing came from it for a minute though it answers.
   */
  readonly state: 'up' | 'lost' | 'silent';
  readonly namespaces: ReadonlyArray<{ readonly netns: number; readonly name: string; readonly node: string }>;
  readonly events: number;
  readonly batches: number;
  /** Events the node's kernel lost, or its agent dropped for a slow bus. */
  readonly lost: number;
  /** Batches missing in the sequence (dropped on the way, or before the hub's retention). */
  readonly gaps: number;
  readonly lastSeenMs: number;
  readonly session: { readonly ok: boolean; readonly error?: string } | null;
  /**
   * Hop batches the node's agent dropped (oldest first) because its bus buffer was full while
   * the bus was away or too slow, and the events in them: said by the agent in its snapshots.
   */
  readonly agentDropped: number;
  readonly agentDroppedEvents: number;
}

/** The hub's own part of a node: the pipeline's (shared/cluster/pipeline.ts) plus its session. */
interface NodeState {
  session: { ok: boolean; error?: string } | null;
  /** Its agent did not answer the last session request. */
  lost_: boolean;
}

/** Why a bus message was dropped. */
export type BadReason = 'foreign-subject' | 'bad-protobuf' | 'oversize' | 'bad-snapshot' | 'foreign-session' | 'too-many-nodes';

const SESSION_ID = 'hub';

export class Hub {
  private nc: NatsConnection | undefined;
  private messages: ConsumerMessages | undefined;
  /** Per-node reconstruction and the stitching: the same pipeline `record --hub` and replay run. */
  private readonly pipeline: ClusterPipeline;
  private readonly hubNodes = new Map<string, NodeState>();
  private readonly ring: AnnotatedClusterPacket[] = [];
  /** Each stitched packet's expected path across the nodes' models (rebuilt when a node's model changes). */
  private expectations: ClusterExpectations | null = null;
  private ticker: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private readonly logged = new Set<string>();
  private readonly log: (line: string) => void;
  readonly filterText: string;
  private readonly accept: (p: Packet) => boolean;
  readonly bad: Record<BadReason, number> = { 'foreign-subject': 0, 'bad-protobuf': 0, oversize: 0, 'bad-snapshot': 0, 'foreign-session': 0, 'too-many-nodes': 0 };
  packetsTotal = 0;

  constructor(private readonly opts: HubOptions) {
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const ast = parseFilter(opts.filter ?? '');
    this.filterText = describeFilter(ast);
    this.accept = (p) => packetMatches(ast, p);
    this.pipeline = new ClusterPipeline({
      stitch: { ...(opts.holdMs !== undefined ? { holdMs: opts.holdMs } : {}) },
      ...(opts.maxNodes !== undefined ? { maxNodes: opts.maxNodes } : {}),
    });
  }

  async start(): Promise<void> {
    const { jetstreamManager, jetstream, AckPolicy, DeliverPolicy } = await import('@nats-io/jetstream');
    this.nc = await connectBus({ ...this.opts.bus, name: 'hoptrace-hub' });
    await ensureStream(this.nc, this.opts.retention ?? {});
    const jsm = await jetstreamManager(this.nc);
    const durable = this.opts.durable ?? 'hoptrace-hub';
    try {
      await jsm.consumers.info(STREAM, durable);
    } catch {
      // A new hub starts a minute back — two of the agents' topology intervals, so it has every
      // live node's snapshot — then follows: not the whole retention (that is for `record --since`).
      await jsm.consumers.add(STREAM, {
        durable_name: durable, ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000,
        deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - 60_000).toISOString(),
      });
    }
    await this.loadSnapshots(jsm);
    const consumer = await jetstream(this.nc).consumers.get(STREAM, durable);
    this.messages = await consumer.consume({ max_messages: 256 });
    this.loop = (async () => {
      for await (const m of this.messages!) {
        try {
          this.onMessage(m);
        } catch (err) {
          // Never expected (every message is checked), but one message must not end the hub.
          this.dropOnce('bad-protobuf', m.subject, (err as Error).message);
        }
        m.ack();
      }
    })();
    this.ticker = setInterval(() => this.tick(), 250);
    this.renewTimer = setInterval(() => void this.askAll(), this.opts.renewMs ?? 10_000);
    this.ticker.unref();
    this.renewTimer.unref();
  }

  /**
   * Every node's latest topology snapshot, read straight from the stream: a hub restarted on its
   * durable consumer resumes after the snapshots it had already taken, and must know the nodes
   * (their namespace names, their addresses) before their next batches arrive.
   */
  private async loadSnapshots(jsm: JetStreamManager): Promise<void> {
    const info = await jsm.streams.info(STREAM, { subjects_filter: 'hoptrace.*.topology' });
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const where = parseSubject(subject);
      if (!where) continue;
      const m = await jsm.streams.getMessage(STREAM, { last_by_subj: subject }).catch(() => null);
      if (m) this.onSnapshot(where.node, { subject, data: m.data });
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    clearInterval(this.renewTimer);
    // Agents are told the session is over; one that does not hear it drops it when its lease ends.
    await Promise.all([...this.pipeline.nodes.keys()].map((n) => this.request(n, { op: 'stop', session: SESSION_ID }).catch(() => undefined)));
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
    await this.nc?.drain().catch(() => undefined);
  }

  /** Stitched packets with their expected paths, oldest first (the newest `limit`). */
  packets(limit = 1000): AnnotatedClusterPacket[] {
    return this.ring.slice(-limit);
  }

  offsets(): ClockOffset[] {
    return this.pipeline.stitcher.offsets();
  }

  /** Every node's latest topology as one, each namespace with its `node`. */
  clusterTopology(): Topology {
    return this.pipeline.clusterTopology();
  }

  get cluster(): ClusterModel {
    return this.pipeline.model;
  }

  nodeInfo(): NodeInfo[] {
    const now = Date.now();
    return [...this.pipeline.nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => {
      const h = this.hubNode(n.name);
      return {
        name: n.name,
        state: h.lost_ ? 'lost' : now - n.lastSeenMs < 60_000 ? 'up' : 'silent',
        namespaces: [...n.names].map(([netns, name]) => ({ netns, name, node: n.name })),
        events: n.events, batches: n.batches, lost: n.lost, gaps: n.gaps, lastSeenMs: n.lastSeenMs, session: h.session,
        // Said with the next batch (exact, per session) and in snapshots (all sessions, every 30 s).
        agentDropped: Math.max(n.agentDropped, n.snapshot?.agent?.droppedBatches ?? 0), agentDroppedEvents: n.snapshot?.agent?.droppedEvents ?? 0,
      };
    });
  }

  /** Gives out everything held (tests, shutdown). */
  flushAll(): void {
    this.collect(this.pipeline.flushAll(Date.now()));
  }

  private hubNode(name: string): NodeState {
    let h = this.hubNodes.get(name);
    if (!h) {
      h = { session: null, lost_: false };
      this.hubNodes.set(name, h);
    }
    return h;
  }

  private dropOnce(reason: BadReason, source: string, detail: string): void {
    this.bad[reason]++;
    const key = `${source}\u0000${reason}`;
    if (this.logged.has(key) || this.logged.size > 10_000) return;
    this.logged.add(key);
    this.log(`hub: dropped a message from ${source.slice(0, 120)} (${reason}: ${detail.slice(0, 200)}); further ones from there are only counted`);
  }

  private onMessage(m: JsMsg): void {
    const where = parseSubject(m.subject);
    if (!where) {
      this.dropOnce('foreign-subject', m.subject, 'not hoptrace.<node>.hops or .topology');
      return;
    }
    if (!this.pipeline.admits(where.node)) {
      this.dropOnce('too-many-nodes', m.subject, `already ${this.pipeline.nodes.size} nodes`);
      return;
    }
    const max = this.opts.maxBatchBytes ?? 4 * 1024 * 1024;
    if (m.data.length > max) {
      this.dropOnce('oversize', m.subject, `${m.data.length} bytes, limit ${max}`);
      return;
    }
    if (where.kind === 'topology') {
      this.onSnapshot(where.node, m);
      return;
    }
    const session = m.headers?.get(SESSION_HEADER) ?? '';
    if (session !== SESSION_ID) {
      this.dropOnce('foreign-session', m.subject, `session '${session.slice(0, 64)}' is not this hub's`);
      return;
    }
    let batch;
    try {
      batch = decodeBatch(m.data);
    } catch (err) {
      this.dropOnce('bad-protobuf', m.subject, (err as Error).message);
      return;
    }
    if (batch.events.length > (this.opts.maxBatchEvents ?? 65_536)) {
      this.dropOnce('oversize', m.subject, `${batch.events.length} events in one batch`);
      return;
    }
    this.pipeline.batch(where.node, batch, Date.now(), droppedCount(m.headers?.get(DROPPED_HEADER)));
  }

  private onSnapshot(node: string, m: Pick<JsMsg, 'subject' | 'data'>): void {
    const snap = parseSnapshot(node, m.data);
    if (typeof snap === 'string') {
      this.dropOnce('bad-snapshot', m.subject, snap);
      return;
    }
    const { first, modelError } = this.pipeline.snapshot(snap, Date.now());
    if (modelError) {
      this.dropOnce('bad-snapshot', m.subject, `cannot model it: ${modelError}`);
    } else {
      try {
        // Connections the old models' paths NATed carry over.
        this.expectations = new ClusterExpectations(this.pipeline.topologies(), this.expectations ?? undefined, (message) => this.log(`hub: ${message}`));
      } catch (err) {
        this.dropOnce('bad-snapshot', m.subject, `cannot model it: ${(err as Error).message}`);
      }
    }
    if (first) void this.ask(node);
  }

  private async request(node: string, body: object): Promise<SessionReply> {
    const r = await this.nc!.request(controlSubject(node), new TextEncoder().encode(JSON.stringify(body)), { timeout: 5000 });
    return JSON.parse(new TextDecoder().decode(r.data)) as SessionReply;
  }

  private async ask(node: string): Promise<void> {
    if (this.stopped) return;
    const n = this.hubNode(node);
    try {
      const r = await this.request(node, {
        op: 'start', session: SESSION_ID, filter: this.opts.filter ?? '', leaseMs: 3 * (this.opts.renewMs ?? 10_000),
        ...(this.opts.sample && this.opts.sample > 1 ? { sample: this.opts.sample } : {}),
      });
      if (!n.session?.ok && r.ok) this.log(`hub: node ${node} traces for the cluster session`);
      n.session = r.ok ? { ok: true } : { ok: false, error: String(r.error ?? 'refused') };
      if (!r.ok) this.log(`hub: node ${node} refused the session: ${n.session.error}`);
      if (n.lost_) this.log(`hub: node ${node} is back`);
      n.lost_ = false;
    } catch (err) {
      // No agent answers for it: the node is lost; the rest of the cluster goes on, and its
      // pieces already taken stay. Asked again at every renewal.
      if (!n.lost_) this.log(`hub: node ${node} is lost (its agent does not answer: ${(err as Error).message})`);
      n.lost_ = true;
      n.session = { ok: false, error: (err as Error).message };
    }
  }

  private async askAll(): Promise<void> {
    await Promise.all([...this.pipeline.nodes.keys()].map((n) => this.ask(n)));
  }

  /** Advances each node's reconstruction on its own clock, and the stitcher on the hub's. */
  private tick(): void {
    this.collect(this.pipeline.tick(Date.now()));
  }

  /** Calls `fn` with each lot of new stitched packets; returns the way to stop. */
  onPackets(fn: (packets: AnnotatedClusterPacket[]) => void): () => void {
    this.packetListeners.add(fn);
    return () => this.packetListeners.delete(fn);
  }

  private readonly packetListeners = new Set<(packets: AnnotatedClusterPacket[]) => void>();

  private collect(out: ClusterPacket[]): void {
    const keep = this.opts.packetsKept ?? 2000;
    const fresh: AnnotatedClusterPacket[] = [];
    for (const raw of out) {
      // The filter applies to the whole packet: a piece alone may not show what it names.
      if (!this.accept(raw as unknown as Packet)) continue;
      const p = this.expectations ? this.expectations.annotate(raw) : { ...raw, expected: null, divergence: null };
      this.ring.push(p);
      fresh.push(p);
      this.packetsTotal++;
    }
    if (this.ring.length > keep) this.ring.splice(0, this.ring.length - keep);
    if (fresh.length > 0) for (const l of this.packetListeners) l(fresh);
  }
}
