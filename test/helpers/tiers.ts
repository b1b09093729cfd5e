/**
 * The probe tiers this host can run, as environments for the CLI: 'fast' (bpftrace ≥ 0.21, raw
 * tracepoints: the private copy `npm run setup` made, or a new enough system one) and 'classic'
 * (the system's older bpftrace). Tests that must hold on both run once per tier present.
 */
import { execa } from 'execa';
import { decide, parseBpftraceVersion, privateBpftracePath, versionAtLeast } from '../../server/bpftrace-binary.js';

export interface TierHere {
  readonly tier: 'fast' | 'classic';
  /** Environment choosing this tier's bpftrace (HOPTRACE_BPFTRACE). */
  readonly env: Record<string, string>;
}

const systemBpftrace = await execa('sh', ['-c', 'command -v bpftrace'], { reject: false }).then((r) => String(r.stdout).trim());
const systemVersion = systemBpftrace ? await execa(systemBpftrace, ['--version'], { reject: false }).then((r) => parseBpftraceVersion(String(r.stdout))) : null;
const fastChoice = await decide(undefined, privateBpftracePath(), 'bpftrace');

export const TIERS_HERE: readonly TierHere[] = [
  ...(fastChoice.tier === 'fast' && fastChoice.command ? [{ tier: 'fast' as const, env: { HOPTRACE_BPFTRACE: fastChoice.command } }] : []),
  ...(systemVersion !== null && !versionAtLeast(systemVersion, [0, 21]) ? [{ tier: 'classic' as const, env: { HOPTRACE_BPFTRACE: systemBpftrace } }] : []),
];
