/**
 * Runs one bpftrace program and turns its output into typed probe lines. Owns the process:
 * it is started under `setpriv --pdeathsig` so that even if this Node process is SIGKILLed the
 * kernel stops bpftrace too (and its probes detach with it), and `stop()` always ends it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chooseBpftrace, versionAtLeast, FAST_MIN_VERSION } from './bpftrace-binary.js';
import { OutputPump } from './output-pump.js';
import { parseProbeLine, pushHopLine, pushHopLines, type ProbeLine } from '../probes/hop-line.js';
import type { Reconstructor } from '../shared/reconstruct.js';

/** What hop lines can be written into directly (a Reconstructor). */
export type HopEngine = Pick<Reconstructor, 'hopStore' | 'pushStored'>;

export interface BpftraceExit {
  readonly code: number | null;
  readonly signal: string | null;
  /** Whether we asked it to stop (otherwise it died on its own). */
  readonly requested: boolean;
  /** Its stderr, minus the harmless RLIMIT_MEMLOCK notice. */
  readonly stderr: string;
}

export interface BpftraceHandlers {
  /** Each line of output, parsed; hop lines only when `hopEngine` gives no engine. */
  onLine(line: ProbeLine): void;
  /**
   * Asked for each read of bpftrace's output: an engine to write that read's hop lines straight
   * into (probes/hop-line.ts pushHopLines: no string per line, no HopEvent), or null for 'hop'
   * ProbeLines on onLine. Malformed hop lines reach onLine as 'other' either way.
   */
  hopEngine?(): HopEngine | null;
  /** How many hop lines of a read went into the engine hopEngine gave. */
  onHops?(count: number): void;
  onExit?(exit: BpftraceExit): void;
}

export interface BpftraceOptions {
  /** Max entries per map: bounds the @follow/@pending maps. */
  readonly mapKeysMax?: number;
  /**
   * bpftrace's kernel output buffer, in 4 KiB pages (BPFTRACE_PERF_RB_PAGES): per CPU for 0.17's
   * perf buffers, the size of the one BPF ring buffer for 0.21+ (measured with bpftool: 64 pages
   * made a 256 KiB ringbuf, 1024 a 4 MiB one). More pages, fewer lost events under bursts.
   */
  readonly perfRbPages?: number;
  /** The bpftrace to run (default: the one server/bpftrace-binary.ts chose). */
  readonly command?: string;
  /** Read stdout through a plain pipe, not the never-blocking pump (server/output-pump.ts). */
  readonly plainPipe?: boolean;
  /** The FIFO's kernel buffer in bytes (default PIPE_BYTES; 0 leaves the kernel's 64 KiB). */
  readonly pipeBytes?: number;
  /** How far (bytes) the main thread may fall behind the pump before lines are dropped and counted. */
  readonly pumpCapBytes?: number;
  /** How long to wait for READY (all probes attached). */
  readonly attachTimeoutMs?: number;
}

/**
 * Kernel output buffer sizes (see perfRbPages). 0.17: 256 pages per CPU (1 MiB each). 0.21+: one
 * ring buffer shared by all CPUs, 4096 pages (16 MiB, about 150k hop events: a second of the
 * busiest paced run in bench/paced.ts), so a main thread or pump held off the CPU for a while
 * does not cost events. Both must be powers of two.
 */
export const CLASSIC_RB_PAGES = 256;
export const MODERN_RB_PAGES = 4096;

const HARMLESS = /couldn't set RLIMIT_MEMLOCK|WARNING: Addrspace is not set/;

/**
 * Turns bpftrace's stdout, read by read, into lines: hop lines into the engine `hopEngine` gives
 * for that read (or parsed, with every other line, for `onLine`). Reads end anywhere, also
 * inside a line or a character: the unfinished line waits for the next read.
 */
export class ProbeOutputReader {
  private rest = '';

  constructor(private readonly handlers: Pick<BpftraceHandlers, 'hopEngine' | 'onHops'>, private readonly onLine: (line: ProbeLine) => void) {}

  /** One read of the output, decoded. */
  feed(chunk: string): void {
    const engine = this.handlers.hopEngine?.() ?? null;
    let start = 0;
    if (this.rest !== '') {
      // The line the last read left unfinished, on its own: prepended to the chunk it would make
      // the chunk a cons string, slower to scan.
      const nl = chunk.indexOf('\n');
      if (nl < 0) {
        this.rest += chunk;
        return;
      }
      const first = this.rest + chunk.slice(0, nl);
      this.rest = '';
      start = nl + 1;
      if (engine && pushHopLine(engine, first)) this.handlers.onHops?.(1);
      else this.other(first);
    }
    const end = chunk.lastIndexOf('\n') + 1;
    if (end > start) {
      if (engine) {
        const hops = pushHopLines(engine, chunk, start, end, this.other);
        if (hops > 0) this.handlers.onHops?.(hops);
      } else {
        for (const l of chunk.slice(start, end).split('\n')) this.other(l);
      }
    }
    this.rest = chunk.slice(Math.max(start, end));
  }

  private readonly other = (l: string): void => {
    if (l !== '') this.onLine(parseProbeLine(l));
  };
}

export class BpftraceProcess {
  private child: ChildProcess | undefined;
  private stderr = '';
  private requested = false;
  private exited: Promise<BpftraceExit> | undefined;

  constructor(private readonly program: string, private readonly handlers: BpftraceHandlers, private readonly opts: BpftraceOptions = {}) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts bpftrace; resolves once every probe is attached, rejects with its stderr if it fails first. */
  async start(): Promise<void> {
    const choice = await chooseBpftrace();
    const bpftrace = this.opts.command ?? choice.command ?? 'bpftrace';
    const modern = this.opts.command === undefined && versionAtLeast(choice.version ?? '0.0', FAST_MIN_VERSION);
    const usePdeathsig = existsSync('/usr/bin/setpriv');
    const [cmd, args] = usePdeathsig
      ? ['setpriv', ['--pdeathsig', 'SIGTERM', '--', bpftrace, '-e', this.program]]
      : [bpftrace, ['-e', this.program]];
    // bpftrace's stdout goes through a reader that never blocks it (server/output-pump.ts)
    // unless HOPTRACE_PLAIN_PIPE=1 (for comparing the two in benchmarks).
    const plain = this.opts.plainPipe ?? process.env.HOPTRACE_PLAIN_PIPE === '1';
    let ready = false;
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const started = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
    const reader = new ProbeOutputReader(this.handlers, (line) => {
      if (line.type === 'ready' && !ready) {
        ready = true;
        clearTimeout(timer);
        settle.resolve();
      }
      this.handlers.onLine(line);
    });
    const timer = setTimeout(() => {
      if (!ready) settle.reject(new Error(`bpftrace did not attach its probes within ${(this.opts.attachTimeoutMs ?? 60_000) / 1000}s`));
    }, this.opts.attachTimeoutMs ?? 60_000);
    // Without the pump (no worker thread, no mkfifo) the plain pipe still works: it only blocks.
    const pump = plain ? null : await OutputPump.open({
      onText: (text) => reader.feed(text),
      // Lines the main thread could not take in time: lost like the kernel's, and counted so.
      onDropped: (lines) => this.handlers.onLine({ type: 'lost', count: lines }),
    }, this.opts.pumpCapBytes, this.opts.pipeBytes ?? (process.env.HOPTRACE_PIPE_BYTES !== undefined ? Number(process.env.HOPTRACE_PIPE_BYTES) : undefined)).catch(() => null);
    // node:child_process rather than execa: execa turns a numeric stdout into a socket it pipes
    // itself, and bpftrace must write into the FIFO directly.
    const child = spawn(cmd, args, {
      stdio: ['ignore', pump ? pump.fd : 'pipe', 'pipe'],
      env: {
        ...process.env,
        // 0.17 reads the first name, 0.21+ the second (and warns about the first).
        ...(modern ? { BPFTRACE_MAX_MAP_KEYS: String(this.opts.mapKeysMax ?? 16384) } : { BPFTRACE_MAP_KEYS_MAX: String(this.opts.mapKeysMax ?? 16384) }),
        BPFTRACE_PERF_RB_PAGES: String(this.opts.perfRbPages ?? (Number(process.env.HOPTRACE_PERF_RB_PAGES) || (modern ? MODERN_RB_PAGES : CLASSIC_RB_PAGES))),
      },
    });
    const closed = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) => {
      child.on('error', (err) => {
        this.stderr += `${err.message}\n`;
        resolve({ exitCode: null, signal: null });
      });
      child.on('close', (exitCode, signal) => resolve({ exitCode, signal }));
    });
    pump?.handedOver();
    this.child = child;
    if (!pump) {
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (chunk: string) => reader.feed(chunk));
    }
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      // bpftrace reports lost perf events on stderr in some builds: count them wherever they appear.
      for (const l of chunk.split('\n')) {
        const parsed = parseProbeLine(l);
        if (parsed.type === 'lost') this.handlers.onLine(parsed);
      }
      if (this.stderr.length < 64 * 1024) this.stderr += chunk;
    });
    this.exited = closed.then(async (r) => {
      clearTimeout(timer);
      if (pump) {
        // Everything bpftrace wrote before it exited (its END output too) is read first.
        // (The grace timer is unref'd: it must not keep a finished process alive.)
        await Promise.race([pump.done, new Promise((res) => setTimeout(res, 5000).unref())]);
        await pump.close();
      }
      const exit: BpftraceExit = {
        code: r.exitCode ?? null,
        signal: r.signal ?? null,
        requested: this.requested,
        stderr: this.cleanStderr(),
      };
      if (!ready) settle.reject(new Error(exit.stderr || `bpftrace exited (${exit.code ?? exit.signal}) before attaching`));
      this.handlers.onExit?.(exit);
      return exit;
    });
    return started;
  }

  private cleanStderr(): string {
    return this.stderr.split('\n').filter((l) => l.trim() !== '' && !HARMLESS.test(l)).join('\n');
  }

  /** Stops bpftrace (SIGINT, repeated each second, then SIGKILL after `graceMs`) and resolves when it is gone. */
  async stop(graceMs = 3000): Promise<BpftraceExit | undefined> {
    if (!this.child || !this.exited) return undefined;
    this.requested = true;
    this.child.kill('SIGINT');
    // bpftrace 0.17 now and then misses a SIGINT on a busy host: it stays in its poll loop
    // (epoll_wait) and never runs END. Seen as 3 stops in 8 killed at the grace, with every
    // count of a stats run lost, while other tracers started and stopped; asking again each
    // second, every stop ended within 2.4 s with its END output.
    const again = setInterval(() => this.child?.kill('SIGINT'), 1000);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      clearInterval(again);
    }
  }

  /** Resolves when the process has exited, for whatever reason. */
  wait(): Promise<BpftraceExit> | undefined {
    return this.exited;
  }
}
