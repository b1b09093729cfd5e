/**
 * The topology model as a drawable graph: namespaces (expanded with their interfaces, or
 * collapsed to one box), groups of look-alike leaf namespaces (many pods on one bridge become one
 * "24 namespaces" box), bridge-port links inside a namespace, veth links across namespaces, and
 * tunnel links between the namespaces' tunnel devices (domain/tunnel-links.ts), with a small
 * "remote" box for a tunnel whose far end the model does not hold.
 * Pure: the view lays this out with elkjs and paints it.
 *
 * Readability at 50+ namespaces comes from two rules: leaf namespaces hanging off the same bridge
 * (or the same namespace) are grouped once there are `groupMin` of them (6; 3 when that still
 * leaves more than `autoCollapseOver` namespaces to draw), and past
 * `autoCollapseOver` visible namespaces every namespace starts collapsed; the user's clicks, and
 * the namespaces on the selected packet's path, override both.
 */
import type { NamespaceModel, NetInterface, Topology } from '../../../shared/topology/model.js';
import { tunnelLinks } from './tunnel-links.js';

export interface IfaceRef {
  readonly netns: number;
  readonly ifindex: number;
}

export interface GraphIface {
  readonly id: string;
  readonly netns: number;
  readonly ifindex: number;
  readonly name: string;
  readonly kind: string;
  /** Addresses worth reading on a diagram: link-local IPv6 (fe80::/10) is left out. */
  readonly addrs: readonly string[];
  /** Every address, link-local included (tooltips). */
  readonly allAddrs: readonly string[];
  readonly up: boolean;
  readonly master: string | null;
  /** Set on the stand-in for the veth ends of a grouped set of namespaces (ifindex -1). */
  readonly groupId?: string;
  /** How many real interfaces a stand-in holds. */
  readonly count?: number;
}

const isLinkLocal = (cidr: string): boolean => /^fe[89ab][0-9a-f]:/i.test(cidr);

export interface GraphNs {
  readonly type: 'ns';
  readonly id: string;
  readonly netns: number;
  readonly name: string;
  readonly collapsed: boolean;
  /** Interfaces drawn inside (empty when collapsed); loopback is left out. */
  readonly ifaces: readonly GraphIface[];
  /** All non-loopback interfaces, drawn or not. */
  readonly ifaceCount: number;
  readonly addrs: readonly string[];
  readonly forwarding: boolean;
  readonly errors: number;
  /** Hub mode: the node the namespace is on (the cluster topology's namespaces carry it). */
  readonly node?: string;
}

export interface GraphGroup {
  readonly type: 'group';
  readonly id: string;
  readonly label: string;
  readonly members: readonly { readonly netns: number; readonly name: string }[];
  readonly node?: string;
}

/** The far end of a tunnel the model does not hold: its remote underlay address. */
export interface GraphRemote {
  readonly type: 'remote';
  readonly id: string;
  readonly addr: string;
  /** "10.77.0.9 — not in the model", or the namespace that owns it without a matching tunnel device. */
  readonly label: string;
  readonly title: string;
  readonly node?: string;
}

export type GraphNode = GraphNs | GraphGroup | GraphRemote;

export interface GraphLink {
  readonly id: string;
  /** 'underlay': hub mode, two nodes' interfaces on one subnet (the cluster model's underlay links). */
  readonly kind: 'veth' | 'port' | 'tunnel' | 'underlay';
  /** Tunnel links: kind, VNI and port ("vxlan vni 42 · udp 4789"). */
  readonly label?: string;
  /** Tunnel links: the underlay addresses between the two ends ("10.77.0.1 → 10.77.0.2"). */
  readonly detail?: string;
  /** Drawn endpoints: interface ids, or namespace/group ids when collapsed or grouped. */
  readonly from: string;
  readonly to: string;
  /** Every real interface pair this drawn link stands for (several when collapsed ones merge). */
  readonly pairs: readonly (readonly [IfaceRef, IfaceRef])[];
}

export interface TopologyGraph {
  readonly nodes: readonly GraphNode[];
  readonly links: readonly GraphLink[];
  /** Drawn element id holding each namespace (its own id, or its group's). */
  readonly nsHolder: ReadonlyMap<number, string>;
  /** Drawn endpoint id of each interface `netns:ifindex`. */
  readonly ifaceHolder: ReadonlyMap<string, string>;
  readonly totalNamespaces: number;
}

/** A packet's path (observed or expected) to draw over the graph. */
export interface PathHighlight {
  /** Interfaces (`netns:ifindex`) and namespaces on the path. */
  readonly ifaces: ReadonlySet<string>;
  readonly netns: ReadonlySet<number>;
  /** Interface (`netns:ifindex`) where the packet was dropped, if it was. */
  readonly drop?: string | null;
}

export interface GraphOptions {
  /** Namespaces the user expanded / collapsed by hand. */
  readonly expanded?: ReadonlySet<number>;
  readonly collapsed?: ReadonlySet<number>;
  /** Group ids the user opened. */
  readonly openGroups?: ReadonlySet<string>;
  /** Namespaces that must stay visible and expanded (the selected packet's path). */
  readonly pinned?: ReadonlySet<number>;
  readonly groupMin?: number;
  readonly autoCollapseOver?: number;
  /** Hub mode: the cluster model's underlay links (GET /api/cluster `links`), drawn between the nodes' interfaces. */
  readonly underlays?: readonly ClusterUnderlay[];
}

/** One end of a cluster link as the hub names it. */
export interface ClusterEndRef { readonly node: string; readonly ns: string; readonly ifname: string }
export interface ClusterUnderlay { readonly from: ClusterEndRef; readonly to: ClusterEndRef }

/** The node a namespace of the cluster topology is on (absent on a single host). */
export const nodeOf = (ns: NamespaceModel): string | undefined => {
  const n = (ns as NamespaceModel & { node?: unknown }).node;
  return typeof n === 'string' ? n : undefined;
};

/** The cluster nodes drawn, in name order, with the drawn elements each holds (empty on a single host). */
export function clusterNodes(graph: TopologyGraph): { readonly name: string; readonly members: readonly string[] }[] {
  const by = new Map<string, string[]>();
  for (const n of graph.nodes) {
    if (n.node === undefined) continue;
    let list = by.get(n.node);
    if (!list) by.set(n.node, (list = []));
    list.push(n.id);
  }
  return [...by].sort(([a], [b]) => a.localeCompare(b)).map(([name, members]) => ({ name, members }));
}

/** Every address of every namespace, as [netns, address without prefix]: lets the engine call a packet received by its destination's namespace delivered. */
export function localAddresses(topo: Topology | null): [number, string][] {
  const out: [number, string][] = [];
  for (const ns of topo?.namespaces ?? []) {
    for (const i of ns.interfaces) for (const a of i.addrs) out.push([ns.netns, a.split('/')[0] ?? a]);
  }
  return out;
}

export const nsId = (netns: number): string => `ns:${netns}`;
export const ifId = (netns: number, ifindex: number): string => `if:${netns}:${ifindex}`;
export const ifKey = (netns: number, ifindex: number): string => `${netns}:${ifindex}`;

function visibleIfaces(ns: NamespaceModel): NetInterface[] {
  return ns.interfaces.filter((i) => i.kind !== 'loopback' && i.name !== 'lo');
}

/** Namespaces reached through each namespace's veth peers. */
function neighbours(topo: Topology): Map<number, Set<number>> {
  const known = new Set(topo.namespaces.map((n) => n.netns));
  const out = new Map<number, Set<number>>();
  for (const ns of topo.namespaces) {
    const set = new Set<number>();
    for (const i of ns.interfaces) if (i.peer && i.peer.netns !== ns.netns && known.has(i.peer.netns)) set.add(i.peer.netns);
    out.set(ns.netns, set);
  }
  return out;
}

/**
 * Leaf namespaces (one neighbour, no bridge of their own) grouped by where they attach: the
 * neighbour and the bridge their peers are ports of. Key → members.
 */
function leafGroups(topo: Topology, nb: Map<number, Set<number>>): Map<string, NamespaceModel[]> {
  const byNetns = new Map(topo.namespaces.map((n) => [n.netns, n]));
  const groups = new Map<string, NamespaceModel[]>();
  for (const ns of topo.namespaces) {
    const near = nb.get(ns.netns);
    if (!near || near.size !== 1) continue;
    if (ns.interfaces.some((i) => i.kind === 'bridge')) continue;
    const parent = [...near][0] as number;
    // A leaf only when its parent is not itself a leaf pointing back (a two-namespace pair).
    if ((nb.get(parent)?.size ?? 0) <= 1) continue;
    const peerIf = ns.interfaces.find((i) => i.peer?.netns === parent);
    const parentNs = byNetns.get(parent);
    const port = parentNs?.interfaces.find((i) => i.ifindex === peerIf?.peer?.ifindex);
    const key = `${parent}/${port?.master ?? ''}`;
    let list = groups.get(key);
    if (!list) groups.set(key, (list = []));
    list.push(ns);
  }
  return groups;
}

export function buildGraph(topo: Topology, opts: GraphOptions = {}): TopologyGraph {
  const autoCollapseOver = opts.autoCollapseOver ?? 12;
  const graph = buildWith(topo, opts, opts.groupMin ?? 6, autoCollapseOver);
  // Many small sets of pods (a dozen nodes with four pods each) are too many boxes to read, even
  // collapsed: on a host that big, group sets of three already.
  if (opts.groupMin !== undefined || graph.nodes.filter((n) => n.type === 'ns').length <= autoCollapseOver) return graph;
  return buildWith(topo, opts, 3, autoCollapseOver);
}

function buildWith(topo: Topology, opts: GraphOptions, groupMin: number, autoCollapseOver: number): TopologyGraph {
  const pinned = opts.pinned ?? new Set<number>();
  const nb = neighbours(topo);
  const byNetns = new Map(topo.namespaces.map((n) => [n.netns, n]));

  const nsHolder = new Map<number, string>();
  const nodes: GraphNode[] = [];
  const grouped = new Set<number>();
  for (const [key, members] of leafGroups(topo, nb)) {
    const gid = `grp:${key}`;
    if (members.length < groupMin || opts.openGroups?.has(gid)) continue;
    // A pinned member leaves its group; the rest stay grouped if there are still enough.
    const stay = members.filter((m) => !pinned.has(m.netns));
    if (stay.length < groupMin) continue;
    const [parent = '', bridge = ''] = key.split('/');
    const parentName = byNetns.get(Number(parent))?.name ?? parent;
    const parentNs = byNetns.get(Number(parent));
    const gnode = parentNs ? nodeOf(parentNs) : undefined;
    nodes.push({
      type: 'group', id: gid,
      label: `${stay.length} namespaces on ${parentName}${bridge ? `/${bridge}` : ''}`,
      members: stay.map((m) => ({ netns: m.netns, name: m.name })),
      ...(gnode !== undefined ? { node: gnode } : {}),
    });
    for (const m of stay) {
      grouped.add(m.netns);
      nsHolder.set(m.netns, gid);
    }
  }

  const shown = topo.namespaces.filter((n) => !grouped.has(n.netns));
  const collapseByDefault = shown.length > autoCollapseOver;
  const ifaceHolder = new Map<string, string>();
  for (const ns of topo.namespaces) {
    const holder = nsHolder.get(ns.netns);
    if (holder) for (const i of ns.interfaces) ifaceHolder.set(ifKey(ns.netns, i.ifindex), holder);
  }
  for (const ns of shown) {
    const all = visibleIfaces(ns);
    // The ends of veths leading into a group fold into one stand-in, so a node with 40 pods
    // draws one "40 veths" box instead of 40 port boxes.
    const toGroup = new Map<string, NetInterface[]>();
    const ifaces: NetInterface[] = [];
    for (const i of all) {
      const g = i.peer ? nsHolder.get(i.peer.netns) : undefined;
      if (g?.startsWith('grp:') && i.peer && grouped.has(i.peer.netns)) {
        let list = toGroup.get(g);
        if (!list) toGroup.set(g, (list = []));
        list.push(i);
      } else {
        ifaces.push(i);
      }
    }
    const collapsed = !pinned.has(ns.netns) && !opts.expanded?.has(ns.netns)
      && (opts.collapsed?.has(ns.netns) || collapseByDefault || ifaces.length === 0);
    const id = nsId(ns.netns);
    nsHolder.set(ns.netns, id);
    const drawn: GraphIface[] = collapsed ? [] : ifaces.map((i) => ({
      id: ifId(ns.netns, i.ifindex), netns: ns.netns, ifindex: i.ifindex, name: i.name, kind: i.kind,
      addrs: i.addrs.filter((a) => !isLinkLocal(a)), allAddrs: i.addrs, up: i.up, master: i.master,
    }));
    for (const i of ns.interfaces) ifaceHolder.set(ifKey(ns.netns, i.ifindex), collapsed ? id : ifId(ns.netns, i.ifindex));
    let stand = 0;
    for (const [gid, list] of toGroup) {
      const sid = `if:${ns.netns}:g${stand++}`;
      const masters = [...new Set(list.map((i) => i.master))];
      if (!collapsed) {
        drawn.push({
          id: sid, netns: ns.netns, ifindex: -1, name: `${list.length} veths`, kind: 'veth', addrs: [], allAddrs: [],
          up: list.every((i) => i.up), master: masters.length === 1 ? masters[0] ?? null : null, groupId: gid, count: list.length,
        });
      }
      for (const i of list) ifaceHolder.set(ifKey(ns.netns, i.ifindex), collapsed ? id : sid);
    }
    // Loopback is never drawn: anything on it is held by the namespace box.
    for (const i of ns.interfaces) if (!collapsed && (i.kind === 'loopback' || i.name === 'lo')) ifaceHolder.set(ifKey(ns.netns, i.ifindex), id);
    nodes.push({
      type: 'ns', id, netns: ns.netns, name: ns.name, collapsed, ifaces: drawn, ifaceCount: all.length,
      addrs: all.flatMap((i) => i.addrs.filter((a) => !isLinkLocal(a))), forwarding: ns.forwarding.ipv4 === true || ns.forwarding.ipv6 === true,
      errors: ns.errors.length,
      ...(nodeOf(ns) !== undefined ? { node: nodeOf(ns) } : {}),
    });
  }

  // Links: bridge ports inside expanded namespaces, veth pairs across namespaces (each pair once).
  type Building = { kind: GraphLink['kind']; from: string; to: string; pairs: [IfaceRef, IfaceRef][]; label?: string; detail?: string };
  const links = new Map<string, Building>();
  const addLink = (kind: GraphLink['kind'], a: IfaceRef, b: IfaceRef, extra: { label?: string; detail?: string } = {}): void => {
    const from = ifaceHolder.get(ifKey(a.netns, a.ifindex));
    const to = ifaceHolder.get(ifKey(b.netns, b.ifindex));
    if (!from || !to || from === to) return;
    const [x, y] = from < to ? [from, to] : [to, from];
    const id = `${kind}:${x}|${y}${extra.label ? `|${extra.label}` : ''}`;
    const l = links.get(id);
    if (l) l.pairs.push([a, b]);
    else links.set(id, { kind, from, to, pairs: [[a, b]], ...extra });
  };
  const seenPairs = new Set<string>();
  for (const ns of topo.namespaces) {
    const byName = new Map(ns.interfaces.map((i) => [i.name, i]));
    for (const i of ns.interfaces) {
      if (i.master) {
        const br = byName.get(i.master);
        if (br) addLink('port', { netns: ns.netns, ifindex: br.ifindex }, { netns: ns.netns, ifindex: i.ifindex });
      }
      if (i.peer && byNetns.has(i.peer.netns)) {
        const a = ifKey(ns.netns, i.ifindex);
        const b = ifKey(i.peer.netns, i.peer.ifindex);
        const key = a < b ? `${a}|${b}` : `${b}|${a}`;
        if (seenPairs.has(key)) continue;
        seenPairs.add(key);
        addLink('veth', { netns: ns.netns, ifindex: i.ifindex }, { netns: i.peer.netns, ifindex: i.peer.ifindex });
      }
    }
  }
  // Underlays between nodes (hub mode): the cluster model's, unless a veth already joins the two
  // interfaces (nodes that are namespaces of one kernel, as in the tests).
  for (const u of opts.underlays ?? []) {
    const find = (e: ClusterEndRef): IfaceRef | null => {
      const ns = topo.namespaces.find((n) => n.name === e.ns && nodeOf(n) === e.node);
      const i = ns?.interfaces.find((x) => x.name === e.ifname);
      return ns && i ? { netns: ns.netns, ifindex: i.ifindex } : null;
    };
    const a = find(u.from);
    const b = find(u.to);
    if (!a || !b) continue;
    const ka = ifKey(a.netns, a.ifindex);
    const kb = ifKey(b.netns, b.ifindex);
    if (seenPairs.has(ka < kb ? `${ka}|${kb}` : `${kb}|${ka}`)) continue;
    addLink('underlay', a, b, { detail: `underlay ${u.from.node} ↔ ${u.to.node}` });
  }
  // Tunnels: between the two tunnel devices, or from the device to a box holding the remote
  // address nobody in the model answers for.
  const localOf = (r: IfaceRef): string | null => byNetns.get(r.netns)?.interfaces.find((i) => i.ifindex === r.ifindex)?.tunnel?.local ?? null;
  for (const t of tunnelLinks(topo)) {
    const detail = `${localOf(t.from) ?? '?'} → ${t.remote}`;
    if (t.to) {
      addLink('tunnel', t.from, t.to, { label: t.label, detail });
      continue;
    }
    const from = ifaceHolder.get(ifKey(t.from.netns, t.from.ifindex));
    if (!from) continue;
    const rid = `remote:${t.from.netns}:${t.from.ifindex}:${t.remote}`;
    const fromNs = byNetns.get(t.from.netns);
    const rnode = fromNs ? nodeOf(fromNs) : undefined;
    nodes.push({
      type: 'remote', id: rid, addr: t.remote,
      ...(rnode !== undefined ? { node: rnode } : {}),
      label: t.remoteOwner ? `${t.remote} · ${t.remoteOwner}` : t.remote,
      title: t.remoteOwner
        ? `${t.remote} belongs to ${t.remoteOwner}, which has no ${t.label} device: the tunnel ends nowhere`
        : `${t.remote}: no namespace in the model has this address (another host, or a node not traced)`,
    });
    links.set(`tunnel:${from}|${rid}`, { kind: 'tunnel', from, to: rid, pairs: [[t.from, t.from]], label: t.label, detail });
  }
  return {
    nodes,
    links: [...links].map(([id, l]) => ({ id, ...l })),
    nsHolder,
    ifaceHolder,
    totalNamespaces: topo.namespaces.length,
  };
}

/**
 * Orders each connected component outward from its hub (the namespace with most links), so the
 * layered layout reads left to right: node namespace, then its bridge, ports, and the pods.
 * Returns, for each drawn link, whether it should point from→to (true) or be flipped.
 */
export function orientLinks(graph: TopologyGraph): Map<string, boolean> {
  const owner = (id: string): string => (id.startsWith('if:') ? `ns:${id.split(':')[1]}` : id);
  const adj = new Map<string, Set<string>>();
  for (const l of graph.links) {
    const a = owner(l.from);
    const b = owner(l.to);
    if (a === b) continue;
    if (!adj.has(a)) adj.set(a, new Set());
    if (!adj.has(b)) adj.set(b, new Set());
    adj.get(a)?.add(b);
    adj.get(b)?.add(a);
  }
  const depth = new Map<string, number>();
  const order = [...adj.keys()].sort((x, y) => (adj.get(y)?.size ?? 0) - (adj.get(x)?.size ?? 0) || (x < y ? -1 : 1));
  for (const root of order) {
    if (depth.has(root)) continue;
    depth.set(root, 0);
    const queue = [root];
    while (queue.length) {
      const cur = queue.shift() as string;
      for (const next of adj.get(cur) ?? []) {
        if (depth.has(next)) continue;
        depth.set(next, (depth.get(cur) ?? 0) + 1);
        queue.push(next);
      }
    }
  }
  const out = new Map<string, boolean>();
  for (const l of graph.links) {
    if (l.kind === 'port') {
      // Inside a namespace: bridge first, then its ports.
      out.set(l.id, l.pairs[0]?.[0] !== undefined && graph.ifaceHolder.get(ifKey(l.pairs[0][0].netns, l.pairs[0][0].ifindex)) === l.from);
      continue;
    }
    const da = depth.get(owner(l.from)) ?? 0;
    const db = depth.get(owner(l.to)) ?? 0;
    out.set(l.id, da <= db);
  }
  return out;
}
