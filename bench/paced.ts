/**
 * Keeping up: `hoptrace trace --json` of every packet of a paced 64-byte UDP stream (iperf3 -b,
 * pod1 → pod2 of a lab of its own), on each probe tier. Per rate: hop events printed, hop events
 * the kernel (or the reader) reported lost, and the packets seen whole (all 6 device hops:
 * pod1's xmit, rx and recv on the node's veth, the bridge's xmit to pod2, pod2's rx and recv;
 * then its consume, or a drop) out of those iperf3 sent. Rates step up until more than 1 % of hop events are lost; the highest
 * rate with ≤ 1 % lost is reported. Needs root.
 *
 *   npx tsx bench/paced.ts [--tiers fast,classic] [--rates 15000,30000,...] [--seconds 5] [--json]
 *
 * One trace per tier runs through all its rates (each rate on its own port, told apart by the
 * packets' destination port); the tiers run one after the other on the same lab.
 */
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { labUp, labDown, type Lab } from '../server/lab/lab.js';
import { benchLab, tierEnv, type BenchTier } from './tiers.js';

export interface PacedStep {
  readonly rate: number;
  readonly sent: number;
  readonly sentPps: number;
  readonly hops: number;
  readonly lostHops: number;
  /** lostHops / (hops + lostHops). */
  readonly lostShare: number;
  readonly packetsWhole: number;
  /** packetsWhole / sent. */
  readonly wholeShare: number;
  /** How long after the sender stopped trace still printed (the step's or earlier lines): how far behind it was. */
  readonly behindS: number;
}

export interface PacedResult {
  readonly tier: BenchTier;
  readonly bpftrace: string;
  readonly seconds: number;
  readonly steps: PacedStep[];
  /** Highest rate with ≤ 1 % of hop events lost (null: not even the first). */
  readonly maxRateWithin1Pct: number | null;
  /** From trace's summary, over all its rates: hop events that came after the reorder window, and the widest the window grew (ms). */
  readonly late: number | null;
  readonly reorderWindowMs: number | null;
  /** Packets ended because their skb address carried a new one before their free was seen. */
  readonly splits: number | null;
}

const REPO = new URL('../', import.meta.url).pathname;
/**
 * Rates asked, in packets/s: steps of 5 k up to 40 k, then 10 k, from 5 k, so that a tier losing
 * more than 1 % at 15 k (the classic one) still gets a highest rate, and the fast one a finer one.
 */
export const PACED_RATES = '5000,10000,15000,20000,25000,30000,35000,40000,50000,60000,70000';
const DEVICE_HOPS_WHOLE = 6;

async function iperfPaced(lab: Lab, port: number, pps: number, seconds: number): Promise<{ sent: number; seconds: number }> {
  const server = execa('ip', ['netns', 'exec', lab.ns.pod2, 'iperf3', '-s', '-1', '-p', String(port)], { reject: false, buffer: false, stdout: 'pipe' });
  await new Promise<void>((resolve) => {
    let out = '';
    const timer = setTimeout(resolve, 3000);
    server.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) { clearTimeout(timer); resolve(); }
    });
  });
  // -b is the payload bit rate: 64-byte datagrams at `pps` a second.
  const r = await execa('ip', ['netns', 'exec', lab.ns.pod1, 'iperf3', '-c', lab.addr.pod2, '-p', String(port), '-u', '-l', '64', '-b', String(pps * 64 * 8), '-t', String(seconds), '-J'], { reject: false });
  server.kill('SIGTERM');
  await server;
  const j = JSON.parse(String(r.stdout)) as { end?: { sum?: { packets: number; seconds: number } }; error?: string };
  const s = j.end?.sum;
  if (!s) throw new Error(`iperf3: ${j.error ?? String(r.stderr).slice(0, 200)}`);
  return { sent: s.packets, seconds: s.seconds };
}

export async function benchPaced(opts: { tiers: readonly BenchTier[]; rates: readonly number[]; seconds: number; log?: (l: string) => void }): Promise<PacedResult[]> {
  if (process.getuid?.() !== 0) throw new Error('the paced benchmark needs root (it builds a lab and attaches probes)');
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const lab = benchLab('bp');
  await labUp(lab);
  const out: PacedResult[] = [];
  try {
    let port = 5600;
    for (const tier of opts.tiers) {
      const env = await tierEnv(tier);
      const child = execa(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'trace', '--json', '--no-model', '--filter', `udp and dst host ${lab.addr.pod2}`], { reject: false, cwd: REPO, env: env.env, buffer: false, stdin: 'ignore' });
      // Counted as it arrives, per destination port: hop events, packets with all their hops.
      // Lost events are told in the same stream as the hops (bpftrace's "Lost N events" line after
      // the events it could not write): they count to the port of the packet printed last before
      // them, so a trace seconds behind still puts them on the rate that lost them.
      const byPort = new Map<number, { hops: number; whole: number; packets: number; lost: number }>();
      const of = (port: number): { hops: number; whole: number; packets: number; lost: number } => {
        let e = byPort.get(port);
        if (!e) byPort.set(port, (e = { hops: 0, whole: 0, packets: 0, lost: 0 }));
        return e;
      };
      let lastPort = 0;
      let summary: { late?: number; reorderWindowMs?: number; splits?: number } | null = null;
      let current = 0;
      let rest = '';
      /** Lines of any kind trace printed: it has caught up once it prints none for a while. */
      let printed = 0;
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        printed += lines.length;
        for (const l of lines) {
          if (l.startsWith('{"type":"summary"')) {
            summary = JSON.parse(l) as { late?: number; reorderWindowMs?: number; splits?: number };
            continue;
          }
          if (l.startsWith('{"type":"lost"')) {
            of(lastPort || current).lost += Number(/"events":(\d+)/.exec(l)?.[1] ?? 0);
            continue;
          }
          const dport = Number(/"dport":(\d+)/.exec(l)?.[1] ?? 0);
          const hops = l.split('"event":"').length - 1;
          const s = of(dport);
          s.hops += hops;
          s.packets++;
          lastPort = dport;
          // Its end (a consume, or a drop such as a starved receiver's full socket buffer) is not
          // a device hop: a packet dropped after its 6 device hops was seen whole too.
          const ends = l.split('"event":"consume"').length + l.split('"event":"drop"').length - 2;
          if (hops - ends === DEVICE_HOPS_WHOLE) s.whole++;
        }
      });
      let err = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`trace did not get ready: ${err.slice(-300)}`)), 90_000);
        child.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('ready\n')) { clearTimeout(timer); resolve(); }
        });
        void child.then(() => reject(new Error(`trace exited: ${err.slice(-300)}`)));
      });
      const steps: PacedStep[] = [];
      const stepOf = (rate: number, p: number, sent: { sent: number; seconds: number }, behindMs: number): PacedStep => {
        const s = of(p);
        return {
          rate, sent: sent.sent, sentPps: Math.round(sent.sent / sent.seconds), hops: s.hops, lostHops: s.lost,
          lostShare: Math.round((s.lost / Math.max(1, s.hops + s.lost)) * 10000) / 10000,
          packetsWhole: s.whole, wholeShare: Math.round((s.whole / Math.max(1, sent.sent)) * 10000) / 10000,
          behindS: behindMs / 1000,
        };
      };
      const sentAt: Array<{ rate: number; port: number; sent: { sent: number; seconds: number }; behindMs: number }> = [];
      for (const rate of opts.rates) {
        const p = port++;
        current = p;
        const sent = await iperfPaced(lab, p, rate, opts.seconds);
        // Packets complete (and lost counts arrive) after the last send; a trace that fell behind
        // still has this rate's lines (and earlier rates') in its buffers, and its reorder window
        // (up to 2 s when events came late: shared/reconstruct.ts) holds the last packets back.
        // The next rate starts once trace has printed this one's packets (99 % of those sent, then
        // 1 s without output) or printed nothing at all for 5 s (at most 120 s), so that rates
        // do not overlap in a trace that fell behind. How long after the sender stopped trace
        // still printed is how far behind it was. Each rate's figures are counted again once
        // trace has exited (below): lines that came later still count to their own rate.
        let behindMs = 0;
        for (let quiet = 0, last = -1, waited = 0; waited < 120_000; waited += 250) {
          await new Promise((r) => setTimeout(r, 250));
          quiet = printed === last ? quiet + 250 : 0;
          if (quiet === 0) behindMs = waited;
          last = printed;
          if ((of(p).packets >= 0.99 * sent.sent && quiet >= 1000) || quiet >= 5000) break;
        }
        sentAt.push({ rate, port: p, sent, behindMs });
        const step = stepOf(rate, p, sent, behindMs);
        log(`paced ${tier.padEnd(7)} ${String(rate).padStart(6)}/s asked, ${String(step.sentPps).padStart(6)}/s sent: ${step.hops} hops, ${step.lostHops} lost (${(step.lostShare * 100).toFixed(2)} %), ${(step.wholeShare * 100).toFixed(1)} % of packets whole, trace ${step.behindS} s behind`);
        if (step.lostShare > 0.01) break;
      }
      child.kill('SIGINT');
      await child;
      for (const x of sentAt) steps.push(stepOf(x.rate, x.port, x.sent, x.behindMs));
      const ok = steps.filter((s) => s.lostShare <= 0.01);
      const said = summary as { late?: number; reorderWindowMs?: number; splits?: number } | null;
      out.push({
        tier, bpftrace: env.version, seconds: opts.seconds, steps, maxRateWithin1Pct: ok.length > 0 ? Math.max(...ok.map((s) => s.rate)) : null,
        late: said?.late ?? null, reorderWindowMs: said?.reorderWindowMs ?? null, splits: said?.splits ?? null,
      });
    }
  } finally {
    await labDown(lab);
  }
  return out;
}

if (process.argv[1]?.endsWith('paced.ts')) {
  const { values } = parseArgs({ options: { tiers: { type: 'string', default: 'fast,classic' }, rates: { type: 'string', default: PACED_RATES }, seconds: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
  const r = await benchPaced({ tiers: values.tiers.split(',') as BenchTier[], rates: values.rates.split(',').map(Number), seconds: Number(values.seconds) });
  process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${JSON.stringify(r, null, 2)}\n`);
}
