/**
 * A reader of bpftrace's output that never blocks bpftrace. bpftrace writes its stdout into a
 * FIFO that a worker thread (PUMP_WORKER below) drains as fast as it is written, so a main
 * thread busy parsing, reconstructing or serving never stalls bpftrace's writes — a stalled
 * bpftrace stops draining the kernel's buffers, and the kernel drops events (issue 15: 29 % of
 * hop events lost at 15k packets/s through a plain pipe). What the main thread has not taken yet
 * waits in memory, up to `capBytes`; beyond that whole lines are dropped in the worker and
 * counted, reported like the kernel's losses.
 */
import { Worker } from 'node:worker_threads';
import { mkdtempSync, openSync, closeSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export interface PumpHandlers {
  /** Whole lines of output, in order. */
  onText(text: string): void;
  /** Lines dropped because the main thread was more than capBytes behind. */
  onDropped(lines: number): void;
}

/**
 * The worker thread: reads the FIFO as fast as bpftrace writes it and posts whole lines on. When
 * the main thread is more than capBytes behind, whole lines are dropped here and counted (posted
 * as { dropped: n }), so memory stays bounded and every loss is told.
 */
const PUMP_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createReadStream } = require('node:fs');
const { path, inflight, capBytes } = workerData;
const behind = new Int32Array(inflight);
let rest = '';
const stream = createReadStream(path, { highWaterMark: 1 << 20, encoding: 'utf8' });
stream.on('open', () => parentPort.postMessage({ opened: true }));
stream.on('data', (data) => {
  const text = rest + data;
  const end = text.lastIndexOf('\\n') + 1;
  rest = text.slice(end);
  if (end === 0) return;
  const lines = text.slice(0, end);
  if (Atomics.load(behind, 0) + lines.length <= capBytes) {
    Atomics.add(behind, 0, lines.length);
    parentPort.postMessage(lines);
    return;
  }
  let dropped = 0;
  for (let i = lines.indexOf('\\n'); i >= 0; i = lines.indexOf('\\n', i + 1)) dropped++;
  parentPort.postMessage({ dropped });
});
stream.on('end', () => {
  if (rest !== '') parentPort.postMessage(rest + '\\n');
  parentPort.postMessage({ end: true });
});
stream.on('error', (err) => parentPort.postMessage({ error: String(err) }));
`;

/**
 * The FIFO's kernel buffer (F_SETPIPE_SZ; 64 KiB by default, about 600 hop lines, a few ms of a
 * busy trace): while the worker thread waits for a CPU, bpftrace's writes land here instead of
 * blocking it. 4 MiB needs CAP_SYS_RESOURCE (beyond /proc/sys/fs/pipe-max-size, 1 MiB by
 * default); without it the pipe gets pipe-max-size.
 */
export const PIPE_BYTES = 4 * 1024 * 1024;

/**
 * Sets the pipe buffer of `fifo` (open elsewhere, so the pipe lives on) to `bytes`, or to
 * pipe-max-size when `bytes` is refused, and returns the size the kernel gave, or null. Node has
 * no fcntl: perl (perl-base, in every Debian) opens the FIFO read-write, which never waits, and
 * asks (its arguments made numbers: perl passes a string as a pointer). The size belongs to the
 * pipe, not to perl's descriptor, so it stays after perl exits. Best effort: 64 KiB still works.
 */
export async function setPipeSize(fifo: string, bytes: number): Promise<number | null> {
  const F_SETPIPE_SZ = 1031;
  const max = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim()) || 0;
  const sizes = [bytes, ...(max > 0 && max < bytes ? [max] : [])].map(String);
  const r = await execa('perl', ['-e', [
    'open(my $f, "+<", shift) or exit 2; my $op = shift;',
    'for my $s (@ARGV) { my $n = fcntl($f, $op + 0, $s + 0); if (defined $n) { print $n + 0; exit 0; } }',
    'exit 1;',
  ].join(' '), fifo, String(F_SETPIPE_SZ), ...sizes], { reject: false, timeout: 5000 });
  const n = Number(String(r.stdout).trim());
  return r.exitCode === 0 && n > 0 ? n : null;
}

/** 256 MiB of output waiting (about 2.5 million hop lines). */
export const DEFAULT_PUMP_CAP = 256 * 1024 * 1024;

export class OutputPump {
  private readonly dir: string;
  readonly fifo: string;
  private worker: Worker | undefined;
  private writeFd: number | undefined;
  private readonly behind = new Int32Array(new SharedArrayBuffer(4));
  /** The FIFO's buffer size the kernel granted (null: left at its default). */
  pipeBytes: number | null = null;
  /** Resolves once the worker has passed on everything bpftrace wrote (after bpftrace exits). */
  readonly done: Promise<void>;
  private finish!: () => void;

  private constructor(private readonly capBytes: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'hoptrace-out-'));
    this.fifo = join(this.dir, 'bpftrace.out');
    this.done = new Promise((resolve) => { this.finish = resolve; });
  }

  /** Makes the FIFO and starts the worker; `fd` is then the write end to give bpftrace as stdout. */
  static async open(handlers: PumpHandlers, capBytes = DEFAULT_PUMP_CAP, pipeBytes = PIPE_BYTES): Promise<OutputPump> {
    const pump = new OutputPump(Math.min(capBytes, 2 ** 31 - 1));
    await execa('mkfifo', ['-m', '600', pump.fifo]);
    // Opened read-write, a FIFO does not wait for a reader; bpftrace gets it as its stdout and
    // ours is closed once bpftrace has it, so the worker sees the end when bpftrace exits.
    pump.writeFd = openSync(pump.fifo, 'r+');
    pump.pipeBytes = pipeBytes > 0 ? await setPipeSize(pump.fifo, pipeBytes) : null;
    // The worker's code is plain JavaScript given as text: a worker started from a .ts file does
    // not get tsx's loader (Node 20), and text runs the same from the source tree and from dist/.
    const worker = new Worker(PUMP_WORKER, {
      eval: true,
      workerData: { path: pump.fifo, inflight: pump.behind.buffer, capBytes: pump.capBytes },
    });
    pump.worker = worker;
    let opened!: () => void;
    let failed!: (err: Error) => void;
    const isOpen = new Promise<void>((resolve, reject) => { opened = resolve; failed = reject; });
    worker.on('message', (m: string | { dropped?: number; end?: boolean; error?: string; opened?: boolean }) => {
      if (typeof m === 'string') {
        Atomics.sub(pump.behind, 0, m.length);
        handlers.onText(m);
      } else if (m.opened) {
        opened();
      } else if (m.dropped !== undefined) {
        handlers.onDropped(m.dropped);
      } else if (m.end || m.error !== undefined) {
        pump.finish();
      }
    });
    worker.on('error', (err) => { failed(err); pump.finish(); });
    worker.on('exit', () => { failed(new Error('output reader thread ended before opening')); pump.finish(); });
    // The worker has the read end before bpftrace can write (or die): the end then always comes.
    try {
      await isOpen;
    } catch (err) {
      await pump.close();
      throw err;
    }
    // Both ends are open (the worker's read end, our write end for bpftrace): the FIFO needs no
    // name any more, and without one nothing is left behind in /tmp even if we are SIGKILLed.
    rmSync(pump.dir, { recursive: true, force: true });
    return pump;
  }

  /** The FIFO's write end, for bpftrace's stdout. */
  get fd(): number {
    if (this.writeFd === undefined) throw new Error('output pump already handed over');
    return this.writeFd;
  }

  /** Once bpftrace has been started with `fd`: our copy of the write end goes. */
  handedOver(): void {
    if (this.writeFd !== undefined) closeSync(this.writeFd);
    this.writeFd = undefined;
  }

  /** Stops the worker and removes the FIFO (after `done`, or to give up). */
  async close(): Promise<void> {
    this.handedOver();
    await this.worker?.terminate();
    rmSync(this.dir, { recursive: true, force: true });
    this.finish();
  }
}
