/**
 * What a recording's header says about the host it was made on: name, kernel, bpftrace version,
 * the probes attached. Read once per process.
 */
import { hostname, release } from 'node:os';
import { execa } from 'execa';
import { HOP_PROBES } from '../../probes/assemble.js';
import { bpftraceCommand } from '../bpftrace-binary.js';

export interface HostInfo {
  readonly host: string;
  readonly kernel: string;
  readonly bpftraceVersion: string;
  readonly probes: readonly string[];
}

let cached: Promise<HostInfo> | undefined;

export function hostInfo(): Promise<HostInfo> {
  cached ??= bpftraceCommand().then((cmd) => execa(cmd, ['--version'], { reject: false, timeout: 5000 })).then((r) => ({
    host: hostname(),
    kernel: release(),
    bpftraceVersion: r.exitCode === 0 ? String(r.stdout).trim() : 'unknown',
    probes: HOP_PROBES.map((p) => p.tracepoint),
  }));
  return cached;
}

/** Kernel monotonic time in ns: the clock bpf_ktime_get_ns() reads (libuv's hrtime is CLOCK_MONOTONIC). */
export function kernelNowNs(): number {
  return Number(process.hrtime.bigint());
}

/** Wall clock and kernel monotonic clock read back to back, for converting hop times later. */
export function pairedClocks(): { wallNs: bigint; monoNs: number } {
  const before = process.hrtime.bigint();
  const wallMs = Date.now();
  const after = process.hrtime.bigint();
  // performance.timeOrigin + now() gives sub-ms wall time; Date.now() bounds it to the right ms.
  const precise = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  const wallNs = precise / 1_000_000n === BigInt(wallMs) ? precise : BigInt(wallMs) * 1_000_000n;
  return { wallNs, monoNs: Number((before + after) / 2n) };
}
