/**
 * `hoptrace record`: trace like `trace` does and write every hop event to a .hoptrace file
 * (format: shared/recording/README.md), with progress on stderr. With `--netfilter` and/or
 * `--notes` the recording has the same depth as `trace` with those switches: the rule-trace
 * events and notes are recorded as they come, and replay attaches them to packets.
 */
import { existsSync } from 'node:fs';
import { MAX_CAPTURE_BYTES } from '../../probes/assemble.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { TraceSession, CannotTraceError } from '../trace-session.js';
import { MAX_SAMPLE } from '../../shared/api-types.js';
import { NamespaceNames } from '../topology/namespace-names.js';
import { startRecording, type DepthSink, type RecordableSession, type RecordingStats, type FsyncPolicy } from '../recording/index.js';
import { NetfilterTracer } from '../netfilter/tracer.js';
import { netfilterPreflight } from '../netfilter/packet-steps.js';
import { detectNoteSupport } from '../capabilities.js';
import { runCommand, watchBpftrace, UsageError, COUNT, DURATION, FILTER, HOPS, HOPS_HELP, NETFILTER, NOTES, SAMPLE } from './common.js';
import type { HopKind } from '../../shared/hop-event.js';
import { resolveFilterText } from '../topology/workload-filter.js';
import { discoverTopology } from '../topology/discover.js';
import type { Topology } from '../../shared/topology/model.js';
import { BUS_HELP, BUS_OPTIONS, busOptionsFrom } from '../hub/cli-options.js';

/**
 * How long `record` waits, once its probes are attached, for the discovery it started with them:
 * the model (and the workload names in it) is then in the file's first topology record, so even
 * a recording shorter than a discovery replays with container names. Longer, it goes on in the
 * background as before.
 */
export const RECORD_DISCOVERY_WAIT_MS = 5000;

export const summary = 'record hop events to a .hoptrace file for replay and export';

const HELP = `usage: hoptrace record -o FILE [--filter EXPR] [--duration S] [--count N] [--sample N] [--capture-bytes N] [--hops LIST] [--netfilter] [--notes] [--force]
       hoptrace record --hub nats://HOST:4222 --since 10m -o FILE [--node NAME,...] [--filter EXPR] [--force]

Traces like \`hoptrace trace\` and writes every hop event, lost-event report and the namespace
names to FILE as it goes. The file stays replayable up to its last complete record even if
recording is killed. Replay it with \`hoptrace replay FILE\`, export it with \`hoptrace export\`.

  -o, --output FILE   where to write the recording (refuses an existing file without --force)
  -f, --filter EXPR   the same filter language as \`trace\`: only matching packets are recorded
  -d, --duration S    stop after S seconds
  -c, --count N       stop after N packets (reconstructed and matching the filter, as \`trace --count\`)
      --sample N      record 1 in N flows (1 to ${MAX_SAMPLE}), as \`trace --sample\`: picked in the
                      kernel by a hash of the flow on each packet's first hop; a recorded flow
                      keeps all its packets and hops. The file says N; counts are not scaled.
      --capture-bytes N  keep the first N bytes (≤ ${MAX_CAPTURE_BYTES}) from the IP header of every hop,
                      so \`export --pcapng\` writes the real headers (default 0: rebuilt from fields);
                      taken as whole 8-byte words, so N is rounded up to a multiple of 8
${HOPS_HELP}
      --netfilter     also record the netfilter rules each packet met, as \`trace --netfilter\`
                      (nft rule trace in every namespace: a temporary table inet hoptrace_*,
                      removed on exit); replay names the rule that dropped or rewrote
      --notes         also record what explains each hop, as \`trace --notes\` (route lookups,
                      MAC learning, qdisc time, neighbour waits, ICMP errors)
      --force         replace FILE if it exists
      --fsync MODE    always | interval (default: at most once a second) | never
  -h, --help          this help

From a cluster's bus (issue 17): \`--hub URL --since DURATION\` cuts a recording from the
JetStream stream the agents publish into (\`hoptrace agent\`), after the fact — no hub needs to
have been running. The window is DURATION back from now (90s, 10m, 1h30m; within the stream's
retention). Each node's hops are reconstructed and stitched as \`serve --hub\` does; the file has
\`node\` on every hop, each node's model and the cluster's, times on the first node's clock.
  --since DURATION    how far back the window starts
  --node LIST         only these nodes (comma-separated names)
  --session ID        the hub session whose batches to read (default hub: what serve --hub asks for)
${BUS_HELP}

Prints "ready" on stderr once the probes are attached, then progress (time, events, bytes, lost)
at most once a second. Ctrl-C or SIGTERM finishes the file cleanly.`;

const OPTIONS = {
  output: { kind: 'string', short: 'o' }, filter: FILTER, duration: DURATION, count: COUNT, force: { kind: 'boolean' },
  fsync: { kind: 'string' }, 'capture-bytes': { kind: 'number', integer: true, min: 0, max: MAX_CAPTURE_BYTES },
  sample: SAMPLE, hops: HOPS, netfilter: NETFILTER, notes: NOTES,
  ...BUS_OPTIONS, since: { kind: 'string' }, node: { kind: 'string' }, session: { kind: 'string' },
} as const;

type RecordValues = Parameters<Parameters<typeof runCommand<typeof OPTIONS>>[2]>[0];

/** `record --hub --since`: a recording cut from the cluster's stream (server/hub/record.ts). */
async function recordHub(o: RecordValues, output: string, url: string): Promise<number> {
  for (const k of ['duration', 'count', 'sample', 'capture-bytes', 'hops', 'netfilter', 'notes', 'fsync'] as const) {
    if (o[k] !== undefined && o[k] !== false) throw new UsageError(`--${k} is not an option of record --hub (the agents traced already; the window is --since)`);
  }
  if (o.since === undefined) throw new UsageError('record --hub needs --since DURATION (e.g. 10m): how far back the recording starts');
  // Loaded only with --hub: `record` alone never touches NATS.
  const { recordFromHub, parseSince, HubRecordError } = await import('../hub/record.js');
  const { BusConfigError, parseBusUrl } = await import('../hub/connect.js');
  const { checkNodeName } = await import('../../shared/cluster/subjects.js');
  let sinceMs: number;
  let nodes: string[] | undefined;
  try {
    parseBusUrl(url);
    sinceMs = parseSince(o.since);
    nodes = o.node?.split(',').map((s) => s.trim()).filter(Boolean).map((n) => checkNodeName(n));
    if (o.session !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.session)) throw new Error('--session must be 1-64 letters, digits, - or _');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  try {
    const r = await recordFromHub({
      bus: busOptionsFrom(o, url), sinceMs, path: output, overwrite: o.force === true, filter: o.filter ?? '',
      ...(nodes && nodes.length > 0 ? { nodes } : {}), ...(o.session !== undefined ? { session: o.session } : {}),
    });
    for (const n of r.nodes) {
      process.stderr.write(`record: ${n.name}: ${n.events} events in ${n.batches} batches, ${n.lost} lost, ${n.gaps} batches missing, clock ${n.offsetNs >= 0 ? '+' : ''}${(n.offsetNs / 1e6).toFixed(3)} ms (${n.offsetMethod})\n`);
    }
    process.stderr.write(`record: wrote ${output}: ${r.events} events, ${r.packets} packets (${r.stitched} across nodes) from ${new Date(r.fromMs).toISOString()} to ${new Date(r.toMs).toISOString()}\n`);
    return 0;
  } catch (err) {
    if (err instanceof BusConfigError || err instanceof HubRecordError) {
      process.stderr.write(`hoptrace: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP }, async (o) => {
    if (!o.output) throw new UsageError('record needs -o FILE (where to write the recording)');
    const fsync = o.fsync ?? 'interval';
    if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') throw new UsageError(`--fsync takes always, interval or never, got '${fsync}'`);
    if (!o.force && existsSync(o.output)) throw new UsageError(`${o.output} already exists; use --force to replace it`);
    if (o.hub !== undefined) return recordHub(o, o.output, o.hub);
    if (o.since !== undefined || o.node !== undefined || o.session !== undefined) throw new UsageError('--since, --node and --session are options of --hub (a recording cut from a cluster\'s stream)');
    return record({
      path: o.output, filter: await resolvedFilter(o.filter ?? ''), duration: o.duration, count: o.count, overwrite: o.force, fsync,
      captureBytes: o['capture-bytes'] ?? 0, sample: o.sample ?? 1, hops: o.hops, netfilter: o.netfilter, notes: o.notes,
    });
  });
}

interface RecordOptions {
  readonly path: string;
  readonly filter: string;
  readonly duration: number | undefined;
  readonly count: number | undefined;
  readonly overwrite: boolean;
  readonly fsync: FsyncPolicy;
  readonly captureBytes: number;
  /** Follow 1 in this many flows (1: all). */
  readonly sample: number;
  /** Hop kinds to attach (`--hops`); undefined: all. */
  readonly hops: ReadonlySet<HopKind> | undefined;
  /** Record the netfilter rule trace (server/netfilter) beside the hops. */
  readonly netfilter: boolean;
  /** Record the notes tier (probes/notes/, probes/deep/ where kprobes work). */
  readonly notes: boolean;
}

/**
 * The trace session as the recorder sees it, with the depth it was started with: notes come from
 * the session's bpftrace, rule-trace events from the nft tracer; both go to whoever subscribed.
 */
function recordable(session: TraceSession, nf: NetfilterTracer | undefined, notes: boolean, sampleRate: number): RecordableSession {
  const sinks = new Set<DepthSink>();
  if (notes) session.on('note', (n) => { for (const s of sinks) s.note(n); });
  nf?.on('event', (ev) => { for (const s of sinks) s.netfilter(ev); });
  type Fn = ((ev: HopEvent) => void) | ((n: number) => void);
  return {
    on(event: 'hop' | 'lost', fn: Fn) {
      if (event === 'hop') session.on('hop', fn as (ev: HopEvent) => void);
      else session.on('lost', fn as (n: number) => void);
    },
    off(event: 'hop' | 'lost', fn: Fn) {
      if (event === 'hop') session.off('hop', fn as (ev: HopEvent) => void);
      else session.off('lost', fn as (n: number) => void);
    },
    filterText: session.filterText,
    get dropReasons() { return session.dropReasons; },
    accepts: (p: Packet) => session.accepts(p),
    depth: { netfilter: nf !== undefined, notes },
    get probes() { return session.probes; },
    get probeTier() { return session.probeTier; },
    sampleRate,
    depthEvents: (sink) => {
      sinks.add(sink);
      return () => sinks.delete(sink);
    },
  };
}

/** How long the last packets' netfilter events are waited for before the file is closed. */
const NETFILTER_LAG_MS = 300;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function progressLine(s: RecordingStats, sampling: string): string {
  return `recording ${(s.elapsedMs / 1000).toFixed(0)} s, ${s.events} events, ${s.packets} packets, ${formatBytes(s.bytes)}, ${s.lost} lost${sampling}`;
}

async function record(opts: RecordOptions): Promise<number> {
  const noteSupport = opts.notes ? await detectNoteSupport() : undefined;
  const session = new TraceSession({
    filter: opts.filter,
    captureBytes: opts.captureBytes,
    sampleRate: opts.sample,
    ...(opts.hops ? { hops: opts.hops } : {}),
    ...(noteSupport ? { notes: true, deep: noteSupport.deep, missingTracepoints: noteSupport.missingTracepoints } : {}),
  });
  session.on('warning', (message) => process.stderr.write(`hoptrace: ${message}\n`));
  for (const n of noteSupport?.notes ?? []) process.stderr.write(`hoptrace: ${n}\n`);
  if (opts.netfilter) {
    // Before anything is attached: a host without nft fails with the fix named, nothing to undo.
    const problems = await netfilterPreflight();
    if (problems.length > 0) throw new CannotTraceError(problems);
  }
  const nf = opts.netfilter ? new NetfilterTracer() : undefined;
  nf?.on('warning', (w) => process.stderr.write(`hoptrace: ${w}\n`));
  // The nft tracer lists namespaces itself; a hop from one it missed (created since) adds it.
  const nfSeen = new Set<number>();
  const onHopNetns = (ev: HopEvent): void => {
    if (!nf || nfSeen.has(ev.netns)) return;
    nfSeen.add(ev.netns);
    void nf.trackNetns(ev.netns);
  };
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
  const bpftrace = watchBpftrace(session, () => finishResolve('bpftrace exited'));

  const tty = process.stderr.isTTY === true;
  const sampling = opts.sample > 1 ? ` (sampled: 1 in ${opts.sample} flows)` : '';
  let progressShown = false;
  try {
    // Discovery (with the workload names) runs while the probes attach: both take seconds.
    const discovery = discoverTopology().catch(() => null);
    // Let both starts finish before judging: stopping one still starting would leave it attached.
    const started = await Promise.allSettled([session.start(), nf?.start(session.filterAst)]);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (nf) session.on('hop', onHopNetns);
    let waitTimer: NodeJS.Timeout | undefined;
    const model = await Promise.race([discovery, new Promise<null>((r) => { waitTimer = setTimeout(() => r(null), RECORD_DISCOVERY_WAIT_MS); })]);
    clearTimeout(waitTimer);
    const recording = await startRecording(recordable(session, nf, opts.notes, opts.sample), opts.path, {
      names,
      // The model goes in a record of its own right after the first (names only), not in it: a
      // disk too full for it then stops a started recording whose events stay readable, rather
      // than refusing the start. Without it in time, the recorder discovers in the background.
      ...(model ? { topology: false as const } : {}),
      writer: { overwrite: opts.overwrite, fsync: opts.fsync },
      onPacket: () => {
        if (opts.count !== undefined && recording.stats.packets >= opts.count) finishResolve('count');
      },
    });
    if (model) recording.topologyChanged(model satisfies Topology);
    void recording.done.then((r) => { if (r.error) finishResolve('error'); });
    // Said before "ready" and with the totals, as `trace --sample` does: counts are of sampled flows.
    if (sampling) process.stderr.write(`hoptrace: following 1 in ${opts.sample} flows, chosen in the kernel by flow hash\n`);
    process.stderr.write('ready\n');
    const progress = setInterval(() => {
      const line = progressLine(recording.stats, sampling);
      process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      progressShown = true;
    }, 1000);
    const timer = opts.duration !== undefined ? setTimeout(() => finishResolve('duration'), opts.duration * 1000) : undefined;

    const reason = await finished;
    clearInterval(progress);
    if (timer) clearTimeout(timer);
    // Detach first: events bpftrace still prints while stopping are recorded too.
    await session.stop();
    // nft monitors report a packet's rules a little after its hops (as trace --netfilter waits).
    if (nf) await new Promise((r) => setTimeout(r, NETFILTER_LAG_MS));
    const result = await recording.stop(reason);
    await nf?.stop();
    if (tty && progressShown) process.stderr.write('\r\x1b[K');
    if (result.error) {
      process.stderr.write(`hoptrace: recording stopped: ${result.error}; the ${result.events} events written before stay readable in ${opts.path}\n`);
      return 1;
    }
    process.stderr.write(`hoptrace: recorded ${result.events} events (${result.packets} packets, ${result.lost} lost in the kernel) in ${(result.elapsedMs / 1000).toFixed(1)} s to ${opts.path} (${formatBytes(result.bytes)})${sampling}\n`);
    return bpftrace.report();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    session.off('hop', onHopNetns);
    // Both are safe to stop twice; whatever failed, nothing stays attached and no table stays behind.
    await Promise.allSettled([session.isRunning ? session.stop() : undefined, nf?.stop()]);
  }
}

/** `pod NAME` / `container NAME` resolved to the workload's addresses now; says what they became. */
async function resolvedFilter(text: string): Promise<string> {
  const resolved = await resolveFilterText(text);
  if (resolved !== text) process.stderr.write(`hoptrace: filter: ${resolved}\n`);
  return resolved;
}
