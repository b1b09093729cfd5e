/**
 * A stats session: one bpftrace stats program (probes/stats/), its snapshots turned into one
 * document per interval (shared/stats/). Used by `hoptrace stats` and by the service.
 *
 *   const s = new StatsSession({ filter: 'udp', intervalMs: 1000 });
 *   s.on('interval', (doc) => ...);   // one per interval, each covering only that interval
 *   await s.start();                  // preflight, names, attach; resolves once attached
 *   const last = await s.stop();      // detach; the final partial interval is emitted too
 */
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import { parseFilter, compileSocketToBpftrace, compileToBpftrace, describeFilter, type FilterAst } from '../../shared/filter/index.js';
import { buildStatsProgram } from '../../probes/stats/assemble.js';
import { MAX_SAMPLE_RATE } from '../../probes/sample.js';
import { StatsOutputParser, StatsIntervals } from '../../shared/stats/parse.js';
import { buildStatsDocument } from '../../shared/stats/document.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { BpftraceProcess, type BpftraceExit } from '../bpftrace.js';
import { preflight } from '../preflight.js';
import { loadDropReasons, type DropReasons } from '../drop-reasons.js';
import { DISCARD_AFTER_ARRIVAL, DISCARD_BY_SOCKET } from '../../shared/fate.js';
import { CannotTraceError } from '../trace-session.js';
import type { TopologyWatcher } from '../topology/watch.js';
import { StatsNameBook } from './name-book.js';
import { hopKindsToSkip, type HopKind } from '../../shared/hop-event.js';
import { monotonicToWall } from '../clock.js';

export interface StatsSessionOptions {
  /** Filter text in the pcap-like language; '' counts every IP packet. FilterError on bad input. */
  readonly filter: string;
  /** One document every this many ms; undefined: one document for the whole run, at stop(). */
  readonly intervalMs?: number;
  /** Follow 1 in N flows (default 1). */
  readonly sampleRate?: number;
  /** Share a running topology watcher (the service's) for interface names. */
  readonly watcher?: TopologyWatcher;
  /** Max entries per bpftrace map (default 65536): bounds the per-skb state. */
  readonly mapKeysMax?: number;
  /** Hop kinds to attach (`--hops`); default all. Segments then join the hops that remain. */
  readonly hops?: ReadonlySet<HopKind>;
  /** The service's own listening ports: its connections on its own loopback are not counted. */
  readonly selfPorts?: readonly number[];
}

export interface StatsSessionEvents {
  interval: [StatsDocument];
  /** bpftrace ended; `requested` is false when it died on its own. */
  exit: [BpftraceExit];
}


/** This kernel's numbers for the reasons shared/fate.ts reads as a socket's discard after delivery. */
export function discardReasonCodes(reasons: Pick<DropReasons, 'names'>): { bySocket: number[]; afterArrival: number[] } {
  const codes = (set: ReadonlySet<string>): number[] => [...reasons.names].filter(([, n]) => set.has(n)).map(([v]) => v);
  return { bySocket: codes(DISCARD_BY_SOCKET), afterArrival: codes(DISCARD_AFTER_ARRIVAL) };
}

/** How long bpftrace may take to print its last snapshot and exit once asked to stop. */
const STOP_GRACE_MS = 15_000;

export class StatsSession extends EventEmitter<StatsSessionEvents> {
  readonly filterAst: FilterAst;
  /** Canonical filter text ('' for none). */
  readonly filterText: string;
  readonly sampleRate: number;
  readonly intervalMs: number | undefined;
  /** Documents emitted so far. */
  documents = 0;
  private proc: BpftraceProcess | undefined;
  private running = false;
  private last: StatsDocument | null = null;
  private finalDoc: Promise<StatsDocument | null> | undefined;
  private resolveFinal: (d: StatsDocument | null) => void = () => undefined;

  /** Validates everything up front, so bad input fails before anything is attached. */
  constructor(private readonly options: StatsSessionOptions) {
    super();
    this.filterAst = parseFilter(options.filter);
    this.filterText = describeFilter(this.filterAst);
    this.sampleRate = options.sampleRate ?? 1;
    if (!Number.isSafeInteger(this.sampleRate) || this.sampleRate < 1 || this.sampleRate > MAX_SAMPLE_RATE) {
      throw new RangeError(`sample rate must be a whole number from 1 to ${MAX_SAMPLE_RATE}`);
    }
    this.intervalMs = options.intervalMs;
    if (this.intervalMs !== undefined && (!Number.isSafeInteger(this.intervalMs) || this.intervalMs < 100)) {
      throw new RangeError('interval must be a whole number of ms, at least 100');
    }
  }

  get isRunning(): boolean {
    return this.running;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The latest document, null before the first interval ended. */
  get latest(): StatsDocument | null {
    return this.last;
  }

  async start(): Promise<void> {
    const pre = await preflight();
    if (!pre.ok) throw new CannotTraceError(pre.problems);
    const reasons = await loadDropReasons();
    const names = new StatsNameBook(this.options.watcher);
    await names.start(reasons);
    const program = buildStatsProgram({
      tier: pre.bpftrace.tier,
      filterExpr: compileToBpftrace(this.filterAst),
      socketFilterExpr: compileSocketToBpftrace(this.filterAst),
      selfNetns: statSync('/proc/self/ns/net').ino,
      ...(this.options.selfPorts ? { selfPorts: this.options.selfPorts } : {}),
      reasonNotSpecified: reasons.notSpecified,
      discardReasons: discardReasonCodes(reasons),
      sampleRate: this.sampleRate,
      ...(this.options.hops ? { skip: hopKindsToSkip(this.options.hops) } : {}),
      ...(this.intervalMs !== undefined ? { intervalMs: this.intervalMs } : {}),
    });
    const wallClock = monotonicToWall();
    const parser = new StatsOutputParser();
    let intervals: StatsIntervals | null = null;
    this.finalDoc = new Promise((resolve) => { this.resolveFinal = resolve; });
    this.proc = new BpftraceProcess(program, {
      onLine: (line) => {
        if (line.type !== 'other') return;
        const snap = parser.push(line.text);
        if (parser.startNs !== null && intervals === null) intervals = new StatsIntervals(parser.startNs);
        if (!snap || !intervals) return;
        const doc = buildStatsDocument(intervals.next(snap), names, { sampleRate: this.sampleRate, filter: this.filterText, wallClock });
        this.last = doc;
        this.documents++;
        this.emit('interval', doc);
        if (doc.final) this.resolveFinal(doc);
      },
      onExit: (exit) => {
        this.running = false;
        names.stop();
        this.resolveFinal(null);
        this.emit('exit', exit);
      },
    }, { mapKeysMax: this.options.mapKeysMax ?? 65536 });
    try {
      await this.proc.start();
    } catch (err) {
      names.stop();
      throw err;
    }
    this.running = true;
  }

  /**
   * Detaches the probes. bpftrace prints a last snapshot on its way out, emitted as the final
   * document (covering the time since the previous one) and returned; null if it died first.
   */
  async stop(): Promise<StatsDocument | null> {
    if (!this.proc) return null;
    // The last snapshot is printed from END: killing bpftrace before it has printed loses every
    // count of a run without --interval, so it gets longer than the default 3 s on a busy host.
    await this.proc.stop(STOP_GRACE_MS);
    return (await this.finalDoc) ?? null;
  }
}
