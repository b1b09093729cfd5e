/**
 * Whether a hub can trace (issue 17): its agents trace, not the hub's host, so /api/health's
 * `canTrace` on a hub summarises the nodes. Each agent says in its snapshots whether its node can
 * trace (`capability`, shared/cluster/subjects.ts NodeSnapshot; an agent starts only when its
 * preflight passes, so older agents, which do not say, are taken as able). The hub can trace
 * when at least one node it hears from can; otherwise one sentence per reason, naming the fix.
 * Pure: server/hub/hub.ts gives it the nodes.
 */

/** What an agent says about its node in its snapshot. */
export interface NodeCapability {
  readonly canTrace: boolean;
  /** One sentence per problem, naming the fix (empty when it can trace). */
  readonly problems: readonly string[];
  /** The bpftrace the agent runs (its version), null when none. */
  readonly bpftrace: string | null;
}

export interface NodeTraceState {
  readonly name: string;
  readonly state: 'up' | 'lost' | 'silent';
  /** From its latest snapshot; null when its agent does not say (older agents). */
  readonly capability: NodeCapability | null;
}

export interface ClusterCanTrace {
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** The nodes that can trace now. */
  readonly nodes: readonly string[];
}

/** A snapshot's `capability` field, checked; null when absent or not one. */
export function parseCapability(v: unknown): NodeCapability | null {
  if (typeof v !== 'object' || v === null) return null;
  const c = v as Record<string, unknown>;
  if (typeof c.canTrace !== 'boolean') return null;
  const problems = Array.isArray(c.problems) ? c.problems.filter((p): p is string => typeof p === 'string').slice(0, 20).map((p) => p.slice(0, 500)) : [];
  return { canTrace: c.canTrace, problems, bpftrace: typeof c.bpftrace === 'string' ? c.bpftrace.slice(0, 100) : null };
}

/** The cluster's `canTrace`: some node up whose agent can trace. */
export function clusterCanTrace(nodes: readonly NodeTraceState[]): ClusterCanTrace {
  const able = nodes.filter((n) => n.state === 'up' && n.capability?.canTrace !== false).map((n) => n.name);
  if (able.length > 0) return { ok: true, problems: [], nodes: able };
  if (nodes.length === 0) return { ok: false, problems: ['no node has an agent yet: start `hoptrace agent --hub URL --node NAME` on each node (as root)'], nodes: [] };
  return {
    ok: false,
    nodes: [],
    problems: nodes.map((n) => n.capability?.canTrace === false
      ? `node ${n.name} cannot trace: ${n.capability.problems.join(' ') || 'its agent says so'}`
      : `node ${n.name} is ${n.state}: ${n.state === 'lost' ? 'its agent does not answer the hub (is `hoptrace agent` running there?)' : 'nothing came from it for a minute'}`),
  };
}
