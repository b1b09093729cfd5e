/**
 * `hoptrace compare A B`: before/after, segment by segment. Each side is a recording (.hoptrace,
 * its packets rebuilt and measured as `stats` measures in the kernel) or the output of
 * `hoptrace stats --json` (its interval documents merged). Segments are matched by namespace,
 * interface and event names, so two runs of a recreated lab compare.
 */
import { open, readFile } from 'node:fs/promises';
import { compareStats, mergeStatsDocuments } from '../../shared/stats/compare.js';
import { formatStatsComparison } from '../../shared/stats/format.js';
import { PacketStats } from '../../shared/stats/from-packets.js';
import { parseStatsLines } from '../../shared/stats/schema.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { MAGIC, wallClockNs } from '../../shared/recording/index.js';
import { replayRecording } from '../recording/index.js';
import { openRecordingFile, runCommand, UsageError, JSON_OUTPUT } from './common.js';
import { reportIntegrity } from './replay.js';

export const summary = 'compare per-segment latency of two runs (recordings or stats --json output): before/after';

const HELP = `usage: hoptrace compare A B [--json] [--top N]

Compares two runs segment by segment (a segment is the time between two consecutive hops of a
packet, e.g. node veth receive → bridge transmit): packets, p50 and p99 on each side, the p99
change B − A and B/A, and a * where the change is larger than the histogram buckets can blur
(25 % and 1 µs). Largest change first; segments seen on one side only are listed after.

A and B are each either
  a recording (.hoptrace, from \`hoptrace record\` or the dashboard): its packets are rebuilt
  and every hop pair measured, in the same buckets as \`stats\` uses in the kernel; or
  the output of \`hoptrace stats --json\` saved to a file: its documents (one per interval)
  are merged into one.
Segments are matched by namespace, interface and event names, not inodes, so runs of a lab
that was torn down and built again compare.

      --json        the comparison as one JSON object: {a, b, segments: [{id, from, to, a, b,
                    diff, p99_ratio, significant}]} (a/b: count, rate, p50_ns, p90_ns, p99_ns, max_ns)
      --top N       rows per table in the human output (default 20)
  -h, --help        this help

Counts of sides sampled at different rates (--sample) are not comparable, latencies are: the
output says so. Exit status: 0 compared, 1 a file could not be read, 2 bad usage.`;

const OPTIONS = { json: JSON_OUTPUT, top: { kind: 'number', integer: true, min: 1 } } as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP, positionals: true }, async (o, positionals) => {
    if (positionals.length !== 2) throw new UsageError(`compare takes two files (A B), got ${positionals.length}; see hoptrace compare --help`);
    const [pathA, pathB] = positionals as [string, string];
    const a = await readSide(pathA);
    if (typeof a === 'number') return a;
    const b = await readSide(pathB);
    if (typeof b === 'number') return b;
    const cmp = compareStats(a, b);
    process.stdout.write(o.json
      ? `${JSON.stringify(cmp)}\n`
      : `${formatStatsComparison(cmp, { labels: { a: pathA, b: pathB }, ...(o.top !== undefined ? { top: o.top } : {}) })}\n`);
    return 0;
  });
}

/** One side as a stats document, or the exit code after saying why it cannot be read. */
async function readSide(path: string): Promise<StatsDocument | number> {
  let head: Uint8Array;
  try {
    head = await firstBytes(path, MAGIC.length);
  } catch (err) {
    process.stderr.write(`hoptrace: cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}\n`);
    return 1;
  }
  return MAGIC.every((b, i) => head[i] === b) ? fromRecording(path) : fromStatsFile(path);
}

async function firstBytes(path: string, n: number): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function fromRecording(path: string): Promise<StatsDocument | number> {
  const file = await openRecordingFile(path, 'read');
  if (typeof file === 'number') return file;
  try {
    const h = file.header;
    // Packets stream through: a long recording is never held whole.
    const acc = new PacketStats();
    const result = await replayRecording(file, { onPacket: (p) => { acc.add(p); } });
    // A damaged or cut-short file is compared on what is intact, and said so.
    reportIntegrity(path, result);
    return acc.document({
      filter: h.filter,
      sampleRate: h.sampleRate ?? 1,
      wallClock: (ns) => Number(wallClockNs(h, ns) / 1_000_000n),
    });
  } finally {
    await file.close();
  }
}

async function fromStatsFile(path: string): Promise<StatsDocument | number> {
  const text = await readFile(path, 'utf8');
  const { docs, problems } = parseStatsLines(text);
  const merged = mergeStatsDocuments(docs);
  if (!merged) {
    const why = problems[0] ? ` (line ${problems[0].line}: ${problems[0].message})` : ' (it is empty)';
    process.stderr.write(`hoptrace: ${path} is neither a recording nor \`hoptrace stats --json\` output${why}\n`);
    return 1;
  }
  // A run killed mid-write leaves a partial last line: the documents before it still count.
  for (const p of problems) process.stderr.write(`hoptrace: warning: ${path} line ${p.line} skipped: ${p.message}\n`);
  return merged;
}
