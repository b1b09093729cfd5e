/**
 * Stats documents read back from files (`hoptrace stats --json` output kept by a user, then given
 * to `hoptrace compare`): checked field by field at the boundary, so a wrong or damaged file is
 * named with its line and field instead of failing somewhere inside the comparison.
 */
import { z } from 'zod';
import type { StatsDocument } from './types.js';

const ns = z.number().finite().nonnegative();
const count = z.number().int().nonnegative();

const Hist = z.array(z.object({ lo_ns: ns, hi_ns: ns, count }));
const Latency = { count, p50_ns: ns, p90_ns: ns, p99_ns: ns, max_ns: ns, hist: Hist };
const Place = z.object({
  ns: z.string(),
  ifname: z.string(),
  event: z.enum(['xmit', 'rx', 'recv', 'drop', 'consume']),
  netns: count,
  ifindex: count,
});

export const StatsDocumentSchema = z.object({
  type: z.literal('stats'),
  start_ns: ns,
  end_ns: ns,
  start: z.string(),
  end: z.string(),
  duration_s: z.number().finite().nonnegative(),
  sample_rate: z.number().int().min(1),
  filter: z.string(),
  final: z.boolean(),
  segments: z.array(z.object({ from: Place, to: Place, ...Latency })),
  transit: z.array(z.object({ ns: z.string(), netns: count, ...Latency })),
  drops: z.array(z.object({ ns: z.string(), netns: count, ifname: z.string(), ifindex: count, reason: z.string(), count })),
  interfaces: z.array(z.object({
    ns: z.string(), netns: count, ifname: z.string(), ifindex: count, pps: z.number().finite().nonnegative(), bps: z.number().finite().nonnegative(),
    rx_packets: count, tx_packets: count, rx_bytes: count, tx_bytes: count,
  })),
});

// The schema must describe the type the kernel and the packets produce, not a looser copy.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesType: Same<z.infer<typeof StatsDocumentSchema>, StatsDocument> = true;
void schemaMatchesType;

/** Where a stats file is wrong: its 1-based line and what is wrong there. */
export interface StatsFileProblem {
  readonly line: number;
  readonly message: string;
}

/**
 * The documents of a `stats --json` file: one JSON document per line (blank lines allowed).
 * Lines that are not stats documents are problems; nothing is guessed.
 */
export function parseStatsLines(text: string): { docs: StatsDocument[]; problems: StatsFileProblem[] } {
  const docs: StatsDocument[] = [];
  const problems: StatsFileProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      problems.push({ line: i + 1, message: 'not JSON' });
      return;
    }
    const r = StatsDocumentSchema.safeParse(value);
    if (r.success) {
      docs.push(r.data);
      return;
    }
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    problems.push({ line: i + 1, message: `not a stats document (${where}${issue?.message ?? 'invalid'})` });
  });
  return { docs, problems };
}
