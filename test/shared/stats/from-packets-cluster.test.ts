/**
 * The stats document of packets stitched across nodes (a hub's latency view): places carry their
 * node; a segment within a node is timed by that node's own clock (`tNode`), exactly; the segment
 * crossing nodes runs from the hop the packet left its node by (not a free after it) to the one
 * it entered the next by, on the stitched (reference) clock, marked as an estimate, never negative.
 * One-host packets keep the document as it was (no `node`, no `clock`).
 */
import { describe, expect, it } from 'vitest';
import { statsFromPackets } from '../../../shared/stats/from-packets.js';
import { mergeStatsDocuments, segmentId } from '../../../shared/stats/compare.js';
import type { Hop, Packet } from '../../../shared/packet.js';
import type { HopKind } from '../../../shared/hop-event.js';

const hop = (node: string | null, event: HopKind, t: number, tNode: number, netns: number, ns: string, ifindex: number, ifname: string): Hop => ({
  t, event, netns, ns, ifindex, ifname, src: '10.9.1.10', dst: '10.9.2.10', sport: 1, dport: 2, cpu: 0, len: 60, ipId: 1,
  tcpFlags: 0, tcpSeq: 0, icmpType: 0, icmpId: 0, nat: null, ...(node ? { node, tNode } : {}),
}) as Hop;

const packet = (hops: Hop[]): Packet => ({
  id: `${hops[0]!.t}-x`, proto: 'udp', family: 4, src: '10.9.1.10', dst: '10.9.2.10', sport: 1, dport: 2, fate: 'delivered', fateBy: 'consume', drop: null, hops,
}) as unknown as Packet;

// node2's own clock is 2 s ahead; the stitched `t` has a 30 µs crossing by the hub's estimate.
const SKEW = 2_000_000_000;
const stitched = (): Packet => packet([
  hop('node1', 'xmit', 1_000, 1_000, 11, 'pod', 2, 'eth0'),
  hop('node1', 'recv', 11_000, 11_000, 12, 'host', 5, 'veth1'),
  hop('node1', 'xmit', 31_000, 31_000, 12, 'host', 3, 'under0'),
  hop('node1', 'consume', 90_000, 90_000, 12, 'host', 0, ''),
  hop('node2', 'recv', 61_000, 61_000 + SKEW, 12, 'host', 3, 'under0'),
  hop('node2', 'recv', 76_000, 76_000 + SKEW + 1, 21, 'pod', 2, 'eth0'),
]);

describe('stats of stitched packets', () => {
  it('names each place\'s node, times a node\'s segments by its own clock and marks the crossing as an estimate', () => {
    const doc = statsFromPackets([stitched(), stitched()]);
    const by = new Map(doc.segments.map((s) => [segmentId(s), s]));
    // Two nodes both have a namespace `host` with inode 12: kept apart by node.
    const cross = by.get('node1:host/under0/xmit>node2:host/under0/recv');
    expect(cross).toMatchObject({ clock: 'estimate', count: 2, max_ns: 30_000 });
    expect(by.get('node1:pod/eth0/xmit>node1:host/veth1/recv')).toMatchObject({ clock: 'node', max_ns: 10_000 });
    // node2's own clock: 15 µs + 1 ns, not the stitched 15 µs.
    expect(by.get('node2:host/under0/recv>node2:pod/eth0/recv')).toMatchObject({ clock: 'node', max_ns: 15_001 });
    // The driver's consume after the leaving xmit stays on node1.
    expect(by.get('node1:host/under0/xmit>node1:host/under0/consume')).toMatchObject({ clock: 'node' });
    expect([...by.keys()].some((k) => k.includes('consume>node2'))).toBe(false);
    // node1's host: entered from its pod, left to node2 (20 µs by node1's clock); node2's host likewise, by node2's.
    expect(doc.transit.map((t) => [`${t.node}:${t.ns}`, t.max_ns]).sort()).toEqual([['node1:host', 20_000], ['node2:host', 0]]);
    expect(doc.interfaces.filter((i) => i.ifname === 'under0').map((i) => i.node).sort()).toEqual(['node1', 'node2']);
    // Merging windows keeps the nodes apart too.
    expect(mergeStatsDocuments([doc, doc])!.segments.find((s) => s.clock === 'estimate')?.count).toBe(4);
  });

  it('counts a crossing the estimate puts before the leaving hop as 0, not negative', () => {
    const p = stitched();
    const hops = [...p.hops];
    hops[4] = { ...hops[4]!, t: 20_000 };
    const doc = statsFromPackets([{ ...p, hops }]);
    expect(doc.segments.find((s) => s.clock === 'estimate')).toMatchObject({ max_ns: 0, count: 1 });
  });

  it('leaves a one-host packet\'s document as it was: no node, no clock', () => {
    const doc = statsFromPackets([packet([hop(null, 'xmit', 0, 0, 11, 'pod', 2, 'eth0'), hop(null, 'recv', 5_000, 0, 12, 'host', 5, 'veth1')])]);
    expect(doc.segments).toHaveLength(1);
    expect(doc.segments[0]).not.toHaveProperty('clock');
    expect(doc.segments[0]!.from).not.toHaveProperty('node');
    expect(segmentId(doc.segments[0]!)).toBe('pod/eth0/xmit>host/veth1/recv');
  });
});
