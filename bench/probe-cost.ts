/**
 * Probe cost measured by the kernel: with `kernel.bpf_stats_enabled` on, every BPF program counts
 * its runs and the nanoseconds spent in them. Under a fixed iperf3 load (64-byte UDP, pod1 → pod2
 * of a lab, bridged through the node namespace), this gives each hop probe's cost per run and the
 * BPF time per packet of each tracer. Unlike packets/s ratios (bench/overhead.ts) these figures
 * hardly move with the load of a shared machine: they count only the probes' own instructions.
 * They leave out the tracepoint's own cost around the program (the perf buffer fill), which the
 * ratios include. Needs root.
 *
 *   npx tsx bench/probe-cost.ts [--seconds 3] [--only trace-nomatch,stats] [--program x.bt] [--tiers fast,classic] [--json]
 *
 * Each condition runs on each probe tier (`<condition>:fast`, `<condition>:classic`).
 */
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { labUp, labDown } from '../server/lab/lab.js';
import { CONDITIONS, programCondition, iperf, stop, type Condition } from './overhead.js';
import { benchLab, tierEnv, type BenchTier, type TierEnv } from './tiers.js';

export interface ProbeCost {
  readonly probe: string;
  readonly runs: number;
  readonly nsPerRun: number;
  readonly runsPerPacket: number;
}

export interface CostResult {
  readonly name: string;
  readonly description: string;
  /** Packets iperf3 sent during the measured window. */
  readonly packets: number;
  readonly probes: ProbeCost[];
  /** Sum over the tracer's programs of run time, per packet sent. */
  readonly bpfNsPerPacket: number;
}

interface ProgStat { id: number; name: string; type: string; run_time_ns?: number; run_cnt?: number }

const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

async function progStats(): Promise<Map<number, ProgStat>> {
  const r = await execa('bpftool', ['prog', 'show', '--json']);
  return new Map((JSON.parse(String(r.stdout)) as ProgStat[]).map((p) => [p.id, p]));
}

/** BPF program ids held open by these processes or their descendants (/proc/PID/fdinfo), or null when none can be read. */
export function ownProgIds(roots: readonly number[]): Set<number> | null {
  if (roots.length === 0) return null;
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // The ppid is the 4th field, after "(comm)", which may hold spaces.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const tree = new Set(roots);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent) if (!tree.has(pid) && tree.has(ppid)) { tree.add(pid); grew = true; }
  }
  const ids = new Set<number>();
  for (const pid of tree) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^prog_id:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) ids.add(Number(m[1]));
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return ids.size > 0 ? ids : null;
}

export async function benchProbeCost(opts: { seconds?: number; only?: readonly string[]; programs?: readonly string[]; tiers?: readonly BenchTier[]; log?: (l: string) => void } = {}): Promise<CostResult[]> {
  if (process.getuid?.() !== 0) throw new Error('the probe-cost benchmark needs root (it builds a lab and attaches probes)');
  const seconds = opts.seconds ?? 3;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const tiers = await Promise.all((opts.tiers ?? ['fast', 'classic']).map((t) => tierEnv(t)));
  const selected: Condition[] = [
    ...CONDITIONS.filter((c) => c.name !== 'untraced' && c.name !== 'tcpdump-all' && (!opts.only || opts.only.includes(c.name))),
    ...(opts.programs ?? []).map(programCondition),
  ];
  const conditions: Array<Condition & { tier: TierEnv }> = selected.flatMap((c) => tiers.map((t) => ({ ...c, name: `${c.name}:${t.tier}`, tier: t })));
  const statsBefore = readFileSync(STATS_SYSCTL, 'utf8').trim();
  const lab = benchLab('bc');
  await labUp(lab);
  const out: CostResult[] = [];
  let port = 5600;
  try {
    for (const c of conditions) {
      const known = new Set((await progStats()).keys());
      const tracer = await c.start(lab, c.tier);
      try {
        // The tracer's programs: the (raw) tracepoint programs that appeared when it started and
        // that its own processes hold (fdinfo prog_id): another tracer started meanwhile on a
        // shared machine (a test suite's bpftrace) is not counted as ours.
        const held = ownProgIds((tracer?.children ?? []).flatMap((ch) => (ch.pid ? [ch.pid] : [])));
        const mine = [...(await progStats()).values()].filter((p) => !known.has(p.id) && (p.type === 'tracepoint' || p.type === 'raw_tracepoint') && (held === null || held.has(p.id))).map((p) => p.id);
        writeFileSync(STATS_SYSCTL, '1');
        const before = await progStats();
        const run = await iperf(lab, seconds, port++);
        const after = await progStats();
        writeFileSync(STATS_SYSCTL, '0');
        const packets = Math.round(run.pps * seconds);
        const probes = mine.map((id): ProbeCost => {
          const a = after.get(id);
          const b = before.get(id);
          const runs = (a?.run_cnt ?? 0) - (b?.run_cnt ?? 0);
          const ns = (a?.run_time_ns ?? 0) - (b?.run_time_ns ?? 0);
          return { probe: a?.name ?? String(id), runs, nsPerRun: runs ? Math.round(ns / runs) : 0, runsPerPacket: Math.round((runs / packets) * 100) / 100 };
        }).filter((p) => p.runs > 0);
        const total = mine.reduce((s, id) => s + ((after.get(id)?.run_time_ns ?? 0) - (before.get(id)?.run_time_ns ?? 0)), 0);
        const r: CostResult = { name: c.name, description: c.description, packets, probes, bpfNsPerPacket: Math.round(total / packets) };
        out.push(r);
        log(`${c.name.padEnd(18)} ${String(r.bpfNsPerPacket).padStart(6)} ns of BPF per packet  ${probes.map((p) => `${p.probe} ${p.nsPerRun} ns×${p.runsPerPacket}`).join(', ')}`);
      } finally {
        writeFileSync(STATS_SYSCTL, statsBefore);
        await stop(tracer);
      }
    }
  } finally {
    await labDown(lab);
  }
  return out;
}

if (process.argv[1]?.endsWith('probe-cost.ts')) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, only: { type: 'string' }, program: { type: 'string' }, tiers: { type: 'string', default: 'fast,classic' }, json: { type: 'boolean', default: false } } });
  const r = await benchProbeCost({ seconds: Number(values.seconds), tiers: values.tiers.split(',') as BenchTier[], ...(values.only ? { only: values.only.split(',') } : {}), ...(values.program ? { programs: values.program.split(',') } : {}) });
  process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${JSON.stringify(r, null, 2)}\n`);
}
