/**
 * Where an observed packet left its expected path. Hops are compared on (namespace, interface,
 * event); 'rx' hops (netif_rx, the first half of a veth receive) are ignored since the model
 * predicts the 'recv' that follows, as are the hops of a datagram's later fragments (`fragment` above
 * 1: they take the first's way), and hops the model cannot predict (devices or
 * namespaces it does not know). The observation may start mid-path (the first observed hop
 * anchors anywhere in the expected path) and may skip expected hops (lost events); it diverges
 * when it shows a hop the expected path does not continue with, a drop or consume where the
 * path goes on, an address rewrite the path does not have, or ends before the path does.
 */
import { isLaterFragment, type Hop, type Packet } from '../packet.js';
import type { Topology } from './model.js';
import type { ExpectedHop, ExpectedPath, Flow } from './simulate.js';
import { FlowError, simulatePath, takeAlternative } from './simulate.js';
import { sameAddr } from './ip.js';
import type { NetfilterVerdict } from '../netfilter/types.js';
import { isDropVerdict } from '../netfilter/types.js';

export interface Divergence {
  /** Index in the expected hops of the first expected hop not followed (hops.length when the path was done). */
  readonly index: number;
  /** Index in the observed hops of the hop that diverged; null when the observation ended early. */
  readonly observedIndex: number | null;
  readonly expected: ExpectedHop | null;
  readonly observed: Hop | null;
  /** 'path': another hop; 'drop' / 'consume': freed where the path goes on; 'nat': same hop, other addresses; 'missing': never seen. */
  readonly kind: 'path' | 'drop' | 'consume' | 'nat' | 'missing';
  readonly summary: string;
}

export interface CompareOptions {
  /** Drop reason of the observed packet (Packet.drop.reason), used in the summary. */
  readonly dropReason?: string | null;
  /**
   * The netfilter rule or policy that dropped the observed packet, when `trace --netfilter`
   * saw it (Packet.netfilter): the summary then names the hook and the rule.
   */
  readonly droppedBy?: NetfilterVerdict | null;
  /**
   * Reason of the observed packet's socket discard after delivery (Packet.discard.reason: not a
   * drop, shared/fate.ts), used in the summary when it was delivered short of the path's end.
   */
  readonly discardReason?: string | null;
}

/** The drop step of a packet's netfilter trace, if any. */
export function netfilterDrop(packet: Pick<Packet, 'netfilter'>): NetfilterVerdict | null {
  return packet.netfilter?.find((s) => isDropVerdict(s.verdict)) ?? null;
}

type ObservedLike = Pick<Hop, 'event' | 'netns' | 'ns' | 'ifname' | 'src' | 'dst'> & { readonly node?: string };

/**
 * The node of a hop of a packet stitched across nodes (shared/cluster/stitch.ts), or of an
 * expected hop of a path across nodes (shared/topology/nodes.ts); undefined on one host.
 */
function nodeOf(h: object): string | undefined {
  const n = (h as { node?: unknown }).node;
  return typeof n === 'string' ? n : undefined;
}

/** ` on NODE` for a hop of a path across nodes, '' on one host. */
function onNode(h: object): string {
  const n = nodeOf(h);
  return n === undefined ? '' : ` on ${n}`;
}

function hostPort(a: string, port: number): string {
  return port === 0 ? a : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

function nsLabel(h: { ns: string | null; netns: number }): string {
  return `${h.ns ?? `netns ${h.netns}`}${onNode(h)}`;
}

function sameSpot(o: ObservedLike, e: ExpectedHop): boolean {
  // Across nodes, namespace inodes are each kernel's own: the node is part of the spot.
  return o.netns === e.netns && o.ifname === e.ifname && o.event === e.event && nodeOf(o) === nodeOf(e);
}

function describeExpected(e: ExpectedHop | null, path: ExpectedPath | null): string {
  if (!e) {
    const last = path?.hops[path.hops.length - 1];
    return `expected to end in ${last ? `${last.ns}${onNode(last)}` : path?.flow.ns ?? '?'} (${path?.fate ?? 'end'})`;
  }
  const ns = `${e.ns}${onNode(e)}`;
  switch (e.event) {
    case 'xmit':
      return `expected to leave ${ns} through ${e.ifname} (xmit)`;
    case 'recv':
      return `expected to arrive in ${ns} on ${e.ifname} (recv)`;
    case 'drop': {
      const rule = e.rules.find((r) => r.verdict === 'drop' || r.verdict === 'reject');
      return `expected to be dropped in ${ns}${rule ? ` (${rule.hook} ${rule.table}: ${rule.rule})` : ''}`;
    }
  }
}

function describeObserved(o: ObservedLike | null, last: ObservedLike | null, dropReason: string | null | undefined, by?: NetfilterVerdict | null, discardReason?: string | null): string {
  if (!o) {
    return last ? `was last seen in ${nsLabel(last)} on ${last.ifname || '(no device)'} (${last.event})` : 'was not observed';
  }
  switch (o.event) {
    case 'drop': {
      if (discardReason && !dropReason) return `was delivered in ${nsLabel(o)} (then discarded by its socket: ${discardReason})`;
      const where = by && by.netns === o.netns
        ? ` in ${by.hook.toUpperCase()} by ${by.family} ${by.table} ${by.chain} ${by.type === 'rule' && by.rule ? `rule "${by.rule}"` : `policy ${by.verdict}`}`
        : '';
      return `was dropped in ${nsLabel(o)}${where}${dropReason ? ` (reason ${dropReason})` : ''}`;
    }
    case 'consume':
      return `was consumed in ${nsLabel(o)}`;
    case 'xmit':
      return `left ${nsLabel(o)} through ${o.ifname} (xmit)`;
    case 'recv':
    case 'rx':
      return `arrived in ${nsLabel(o)} on ${o.ifname} (${o.event})`;
  }
}

/**
 * Whether a source NAT up to hop `i` may have picked another source port than the model says:
 * MASQUERADE/SNAT keep the port unless told to randomise it or map to a port range (kube-proxy
 * masquerades `--random-fully`). Ports are compared otherwise: a reply un-DNATed by conntrack
 * (10.244.1.12:80 → 10.99.0.1:8080) must not pass for a MASQUERADE that keeps port 80.
 */
function sourcePortFree(exp: readonly ExpectedHop[], i: number): boolean {
  // An nft rule's text (nf-text.ts) does not keep its port range or random flags: free.
  return exp.slice(0, i + 1).some((h) => h.rules.some((r) => /^(masquerade|snat)/.test(r.verdict) && (!r.rule.startsWith('-A ') || /random|--to-ports|:\d+-\d+|\d+-\d+$/.test(r.rule))));
}

/** Can the model say anything about this hop? */
function predictable(o: ObservedLike, known: ReadonlySet<string> | null): boolean {
  if (o.ifname === '') return false;
  if (known === null) return true;
  return known.has(`${nodeOf(o) ?? ''}/${o.netns}/${o.ifname}`);
}

/**
 * When the divergence is inside a tunnel: where the observed outer headers sent the packet, if
 * not where the path goes, and the tunnel's fault the path knows of (an FDB entry to the wrong node).
 */
function tunnelNote(exp: readonly ExpectedHop[], i: number, o: Hop | null): string {
  let enc: ExpectedHop | null = null;
  for (let k = 0; k < Math.min(i, exp.length); k++) {
    const x = exp[k];
    if (x?.encap) enc = x;
    if (x?.decap) enc = null;
  }
  if (!enc?.encap) return '';
  const want = enc.encap.outer.dst;
  const went = o?.outer?.dst ?? o?.encap?.outer.dst ?? null;
  const parts: string[] = [];
  if (went !== null && !sameAddr(went, want)) parts.push(`inside the tunnel to ${went}, expected ${want}`);
  if (enc.tunnelFault) parts.push(enc.tunnelFault);
  return parts.length > 0 ? `; ${parts.join(': ')}` : '';
}

/**
 * Compares observed hops with the expected path: null when they agree, else the first
 * divergence. `topology`, when given, lets hops on devices it does not model be ignored.
 */
export function comparePaths(
  observed: readonly Hop[],
  expected: ExpectedPath | readonly ExpectedHop[],
  opts: CompareOptions & { readonly topology?: Topology } = {},
): Divergence | null {
  const path = Array.isArray(expected) ? null : (expected as ExpectedPath);
  const exp: readonly ExpectedHop[] = path ? path.hops : (expected as readonly ExpectedHop[]);
  let known: Set<string> | null = null;
  if (opts.topology) {
    known = new Set();
    // A cluster's topology (shared/cluster/model.ts mergeTopologies) tags each namespace with its node.
    for (const ns of opts.topology.namespaces) {
      const node = nodeOf(ns) ?? '';
      known.add(`${node}/${ns.netns}/`);
      for (const i of ns.interfaces) known.add(`${node}/${ns.netns}/${i.name}`);
    }
  }
  // A datagram's later fragments (shared/reconstruct.ts: `fragment` 2, 3, …) take the first's
  // way, interleaved with its hops: the path is the first fragment's (and the datagram's, whole).
  const obs = observed.map((h, i) => ({ h, i })).filter(({ h }) => h.event !== 'rx' && !isLaterFragment(h));
  if (obs.length === 0) return null;
  let i = 0;
  let anchored = false;
  let lastMatched: ObservedLike | null = null;
  const diverge = (kind: Divergence['kind'], o: { h: Hop; i: number } | null): Divergence => {
    const e = exp[i] ?? null;
    const summary = `${describeExpected(e, path)}, ${describeObserved(o?.h ?? null, lastMatched, opts.dropReason, opts.droppedBy, opts.discardReason)}${tunnelNote(exp, i, o?.h ?? null)}`;
    return { index: i, observedIndex: o?.i ?? null, expected: e, observed: o?.h ?? null, kind, summary };
  };
  if (exp.length === 0) {
    // The model says the packet cannot leave its sender (no route, a loop) yet the kernel moved
    // it: the model is missing something, which is worth saying rather than 'matches'.
    const moved = obs.find(({ h }) => h.event !== 'drop');
    if (path && (path.fate === 'unreachable' || path.fate === 'loop') && moved) return diverge(moved.h.event === 'consume' ? 'consume' : 'path', moved);
    return null;
  }
  for (const o of obs) {
    const h = o.h;
    if (h.event === 'drop' || h.event === 'consume') {
      const e = exp[i];
      if (e && e.event === 'drop' && e.netns === h.netns && nodeOf(e) === nodeOf(h) && h.event === 'drop') return null;
      if (i >= exp.length) {
        // The path was done: the packet reached where it was expected to. What the kernel did
        // then (no listening socket, delivered, a socket's discard after delivery: shared/fate.ts)
        // is not a path question, unless a firewall dropped it there.
        if (h.event === 'drop' && opts.dropReason === 'NETFILTER_DROP') return diverge('drop', o);
        return null;
      }
      if (path && path.fate === 'unreachable' && h.event === 'drop' && exp[exp.length - 1]?.netns === h.netns && nodeOf(exp[exp.length - 1]!) === nodeOf(h)) return null;
      return diverge(h.event === 'drop' ? 'drop' : 'consume', o);
    }
    const e = exp[i];
    if (e && sameSpot(h, e)) {
      // Inside a tunnel the same device may carry the packet to another node (the outer destination).
      if (e.outer && h.outer && !sameAddr(e.outer.dst, h.outer.dst)) return diverge('path', o);
      const natDiff = !e.guess && (!sameAddr(h.src, e.src) || !sameAddr(h.dst, e.dst) || h.dport !== e.dport || (h.sport !== e.sport && !sourcePortFree(exp, i)));
      if (natDiff) {
        return {
          index: i, observedIndex: o.i, expected: e, observed: h, kind: 'nat',
          summary: sameAddr(h.src, e.src) && sameAddr(h.dst, e.dst)
            ? `expected ${hostPort(e.src, e.sport)} → ${hostPort(e.dst, e.dport)} on ${e.ifname} in ${e.ns} (${e.event}), saw ${hostPort(h.src, h.sport)} → ${hostPort(h.dst, h.dport)}`
            : `expected ${e.src} → ${e.dst} on ${e.ifname} in ${e.ns} (${e.event}), saw ${h.src} → ${h.dst}`,
        };
      }
      i++;
      anchored = true;
      lastMatched = h;
      continue;
    }
    if (lastMatched && lastMatched.netns === h.netns && lastMatched.ifname === h.ifname && lastMatched.event === h.event && nodeOf(lastMatched) === nodeOf(h)) continue;
    const ahead = exp.findIndex((x, k) => k > i && sameSpot(h, x));
    if (ahead >= 0 && (anchored || i === 0)) {
      // Started mid-path, or some expected hops were not observed (lost events): follow on.
      i = ahead + 1;
      anchored = true;
      lastMatched = h;
      continue;
    }
    if (!predictable(h, known)) continue;
    return diverge('path', o);
  }
  const rest = exp.slice(i);
  if (rest.length === 0) return null;
  return diverge('missing', null);
}

/**
 * Compares against every way a statistic match lets the packet go (kube-proxy's endpoints):
 * the first way the observed hops follow becomes the path (takeAlternative), and only a packet
 * that follows none diverges (from the main way, as comparePaths says).
 */
export function compareWithAlternatives(
  observed: readonly Hop[],
  expected: ExpectedPath,
  opts: CompareOptions & { readonly topology?: Topology } = {},
): { readonly path: ExpectedPath; readonly divergence: Divergence | null } {
  const divergence = comparePaths(observed, expected, opts);
  if (!divergence || !expected.alternatives) return { path: expected, divergence };
  for (let k = 0; k < expected.alternatives.length; k++) {
    const alt = takeAlternative(expected, k);
    if (comparePaths(observed, alt, opts) === null) return { path: alt, divergence: null };
  }
  return { path: expected, divergence };
}

/** The flow to simulate for an observed packet: from its first hop, as sent or as received there. */
export function flowFromPacket(packet: Packet): Flow | null {
  // A packet dropped before it had a device (OUTPUT of its own namespace: a netfilter drop, a
  // localhost DNAT that may not leave lo) was sent there: its drop is where its path starts.
  const first = packet.hops.find((h) => h.event !== 'drop' && h.event !== 'consume') ?? (packet.hops[0]?.event === 'drop' && packet.hops[0].ifname === '' ? packet.hops[0] : undefined);
  if (!first) return null;
  const received = first.event === 'recv' || first.event === 'rx';
  // First seen inside a tunnel (on the underlay): the walk follows the outer packet from there.
  const tunnel = first.outer ? first.encap ?? packet.hops.find((h) => h.encap)?.encap ?? null : null;
  // A packet whose first hop already shows NAT was sent by a local socket and rewritten before
  // any device (shared/reconstruct.ts, HopEvent.sent): it starts from what the socket sent.
  const sent = !received && packet.hops[0] === first ? first.nat?.from : undefined;
  return {
    from: first.netns,
    src: sent?.src ?? first.src,
    dst: sent?.dst ?? first.dst,
    proto: packet.proto,
    sport: sent?.sport ?? first.sport,
    dport: sent?.dport ?? first.dport,
    iif: received ? first.ifname : null,
    ...(tunnel ? { tunnel: { ...tunnel, outer: first.outer ?? tunnel.outer } } : {}),
  };
}

export interface PacketExpectation {
  readonly expected: ExpectedPath | null;
  readonly divergence: Divergence | null;
}

/**
 * What `trace` attaches to a packet: its expected path and where it diverged. Null expected
 * when the model cannot place the packet (namespace or interface unknown to it).
 */
export function expectPacket(topology: Topology, packet: Packet): PacketExpectation {
  // A clone (bridge flood, packet socket copy) has no path of its own.
  if (packet.cloneOf !== null) return { expected: null, divergence: null };
  const flow = flowFromPacket(packet);
  if (!flow) return { expected: null, divergence: null };
  let expected: ExpectedPath;
  try {
    expected = simulatePath(topology, flow);
  } catch (e) {
    if (e instanceof FlowError) return { expected: null, divergence: null };
    throw e;
  }
  const r = compareWithAlternatives(packet.hops, expected, { dropReason: packet.drop?.reason ?? null, droppedBy: netfilterDrop(packet), discardReason: packet.discard?.reason ?? null, topology });
  return { expected: r.path, divergence: r.divergence };
}
