/**
 * What tracing needs from the host, checked once before anything is attached. Each failed check
 * is one sentence that names the fix: the CLI prints it and exits, the service reports it.
 */
import { existsSync } from 'node:fs';
import { chooseBpftrace, type BpftraceChoice } from './bpftrace-binary.js';

export interface Preflight {
  readonly ok: boolean;
  /** One sentence per problem, each naming the fix. */
  readonly problems: readonly string[];
  readonly bpftraceVersion: string | null;
  /** Which bpftrace runs, at which tier, and why. */
  readonly bpftrace: BpftraceChoice;
}

export const TRACEFS_DIRS = ['/sys/kernel/debug/tracing', '/sys/kernel/tracing'] as const;

let passed: Preflight | undefined;

/**
 * Checks the host once per process: a passing result is kept (the service restarts bpftrace
 * without re-probing the host), a failing one is re-checked next time, since the user may fix it.
 */
export async function preflight(): Promise<Preflight> {
  if (passed) return passed;
  const result = await checkHost();
  if (result.ok) passed = result;
  return result;
}

async function checkHost(): Promise<Preflight> {
  const problems: string[] = [];
  const root = process.getuid?.() === 0;
  if (!root) {
    problems.push('hoptrace must run as root to attach kernel probes: run it with sudo.');
  }
  const bpftrace = await chooseBpftrace();
  const bpftraceVersion = bpftrace.version;
  if (bpftrace.command === null) {
    problems.push('bpftrace is not installed: run `npm run setup` (or `apt-get install bpftrace`).');
  }
  if (!existsSync('/sys/kernel/btf/vmlinux')) {
    problems.push('this kernel has no BTF (/sys/kernel/btf/vmlinux): hoptrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y.');
  }
  // bpftrace 0.17 looks for tracepoints under debugfs; either mount satisfies the kernel.
  // Only root can look inside debugfs: for anyone else the check would always fail.
  if (root && !TRACEFS_DIRS.some((d) => existsSync(`${d}/events`))) {
    problems.push('tracefs is not mounted: run `mount -t debugfs nodev /sys/kernel/debug && mount -t tracefs nodev /sys/kernel/tracing` (npm run setup does this).');
  }
  return { ok: problems.length === 0, problems, bpftraceVersion, bpftrace };
}
