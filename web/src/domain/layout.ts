/**
 * Lays a TopologyGraph out with elkjs (Eclipse Layout Kernel, layered algorithm with nested
 * namespaces) and returns absolute coordinates ready to paint. The ELK instance is injected: the
 * dashboard runs ELK in its own worker, tests run the bundled synchronous build.
 */
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { GraphIface, GraphLink, GraphNode, TopologyGraph } from './topology-graph.js';
import { clusterNodes, orientLinks } from './topology-graph.js';

export interface LayoutEngine {
  layout(graph: ElkNode): Promise<ElkNode>;
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface PlacedIface {
  readonly iface: GraphIface;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

export interface PlacedNode {
  readonly node: GraphNode;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly ifaces: readonly PlacedIface[];
}

export interface PlacedLink {
  readonly link: GraphLink;
  readonly points: readonly Point[];
  /** Centre of the room ELK kept for the link's label (tunnels), when it has one. */
  readonly labelAt?: Point;
}

/** Size of a tunnel link's label pill (9.5 px mono, about 6 px a character, plus its rounded ends). */
export function linkLabelSize(text: string): { w: number; h: number } {
  return { w: Math.ceil(text.length * 6 + 12), h: 15 };
}

/** Hub mode: a node's box, around its namespaces. */
export interface PlacedCluster {
  readonly name: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

export const clusterId = (name: string): string => `node:${name}`;

export interface PlacedGraph {
  readonly nodes: readonly PlacedNode[];
  /** Hub mode: one box per node, its namespaces inside (drawn first, under them); empty on a single host. */
  readonly clusters: readonly PlacedCluster[];
  readonly links: readonly PlacedLink[];
  readonly width: number;
  readonly height: number;
}

// Sizes follow the drawing's fonts: 11px monospace for interface text, 12px for namespace names.
export const MONO_CH = 6.7;
const LABEL_CH = 7.4;
export const IFACE_LINE = 14;
export const NS_HEADER = 30;
const MAX_ADDRS = 2;
export const REMOTE_H = 24;

export function ifaceSize(i: GraphIface): { w: number; h: number } {
  const addrs = i.addrs.slice(0, MAX_ADDRS);
  const longest = Math.max(i.name.length + i.kind.length + 3, ...addrs.map((a) => a.length), i.addrs.length > MAX_ADDRS ? 8 : 0);
  const lines = 1 + addrs.length + (i.addrs.length > MAX_ADDRS ? 1 : 0);
  return { w: Math.max(84, Math.ceil(longest * MONO_CH) + 20), h: 8 + lines * IFACE_LINE };
}

/** Room for the name plus the header's controls (collapse toggle, drop badge). */
function nodeMinWidth(n: GraphNode): number {
  if (n.type === 'remote') return Math.max(90, Math.ceil(n.label.length * MONO_CH) + 20);
  const label = n.type === 'group' ? n.label : n.name;
  return Math.max(140, Math.ceil(label.length * LABEL_CH) + (n.type === 'ns' ? 96 : 24));
}

export function toElk(graph: TopologyGraph): ElkNode {
  const orient = orientLinks(graph);
  const children: ElkNode[] = graph.nodes.map((n) => {
    if (n.type === 'ns' && !n.collapsed && n.ifaces.length > 0) {
      return {
        id: n.id,
        layoutOptions: {
          'elk.padding': `[top=${NS_HEADER},left=10,bottom=10,right=10]`,
          'elk.nodeSize.constraints': 'MINIMUM_SIZE',
          'elk.nodeSize.minimum': `(${nodeMinWidth(n)},40)`,
        },
        children: n.ifaces.map((i) => {
          const size = ifaceSize(i);
          return { id: i.id, width: size.w, height: size.h };
        }),
      };
    }
    // A tunnel's far end nobody in the model answers for: one line, its address.
    if (n.type === 'remote') return { id: n.id, width: nodeMinWidth(n), height: REMOTE_H };
    // Collapsed namespaces and groups: the name and one summary line.
    return { id: n.id, width: nodeMinWidth(n), height: NS_HEADER + IFACE_LINE + 6 };
  });
  // Hub mode: each node a compound around its namespaces, so the layout keeps a node's boxes
  // together and the links between nodes (underlay, tunnel) run between the compounds.
  const cnodes = clusterNodes(graph);
  let top: ElkNode[] = children;
  if (cnodes.length > 0) {
    const byId = new Map(children.map((c) => [c.id, c]));
    const inside = new Set(cnodes.flatMap((c) => c.members));
    top = [
      ...cnodes.map((c) => ({
        id: clusterId(c.name),
        layoutOptions: {
          'elk.padding': `[top=${NS_HEADER},left=12,bottom=12,right=12]`,
          'elk.nodeSize.constraints': 'MINIMUM_SIZE',
          'elk.nodeSize.minimum': `(${Math.max(120, Math.ceil(c.name.length * LABEL_CH) + 60)},40)`,
        },
        children: c.members.map((m) => byId.get(m)).filter((x): x is ElkNode => x !== undefined),
      })),
      ...children.filter((c) => !inside.has(c.id)),
    ];
  }
  const edges: ElkExtendedEdge[] = graph.links.map((l) => {
    const forward = orient.get(l.id) ?? true;
    // A tunnel's label (kind, VNI, port) gets room of its own between the layers, so it never
    // sits under the boxes it joins.
    const labels = l.kind === 'tunnel' && l.label ? [{ id: `${l.id}#label`, text: l.label, width: linkLabelSize(l.label).w, height: linkLabelSize(l.label).h }] : undefined;
    return { id: l.id, sources: [forward ? l.from : l.to], targets: [forward ? l.to : l.from], ...(labels ? { labels } : {}) };
  });
  return {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.spacing.nodeNode': '18',
      'elk.layered.spacing.nodeNodeBetweenLayers': '44',
      'elk.spacing.componentComponent': '36',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.padding': '[top=16,left=16,bottom=16,right=16]',
      'elk.edgeLabels.placement': 'CENTER',
    },
    children: top,
    edges,
  };
}

/** Splits the graph into connected components (namespaces linked by veth pairs). */
export function components(graph: TopologyGraph): TopologyGraph[] {
  const owner = (id: string): string => (id.startsWith('if:') ? `ns:${id.split(':')[1]}` : id);
  const parent = new Map<string, string>(graph.nodes.map((n) => [n.id, n.id]));
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r && parent.has(r)) r = parent.get(r) as string;
    parent.set(x, r);
    return r;
  };
  for (const l of graph.links) {
    const a = find(owner(l.from));
    const b = find(owner(l.to));
    if (a !== b) parent.set(a, b);
  }
  const groups = new Map<string, GraphNode[]>();
  for (const n of graph.nodes) {
    const r = find(n.id);
    let g = groups.get(r);
    if (!g) groups.set(r, (g = []));
    g.push(n);
  }
  return [...groups.values()].map((nodes) => {
    const ids = new Set(nodes.map((n) => n.id));
    return { ...graph, nodes, links: graph.links.filter((l) => ids.has(owner(l.from))) };
  });
}

function shift(p: PlacedGraph, dx: number, dy: number): PlacedGraph {
  return {
    width: p.width,
    height: p.height,
    clusters: p.clusters.map((c) => ({ ...c, x: c.x + dx, y: c.y + dy })),
    nodes: p.nodes.map((n) => ({ ...n, x: n.x + dx, y: n.y + dy, ifaces: n.ifaces.map((i) => ({ ...i, x: i.x + dx, y: i.y + dy })) })),
    links: p.links.map((l) => ({
      ...l, points: l.points.map((q) => ({ x: q.x + dx, y: q.y + dy })), ...(l.labelAt ? { labelAt: { x: l.labelAt.x + dx, y: l.labelAt.y + dy } } : {}),
    })),
  };
}

/**
 * Lays out each connected component on its own (ELK keeps nested graphs as one component) and
 * packs them in rows whose width suits `aspectRatio` (the panel's width / height): a host with
 * many separate pods or labs fills the panel instead of making one tall column.
 */
export async function layoutGraph(graph: TopologyGraph, engine: LayoutEngine, aspectRatio = 1.7): Promise<PlacedGraph> {
  const parts = await Promise.all(components(graph).map((c) => layoutComponent(c, engine)));
  // Biggest first, then by size: the hub components lead, single namespaces trail.
  parts.sort((a, b) => b.nodes.length - a.nodes.length || b.height - a.height);
  const GAP = 12;
  const area = parts.reduce((s, p) => s + (p.width + GAP) * (p.height + GAP), 0);
  const rowMax = Math.max(...parts.map((p) => p.width), Math.sqrt(area * aspectRatio));
  const placed: PlacedGraph[] = [];
  let x = 0;
  let y = 0;
  let rowH = 0;
  let width = 0;
  for (const p of parts) {
    if (x > 0 && x + p.width > rowMax) {
      x = 0;
      y += rowH + GAP;
      rowH = 0;
    }
    placed.push(shift(p, x, y));
    x += p.width + GAP;
    width = Math.max(width, x - GAP);
    rowH = Math.max(rowH, p.height);
  }
  return {
    nodes: placed.flatMap((p) => p.nodes),
    clusters: placed.flatMap((p) => p.clusters),
    links: placed.flatMap((p) => p.links),
    width,
    height: y + rowH,
  };
}

async function layoutComponent(graph: TopologyGraph, engine: LayoutEngine): Promise<PlacedGraph> {
  const out = await engine.layout(toElk(graph));
  const offset = new Map<string, Point>([['root', { x: 0, y: 0 }]]);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const ifaceById = new Map<string, GraphIface>();
  for (const n of graph.nodes) if (n.type === 'ns') for (const i of n.ifaces) ifaceById.set(i.id, i);

  const nodes: PlacedNode[] = [];
  const clusters: PlacedCluster[] = [];
  // Hub mode's node compounds hold the namespaces one level down: their children are placed
  // relative to them.
  const level: { c: ElkNode; bx: number; by: number }[] = [];
  for (const c of out.children ?? []) {
    if (c.id.startsWith('node:')) {
      const cx = c.x ?? 0;
      const cy = c.y ?? 0;
      offset.set(c.id, { x: cx, y: cy });
      clusters.push({ name: c.id.slice('node:'.length), x: cx, y: cy, w: c.width ?? 0, h: c.height ?? 0 });
      for (const k of c.children ?? []) level.push({ c: k, bx: cx, by: cy });
    } else {
      level.push({ c, bx: 0, by: 0 });
    }
  }
  for (const { c, bx, by } of level) {
    const node = byId.get(c.id);
    if (!node) continue;
    const x = bx + (c.x ?? 0);
    const y = by + (c.y ?? 0);
    offset.set(c.id, { x, y });
    const ifaces: PlacedIface[] = [];
    for (const k of c.children ?? []) {
      const iface = ifaceById.get(k.id);
      if (!iface) continue;
      offset.set(k.id, { x: x + (k.x ?? 0), y: y + (k.y ?? 0) });
      ifaces.push({ iface, x: x + (k.x ?? 0), y: y + (k.y ?? 0), w: k.width ?? 0, h: k.height ?? 0 });
    }
    nodes.push({ node, x, y, w: c.width ?? 0, h: c.height ?? 0, ifaces });
  }

  const linkById = new Map(graph.links.map((l) => [l.id, l]));
  const links: PlacedLink[] = [];
  const collect = (edges: ElkExtendedEdge[] | undefined): void => {
    for (const e of edges ?? []) {
      const link = linkById.get(e.id);
      if (!link) continue;
      // Section coordinates are relative to the edge's container node.
      const base = offset.get(e.container ?? 'root') ?? { x: 0, y: 0 };
      const points: Point[] = [];
      for (const s of e.sections ?? []) {
        points.push({ x: base.x + s.startPoint.x, y: base.y + s.startPoint.y });
        for (const b of s.bendPoints ?? []) points.push({ x: base.x + b.x, y: base.y + b.y });
        points.push({ x: base.x + s.endPoint.x, y: base.y + s.endPoint.y });
      }
      const label = e.labels?.[0];
      const labelAt = label && label.x !== undefined && label.y !== undefined
        ? { x: base.x + label.x + (label.width ?? 0) / 2, y: base.y + label.y + (label.height ?? 0) / 2 } : undefined;
      if (points.length >= 2) links.push({ link, points, ...(labelAt ? { labelAt } : {}) });
    }
  };
  collect(out.edges);
  for (const c of out.children ?? []) {
    collect(c.edges);
    if (c.id.startsWith('node:')) for (const k of c.children ?? []) collect(k.edges);
  }
  return { nodes, clusters, links, width: out.width ?? 0, height: out.height ?? 0 };
}
