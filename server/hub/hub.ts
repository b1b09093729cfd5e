/**
 * The hub of `hoptrace serve --hub` (issue 17): reads every node's stream from JetStream through
 * a durable consumer (a restarted hub resumes where it left off), keeps a model per node (its
 * topology snapshot and its own packet reconstruction, on its own clock), links the nodes into a
 * cluster model (shared/cluster/model.ts), and stitches the pieces of a packet that crossed
 * nodes into one (shared/cluster/stitch.ts), with the nodes' clock offsets — through the one
 * ClusterPipeline (shared/cluster/pipeline.ts) `record --hub` and replay run too, one per
 * session. Each stitched packet gets its expected path across the nodes' models and its
 * divergence (shared/cluster/expect.ts).
 *
 * Sessions (server/hub/cluster-session.ts): the cluster session `--filter`/`--sample` name (id
 * `hub`), and those asked for through the REST API (POST /api/sessions: filter, sample, depth;
 * every node or the nodes named). Each is asked of its nodes' agents over request/reply and
 * renewed while it runs, so agents trace only what somebody asked for; what each node answered
 * (running, refused and why, not answering) is kept per node. Hop batches and depth batches
 * (notes, netfilter rule-trace steps) carry their session's id and are rebuilt per session;
 * the hub itself keeps each node's latest snapshot (its model, what a new session starts from).
 *
 * A session's filter may name pods and containers: they resolve on the node that has them
 * (shared/cluster/workloads.ts) before any agent is asked. The cluster session's (`serve --hub
 * --filter 'pod NAME'`) resolves once a node that has the pod sent its topology — until then it
 * waits, asks no agent, and health and /api/cluster say what it waits for — and again whenever a
 * snapshot changes the pod's addresses (every node is then asked for the new ones). Its recording and its latency view are
 * server/hub/hub-recording.ts and server/hub/hub-stats.ts; health() is what /api/health says.
 *
 * Whatever arrives on the bus, the hub does not fall over: a message on a subject that is not a
 * node's, a payload that is not a hop batch or a snapshot, or one over the size limit is counted
 * by reason and dropped, and the reason is logged once per source.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ConsumerMessages, JsMsg, JetStreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import type { Topology } from '../../shared/topology/model.js';
import type { HubHealth, SessionDepth } from '../../shared/api-types.js';
import { decodeBatch } from '../../shared/wire.js';
import { decodeDepthBatch } from '../../shared/netfilter/wire.js';
import { parseFilter, describeFilter, hasWorkloadFilters, resolveWorkloadFilters, type FilterAst } from '../../shared/filter/index.js';
import { clusterWorkloadDirectory, resolveClusterFilter } from '../../shared/cluster/workloads.js';
import { clusterCanTrace } from '../../shared/cluster/capability.js';
import { STREAM, SESSION_HEADER, DROPPED_HEADER, droppedCount, messageEpoch, controlSubject, parseSubject, type SessionReply } from '../../shared/cluster/subjects.js';
import type { ClusterModel } from '../../shared/cluster/model.js';
import type { ClockOffset } from '../../shared/cluster/stitch.js';
import { ClusterPipeline, parseSnapshot } from '../../shared/cluster/pipeline.js';
import type { AnnotatedClusterPacket } from '../../shared/cluster/expect.js';
import { diffTopology, type TopologyChange } from '../topology/watch.js';
import { ApiError } from '../service/errors.js';
import { connectBus, ensureStream, type BusOptions, type RetentionOptions } from './connect.js';
import { ClusterSession, type ClusterSessionSpec } from './cluster-session.js';

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
  /** How long a piece waits for its other pieces (default 2000 ms), and at most for a lagging node (default 30 s). */
  readonly holdMs?: number;
  readonly maxHoldMs?: number;
  /** Most nodes kept (default 1024): a publisher inventing node names cannot grow the hub without bound. */
  readonly maxNodes?: number;
  /** How often sessions are asked for again (default 10 s; agents drop them after 3×). */
  readonly renewMs?: number;
  /** How long an agent may take to start a session (bpftrace compiles and attaches; default 120 s). */
  readonly startTimeoutMs?: number;
  /** A REST session nobody watches or asks about for this long ends (default 60 s, as on a single host). */
  readonly graceMs?: number;
  /** Most sessions at once (default 64, as on a single host). */
  readonly maxSessions?: number;
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
  /** Batches missing in the sequence (dropped on the way, or before the hub's retention); a late one is no longer missing. */
  readonly gaps: number;
  /** Hop batches that came again (JetStream redelivered them): taken once. */
  readonly duplicates: number;
  readonly lastSeenMs: number;
  /** What it answered for the cluster session (`hub`): null before it was asked. */
  readonly session: { readonly ok: boolean; readonly error?: string } | null;
  /**
   * Hop batches the node's agent dropped (oldest first) because its bus buffer was full while
   * the bus was away or too slow, and the events in them: said by the agent in its snapshots.
   */
  readonly agentDropped: number;
  readonly agentDroppedEvents: number;
}

/** A node's topology changed (a namespace came or went, an interface, address, route or rule changed). */
export interface NodeTopologyChange extends Omit<TopologyChange, 'topology' | 'sinceNs'> {
  readonly node: string;
}

/** What POST /api/sessions asks of a hub (validated by the caller's schema). */
export interface ClusterSessionRequest {
  readonly filter: string;
  readonly sample?: number;
  readonly depth?: SessionDepth;
  /** Only these nodes; absent: every node, later ones too. */
  readonly nodes?: readonly string[];
}

/** The hub's own part of a node, beside the pipeline's node (its snapshot and counters over every session). */
interface NodeState {
  /** Its agent did not answer the last session request. */
  lost_: boolean;
}

/** Why a bus message was dropped. */
export type BadReason = 'foreign-subject' | 'bad-protobuf' | 'oversize' | 'bad-snapshot' | 'foreign-session' | 'too-many-nodes';

/** The cluster session of `serve --hub --filter` (REST session ids are 12 hex digits). */
const SESSION_ID = 'hub';

export class Hub {
  private nc: NatsConnection | undefined;
  private messages: ConsumerMessages | undefined;
  /**
   * Every node's latest snapshot, model and counters over all sessions: a pipeline given
   * snapshots only (each session's own pipeline rebuilds that session's packets).
   */
  private readonly registry: ClusterPipeline;
  private readonly hubNodes = new Map<string, NodeState>();
  private readonly sessions = new Map<string, ClusterSession>();
  /** Sessions ended lately: their batches still on the bus are not another hub's. */
  private readonly ended = new Set<string>();
  /** (session, node) pairs with a request in flight: not asked again meanwhile. */
  private readonly asking = new Set<string>();
  private ticker: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  /** When the hub's own bus connection last went or came back (0: never). */
  private busChangedMs = 0;
  private readonly logged = new Set<string>();
  private readonly log: (line: string) => void;
  /** Stitched packets (and their lots) dropped for /cluster socket.io clients too slow to take them (server/service/cluster-channel.ts). */
  readonly streamDrops = { packets: 0, lots: 0 };
  readonly bad: Record<BadReason, number> = { 'foreign-subject': 0, 'bad-protobuf': 0, oversize: 0, 'bad-snapshot': 0, 'foreign-session': 0, 'too-many-nodes': 0 };

  constructor(private readonly opts: HubOptions) {
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const ast = parseFilter(opts.filter ?? '');
    this.registry = new ClusterPipeline({ ...(opts.maxNodes !== undefined ? { maxNodes: opts.maxNodes } : {}) });
    // `pod NAME` / `container NAME`: resolved on the node that has it, once one has sent its
    // topology, and again whenever a topology changes its addresses (resolveClusterSession).
    if (hasWorkloadFilters(ast)) this.workloadFilter = ast;
    const session = this.newSession(SESSION_ID, {
      filter: this.workloadFilter ? '' : describeFilter(ast), sample: opts.sample ?? 1, depth: { notes: false, netfilter: false }, nodes: null, pinned: true,
    });
    this.sessions.set(SESSION_ID, session);
    this.resolveClusterSession();
  }

  /** The cluster session's filter as given, when it names pods or containers. */
  private readonly workloadFilter: FilterAst | null = null;

  /** The cluster session's filter: what its agents run (or, while it waits for its pod, as given). */
  get filterText(): string {
    const s = this.sessions.get(SESSION_ID);
    if (this.workloadFilter && (!s || s.waiting !== null)) return describeFilter(this.workloadFilter);
    return s?.spec.filter ?? '';
  }

  /** What the cluster session waits for (its pod not on any node known yet), null when it runs. */
  get clusterSessionWaiting(): string | null {
    return this.sessions.get(SESSION_ID)?.waiting ?? null;
  }

  /**
   * Resolves the cluster session's `pod NAME` on the nodes' latest topologies; returns whether
   * its filter changed (its agents are then asked again). While no node has the pod it waits;
   * once it ran, a pod no longer found keeps the addresses it had (the filter still shows them).
   */
  private resolveClusterSession(): boolean {
    const s = this.sessions.get(SESSION_ID);
    if (!this.workloadFilter || !s) return false;
    const r = resolveClusterFilter(this.workloadFilter, this.registry.topologies());
    if ('waiting' in r) {
      if (s.waiting !== null && s.waiting !== r.waiting) s.waiting = r.waiting;
      else if (s.waiting === null && s.spec.filter === '') s.waiting = r.waiting;
      return false;
    }
    if (s.waiting === null && s.spec.filter === r.filter) return false;
    this.log(`hub: cluster session '${describeFilter(this.workloadFilter)}' ${s.waiting === null ? 'now runs' : 'runs'} as '${r.filter}'`);
    s.refilter(r.filter);
    return true;
  }

  /** Stitched packets of the cluster session so far. */
  get packetsTotal(): number {
    return this.sessions.get(SESSION_ID)?.packetsTotal ?? 0;
  }

  /** A session starting from every node's latest snapshot. */
  private newSession(id: string, spec: ClusterSessionSpec): ClusterSession {
    const s = new ClusterSession(id, spec, {
      packetsKept: this.opts.packetsKept ?? 2000,
      ...(this.opts.holdMs !== undefined ? { holdMs: this.opts.holdMs } : {}),
      ...(this.opts.maxHoldMs !== undefined ? { maxHoldMs: this.opts.maxHoldMs } : {}),
      log: this.log,
    });
    const now = Date.now();
    for (const n of this.registry.nodes.values()) if (n.snapshot) s.snapshot(n.snapshot, now);
    return s;
  }

  async start(): Promise<void> {
    const { jetstreamManager, jetstream, AckPolicy, DeliverPolicy } = await import('@nats-io/jetstream');
    this.nc = await connectBus({ ...this.opts.bus, name: 'hoptrace-hub' });
    await ensureStream(this.nc, this.opts.retention ?? {});
    void (async () => {
      for await (const st of this.nc!.status()) if (st.type === 'disconnect' || st.type === 'reconnect') this.busChangedMs = Date.now();
    })().catch(() => undefined);
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
    this.renewTimer = setInterval(() => {
      this.reap();
      void this.askAll();
    }, this.opts.renewMs ?? 10_000);
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
    // Agents are told the sessions are over; one that does not hear it drops them when their lease ends.
    await Promise.all([...this.sessions.values()].flatMap((s) => s.targets(this.registry.nodes.keys()).map((n) => this.request(n, { op: 'stop', session: s.id }).catch(() => undefined))));
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
    await this.nc?.drain().catch(() => undefined);
  }

  /** Stitched packets of a session (default the cluster session) with their expected paths, oldest first (the newest `limit`). */
  packets(limit = 1000, session = SESSION_ID): AnnotatedClusterPacket[] {
    return this.sessions.get(session)?.packets(limit) ?? [];
  }

  /** Clock offsets from the session with the most joined pairs (every session's pairs measure the same clocks). */
  offsets(): ClockOffset[] {
    let best: ClockOffset[] = [];
    let most = -1;
    for (const s of this.sessions.values()) {
      const o = s.offsets();
      const n = o.reduce((a, x) => a + x.samples, 0);
      if (n > most) [best, most] = [o, n];
    }
    return best;
  }

  session(id: string): ClusterSession | undefined {
    return this.sessions.get(id);
  }

  listSessions(): ClusterSession[] {
    return [...this.sessions.values()];
  }

  /**
   * A session on every node (or the nodes named): the filter is checked before any agent is
   * asked (FilterError, as on a single host); resolves once every node answered (or did not in
   * time), each node's answer in the session's status. Refused by every node: an ApiError
   * naming each node's reason, and nothing is left running.
   */
  async createSession(req: ClusterSessionRequest): Promise<ClusterSession> {
    if (this.stopped) throw new ApiError(503, 'unavailable', 'the hub is shutting down');
    // `pod NAME` / `container NAME` resolve on the node that has the workload (its latest
    // topology), to addresses every node's agent can filter on: as on a single host, the session
    // and its agents only ever see a plain address filter (FilterError for an unknown name).
    const ast = parseFilter(req.filter);
    const filter = describeFilter(hasWorkloadFilters(ast) ? resolveWorkloadFilters(ast, clusterWorkloadDirectory(this.registry.topologies())) : ast);
    const max = this.opts.maxSessions ?? 64;
    if (this.sessions.size >= max) throw new ApiError(429, 'too-many-sessions', `the hub already has ${this.sessions.size} sessions (at most ${max}): delete one first`);
    const unknown = (req.nodes ?? []).filter((n) => !this.registry.nodes.has(n));
    if (unknown.length > 0) throw new ApiError(404, 'not-found', `no node ${unknown.map((n) => `'${n}'`).join(', ')} (known: ${[...this.registry.nodes.keys()].sort().join(', ') || 'none yet'})`);
    let id: string;
    do id = randomBytes(6).toString('hex');
    while (this.sessions.has(id));
    const s = this.newSession(id, {
      filter, sample: req.sample ?? 1, depth: req.depth ?? { notes: false, netfilter: false },
      nodes: req.nodes && req.nodes.length > 0 ? [...new Set(req.nodes)] : null, pinned: false,
    });
    const targets = s.targets(this.registry.nodes.keys());
    if (targets.length === 0) throw new ApiError(503, 'cannot-trace', 'no node has an agent yet: start `hoptrace agent --hub … --node NAME` on the nodes');
    this.sessions.set(id, s);
    await Promise.all(targets.map((n) => this.ask(n, s)));
    // The grace period counts from when the session could first be watched, as on a single host:
    // a start slower than it (bpftrace compiling on busy nodes) is not reaped while it starts.
    s.lastActive = Date.now();
    const nodes = s.nodeStatus();
    if (this.sessions.get(id) === s && !nodes.some((n) => n.state === 'running' || n.state === 'starting')) {
      await this.deleteSession(id);
      throw new ApiError(503, 'cannot-trace', `no node could run the session: ${nodes.map((n) => `${n.node}: ${n.error ?? n.state}`).join('; ')}`);
    }
    this.log(`hub: session ${id} ('${filter}') runs on ${nodes.filter((n) => n.state === 'running').map((n) => n.node).join(', ')}`);
    return s;
  }

  /** Ends a session on its nodes (the cluster session too, if asked). */
  async deleteSession(id: string): Promise<boolean> {
    const s = this.sessions.get(id);
    if (!s) return false;
    this.sessions.delete(id);
    this.ended.add(id);
    if (this.ended.size > 1000) this.ended.delete(this.ended.values().next().value!);
    for (const l of this.endListeners) l(id);
    await Promise.all(s.targets(this.registry.nodes.keys()).map((n) => this.request(n, { op: 'stop', session: id }).catch(() => undefined)));
    return true;
  }

  /** REST interest keeps an unwatched session for another grace period. */
  touch(s: ClusterSession): void {
    s.lastActive = Date.now();
  }

  private reap(): void {
    const grace = this.opts.graceMs ?? 60_000;
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.spec.pinned || s.watchers > 0 || s.recording || now - s.lastActive <= grace || s.nodeStatus().some((n) => n.state === 'starting')) continue;
      this.log(`hub: session ${s.id} ('${s.spec.filter}') stopped: nobody watched it for ${Math.round(grace / 1000)} s`);
      void this.deleteSession(s.id);
    }
  }

  private readonly endListeners = new Set<(id: string) => void>();

  /** Calls `fn` with the id of each session that ends; returns the way to stop. */
  onSessionEnd(fn: (id: string) => void): () => void {
    this.endListeners.add(fn);
    return () => this.endListeners.delete(fn);
  }

  /** Every node's latest topology as one, each namespace with its `node`. */
  clusterTopology(): Topology {
    return this.registry.clusterTopology();
  }

  get cluster(): ClusterModel {
    return this.registry.model;
  }

  nodeInfo(): NodeInfo[] {
    const now = Date.now();
    const cluster = this.sessions.get(SESSION_ID);
    const statuses = cluster?.nodeStatus() ?? [];
    return [...this.registry.nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => {
      const st = statuses.find((x) => x.node === n.name);
      return {
        name: n.name,
        state: this.nodeState(n.name, now),
        namespaces: [...n.names].map(([netns, name]) => ({ netns, name, node: n.name })),
        events: n.events, batches: n.batches, lost: n.lost, gaps: n.gaps, duplicates: n.duplicates, lastSeenMs: n.lastSeenMs,
        session: !st || st.state === 'starting' ? null : st.state === 'running' ? { ok: true } : { ok: false, error: st.error ?? st.state },
        // Said with the next batch (exact, per session) and in snapshots (all sessions, every 30 s).
        agentDropped: Math.max(n.agentDropped, n.snapshot?.agent?.droppedBatches ?? 0), agentDroppedEvents: n.snapshot?.agent?.droppedEvents ?? 0,
      };
    });
  }

  /** What /api/health says on a hub: its sessions, each node's state. */
  health(): HubHealth {
    const now = Date.now();
    const nodes = this.nodeInfo().map((n) => ({ ...n, capability: this.registry.nodes.get(n.name)?.snapshot?.capability ?? null }));
    const can = clusterCanTrace(nodes);
    return {
      sessions: this.sessions.size,
      nodes: nodes.map((n) => ({
        name: n.name, state: n.state, lastSeenS: Math.max(0, Math.round((now - n.lastSeenMs) / 1000)),
        ...(n.capability ? { canTrace: n.capability.canTrace } : {}),
      })),
      canTrace: can.ok,
      problems: can.problems,
      ...(this.clusterSessionWaiting !== null ? { clusterSession: { filter: this.filterText, waiting: this.clusterSessionWaiting } } : {}),
    };
  }

  private nodeState(name: string, now: number): NodeInfo['state'] {
    return this.hubNode(name).lost_ ? 'lost' : now - (this.registry.nodes.get(name)?.lastSeenMs ?? 0) < 60_000 ? 'up' : 'silent';
  }

  /**
   * Whether stitching still waits for a node's pieces (shared/cluster/stitch.ts): while it is up.
   * Right after the hub's own bus connection went or came back, a lost node is waited for too
   * (for the longest hold): every agent is reconnecting then, each in its own time, and one not
   * answering yet is not gone — its outbox comes once it is back.
   */
  private waitsFor(name: string, now: number): boolean {
    const state = this.nodeState(name, now);
    return state === 'up' || (state === 'lost' && now - this.busChangedMs < (this.opts.maxHoldMs ?? 30_000));
  }

  /** Gives out everything held (tests, shutdown). */
  flushAll(): void {
    for (const s of this.sessions.values()) this.emitPackets(s, s.flushAll());
  }

  private hubNode(name: string): NodeState {
    let h = this.hubNodes.get(name);
    if (!h) {
      h = { lost_: false };
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
      this.dropOnce('foreign-subject', m.subject, 'not hoptrace.<node>.hops, .depth or .topology');
      return;
    }
    if (!this.registry.admits(where.node)) {
      this.dropOnce('too-many-nodes', m.subject, `already ${this.registry.nodes.size} nodes`);
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
    const id = m.headers?.get(SESSION_HEADER) ?? '';
    const session = this.sessions.get(id);
    if (!session) {
      // A session this hub ended may still have batches on the way: not another hub's.
      if (!this.ended.has(id)) this.dropOnce('foreign-session', m.subject, `session '${id.slice(0, 64)}' is not this hub's`);
      return;
    }
    if (where.kind === 'depth') {
      const depth = this.decoded(m, decodeDepthBatch, (d) => d.notes.length + d.netfilter.length);
      if (!depth) return;
      const now = Date.now();
      this.registry.node(where.node, now).lastSeenMs = now;
      session.depth(where.node, depth, now, messageEpoch(m.headers?.get('Nats-Msg-Id')));
      return;
    }
    const batch = this.decoded(m, decodeBatch, (b) => b.events.length);
    if (!batch) return;
    const now = Date.now();
    const dropped = droppedCount(m.headers?.get(DROPPED_HEADER));
    // The session rebuilds it; the node's counters (over every session) are the registry's.
    const n = this.registry.node(where.node, now);
    n.lastSeenMs = now;
    const out = session.hops(where.node, batch, now, dropped, messageEpoch(m.headers?.get('Nats-Msg-Id')));
    if (out.verdict === 'duplicate') {
      // JetStream gave it again (not acknowledged in time, a hub restarted before its ack): taken once.
      n.duplicates++;
      return;
    }
    n.gaps += out.gaps;
    n.agentDropped += dropped;
    // An agent's heartbeat (no events, its clock only) is not a batch of hops.
    if (batch.events.length > 0) n.batches++;
    else n.heartbeats++;
    n.lost += batch.lostKernel;
    n.events += batch.events.length;
  }

  /** A batch's payload decoded and within the events limit, or null when it is not (counted, dropped). */
  private decoded<T>(m: JsMsg, decode: (data: Uint8Array) => T, events: (v: T) => number): T | null {
    let v: T;
    try {
      v = decode(m.data);
    } catch (err) {
      this.dropOnce('bad-protobuf', m.subject, (err as Error).message);
      return null;
    }
    const n = events(v);
    if (n > (this.opts.maxBatchEvents ?? 65_536)) {
      this.dropOnce('oversize', m.subject, `${n} events in one batch`);
      return null;
    }
    return v;
  }

  private onSnapshot(node: string, m: Pick<JsMsg, 'subject' | 'data'>): void {
    const snap = parseSnapshot(node, m.data);
    if (typeof snap === 'string') {
      this.dropOnce('bad-snapshot', m.subject, snap);
      return;
    }
    const now = Date.now();
    const change = diffTopology(this.registry.nodes.get(node)?.topology ?? null, snap.topology);
    const { first, modelError } = this.registry.snapshot(snap, now);
    if (modelError) this.dropOnce('bad-snapshot', m.subject, `cannot model it: ${modelError}`);
    // Each session's names and expected paths follow the node's model.
    for (const s of this.sessions.values()) s.snapshot(snap, now);
    // The cluster session's pod may be here now, or have moved: every node is asked for its addresses.
    if (this.resolveClusterSession()) void this.askAll();
    if (change.added.length + change.removed.length + change.changed.length > 0) {
      for (const l of this.topologyListeners) l({ node, ...change });
    }
    if (first) void this.askNode(node);
  }

  private readonly topologyListeners = new Set<(change: NodeTopologyChange) => void>();

  /** Calls `fn` when a node's topology changes (its first snapshot included); returns the way to stop. */
  onTopologyChange(fn: (change: NodeTopologyChange) => void): () => void {
    this.topologyListeners.add(fn);
    return () => this.topologyListeners.delete(fn);
  }

  private async request(node: string, body: object, timeout = 5000): Promise<SessionReply> {
    const r = await this.nc!.request(controlSubject(node), new TextEncoder().encode(JSON.stringify(body)), { timeout });
    return JSON.parse(new TextDecoder().decode(r.data)) as SessionReply;
  }

  /** Asks one node for one session (a start, or the renewal of one it runs). */
  private async ask(node: string, s: ClusterSession): Promise<void> {
    const key = `${s.id}\u0000${node}`;
    if (this.stopped || this.asking.has(key)) return;
    this.asking.add(key);
    const n = this.hubNode(node);
    const before = s.status(node);
    // A start waits for bpftrace to compile and attach on the node; a renewal is answered at once.
    const timeout = before === 'running' ? 5000 : (this.opts.startTimeoutMs ?? 120_000);
    try {
      const r = await this.request(node, s.request(3 * (this.opts.renewMs ?? 10_000)), timeout);
      if (this.sessions.get(s.id) !== s) return;
      if (r.ok) {
        if (before !== 'running') this.log(`hub: node ${node} traces for session ${s.id}`);
        s.setStatus(node, 'running');
      } else {
        const error = String(r.error ?? 'refused').slice(0, 500);
        if (before !== 'refused') this.log(`hub: node ${node} refused session ${s.id}: ${error}`);
        s.setStatus(node, 'refused', error);
      }
      if (n.lost_) this.log(`hub: node ${node} is back`);
      n.lost_ = false;
    } catch (err) {
      // No agent answers for it: the node is lost; the rest of the cluster goes on, and its
      // pieces already taken stay. Asked again at every renewal.
      if (!n.lost_) this.log(`hub: node ${node} is lost (its agent does not answer: ${(err as Error).message})`);
      n.lost_ = true;
      if (this.sessions.get(s.id) === s) s.setStatus(node, 'lost', (err as Error).message);
    } finally {
      this.asking.delete(key);
    }
  }

  /** A node the hub just heard of: asked for every session meant for every node. */
  private async askNode(node: string): Promise<void> {
    await Promise.all([...this.sessions.values()].filter((s) => s.targets(this.registry.nodes.keys()).includes(node)).map((s) => this.ask(node, s)));
  }

  private async askAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].flatMap((s) => s.targets(this.registry.nodes.keys()).map((n) => this.ask(n, s))));
  }

  /** Advances every session's reconstruction and stitching. */
  private tick(): void {
    const now = Date.now();
    const live = (node: string): boolean => this.waitsFor(node, now);
    for (const s of this.sessions.values()) this.emitPackets(s, s.tick(now, live));
  }

  /** Calls `fn` with each lot of new stitched packets and their session; returns the way to stop. */
  onPackets(fn: (packets: AnnotatedClusterPacket[], session: string) => void): () => void {
    this.packetListeners.add(fn);
    return () => this.packetListeners.delete(fn);
  }

  private readonly packetListeners = new Set<(packets: AnnotatedClusterPacket[], session: string) => void>();

  private emitPackets(s: ClusterSession, fresh: AnnotatedClusterPacket[]): void {
    if (fresh.length > 0) for (const l of this.packetListeners) l(fresh, s.id);
  }
}
