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
 * Memory is bounded whatever the bus does: at most MAX_IN_FLIGHT batches wait for JetStream's
 * acknowledgement; batches beyond that are dropped and counted (reported as lost with the next
 * batch), so a slow or absent hub never makes the agent grow.
 */
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { encodeBatch } from '../../shared/wire.js';
import { encodeDepthBatch } from '../../shared/netfilter/wire.js';
import { parseFilter } from '../../shared/filter/index.js';
import { controlSubject, depthSubject, hopsSubject, topologySubject, parseSessionRequest, SESSION_HEADER, type NodeSnapshot, type SessionReply, type SessionRequest } from '../../shared/cluster/subjects.js';
import { TraceSession } from '../trace-session.js';
import { listNamespaces, type NamespaceEntry } from '../topology/namespaces.js';
import { discoverTopology } from '../topology/discover.js';
import { kernelNowNs } from '../clock.js';
import { loadDropReasons } from '../drop-reasons.js';
import { connectBus, ensureStream, type BusOptions } from './connect.js';
import { cachedNoteSupport, checkNetfilterTracing, nftNetfilterSourceWith, type NetfilterSource, type NetfilterSourceFactory } from '../service/depth.js';
import type { NoteSupport } from '../capabilities.js';

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
  /** A session's TraceSession (replaceable in tests that have no bpftrace). */
  readonly traceFactory?: (o: { filter: string; sampleRate: number; netnsAllow: readonly number[] | undefined; notes: NoteSupport | undefined }) => TraceSession;
  /** Where a `netfilter` session's rule-trace events come from (default nft, server/netfilter). */
  readonly netfilterSource?: NetfilterSourceFactory;
}

/** Batches waiting for JetStream's acknowledgement before new ones are dropped. */
const MAX_IN_FLIGHT = 256;
const DEFAULT_LEASE_MS = 30_000;

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
  /** Batches dropped because the bus was too slow, events in them. */
  droppedEvents: number;
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
  private inFlight = 0;
  private stopped = false;
  private readonly log: (line: string) => void;
  /** Batches published and acknowledged; dropped for a slow bus (events). */
  published = 0;
  droppedEvents = 0;
  /** Batches JetStream did not take (bus down); whether the last publish failed. */
  failedBatches = 0;
  private failing = false;
  /** What this kernel supports of the notes tier, detected on the first notes session. */
  private readonly noteSupport = cachedNoteSupport();

  constructor(private readonly opts: AgentOptions) {
    this.node = opts.node;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    if (opts.namespaces) checkSelector(opts.namespaces);
  }

  /** Connects, publishes the topology and waits for session requests. */
  async start(): Promise<void> {
    const { jetstream } = await import('@nats-io/jetstream');
    this.nc = await connectBus({ ...this.opts.bus, name: `hoptrace-agent ${this.node}` });
    await ensureStream(this.nc);
    this.js = jetstream(this.nc);
    await this.rescan(true);
    this.sub = this.nc.subscribe(controlSubject(this.node), { callback: (err, msg) => { if (!err) void this.onControl(msg); } });
    this.rescanTimer = setInterval(() => void this.rescan(false).catch((e: unknown) => this.log(`agent ${this.node}: ${(e as Error).message}`)), this.opts.rescanMs ?? 3000);
    this.topoTimer = setInterval(() => void this.publishTopology().catch((e: unknown) => this.log(`agent ${this.node}: topology: ${(e as Error).message}`)), this.opts.topologyMs ?? 30_000);
    this.rescanTimer.unref();
    this.topoTimer.unref();
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
    this.sub?.unsubscribe();
    await Promise.all([...this.sessions.keys()].map((id) => this.stopSession(id)));
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
    const topology = await discoverTopology({ namespaces: this.namespaces, workloads: false });
    const reasons = await loadDropReasons();
    const snapshot: NodeSnapshot & { dropReasons: Record<number, string> } = {
      node: this.node, t: kernelNowNs(), wallMs: Date.now(), selector: this.opts.namespaces ?? '', topology,
      dropReasons: Object.fromEntries(reasons.names),
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
      timer: undefined, seq: 0, depthSeq: 0, lostKernel: 0, droppedEvents: 0, ready: undefined,
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

  private onHop(s: AgentSession, ev: HopEvent): void {
    s.pending.push(ev);
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
    if (this.inFlight >= MAX_IN_FLIGHT) {
      s.droppedEvents += events.length;
      this.droppedEvents += events.length;
      return;
    }
    // Depth first, as the live stream seals it: a note waits in the hub's engine for its packet's
    // hops, and a netfilter step for its finished packet.
    if (notes.length > 0 || netfilter.length > 0) void this.publishBatch(s.id, depthSubject(this.node), encodeDepthBatch({ notes, netfilter, seq: ++s.depthSeq }));
    if (events.length === 0) return;
    // Events dropped for a slow bus are reported as lost, like the kernel's: the hub shows both.
    const batch = { events, seq: ++s.seq, lostKernel: s.lostKernel + s.droppedEvents };
    s.lostKernel = 0;
    s.droppedEvents = 0;
    void this.publishBatch(s.id, hopsSubject(this.node), encodeBatch(batch));
  }

  private async publishBatch(session: string, subject: string, data: Uint8Array): Promise<void> {
    const { headers } = await import('@nats-io/transport-node');
    const h = headers();
    h.set(SESSION_HEADER, session);
    this.inFlight++;
    try {
      await this.js!.publish(subject, data, { headers: h });
      this.published++;
      if (this.failing) this.log(`agent ${this.node}: publishing works again (${this.failedBatches} batches were lost)`);
      this.failing = false;
    } catch (err) {
      // Said once per outage, not once per batch.
      this.failedBatches++;
      if (!this.stopped && !this.failing) this.log(`agent ${this.node}: publishing hop batches fails: ${(err as Error).message}`);
      this.failing = true;
    } finally {
      this.inFlight--;
    }
  }

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
