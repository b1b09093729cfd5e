/**
 * The replay player behind the time scrubber. A recording is rebuilt into packets once, in slices
 * (the worker keeps answering meanwhile), by the same engine as live and advanced at the
 * recorder's own clock points, so the packets are the ones the recorder saw. The player then moves
 * a playhead through those packets, ordered by their first hop: the page lists every packet that
 * started by the playhead, whole (a recording knows how each packet ends).
 *
 * Playing moves the playhead with the wall clock times the speed; seeking and stepping move it at
 * once. Moving forward hands packets to the IngestCore, so the filter, facet, bounded history and
 * packet detail work exactly as live; moving back takes the few packets past the new position out
 * by id, or rebuilds the history from the packets before it (a far jump costs at most one
 * history's worth of packets, whatever the recording's size).
 */
import type { Packet } from '../../../shared/packet.js';
import { Reconstructor } from '../../../shared/reconstruct.js';
import { RecordingStitch, recordingPipeline, asPacket } from '../../../shared/cluster/pipeline.js';
import { NetfilterStepsQueue } from '../../../shared/netfilter/steps-queue.js';
import { FilterError, packetMatches, parseFilter } from '../../../shared/filter/index.js';
import type { Recording } from '../api/replay-source.js';
import type { IngestCore } from './ingest-core.js';
import type { ReplayControl, ReplayHistogram, ReplayPosition } from './protocol.js';

export interface PlayerOptions {
  /** Times the recorded pace (Infinity: as fast as the worker goes). */
  readonly speed: number;
  /** At the end, start over; the list keeps earlier rounds, their times moved past the previous round. */
  readonly loop: boolean;
  /** Pause between rounds, ms. */
  readonly loopGapMs: number;
  /** Load and wait at the start instead of playing. */
  readonly paused?: boolean;
  /** Whether an address is local to a namespace (the recording's model): lets received packets count as delivered. */
  readonly isLocal?: (netns: number, addr: string) => boolean;
  /**
   * Puts a packet next to the recording's model (shared/expectation.ts, as `replay --json` does):
   * called once per packet, in the order the rebuild finishes them, so conntrack's memory of
   * connections runs as it did live; loops and seeks reuse the result.
   */
  readonly annotate?: (packet: Packet) => Packet;
  /** Events rebuilt per slice (default 20,000); tests make it small to see the build progress. */
  readonly sliceEvents?: number;
}

/** The worker around the player: timers, and where rows, positions and the density strip go. */
export interface PlayerHost {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** Rows changed; `now`: the reader moved (seek, step) and should see them at once. */
  rows(now: boolean): void;
  /** Where the playhead is; `now`: the reader moved it (else it may be thinned out). */
  position(pos: ReplayPosition, now: boolean): void;
  histogram(h: ReplayHistogram): void;
}

const TICK_MS = 50;
/** Packets per tick at max speed: the worker answers controls between batches. */
const MAX_BATCH = 2048;
/** Events rebuilt per slice while building: a few ms of work, so controls are answered meanwhile. */
const BUILD_SLICE = 20_000;
/**
 * While building, the playhead stays this far behind the newest event rebuilt: a packet whose
 * first hop is older has had more than the engine's idle time (1 s) plus its reorder window to
 * finish, so it is in the list in its place.
 */
const SAFE_NS = 2_000_000_000;
/** Stepping or seeking back over at most this many packets takes them out by id; beyond, the history is rebuilt. */
const TAKE_BACK_MAX = 5000;
const LOOP_PAD_NS = 1_000_000_000;
export const HISTOGRAM_BUCKETS = 240;

/** A packet id (`<first hop time, base 36>-<skb>`) with its time moved by `by` ns. */
export function shiftId(id: string, by: number): string {
  if (by === 0) return id;
  const dash = id.indexOf('-');
  const t = parseInt(id.slice(0, dash), 36);
  return Number.isFinite(t) ? `${(t + by).toString(36)}${id.slice(dash)}` : id;
}

/** A packet as seen `by` ns later: a later round of a looping replay. */
export function shiftPacket(p: Packet, by: number): Packet {
  if (by === 0) return p;
  return {
    ...p,
    id: shiftId(p.id, by),
    cloneOf: p.cloneOf === null ? null : shiftId(p.cloneOf, by),
    hops: p.hops.map((h) => ({ ...h, t: h.t + by })),
    ...(p.notes ? { notes: p.notes.map((n) => ({ ...n, t: n.t + by })) } : {}),
  };
}

/** Index of the first element of sorted `a` (by `key`) greater than `t`. */
function upper<T>(a: readonly T[], t: number, key: (x: T) => number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(a[mid] as T) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const num = (x: number): number => x;

/**
 * The recorded session's filter as the reconstruction's `accept`, as `hoptrace replay` applies it
 * (server/recording/replay.ts): packets the kernel followed that the filter rejects are left out.
 */
function recordedFilter(text: string): { accept?: (p: Packet) => boolean } {
  if (text === '') return {};
  try {
    const ast = parseFilter(text);
    return ast.kind === 'all' ? {} : { accept: (p) => packetMatches(ast, p) };
  } catch (err) {
    if (err instanceof FilterError) return {};
    throw err;
  }
}

export class ReplayPlayer {
  readonly t0: number;
  readonly t1: number;
  /** Every packet rebuilt so far, by first hop time (ties: in the order they finished). */
  private readonly packets: Packet[] = [];
  private readonly starts: number[] = [];
  private readonly recon: Reconstructor;
  /** A cluster recording (record --hub): the hub's pipeline, stitching packets across nodes; null on one host. */
  private readonly cluster: RecordingStitch | null;
  /** Recordings of netfilter sessions: packets wait for their steps as they did live (server/recording/replay.ts). */
  private readonly steps: NetfilterStepsQueue | null;
  private bi = 0;
  private ci = 0;
  /** Next depth mark (note, netfilter event) to apply, and the recorder's clock so far. */
  private di = 0;
  private clockT = 0;
  private newestBuilt = 0;
  private built = false;
  /** Build time not yet reported to the core's busy figure. */
  private buildMs = 0;
  private cursor: number;
  /** packets[0, k) of this round are in the core; packets[0, base) were before the history's reach. */
  private k = 0;
  private base = 0;
  private playing: boolean;
  private speed: number;
  private ended = false;
  private round = 0;
  private shift = 0;
  private lastWall = 0;
  private waitUntil = 0;
  private tickTimer: unknown = null;
  private buildTimer: unknown = null;
  private current: string | null = null;
  private stopped = false;
  private readonly counts = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  private readonly dropCounts = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  private lastHistogram = -Infinity;

  constructor(
    private readonly rec: Recording,
    private readonly core: IngestCore,
    private readonly opts: PlayerOptions,
    private readonly host: PlayerHost,
  ) {
    const first = rec.events[0]?.t;
    const last = rec.events[rec.events.length - 1]?.t;
    const start = rec.header.startMonoNs > 0 ? rec.header.startMonoNs : (first ?? 0);
    this.t0 = Math.min(start, first ?? start);
    this.t1 = Math.max(this.t0, last ?? this.t0, rec.endT ?? this.t0);
    this.cursor = this.t0;
    this.newestBuilt = this.t0;
    this.speed = validSpeed(opts.speed);
    this.playing = !opts.paused;
    const reasons = rec.header.dropReasons;
    this.recon = new Reconstructor({
      nsName: (netns) => rec.names.get(netns) ?? null,
      dropReason: (code) => reasons.get(code) ?? `reason-${code}`,
      ...(opts.isLocal ? { isLocal: opts.isLocal } : {}),
      ...recordedFilter(rec.header.filter),
    });
    this.steps = rec.header.netfilter ? new NetfilterStepsQueue() : null;
    const pipeline = recordingPipeline(rec.models ?? [], reasons, { netfilter: rec.header.netfilter === true });
    this.cluster = pipeline ? new RecordingStitch(pipeline) : null;
  }

  /** Advances to the recorder's clock points and applies the notes and netfilter events up to file position `bi`. */
  private marksUpTo(bi: number): void {
    const clocks = this.rec.clocks;
    for (let c = clocks[this.ci]; c && c[0] <= bi; c = clocks[++this.ci]) {
      this.recon.advance(c[1]);
      if (c[1] > this.clockT) this.clockT = c[1];
    }
    const depth = this.rec.depth;
    for (let d = depth[this.di]; d && d.after <= bi; d = depth[++this.di]) {
      // A hub session's notes and steps carry their node: they join that node's packets in the hub's pipeline.
      if ('note' in d) {
        if (this.cluster && d.note.node) this.cluster.note(d.note as typeof d.note & { node: string });
        else this.recon.pushNote(d.note);
      } else if (this.cluster && d.netfilter.node) this.cluster.netfilter(d.netfilter as typeof d.netfilter & { node: string });
      else this.steps?.add(d.netfilter);
    }
  }

  start(): void {
    // Events count as played once the playhead is at or past them: those at the very start are.
    this.core.ingestPackets([], this.eventsUpTo(this.t0));
    this.buildSlice();
    this.lastWall = this.host.now();
    if (this.playing) this.scheduleTick(0);
    this.report(true);
  }

  stop(): void {
    this.stopped = true;
    this.playing = false;
    if (this.tickTimer !== null) this.host.clearTimer(this.tickTimer);
    if (this.buildTimer !== null) this.host.clearTimer(this.buildTimer);
    this.tickTimer = this.buildTimer = null;
  }

  control(c: ReplayControl): void {
    if (this.stopped) return;
    switch (c.op) {
      case 'play': this.play(); break;
      case 'pause': this.pause(); break;
      case 'speed':
        this.speed = validSpeed(c.speed);
        // The new pace counts from now; a tick waiting for 50 ms at "max" would waste them.
        this.lastWall = this.host.now();
        if (this.playing) this.scheduleTick(0);
        break;
      case 'seek': this.seek(c.t); break;
      case 'step': this.step(c.dir); break;
    }
    this.report(true);
  }

  position(): ReplayPosition {
    const first = Math.max(this.base, this.k - this.core.historyLimit);
    const current = this.current;
    this.current = null;
    return {
      t0: this.t0, t1: this.t1, cursor: this.cursor, playing: this.playing, speed: this.speed, ended: this.ended,
      round: this.round, builtTo: this.limit(), building: !this.built, index: this.k, total: this.packets.length,
      loadedFrom: first < this.k ? (this.starts[first] ?? null) : null, current,
    };
  }

  histogram(): ReplayHistogram {
    return { t0: this.t0, t1: this.t1, counts: this.counts.slice(), drops: this.dropCounts.slice() };
  }

  // ---- controls ----

  private play(): void {
    if (this.ended || this.cursor >= this.t1) {
      this.ended = false;
      this.moveTo(this.t0, 0);
    }
    this.playing = true;
    this.lastWall = this.host.now();
    this.waitUntil = 0;
    this.scheduleTick(0);
  }

  private pause(): void {
    this.playing = false;
    if (this.tickTimer !== null) this.host.clearTimer(this.tickTimer);
    this.tickTimer = null;
  }

  private seek(t: number): void {
    const to = Math.max(this.t0, Math.min(this.limit(), Number.isFinite(t) ? t : this.t0));
    this.ended = false;
    this.moveTo(to, upper(this.starts, to, num));
    this.lastWall = this.host.now();
  }

  /** To the next/previous start of a packet the list shows; the playhead stops there. */
  private step(dir: 1 | -1): void {
    this.pause();
    this.ended = false;
    const n = this.packets.length;
    if (dir === 1) {
      let j = this.k;
      while (j < n && !this.core.passes(this.packets[j] as Packet)) j++;
      if (j >= n) return;
      this.moveTo(this.starts[j] as number, j + 1);
      this.current = shiftId((this.packets[j] as Packet).id, this.shift);
      return;
    }
    // The packet the playhead is on is the newest listed; the one before it is the target.
    let i = this.k - 1;
    while (i >= 0 && !this.core.passes(this.packets[i] as Packet)) i--;
    let p = i - 1;
    while (p >= 0 && !this.core.passes(this.packets[p] as Packet)) p--;
    if (p < 0) {
      this.moveTo(this.t0, 0);
      return;
    }
    this.moveTo(this.starts[p] as number, p + 1);
    this.current = shiftId((this.packets[p] as Packet).id, this.shift);
  }

  /** Puts the playhead at `t` with packets[0, kNew) listed: adds, takes back, or rebuilds the history. */
  private moveTo(t: number, kNew: number): void {
    const h = this.core.historyLimit;
    if (kNew >= this.k && kNew - this.k <= h) {
      this.add(kNew, t);
    } else if (kNew < this.k && kNew >= this.base && this.k - kNew <= TAKE_BACK_MAX) {
      const ids = new Set<string>();
      for (let i = kNew; i < this.k; i++) ids.add(shiftId((this.packets[i] as Packet).id, this.shift));
      this.core.remove(ids);
      this.core.ingestPackets([], this.eventsUpTo(t) - this.eventsUpTo(this.cursor));
      this.k = kNew;
      this.cursor = t;
    } else {
      this.core.reset();
      this.base = Math.max(0, kNew - h);
      this.k = this.base;
      const from = this.base < kNew ? (this.starts[this.base] as number) : t;
      this.cursor = from;
      // Events from the oldest packet kept on: what the listed packets stand for.
      this.core.ingestPackets([], this.eventsUpTo(from) - this.eventsBefore(from));
      this.add(kNew, t);
    }
    this.core.restartRates();
    this.host.rows(true);
  }

  /** Lists packets[k, kNew) and puts the playhead at `t` (callers keep packets[kNew] after it). */
  private add(kNew: number, t: number): void {
    const events = this.eventsUpTo(t) - this.eventsUpTo(this.cursor);
    const batch: Packet[] = [];
    for (let i = this.k; i < kNew; i++) batch.push(shiftPacket(this.packets[i] as Packet, this.shift));
    this.k = kNew;
    this.cursor = t;
    if (batch.length || events || this.buildMs) {
      this.core.ingestPackets(batch, events, this.buildMs);
      this.buildMs = 0;
    }
  }

  // ---- playing ----

  private scheduleTick(ms: number): void {
    if (this.tickTimer !== null) this.host.clearTimer(this.tickTimer);
    this.tickTimer = this.host.setTimer(() => this.tick(), ms);
  }

  private tick(): void {
    this.tickTimer = null;
    if (this.stopped || !this.playing) return;
    const now = this.host.now();
    if (now < this.waitUntil) {
      this.scheduleTick(this.waitUntil - now);
      return;
    }
    const limit = this.limit();
    const max = !Number.isFinite(this.speed);
    let target: number;
    if (max) {
      const j = Math.min(this.packets.length, this.k + MAX_BATCH);
      target = j > this.k && j < this.packets.length ? (this.starts[j - 1] as number) : limit;
    } else {
      target = this.cursor + (now - this.lastWall) * 1e6 * this.speed;
    }
    this.lastWall = now;
    target = Math.min(target, limit);
    if (target > this.cursor || upper(this.starts, target, num) > this.k) {
      this.add(upper(this.starts, target, num), target);
      this.host.rows(false);
    }
    if (this.built && this.cursor >= this.t1) {
      this.atEnd(now);
      this.report(true);
    } else {
      this.report(false);
    }
    if (!this.playing) return;
    // At the build frontier, wait for the builder rather than spin against it.
    const starved = !this.built && this.cursor >= limit;
    this.scheduleTick(max && !starved ? 0 : TICK_MS);
  }

  private atEnd(now: number): void {
    if (!this.opts.loop || this.packets.length === 0) {
      this.playing = false;
      this.ended = true;
      return;
    }
    // Next round: the same packets again, later, after the list's previous rounds.
    const gap = Math.max(0, this.opts.loopGapMs);
    this.round++;
    this.shift += this.t1 - this.t0 + LOOP_PAD_NS + gap * 1e6 * (Number.isFinite(this.speed) ? this.speed : 1);
    this.cursor = this.t0;
    this.k = 0;
    this.base = 0;
    this.core.ingestPackets([], this.eventsUpTo(this.t0));
    this.waitUntil = now + gap;
    this.lastWall = this.waitUntil;
  }

  // ---- building ----

  private buildSlice(): void {
    this.buildTimer = null;
    if (this.stopped || this.built) return;
    const started = this.host.now();
    const events = this.rec.fileEvents;
    const stitched: Packet[] = [];
    const end = Math.min(events.length, this.bi + Math.max(1, this.opts.sliceEvents ?? BUILD_SLICE));
    for (; this.bi < end; this.bi++) {
      // The recorder's clock points, where it advanced its live reconstruction between events.
      this.marksUpTo(this.bi);
      const ev = events[this.bi];
      if (!ev) continue;
      if (ev.t > this.newestBuilt) this.newestBuilt = ev.t;
      if (this.cluster && ev.node !== undefined) {
        for (const p of this.cluster.push(ev as typeof ev & { node: string })) stitched.push(asPacket(p));
        continue;
      }
      this.recon.push(ev);
    }
    let out = this.recon.drain();
    if (this.steps) out = this.steps.pass(out, this.clockT);
    // Stitched packets have their nodes' steps already (the hub's pipeline joined them): not through the one-host queue.
    out = out.concat(stitched);
    if (this.bi >= events.length) {
      this.marksUpTo(Infinity);
      const rest = this.recon.drain().concat(this.recon.flush());
      out = out.concat(this.steps ? this.steps.flush(rest) : rest, (this.cluster?.finish() ?? []).map(asPacket));
      this.built = true;
    }
    // A cluster recording's model spans several kernels: one kernel's expected path would read
    // every crossing packet as a divergence (as `replay` does, none is given).
    const annotate = this.cluster ? undefined : this.opts.annotate;
    for (const p of out) this.insert(annotate ? annotate(p) : p);
    this.buildMs += this.host.now() - started;
    const now = this.host.now();
    if (this.built || now - this.lastHistogram > 500) {
      this.lastHistogram = now;
      this.host.histogram(this.histogram());
    }
    if (!this.built) this.buildTimer = this.host.setTimer(() => this.buildSlice(), 0);
    if (!this.playing) this.report(this.built);
  }

  private insert(p: Packet): void {
    const s = p.hops[0]?.t ?? 0;
    let i = this.starts.length;
    while (i > 0 && (this.starts[i - 1] as number) > s) i--;
    this.packets.splice(i, 0, p);
    this.starts.splice(i, 0, s);
    const span = this.t1 - this.t0;
    const b = Math.max(0, Math.min(HISTOGRAM_BUCKETS - 1, span > 0 ? Math.floor(((s - this.t0) / span) * HISTOGRAM_BUCKETS) : 0));
    this.counts[b] = (this.counts[b] ?? 0) + 1;
    if (p.fate === 'dropped') this.dropCounts[b] = (this.dropCounts[b] ?? 0) + 1;
    if (i < this.base) {
      // Older than anything the history holds now: it stays out, like its neighbours.
      this.base++;
      this.k++;
    } else if (i < this.k || (i === this.k && s < this.cursor)) {
      // A packet that lived long finished only now: it started before the playhead, list it.
      this.k++;
      this.core.ingestPackets([shiftPacket(p, this.shift)], 0);
      this.host.rows(false);
    }
  }

  /** How far the playhead may go: the end, or while building, safely behind the build. */
  private limit(): number {
    return this.built ? this.t1 : Math.max(this.t0, Math.min(this.t1, this.newestBuilt - SAFE_NS));
  }

  private eventsUpTo(t: number): number {
    return upper(this.rec.events, t, (e) => e.t);
  }

  private eventsBefore(t: number): number {
    return upper(this.rec.events, t - 1, (e) => e.t);
  }

  private report(now: boolean): void {
    this.host.position(this.position(), now);
  }
}

function validSpeed(s: number): number {
  if (s === Number.POSITIVE_INFINITY) return s;
  return Number.isFinite(s) && s > 0 ? s : 1;
}
