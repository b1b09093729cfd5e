/**
 * The kernel's flow-sampling hash (probes/sample.ts), computed the same way in JavaScript so
 * tests and tools can tell which flows a `--sample N` run sees. Inputs are the raw forms the
 * probes read (shared/filter/raw.ts): IPv4 addresses as raw u32 in the first half, IPv6 as two
 * raw u64 halves, ports as raw u16.
 */

const MASK64 = (1n << 64n) - 1n;
const MIX = 0x5851f42d4c957f2dn;

export interface RawFlow {
  readonly s0: bigint; readonly s1: bigint;
  readonly d0: bigint; readonly d1: bigint;
  /** Raw (network-order) ports. */
  readonly sp: number; readonly dp: number;
  readonly proto: number;
}

/** The 31-bit hash the kernel compares modulo N. */
export function flowSampleHash(f: RawFlow): bigint {
  const a = (f.s0 + f.d0) & MASK64;
  const b = (((f.s1 + f.d1) & MASK64) * MIX) & MASK64;
  const c = (BigInt(f.sp + f.dp) << 17n) & MASK64;
  const x = a ^ b ^ c ^ BigInt(f.proto);
  return ((x * MIX) & MASK64) >> 33n;
}

/** Whether a run with `--sample rate` follows this flow. */
export function isSampled(f: RawFlow, rate: number): boolean {
  return rate <= 1 || flowSampleHash(f) % BigInt(rate) === 0n;
}
