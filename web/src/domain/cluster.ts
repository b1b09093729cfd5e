/**
 * Hub mode (`hoptrace serve --hub`): what GET /api/cluster and the /cluster socket.io namespace
 * say about the cluster, checked, and put in the words the dashboard shows. Pure.
 */
import type { Packet } from '../../../shared/packet.js';
import { formatDuration } from './format.js';

export interface ClusterEnd { readonly node: string; readonly ns: string; readonly ifname: string; readonly addr: string }

export interface ClusterView {
  readonly session: { readonly filter: string };
  readonly nodes: readonly {
    readonly name: string;
    readonly state: 'up' | 'lost' | 'silent';
    readonly namespaces: readonly { readonly netns: number; readonly name: string; readonly node: string }[];
    readonly events: number;
    readonly lost: number;
    /** Batches missing in the node's sequence (a slow hub's, past the stream's retention); absent from older hubs. */
    readonly gaps?: number;
    /** Batches the node's agent dropped from its bus outbox (the bus was away too long); absent from older hubs. */
    readonly agentDropped?: number;
  }[];
  readonly links: readonly { readonly kind: 'underlay' | 'tunnel'; readonly from: ClusterEnd; readonly to: ClusterEnd }[];
  readonly clockOffsets: readonly { readonly node: string; readonly offsetNs: number; readonly samples: number; readonly method: string }[];
  readonly packets: number;
  /**
   * This page's part of the followed session's stream: stitched packets the hub dropped because
   * this page did not keep up (server/service/cluster-channel.ts); absent from older hubs.
   */
  readonly stream?: { readonly session: string; readonly droppedPackets: number; readonly droppedLots: number; readonly queuedPackets: number };
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

export function isClusterView(x: unknown): x is ClusterView {
  return isObj(x) && Array.isArray(x.nodes) && Array.isArray(x.links) && Array.isArray(x.clockOffsets)
    && x.nodes.every((n) => isObj(n) && typeof n.name === 'string' && typeof n.state === 'string' && Array.isArray(n.namespaces));
}

/** Stitched packets as the hub sends them: packets whose hops carry `node`. */
export function isClusterPackets(x: unknown): x is Packet[] {
  return Array.isArray(x) && x.every((p) => isObj(p) && typeof p.id === 'string' && Array.isArray(p.hops));
}

/** One node as the status bar shows it. */
export interface NodeStatus {
  readonly name: string;
  readonly state: 'up' | 'lost' | 'silent';
  /** "+2.00 s", "reference", "unknown" — this node's clock against the reference node's. */
  readonly offset: string;
  /** What of this node's traffic never reached the hub, in words ("agent dropped 12 batches"); '' when nothing. */
  readonly loss: string;
  readonly title: string;
}

/** Signed, readable offset: "+2.00 s", "−350 µs", "0". */
export function formatOffset(ns: number): string {
  if (ns === 0) return '0';
  return `${ns > 0 ? '+' : '−'}${formatDuration(Math.abs(ns))}`;
}

export function nodeStatuses(view: ClusterView): NodeStatus[] {
  const offsets = new Map(view.clockOffsets.map((o) => [o.node, o]));
  return view.nodes.map((n) => {
    const o = offsets.get(n.name);
    const offset = !o || o.method === 'unknown' ? 'offset unknown' : o.method === 'reference' ? 'reference clock' : `clock ${formatOffset(o.offsetNs)}`;
    const how = !o ? 'no packet crossed to or from it yet'
      : o.method === 'reference' ? 'the other nodes\' clocks are given against this one'
        : o.method === 'two-way' ? `from ${o.samples} packets both ways (wire time cancels)`
          : o.method === 'one-way' ? `from ${o.samples} packets one way (includes the wire time)` : 'no packet crossed to or from it yet';
    const state = n.state === 'lost' ? 'LOST: its agent does not answer the hub' : n.state === 'silent' ? 'silent for a minute' : 'up';
    const dropped = n.agentDropped ?? 0;
    const gaps = n.gaps ?? 0;
    const loss = [
      dropped > 0 ? `agent dropped ${dropped} batch${dropped === 1 ? '' : 'es'}` : '',
      gaps > 0 ? `${gaps} batch${gaps === 1 ? '' : 'es'} missed` : '',
    ].filter(Boolean).join(' · ');
    const lossWhy = [
      dropped > 0 ? `its agent dropped ${dropped} hop batches (oldest first) because the bus was away longer than its outbox holds` : '',
      gaps > 0 ? `${gaps} batches left the stream's retention before the hub read them (a slow hub)` : '',
    ].filter(Boolean).join('; ');
    return { name: n.name, state: n.state, offset, loss, title: `${n.name}: ${state}; ${n.namespaces.length} namespaces, ${n.events} events, ${n.lost} lost; ${offset} (${how})${lossWhy ? `; ${lossWhy}` : ''}` };
  });
}

/** A short key that changes when nodes or their namespaces do: the cluster topology is worth re-reading. */
export function namespacesKey(view: ClusterView): string {
  return view.nodes.map((n) => `${n.name}:${n.namespaces.map((s) => s.netns).sort().join(',')}`).join(';');
}
