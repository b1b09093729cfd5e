/**
 * Depth tiers: how deep hoptrace can see into each part of the packet path on a given host, and
 * why not deeper. Detected by server/capabilities.ts (`detectCapabilities().tiers`), printed by
 * `hoptrace doctor`, served in /api/capabilities. Pure data and a chooser, shared with the web.
 *
 * Tiers, deepest first:
 *   function    kprobes on kernel functions (probes/deep/): verdicts, decisions, time spent
 *   rule-trace  nft's rule trace (`trace --netfilter`): the rule that matched, per packet
 *   tracepoint  extra tracepoints (probes/notes/, `trace --notes`): lookups, learning, queueing
 *   device      the hop probes alone: device transmit/receive, drops with a reason, tuple changes
 */

export type DepthTier = 'function' | 'rule-trace' | 'tracepoint' | 'device';

export const TIER_ORDER: readonly DepthTier[] = ['function', 'rule-trace', 'tracepoint', 'device'];

/** Parts of the path the issue asks about, in the user's words. */
export type DepthArea = 'netfilter' | 'nat' | 'bridge' | 'veth' | 'routing' | 'queueing' | 'neighbour' | 'icmp';

export interface TierOption {
  readonly tier: DepthTier;
  /** What this tier shows for the area, one phrase. */
  readonly shows: string;
  /** Probes or tools it needs (`kprobe:nf_hook_slow`, `tracepoint:fib:fib_table_lookup`, `nft`). */
  readonly needs: readonly string[];
  readonly available: boolean;
  /** Why not, one sentence; null when available. */
  readonly reason: string | null;
}

export interface AreaDepth {
  readonly area: DepthArea;
  /** The deepest available tier, null when none is (the host cannot trace at all). */
  readonly tier: DepthTier | null;
  /** Every tier the area has, deepest first, with availability and reasons. */
  readonly options: readonly TierOption[];
}

export interface DeepScriptStatus {
  /** File in probes/deep/. */
  readonly file: string;
  readonly functions: readonly string[];
  /** Whether its functions exist in this kernel's BTF (so `bpftrace -d` can type-check it). */
  readonly inBtf: boolean;
  /** Whether it can attach here (kprobes work and the functions exist). */
  readonly attachable: boolean;
  readonly reason: string | null;
}

export interface ProbeTiers {
  readonly areas: readonly AreaDepth[];
  readonly deepScripts: readonly DeepScriptStatus[];
}

/** The deepest available option of an area. */
export function deepestTier(options: readonly TierOption[]): DepthTier | null {
  for (const t of TIER_ORDER) if (options.some((o) => o.tier === t && o.available)) return t;
  return null;
}

/** One line per area for people: `netfilter   rule-trace  (function: no kprobes: ...)`. */
export function describeTiers(tiers: ProbeTiers): string[] {
  const width = Math.max(...tiers.areas.map((a) => a.area.length));
  return tiers.areas.map((a) => {
    const best = a.options.find((o) => o.tier === a.tier);
    const missing = a.options.filter((o) => !o.available && TIER_ORDER.indexOf(o.tier) < TIER_ORDER.indexOf(a.tier ?? 'device'));
    const why = missing.map((o) => `no ${o.tier}: ${o.reason ?? 'unavailable'}`).join('; ');
    return `${a.area.padEnd(width)}  ${(a.tier ?? 'none').padEnd(10)}  ${best?.shows ?? ''}${why ? `\n${' '.repeat(width + 14)}(${why})` : ''}`;
  });
}
