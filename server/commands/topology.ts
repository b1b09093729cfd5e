/**
 * `hoptrace topology`: the modelled topology of this host — every network namespace with its
 * interfaces, veth links, bridge ports, routes, forwarding switches and the netfilter rules
 * that matter for a packet's path. `--json` prints the Topology document (shared/topology/model.ts).
 */
import { discoverTopology } from '../topology/discover.js';
import { formatTopology } from '../../shared/topology/format.js';
import { runCommand, UsageError, JSON_OUTPUT } from './common.js';

export const summary = 'show the modelled topology: namespaces, veth links, bridges, routes, NAT and filter rules';

const HELP = `usage: hoptrace topology [--json] [--ns NAME]...

  --json        print the model as JSON: {namespaces: [{netns, name, path, pids,
                interfaces: [{ifindex, name, kind, mac, mtu, up, carrier, addrs, master,
                peer: {netns, ifindex, name} | null}], routes (all tables), forwarding:
                {ipv4, ipv6}, rules (ip rule), netfilter: {chains, rules}, neighbours, fdb,
                errors, workloads: [{runtime, id, name, pod, k8sNamespace, image}],
                workload (the pod or container name), workloadNote}], errors,
                discoveredAt, durationMs}
  --ns NAME     only these namespaces (name, inode, or pod/container name;
                repeatable). Veth peers are still resolved against the whole host.

Reads every namespace (ip netns names, the host's, and those of running processes) with
ip -j, bridge -j, nft -j and iptables-save, and names each by its containers: their
processes' cgroups, then podman ps / docker inspect / crictl (each given 3 s at most). Needs root to enter other namespaces; whatever
cannot be read is listed under "errors" rather than failing, and netfilter matches or
statements the model does not evaluate are kept with kind "unknown" and their nft text.`;

const OPTIONS = { json: JSON_OUTPUT, ns: { kind: 'strings' } } as const;

export function runTopologyCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP }, async (o) => {
    const topo = await discoverTopology();
    let shown = topo;
    const wanted = o.ns;
    if (wanted.length > 0) {
      // A namespace can be asked for by its name, inode, or its workload's name (pod or container).
      const isWanted = (n: (typeof topo.namespaces)[number], w: string): boolean => n.name === w || String(n.netns) === w || n.workload === w || (n.workloads ?? []).some((x) => x.name === w || x.pod === w);
      const unknown = wanted.filter((w) => !topo.namespaces.some((n) => isWanted(n, w)));
      if (unknown.length > 0) {
        throw new UsageError(`unknown namespace ${unknown.join(', ')} (known: ${topo.namespaces.map((n) => n.name).join(', ')})`);
      }
      shown = { ...topo, namespaces: topo.namespaces.filter((n) => wanted.some((w) => isWanted(n, w))) };
    }
    const names = new Map(topo.namespaces.map((n): [number, string] => [n.netns, n.name]));
    process.stdout.write(o.json ? `${JSON.stringify(shown, null, 2)}\n` : `${formatTopology(shown, names)}\n`);
    return 0;
  });
}

export const run = runTopologyCommand;
