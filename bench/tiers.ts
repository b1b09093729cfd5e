/**
 * The two probe tiers as benchmark conditions: 'fast' is what hoptrace chooses by itself (the
 * private bpftrace 0.23 from `npm run setup`, or a system one ≥ 0.21), 'classic' the system's
 * older bpftrace given through HOPTRACE_BPFTRACE. Both run in the same benchmark run, so their
 * ratios compare on the same machine load.
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { labFor, type Lab } from '../server/lab/lab.js';
import { decide, privateBpftracePath } from '../server/bpftrace-binary.js';

export type BenchTier = 'fast' | 'classic';

export interface TierEnv {
  readonly tier: BenchTier;
  /** Environment for hoptrace (HOPTRACE_BPFTRACE set for the classic tier). */
  readonly env: Record<string, string>;
  /** The bpftrace to run directly (floor programs, one-liners). */
  readonly bpftrace: string;
  readonly version: string;
}

/** How to run `tier` here; throws, naming the fix, when this host lacks it. */
export async function tierEnv(tier: BenchTier): Promise<TierEnv> {
  if (tier === 'fast') {
    const c = await decide(undefined, privateBpftracePath(), 'bpftrace');
    if (c.tier !== 'fast' || !c.command) throw new Error(`no fast tier here (${c.why}): run npm run setup`);
    return { tier, env: { HOPTRACE_BPFTRACE: c.command }, bpftrace: c.command, version: c.version ?? '?' };
  }
  const system = String((await execa('sh', ['-c', 'command -v bpftrace'], { reject: false })).stdout).trim();
  const c = system ? await decide(system, '/nonexistent', 'bpftrace') : null;
  if (!c || c.tier !== 'classic' || !c.command) throw new Error(`no classic tier here: the system's bpftrace is ${c?.version ?? 'missing'} (the classic tier is a bpftrace older than 0.21)`);
  return { tier, env: { HOPTRACE_BPFTRACE: system }, bpftrace: system, version: c.version ?? '?' };
}

/**
 * A lab for a benchmark, named `<tag><random>`. HOPTRACE_TEST_PREFIX puts a prefix of one's own in
 * front and HOPTRACE_LAB_NET moves its addresses (server/lab/lab.ts): the probes see every
 * namespace, and another lab with the same addresses would be counted as this one's traffic.
 */
export function benchLab(tag: string): Lab {
  return labFor(`${process.env.HOPTRACE_TEST_PREFIX ?? ''}${tag}${randomBytes(3).toString('hex')}`.slice(0, 9));
}
