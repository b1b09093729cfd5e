/**
 * `hoptrace stats`: per-segment latency histograms, namespace transit, drops and interface
 * rates, aggregated in the kernel and printed per interval (server/stats/session.ts).
 */
import { StatsSession } from '../stats/session.js';
import { formatStatsDocument } from '../../shared/stats/format.js';
import type { StatsDocument } from '../../shared/stats/types.js';
import { MAX_SAMPLE } from '../../shared/api-types.js';
import { runCommand, watchBpftrace, DURATION, FILTER, HOPS, HOPS_HELP, JSON_OUTPUT, SAMPLE } from './common.js';
import type { HopKind } from '../../shared/hop-event.js';

export const summary = 'latency per hop segment, namespace transit, drops and rates, aggregated in the kernel';

const HELP = `usage: hoptrace stats [--filter EXPR] [--duration S] [--interval S] [--sample N] [--hops LIST] [--json] [--top N]

Follows packets through the kernel like \`trace\`, but prints no packets: the time between
consecutive hops of each packet (a segment, e.g. pod veth transmit → node veth receive) goes into
histograms kept in the kernel, with the time packets spend crossing each namespace, drops by
reason and place, and packets/bytes per interface. Percentiles are read from the histograms'
buckets (4 per power of two): within 25 % of the true value.

  -f, --filter EXPR   which packets, as for \`trace\` (pcap-like: host, net, port, tcp, udp, ...)
  -d, --duration S    stop after S seconds
  -i, --interval S    print every S seconds (≥ 0.1), each covering only that interval;
                      without it, one summary for the whole run when it stops
      --sample N      follow 1 in N flows (1 to ${MAX_SAMPLE}; by a hash of the flow, in the kernel);
                      counts are of the sampled packets, not scaled
${HOPS_HELP}
      --json          one JSON document per interval per line:
                      {segments, transit, drops, interfaces, start, end, sample_rate, ...}
      --top N         rows per table in the human output (default 20)
  -h, --help          this help

Prints "ready" on stderr once the probes are attached. Ctrl-C stops and prints the last interval.`;

const OPTIONS = {
  filter: FILTER, duration: DURATION, interval: { kind: 'number', short: 'i', min: 0.1 }, sample: SAMPLE, hops: HOPS,
  json: JSON_OUTPUT, top: { kind: 'number', integer: true, min: 1 },
} as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP }, (o) => stats({
    filter: o.filter ?? '',
    duration: o.duration,
    intervalMs: o.interval === undefined ? undefined : Math.round(o.interval * 1000),
    sample: o.sample ?? 1,
    hops: o.hops,
    json: o.json,
    top: o.top ?? 20,
  }));
}

interface StatsOptions {
  readonly filter: string;
  readonly duration: number | undefined;
  readonly intervalMs: number | undefined;
  readonly sample: number;
  readonly hops: ReadonlySet<HopKind> | undefined;
  readonly json: boolean;
  readonly top: number;
}

async function stats(opts: StatsOptions): Promise<number> {
  const session = new StatsSession({
    filter: opts.filter,
    sampleRate: opts.sample,
    ...(opts.hops ? { hops: opts.hops } : {}),
    ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
  });
  let outputClosed = false;
  let finishResolve: (reason: string) => void = () => undefined;
  const finished = new Promise<string>((resolve) => { finishResolve = resolve; });
  process.stdout.on('error', () => {
    // The reader went away (e.g. `| head`): stop quietly.
    outputClosed = true;
    finishResolve('output closed');
  });
  const print = (doc: StatsDocument): void => {
    if (outputClosed) return;
    process.stdout.write(opts.json ? `${JSON.stringify(doc)}\n` : `${formatStatsDocument(doc, { top: opts.top })}\n\n`);
  };
  session.on('interval', print);
  const bpftrace = watchBpftrace(session, () => finishResolve('bpftrace exited'));
  const onSignal = (): void => finishResolve('interrupted');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await session.start();
    process.stderr.write('ready\n');
    const timer = opts.duration !== undefined ? setTimeout(() => finishResolve('duration reached'), opts.duration * 1000) : undefined;
    await finished;
    if (timer) clearTimeout(timer);
    await session.stop();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return bpftrace.report();
}
