/**
 * A realistic stream of probe lines for the pipeline benchmark, generated from a real capture
 * (probes/fixtures/lab-round.txt: one round of the demo lab — bridged UDP/TCP/ICMP, IPv6,
 * MASQUERADE, DNAT, a FORWARD drop). Each packet of the capture becomes a template (its hops
 * and their relative times); the stream starts one templated packet every `gapNs` with its own
 * skb address (from a pool of 4096, reused as the kernel reuses them), IPv4 id, source port and
 * CPU, and the lines come out as bpftrace prints them: in time order per CPU, the two CPUs'
 * buffers read in turns of `chunk` lines (the reorder the reconstruction has to undo).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toPackedLine } from '../probes/hop-line.js';

const FIXTURE = fileURLToPath(new URL('../probes/fixtures/lab-round.txt', import.meta.url));

interface TemplateHop {
  readonly dt: number;
  readonly fields: string[];
}

/** Packets of the capture: hop lines grouped by skb address, split where a hop starts over. */
export function templates(): TemplateHop[][] {
  const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.startsWith('H '));
  const bySkb = new Map<string, string[][]>();
  const out: string[][][] = [];
  for (const l of lines) {
    const f = l.split(' ');
    const skb = f[4] ?? '';
    const cur = bySkb.get(skb);
    const prevKind = cur?.[cur.length - 1]?.[1];
    // A free ends a packet; the next hop on that address is another packet.
    if (!cur || prevKind === '4' || prevKind === '5' || f[10] !== cur[0]?.[10]) {
      const fresh = [f];
      bySkb.set(skb, fresh);
      out.push(fresh);
    } else {
      cur.push(f);
    }
  }
  return out.map((hops) => {
    const t0 = Number(hops[0]?.[2]);
    return hops.map((fields) => ({ dt: Number(fields[2]) - t0, fields }));
  });
}

const swap16 = (v: number): number => ((v & 0xff) << 8) | ((v >>> 8) & 0xff);

export interface LineStreamOptions {
  /** How many hop lines (default 1,000,000). */
  readonly events?: number;
  /** Time between packet starts (default 2,000 ns: ~500k packets/s, many alive at once). */
  readonly gapNs?: number;
  /** Lines per turn when the per-CPU buffers are read in turns (default 64). */
  readonly chunk?: number;
  /** Lines per yielded batch of hopLineBatches (default 100,000). */
  readonly batch?: number;
}

/**
 * The stream in batches, so long streams need not sit in memory. Each batch's lines are in time
 * order per CPU, the CPUs read in turns; a packet never straddles two batches.
 */
export function* hopLineBatches(opts: LineStreamOptions = {}): Generator<string[]> {
  const target = opts.events ?? 1_000_000;
  const gap = opts.gapNs ?? 2_000;
  const chunk = opts.chunk ?? 64;
  const batch = opts.batch ?? 100_000;
  const tpl = templates();
  const t0 = 1_000_000_000_000;
  let n = 0;
  let i = 0;
  while (n < target) {
    const perCpu: Array<Array<[number, string]>> = [[], []];
    let inBatch = 0;
    for (; n < target && inBatch < batch; i++) {
      const hops = tpl[i % tpl.length] ?? [];
      const start = t0 + i * gap;
      const cpu = i & 1;
      const skb = (0xffff888100000000n + BigInt((i % 4096) * 0x100)).toString(16);
      const id = String(swap16((i * 7) & 0xffff));
      for (const h of hops) {
        if (n >= target) break;
        const f = [...h.fields];
        f[2] = String(start + h.dt);
        f[3] = String(cpu);
        f[4] = skb;
        if (f[7] === '4') f[10] = id;
        // Vary ephemeral source ports (raw network order), keep service ports.
        const sport = swap16(Number(f[15]));
        if ((f[8] === '17' || f[8] === '6') && sport >= 32768) f[15] = String(swap16(32768 + ((sport - 32768 + i) % 28000)));
        // As the probes print it now: the packed form (probes/hop-line.ts).
        perCpu[cpu]?.push([start + h.dt, toPackedLine(f.join(' ')) ?? '']);
        n++;
        inBatch++;
      }
    }
    // Per CPU in time order; the buffers are drained in turns.
    for (const list of perCpu) list.sort((a, b) => a[0] - b[0]);
    const out: string[] = [];
    const [a = [], b = []] = perCpu;
    for (let x = 0, y = 0; x < a.length || y < b.length;) {
      for (let k = 0; k < chunk && x < a.length; k++) out.push(a[x++]?.[1] ?? '');
      for (let k = 0; k < chunk && y < b.length; k++) out.push(b[y++]?.[1] ?? '');
    }
    yield out;
  }
}

/** The whole stream as one array of lines (about 110 bytes each). */
export function hopLines(opts: LineStreamOptions = {}): string[] {
  const out: string[] = [];
  for (const b of hopLineBatches({ ...opts, batch: Infinity })) for (const l of b) out.push(l);
  return out;
}
