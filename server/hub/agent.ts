/**
 * `hoptrace agent`: one node's side of a cluster (issue 17). Runs the hop probes on this node
 * (server/trace-session.ts, as `trace` does) only for sessions a hub asked for over NATS
 * request/reply (hoptrace.<node>.control), and publishes what they see into JetStream:
 * hop batches in the live stream's protobuf (shared/wire.ts) on hoptrace.<node>.hops, and the
 * node's topology (its namespaces, modelled) on hoptrace.<node>.topology. A session with depth
 * (notes, and/or nft's rule trace beside the probes) also publishes those events, as the live
 * stream's DepthBatch, on hoptrace.<node>.depth, each just before the hop batch of the same moment.
 * A session this node cannot run (no nft for netfilter, …) is refused with the reason; the hub
 * reports it for this node and the other nodes go on.
 *
 * `--namespaces` limits the agent to some namespaces: the limit is compiled into the probe
 * program as namespace-inode comparisons, so other namespaces' hops never leave the kernel.
 * The selector is re-read every few seconds; when the namespaces it names change, the topology is
 * published again and running sessions are restarted with the new set.
 *
 * Batches wait in an outbox (shared/cluster/outbox.ts) and are published one at a time, in order,
 * each until JetStream acknowledges it: while NATS is away they wait, and go out in order once it
 * is back (a message id per batch lets JetStream drop a copy the client had already sent). The
 * outbox is bounded in bytes and batches (--buffer-mb, --buffer-batches); past a bound the oldest
 * waiting batch is dropped and counted. The counts reach the hub in the node's snapshots (`agent`)
 * and, as lost events, in the next batch: memory stays bounded whatever the bus does. A slow hub
 * does not slow the agent at all: the stream takes the batches (its retention bounds it).
 *
 * Every hop batch carries the agent's clock it vouches for (the hub's per-node watermark, shared/
 * cluster/stitch.ts): every hop before it is in this batch or an earlier one. A session that
 * published no hop batch for a second sends a heartbeat — a hop batch with no events, the clock
 * alone — through the same outbox, so it goes out behind the backlog; while one still waits
 * (the bus away) no other is made. The first comes sooner, 200 ms after a batch: the hub then
 * finishes the last packets of a burst without waiting a whole beat.
 */
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { encodeBatch } from '../../shared/wire.js';
import { encodeDepthBatch } from '../../shared/netfilter/wire.js';
import { parseFilter } from '../../shared/filter/index.js';
import { batchMessageId, controlSubject, depthSubject, hopsSubject, topologySubject, parseSessionRequest, SESSION_HEADER, DROPPED_HEADER, type NodeSnapshot, type SessionReply, type SessionRequest } from '../../shared/cluster/subjects.js';
import { TraceSession } from '../trace-session.js';
import { listNamespaces, type NamespaceEntry } from '../topology/namespaces.js';
import { discoverTopology } from '../topology/discover.js';
import { kernelNowNs, monotonicNamespaceOffsetNs } from '../clock.js';
import { loadDropReasons } from '../drop-reasons.js';
import { connectBus, ensureStream, type BusOptions, type RetentionOptions } from './connect.js';
import { Outbox, type OutboxItem, type OutboxLimits } from '../../shared/cluster/outbox.js';
import type { Topology } from '../../shared/topology/model.js';
import { cachedNoteSupport, checkNetfilterTracing, nftNetfilterSourceWith, type NetfilterSource, type NetfilterSourceFactory } from '../service/depth.js';
import type { NoteSupport } from '../capabilities.js';
import type { NodeCapability } from '../../shared/cluster/capability.js';

export interface AgentOptions {
  readonly bus: BusOptions;
  readonly node: string;
  /** Comma-separated namespace names; an entry ending in '*' is a prefix. Absent or '': every namespace. */
  readonly namespaces?: string;
  readonly log?: (line: string) => void;
  /** How often the selector is re-read (default 3000 ms) and the topology republished (default 30 s). */
  readonly rescanMs?: number;
  readonly topologyMs?: number;
  /** Batching, as the service's: at most this many events or this long (defaults 512, 50 ms). */
  readonly batchEvents?: number;
  readonly batchMs?: number;
  /** A running session with no hop batch for this long sends a heartbeat (default 1000 ms; 0: never). */
  readonly heartbeatMs?: number;
  /** Bounds of the outbox of batches waiting for the bus. */
  readonly buffer?: OutboxLimits;
  /** The stream's retention, when this agent makes the stream (or to change it). */
  readonly retention?: RetentionOptions;
  /** A session's TraceSession (replaceable in tests that have no bpftrace). */
  readonly traceFactory?: (o: { filter: string; sampleRate: number; netnsAllow: readonly number[] | undefined; notes: NoteSupport | undefined }) => TraceSession;
  /** Where a `netfilter` session's rule-trace events come from (default nft, server/netfilter). */
  readonly netfilterSource?: NetfilterSourceFactory;
  /** Whether this node can trace (its preflight), said in every snapshot: a hub's `canTrace` summarises its nodes'. */
  readonly capability?: NodeCapability;
}

/** Wait before a batch the bus did not take is tried again. */
const RETRY_MS = 250;
const DEFAULT_LEASE_MS = 30_000;
/** The first heartbeat after a batch of hops: past the hub's reorder window (50 ms) and bpftrace's pipe. */
const QUICK_BEAT_MS = 200;

/** Which namespaces a selector names. */
export function selectNamespaces<T extends { name: string }>(all: readonly T[], selector: string): T[] {
  const entries = selector.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) return [...all];
  return all.filter((n) => entries.some((e) => (e.endsWith('*') ? n.name.startsWith(e.slice(0, -1)) : n.name === e)));
}

export function checkSelector(selector: string): string {
  for (const e of selector.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!/^[A-Za-z0-9_.:@-]{1,128}\*?$/.test(e)) throw new Error(`--namespaces: '${e.slice(0, 80)}' is not a namespace name or prefix* (letters, digits, . _ : @ -)`);
  }
  return selector;
}

interface AgentSession {
  readonly id: string;
  readonly filter: string;
  readonly sample: number;
  readonly notes: boolean;
  readonly netfilter: boolean;
  trace: TraceSession | null;
  /** nft's rule trace of a `netfilter` session, for the session's whole life (bpftrace restarts do not touch it). */
  nf: NetfilterSource | null;
  pendingNotes: HopNote[];
  pendingNetfilter: NetfilterEvent[];
  depthSeq: number;
  /** Settles when the session's bpftrace (and nft trace) is attached, or could not be. */
  ready: Promise<void> | undefined;
  lease: NodeJS.Timeout | undefined;
  pending: HopEvent[];
  timer: NodeJS.Timeout | undefined;
  seq: number;
  lostKernel: number;
  /** When its last hop batch (or heartbeat) was made (Date.now()), and whether it was a batch of hops. */
  lastBatchMs: number;
  lastWasHops: boolean;
  /** How far behind the agent's clock its newest hop was when its last batch was made (ns). */
  lagNs: number;
  /** Its heartbeat waiting in the outbox, and how many it made (their message ids). */
  beat: OutboxItem | null;
  beats: number;
}

export class Agent {
  readonly node: string;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private sub: Subscription | undefined;
  private readonly sessions = new Map<string, AgentSession>();
  private namespaces: NamespaceEntry[] = [];
  private netnsKey = '';
  private rescanTimer: NodeJS.Timeout | undefined;
  private topoTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: (line: string) => void;
  /** Batches waiting for the bus, bounded; its drops are counted there. */
  readonly outbox: Outbox;
  /** Dropped events not yet reported as lost in a batch. */
  private unreported = 0;
  private sending = false;
  /** Batches published and acknowledged. */
  published = 0;
  /** Publish attempts the bus did not take (retried); whether the last one failed. */
  failedAttempts = 0;
  private failing = false;
  private topology: Topology | null = null;
  /** What this kernel supports of the notes tier, detected on the first notes session. */
  private readonly noteSupport = cachedNoteSupport();

  constructor(private readonly opts: AgentOptions) {
    this.node = opts.node;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    if (opts.namespaces) checkSelector(opts.namespaces);
    this.outbox = new Outbox(opts.buffer ?? {});
  }

  /** Connects, publishes the topology and waits for session requests. */
  async start(): Promise<void> {
    const { jetstream } = await import('@nats-io/jetstream');
    this.nc = await connectBus({ ...this.opts.bus, name: `hoptrace-agent ${this.node}` });
    await ensureStream(this.nc, this.opts.retention ?? {});
    this.js = jetstream(this.nc);
    if (this.clockOffsetNs !== 0) this.log(`agent ${this.node}: this process's monotonic clock is ${this.clockOffsetNs / 1e9} s off the kernel's (a time namespace): hops are published on the agent's clock`);
    await this.rescan(true);
    this.sub = this.nc.subscribe(controlSubject(this.node), { callback: (err, msg) => { if (!err) void this.onControl(msg); } });
    this.rescanTimer = setInterval(() => void this.rescan(false).catch((e: unknown) => this.log(`agent ${this.node}: ${(e as Error).message}`)), this.opts.rescanMs ?? 3000);
    this.topoTimer = setInterval(() => void this.publishTopology().catch((e: unknown) => this.log(`agent ${this.node}: topology: ${(e as Error).message}`)), this.opts.topologyMs ?? 30_000);
    this.rescanTimer.unref();
    this.topoTimer.unref();
    const beatMs = this.opts.heartbeatMs ?? 1000;
    if (beatMs > 0) {
      this.beatTimer = setInterval(() => this.heartbeats(beatMs), Math.max(10, Math.min(100, beatMs / 4)));
      this.beatTimer.unref();
    }
  }

  get sessionIds(): string[] {
    return [...this.sessions.keys()];
  }

  /** Inodes of the namespaces the agent is limited to; undefined when not limited. */
  get netnsAllow(): number[] | undefined {
    return this.opts.namespaces ? this.namespaces.map((n) => n.netns) : undefined;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.rescanTimer);
    clearInterval(this.topoTimer);
    clearInterval(this.beatTimer);
    this.sub?.unsubscribe();
    await Promise.all([...this.sessions.keys()].map((id) => this.stopSession(id)));
    // What waits is given a moment to go out (a bus that is away gets no more).
    const end = Date.now() + 2000;
    while (this.outbox.length > 0 && !this.failing && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await this.nc?.drain().catch(() => undefined);
  }

  private async rescan(first: boolean): Promise<void> {
    const all = await listNamespaces();
    const chosen = selectNamespaces(all, this.opts.namespaces ?? '');
    const key = chosen.map((n) => n.netns).sort((a, b) => a - b).join(',');
    if (!first && key === this.netnsKey) return;
    this.namespaces = chosen;
    this.netnsKey = key;
    await this.publishTopology();
    if (!first && this.opts.namespaces) {
      this.log(`agent ${this.node}: namespaces changed (${chosen.map((n) => n.name).join(', ') || 'none'}): restarting its sessions`);
      for (const s of this.sessions.values()) await this.restartTrace(s);
    }
  }

  private async publishTopology(): Promise<void> {
    if (!this.js || this.stopped) return;
    // With its workloads (pods, containers: each runtime asked within 3 s, answers cached), so that
    // the hub can resolve `pod NAME` on the node that has it and show namespaces by their pods.
    this.topology = await discoverTopology({ namespaces: this.namespaces });
    await this.publishSnapshot();
  }

  /**
   * The node's snapshot: its topology (the latest discovered) and the agent's counters, which is
   * how the hub learns what the outbox dropped. Also sent without a new discovery once the bus
   * is back after batches were dropped.
   */
  private async publishSnapshot(): Promise<void> {
    if (!this.js || this.stopped || !this.topology) return;
    const reasons = await loadDropReasons();
    const snapshot: NodeSnapshot & { dropReasons: Record<number, string> } = {
      node: this.node, t: kernelNowNs(), wallMs: Date.now(), selector: this.opts.namespaces ?? '', topology: this.topology,
      dropReasons: Object.fromEntries(reasons.names),
      agent: { droppedBatches: this.outbox.droppedBatches, droppedEvents: this.outbox.droppedEvents, buffered: this.outbox.length },
      ...(this.opts.capability ? { capability: this.opts.capability } : {}),
    };
    await this.js.publish(topologySubject(this.node), new TextEncoder().encode(JSON.stringify(snapshot)));
  }

  private async onControl(msg: Msg): Promise<void> {
    const reply = (r: SessionReply): void => { msg.respond(new TextEncoder().encode(JSON.stringify(r))); };
    let data: unknown;
    try {
      data = JSON.parse(new TextDecoder().decode(msg.data));
    } catch {
      reply({ ok: false, error: 'not JSON' });
      return;
    }
    const req = parseSessionRequest(data);
    if (typeof req === 'string') {
      reply({ ok: false, error: req });
      return;
    }
    try {
      if (req.op === 'stop') {
        await this.stopSession(req.session);
        reply({ ok: true });
        return;
      }
      const s = await this.startSession(req);
      reply({ ok: true, filter: s.filter });
    } catch (err) {
      reply({ ok: false, error: (err as Error).message.split('\n')[0] ?? 'failed' });
    }
  }

  private async startSession(req: SessionRequest): Promise<AgentSession> {
    const leaseMs = req.leaseMs ?? DEFAULT_LEASE_MS;
    const existing = this.sessions.get(req.session);
    const filter = req.filter ?? '';
    const sample = req.sample ?? 1;
    const notes = req.notes === true;
    const netfilter = req.netfilter === true;
    if (existing && existing.filter === filter && existing.sample === sample && existing.notes === notes && existing.netfilter === netfilter) {
      // Asked again while it starts: answered once it runs (or failed), as the first ask is.
      await existing.ready;
      if (this.sessions.get(existing.id) !== existing) throw new Error('the session was stopped while it started');
      this.renew(existing, leaseMs);
      return existing;
    }
    if (existing) await this.stopSession(req.session);
    // Checked before anything starts: a node that cannot (no nft) refuses at the cost of two
    // `--version` runs, not a bpftrace compile, each time the hub asks again.
    if (netfilter && !this.opts.netfilterSource) await checkNetfilterTracing();
    const s: AgentSession = {
      id: req.session, filter, sample, notes, netfilter, trace: null, nf: null, lease: undefined, pending: [], pendingNotes: [], pendingNetfilter: [],
      timer: undefined, seq: 0, depthSeq: 0, lostKernel: 0, ready: undefined, lastBatchMs: Date.now(), lastWasHops: false, lagNs: 0, beat: null, beats: 0,
    };
    this.sessions.set(s.id, s);
    // The lease counts from when the session runs: bpftrace may take longer than a lease to
    // compile and attach on a busy node, and the hub renews only what it has heard back about.
    s.ready = (async () => {
      // Both started before either is judged, as the service's feed does: a failure stops both.
      const started = await Promise.allSettled([this.restartTrace(s), netfilter ? this.startNetfilter(s) : undefined]);
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (this.sessions.get(s.id) !== s) throw new Error('the session was stopped while it started');
    })();
    try {
      await s.ready;
      this.renew(s, leaseMs);
    } catch (err) {
      if (this.sessions.get(s.id) === s) this.sessions.delete(s.id);
      clearTimeout(s.lease);
      const trace = s.trace;
      s.trace = null;
      await Promise.allSettled([trace?.stop(), s.nf?.stop()]);
      throw err;
    }
    const depth = [notes ? 'notes' : '', netfilter ? 'netfilter' : ''].filter(Boolean).join(', ');
    this.log(`agent ${this.node}: session ${s.id} started (filter '${s.trace?.filterText ?? filter}'${sample > 1 ? `, 1 in ${sample} flows` : ''}${depth ? `, ${depth}` : ''})`);
    return s;
  }

  /** nft's rule trace in every namespace (CannotTraceError naming the fix where nft is missing). */
  private async startNetfilter(s: AgentSession): Promise<void> {
    // An agent limited to some namespaces puts nft tables only in those (in a test, the other
    // "nodes" share this kernel; on a host, other namespaces are none of its business).
    const nf = this.opts.netfilterSource?.() ?? nftNetfilterSourceWith(this.opts.namespaces
      ? { listNamespaces: () => Promise.resolve(this.namespaces.map((n) => ({ netns: n.netns, name: n.name, path: n.path }))) }
      : {});
    s.nf = nf;
    nf.on('event', (ev) => {
      // Only the agent's own namespaces leave the node, as for hops.
      const allow = this.netnsAllow;
      if (allow && !allow.includes(ev.netns)) return;
      s.pendingNetfilter.push(ev);
      this.schedule(s);
    });
    nf.on('warning', (w) => this.log(`agent ${this.node}: netfilter trace of session ${s.id}: ${w}`));
    await nf.start(parseFilter(s.filter));
  }

  /** A session not asked for again within its lease ends: the agent runs only what a hub still wants. */
  private renew(s: AgentSession, leaseMs: number): void {
    clearTimeout(s.lease);
    s.lease = setTimeout(() => {
      this.log(`agent ${this.node}: session ${s.id} was not renewed in ${leaseMs / 1000} s: stopping it`);
      void this.stopSession(s.id);
    }, leaseMs);
    s.lease.unref();
  }

  private async restartTrace(s: AgentSession): Promise<void> {
    const old = s.trace;
    s.trace = null;
    if (old) {
      old.removeAllListeners('hop');
      await old.stop();
    }
    const notes = s.notes ? await this.noteSupport() : undefined;
    if (notes && !old) for (const n of notes.notes) this.log(`agent ${this.node}: notes: ${n}`);
    const o = { filter: s.filter, sampleRate: s.sample, netnsAllow: this.netnsAllow, notes };
    const trace = this.opts.traceFactory?.(o) ?? new TraceSession({
      filter: o.filter, ...(o.sampleRate > 1 ? { sampleRate: o.sampleRate } : {}), ...(o.netnsAllow ? { netnsAllow: o.netnsAllow } : {}),
      ...(notes ? { notes: true, deep: notes.deep, missingTracepoints: notes.missingTracepoints } : {}),
    });
    trace.on('hop', (ev) => this.onHop(s, ev));
    trace.on('note', (n) => {
      s.pendingNotes.push(n);
      this.schedule(s);
    });
    trace.on('lost', (n) => { s.lostKernel += n; });
    trace.on('warning', (w) => this.log(`agent ${this.node}: ${w}`));
    trace.on('exit', (exit) => {
      if (exit.requested || s.trace !== trace) return;
      this.log(`agent ${this.node}: bpftrace of session ${s.id} died (${exit.signal ?? exit.code}): restarting in 1 s`);
      setTimeout(() => { if (this.sessions.get(s.id) === s) void this.restartTrace(s).catch((e: unknown) => this.log(`agent ${this.node}: ${(e as Error).message}`)); }, 1000).unref();
    });
    await trace.start();
    if (this.sessions.get(s.id) !== s) {
      await trace.stop();
      return;
    }
    s.trace = trace;
  }

  /**
   * Hops are published on this agent's own monotonic clock, the one its topology snapshots are
   * stamped with (`t` beside `wallMs`): the probes' clock is the kernel's, which differs from
   * the agent's inside a time namespace by the namespace's offset. The hub estimates each node's
   * offset from packets that crossed nodes whatever the clocks are (shared/cluster/stitch.ts).
   */
  private readonly clockOffsetNs = monotonicNamespaceOffsetNs();

  private onHop(s: AgentSession, ev: HopEvent): void {
    s.pending.push(this.clockOffsetNs === 0 ? ev : { ...ev, t: ev.t + this.clockOffsetNs });
    s.nf?.noteNetns(ev.netns);
    this.schedule(s);
  }

  private schedule(s: AgentSession): void {
    if (s.pending.length + s.pendingNotes.length + s.pendingNetfilter.length >= (this.opts.batchEvents ?? 512)) this.flush(s);
    else s.timer ??= setTimeout(() => this.flush(s), this.opts.batchMs ?? 50);
  }

  private flush(s: AgentSession): void {
    clearTimeout(s.timer);
    s.timer = undefined;
    if ((s.pending.length === 0 && s.pendingNotes.length === 0 && s.pendingNetfilter.length === 0) || !this.js) return;
    const events = s.pending;
    const notes = s.pendingNotes;
    const netfilter = s.pendingNetfilter;
    s.pending = [];
    s.pendingNotes = [];
    s.pendingNetfilter = [];
    // Depth first, as the live stream seals it: a note waits in the hub's engine for its packet's
    // hops, and a netfilter step for its finished packet. Both go through the outbox, in order.
    if (notes.length > 0 || netfilter.length > 0) {
      const seq = ++s.depthSeq;
      this.enqueue({ session: s.id, kind: 'depth', seq, data: encodeDepthBatch({ notes, netfilter, seq }), events: notes.length + netfilter.length });
    }
    if (events.length > 0) {
      const now = kernelNowNs();
      let newest = 0;
      for (const ev of events) if (ev.t > newest) newest = ev.t;
      // The reader's lag (bpftrace's pipe, this batch's wait) is kept for the heartbeats' clock.
      s.lagNs = Math.max(0, now - newest);
      // Events the outbox dropped are reported as lost, like the kernel's, with the next batch made:
      // the hub counts both at once; the dropped batches themselves it learns from the snapshot.
      const batch = { events, seq: ++s.seq, lostKernel: s.lostKernel + this.unreported, clockNs: newest };
      s.lostKernel = 0;
      this.unreported = 0;
      s.lastBatchMs = Date.now();
      s.lastWasHops = true;
      this.enqueue({ session: s.id, kind: 'hops', seq: batch.seq, data: encodeBatch(batch), events: events.length });
    }
    void this.send();
  }

  /**
   * A heartbeat for each running session that made no hop batch for `beatMs` (200 ms after a batch
   * of hops, the end of a burst: its last packets need the clock to move on): a hop batch with
   * no events, the sequence number of the batch before it, and the clock the agent vouches for —
   * now, less the lag its reader had at the last batch (hops of that moment may still be in
   * bpftrace's pipe). While one waits in the outbox (the bus away) no other is made.
   */
  private heartbeats(beatMs: number): void {
    const nowMs = Date.now();
    for (const s of this.sessions.values()) {
      const due = s.lastWasHops ? Math.min(beatMs, QUICK_BEAT_MS) : beatMs;
      if (!s.trace || nowMs - s.lastBatchMs < due || (s.beat && this.outbox.has(s.beat))) continue;
      s.lastBatchMs = nowMs;
      s.lastWasHops = false;
      const clockNs = Math.max(1, kernelNowNs() - s.lagNs);
      s.beat = { session: s.id, kind: 'heartbeat', seq: ++s.beats, data: encodeBatch({ events: [], seq: s.seq, lostKernel: 0, clockNs }), events: 0 };
      this.enqueue(s.beat);
    }
    void this.send();
  }

  private enqueue(item: OutboxItem): void {
    const before = this.outbox.droppedEvents;
    this.outbox.add(item);
    this.unreported += this.outbox.droppedEvents - before;
  }

  /** Publishes the outbox in order, one batch at a time, each until JetStream takes it. */
  private async send(): Promise<void> {
    if (this.sending || !this.js) return;
    this.sending = true;
    const { headers } = await import('@nats-io/transport-node');
    try {
      for (let item = this.outbox.next(); item; item = this.outbox.next()) {
        const h = headers();
        h.set(SESSION_HEADER, item.session);
        const depth = item.kind === 'depth';
        const dropped = depth ? 0 : this.outbox.droppedBefore(item.session);
        // A heartbeat's id is its own count: its batch carries the sequence number before it.
        const id = depth ? `d${item.seq}` : item.kind === 'heartbeat' ? `h${item.seq}` : String(item.seq);
        if (dropped > 0) h.set(DROPPED_HEADER, String(dropped));
        try {
          // The id lets JetStream drop a copy: a batch whose acknowledgement was lost in an outage
          // may have reached the stream before it is sent again.
          await this.js.publish(depth ? depthSubject(this.node) : hopsSubject(this.node), item.data, { headers: h, msgID: batchMessageId(this.node, item.session, this.epoch, id) });
          this.outbox.done(true);
          if (item.kind !== 'heartbeat') this.published++;
          if (this.failing) {
            this.log(`agent ${this.node}: publishing works again (${this.outbox.length} batches waiting, ${this.outbox.droppedBatches} dropped so far)`);
            this.failing = false;
            // The hub hears of the drops now, not at the next topology interval.
            if (this.outbox.droppedBatches > 0) void this.publishSnapshot().catch(() => undefined);
          }
        } catch (err) {
          this.outbox.done(false);
          this.failedAttempts++;
          // Said once per outage, not once per batch.
          if (!this.stopped && !this.failing) this.log(`agent ${this.node}: publishing hop batches fails (${(err as Error).message}): keeping up to ${this.outbox.maxBatches} batches / ${Math.round(this.outbox.maxBytes / 1048576)} MiB until the bus is back`);
          this.failing = true;
          if (this.stopped) return;
          await new Promise((r) => setTimeout(r, RETRY_MS));
        }
      }
    } finally {
      this.sending = false;
    }
  }

  /** Message ids must not repeat across agent restarts within JetStream's duplicate window. */
  private readonly epoch = Date.now().toString(36);

  private async stopSession(id: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    clearTimeout(s.lease);
    const trace = s.trace;
    s.trace = null;
    await Promise.allSettled([trace?.stop(), s.nf?.stop()]);
    s.nf?.removeAllListeners();
    this.flush(s);
    this.log(`agent ${this.node}: session ${id} stopped`);
  }
}
