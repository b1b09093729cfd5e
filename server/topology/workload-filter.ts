/**
 * Resolves `pod NAME` / `container NAME` in a filter the user typed into the addresses those
 * workloads have now (shared/filter/workloads.ts), against the given model or a fresh discovery.
 * The canonical text it returns is what the trace compiles and a recording stores.
 */
import { describeFilter, hasWorkloadFilters, parseFilter, resolveWorkloadFilters } from '../../shared/filter/index.js';
import type { Topology } from '../../shared/topology/model.js';
import { workloadDirectory } from '../../shared/topology/workloads.js';
import { discoverTopology } from './discover.js';

/** The filter text with workload names replaced by addresses; the text as given when it names none. Throws FilterError. */
export async function resolveFilterText(text: string, topology?: Topology | null): Promise<string> {
  const ast = parseFilter(text);
  if (!hasWorkloadFilters(ast)) return text;
  const topo = topology ?? (await discoverTopology());
  return describeFilter(resolveWorkloadFilters(ast, workloadDirectory(topo.namespaces)));
}
