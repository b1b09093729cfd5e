/**
 * Runs one bpftrace program and turns its output into typed probe lines. Owns the process:
 * it is started under `setpriv --pdeathsig` so that even if this Node process is SIGKILLed the
 * kernel stops bpftrace too (and its probes detach with it), and `stop()` always ends it.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { bpftraceCommand } from './bpftrace-binary.js';
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
  /** Perf ring buffer pages per CPU: more pages, fewer lost events under bursts. */
  readonly perfRbPages?: number;
  /** The bpftrace to run (default: the one server/bpftrace-binary.ts chose). */
  readonly command?: string;
  /** How long to wait for READY (all probes attached). */
  readonly attachTimeoutMs?: number;
}

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
  private child: ResultPromise | undefined;
  private stderr = '';
  private requested = false;
  private exited: Promise<BpftraceExit> | undefined;

  constructor(private readonly program: string, private readonly handlers: BpftraceHandlers, private readonly opts: BpftraceOptions = {}) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts bpftrace; resolves once every probe is attached, rejects with its stderr if it fails first. */
  async start(): Promise<void> {
    const bpftrace = this.opts.command ?? (await bpftraceCommand());
    const usePdeathsig = existsSync('/usr/bin/setpriv');
    const [cmd, args] = usePdeathsig
      ? ['setpriv', ['--pdeathsig', 'SIGTERM', '--', bpftrace, '-e', this.program]]
      : [bpftrace, ['-e', this.program]];
    const child = execa(cmd, args, {
      reject: false,
      buffer: false,
      stdin: 'ignore',
      env: {
        BPFTRACE_MAP_KEYS_MAX: String(this.opts.mapKeysMax ?? 16384),
        BPFTRACE_PERF_RB_PAGES: String(this.opts.perfRbPages ?? (Number(process.env.HOPTRACE_PERF_RB_PAGES) || 256)),
      },
      killSignal: 'SIGINT',
      // stop() repeats SIGINT and sends SIGKILL after its own grace; execa's default (SIGKILL
      // 5 s after any kill) would cut a longer grace short.
      forceKillAfterDelay: false,
    });
    this.child = child;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        if (!ready) reject(new Error(`bpftrace did not attach its probes within ${(this.opts.attachTimeoutMs ?? 60_000) / 1000}s`));
      }, this.opts.attachTimeoutMs ?? 60_000);
      const reader = new ProbeOutputReader(this.handlers, (line) => {
        if (line.type === 'ready' && !ready) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
        this.handlers.onLine(line);
      });
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (chunk: string) => reader.feed(chunk));
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        // bpftrace reports lost perf events on stderr in some builds: count them wherever they appear.
        for (const l of chunk.split('\n')) {
          const parsed = parseProbeLine(l);
          if (parsed.type === 'lost') this.handlers.onLine(parsed);
        }
        if (this.stderr.length < 64 * 1024) this.stderr += chunk;
      });
      this.exited = Promise.resolve(child).then((r) => {
        clearTimeout(timer);
        const exit: BpftraceExit = {
          code: r.exitCode ?? null,
          signal: r.signal ?? null,
          requested: this.requested,
          stderr: this.cleanStderr(),
        };
        if (!ready) reject(new Error(exit.stderr || `bpftrace exited (${exit.code ?? exit.signal}) before attaching`));
        this.handlers.onExit?.(exit);
        return exit;
      });
    });
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
