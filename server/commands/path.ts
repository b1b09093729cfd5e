/**
 * `hoptrace path`: the path a packet is expected to take through the modelled topology, hop by
 * hop, with the netfilter hook and table of every rule that rewrites or drops it.
 */
import { discoverTopology } from '../topology/discover.js';
import { formatPath } from '../../shared/topology/format.js';
import { parseAddr } from '../../shared/topology/ip.js';
import { hasPorts, protoNumber } from '../../shared/topology/proto.js';
import { FlowError, resolveNamespace, simulatePath } from '../../shared/topology/simulate.js';
import { runCommand, UsageError, JSON_OUTPUT } from './common.js';
import { workloadMatches } from '../../shared/topology/workloads.js';

export const summary = 'show the expected path of a packet through namespaces, bridges and netfilter';

const HELP = `usage: hoptrace path --from NS --dst IP --proto P [--src IP] [--sport N] [--dport N]
                    [--iif IFNAME] [--established] [--json]

  --from NS       namespace the packet starts in: ip netns name, 'host', a label from
                  \`hoptrace topology\`, the inode number, or a pod or container name
  --src IP        source address (default: the route's preferred source in NS)
  --dst IP        destination address
  --proto P       tcp, udp, icmp, icmpv6, sctp or a protocol number
  --sport N, --dport N
                  ports (tcp, udp, sctp; default 0)
  --iif IFNAME    the packet arrives on this interface of NS instead of being sent by a
                  local socket
  --established   assume a packet of an established connection (NAT rules not consulted)
  --json          print {flow, fate, reason, hops, drop, guess, notes, connections,
                  probability?, via?, alternatives?}

fate is one of: delivered, dropped, unreachable, left-model (leaves through an interface
whose far side is not modelled), loop. Each hop is {ns, netns, ifname, event (xmit, recv,
or a final drop), hook, table, hooks, src, dst, sport, dport, rules, guess?}; hook and table
name the netfilter hook and table of the last rule that applied at that hop. drop is
{ns, netns, ifname, reason, kernelReason, hook, table, chain, rule} when dropped, else null.
guess is true when the path rests on something the model does not evaluate (listed in notes).
connections are the conntrack entries the packet would create where it is NATed. A hop with
optional: true is one the kernel shows only sometimes (a bridged DNAT's transmit on the bridge).
Across a tunnel (vxlan; geneve, ipip, sit, gre modelled alike): the tunnel device's xmit has
encap {type, vni, outer} and tunnelVia (how the remote node was chosen), and tunnelFault when
the tunnel's FDB sends the packet elsewhere than the node it is meant for, and tunnelCopies
(every VTEP a copy goes to) when its FDB entry has several destinations; underlay hops keep
the inner tuple and carry outer {family, proto, src, dst, sport, dport} (sport 0: the kernel
picks it); the far tunnel device's recv has decap.
When a statistic match (kube-proxy's endpoint choice) decides the way, the path also has
probability (its share of packets), via (the statistic rules met: "matched: RULE" or "did not
match: RULE") and alternatives: [{probability, via, fate, reason, hops, drop, connections}],
every other way with its share.
Exit codes: 0 a path was computed (whatever its fate), 2 bad arguments.`;

const OPTIONS = {
  from: { kind: 'string' }, src: { kind: 'string' }, dst: { kind: 'string' }, proto: { kind: 'string' },
  sport: { kind: 'number', integer: true }, dport: { kind: 'number', integer: true },
  iif: { kind: 'string' }, established: { kind: 'boolean' }, json: JSON_OUTPUT,
} as const;

export function runPathCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP, positionals: true }, async (o, positionals) => {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    if (o.from === undefined) throw new UsageError('path needs --from NS');
    if (o.dst === undefined) throw new UsageError('path needs --dst IP');
    if (o.proto === undefined) throw new UsageError('path needs --proto (tcp, udp, icmp, icmpv6 or a number)');
    const dst = parseAddr(o.dst);
    if (!dst) throw new UsageError(`--dst: '${o.dst}' is not an IPv4 or IPv6 address`);
    if (o.src !== undefined) {
      const src = parseAddr(o.src);
      if (!src) throw new UsageError(`--src: '${o.src}' is not an IPv4 or IPv6 address`);
      if (src.family !== dst.family) throw new UsageError('--src and --dst must be of the same family');
    }
    const proto = protoNumber(o.proto);
    if (proto === null) throw new UsageError(`--proto: unknown protocol '${o.proto}'`);
    for (const [name, v] of [['sport', o.sport], ['dport', o.dport]] as const) {
      if (v !== undefined && v > 65535) throw new UsageError(`--${name} takes a port 0-65535, got ${v}`);
      if (v !== undefined && !hasPorts(proto)) throw new UsageError(`--${name}: ${o.proto} has no ports`);
    }

    const topo = await discoverTopology();
    // A namespace, or the pod/container whose namespace it is.
    const want = o.from;
    const fromNs = resolveNamespace(topo, want) ?? topo.namespaces.find((n) => n.workload === want || (n.workloads ?? []).some((w) => workloadMatches(w, 'container', want) || workloadMatches(w, 'pod', want)));
    if (!fromNs) {
      throw new UsageError(`unknown namespace '${o.from}' (known: ${topo.namespaces.map((n) => (n.workload ? `${n.name} (${n.workload})` : n.name)).join(', ')})`);
    }
    let path;
    try {
      path = simulatePath(topo, {
        from: fromNs.netns,
        src: o.src ?? null,
        dst: o.dst,
        proto,
        ...(o.sport !== undefined ? { sport: o.sport } : {}),
        ...(o.dport !== undefined ? { dport: o.dport } : {}),
        iif: o.iif ?? null,
        ctState: o.established ? 'established' : 'new',
      });
    } catch (err) {
      if (err instanceof FlowError) throw new UsageError(err.message);
      throw err;
    }
    process.stdout.write(o.json ? `${JSON.stringify(path, null, 2)}\n` : `${formatPath(path)}\n`);
    return 0;
  });
}

export const run = runPathCommand;
