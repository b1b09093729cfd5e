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
