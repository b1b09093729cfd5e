/**
 * A feed: one canonical filter (and depth and sample rate), one bpftrace at a time, shared by
 * every session (and so every client) that asked for the same. It batches the events for the live stream, keeps the
 * server's reconstruction for the packets endpoint, and keeps bpftrace alive: when it dies on its
 * own, listeners are told (with its stderr) and it is restarted after a back-off that doubles up
 * to a maximum, and resets only once a bpftrace has stayed up for a while.
 *
 * A feed with depth (SessionDepth) also runs the notes tier in its bpftrace and/or a netfilter
 * rule trace (NetfilterSource) beside it, for the feed's whole life: bpftrace restarts do not
 * touch the nft tables. Notes and netfilter events go out as depth batches, into the server's
 * reconstruction (attached as the CLI attaches them), and to taps (recordings).
 */
import type { EventEmitter } from 'node:events';
import type { BpftraceExit } from '../bpftrace.js';
import type { TraceSessionEvents } from '../trace-session.js';
import { TraceSession } from '../trace-session.js';
import type { DropReasons } from '../drop-reasons.js';
import type { Packet } from '../../shared/packet.js';
import type { HopEvent, HopNote } from '../../shared/hop-event.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import type { BpftraceExitInfo, ProbeTier, RecordingStatus, SessionDepth, SessionState } from '../../shared/api-types.js';
import { parseFilter } from '../../shared/filter/index.js';
import type { NoteSupport } from '../capabilities.js';
import { HopBatcher, type BatchingOptions, type EncodedBatch, type EncodedDepthBatch } from './batcher.js';
import { PacketTail } from './packet-tail.js';
import { kernelNowNs } from '../clock.js';
import type { NetfilterSource, NetfilterSourceFactory } from './depth.js';

/** What a feed needs from a trace: TraceSession's surface (tests substitute synthetic sources). */
export interface HopSource extends EventEmitter<TraceSessionEvents> {
  start(): Promise<void>;
  stop(): Promise<BpftraceExit | undefined>;
  readonly pid: number | undefined;
  readonly dropReasons: DropReasons;
  accepts(packet: Packet): boolean;
  /** The probe points attached, as bpftrace names them on the source's tier (recording headers). */
  readonly probes?: readonly string[];
  readonly probeTier?: ProbeTier;
}

/** What a source attaches beyond the hop probes, and which flows it follows. */
export interface SourceDepth {
  /** Attach the notes tier, with what this kernel supports of it; absent: no notes. */
  readonly notes?: NoteSupport;
  /** Follow 1 in this many flows (chosen in the kernel by flow hash); absent or 1: every flow. */
  readonly sampleRate?: number;
  /** The service's own listening port(s): its connections on our loopback are left out in the kernel. */
  readonly selfPorts?: readonly number[];
}

/** Makes a source for a canonical filter. Throws FilterError for a bad filter. */
export type SourceFactory = (filter: string, depth?: SourceDepth) => HopSource;

export const traceSessionSource: SourceFactory = (filter, depth) => new TraceSession({
  filter,
  ...(depth?.notes ? { notes: true, deep: depth.notes.deep, missingTracepoints: depth.notes.missingTracepoints } : {}),
  ...(depth?.sampleRate !== undefined && depth.sampleRate > 1 ? { sampleRate: depth.sampleRate } : {}),
  ...(depth?.selfPorts ? { selfPorts: depth.selfPorts } : {}),
});

export const NO_DEPTH: SessionDepth = { netfilter: false, notes: false };

/**
 * Feeds are shared by sessions with equal keys: the canonical filter, plus the depth when there
 * is any, plus the sample rate when it is not 1 (a sampled run sees other flows than a full one,
 * and two rates pick different sets: neither can serve the other).
 */
export function feedKey(filter: string, depth: SessionDepth, sampleRate = 1): string {
  const sample = sampleRate > 1 ? `\u0000sample=${sampleRate}` : '';
  if (!depth.netfilter && !depth.notes) return `${filter}${sample}`;
  // NUL cannot occur in a canonical filter.
  return `${filter}\u0000${depth.netfilter ? 'netfilter' : ''},${depth.notes ? 'notes' : ''}${sample}`;
}

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  /** A bpftrace that stayed up this long resets the back-off. */
  readonly stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000, stableMs: 30_000 };

export interface FeedStateChange {
  readonly state: SessionState;
  readonly message: string;
  readonly exit?: BpftraceExitInfo;
  readonly retryInMs?: number;
  /** A recording of one of the feed's sessions started, stopped or failed (recording-manager.ts). */
  readonly recording?: RecordingStatus;
  /** On the `running` after a restart: when no bpftrace was attached (kernel monotonic ns, the clock of hop `t`). */
  readonly gap?: { readonly fromNs: number; readonly toNs: number };
}

/** Takes every hop event and lost count the feed takes, whichever bpftrace sent them (recordings). */
export interface HopTap {
  hop(ev: HopEvent): void;
  lost(count: number): void;
  /** Notes (feeds with `notes`). */
  note?(note: HopNote): void;
  /** Netfilter rule-trace events (feeds with `netfilter`). */
  netfilter?(ev: NetfilterEvent): void;
}

export interface FeedListener {
  batch(batch: EncodedBatch): void;
  /** Notes and netfilter events, sealed just before the hop batch of the same moment. */
  depth?(batch: EncodedDepthBatch): void;
  state(change: FeedStateChange): void;
}

export interface FeedOptions {
  /** Canonical filter text. */
  readonly filter: string;
  /** Notes and/or netfilter rule trace (default none). */
  readonly depth?: SessionDepth;
  /** Follow 1 in this many flows (default 1: all), chosen in the kernel by flow hash. */
  readonly sampleRate?: number;
  /** With depth.notes: what the kernel supports of the notes tier (default: all of it, no function tier). */
  readonly noteSupport?: NoteSupport;
  /** With depth.netfilter: where netfilter events come from. Required then. */
  readonly netfilter?: NetfilterSourceFactory;
  readonly source: SourceFactory;
  readonly batching: BatchingOptions;
  readonly backoff: BackoffOptions;
  /** Finished packets kept for the packets endpoint. */
  readonly packetsKept: number;
  readonly nsName: (netns: number) => string | null;
  /** Local addresses per namespace (the topology model): received where dst lives = delivered. */
  readonly isLocal?: (netns: number, addr: string) => boolean;
  /** Told about every hop (the model refreshes when it sees an unknown namespace or interface). */
  readonly noteHop?: (ev: HopEvent) => void;
  /** Events to leave out (the service's own connections: streaming them would feed on itself). */
  readonly ignore?: (ev: HopEvent) => boolean;
  readonly log: (line: string) => void;
}

/** How often the server's reconstruction is advanced and the event rate sampled. */
const TICK_MS = 250;

export class TraceFeed {
  state: SessionState = 'starting';
  restarts = 0;
  lastExit: BpftraceExitInfo | null = null;
  events = 0;
  lostKernel = 0;
  /** Notes and netfilter events taken (feeds with depth). */
  noteEvents = 0;
  netfilterEvents = 0;
  /** The netfilter trace's warnings, latest last (at most 10). */
  readonly depthWarnings: string[] = [];
  readonly depth: SessionDepth;
  /** 1 in this many flows are followed (1: all); the feed's counts are of those flows, not scaled. */
  readonly sampleRate: number;
  /** Events per second over the last second. */
  eventsPerSec = 0;
  /** Age of the newest event when it arrived from bpftrace, in ms (kernel clock vs ours). */
  sourceLagMs = 0;
  /** The attached source (bpftrace running). */
  private source: HopSource | undefined;

  /** What the attached source attached, for a recording's header. */
  get probes(): readonly string[] | undefined {
    return this.source?.probes;
  }

  get probeTier(): ProbeTier | undefined {
    return this.source?.probeTier;
  }
  /** A source whose start() is in progress. */
  private pending: HopSource | undefined;
  private reasons: DropReasons | undefined;
  private readonly listeners = new Set<FeedListener>();
  private readonly taps = new Set<HopTap>();
  /** The filter check of the last attached source (kept while a restart is pending). */
  private acceptor: ((p: Packet) => boolean) | undefined;
  private readonly batcher: HopBatcher;
  private readonly tail: PacketTail;
  private ticker: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private startedAt = 0;
  /** When the last bpftrace died on its own (kernel monotonic ns), until a new one is attached. */
  private downSinceNs: number | undefined;
  private attaching: Promise<void> | undefined;
  private stopping = false;
  private rateBase = { at: Date.now(), events: 0 };
  /** The netfilter rule trace of a feed with depth.netfilter. */
  private readonly nf: NetfilterSource | undefined;
  /** Resolves when the first bpftrace (and the netfilter trace) is attached; rejects when it could not be. */
  readonly ready: Promise<void>;

  constructor(private readonly opts: FeedOptions) {
    this.depth = opts.depth ?? NO_DEPTH;
    this.sampleRate = opts.sampleRate ?? 1;
    this.backoffMs = opts.backoff.initialMs;
    this.batcher = new HopBatcher(opts.batching, (b) => {
      for (const l of this.listeners) l.batch(b);
    });
    this.batcher.onDepth = (b) => {
      for (const l of this.listeners) l.depth?.(b);
    };
    if (this.depth.netfilter) {
      if (!opts.netfilter) throw new Error('a netfilter feed needs a netfilter source');
      this.nf = opts.netfilter();
      this.nf.on('event', (ev) => this.onNetfilter(ev));
      this.nf.on('warning', (w) => {
        this.depthWarnings.push(w);
        if (this.depthWarnings.length > 10) this.depthWarnings.shift();
        this.opts.log(`netfilter trace for '${this.opts.filter}': ${w}`);
        if (this.state !== 'starting') this.notify(`netfilter trace: ${w}`);
      });
    }
    // Reasons and the filter come from whichever source is attached; both are the same for all of them.
    this.tail = new PacketTail(opts.packetsKept, {
      nsName: opts.nsName,
      ...(opts.isLocal ? { isLocal: opts.isLocal } : {}),
      dropReason: (code) => this.reasons?.name(code) ?? `reason-${code}`,
      accept: (p) => this.source?.accepts(p) ?? true,
    }, { netfilter: this.depth.netfilter });
    this.ready = this.startAll().then(
      () => this.startTicker(),
      (err: unknown) => {
        if (!this.stopping) this.state = 'failed';
        throw err;
      },
    );
    // A failed first start is reported through `ready`; keep it from being an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  get filter(): string {
    return this.opts.filter;
  }

  /** The registry's key for this feed (filter, depth and sample rate). */
  get key(): string {
    return feedKey(this.opts.filter, this.depth, this.sampleRate);
  }

  get pid(): number | null {
    return this.source?.pid ?? null;
  }

  get seq(): number {
    return this.batcher.seq;
  }

  get batching(): BatchingOptions {
    return this.opts.batching;
  }

  get dropReasons(): DropReasons | undefined {
    return this.reasons;
  }

  get packetsSeen(): number {
    return this.tail.total;
  }

  lastPackets(limit: number): Packet[] {
    this.tail.tick();
    return this.tail.last(limit);
  }

  addListener(l: FeedListener): void {
    this.listeners.add(l);
  }

  removeListener(l: FeedListener): void {
    this.listeners.delete(l);
  }

  /** Taps see events from every bpftrace the feed runs, across restarts, until removed. */
  addTap(t: HopTap): void {
    this.taps.add(t);
  }

  removeTap(t: HopTap): void {
    this.taps.delete(t);
  }

  /** Whether the feed's filter accepts a packet (every source of one feed has the same filter). */
  accepts(packet: Packet): boolean {
    return this.acceptor?.(packet) ?? true;
  }

  /** Tells listeners something about the feed without changing its state (e.g. a recording stopped). */
  notify(message: string, extra: Pick<FeedStateChange, 'recording'> = {}): void {
    this.setState({ state: this.state, message, ...extra });
  }

  /** Stops bpftrace for good; resolves once it has exited. Safe to call more than once. */
  async stop(): Promise<void> {
    const first = !this.stopping;
    this.stopping = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.ticker);
    // A bpftrace still attaching is killed; if it was not spawned yet, attach() stops it once it is.
    void this.pending?.stop();
    await this.attaching?.catch(() => undefined);
    await Promise.all([this.source?.stop(), this.nf?.stop()]);
    if (!first) return;
    this.nf?.removeAllListeners();
    this.source?.removeAllListeners();
    this.batcher.flush();
    this.batcher.dispose();
    this.setState({ state: 'stopped', message: 'the session was stopped' });
    this.listeners.clear();
    this.taps.clear();
  }

  /**
   * The first start: bpftrace and the netfilter trace together. Both starts finish before either
   * is judged (stopping one still starting would leave it attached), and a failure stops both.
   */
  private async startAll(): Promise<void> {
    const started = await Promise.allSettled([
      this.attach(),
      this.nf?.start(parseFilter(this.opts.filter)),
    ]);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    await Promise.allSettled([this.source?.stop(), this.nf?.stop()]);
    this.source?.removeAllListeners();
    this.source = undefined;
    throw failed.reason;
  }

  private onNetfilter(ev: NetfilterEvent): void {
    if (this.stopping) return;
    this.netfilterEvents++;
    this.batcher.pushNetfilter(ev);
    this.tail.addNetfilter(ev);
    for (const t of this.taps) t.netfilter?.(ev);
  }

  private attach(): Promise<void> {
    const source = this.opts.source(this.opts.filter, {
      ...(this.depth.notes ? { notes: this.opts.noteSupport ?? { deep: false, missingTracepoints: new Set(), notes: [] } } : {}),
      ...(this.sampleRate > 1 ? { sampleRate: this.sampleRate } : {}),
    });
    this.pending = source;
    const ignore = this.opts.ignore;
    const noteHop = this.opts.noteHop;
    source.on('hop', (ev) => {
      if (ignore?.(ev)) return;
      noteHop?.(ev);
      this.nf?.noteNetns(ev.netns);
      this.events++;
      // Sampled once per batch (at its first event): reading the clock costs more than the rest of this handler.
      if (this.batcher.pendingEvents === 0) this.sourceLagMs = Math.max(0, Math.round((kernelNowNs() - ev.t) / 1e6));
      this.batcher.push(ev);
      this.tail.push(ev);
      if (this.taps.size > 0) for (const t of this.taps) t.hop(ev);
    });
    if (this.depth.notes) {
      source.on('note', (n) => {
        this.noteEvents++;
        this.batcher.pushNote(n);
        this.tail.pushNote(n);
        for (const t of this.taps) t.note?.(n);
      });
    }
    source.on('lost', (n) => {
      this.lostKernel += n;
      this.batcher.addLost(n);
      for (const t of this.taps) t.lost(n);
    });
    source.on('exit', (exit) => this.onExit(source, exit));
    const attached = (async () => {
      try {
        await source.start();
      } catch (err) {
        source.removeAllListeners();
        throw err;
      } finally {
        if (this.pending === source) this.pending = undefined;
      }
      if (this.stopping) {
        await source.stop();
        source.removeAllListeners();
        throw new Error('the session was stopped while bpftrace was starting');
      }
      this.source = source;
      this.reasons = source.dropReasons;
      this.acceptor = (p) => source.accepts(p);
      this.startedAt = Date.now();
      if (this.state === 'restarting') {
        const toNs = kernelNowNs();
        const fromNs = this.downSinceNs ?? toNs;
        this.downSinceNs = undefined;
        this.setState({
          state: 'running',
          message: `bpftrace restarted (restart ${this.restarts}); events in the ${((toNs - fromNs) / 1e9).toFixed(1)} s it was down were not seen`,
          gap: { fromNs, toNs },
        });
      }
      else this.setState({ state: 'running', message: 'bpftrace attached' });
    })();
    this.attaching = attached;
    attached.then(
      () => { if (this.attaching === attached) this.attaching = undefined; },
      () => { if (this.attaching === attached) this.attaching = undefined; },
    );
    return attached;
  }

  private onExit(source: HopSource, exit: BpftraceExit): void {
    if (exit.requested || this.stopping || source !== this.source) return;
    // Died on its own: everything it sent is delivered, packets in flight are finished as seen.
    this.batcher.flush();
    this.tail.cut();
    source.removeAllListeners();
    this.source = undefined;
    this.downSinceNs ??= kernelNowNs();
    this.lastExit = { code: exit.code, signal: exit.signal, stderr: exit.stderr, at: Date.now() };
    if (Date.now() - this.startedAt >= this.opts.backoff.stableMs) this.backoffMs = this.opts.backoff.initialMs;
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    this.opts.log(`bpftrace for filter '${this.opts.filter}' died (${how}); restarting in ${this.backoffMs} ms`);
    this.scheduleRestart(`bpftrace died (${how})${exit.stderr ? `: ${exit.stderr.split('\n')[0]}` : ''}`, this.lastExit);
  }

  private scheduleRestart(message: string, exit: BpftraceExitInfo): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.backoff.maxMs);
    this.setState({ state: 'restarting', message: `${message}; restarting in ${(delay / 1000).toFixed(1)} s`, exit, retryInMs: delay });
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.restarts++;
      this.attach().catch((err: unknown) => {
        if (this.stopping) return;
        const text = err instanceof Error ? err.message : String(err);
        this.lastExit = { code: null, signal: null, stderr: text, at: Date.now() };
        this.scheduleRestart(`bpftrace could not be restarted: ${text.split('\n')[0]}`, this.lastExit);
      });
    }, delay);
  }

  private startTicker(): void {
    if (this.stopping) return;
    this.ticker = setInterval(() => {
      this.tail.tick();
      const now = Date.now();
      if (now - this.rateBase.at >= 1000) {
        this.eventsPerSec = Math.round(((this.events - this.rateBase.events) * 1000) / (now - this.rateBase.at));
        this.rateBase = { at: now, events: this.events };
      }
    }, TICK_MS);
    this.ticker.unref();
  }

  private setState(change: FeedStateChange): void {
    this.state = change.state;
    for (const l of this.listeners) l.state(change);
  }
}
