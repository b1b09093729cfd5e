/**
 * Probe overhead: iperf3 64-byte UDP packets/s from pod1 to pod2 of a lab (bridged through the
 * node namespace) with nothing attached, and with each tracer attached, as a ratio to the
 * untraced runs of the same round. Needs root.
 *
 *   npx tsx bench/overhead.ts [--rounds 3] [--seconds 5] [--only a,b] [--program x.bt,y.bt] [--tiers fast,classic] [--json]
 *
 * Every condition but untraced and tcpdump runs on each probe tier (bench/tiers.ts), named
 * `<condition>:fast` and `<condition>:classic`: raw tracepoints under bpftrace ≥ 0.21 and classic
 * tracepoints under the system's older one, in the same rounds.
 *
 * Conditions (the tracers' output goes to /dev/null unless noted):
 *   untraced           nothing attached
 *   trace-nomatch      hoptrace trace --json --filter 'host 192.0.2.1' (matches nothing)
 *   trace-nomatch-lean the same with --hops xmit,recv,drop (3 of the 5 hop probes)
 *   trace-all          hoptrace trace --json (every packet, printed)
 *   record-all         hoptrace record -o /tmp/… (every packet, to a file)
 *   record-all-capture the same with --capture-bytes 56 (header bytes kept for pcapng export)
 *   netfilter-nomatch  trace-nomatch with --netfilter (nft rule trace armed in every namespace)
 *   netfilter-all      trace --netfilter --filter 'udp and host <pod2>' (iperf3's packets rule-traced, 1000/s per namespace)
 *   trace-filtered     hoptrace trace --json --filter 'udp and host <pod2>' (every packet matches: flow memory kept per hop)
 *   stats-filtered     hoptrace stats --json --interval 1 --filter 'udp and host <pod2>'
 *   stats              hoptrace stats --json --interval 1 (every packet, aggregated in the kernel)
 *   stats-lean         hoptrace stats --json --interval 1 --hops xmit,recv,drop
 *   stats-sample16     hoptrace stats --json --interval 1 --sample 16
 *   bpftrace-oneliner  bpftrace printing every net_dev_start_xmit (stdout read and discarded by Node)
 *   floor-5tp          bpftrace with empty programs on the 5 hop tracepoints (the floor of any tracer)
 *   floor-3tp          the same on 3 (net_dev_start_xmit, netif_receive_skb, kfree_skb: --hops xmit,recv,drop)
 *   tcpdump-all        tcpdump -i any -nn (text) in each of the lab's 4 namespaces
 * Each round runs every tracer once, each run bracketed by untraced runs (U T1 U T2 U ...); a
 * run's ratio is its packets/s over the mean of the untraced runs just before and after it (the
 * machine is shared and its load drifts), and the median over rounds is reported. iperf3 runs
 * `-u -l 64 -b 0 -t S`, the sender pinned to CPU 0 and the receiver to CPU 1.
 * Which packets/s: the rate the sender got through the whole path. A veth delivers by queueing
 * on the sending CPU's backlog, which that CPU's softirq drains before send() returns, so one
 * send runs pod1's output, both veth crossings, the node's bridge and pod2's input up to the
 * socket queue on CPU 0 — every probe of the path runs there, and the send rate is the path's
 * rate. What the receiving iperf3 reads (kept as `received`) is capped by CPU 1, which the
 * tracer's own user space and anything else on the machine share; it swung between ~130k and
 * ~340k packets/s untraced from run to run, while the send rate held within ±5 %.
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa, type ResultPromise } from 'execa';
import { labUp, labDown, type Lab } from '../server/lab/lab.js';
import { HOP_PROBES } from '../probes/assemble.js';
import { rawTracepointProgram } from '../probes/tracepoints.js';
import { benchLab, tierEnv, type BenchTier, type TierEnv } from './tiers.js';

/** The hop probes' tracepoints as bpftrace names them (tracepoint:net:net_dev_start_xmit, ...). */
const HOP_TRACEPOINTS: readonly string[] = HOP_PROBES.map((p) => `tracepoint:${p.tracepoint}`);

export interface ConditionResult {
  readonly name: string;
  readonly description: string;
  /** Median over rounds of packets/s sent through the path (see above: the ratio's basis). */
  readonly pps: number;
  /** Median over rounds of packets/s the receiving iperf3 read. */
  readonly receivedPps: number;
  /** Median over rounds of pps / untraced pps of the same round. */
  readonly ratio: number;
  readonly ratios: number[];
  /** What the tracer said at the end (hoptrace's summary line), when it says anything. */
  readonly note?: string;
}

export interface OverheadResult {
  readonly rounds: number;
  readonly seconds: number;
  readonly loadBefore: string;
  readonly conditions: ConditionResult[];
}

const REPO = new URL('../', import.meta.url).pathname;
type Child = ResultPromise<{ reject: false }>;

export interface Tracer {
  readonly children: Child[];
  /** Last words of the tool (its stderr summary), for the report. */
  note(): string | undefined;
}

/** Starts `argv` and resolves once `ready` matches its stderr (or stdout). */
async function startUntil(argv: string[], ready: RegExp, opts: { stdout: 'ignore' | 'pipe'; env?: Record<string, string> } = { stdout: 'ignore' }): Promise<{ child: Child; err: () => string }> {
  const [cmd, ...args] = argv;
  const child = execa(cmd as string, args, { reject: false, cwd: REPO, stdin: 'ignore', stdout: opts.stdout, stderr: 'pipe', buffer: false, env: opts.env ?? {} }) as unknown as Child;
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.slice(0, 3).join(' ')} did not get ready: ${err.slice(-300)}`)), 90_000);
    const check = (d: Buffer): void => {
      err += d.toString();
      if (err.length > 65536) err = err.slice(-32768);
      if (ready.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr?.on('data', check);
    // Output read and thrown away (as a terminal would, only faster).
    child.stdout?.on('data', (d: Buffer) => { if (!ready.test(err)) check(d); });
    void child.then(() => { clearTimeout(timer); reject(new Error(`${argv[0]} exited before ready: ${err.slice(-300)}`)); });
  });
  return { child, err: () => err };
}

const HOPTRACE = [process.execPath, '--import', 'tsx', 'server/cli.ts'];

export interface Condition {
  readonly name: string;
  readonly description: string;
  start(lab: Lab, tier: TierEnv): Promise<Tracer | null>;
}

function hoptrace(args: string[]) {
  return async (_lab: Lab, tier: TierEnv): Promise<Tracer> => {
    const { child, err } = await startUntil([...HOPTRACE, ...args], /ready\n/, { stdout: 'ignore', env: tier.env });
    return { children: [child], note: () => err().split('\n').filter((l) => l.startsWith('hoptrace:')).pop() };
  };
}

export const CONDITIONS: readonly Condition[] = [
  { name: 'untraced', description: 'nothing attached', start: async () => null },
  { name: 'trace-nomatch', description: "hoptrace trace --json --filter 'host 192.0.2.1' (matches nothing)", start: hoptrace(['trace', '--json', '--no-model', '--filter', 'host 192.0.2.1']) },
  {
    name: 'trace-nomatch-lean', description: "hoptrace trace --json --hops xmit,recv,drop --filter 'host 192.0.2.1'",
    start: hoptrace(['trace', '--json', '--no-model', '--hops', 'xmit,recv,drop', '--filter', 'host 192.0.2.1']),
  },
  { name: 'trace-all', description: 'hoptrace trace --json (every packet printed)', start: hoptrace(['trace', '--json', '--no-model']) },
  { name: 'record-all', description: 'hoptrace record (every packet, to a file in /tmp)', start: hoptrace(['record', '-o', join(tmpdir(), 'hoptrace-bench.hoptrace'), '--force']) },
  {
    name: 'record-all-capture', description: 'hoptrace record --capture-bytes 56 (every packet with its first 56 header bytes)',
    start: hoptrace(['record', '-o', join(tmpdir(), 'hoptrace-bench.hoptrace'), '--force', '--capture-bytes', '56']),
  },
  {
    name: 'netfilter-nomatch', description: "hoptrace trace --json --netfilter --filter 'host 192.0.2.1' (rule trace armed, matches nothing)",
    start: hoptrace(['trace', '--json', '--no-model', '--netfilter', '--filter', 'host 192.0.2.1']),
  },
  {
    name: 'netfilter-all', description: 'hoptrace trace --json --netfilter --filter \'udp and host <pod2>\' (every packet traced through the rules, 1000/s per namespace)',
    start: (lab, tier) => hoptrace(['trace', '--json', '--no-model', '--netfilter', '--filter', `udp and host ${lab.addr.pod2}`])(lab, tier),
  },
  // A filter every iperf3 packet matches: the flow memory (@flows) is looked up and kept on every hop.
  {
    name: 'trace-filtered', description: 'hoptrace trace --json --filter \'udp and host <pod2>\' (every packet matches the filter, printed)',
    start: (lab, tier) => hoptrace(['trace', '--json', '--no-model', '--filter', `udp and host ${lab.addr.pod2}`])(lab, tier),
  },
  {
    name: 'stats-filtered', description: 'hoptrace stats --json --interval 1 --filter \'udp and host <pod2>\' (every packet matches)',
    start: (lab, tier) => hoptrace(['stats', '--json', '--interval', '1', '--filter', `udp and host ${lab.addr.pod2}`])(lab, tier),
  },
  { name: 'stats', description: 'hoptrace stats --json --interval 1 (every packet, in-kernel aggregates)', start: hoptrace(['stats', '--json', '--interval', '1']) },
  { name: 'stats-lean', description: 'hoptrace stats --json --interval 1 --hops xmit,recv,drop', start: hoptrace(['stats', '--json', '--interval', '1', '--hops', 'xmit,recv,drop']) },
  { name: 'stats-sample16', description: 'hoptrace stats --json --interval 1 --sample 16', start: hoptrace(['stats', '--json', '--interval', '1', '--sample', '16']) },
  {
    name: 'bpftrace-oneliner',
    description: 'bpftrace -e \'tracepoint:net:net_dev_start_xmit { printf(...) }\' (every transmit printed)',
    start: async (_lab, tier) => {
      const prog = 'BEGIN { printf("READY\\n"); } tracepoint:net:net_dev_start_xmit { printf("%llu %s %llx %u\\n", nsecs, str(args->name), args->skbaddr, args->len); }';
      const { child } = await startUntil([tier.bpftrace, '-e', prog], /READY/, { stdout: 'pipe' });
      return { children: [child], note: () => undefined };
    },
  },
  // The floor: what attaching the hop tracepoints costs before any program does anything.
  floorCondition('floor-5tp', HOP_TRACEPOINTS),
  floorCondition('floor-3tp', HOP_TRACEPOINTS.filter((t) => !t.endsWith('netif_rx') && !t.endsWith('consume_skb'))),
  {
    name: 'tcpdump-all',
    description: 'tcpdump -i any -nn (text) in each of the lab\'s 4 namespaces',
    start: async (lab) => {
      const tool = existsSync('/usr/bin/tcpdump') || existsSync('/usr/sbin/tcpdump') ? 'tcpdump' : null;
      if (!tool) throw new Error('tcpdump is not installed (apt-get install tcpdump)');
      const started = await Promise.all(Object.values(lab.ns).map((ns) => startUntil(['ip', 'netns', 'exec', ns, 'tcpdump', '-i', 'any', '-nn', '-l'], /listening on/)));
      return { children: started.map((s) => s.child), note: () => undefined };
    },
  },
];

/**
 * bpftrace with empty programs on `tracepoints`: the cost of the perf-event machinery around a
 * tracepoint (filling its record, running a program) that no probe code can go below.
 */
function floorCondition(name: string, tracepoints: readonly string[]): Condition {
  return {
    name,
    description: `bpftrace with empty programs on ${tracepoints.length} hop tracepoints (${tracepoints.map((t) => t.split(':').pop()).join(', ')})`,
    start: async (_lab, tier) => {
      // On the fast tier the same points as raw tracepoints, as the hop probes attach them there.
      const classic = `BEGIN { printf("READY\\n"); }\n${tracepoints.map((t) => `${t}\n{ }`).join('\n')}`;
      const prog = tier.tier === 'fast' ? rawTracepointProgram(classic) : classic;
      const { child } = await startUntil([tier.bpftrace, '-e', prog], /READY/, { stdout: 'pipe' });
      return { children: [child], note: () => undefined };
    },
  };
}

export async function stop(t: Tracer | null): Promise<void> {
  if (!t) return;
  for (const c of t.children) c.kill('SIGINT');
  await Promise.all(t.children.map(async (c) => {
    const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await c;
    clearTimeout(timer);
  }));
}

export interface IperfRun {
  /** Packets/s sent through the path. */
  readonly pps: number;
  /** Packets/s the receiving iperf3 read. */
  readonly receivedPps: number;
}

export async function iperf(lab: Lab, seconds: number, port: number): Promise<IperfRun> {
  const server = execa('ip', ['netns', 'exec', lab.ns.pod2, 'iperf3', '-s', '-1', '-A', '1', '-p', String(port)], { reject: false, buffer: false, stdout: 'pipe' });
  await new Promise<void>((resolve) => {
    let out = '';
    const timer = setTimeout(resolve, 3000);
    server.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) { clearTimeout(timer); resolve(); }
    });
  });
  const r = await execa('ip', ['netns', 'exec', lab.ns.pod1, 'iperf3', '-c', lab.addr.pod2, '-A', '0', '-p', String(port), '-u', '-l', '64', '-b', '0', '-t', String(seconds), '-J'], { reject: false });
  server.kill('SIGTERM');
  await server;
  const j = JSON.parse(String(r.stdout)) as { end?: { sum?: { packets: number; lost_packets: number; seconds: number } }; error?: string };
  const s = j.end?.sum;
  if (!s) throw new Error(`iperf3: ${j.error ?? String(r.stderr).slice(0, 200)}`);
  return { pps: Math.round(s.packets / s.seconds), receivedPps: Math.round((s.packets - s.lost_packets) / s.seconds) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * A bpftrace program file as a condition (`--program a.bt,b.bt`), for comparing probe variants while
 * working on them. The program must print READY from BEGIN, as the hop programs do.
 */
export function programCondition(file: string): Condition {
  return {
    name: basename(file),
    description: `bpftrace ${file}`,
    start: async (_lab, tier) => {
      const { child } = await startUntil([tier.bpftrace, file], /READY/, { stdout: 'pipe' });
      return { children: [child], note: () => undefined };
    },
  };
}

/** Conditions that do not depend on the probe tier: run once. */
const UNTIERED = new Set(['untraced', 'tcpdump-all']);

export async function benchOverhead(opts: { rounds?: number; seconds?: number; only?: readonly string[]; programs?: readonly string[]; tiers?: readonly BenchTier[]; log?: (l: string) => void } = {}): Promise<OverheadResult> {
  if (process.getuid?.() !== 0) throw new Error('the overhead benchmark needs root (it builds a lab and attaches probes)');
  const rounds = opts.rounds ?? 3;
  const seconds = opts.seconds ?? 5;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const tiers = await Promise.all((opts.tiers ?? ['fast', 'classic']).map((t) => tierEnv(t)));
  const selected = [
    ...CONDITIONS.filter((c) => c.name === 'untraced' || !opts.only || opts.only.includes(c.name)),
    ...(opts.programs ?? []).map(programCondition),
  ];
  // Each tier-dependent condition once per tier ('trace-nomatch:fast', 'trace-nomatch:classic'),
  // interleaved in the same rounds, so both tiers' ratios come from the same machine load.
  const conditions: Array<Condition & { tier: TierEnv }> = selected.flatMap((c) => (UNTIERED.has(c.name)
    ? [{ ...c, tier: tiers[0] as TierEnv }]
    : tiers.map((t) => ({ ...c, name: `${c.name}:${t.tier}`, description: `${c.description} — ${t.tier} tier, bpftrace ${t.version}`, tier: t }))));
  const loadBefore = (await execa('uptime')).stdout.trim();
  const lab = benchLab('bo');
  await labUp(lab);
  // Each tracer run is bracketed by untraced runs, U T1 U T2 U ... U, and compared with the mean
  // of the two around it: the machine is shared, and its load drifts over minutes.
  const runs = new Map<string, Array<IperfRun & { ratio: number; note?: string }>>();
  const untraced: IperfRun[] = [];
  try {
    let port = 5300;
    const tracers = conditions.filter((c) => c.name !== 'untraced');
    for (let round = 1; round <= rounds; round++) {
      let before = await iperf(lab, seconds, port++);
      untraced.push(before);
      log(`round ${round} ${'untraced'.padEnd(18)} ${String(before.pps).padStart(7)} packets/s sent (${before.receivedPps} received)`);
      for (const c of tracers) {
        const tracer = await c.start(lab, c.tier);
        let run: IperfRun;
        try {
          run = await iperf(lab, seconds, port++);
        } finally {
          await stop(tracer);
        }
        const after = await iperf(lab, seconds, port++);
        untraced.push(after);
        const note = tracer?.note();
        const ratio = Math.round((run.pps / ((before.pps + after.pps) / 2)) * 1000) / 1000;
        runs.set(c.name, [...(runs.get(c.name) ?? []), { ...run, ratio, ...(note ? { note } : {}) }]);
        log(`round ${round} ${c.name.padEnd(18)} ${String(run.pps).padStart(7)} packets/s sent (${run.receivedPps} received), ratio ${ratio.toFixed(2)}${note ? `  ${note}` : ''}`);
        log(`round ${round} ${'untraced'.padEnd(18)} ${String(after.pps).padStart(7)} packets/s sent (${after.receivedPps} received)`);
        before = after;
      }
    }
  } finally {
    await labDown(lab);
  }
  const base: ConditionResult = {
    name: 'untraced', description: 'nothing attached (run before and after every tracer run)',
    pps: median(untraced.map((x) => x.pps)), receivedPps: median(untraced.map((x) => x.receivedPps)), ratio: 1, ratios: [],
  };
  return {
    rounds,
    seconds,
    loadBefore,
    conditions: [base, ...conditions.filter((c) => c.name !== 'untraced').map((c) => {
      const r = runs.get(c.name) ?? [];
      const note = r[r.length - 1]?.note;
      return {
        name: c.name, description: c.description,
        pps: median(r.map((x) => x.pps)), receivedPps: median(r.map((x) => x.receivedPps)),
        ratio: median(r.map((x) => x.ratio)), ratios: r.map((x) => x.ratio), ...(note ? { note } : {}),
      };
    })],
  };
}

if (process.argv[1]?.endsWith('overhead.ts')) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' }, only: { type: 'string' }, program: { type: 'string' }, tiers: { type: 'string', default: 'fast,classic' }, json: { type: 'boolean', default: false } } });
  const r = await benchOverhead({
    rounds: Number(values.rounds), seconds: Number(values.seconds), tiers: values.tiers.split(',') as BenchTier[],
    ...(values.only ? { only: values.only.split(',') } : {}), ...(values.program ? { programs: values.program.split(',') } : {}),
  });
  process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${JSON.stringify(r, null, 2)}\n`);
}
