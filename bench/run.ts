/**
 * `npm run bench`: the benchmarks of issue 8, one table, and bench/results.json.
 *
 *   npm run bench [-- --only pipeline,overhead,latency] [--rounds 3] [--seconds 5]
 *
 *   pipeline   parse + reconstruct throughput and memory (bench/pipeline.ts, its own process)
 *   overhead   iperf3 64-byte UDP packets/s under each tracer, as ratios (bench/overhead.ts, root)
 *   probecost  BPF run time per hop probe and per packet, counted by the kernel (bench/probe-cost.ts, root)
 *   latency    kernel event → socket.io client, p50/p99 (bench/latency.ts, root)
 *   paced      trace --json of a paced stream: hop events lost, packets seen whole, the highest
 *              rate with ≤ 1 % lost (bench/paced.ts, root)
 *   hub        many nodes: agents → NATS JetStream → `serve --hub` → socket.io client, 1→4 agents:
 *              events/s, hub CPU per 100k events, latency p50/p99, losses by where (bench/hub.ts;
 *              needs nats-server; its kernel source needs root). Not in the default set: run it
 *              with `--only hub` [--hub-sources synthetic,kernel] [--hub-agents 1,2,3,4]
 *              [--hub-rates 10000,25000 events/s per synthetic agent] [--hub-pps 2000 datagrams/s
 *              per kernel sender] [--hub-base REV: each step also with REV's hub, before/after]
 * overhead, probecost and paced run on both probe tiers in the same run (bench/tiers.ts: fast =
 * raw tracepoints under bpftrace ≥ 0.21, classic = the system's older bpftrace); `--tiers fast`
 * runs one.
 * Other benches live beside these and run on their own: bench/service-load.ts (many clients),
 * bench/replay.ts (recordings), bench/web-ingest.ts (the dashboard's worker).
 * The machine is shared: the load average before each part is recorded with its figures, and
 * overhead figures are only ratios within one run.
 */
import { parseArgs } from 'node:util';
import { writeFileSync, readFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PipelineResult } from './pipeline.js';
import { benchOverhead, type OverheadResult } from './overhead.js';
import { benchLatency, type LatencyResult } from './latency.js';
import { benchProbeCost, type CostResult } from './probe-cost.js';
import { benchPaced, PACED_RATES, type PacedResult } from './paced.js';
import { tierEnv, type BenchTier } from './tiers.js';
import { benchHub, hubTable, type HubResult, type HubSource } from './hub.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'pipeline,overhead,probecost,latency,paced' },
    tiers: { type: 'string', default: 'fast,classic' },
    // Overhead and probe-cost conditions (bench/overhead.ts CONDITIONS); default: all of them.
    conditions: { type: 'string' },
    rates: { type: 'string', default: PACED_RATES },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    out: { type: 'string', default: fileURLToPath(new URL('./results.json', import.meta.url)) },
    'hub-sources': { type: 'string', default: process.getuid?.() === 0 ? 'synthetic,kernel' : 'synthetic' },
    'hub-agents': { type: 'string', default: '1,2,3,4' },
    'hub-rates': { type: 'string', default: '10000,25000' },
    'hub-pps': { type: 'string', default: '2000' },
    'hub-base': { type: 'string' },
  },
});
const parts = new Set(values.only.split(','));
const root = process.getuid?.() === 0;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface Results {
  machine: { cpu: string; cores: number; memGiB: number; kernel: string; node: string; bpftrace: string };
  at: string;
  pipeline?: PipelineResult & { loadavg: string };
  overhead?: OverheadResult & { loadavg: string };
  latency?: LatencyResult & { loadavg: string };
  probecost?: { loadavg: string; conditions: CostResult[] };
  paced?: { loadavg: string; tiers: PacedResult[] };
  hub?: HubResult & { loadavg: string };
  skipped: string[];
}

const tiers = values.tiers.split(',') as BenchTier[];
const only = values.conditions ? { only: values.conditions.split(',') } : {};
const bpftraceVersion = (await Promise.all(tiers.map((t) => tierEnv(t).then((e) => `${t} tier: bpftrace ${e.version} (${e.bpftrace})`, (err: Error) => `${t} tier: ${err.message}`)))).join('; ');
const results: Results = {
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, bpftrace: bpftraceVersion },
  at: new Date().toISOString(),
  skipped: [],
};
const log = (l: string): void => { process.stderr.write(`${l}\n`); };

if (parts.has('pipeline')) {
  const load = loadavg();
  log(`pipeline (load ${load}) ...`);
  const r = await execa(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(new URL('./pipeline.ts', import.meta.url)), '--json'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`pipeline bench failed: ${String(r.stderr).slice(0, 500)}`);
  results.pipeline = { ...(JSON.parse(String(r.stdout)) as PipelineResult), loadavg: load };
}
for (const [name, fn] of [
  ['overhead', async () => { const load = loadavg(); results.overhead = { ...(await benchOverhead({ rounds: Number(values.rounds), seconds: Number(values.seconds), tiers, log, ...only })), loadavg: load }; }],
  ['probecost', async () => { const load = loadavg(); results.probecost = { loadavg: load, conditions: await benchProbeCost({ tiers, log, ...only }) }; }],
  ['paced', async () => { const load = loadavg(); results.paced = { loadavg: load, tiers: await benchPaced({ tiers, rates: values.rates.split(',').map(Number), seconds: Number(values.seconds), log }) }; }],
  ['latency', async () => { const load = loadavg(); results.latency = { ...(await benchLatency(log)), loadavg: load }; }],
] as const) {
  if (!parts.has(name)) continue;
  if (!root) {
    results.skipped.push(`${name}: needs root`);
    continue;
  }
  log(`${name} (load ${loadavg()}) ...`);
  await fn();
}

if (parts.has('hub')) {
  const load = loadavg();
  log(`hub (load ${load}) ...`);
  try {
    results.hub = {
      ...(await benchHub({
        sources: values['hub-sources'].split(',') as HubSource[], agents: values['hub-agents'].split(',').map(Number), rates: values['hub-rates'].split(',').map(Number),
        pps: Number(values['hub-pps']), seconds: Number(values.seconds), log, ...(values['hub-base'] ? { base: values['hub-base'] } : {}),
      })),
      loadavg: load,
    };
  } catch (err) {
    // nats-server missing, or the kernel source without root: one line, and the rest of the results kept.
    process.stderr.write(`bench: hub: ${(err as Error).message}\n`);
    results.skipped.push(`hub: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

writeFileSync(values.out, `${JSON.stringify(results, null, 2)}\n`);

const lines: string[] = [];
const m = results.machine;
lines.push(`hoptrace benchmarks — ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ${m.bpftrace}`);
const fmt = (n: number): string => n.toLocaleString('en-US');
if (results.pipeline) {
  const p = results.pipeline;
  lines.push('', `pipeline (one core; load ${p.loadavg})                      events/CPU-s   events/s`);
  lines.push(`  parse (probes/hop-line.ts)                             ${fmt(p.parse.eventsPerCpuSec).padStart(12)} ${fmt(p.parse.eventsPerSec).padStart(10)}`);
  lines.push(`  reconstruct (shared/reconstruct.ts)                    ${fmt(p.reconstruct.eventsPerCpuSec).padStart(12)} ${fmt(p.reconstruct.eventsPerSec).padStart(10)}`);
  lines.push(`  parse + reconstruct, streaming ${fmt(p.pipeline.events)} events     ${fmt(p.pipeline.eventsPerCpuSec).padStart(12)} ${fmt(p.pipeline.eventsPerSec).padStart(10)}   target 1,000,000`);
  lines.push(`    (hop lines straight into the engine, as \`trace\` runs; through event objects, as the service and recorder do: ${fmt(p.pipelineViaEvents.eventsPerCpuSec)}/CPU-s)`);
  lines.push(`  memory: ${p.heapPerMillionEventsMiB} MiB of heap per million parsed events kept; ${p.streamingPeakHeapMiB} MiB live heap + ${p.storeMiB} MiB event store streaming at 1M events/s`);
}
if (results.overhead) {
  const o = results.overhead;
  lines.push('', `probe overhead: iperf3 -u -l 64 -b 0, pod1 → pod2, ${o.seconds} s × ${o.rounds} rounds (load ${o.loadavg})`);
  lines.push('  condition            sent/s      ratio  per round         received/s');
  for (const c of o.conditions) lines.push(`  ${c.name.padEnd(19)} ${fmt(c.pps).padStart(9)}  ${c.ratio.toFixed(2).padStart(5)}  ${c.ratios.map((x) => x.toFixed(2)).join(' ').padEnd(16)}  ${fmt(c.receivedPps).padStart(9)}`);
  lines.push('  targets (fast tier): floor-5tp ≥ 0.95, trace-nomatch ≥ 0.90, stats ≥ 0.85');
}
if (results.probecost) {
  const pc = results.probecost;
  lines.push('', `probe cost counted by the kernel (kernel.bpf_stats_enabled), same traffic (load ${pc.loadavg})`);
  lines.push('  condition            BPF ns/packet  per probe: ns per run × runs per packet');
  for (const c of pc.conditions) lines.push(`  ${c.name.padEnd(19)} ${String(c.bpfNsPerPacket).padStart(13)}  ${c.probes.map((p) => `${p.probe} ${p.nsPerRun}×${p.runsPerPacket}`).join(', ')}`);
}
if (results.latency) {
  const l = results.latency;
  lines.push('', `end-to-end latency, kernel event → socket.io client (load ${l.loadavg}; ${l.batching})`);
  for (const x of l.loads) lines.push(`  ${x.load.padEnd(22)} ${String(x.events).padStart(7)} events  p50 ${x.p50Ms} ms  p90 ${x.p90Ms} ms  p99 ${x.p99Ms} ms  max ${x.maxMs} ms`);
}
if (results.paced) {
  lines.push('', `trace --json of every packet of a paced 64-byte UDP stream (load ${results.paced.loadavg})`);
  lines.push('  tier      asked/s   sent/s   hop events   lost    lost %   packets whole   trace behind');
  for (const t of results.paced.tiers) {
    for (const st of t.steps) lines.push(`  ${t.tier.padEnd(8)} ${fmt(st.rate).padStart(8)} ${fmt(st.sentPps).padStart(8)} ${fmt(st.hops).padStart(12)} ${fmt(st.lostHops).padStart(6)} ${(st.lostShare * 100).toFixed(2).padStart(7)}   ${`${(st.wholeShare * 100).toFixed(1)} %`.padStart(13)}   ${st.behindS} s`);
    // The rate asked and the rate the sender reached (a loaded machine starves the sender).
    const best = t.steps.find((st) => st.rate === t.maxRateWithin1Pct);
    lines.push(`  ${t.tier}: highest rate with ≤ 1 % of hop events lost: ${best ? `${fmt(best.rate)}/s asked, ${fmt(best.sentPps)}/s sent` : 'none'}`);
    if (t.late !== null) lines.push(`  ${t.tier}: ${fmt(t.late)} hop events came after the reorder window; widest window ${t.reorderWindowMs ?? '?'} ms; ${fmt(t.splits ?? 0)} packets split at a reused skb`);
  }
  lines.push('  target (fast tier): at 15,000/s ≤ 1 % of hop events lost and ≥ 95 % of packets whole');
}
if (results.hub) {
  lines.push('', `many nodes: agents → NATS JetStream → serve --hub → socket.io /cluster, ${values.seconds} s per step (load ${results.hub.loadavg}; per-step load in the last column)`);
  lines.push(...hubTable(results.hub));
  lines.push('  offered: events the sources made (synthetic) or the hub took in + those reported lost (kernel); CPU % of one core; CPU-s/100k: hub CPU-seconds per 100k delivered events');
}
for (const s of results.skipped) lines.push(`skipped ${s}`);
lines.push('', `written to ${values.out}`);
process.stdout.write(`${lines.join('\n')}\n`);
