/**
 * A trace: one filter, one bpftrace process, a stream of hop events. This is the piece the CLI
 * (`trace`, `record`) and the service's sessions share. It does not reconstruct packets —
 * consumers run their own shared/reconstruct.ts over the events (the dashboard does it in the
 * browser) — but it knows everything they need to: drop reason names and the filter AST.
 */
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import { hopKindsToSkip, type HopEvent, type HopKind, type HopNote } from '../shared/hop-event.js';
import { parseFilter, compileSocketToBpftrace, compileToBpftrace, describeFilter, FlowFilter, type FilterAst } from '../shared/filter/index.js';
import { buildHopProgram, HOP_PROBES } from '../probes/assemble.js';
import { buildNoteBlocks } from '../probes/notes/assemble.js';
import { attachedProbes } from '../probes/tracepoints.js';
import type { ProbeTier } from '../shared/api-types.js';
import { parseNoteLine } from '../probes/notes/note-line.js';
import { BpftraceProcess, type BpftraceExit } from './bpftrace.js';
import type { Reconstructor } from '../shared/reconstruct.js';
import { preflight } from './preflight.js';
import { loadDropReasons, type DropReasons } from './drop-reasons.js';
import type { Packet } from '../shared/packet.js';

export interface TraceSessionOptions {
  /** Filter text in the pcap-like language; '' traces every IP packet. Parsed here: FilterError on bad input. */
  readonly filter: string;
  /**
   * Also attach the notes tier (probes/notes/: route lookups, bridge learning, qdisc waits,
   * neighbour waits, ICMP errors), emitted as 'note' events. Tracepoints the kernel lacks are
   * left out.
   */
  readonly notes?: boolean;
  /** With `notes`: also the function-level tier (probes/deep/, kprobes). Only where kprobes work. */
  readonly deep?: boolean;
  /** Tracepoints (group:name) missing on this kernel, so their note blocks are left out. */
  readonly missingTracepoints?: ReadonlySet<string>;
  /** Keep the first N bytes (≤ 64) from the IP header of each hop (pcapng export). 0: none. */
  readonly captureBytes?: number;
  /**
   * Follow 1 in N flows, chosen in the kernel by a hash of the flow on a packet's first hop
   * (probes/sample.ts); default 1: every flow. Validated where it comes in (the CLI).
   */
  readonly sampleRate?: number;
  /** Hop kinds to attach (`--hops`); default all. The others are left out of the program. */
  readonly hops?: ReadonlySet<HopKind>;
  /** Ports of our own connections (the service's), left out on this namespace's loopback. */
  readonly selfPorts?: readonly number[];
  /** Only these namespaces' hops (inodes), filtered in the kernel (`agent --namespaces`). Absent: all. */
  readonly netnsAllow?: readonly number[];
}

export interface TraceSessionEvents {
  hop: [HopEvent];
  /** bpftrace reported this many events lost in the kernel (perf buffer full). */
  lost: [number];
  /** A note of the notes or function-level tier (TraceSessionOptions.notes). */
  note: [HopNote];
  /** Something the user should know that did not stop the trace (e.g. less byte capture). */
  warning: [string];
  /** bpftrace ended; `requested` is false when it died on its own. */
  exit: [BpftraceExit];
}

/** Thrown when the host cannot trace: `problems` are sentences naming the fix. */
export class CannotTraceError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join(' '));
    this.name = 'CannotTraceError';
  }
}

export class TraceSession extends EventEmitter<TraceSessionEvents> {
  readonly filterAst: FilterAst;
  /** Canonical text of the filter ('' for none). */
  readonly filterText: string;
  lostEvents = 0;
  /** Header bytes actually captured per hop (may be less than asked: see start()). */
  captureBytes = 0;
  hopEvents = 0;
  noteEvents = 0;
  private readonly options: TraceSessionOptions;
  private proc: BpftraceProcess | undefined;
  private reasons: DropReasons | undefined;
  private running = false;
  private attached: string[] | undefined;
  private tier: ProbeTier | undefined;
  private engine: Pick<Reconstructor, 'hopStore' | 'pushStored' | 'push'> | null = null;

  /** Parses the filter at once, so a bad filter fails before anything is attached. */
  constructor(options: TraceSessionOptions) {
    super();
    this.options = options;
    this.filterAst = parseFilter(options.filter);
    this.filterText = describeFilter(this.filterAst);
  }

  /**
   * Hands every hop to `engine` (a Reconstructor; null: stop). While nothing listens for 'hop',
   * hop lines are written straight into it (probes/hop-line.ts pushHopLines), with no HopEvent
   * and no per-line string built: 0.78 M instead of 0.67 M hops per CPU-second
   * (bench/pipeline.ts). With 'hop' listeners, each event is emitted and then pushed into the
   * engine: do not push them yourself.
   */
  reconstructInto(engine: Pick<Reconstructor, 'hopStore' | 'pushStored' | 'push'> | null): void {
    this.engine = engine;
  }

  get dropReasons(): DropReasons {
    if (!this.reasons) throw new Error('trace session not started');
    return this.reasons;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Whether a reconstructed packet matches the user's filter: any hop matches, or its sending
   * socket's tuple, or it belongs to a flow found by the latter (shared/filter/flows.ts), as the
   * probes follow it.
   */
  accepts = (packet: Packet): boolean => {
    if (this.flowFilter?.ast !== this.filterAst) this.flowFilter = new FlowFilter(this.filterAst);
    return this.flowFilter.accepts(packet);
  };
  private flowFilter: FlowFilter | undefined;

  /**
   * The probe points this session attached, as bpftrace names them on its tier
   * (`rawtracepoint:net_dev_start_xmit` on the fast tier, `tracepoint:net:net_dev_start_xmit` on
   * the classic one, the notes tier's too); before it started, the hop tracepoints it will attach.
   */
  get probes(): readonly string[] {
    return this.attached ?? HOP_PROBES.filter((p) => this.options.hops?.has(p.kind) ?? true).map((p) => `tracepoint:${p.tracepoint}`);
  }

  /** The probe tier the session runs on (once started). */
  get probeTier(): ProbeTier | undefined {
    return this.tier;
  }

  /** Checks the host, attaches the probes; resolves once they are attached. */
  async start(): Promise<void> {
    const pre = await preflight();
    if (!pre.ok) throw new CannotTraceError(pre.problems);
    // A broken HOPTRACE_BPFTRACE or private copy: said once per session, with its fix.
    for (const w of pre.bpftrace.warnings) this.emit('warning', w);
    this.reasons = await loadDropReasons();
    if (this.reasons.names.size === 0) {
      // Not fatal: drops still show, by number. Said once per session, before anything attaches.
      this.emit('warning', 'could not read the kernel\'s drop reasons from BTF (is bpftool installed? `hoptrace setup` installs it): drops show their reason as reason-N');
    }
    const filterExpr = compileToBpftrace(this.filterAst);
    // Captured bytes share the BPF stack (512 bytes) with the hop printf and the filter's
    // temporaries: a complex filter leaves less room. Step down rather than fail, and say so.
    const wanted = this.options.captureBytes ?? 0;
    const sizes = wanted > 0 ? [...new Set([wanted, Math.min(wanted, 24), 0])] : [0];
    for (const [i, captureBytes] of sizes.entries()) {
      this.captureBytes = captureBytes;
      const program = buildHopProgram({
        tier: pre.bpftrace.tier,
        filterExpr,
        socketFilterExpr: compileSocketToBpftrace(this.filterAst),
        selfNetns: statSync('/proc/self/ns/net').ino,
        ...(this.options.selfPorts ? { selfPorts: this.options.selfPorts } : {}),
        ...(this.options.netnsAllow ? { netnsAllow: this.options.netnsAllow } : {}),
        reasonNotSpecified: this.reasons.notSpecified,
        ...(this.reasons.noSocket !== undefined ? { reasonNoSocket: this.reasons.noSocket } : {}),
        captureBytes,
        sampleRate: this.options.sampleRate ?? 1,
        ...(this.options.hops ? { skip: hopKindsToSkip(this.options.hops) } : {}),
        ...(this.options.notes
          ? {
              extraBlocks: buildNoteBlocks({
                filterExpr,
                deep: this.options.deep === true,
                ...(this.options.missingTracepoints ? { missingTracepoints: this.options.missingTracepoints } : {}),
              }),
            }
          : {}),
      });
      this.attached = attachedProbes(program);
      this.tier = pre.bpftrace.tier ?? 'classic';
      // Only an attempt that attached reports its exit: a failed start already threw.
      let attached = false;
      this.proc = new BpftraceProcess(program, {
        hopEngine: () => (this.listenerCount('hop') === 0 ? this.engine : null),
        onHops: (count) => {
          this.hopEvents += count;
        },
        onLine: (line) => {
          if (line.type === 'hop') {
            this.hopEvents++;
            this.emit('hop', line.hop);
            this.engine?.push(line.hop);
          } else if (line.type === 'lost') {
            this.lostEvents += line.count;
            this.emit('lost', line.count);
          } else if (line.type === 'other' && line.text.startsWith('N ')) {
            // Note lines (probes/notes/note-line.ts) reach us as 'other': hop-line.ts only knows hops.
            const note = parseNoteLine(line.text);
            if (note) {
              this.noteEvents++;
              this.emit('note', note);
            }
          }
        },
        onExit: (exit) => {
          if (!attached) return;
          this.running = false;
          this.emit('exit', exit);
        },
      });
      try {
        await this.proc.start();
        attached = true;
        break;
      } catch (err) {
        const last = i === sizes.length - 1;
        if (last || !/BPF stack limit/.test((err as Error).message)) throw err;
        const next = sizes[i + 1] ?? 0;
        this.emit(
          'warning',
          `capturing ${captureBytes} header bytes does not fit the BPF stack with this filter: ${next > 0 ? `capturing ${next}` : 'capturing none'} instead`,
        );
      }
    }
    this.running = true;
  }

  /** Detaches the probes. Safe to call more than once. */
  async stop(): Promise<BpftraceExit | undefined> {
    return this.proc?.stop();
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }
}
