/**
 * `hoptrace record`: trace like `trace` does and write every hop event to a .hoptrace file
 * (format: shared/recording/README.md), with progress on stderr.
 */
import { existsSync } from 'node:fs';
import { MAX_CAPTURE_BYTES } from '../../probes/assemble.js';
import { TraceSession } from '../trace-session.js';
import { NamespaceNames } from '../namespace-names.js';
import { startRecording, type RecordingStats, type FsyncPolicy } from '../recording/index.js';
import { parseFlags, numberFlag, reportFatal, UsageError } from './common.js';

export const summary = 'record hop events to a .hoptrace file for replay and export';

const HELP = `usage: hoptrace record -o FILE [--filter EXPR] [--duration S] [--count N] [--capture-bytes N] [--force]

Traces like \`hoptrace trace\` and writes every hop event, lost-event report and the namespace
names to FILE as it goes. The file stays replayable up to its last complete record even if
recording is killed. Replay it with \`hoptrace replay FILE\`, export it with \`hoptrace export\`.

  -o, --output FILE   where to write the recording (refuses an existing file without --force)
  -f, --filter EXPR   the same filter language as \`trace\`: only matching packets are recorded
  -d, --duration S    stop after S seconds
  -c, --count N       stop after N packets (reconstructed and matching the filter, as \`trace --count\`)
      --capture-bytes N  keep the first N bytes (≤ ${MAX_CAPTURE_BYTES}) from the IP header of every hop,
                      so \`export --pcapng\` writes the real headers (default 0: rebuilt from fields)
      --force         replace FILE if it exists
      --fsync MODE    always | interval (default: at most once a second) | never
  -h, --help          this help

Prints "ready" on stderr once the probes are attached, then progress (time, events, bytes, lost)
at most once a second. Ctrl-C or SIGTERM finishes the file cleanly.`;

export async function run(argv: string[]): Promise<number> {
  let filterText: string | undefined;
  try {
    const { values } = parseFlags(argv, {
      output: { type: 'string', short: 'o' },
      filter: { type: 'string', short: 'f' },
      duration: { type: 'string', short: 'd' },
      count: { type: 'string', short: 'c' },
      force: { type: 'boolean' },
      fsync: { type: 'string' },
      'capture-bytes': { type: 'string' },
    });
    if (values.help) {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
    if (!values.output) throw new UsageError('record needs -o FILE (where to write the recording)');
    const fsync = values.fsync ?? 'interval';
    if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') throw new UsageError(`--fsync takes always, interval or never, got '${fsync}'`);
    if (!values.force && existsSync(values.output)) throw new UsageError(`${values.output} already exists; use --force to replace it`);
    filterText = values.filter ?? '';
    return await record({
      path: values.output,
      filter: filterText,
      duration: numberFlag(values.duration, 'duration', { min: 0.001 }),
      count: numberFlag(values.count, 'count', { integer: true, min: 1 }),
      overwrite: values.force === true,
      fsync,
      captureBytes: numberFlag(values['capture-bytes'], 'capture-bytes', { integer: true, min: 0, max: MAX_CAPTURE_BYTES }) ?? 0,
    });
  } catch (err) {
    return reportFatal(err, filterText);
  }
}

interface RecordOptions {
  readonly path: string;
  readonly filter: string;
  readonly duration: number | undefined;
  readonly count: number | undefined;
  readonly overwrite: boolean;
  readonly fsync: FsyncPolicy;
  readonly captureBytes: number;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function progressLine(s: RecordingStats): string {
  return `recording ${(s.elapsedMs / 1000).toFixed(0)} s, ${s.events} events, ${s.packets} packets, ${formatBytes(s.bytes)}, ${s.lost} lost`;
}

async function record(opts: RecordOptions): Promise<number> {
  const session = new TraceSession({ filter: opts.filter, captureBytes: opts.captureBytes });
  session.on('warning', (message) => process.stderr.write(`hoptrace: ${message}\n`));
  const names = new NamespaceNames();
  let finishResolve: (reason: string) => void = () => undefined;
  const finished = new Promise<string>((resolve) => { finishResolve = resolve; });
  // `on`, not `once`: execa's signal-exit handler re-raises a signal it believes nobody else
  // handles, and a `once` listener is already gone when it looks. A second signal quits at once.
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) process.exit(130);
    finishResolve('interrupted');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let died: { stderr: string; code: number | null; signal: string | null } | undefined;
  session.on('exit', (exit) => {
    if (!exit.requested) {
      died = exit;
      finishResolve('bpftrace exited');
    }
  });

  const tty = process.stderr.isTTY === true;
  let progressShown = false;
  try {
    await session.start();
    const recording = await startRecording(session, opts.path, {
      names,
      writer: { overwrite: opts.overwrite, fsync: opts.fsync },
      onPacket: () => {
        if (opts.count !== undefined && recording.stats.packets >= opts.count) finishResolve('count');
      },
    });
    void recording.done.then((r) => { if (r.error) finishResolve('error'); });
    process.stderr.write('ready\n');
    const progress = setInterval(() => {
      const line = progressLine(recording.stats);
      process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      progressShown = true;
    }, 1000);
    const timer = opts.duration !== undefined ? setTimeout(() => finishResolve('duration'), opts.duration * 1000) : undefined;

    const reason = await finished;
    clearInterval(progress);
    if (timer) clearTimeout(timer);
    // Detach first: events bpftrace still prints while stopping are recorded too.
    await session.stop();
    const result = await recording.stop(reason);
    if (tty && progressShown) process.stderr.write('\r\x1b[K');
    if (result.error) {
      process.stderr.write(`hoptrace: recording stopped: ${result.error}; the ${result.events} events written before stay readable in ${opts.path}\n`);
      return 1;
    }
    process.stderr.write(`hoptrace: recorded ${result.events} events (${result.packets} packets, ${result.lost} lost in the kernel) in ${(result.elapsedMs / 1000).toFixed(1)} s to ${opts.path} (${formatBytes(result.bytes)})\n`);
    if (died) {
      process.stderr.write(`hoptrace: bpftrace exited unexpectedly (${died.signal ?? `code ${died.code}`})${died.stderr ? `:\n${died.stderr}` : ''}\n`);
      return 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (session.isRunning) await session.stop();
  }
}
