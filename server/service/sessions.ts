/**
 * The service's sessions: one per POST /api/sessions, each pointing at the feed for its
 * canonical filter, depth and sample rate (sessions with equal filters, equal depth and equal
 * sample rates share one bpftrace and one netfilter trace; a session with notes or netfilter never
 * shares with one without, so nobody pays for depth they did not ask for, and a sampled session
 * never shares with one of another rate, whose flows differ). A session nobody watches
 * (no socket.io subscriber), nobody records and nobody has asked about over REST for `graceMs` is
 * stopped and forgotten, unless the service started it itself (pinned); its feed stops when its
 * last session goes.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { describeFilter, hasWorkloadFilters, parseFilter, resolveWorkloadFilters } from '../../shared/filter/index.js';
import type { Topology } from '../../shared/topology/model.js';
import { workloadDirectory } from '../../shared/topology/workloads.js';
import type { RecordingStatus, SessionDepth, SessionInfo } from '../../shared/api-types.js';
import { ApiError, TraceStartError } from './errors.js';
import { CannotTraceError } from '../trace-session.js';
import { NO_DEPTH, TraceFeed, feedKey, type FeedOptions } from './feed.js';
import type { NetfilterSourceFactory } from './depth.js';
import type { NoteSupport } from '../capabilities.js';

export interface Session {
  readonly id: string;
  readonly feed: TraceFeed;
  readonly createdAt: Date;
  watchers: number;
  /** Set while a recording runs (recording-manager.ts): a recorded session is never reaped. */
  recording: boolean;
  /**
   * Started by the service itself (`serve --lab demo`'s trace of the lab) and kept while it runs:
   * never reaped, though a user may still delete it.
   */
  readonly pinned: boolean;
  /** Last time a watcher left or a REST call touched it (ms). */
  lastActive: number;
}

/** What every feed of the registry is built with (FeedOptions documents each). */
type SharedFeedOptions = Pick<FeedOptions, 'source' | 'batching' | 'backoff' | 'packetsKept' | 'nsName' | 'isLocal' | 'noteHop' | 'ignore' | 'log'>;

export interface RegistryOptions extends SharedFeedOptions {
  /** Where netfilter events of sessions with `netfilter` come from; absent: such sessions are refused. */
  readonly netfilter?: NetfilterSourceFactory;
  /** What the kernel supports of the notes tier (asked when a notes session first starts). */
  readonly detectNotes?: () => Promise<NoteSupport>;
  readonly graceMs: number;
  /** Most bpftrace processes at once (each costs CPU in the kernel and in user space). */
  readonly maxFeeds: number;
  readonly maxSessions: number;
  /** The host's model, for `pod NAME` / `container NAME` filters (resolved to addresses at creation). */
  readonly topology?: () => Promise<Topology>;
  /** The session's running or last recording, for info() (recording-manager.ts); absent: no recordings. */
  readonly recordingStatus?: (session: Session) => RecordingStatus | null;
}

export interface RegistryEvents {
  /** A session ended (deleted, reaped or the service closing). */
  ended: [Session, string];
}

export class SessionRegistry extends EventEmitter<RegistryEvents> {
  private readonly sessions = new Map<string, Session>();
  private readonly feeds = new Map<string, TraceFeed>();
  private readonly reaper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: RegistryOptions) {
    super();
    this.reaper = setInterval(() => this.reap(), Math.max(50, Math.min(5000, opts.graceMs / 4)));
    this.reaper.unref();
  }

  /**
   * Creates a session following 1 in `sampleRate` flows (validated by the caller: a whole number
   * from 1 to MAX_SESSION_SAMPLE); resolves once its bpftrace is attached. Throws FilterError for a
   * bad filter, ApiError when at a limit, CannotTraceError or an Error with bpftrace's stderr when
   * tracing cannot start.
   */
  async create(filterText: string, depth: SessionDepth = NO_DEPTH, sampleRate = 1, opts: { readonly pinned?: boolean } = {}): Promise<Session> {
    if (this.closed) throw new ApiError(503, 'unavailable', 'the service is shutting down');
    const parsed = parseFilter(filterText);
    // Workload names become the addresses those workloads have now: the feed, its key and any
    // recording carry plain address filters.
    const filter = describeFilter(hasWorkloadFilters(parsed) && this.opts.topology
      ? resolveWorkloadFilters(parsed, workloadDirectory((await this.opts.topology()).namespaces))
      : parsed);
    if (depth.netfilter && !this.opts.netfilter) throw new ApiError(503, 'unavailable', 'this service cannot trace netfilter rules');
    const key = feedKey(filter, depth, sampleRate);
    if (this.sessions.size >= this.opts.maxSessions) {
      throw new ApiError(429, 'too-many-sessions', `the service already has ${this.sessions.size} sessions (at most ${this.opts.maxSessions}): delete one first`);
    }
    let feed = this.feeds.get(key);
    if (!feed) {
      if (this.feeds.size >= this.opts.maxFeeds) {
        throw new ApiError(429, 'too-many-sessions', `the service already runs ${this.feeds.size} bpftrace processes (at most ${this.opts.maxFeeds}): delete a session or reuse a filter`);
      }
      // Detected before the feed exists, so that a second session asking meanwhile finds none
      // and waits here too rather than sharing a feed built without it.
      const noteSupport = depth.notes && this.opts.detectNotes ? await this.opts.detectNotes() : undefined;
      if (noteSupport) for (const n of noteSupport.notes) this.opts.log(`notes: ${n}`);
      feed = this.feeds.get(key);
      if (!feed) {
        feed = new TraceFeed({ ...this.opts, filter, depth, sampleRate, ...(noteSupport ? { noteSupport } : {}) });
        this.feeds.set(key, feed);
        const created = feed;
        created.ready.catch(() => {
          if (this.feeds.get(key) === created) this.feeds.delete(key);
        });
      }
    }
    const session: Session = { id: this.newId(), feed, createdAt: new Date(), watchers: 0, recording: false, pinned: opts.pinned === true, lastActive: Date.now() };
    this.sessions.set(session.id, session);
    try {
      await feed.ready;
    } catch (err) {
      this.sessions.delete(session.id);
      // Stopped while it attached because the service is closing: bpftrace's "exited (SIGINT)"
      // is our doing, not a failure of the trace.
      if (this.closed) throw new ApiError(503, 'unavailable', 'the service is shutting down');
      if (err instanceof CannotTraceError || err instanceof ApiError) throw err;
      throw new TraceStartError(err instanceof Error ? err.message : String(err));
    }
    if (this.closed || !this.sessions.has(session.id)) throw new ApiError(503, 'unavailable', 'the session ended while it was starting');
    // The grace period counts from when the session could first be watched.
    session.lastActive = Date.now();
    return session;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  list(): Session[] {
    return [...this.sessions.values()];
  }

  /** Marks REST interest: keeps an unwatched session alive for another grace period. */
  touch(session: Session): void {
    session.lastActive = Date.now();
  }

  watch(session: Session): void {
    session.watchers++;
  }

  unwatch(session: Session): void {
    session.watchers = Math.max(0, session.watchers - 1);
    session.lastActive = Date.now();
  }

  async delete(id: string, why = 'the session was deleted'): Promise<boolean> {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.sessions.delete(id);
    this.emit('ended', session, why);
    const feed = session.feed;
    const stillUsed = [...this.sessions.values()].some((s) => s.feed === feed);
    if (!stillUsed) {
      if (this.feeds.get(feed.key) === feed) this.feeds.delete(feed.key);
      await feed.stop();
    }
    return true;
  }

  info(session: Session): SessionInfo {
    const feed = session.feed;
    return {
      id: session.id,
      filter: feed.filter,
      state: feed.state,
      createdAt: session.createdAt.toISOString(),
      watchers: session.watchers,
      recording: session.recording,
      ...(session.pinned ? { pinned: true } : {}),
      ...(this.opts.recordingStatus ? { recordingStatus: this.opts.recordingStatus(session) } : {}),
      bpftrace: {
        pid: feed.pid,
        restarts: feed.restarts,
        lastExit: feed.lastExit,
        sharedBy: [...this.sessions.values()].filter((s) => s.feed === feed).length,
      },
      events: feed.events,
      lostKernel: feed.lostKernel,
      packets: feed.packetsSeen,
      sampleRate: feed.sampleRate,
      depth: feed.depth,
      ...(feed.depth.netfilter || feed.depth.notes
        ? { depthEvents: { notes: feed.noteEvents, netfilter: feed.netfilterEvents }, depthWarnings: [...feed.depthWarnings] }
        : {}),
    };
  }

  /** bpftrace processes running now. */
  get bpftraceCount(): number {
    return [...this.feeds.values()].filter((f) => f.pid !== null).length;
  }

  /** Ends every session and waits until every bpftrace has exited. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    const ids = [...this.sessions.keys()];
    await Promise.all(ids.map((id) => this.delete(id, 'the service is shutting down')));
    // Feeds whose first start failed or is still in progress have no session left to delete.
    await Promise.all([...this.feeds.values()].map((f) => f.stop()));
    this.feeds.clear();
  }

  private reap(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.watchers === 0 && !s.recording && !s.pinned && s.feed.state !== 'starting' && now - s.lastActive > this.opts.graceMs) {
        this.opts.log(`session ${s.id} ('${s.feed.filter}') stopped: nobody watched it for ${Math.round(this.opts.graceMs / 1000)} s`);
        void this.delete(s.id, `nobody watched the session for ${this.opts.graceMs} ms`);
      }
    }
  }

  private newId(): string {
    let id: string;
    do id = randomBytes(6).toString('hex');
    while (this.sessions.has(id));
    return id;
  }
}
