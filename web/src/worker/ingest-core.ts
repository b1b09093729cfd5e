/**
 * The worker's engine, free of any Worker API so tests and the benchmark can drive it directly:
 * decodes hop batches, reconstructs packets with the shared engine, keeps a bounded history of
 * every packet, and hands the UI the rows its filter and facet let through.
 *
 * The filter is applied after reconstruction rather than as the Reconstructor's `accept`, on
 * purpose: the history keeps the packets a filter rejects, so widening the filter again brings
 * back what was seen meanwhile instead of an empty list.
 *
 * Sessions with depth: notes go into the engine (`pushNote`), netfilter events into a
 * NetfilterStepsQueue that holds each finished packet until the kernel clock (the newest event,
 * moved on while idle) is past its last hop by the queue's delay — the CLI's and the service's
 * way of attaching them, from shared/, not a copy of it.
 *
 * With a topology model (`setModel`), every packet it reconstructs gets its expected path and
 * divergence from shared/expectation.ts `PathExpectations`, in the order packets finish — as
 * `trace`, `replay` and the service annotate them (clone skip, conntrack memory, NAT learned from
 * observed hops, the netfilter rule that dropped it), so the page never tells another story.
 * Packets reconstructed elsewhere (`ingestPackets`: the replay player annotates as it builds)
 * keep the expectations they arrive with.
 */
import { pathTunnel } from '../domain/tunnel-marks.js';
import type { HopEvent } from '../../../shared/hop-event.js';
import { protoNumber } from '../../../shared/hop-event.js';
import type { Packet } from '../../../shared/packet.js';
import { Reconstructor } from '../../../shared/reconstruct.js';
import { fateText } from '../../../shared/format.js';
import { decodeBatch } from '../../../shared/wire.js';
import { decodeDepthBatch } from '../../../shared/netfilter/wire.js';
import { NetfilterStepsQueue } from '../../../shared/netfilter/steps-queue.js';
import { compileMatcher, FilterError, formatFilterError, packetMatches, parseFilter } from '../../../shared/filter/index.js';
import type { HopMatcher } from '../../../shared/filter/index.js';
import { PathExpectations } from '../../../shared/expectation.js';
import type { Topology } from '../../../shared/topology/model.js';
import type { Facet, FilterProblem, PacketDetail, PacketRow, WorkerStats } from './protocol.js';

export interface IngestOptions {
  /** Wall clock in ms since the epoch, for the kernel-clock estimate; injectable for tests. */
  readonly wallNow?: () => number;
  /** Packets kept (full) for re-filtering and the detail view. */
  readonly historyMax?: number;
  /** Wall clock in ms (performance.now in the worker); injectable for tests. */
  readonly now?: () => number;
  /** Told (once per message) when the model could not compute a packet's expected path. */
  readonly onModelError?: (message: string) => void;
}

interface Stored {
  readonly n: number;
  readonly packet: Packet;
  readonly row: PacketRow;
  /** Interfaces the packet was seen on, as `netns:ifindex` keys (for facets and rates). */
  readonly ifaces: readonly string[];
}

type PacketTest = (s: Stored) => boolean;

export const DEFAULT_HISTORY = 120_000;

export function ifaceKey(netns: number, ifindex: number): string {
  return `${netns}:${ifindex}`;
}

/** Folds a packet into its list row. */
export function toRow(n: number, p: Packet): PacketRow {
  const path: number[] = [];
  const pathNames: (string | null)[] = [];
  let nat: PacketRow['nat'] = null;
  // Which path entry each hop belongs to, for the tunnel's place on the path; only built for
  // packets that went through one.
  const tunnelled = p.hops.some((h) => h.encap || h.outer);
  const pathOf: number[] = [];
  for (const h of p.hops) {
    if (path[path.length - 1] !== h.netns && h.netns !== 0) {
      path.push(h.netns);
      pathNames.push(h.ns);
    }
    if (tunnelled) pathOf.push(Math.max(0, path.length - 1));
    if (nat === null && h.nat) nat = h.nat.kind;
  }
  const tunnel = tunnelled ? pathTunnel(p.hops, pathOf) : null;
  // The hub's stitched packets carry the node on every hop: the nodes crossed, in order.
  const nodes: string[] = [];
  for (const h of p.hops as readonly (typeof p.hops[number] & { node?: unknown })[]) {
    if (typeof h.node === 'string' && nodes[nodes.length - 1] !== h.node) nodes.push(h.node);
  }
  const first = p.hops[0];
  const last = p.hops[p.hops.length - 1];
  return {
    n, id: p.id, t: first?.t ?? 0, proto: p.proto, family: p.family,
    src: p.src, dst: p.dst, sport: p.sport, dport: p.dport,
    path, pathNames, hops: p.hops.length,
    latencyNs: first && last ? last.t - first.t : 0,
    fate: p.fate, dropReason: p.drop?.reason ?? null, nat, clone: p.cloneOf !== null,
    ...(p.discard ? { fateDetail: fateText(p) } : {}),
    ...(tunnel ? { tunnel } : {}),
    ...(nodes.length > 0 ? { nodes } : {}),
  };
}

function stored(n: number, p: Packet): Stored {
  const ifaces: string[] = [];
  for (const h of p.hops) {
    if (h.ifindex === 0) continue;
    const k = ifaceKey(h.netns, h.ifindex);
    if (!ifaces.includes(k)) ifaces.push(k);
  }
  return { n, packet: p, row: toRow(n, p), ifaces };
}

function facetTest(facet: Facet | null): PacketTest | null {
  if (!facet) return null;
  switch (facet.kind) {
    case 'ns':
      return (s) => s.packet.hops.some((h) => h.netns === facet.netns);
    case 'iface': {
      const k = ifaceKey(facet.netns, facet.ifindex);
      return (s) => s.ifaces.includes(k);
    }
    case 'link': {
      const a = ifaceKey(facet.a.netns, facet.a.ifindex);
      const b = ifaceKey(facet.b.netns, facet.b.ifindex);
      return (s) => s.ifaces.includes(a) || s.ifaces.includes(b);
    }
  }
}

/** A packet passes a filter when any of its hops does (the CLI's rule: NAT must not hide a packet). */
function filterTest(m: HopMatcher | null): PacketTest | null {
  if (!m) return null;
  return (s) => {
    const p = s.packet;
    const proto = protoNumber(p.proto);
    return p.hops.some((h) => m({ family: p.family, proto, src: h.src, dst: h.dst, sport: h.sport, dport: h.dport }));
  };
}

export class IngestCore {
  private historyMax: number;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private clockOffsetMs: number | null = null;
  private names = new Map<number, string>();
  private local = new Map<number, Set<string>>();
  private reasons = new Map<number, string>();
  /** The model the packets are put next to (null: none known, packets go without expectations). */
  private model: Topology | null = null;
  private expectations: PathExpectations | null = null;
  private readonly onModelError: ((message: string) => void) | undefined;
  /**
   * The session's own filter, as the service's reconstruction applies it: the kernel follows some
   * packets the filter rejects (a tuple it remembers, a NATed hop), and they are not the session's.
   */
  private sessionAccept: ((p: Packet) => boolean) | null = null;
  private recon!: Reconstructor;
  /** Netfilter steps of a session with `netfilter` (null otherwise). */
  private steps: NetfilterStepsQueue | null = null;
  private netfilter = false;
  // History as a ring: `ring[(head + i) % cap]`, oldest first.
  private ring: (Stored | undefined)[] = [];
  private head = 0;
  private size = 0;
  private byId = new Map<string, Stored>();
  private seqN = 0;

  private filterPass: PacketTest | null = null;
  private facetPass: PacketTest | null = null;
  private filterText = '';

  private pendingRows: PacketRow[] = [];
  /** Ids of listed rows taken back (a replay stepping backwards), for the next takeRows. */
  private pendingRemovals: string[] = [];
  private resetPending = false;
  /** The filter changed: drop counts are rebuilt from the history with the next reset rows. */
  private recountDrops = false;
  private paused = false;

  // Clock: the kernel time of the newest event and when (wall ms) it arrived, so idle packets can
  // be finished when traffic stops although no event says time has moved on.
  private newestT = 0;
  private newestWall = 0;

  private lastSeq = -1;
  private lastDecodeError: string | null = null;
  private totals = { events: 0, packets: 0, shown: 0, decodeErrors: 0, seqGaps: 0, lostKernel: 0, busyMs: 0 };
  private window = { start: 0, events: 0, packets: 0, busyMs: 0 };
  private rates = { eventsPerSec: 0, packetsPerSec: 0, busy: 0 };
  private ifaceCounts = new Map<string, number>();
  private ifaceRates: [number, number, number][] = [];
  private drops = new Map<string, [number, string, string, number, number]>();

  constructor(options: IngestOptions = {}) {
    this.historyMax = Math.max(1, options.historyMax ?? DEFAULT_HISTORY);
    this.now = options.now ?? (() => Date.now());
    this.wallNow = options.wallNow ?? (() => Date.now());
    this.onModelError = options.onModelError;
    this.window.start = this.now();
    this.reset();
  }

  /** Forgets all packets and counters (a new session). Settings (names, filter) stay. */
  reset(): void {
    this.recon = new Reconstructor({
      nsName: (netns) => this.names.get(netns) ?? null,
      dropReason: (code) => this.reasons.get(code) ?? `reason-${code}`,
      isLocal: (netns, addr) => this.local.get(netns)?.has(addr) ?? false,
      accept: (p) => this.sessionAccept?.(p) ?? true,
    });
    this.steps = this.netfilter ? new NetfilterStepsQueue() : null;
    // A new session: the connections the model followed belong to the old one.
    this.expectations = this.model ? new PathExpectations(this.model, undefined, this.onModelError) : null;
    this.ring = new Array<Stored | undefined>(this.historyMax);
    this.head = 0;
    this.size = 0;
    this.byId.clear();
    this.pendingRows = [];
    this.pendingRemovals = [];
    this.resetPending = true;
    this.lastSeq = -1;
    this.newestT = 0;
    this.clockOffsetMs = null;
    this.totals = { events: 0, packets: 0, shown: 0, decodeErrors: 0, seqGaps: 0, lostKernel: 0, busyMs: 0 };
    this.ifaceCounts.clear();
    this.ifaceRates = [];
    this.drops.clear();
  }

  /**
   * The live session's canonical filter (SessionInfo.filter): packets it rejects are left out, as
   * the service's /packets and `trace` leave them out. '' or a filter this page cannot parse: all.
   */
  setSessionFilter(text: string): void {
    let accept: ((p: Packet) => boolean) | null = null;
    if (text !== '') {
      try {
        const ast = parseFilter(text);
        if (ast.kind !== 'all') accept = (p) => packetMatches(ast, p);
      } catch (err) {
        if (!(err instanceof FilterError)) throw err;
      }
    }
    this.sessionAccept = accept;
  }

  /** The session's depth: with `netfilter`, finished packets wait for their netfilter steps. */
  setDepth(depth: { readonly netfilter: boolean }): void {
    if (depth.netfilter === this.netfilter) return;
    this.netfilter = depth.netfilter;
    if (depth.netfilter) this.steps = new NetfilterStepsQueue();
    else if (this.steps) {
      // Packets still waiting leave now, with what is known.
      const waiting = this.steps.flush();
      this.steps = null;
      this.collect(this.annotate(waiting));
    }
  }

  /**
   * Decodes and ingests one protobuf DepthBatch: notes join their packets in the engine,
   * netfilter events wait in the steps queue for theirs. Undecodable bytes are counted.
   */
  ingestDepth(bytes: Uint8Array): void {
    const t0 = this.now();
    const batch = this.decoded(bytes, decodeDepthBatch);
    if (batch === null) return;
    for (const n of batch.notes) this.recon.pushNote(n);
    if (batch.netfilter.length > 0) {
      // Events from a session whose depth was not announced (yet): attach from now on.
      if (!this.steps) this.setDepth({ netfilter: true });
      for (const ev of batch.netfilter) this.steps?.add(ev);
    }
    this.addBusy(this.now() - t0);
  }

  /** Finished packets on their way to the history: through the steps queue when there is one, then next to the model. */
  private finished(packets: Packet[], clockNs: number): Packet[] {
    return this.annotate(this.steps ? this.steps.pass(packets, clockNs) : packets);
  }

  /** Each packet with its expected path and divergence (when there is a model), in the order given. */
  private annotate(packets: Packet[]): Packet[] {
    const e = this.expectations;
    if (!e || packets.length === 0) return packets;
    return packets.map((p) => ('expected' in p ? p : e.annotate(p)));
  }

  /**
   * The topology model packets are put next to: the service's (GET /api/topology, its `topology`
   * messages) or a recording's. A changed model keeps the connections the old one followed, as
   * the service's does, so replies stay on their NATed path; null: packets go without.
   */
  setModel(topology: Topology | null): void {
    if (topology === this.model) return;
    this.model = topology;
    this.expectations = topology
      ? this.expectations ? this.expectations.withTopology(topology) : new PathExpectations(topology, undefined, this.onModelError)
      : null;
  }

  /** Changes how many packets are kept; starts over (like a new session). */
  setHistoryMax(n: number): void {
    this.historyMax = Math.max(1, Math.floor(n));
    this.reset();
  }

  /** Packets kept at most (the history's size). */
  get historyLimit(): number {
    return this.historyMax;
  }

  setTopology(names: readonly (readonly [number, string])[], local: readonly (readonly [number, string])[]): void {
    this.names = new Map(names);
    this.local = new Map();
    for (const [netns, addr] of local) {
      let set = this.local.get(netns);
      if (!set) this.local.set(netns, (set = new Set()));
      set.add(addr);
    }
  }

  setDropReasons(entries: readonly (readonly [number, string])[]): void {
    this.reasons = new Map(entries);
  }

  /** Applies a new filter and facet to future packets and to the history. A bad filter changes nothing. */
  setFilter(text: string, facet: Facet | null): FilterProblem | null {
    let matcher: HopMatcher | null;
    try {
      const ast = parseFilter(text);
      matcher = ast.kind === 'all' ? null : compileMatcher(ast);
    } catch (err) {
      if (err instanceof FilterError) {
        return { message: err.message, offset: err.offset, length: err.length, formatted: formatFilterError(text, err) };
      }
      throw err;
    }
    this.filterText = text;
    this.filterPass = filterTest(matcher);
    this.facetPass = facetTest(facet);
    this.resetPending = true;
    this.recountDrops = true;
    this.totals.shown = 0;
    return null;
  }

  get filter(): string {
    return this.filterText;
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
  }

  /** `decode(bytes)`, or null with the error counted (undecodable bytes are counted, not thrown). */
  private decoded<T>(bytes: Uint8Array, decode: (bytes: Uint8Array) => T): T | null {
    try {
      return decode(bytes);
    } catch (err) {
      this.totals.decodeErrors++;
      this.lastDecodeError = err instanceof Error ? err.message : String(err);
      return null;
    }
  }

  /** Decodes and ingests one protobuf HopBatch. Undecodable bytes are counted, not thrown. */
  ingestBatch(bytes: Uint8Array): void {
    const t0 = this.now();
    const batch = this.decoded(bytes, decodeBatch);
    if (batch === null) return;
    if (this.lastSeq >= 0 && batch.seq > this.lastSeq + 1) this.totals.seqGaps += batch.seq - this.lastSeq - 1;
    if (batch.seq > this.lastSeq) this.lastSeq = batch.seq;
    this.totals.lostKernel += batch.lostKernel;
    this.estimateClock(batch.events);
    this.push(batch.events);
    this.addBusy(this.now() - t0);
  }

  private addBusy(ms: number): void {
    this.window.busyMs += ms;
    this.totals.busyMs += ms;
  }

  /**
   * A live batch leaves the kernel moments before it arrives here, so arrival − newest event time
   * is the kernel-to-wall offset plus a delay; the smallest value seen has the least delay in it.
   * Only for live input: a replay's times are not "now".
   */
  private estimateClock(events: readonly HopEvent[]): void {
    let newest = 0;
    for (const ev of events) if (ev.t > newest) newest = ev.t;
    if (newest === 0) return;
    const offset = this.wallNow() - newest / 1e6;
    if (this.clockOffsetMs === null || offset < this.clockOffsetMs) this.clockOffsetMs = offset;
  }

  ingestEvents(events: readonly HopEvent[]): void {
    const t0 = this.now();
    this.push(events);
    this.addBusy(this.now() - t0);
  }

  /**
   * Packets reconstructed elsewhere (the replay player, which rebuilds a recording once and then
   * moves through it), with the number of events they stand for and the time spent building them.
   */
  ingestPackets(packets: readonly Packet[], events: number, buildMs = 0): void {
    const t0 = this.now();
    this.totals.events += events;
    this.window.events += events;
    this.collect(packets);
    this.addBusy(this.now() - t0 + buildMs);
  }

  /** Whether a packet would be listed under the current filter and facet. */
  passes(p: Packet): boolean {
    const s = stored(-1, p);
    return (!this.filterPass || this.filterPass(s)) && (!this.facetPass || this.facetPass(s));
  }

  /**
   * Takes packets back out of the history (a replay stepping or seeking backwards): they leave
   * the list with the next takeRows, as ids, rather than by resending every row.
   */
  remove(ids: ReadonlySet<string>): void {
    if (ids.size === 0) return;
    const keep: Stored[] = [];
    const gone = new Set<string>();
    for (let i = 0; i < this.size; i++) {
      const s = this.ring[(this.head + i) % this.historyMax];
      if (!s) continue;
      if (!ids.has(s.packet.id)) {
        keep.push(s);
        continue;
      }
      this.byId.delete(s.packet.id);
      this.totals.packets--;
      if (this.filterPass && !this.filterPass(s)) continue;
      this.uncountDrop(s.packet);
      if (this.facetPass && !this.facetPass(s)) continue;
      this.totals.shown--;
      gone.add(s.packet.id);
    }
    this.ring = new Array<Stored | undefined>(this.historyMax);
    for (let i = 0; i < keep.length; i++) this.ring[i] = keep[i];
    this.head = 0;
    this.size = keep.length;
    if (this.resetPending) return;
    // Rows not sent yet are simply not sent; the others are taken back by id.
    const unsent = new Set<string>();
    for (const r of this.pendingRows) if (gone.has(r.id)) unsent.add(r.id);
    if (unsent.size) this.pendingRows = this.pendingRows.filter((r) => !unsent.has(r.id));
    for (const id of gone) if (!unsent.has(id)) this.pendingRemovals.push(id);
  }

  private push(events: readonly HopEvent[]): void {
    if (events.length === 0) return;
    for (const ev of events) {
      this.recon.push(ev);
      if (ev.t > this.newestT) this.newestT = ev.t;
    }
    this.newestWall = this.now();
    this.totals.events += events.length;
    this.window.events += events.length;
    this.collect(this.finished(this.recon.drain(), this.newestT));
  }

  /** Moves the engine's clock along with the wall clock while no events arrive. */
  tick(): void {
    if (this.newestT === 0) return;
    const idleMs = this.now() - this.newestWall;
    if (idleMs < 50) return;
    const clock = this.newestT + Math.floor(idleMs * 1e6);
    this.recon.advance(clock);
    this.collect(this.finished(this.recon.drain(), clock));
  }

  /** Finishes every live packet (end of a replay), with the netfilter steps known so far. */
  flush(): void {
    const done = this.recon.flush();
    this.collect(this.annotate(this.steps ? this.steps.flush(done) : done));
  }

  private collect(packets: readonly Packet[]): void {
    for (const p of packets) {
      const s = stored(this.seqN++, p);
      const ifaces = s.ifaces;
      this.store(s);
      this.totals.packets++;
      this.window.packets++;
      if (this.filterPass && !this.filterPass(s)) continue;
      for (const k of ifaces) this.ifaceCounts.set(k, (this.ifaceCounts.get(k) ?? 0) + 1);
      this.countDrop(p);
      if (this.facetPass && !this.facetPass(s)) continue;
      this.totals.shown++;
      if (!this.resetPending) this.pendingRows.push(s.row);
    }
    // Rows beyond what the history holds could not be shown anyway: start over from the history.
    if (this.pendingRows.length > this.historyMax) {
      this.pendingRows = [];
      this.resetPending = true;
    }
  }

  private countDrop(p: Packet): void {
    if (!p.drop) return;
    const key = `${p.drop.netns}|${p.drop.ifname}|${p.drop.reason}`;
    const d = this.drops.get(key);
    const t = p.hops[p.hops.length - 1]?.t ?? 0;
    if (d) {
      d[3]++;
      d[4] = Math.max(d[4], t);
    } else {
      this.drops.set(key, [p.drop.netns, p.drop.ifname, p.drop.reason, 1, t]);
    }
  }

  private uncountDrop(p: Packet): void {
    if (!p.drop) return;
    const key = `${p.drop.netns}|${p.drop.ifname}|${p.drop.reason}`;
    const d = this.drops.get(key);
    if (!d) return;
    if (d[3] <= 1) this.drops.delete(key);
    else d[3]--;
  }

  private store(s: Stored): void {
    const cap = this.historyMax;
    if (this.size === cap) {
      const old = this.ring[this.head];
      if (old) this.byId.delete(old.packet.id);
      this.ring[this.head] = s;
      this.head = (this.head + 1) % cap;
    } else {
      this.ring[(this.head + this.size) % cap] = s;
      this.size++;
    }
    this.byId.set(s.packet.id, s);
  }

  /**
   * Rows for the UI since the last call: either new rows to append, or (after a filter change,
   * reset or overflow) every history row that passes, with `reset`. Null when there is nothing
   * to say or the list is paused.
   */
  takeRows(): { reset: boolean; rows: PacketRow[]; removed: string[] } | null {
    if (this.paused) return null;
    if (this.resetPending) {
      this.resetPending = false;
      this.pendingRows = [];
      this.pendingRemovals = [];
      const recount = this.recountDrops;
      this.recountDrops = false;
      if (recount) this.drops.clear();
      const rows: PacketRow[] = [];
      for (let i = 0; i < this.size; i++) {
        const s = this.ring[(this.head + i) % this.historyMax];
        if (!s) continue;
        if (this.filterPass && !this.filterPass(s)) continue;
        if (recount) this.countDrop(s.packet);
        if (this.facetPass && !this.facetPass(s)) continue;
        rows.push(s.row);
      }
      this.totals.shown = rows.length;
      return { reset: true, rows, removed: [] };
    }
    if (this.pendingRows.length === 0 && this.pendingRemovals.length === 0) return null;
    const rows = this.pendingRows;
    const removed = this.pendingRemovals;
    this.pendingRows = [];
    this.pendingRemovals = [];
    return { reset: false, rows, removed };
  }

  get(id: string): PacketDetail | null {
    const s = this.byId.get(id);
    return s ? { n: s.n, packet: s.packet } : null;
  }

  /**
   * Starts the rate window afresh: a replay's seek or step lists many packets at once, which are
   * not a rate (counted, they made events/s jump after every seek).
   */
  restartRates(): void {
    this.window = { start: this.now(), events: 0, packets: 0, busyMs: 0 };
    this.ifaceCounts.clear();
  }

  /** Statistics; call about once a second (rates are per call interval). */
  stats(): WorkerStats {
    const now = this.now();
    const dt = now - this.window.start;
    if (dt >= 250) {
      const per = 1000 / dt;
      this.rates = {
        eventsPerSec: this.window.events * per,
        packetsPerSec: this.window.packets * per,
        busy: Math.min(1, this.window.busyMs / dt),
      };
      this.ifaceRates = [...this.ifaceCounts].map(([k, c]) => {
        const [netns = 0, ifindex = 0] = k.split(':').map(Number);
        return [netns, ifindex, c * per] as [number, number, number];
      });
      this.ifaceCounts.clear();
      this.window = { start: now, events: 0, packets: 0, busyMs: 0 };
    }
    return {
      events: this.totals.events,
      eventsPerSec: this.rates.eventsPerSec,
      packets: this.totals.packets,
      packetsPerSec: this.rates.packetsPerSec,
      shown: this.totals.shown,
      history: this.size,
      live: this.recon.liveCount,
      late: this.recon.stats.late,
      splits: this.recon.stats.splits,
      decodeErrors: this.totals.decodeErrors,
      lastDecodeError: this.lastDecodeError,
      seqGaps: this.totals.seqGaps,
      lostKernel: this.totals.lostKernel,
      busy: this.rates.busy,
      busyMsTotal: this.totals.busyMs,
      clockOffsetMs: this.clockOffsetMs,
      pending: this.paused ? this.pendingRows.length : 0,
      ifaceRates: this.ifaceRates,
      drops: [...this.drops.values()],
    };
  }
}
