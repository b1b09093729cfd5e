/**
 * The service's stats sessions: one StatsSession (bpftrace) per distinct (filter, interval,
 * sampling), shared by everyone who asks for the same; a bounded history of documents per
 * session for charts and A/B windows; running totals for Prometheus. A session nobody has touched
 * (REST, socket subscription, scrape) for `graceMs` is stopped.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { parseFilter, describeFilter } from '../../shared/filter/index.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { StatsTotals } from '../../shared/stats/prometheus.js';
import type { StatsSessionInfo, StatsSessionState } from '../../shared/stats/api.js';
import type { BpftraceExit } from '../bpftrace.js';
import { StatsSession, type StatsSessionOptions } from './session.js';

/** What the hub needs of a stats session (StatsSession, or a fake in tests). */
export interface StatsSource {
  on(event: 'interval', fn: (doc: StatsDocument) => void): unknown;
  on(event: 'exit', fn: (exit: BpftraceExit) => void): unknown;
  start(): Promise<void>;
  stop(): Promise<StatsDocument | null>;
}

export type StatsSourceFactory = (opts: StatsSessionOptions) => StatsSource;

export const defaultStatsSource: StatsSourceFactory = (opts) => new StatsSession(opts);

export interface StatsHubOptions {
  readonly source?: StatsSourceFactory;
  /** Documents kept per session (default 600: 10 minutes at 1 s). */
  readonly keep?: number;
  /** Untouched sessions stop after this long (default 120 s). */
  readonly graceMs?: number;
  /** Most stats sessions at once (default 4: each is a bpftrace). */
  readonly maxSessions?: number;
  readonly log?: (line: string) => void;
}

export interface HubSession {
  readonly id: string;
  readonly key: string;
  readonly filter: string;
  readonly intervalMs: number;
  readonly sampleRate: number;
  readonly createdAt: number;
  state: StatsSessionState;
  message: string | null;
  documents: number;
  readonly history: StatsDocument[];
  readonly totals: StatsTotals;
  lastTouched: number;
  readonly source: StatsSource;
  readonly started: Promise<void>;
}

interface HubEvents {
  document: [HubSession, StatsDocument];
  state: [HubSession];
}

export class StatsHubFullError extends Error {
  override name = 'StatsHubFullError';
}

export class StatsHub extends EventEmitter<HubEvents> {
  private readonly sessions = new Map<string, HubSession>();
  private readonly byKey = new Map<string, HubSession>();
  private readonly reaper: NodeJS.Timeout;
  private readonly opts: Required<Omit<StatsHubOptions, 'log'>> & Pick<StatsHubOptions, 'log'>;
  /** Viewers per session (socket subscriptions): watched sessions are never reaped. */
  private readonly viewers = new Map<string, number>();
  private closed = false;

  constructor(opts: StatsHubOptions = {}) {
    super();
    this.opts = { source: defaultStatsSource, keep: 600, graceMs: 120_000, maxSessions: 4, ...opts };
    this.reaper = setInterval(() => void this.reap(), Math.min(10_000, this.opts.graceMs / 2));
    this.reaper.unref();
  }

  /**
   * The session for these settings, started if new. Throws FilterError on a bad filter,
   * StatsHubFullError when too many run. Resolves once bpftrace is attached (or rejects).
   */
  async open(filter: string, intervalMs: number, sampleRate: number): Promise<HubSession> {
    if (this.closed) throw new Error('stats hub closed');
    const canonical = describeFilter(parseFilter(filter));
    const key = `${canonical}|${intervalMs}|${sampleRate}`;
    const existing = this.byKey.get(key);
    if (existing && existing.state !== 'failed' && existing.state !== 'ended') {
      this.touch(existing);
      await existing.started;
      return existing;
    }
    if ([...this.sessions.values()].filter((s) => s.state === 'running' || s.state === 'starting').length >= this.opts.maxSessions) {
      throw new StatsHubFullError(`the service already runs ${this.opts.maxSessions} stats sessions: delete one first`);
    }
    const source = this.opts.source({ filter: canonical, intervalMs, sampleRate });
    const s: HubSession = {
      id: `s${randomBytes(6).toString('hex')}`,
      key, filter: canonical, intervalMs, sampleRate,
      createdAt: Date.now(),
      state: 'starting', message: null, documents: 0, history: [], totals: new StatsTotals(),
      lastTouched: Date.now(),
      source,
      started: Promise.resolve(),
    };
    source.on('interval', (doc) => {
      s.documents++;
      s.history.push(doc);
      if (s.history.length > this.opts.keep) s.history.splice(0, s.history.length - this.opts.keep);
      s.totals.add(doc);
      this.emit('document', s, doc);
    });
    source.on('exit', (exit) => {
      if (s.state === 'ended') return;
      s.state = exit.requested ? 'ended' : 'failed';
      s.message = exit.requested ? null : `bpftrace exited (${exit.signal ?? `code ${exit.code}`})${exit.stderr ? `: ${exit.stderr.split('\n')[0]}` : ''}`;
      this.emit('state', s);
    });
    (s as { started: Promise<void> }).started = source.start().then(
      () => {
        if (s.state === 'starting') s.state = 'running';
        this.emit('state', s);
      },
      (err: unknown) => {
        s.state = 'failed';
        s.message = err instanceof Error ? err.message : String(err);
        this.emit('state', s);
        throw err;
      },
    );
    this.sessions.set(s.id, s);
    this.byKey.set(key, s);
    this.opts.log?.(`stats session ${s.id} (filter '${canonical}', every ${intervalMs} ms, sample 1/${sampleRate})`);
    await s.started;
    return s;
  }

  // get/list/touch have the shape of SessionRegistry's (server/service/sessions.ts) on purpose: the
  // same lifecycle verbs over other sessions; a base class would save three one-line methods.
  get(id: string): HubSession | undefined {
    return this.sessions.get(id);
  }

  list(): HubSession[] {
    return [...this.sessions.values()];
  }

  touch(s: HubSession): void {
    s.lastTouched = Date.now();
  }

  watch(s: HubSession, delta: 1 | -1): void {
    this.viewers.set(s.id, Math.max(0, (this.viewers.get(s.id) ?? 0) + delta));
    this.touch(s);
  }

  info(s: HubSession): StatsSessionInfo {
    return {
      id: s.id, filter: s.filter, intervalS: s.intervalMs / 1000, sampleRate: s.sampleRate,
      state: s.state, message: s.message, documents: s.documents, kept: s.history.length, createdAt: s.createdAt,
    };
  }

  /** Documents whose interval overlaps [fromMs, toMs] (wall clock). */
  window(s: HubSession, fromMs: number, toMs: number): StatsDocument[] {
    return s.history.filter((d) => Date.parse(d.end) > fromMs && Date.parse(d.start) < toMs);
  }

  async delete(id: string): Promise<boolean> {
    const s = this.sessions.get(id);
    if (!s) return false;
    this.sessions.delete(id);
    if (this.byKey.get(s.key) === s) this.byKey.delete(s.key);
    this.viewers.delete(id);
    if (s.state === 'running' || s.state === 'starting') {
      await s.started.catch(() => undefined);
      await s.source.stop().catch(() => null);
    }
    s.state = s.state === 'failed' ? 'failed' : 'ended';
    this.emit('state', s);
    return true;
  }

  private async reap(): Promise<void> {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if ((this.viewers.get(s.id) ?? 0) > 0) continue;
      if (now - s.lastTouched > this.opts.graceMs) {
        this.opts.log?.(`stats session ${s.id} unused for ${Math.round(this.opts.graceMs / 1000)} s: stopped`);
        await this.delete(s.id);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    await Promise.all([...this.sessions.keys()].map((id) => this.delete(id)));
  }
}
