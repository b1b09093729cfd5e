/**
 * `hoptrace replay`: print the packets of a recording as `trace` printed them live (human or
 * the same NDJSON contract), or a summary with --stats. Names, drop reasons and the filter come
 * from the recording.
 */
import { formatDivergence, formatPacket, packetJson, PacketNumbers } from '../../shared/format.js';
import { PathExpectations } from '../../shared/expectation.js';
import { recordedModel, replayRecording, type RecordingFile, type ReplayResult } from '../recording/index.js';
import { openRecordingFile, runCommand, UsageError, JSON_OUTPUT, SECONDS_IN } from './common.js';

export const summary = 'print the packets of a .hoptrace recording (or --stats)';

const HELP = `usage: hoptrace replay FILE [--json] [--speed X] [--from T] [--to T] [--stats]

Rebuilds the packets of a recording made with \`hoptrace record\` and prints them like
\`hoptrace trace\` (namespace names, drop reasons and filter as recorded), each next to the
path the recorded topology model expects (\`expected\`, \`divergence\`), as \`trace\` does.

      --json        NDJSON: the same objects \`trace --json\` prints
      --speed X     pace output at X times recorded speed (default: as fast as possible)
      --from T      only packets that start T seconds or later after the recording started
      --to T        only packets that start before T seconds after the recording started
      --stats       print a summary instead: events, packets, duration, drops by reason
  -h, --help        this help

A recording made with --sample N holds 1 in N flows: replay says so on stderr with its totals
("(sampled: 1 in N flows)"), and --stats shows the rate; counts are of the sampled flows.
A truncated file (recording killed) replays up to its last complete record with a warning.
A damaged file replays what is intact, then exits 1 naming what was skipped.`;

const OPTIONS = { json: JSON_OUTPUT, speed: { kind: 'number', min: 0.001 }, from: SECONDS_IN, to: SECONDS_IN, stats: { kind: 'boolean' } } as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP, positionals: true }, (o, positionals) => {
    if (positionals.length !== 1) throw new UsageError(`replay takes one recording file, got ${positionals.length}`);
    if (o.from !== undefined && o.to !== undefined && o.to <= o.from) throw new UsageError('--to must be after --from');
    return replay(positionals[0] as string, { json: o.json, stats: o.stats, speed: o.speed, from: o.from, to: o.to });
  });
}

interface Options {
  readonly json: boolean;
  readonly stats: boolean;
  readonly speed: number | undefined;
  readonly from: number | undefined;
  readonly to: number | undefined;
}

async function replay(path: string, opts: Options): Promise<number> {
  const file = await openRecordingFile(path, 'replay');
  if (typeof file === 'number') return file;
  try {
    const start = file.header.startMonoNs;
    const rate = file.header.sampleRate ?? 1;
    // As `trace --sample` says it: before the packets and with the totals (stderr, so stdout
    // stays the `trace --json` contract).
    const sampling = rate > 1 ? ` (sampled: 1 in ${rate} flows)` : '';
    if (sampling && !opts.stats) process.stderr.write(`hoptrace: recorded following 1 in ${rate} flows, chosen in the kernel by flow hash\n`);
    // A clone names its original by the number it was printed with, as `trace` does.
    const numbers = new PacketNumbers();
    // The recording's own model, in packet order, the way `trace` put each packet next to the host's.
    const model = opts.stats ? null : await recordedModel(file);
    // A cluster recording's model (record --hub) spans several kernels: the one-kernel model walk
    // would read every crossing packet as a divergence, so its packets are shown without one.
    const clusterModel = model?.namespaces.some((ns) => typeof (ns as { node?: unknown }).node === 'string') ?? false;
    const expectations = model && !clusterModel ? new PathExpectations(model, undefined, (m) => process.stderr.write(`hoptrace: ${m}\n`)) : undefined;
    let outputClosed = false;
    process.stdout.on('error', () => { outputClosed = true; });
    const result = await replayRecording(file, {
      fromNs: opts.from !== undefined ? start + opts.from * 1e9 : undefined,
      toNs: opts.to !== undefined ? start + opts.to * 1e9 : undefined,
      speed: opts.stats ? undefined : opts.speed,
      onPacket: (raw) => {
        if (opts.stats) return true;
        if (outputClosed) return false;
        const annotated = expectations?.annotate(raw);
        const p = annotated ?? raw;
        const n = numbers.next(p.id);
        const divergence = annotated?.divergence ? `\n${formatDivergence(annotated.divergence.summary)}` : '';
        process.stdout.write(opts.json ? `${packetJson(p)}\n` : `${formatPacket(p, n, numbers.of)}${divergence}\n\n`);
        return true;
      },
      onLost: (n, total) => {
        if (opts.stats || outputClosed) return;
        // The same line `trace --json` prints when the kernel loses events.
        if (opts.json) process.stdout.write(`${JSON.stringify({ type: 'lost', events: n, total })}\n`);
        else process.stderr.write(`hoptrace: the kernel lost ${n} events (perf buffer full) here while recording; packets around them may miss hops\n`);
      },
    });
    if (result.filterProblem) process.stderr.write(`hoptrace: ${result.filterProblem}\n`);
    if (sampling && !opts.stats) process.stderr.write(`hoptrace: ${numbers.printed} packets, ${result.events} hop events, ${result.lost} lost in the kernel${sampling}\n`);
    if (opts.stats) process.stdout.write(opts.json ? `${JSON.stringify(statsJson(path, file, result))}\n` : statsText(path, file, result));
    return reportIntegrity(path, result);
  } finally {
    await file.close();
  }
}

/** Warnings and the exit code for a file that was cut short or damaged. */
export function reportIntegrity(path: string, r: ReplayResult): number {
  if (!r.readToEnd) return 0;
  const damaged = r.damagedRegions + r.invalid;
  if (r.truncatedAt !== null) {
    process.stderr.write(`hoptrace: warning: ${path} is truncated: it stops inside a record at byte ${r.truncatedAt}; everything before that was replayed\n`);
  } else if (!r.complete && damaged === 0) {
    process.stderr.write(`hoptrace: warning: ${path} has no end record (the recorder did not finish it); everything in it was replayed\n`);
  }
  if (damaged > 0) {
    process.stderr.write(`hoptrace: ${path} is damaged: ${damaged} damaged stretch${damaged === 1 ? '' : 'es'} (${r.damagedBytes} bytes${r.firstDamageAt !== null ? `, the first at byte ${r.firstDamageAt}` : ''}) were skipped; the rest was replayed\n`);
    return 1;
  }
  return 0;
}

function durationNs(file: RecordingFile, r: ReplayResult): number {
  return r.lastT !== null && r.firstT !== null ? Math.max(0, r.lastT - Math.min(r.firstT, file.header.startMonoNs)) : 0;
}

function statsJson(path: string, file: RecordingFile, r: ReplayResult): object {
  const h = file.header;
  return {
    file: path, host: h.host, kernel: h.kernel, bpftrace: h.bpftraceVersion, filter: h.filter, sampleRate: h.sampleRate ?? 1,
    start: new Date(Number(h.startWallNs / 1_000_000n)).toISOString(),
    durationNs: durationNs(file, r), events: r.events, packets: r.packets, lost: r.lost, fates: r.fates,
    drops: Object.fromEntries([...r.drops].sort((a, b) => b[1] - a[1])),
    discards: Object.fromEntries([...r.discards].sort((a, b) => b[1] - a[1])), splits: r.splits,
    complete: r.complete, truncatedAt: r.truncatedAt, damaged: r.damagedRegions + r.invalid,
  };
}

function statsText(path: string, file: RecordingFile, r: ReplayResult): string {
  const h = file.header;
  const lines = [
    `recording  ${path}`,
    `host       ${h.host} (Linux ${h.kernel}, ${h.bpftraceVersion})`,
    `filter     ${h.filter || '(none)'}`,
    `start      ${new Date(Number(h.startWallNs / 1_000_000n)).toISOString()}`,
    `duration   ${(durationNs(file, r) / 1e9).toFixed(3)} s`,
    `events     ${r.events}${r.lost > 0 ? ` (the kernel lost ${r.lost} more)` : ''}`,
    `packets    ${r.packets}: ${r.fates.delivered} delivered, ${r.fates.dropped} dropped, ${r.fates.unknown} unknown`,
  ];
  // Counts of a sampled recording are of its sampled flows: said beside them, never scaled.
  if ((h.sampleRate ?? 1) > 1) lines.splice(3, 0, `flows      sampled: 1 in ${h.sampleRate} flows (counts not scaled)`);
  if (r.drops.size > 0) {
    lines.push('drops by reason');
    const width = Math.max(...[...r.drops.keys()].map((k) => k.length));
    for (const [reason, n] of [...r.drops].sort((a, b) => b[1] - a[1])) lines.push(`  ${reason.padEnd(width)}  ${n}`);
  }
  // Not drops: delivered packets the socket layer freed afterwards (shared/fate.ts).
  if (r.discards.size > 0) {
    lines.push('delivered, then discarded by their socket, by reason');
    const width = Math.max(...[...r.discards.keys()].map((k) => k.length));
    for (const [reason, n] of [...r.discards].sort((a, b) => b[1] - a[1])) lines.push(`  ${reason.padEnd(width)}  ${n}`);
  }
  if (r.splits > 0) lines.push(`splits     ${r.splits} (an skb carried a new packet before the last one's free was seen)`);
  return `${lines.join('\n')}\n`;
}
