/**
 * Measures what tracing costs a busy lab: 64-byte UDP from pod1 to ext (through the bridge, the
 * node's FORWARD chain and MASQUERADE) as fast as iperf3 can send, received packets/s with no
 * trace and under each trace configuration. Not a test (numbers depend on the machine): run as
 * root with `npx tsx test/netfilter/measure-overhead.ts [seconds] [repeats]`; prints a table.
 *
 * Filters: "udp port 9" matches nothing of the load (probes attached, nothing followed — the
 * default cost of being traced), "udp and port 5201" matches all of it (every packet followed).
 */
import { execa, type ResultPromise } from 'execa';
import { labFor, labUp, labDown } from '../../server/lab/lab.js';
import { REPO } from '../helpers/cli.js';

const seconds = Number(process.argv[2] ?? 5);
const repeats = Number(process.argv[3] ?? 2);
/** Optional comma-separated indexes into CONFIGS (0 = no trace is always run). */
const only = process.argv[4]?.split(',').map(Number);

interface Config {
  readonly name: string;
  readonly args: readonly string[] | null;
}

const CONFIGS: readonly Config[] = [
  { name: 'no trace', args: null },
  { name: 'trace (filter matches nothing)', args: ['--filter', 'udp port 9'] },
  { name: 'trace --netfilter (matches nothing)', args: ['--netfilter', '--filter', 'udp port 9'] },
  { name: 'trace --notes (matches nothing)', args: ['--notes', '--filter', 'udp port 9'] },
  { name: 'trace (filter matches the load)', args: ['--filter', 'udp and port 5201'] },
  { name: 'trace --netfilter (matches the load)', args: ['--netfilter', '--filter', 'udp and port 5201'] },
  { name: 'trace --notes (matches the load)', args: ['--notes', '--filter', 'udp and port 5201'] },
];

/** Resolves once the trace is ready; the process comes wrapped (an execa process is a thenable). */
async function startTrace(args: readonly string[]): Promise<{ child: ResultPromise }> {
  const child = execa(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'trace', '--json', '--no-model', ...args], {
    cwd: REPO, reject: false, stdout: 'ignore', buffer: false,
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`trace not ready: ${err}`)), 90_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('ready\n')) { clearTimeout(timer); resolve(); }
    });
    void child.then(() => reject(new Error(`trace exited: ${err}`)));
  });
  return { child };
}

async function load(ns: { pod1: string; ext: string }, ext: string): Promise<number> {
  const server = execa('ip', ['netns', 'exec', ns.ext, 'iperf3', '-s', '-1', '-B', ext], { reject: false });
  await new Promise((r) => setTimeout(r, 500));
  const r = await execa('ip', ['netns', 'exec', ns.pod1, 'iperf3', '-c', ext, '-u', '-l', '64', '-b', '0', '-t', String(seconds), '-J'], { reject: false });
  await server;
  const j = JSON.parse(String(r.stdout)) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } };
  const s = j.end.sum;
  return (s.packets - s.lost_packets) / s.seconds;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: builds namespaces and attaches probes');
  const lab = labFor(`ov${Math.random().toString(16).slice(2, 6)}`);
  await labUp(lab);
  const results = new Map<string, number[]>();
  try {
    for (let rep = 0; rep < repeats; rep++) {
      for (const [i, c] of CONFIGS.entries()) {
        if (only && i !== 0 && !only.includes(i)) continue;
        process.stderr.write(`${c.name}: starting\n`);
        const trace = c.args ? await startTrace(c.args) : undefined;
        process.stderr.write(`${c.name}: loading\n`);
        const pps = await load(lab.ns, lab.addr.ext);
        trace?.child.kill('SIGINT');
        await trace?.child;
        results.set(c.name, [...(results.get(c.name) ?? []), pps]);
        process.stderr.write(`${c.name}: ${Math.round(pps)} packets/s\n`);
      }
    }
  } finally {
    await labDown(lab);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const base = median(results.get('no trace') ?? []);
  console.log(`64-byte UDP pod1 → ext (bridge, FORWARD, MASQUERADE), ${seconds} s × ${repeats}, median received packets/s`);
  for (const c of CONFIGS) {
    if (!results.has(c.name)) continue;
    const m = median(results.get(c.name) ?? []);
    console.log(`${c.name.padEnd(40)} ${String(Math.round(m)).padStart(8)}  ${(m / base).toFixed(2)}×`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
