/**
 * Pipeline benchmark: how fast Node turns probe lines into packets, on one core.
 *
 *   node --expose-gc --import tsx bench/pipeline.ts [--events 3000000] [--batch 512] [--json]
 *
 * Input: bench/hop-lines.ts, a stream generated from a real capture of the demo lab (bridged
 * and NATed UDP/TCP/ICMP, IPv6, a drop), 6.7 hops per packet, at 1,000,000 events per second of
 * kernel time (a packet every 6.7 µs), two CPUs' buffers read in turns.
 *   parse        parseProbeLine on 1M lines (probes/hop-line.ts)
 *   reconstruct  Reconstructor.push + drain on 1M parsed events (shared/reconstruct.ts)
 *   pipeline     both, as `trace` reads bpftrace's output: --events lines streamed as chunks of
 *                --batch lines, one string each (what one read of bpftrace's pipe hands
 *                server/bpftrace.ts: 64 KiB ≈ 512 lines), each chunk's hop lines written straight
 *                into the engine's store (pushHopLines: no line string, no HopEvent), and the
 *                packets that completed drained after each chunk. Generation and joining are not
 *                timed. Long enough for the reconstruction's 1 s idle window to fill, so memory is
 *                the steady state of a host doing 1M events/s. Lines are generated 16,384 at a
 *                time (the generator keeps a packet's hops in one generation batch, so smaller
 *                ones would put a CPU's lines out of order, which bpftrace never does: 14% of them
 *                at 512). The first version of this bench fed 100,000-line batches: every line
 *                outlived several collections, a cost `trace` never pays.
 *   pipelineViaEvents  the same chunks the way bpftrace.ts read them before pushHopLines (and
 *                still does for consumers that need the events themselves): split into lines,
 *                parseProbeLine, Reconstructor.push of the HopEvent.
 * Rates are events per CPU-second of this process (process.cpuUsage: the machine is shared) and
 * per wall-second. Memory: the largest live heap while streaming (sampled after forced
 * collections), the engine's event store (typed arrays, outside the heap), and the heap held by
 * 1M parsed events kept in an array.
 */
import { parseArgs } from 'node:util';
import { parseProbeLine, pushHopLines } from '../probes/hop-line.js';
import { Reconstructor } from '../shared/reconstruct.js';
import type { HopEvent } from '../shared/hop-event.js';
import { hopLines, hopLineBatches } from './hop-lines.js';

export interface Rate {
  /** Events per CPU-second of this process. */
  readonly eventsPerCpuSec: number;
  /** Events per wall-clock second. */
  readonly eventsPerSec: number;
}

export interface PipelineResult {
  readonly parse: Rate;
  readonly reconstruct: Rate;
  /** Chunks of output written straight into the engine (pushHopLines), as `trace` reads them. */
  readonly pipeline: Rate & { readonly events: number; readonly packets: number; readonly kernelSeconds: number };
  /** The same chunks split into lines, each through a HopEvent (parseProbeLine, then Reconstructor.push). */
  readonly pipelineViaEvents: Rate & { readonly events: number; readonly packets: number; readonly kernelSeconds: number };
  /** Largest live heap (after a collection) while streaming at 1M events/s of kernel time (≈ 1 s of packets alive). */
  readonly streamingPeakHeapMiB: number;
  readonly streamingPeakHeapViaEventsMiB: number;
  /** The engine's typed arrays (event store) at the end of the stream: outside the JS heap, so not in the heap figures. */
  readonly storeMiB: number;
  /** Heap held by 1,000,000 parsed HopEvents kept in an array. */
  readonly heapPerMillionEventsMiB: number;
  readonly bytesPerLine: number;
  /** Lines per streamed batch (one pipe read). */
  readonly batchLines: number;
}

const GAP_NS = 6_700;
/** Lines generated at a time for the streaming run (see the header). */
const GENERATED_LINES = 16_384;
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

class Clock {
  cpu = 0;
  wall = 0;
  run<T>(fn: () => T): T {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const v = fn();
    this.wall += Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    this.cpu += (c.user + c.system) / 1e6;
    return v;
  }
  rate(events: number): Rate {
    return { eventsPerCpuSec: Math.round(events / this.cpu), eventsPerSec: Math.round(events / this.wall) };
  }
}

function parseAll(lines: readonly string[]): HopEvent[] {
  const out: HopEvent[] = [];
  for (const l of lines) {
    const p = parseProbeLine(l);
    if (p.type === 'hop') out.push(p.hop);
  }
  return out;
}

function reconstruct(events: readonly HopEvent[]): number {
  const r = new Reconstructor();
  let packets = 0;
  for (let i = 0; i < events.length; i++) {
    r.push(events[i] as HopEvent);
    if ((i & 1023) === 0) packets += r.drain().length;
  }
  return packets + r.flush().length;
}

/** Best of `runs` (the shared machine only ever makes a run slower). */
function best(runs: number, events: number, fn: (c: Clock) => void): Rate {
  let b: Rate = { eventsPerCpuSec: 0, eventsPerSec: 0 };
  for (let i = 0; i < runs; i++) {
    gc();
    const c = new Clock();
    fn(c);
    const r = c.rate(events);
    if (r.eventsPerCpuSec > b.eventsPerCpuSec) b = r;
  }
  return b;
}

interface Streamed {
  readonly rate: PipelineResult['pipeline'];
  /** Largest live heap above the start (bytes). */
  readonly peakHeap: number;
  /** The engine's typed arrays at the end (outside the JS heap: not in peakHeap). */
  readonly storeBytes: number;
}

/**
 * Streams `streamEvents` lines through parse and reconstruction in chunks as trace reads them:
 * `direct`, each chunk's hop lines written straight into the engine (pushHopLines); else split,
 * each line parsed into a HopEvent that is then pushed.
 */
function stream(streamEvents: number, batchLines: number, direct: boolean): Streamed {
  gc();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  const clock = new Clock();
  const r = new Reconstructor();
  let packets = 0;
  let events = 0;
  let sampledAt = 0;
  const other = (line: string): void => {
    parseProbeLine(line);
  };
  for (const generated of hopLineBatches({ events: streamEvents, gapNs: GAP_NS, batch: Math.max(GENERATED_LINES, batchLines) })) {
    for (let from = 0; from < generated.length; from += batchLines) {
      // One read of bpftrace's pipe: the lines as one flat string, each ended by '\n' (untimed).
      // join with an empty last line, not `+ '\n'`: that makes a cons string, slower to scan.
      const lines = generated.slice(from, from + batchLines);
      lines.push('');
      const chunk = lines.join('\n');
      clock.run(() => {
        if (direct) {
          events += pushHopLines(r, chunk, 0, chunk.length, other);
        } else {
          // What server/bpftrace.ts did with each read: split, then a ProbeLine per line.
          for (const line of chunk.split('\n')) {
            if (line === '') continue;
            const p = parseProbeLine(line);
            if (p.type === 'hop') {
              r.push(p.hop);
              events++;
            }
          }
        }
        // What `trace` does after each read: hand on the packets that completed.
        packets += r.drain().length;
      });
    }
    generated.length = 0; // fed: the lines are garbage now, as in trace
    // What the pipeline holds (not garbage awaiting collection): collect, untimed, now and then.
    if (events - sampledAt >= 500_000) {
      sampledAt = events;
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
  }
  const st = r.hopStore;
  const storeBytes = st.num.byteLength + st.next.byteLength + st.slots;
  packets += clock.run(() => r.flush().length);
  return {
    rate: { ...clock.rate(events), events, packets, kernelSeconds: Math.round(((events / 6.7) * GAP_NS) / 1e7) / 100 },
    peakHeap: peak - before,
    storeBytes,
  };
}

export function benchPipeline(streamEvents = 3_000_000, batchLines = 512): PipelineResult {
  const lines = hopLines({ events: 1_000_000, gapNs: GAP_NS });
  const bytesPerLine = Math.round(lines.reduce((s, l) => s + l.length + 1, 0) / lines.length);
  reconstruct(parseAll(lines.slice(0, 200_000))); // warm-up
  const parsed = parseAll(lines);
  const parse = best(3, lines.length, (c) => c.run(() => parseAll(lines)));
  const rec = best(3, parsed.length, (c) => c.run(() => reconstruct(parsed)));

  // Heap held by 1M parsed events.
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = parseAll(lines);
  gc();
  const heapPerMillion = ((process.memoryUsage().heapUsed - before) / kept.length) * 1_000_000;
  kept.length = 0;
  parsed.length = 0;
  lines.length = 0;

  // Steady state: stream, line by line, as trace does: through the combined entry, then as before.
  const direct = stream(streamEvents, batchLines, true);
  const viaEvents = stream(streamEvents, batchLines, false);
  const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;
  return {
    parse,
    reconstruct: rec,
    pipeline: direct.rate,
    pipelineViaEvents: viaEvents.rate,
    streamingPeakHeapMiB: mib(direct.peakHeap),
    streamingPeakHeapViaEventsMiB: mib(viaEvents.peakHeap),
    storeMiB: mib(direct.storeBytes),
    heapPerMillionEventsMiB: mib(heapPerMillion),
    bytesPerLine,
    batchLines,
  };
}

if (process.argv[1]?.endsWith('pipeline.ts')) {
  const { values } = parseArgs({
    options: { events: { type: 'string', default: '3000000' }, batch: { type: 'string', default: '512' }, json: { type: 'boolean', default: false } },
  });
  if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('pipeline: run with node --expose-gc for exact memory figures\n');
  const r = benchPipeline(Number(values.events), Number(values.batch));
  process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${JSON.stringify(r, null, 2)}\n`);
}
