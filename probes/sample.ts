/**
 * Flow sampling in the kernel: "1 in N flows" as a bpftrace condition over the decoded header
 * variables ($s0 $s1 $d0 $d1 $sp $dp $l4, raw forms, see probes/decode.bt and emit.bt). The
 * hash adds source and destination before mixing, so both directions of a flow hash alike as
 * long as no NAT sits between them (a NAT'd reply carries other addresses and is sampled on its
 * own). A packet is sampled on its first hop; afterwards it is followed by skb, so NAT on the
 * way does not change the decision. shared/stats/sampling.ts mirrors the hash for tests.
 */

/** Odd 64-bit multiplier (below 2^63, so bpftrace reads it as a positive literal). */
export const SAMPLE_MIX = 0x5851f42d4c957f2dn;

/** Largest accepted N: the hash keeps 31 bits. */
export const MAX_SAMPLE_RATE = 1 << 30;

/** The bpftrace expression of the 31-bit flow hash. */
export function sampleHashExpr(): string {
  const k = `0x${SAMPLE_MIX.toString(16)}`;
  return `(((($s0 + $d0) ^ (($s1 + $d1) * ${k}) ^ (($sp + $dp) << 17) ^ $l4) * ${k}) >> 33)`;
}

/** The bpftrace boolean expression "this flow is sampled" for 1 in `rate` flows; '1' for rate 1. */
export function sampleCondition(rate: number): string {
  if (!Number.isSafeInteger(rate) || rate < 1 || rate > MAX_SAMPLE_RATE) throw new Error(`sample rate must be a whole number from 1 to ${MAX_SAMPLE_RATE}, got ${rate}`);
  if (rate === 1) return '1';
  return `((${sampleHashExpr()} % ${rate}) == 0)`;
}
