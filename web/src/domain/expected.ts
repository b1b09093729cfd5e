/**
 * The expected path of an observed packet (simulated on the topology model by
 * shared/topology/simulate.ts) and the first place where the observation leaves it.
 *
 * Only the selected packet is simulated, on demand: one simulation per click costs nothing,
 * one per packet at 100,000 packets/s would. A packet that already carries `expected` and
 * `divergence` (trace --json from a later version) is shown as it came.
 */
import type { Hop, Packet } from '../../../shared/packet.js';
import type { Topology } from '../../../shared/topology/model.js';
import { simulatePath, type ExpectedHop, type ExpectedPath } from '../../../shared/topology/simulate.js';
import { endpoint } from './format.js';

export interface Divergence {
  /** Index in packet.hops of the first observed hop off the expected path (null: at the end). */
  readonly observedIndex: number | null;
  /** Index in the expected hops the packet should have taken instead (null: none). */
  readonly expectedIndex: number | null;
  readonly netns: number | null;
  readonly ns: string | null;
  /** One sentence for people, e.g. "dropped in node (NETFILTER_DROP); expected to leave through veth-pod2". */
  readonly message: string;
}

export interface ExpectedView {
  readonly path: ExpectedPath | null;
  /** Why there is no expected path (no model, the namespace is not modelled, bad flow...). */
  readonly unavailable: string | null;
  readonly divergence: Divergence | null;
  /** Expected hop index matched by each observed hop (or -1), for drawing them side by side. */
  readonly matched: readonly number[];
}

type Step = { readonly netns: number; readonly ifname: string; readonly event: 'xmit' | 'recv' };

function stepOf(h: { netns: number; ifname: string; event: string }): Step | null {
  if (h.netns === 0) return null;
  if (h.event === 'xmit') return { netns: h.netns, ifname: h.ifname, event: 'xmit' };
  if (h.event === 'recv' || h.event === 'rx') return { netns: h.netns, ifname: h.ifname, event: 'recv' };
  return null;
}

const same = (a: Step, b: Step): boolean => a.netns === b.netns && a.ifname === b.ifname && a.event === b.event;

function hopText(h: ExpectedHop): string {
  return `${h.event === 'xmit' ? 'leave' : h.event === 'recv' ? 'enter' : 'be dropped in'} ${h.ns}${h.ifname ? ` through ${h.ifname}` : ''}`;
}

/** Where the observed packet first leaves the expected path; null when it never does. */
export function findDivergence(packet: Packet, expected: ExpectedPath, nsName: (netns: number) => string): { divergence: Divergence | null; matched: number[] } {
  const exp = expected.hops;
  const matched: number[] = packet.hops.map(() => -1);
  let j = 0;
  for (let i = 0; i < packet.hops.length; i++) {
    const h = packet.hops[i] as Hop;
    const o = stepOf(h);
    if (!o) continue;
    // Expected hops the probes did not see (a bridge's own recv...) are skipped, not divergences.
    let k = j;
    while (k < exp.length) {
      const e = exp[k] as ExpectedHop;
      if (e.event !== 'drop' && same(o, { netns: e.netns, ifname: e.ifname, event: e.event })) break;
      k++;
    }
    if (k === exp.length) {
      // Repeats of the hop just matched (rx then recv on one device) are the same step.
      const prev = j > 0 ? exp[j - 1] : undefined;
      if (prev && prev.event !== 'drop' && same(o, { netns: prev.netns, ifname: prev.ifname, event: prev.event })) {
        matched[i] = j - 1;
        continue;
      }
      const next = exp[j];
      return {
        divergence: {
          observedIndex: i, expectedIndex: next ? j : null, netns: h.netns, ns: nsName(h.netns),
          message: `went ${o.event === 'xmit' ? 'out of' : 'into'} ${nsName(h.netns)} through ${h.ifname || '?'}; `
            + (next ? `expected to ${hopText(next)}` : `the expected path had already ended (${expected.fate})`),
        },
        matched,
      };
    }
    const e = exp[k] as ExpectedHop;
    matched[i] = k;
    if (e.src !== h.src || e.dst !== h.dst || e.sport !== h.sport || e.dport !== h.dport) {
      return {
        divergence: {
          observedIndex: i, expectedIndex: k, netns: h.netns, ns: nsName(h.netns),
          message: `headers differ at ${nsName(h.netns)}/${h.ifname}: expected ${endpoint(e.src, e.sport)} → ${endpoint(e.dst, e.dport)}, `
            + `saw ${endpoint(h.src, h.sport)} → ${endpoint(h.dst, h.dport)}`,
        },
        matched,
      };
    }
    j = k + 1;
  }

  const drop = packet.drop;
  if (packet.fate === 'dropped' && drop) {
    const edrop = expected.drop;
    if (expected.fate === 'dropped' && edrop && edrop.netns === drop.netns) return { divergence: null, matched };
    const next = exp[j];
    return {
      divergence: {
        observedIndex: packet.hops.length - 1, expectedIndex: next ? j : null, netns: drop.netns, ns: nsName(drop.netns),
        message: `dropped in ${nsName(drop.netns)} (${drop.reason}); `
          + (next ? `expected to ${hopText(next)}` : `expected: ${expected.fate}${expected.reason ? ` (${expected.reason})` : ''}`),
      },
      matched,
    };
  }
  if (packet.fate === 'delivered' && expected.fate === 'dropped' && expected.drop) {
    const d = expected.drop;
    return {
      divergence: {
        observedIndex: null, expectedIndex: exp.length - 1, netns: d.netns, ns: d.ns,
        message: `delivered, but expected to be dropped in ${d.ns}${d.rule ? ` by ${d.rule}` : ''} (${d.reason})`,
      },
      matched,
    };
  }
  return { divergence: null, matched };
}

/** Simulates the packet's first tuple from its first namespace and compares. */
export function expectedFor(packet: Packet & { expected?: unknown; divergence?: unknown }, topo: Topology | null, nsName: (netns: number) => string): ExpectedView {
  const none = (why: string): ExpectedView => ({ path: null, unavailable: why, divergence: null, matched: packet.hops.map(() => -1) });
  if (!topo) return none('no topology model (the service could not discover it)');
  const first = packet.hops.find((h) => h.netns !== 0);
  if (!first) return none('the packet was never seen on a device');
  if (!topo.namespaces.some((n) => n.netns === first.netns)) return none(`namespace ${nsName(first.netns)} is not in the model (gone, or appeared after discovery)`);
  let path: ExpectedPath;
  try {
    path = simulatePath(topo, {
      from: first.netns,
      src: first.src,
      dst: first.dst,
      proto: packet.proto,
      sport: first.sport,
      dport: first.dport,
      // A packet first seen arriving came from outside what we trace: start it as received there.
      iif: first.event === 'recv' || first.event === 'rx' ? first.ifname || null : null,
    });
  } catch (err) {
    return none(err instanceof Error ? err.message : String(err));
  }
  const { divergence, matched } = findDivergence(packet, path, nsName);
  return { path, unavailable: null, divergence, matched };
}
