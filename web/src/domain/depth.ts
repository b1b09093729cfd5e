/**
 * A packet's depth for the views: the netfilter steps (`trace --netfilter`) and notes
 * (`trace --notes`) grouped by the hop they follow (`afterHop`, -1 before the first), in the
 * order the CLI prints them — notes, then steps; runs of chains that merely let the packet
 * through (policy accept, no rule matched) folded into one line, as shared/format.ts folds them.
 * Pure; HopTimeline and PacketDetail paint it. The wording comes from shared/format.ts.
 */
import type { Packet, PacketNote } from '../../../shared/packet.js';
import type { NetfilterVerdict } from '../../../shared/netfilter/types.js';
import { isDropVerdict } from '../../../shared/netfilter/types.js';
import { describeNote, isNotableStep, nfChainLabel } from '../../../shared/format.js';

export type StepTone = 'drop' | 'nat' | 'accept' | 'other';

export type DepthItem =
  | {
      readonly kind: 'step';
      readonly step: NetfilterVerdict;
      /** `ip filter FORWARD`. */
      readonly chain: string;
      /** Rule text (counters removed), null for a policy or return. */
      readonly rule: string | null;
      /** What the step did: the verdict, or the NAT it applied. */
      readonly outcome: string;
      readonly tone: StepTone;
      /** One line, as the CLI prints it. */
      readonly text: string;
    }
  | { readonly kind: 'pass'; readonly chains: readonly string[]; readonly text: string }
  | { readonly kind: 'note'; readonly note: PacketNote; readonly text: string };

export interface DepthGroup {
  /** Index of the hop these follow, -1 when before the first hop. */
  readonly afterHop: number;
  readonly items: readonly DepthItem[];
}

function toneOf(s: NetfilterVerdict): StepTone {
  if (isDropVerdict(s.verdict)) return 'drop';
  if (s.nat !== null) return 'nat';
  if (s.verdict === 'accept') return 'accept';
  return 'other';
}

function stepItem(s: NetfilterVerdict): DepthItem {
  const chain = nfChainLabel(s);
  const outcome = s.nat ?? s.verdict;
  const rule = s.type === 'rule' || s.type === 'conntrack' ? s.rule : null;
  const handle = s.handle !== null ? ` (handle ${s.handle})` : '';
  const what = s.type === 'rule'
    ? `rule '${s.rule ?? '?'}'${handle} → ${outcome}`
    : s.type === 'conntrack'
      ? `${outcome} by conntrack, as rule '${s.rule ?? '?'}'${handle} set up for the connection`
      : `${s.type} ${s.verdict}`;
  return { kind: 'step', step: s, chain, rule, outcome, tone: toneOf(s), text: `${s.hook} ${chain}: ${what}` };
}

function stepItems(steps: readonly NetfilterVerdict[]): DepthItem[] {
  const out: DepthItem[] = [];
  let passed: string[] = [];
  const flush = (): void => {
    if (passed.length > 0) {
      const chains = [...new Set(passed)];
      out.push({ kind: 'pass', chains, text: `passed ${chains.join(', ')} (policy accept)` });
    }
    passed = [];
  };
  for (const s of steps) {
    if (isNotableStep(s)) {
      flush();
      out.push(stepItem(s));
    } else if (s.type === 'policy') {
      passed.push(nfChainLabel(s));
    }
  }
  flush();
  return out;
}

/** Notes and steps by the hop they follow, hops in order; empty when the packet has neither. */
export function depthGroups(p: Packet): DepthGroup[] {
  const steps = p.netfilter ?? [];
  const notes = p.notes ?? [];
  if (steps.length === 0 && notes.length === 0) return [];
  const at = new Set<number>();
  for (const s of steps) at.add(Math.max(-1, s.afterHop));
  for (const n of notes) at.add(Math.max(-1, n.afterHop));
  return [...at].sort((a, b) => a - b).map((i) => {
    const same = (x: { afterHop: number }): boolean => Math.max(-1, x.afterHop) === i;
    const items: DepthItem[] = [
      ...notes.filter(same).map((n): DepthItem => ({ kind: 'note', note: n, text: describeNote(n) })),
      ...stepItems(steps.filter(same)),
    ];
    return { afterHop: i, items };
  }).filter((g) => g.items.length > 0);
}

/** The step that dropped the packet (a rule, or a chain's drop policy), if the rule trace saw it. */
export function dropStep(p: Packet): NetfilterVerdict | undefined {
  return p.netfilter?.find((s) => isDropVerdict(s.verdict));
}

/** The steps that rewrote the packet (NAT rules, and conntrack applying them). */
export function natSteps(p: Packet): NetfilterVerdict[] {
  return p.netfilter?.filter((s) => s.nat !== null) ?? [];
}

/** `rule 'udp dport 9999 counter drop' in ip filter FORWARD (forward)` or `policy drop of ...`. */
export function describeStep(s: NetfilterVerdict): string {
  const where = `${nfChainLabel(s)} (${s.hook})`;
  return s.rule !== null ? `rule '${s.rule}' in ${where}` : `${s.type} ${s.verdict} of ${where}`;
}
