/**
 * The expected path of a packet across nodes (issue 17): each node's own model (its agent's
 * topology) walked by the one simulator (simulate.ts), handed from node to node where the packet
 * goes on the wire.
 *
 * A node's model ends where its kernel does: at an underlay device whose far side it does not
 * know (a NIC, an underlay veth whose peer is another node's), with what went out there
 * (ExpectedPath.exit: the packet on the wire, inside a tunnel the inner tuple and the tunnel).
 * The next node is the one that owns the address it was sent to (the route's next hop, else its
 * destination; the outer destination inside a tunnel); its model takes the packet over as
 * received on the device holding that address, inside the tunnel when it was in one, and goes on
 * (its INPUT, the decap by its tunnel device, the inner packet to its pod). Where a tunnel's
 * frame is meant to go (the node whose tunnel device owns the next hop) is looked up in every
 * node's model, so a tunnel table sending it to the wrong node is a fault the path names.
 *
 * Every expected hop carries its `node`. Namespace inodes are each kernel's own, so hops are
 * compared on (node, namespace, device, event) — shared/topology/compare.ts does when both
 * sides carry a node.
 */
import type { NamespaceModel, Topology } from './model.js';
import type { ConntrackView } from './conntrack.js';
import type { Connection } from './conntrack.js';
import { cidrAddress, parseAddr } from './ip.js';
import { FlowError, simulatePath, type ExpectedDrop, type ExpectedHop, type ExpectedPath, type Flow, type SimulateOptions } from './simulate.js';

/** At most this many node crossings in one path (a routing loop between nodes ends there). */
const MAX_CROSSINGS = 8;

export interface NodeHandover {
  readonly from: string;
  readonly to: string;
  /** The address the packet was sent to on the wire (next hop or destination; outer inside a tunnel). */
  readonly addr: string;
  /** Where it left and where it is taken over: namespace and device on each node. */
  readonly leave: { readonly ns: string; readonly ifname: string };
  readonly enter: { readonly ns: string; readonly ifname: string };
  /** Index in the path's hops of the first hop on `to`. */
  readonly index: number;
}

export interface NodeConnection extends Connection {
  readonly node: string;
}

/** An expected path over nodes: an ExpectedPath whose hops carry their node. */
export interface NodesExpectedPath extends ExpectedPath {
  readonly hops: readonly (ExpectedHop & { node: string })[];
  readonly flow: ExpectedPath['flow'] & { readonly node: string };
  readonly nodes: readonly string[];
  readonly handovers: readonly NodeHandover[];
  readonly connections: readonly NodeConnection[];
  readonly drop: (ExpectedDrop & { readonly node: string }) | null;
}

export interface NodesFlow extends Flow {
  /** The node `from` is a namespace of. */
  readonly node: string;
}

export interface NodesOptions extends SimulateOptions {
  /** Connections each node's conntrack follows (per node: inodes are each kernel's own). */
  readonly conntrack?: (node: string) => ConntrackView | undefined;
}

/** The namespace and device of another node than `except` that own `addr`. */
export function addressOwner(nodes: ReadonlyMap<string, Topology>, addr: string, except: string | null): { node: string; ns: NamespaceModel; ifname: string } | null {
  const a = parseAddr(addr);
  if (!a) return null;
  for (const [node, topo] of nodes) {
    if (node === except) continue;
    for (const ns of topo.namespaces) {
      for (const i of ns.interfaces) {
        if (i.kind === 'loopback') continue;
        for (const c of i.addrs) {
          const b = parseAddr(cidrAddress(c));
          if (b && b.family === a.family && b.value === a.value) return { node, ns, ifname: i.name };
        }
      }
    }
  }
  return null;
}

/**
 * Simulates `flow` from a namespace of `flow.node` across the nodes of `nodes` (each node's own
 * model). Throws FlowError for bad input, as simulatePath does.
 */
export function simulateAcrossNodes(nodes: ReadonlyMap<string, Topology>, flow: NodesFlow, opts: NodesOptions = {}): NodesExpectedPath {
  const hops: (ExpectedHop & { node: string })[] = [];
  const notes: string[] = [];
  const connections: NodeConnection[] = [];
  const handovers: NodeHandover[] = [];
  const crossed: string[] = [];
  let node = flow.node;
  let current: Flow = flow;
  let first: ExpectedPath | null = null;
  let guess = false;
  for (let step = 0; ; step++) {
    const topo = nodes.get(node);
    if (!topo) throw new FlowError(`unknown node ${node} (known: ${[...nodes.keys()].join(', ') || 'none'})`);
    const peers = [...nodes].filter(([n]) => n !== node).flatMap(([, t]) => t.namespaces);
    const ct = opts.conntrack?.(node);
    const path = simulatePath(topo, { ...current, ...(ct ? { conntrack: ct } : {}) }, { ...opts, tunnelPeers: peers });
    first ??= path;
    crossed.push(node);
    for (const h of path.hops) hops.push({ ...h, node });
    for (const n of path.notes) {
      const text = nodes.size > 1 ? `${node}: ${n}` : n;
      if (!notes.includes(text)) notes.push(text);
    }
    for (const c of path.connections) connections.push({ ...c, node });
    guess ||= path.guess;
    const exit = path.exit;
    const end = (fate: ExpectedPath['fate'], reason: string, extra: Partial<ExpectedPath> = {}): NodesExpectedPath => {
      const { exit: _exit, alternatives: _alt, probability: _p, via: _v, ...rest } = path;
      return {
        ...rest, ...extra,
        flow: { ...first!.flow, node: flow.node },
        fate, reason, hops, guess, notes, connections, nodes: crossed, handovers,
        drop: path.drop ? { ...path.drop, node } : null,
      };
    };
    if (path.fate !== 'left-model' || !exit) return end(path.fate, path.reason, exit ? { exit } : {});
    const addr = exit.nexthop ?? exit.wire.dst;
    const owner = addressOwner(nodes, addr, node);
    if (!owner) return end('left-model', `${path.reason}; no node of the cluster owns ${addr}`, { exit });
    if (step + 1 >= MAX_CROSSINGS) return end('loop', `crossed ${MAX_CROSSINGS} nodes (a routing loop between nodes?)`);
    handovers.push({ from: node, to: owner.node, addr, leave: { ns: exit.ns, ifname: exit.ifname }, enter: { ns: owner.ns.name, ifname: owner.ifname }, index: hops.length });
    const inner = exit.inner ?? exit.wire;
    current = {
      from: owner.ns.netns, iif: owner.ifname, proto: current.proto,
      src: inner.src, dst: inner.dst, sport: inner.sport, dport: inner.dport,
      ...(exit.encap ? { tunnel: exit.encap } : {}),
      ...(current.ctState ? { ctState: current.ctState } : {}),
    };
    node = owner.node;
  }
}
