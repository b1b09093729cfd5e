/**
 * What tracing needs from the host, checked once before anything is attached. Each failed check
 * is one sentence that names the fix: the CLI prints it and exits, the service reports it.
 */
import { existsSync, readFileSync } from 'node:fs';
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

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

/**
 * Whether this process may load BPF programs and open perf events: uid 0 is not enough, the kernel
 * checks capabilities (a container or `setpriv --bounding-set=-all` leaves uid 0 with none).
 * CAP_SYS_ADMIN allows both on every kernel; since 5.8 CAP_BPF with CAP_PERFMON does too.
 * `status` is /proc/self/status (a parameter for tests).
 */
export function canLoadBpf(uid = process.getuid?.(), status?: string): boolean {
  if (uid !== 0) return false;
  let text = status;
  try {
    text ??= readFileSync('/proc/self/status', 'utf8');
  } catch {
    return true; // no /proc to ask: uid 0 is all we can go by
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  if (!m?.[1]) return true;
  const eff = BigInt(`0x${m[1]}`);
  const has = (cap: bigint): boolean => ((eff >> cap) & 1n) === 1n;
  return has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
}

async function checkHost(): Promise<Preflight> {
  const problems: string[] = [];
  const uid = process.getuid?.();
  const root = canLoadBpf(uid);
  if (uid !== 0) {
    problems.push('hoptrace must run as root to attach kernel probes: run it with sudo.');
  } else if (!root) {
    problems.push('hoptrace must run as root with its capabilities to attach kernel probes, and this process is root without CAP_SYS_ADMIN (or CAP_BPF and CAP_PERFMON), dropped by a container or setpriv: run it with sudo from a shell that keeps them.');
  }
  const bpftrace = await chooseBpftrace();
  const bpftraceVersion = bpftrace.version;
  if (bpftrace.command === null) {
    problems.push('bpftrace is not installed: run `hoptrace setup` as root (it installs bpftrace).');
  }
  if (!existsSync('/sys/kernel/btf/vmlinux')) {
    problems.push('this kernel has no BTF (/sys/kernel/btf/vmlinux): hoptrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y.');
  }
  // bpftrace 0.17 looks for tracepoints under debugfs; either mount satisfies the kernel.
  // Only root can look inside debugfs: for anyone else the check would always fail.
  if (root && !TRACEFS_DIRS.some((d) => existsSync(`${d}/events`))) {
    problems.push('tracefs is not mounted: run `hoptrace setup` as root (it mounts tracefs and debugfs).');
  }
  return { ok: problems.length === 0, problems, bpftraceVersion, bpftrace };
}
