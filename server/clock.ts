/**
 * The host's clocks as hoptrace uses them: the kernel's monotonic clock, which bpf_ktime_get_ns()
 * reads and every hop's `t` is in, and the wall clock paired with it, which recordings, the
 * stream's subscribe ack and stats documents use to turn hop times into dates.
 */

import { readFileSync } from 'node:fs';

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

/** Kernel monotonic ns → wall-clock ms, with the offset measured once (now). */
export function monotonicToWall(): (ns: number) => number {
  const offsetMs = Date.now() - kernelNowNs() / 1e6;
  return (ns) => ns / 1e6 + offsetMs;
}

/**
 * How far this process's CLOCK_MONOTONIC is ahead of the kernel's, in ns: the monotonic offset of
 * its time namespace (`unshare --time --monotonic`, a container restored by CRIU), read from
 * /proc/self/timens_offsets. bpf_ktime_get_ns(), the clock of the probes' hop times, is the
 * kernel's and no time namespace shifts it, while process.hrtime (kernelNowNs) is shifted: 0
 * outside a time namespace or on a kernel without them.
 */
export function monotonicNamespaceOffsetNs(text?: string): number {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/timens_offsets', 'utf8');
    } catch {
      return 0;
    }
  }
  const m = /^monotonic\s+(-?\d+)\s+(\d+)\s*$/m.exec(t);
  return m ? Number(m[1]) * 1e9 + Number(m[2]) : 0;
}
