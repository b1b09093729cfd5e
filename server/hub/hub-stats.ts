/**
 * The latency (stats) view of `serve --hub` (issue 17): the service's stats sessions
 * (/api/stats, socket.io /stats, /metrics: server/service/stats.ts, unchanged) with a source that
 * runs on the cluster instead of a local bpftrace. Each stats session is a hub session on the
 * agents (its filter and sampling; every node) whose stitched packets are counted, interval by
 * interval, into the same stats document (shared/stats/from-packets.ts): segments, transit,
 * drops and interfaces per node, `node` on every place; a segment within a node timed by that
 * node's own clock, a segment crossing nodes (leaving xmit on one, entering recv on another)
 * timed through the stitcher's clock offsets and marked `clock: 'estimate'`.
 * Interval bounds are the hub's wall clock in ns (the nodes' kernels each have their own).
 */
import { EventEmitter } from 'node:events';
import type { StatsDocument } from '../../shared/stats/types.js';
import { PacketStats } from '../../shared/stats/from-packets.js';
import { asPacket } from '../../shared/cluster/pipeline.js';
import type { StatsSource, StatsSourceFactory } from '../stats/hub.js';
import type { StatsSessionOptions } from '../stats/session.js';
import type { BpftraceExit } from '../bpftrace.js';
import type { Hub } from './hub.js';
import type { ClusterSession } from './cluster-session.js';

interface Events {
  interval: [StatsDocument];
  exit: [BpftraceExit];
}

/** One stats session counted from a hub session's stitched packets. */
export class ClusterStatsSource extends EventEmitter<Events> implements StatsSource {
  private session: ClusterSession | null = null;
  private acc = new PacketStats();
  private startMs = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private offs: Array<() => void> = [];
  private stopped = false;

  constructor(private readonly hub: Hub, private readonly opts: StatsSessionOptions) {
    super();
  }

  /** The hub session it counts (after start). */
  get sessionId(): string | null {
    return this.session?.id ?? null;
  }

  /** Asks every node for the session; resolves once they answered (rejects as POST /api/sessions would: ApiError, FilterError). */
  async start(): Promise<void> {
    const s = await this.hub.createSession({ filter: this.opts.filter, ...(this.opts.sampleRate && this.opts.sampleRate > 1 ? { sample: this.opts.sampleRate } : {}) });
    this.session = s;
    // Watched while the stats session lives: the stats hub reaps it, not the sessions' grace period.
    s.watchers++;
    this.startMs = Date.now();
    this.offs.push(this.hub.onPackets((packets, id) => {
      if (id !== s.id) return;
      for (const p of packets) this.acc.add(asPacket(p));
    }));
    this.offs.push(this.hub.onSessionEnd((id) => {
      if (id !== s.id || this.stopped) return;
      // Someone deleted the hub session under it (DELETE /api/sessions/:id): the stats session failed.
      this.finish();
      this.emit('exit', { code: null, signal: null, requested: false, stderr: `the hub session ${s.id} it counted was deleted` });
    }));
    if (this.opts.intervalMs !== undefined) {
      this.timer = setInterval(() => this.emit('interval', this.cut(false)), this.opts.intervalMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<StatsDocument | null> {
    if (this.stopped) return null;
    const last = this.session ? this.cut(true) : null;
    this.finish();
    if (this.session) await this.hub.deleteSession(this.session.id);
    this.emit('exit', { code: 0, signal: null, requested: true, stderr: '' });
    return last;
  }

  private finish(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const off of this.offs) off();
    this.offs = [];
  }

  /** The document of the interval since the last cut, and a fresh count for the next. */
  private cut(final: boolean): StatsDocument {
    const now = Date.now();
    const doc = this.acc.document({
      startNs: this.startMs * 1e6, endNs: now * 1e6, wallClock: (ns) => ns / 1e6,
      sampleRate: this.opts.sampleRate ?? 1, filter: this.session?.spec.filter ?? this.opts.filter,
    });
    this.acc = new PacketStats();
    this.startMs = now;
    return { ...doc, final };
  }
}

/** The stats sessions' source for `serve --hub` (ServiceOptions.statsSource). */
export const clusterStatsSource = (hub: Hub): StatsSourceFactory => (opts) => new ClusterStatsSource(hub, opts);
