/**
 * `pod NAME` / `container NAME` at a hub (issue 17): each node's latest topology knows its own
 * workloads, so a name resolves on the node that has it — to that workload's namespace's
 * addresses, which every node's agent can then filter on (a pod's address is the same wherever
 * its packets go). A name on several nodes stands for all of their addresses; the known names
 * an unknown one is told about say their node.
 */
import type { Topology } from '../topology/model.js';
import type { WorkloadDirectory } from '../filter/workloads.js';
import { workloadDirectory } from '../topology/workloads.js';
import { FilterError, describeFilter, resolveWorkloadFilters, type FilterAst } from '../filter/index.js';

export function clusterWorkloadDirectory(topologies: ReadonlyMap<string, Topology>): WorkloadDirectory {
  const nodes = [...topologies.keys()].sort().map((node) => ({ node, dir: workloadDirectory(topologies.get(node)!.namespaces) }));
  return {
    addresses: (what, name) => {
      const hits = nodes.map((n) => n.dir.addresses(what, name)).filter((a): a is readonly string[] => a !== null);
      return hits.length === 0 ? null : hits.flat();
    },
    known: (what) => nodes.flatMap((n) => n.dir.known(what).map((name) => `${name} (${n.node})`)),
  };
}

/**
 * The cluster session's filter (`serve --hub --filter 'pod NAME'`) as the nodes' latest
 * topologies resolve it: the address filter every agent is asked for, or, while no node that has
 * the workload has sent its topology yet, what it waits for (one sentence). Called again at every
 * snapshot: a pod that moved (a new address) gives a new filter.
 */
export function resolveClusterFilter(ast: FilterAst, topologies: ReadonlyMap<string, Topology>): { readonly filter: string } | { readonly waiting: string } {
  try {
    return { filter: describeFilter(resolveWorkloadFilters(ast, clusterWorkloadDirectory(topologies))) };
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    const nodes = [...topologies.keys()].sort();
    return { waiting: `the filter '${describeFilter(ast)}' waits for a node that has the workload to send its topology (${nodes.length === 0 ? 'no node yet' : `nodes so far: ${nodes.join(', ')}`}): ${err.message}` };
  }
}
