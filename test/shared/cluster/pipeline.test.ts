/**
 * The hub's pipeline on event time (issue 17, hub-outage): each node's reconstruction moves on
 * the clock its agent vouches for in every hop batch (heartbeats while quiet), not on the hub's
 * wall clock, and stitching waits for each live node's watermark — so a node whose batches come
 * seconds late (its agent reconnecting after a bus outage) still has its pieces joined.
 */
import { describe, expect, it } from 'vitest';
import type { HopEvent, HopKind } from '../../../shared/hop-event.js';
import { ClusterPipeline } from '../../../shared/cluster/pipeline.js';
import type { ClusterPacket } from '../../../shared/cluster/stitch.js';

function ev(kind: HopKind, t: number, skb: string, netns: number, ifname: string): HopEvent {
  return {
    kind, t, cpu: 0, skb, netns, ifindex: 2, ifname, family: 4, proto: 17, len: 40, ipId: 4242,
    src: '10.9.1.10', dst: '10.9.2.10', sport: 5000, dport: 6000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
}

/** node1's part (pod → its node → out the underlay) and node2's (underlay → its node → pod), one packet, 100 µs apart. */
function pieces(t: number): { node1: HopEvent[]; node2: HopEvent[] } {
  return {
    node1: [ev('xmit', t, 'a', 11, 'eth0'), ev('rx', t + 1000, 'a', 12, 'vp0'), ev('xmit', t + 3000, 'a', 12, 'ul0'), ev('consume', t + 4000, 'a', 12, '')],
    node2: [ev('rx', t + 100_000, 'b', 21, 'ul0'), ev('xmit', t + 102_000, 'b', 21, 'vp0'), ev('rx', t + 103_000, 'b', 22, 'eth0'), ev('consume', t + 104_000, 'b', 22, '')],
  };
}

/** Ticks every 250 ms of hub wall clock from `from` to `to`, collecting what comes out. */
function run(p: ClusterPipeline, from: number, to: number, out: ClusterPacket[], live?: (n: string) => boolean): void {
  for (let ms = from; ms <= to; ms += 250) out.push(...p.tick(ms, live));
}

const T = 50e9;
/** The hub's wall clock at the start (ms; 0 is "never" to the pipeline). */
const W = 1_700_000_000_000;

describe('ClusterPipeline on event time', () => {
  it('should join the pieces of a node whose batches arrive 5 s after the other\'s (an agent reconnecting late)', () => {
    const p = new ClusterPipeline();
    const out: ClusterPacket[] = [];
    // Both agents current before the outage: heartbeats.
    p.batch('node1', { events: [], seq: 0, lostKernel: 0, clockNs: T - 1e9 }, W + 0);
    p.batch('node2', { events: [], seq: 0, lostKernel: 0, clockNs: T - 1e9 }, W + 0);
    run(p, W + 0, W + 1000, out);
    const { node1, node2 } = pieces(T);
    // node1's outbox comes first, with its heartbeats after it...
    p.batch('node1', { events: node1, seq: 1, lostKernel: 0, clockNs: T + 5000 }, W + 1000);
    p.batch('node1', { events: [], seq: 1, lostKernel: 0, clockNs: T + 2e9 }, W + 1000);
    run(p, W + 1000, W + 6000, out);
    expect(out).toEqual([]);
    // ...node2's 5 s later.
    p.batch('node2', { events: node2, seq: 1, lostKernel: 0, clockNs: T + 105_000 }, W + 6000);
    p.batch('node2', { events: [], seq: 1, lostKernel: 0, clockNs: T + 3e9 }, W + 6000);
    run(p, W + 6000, W + 9000, out);
    expect(out.map((x) => x.nodes)).toEqual([['node1', 'node2']]);
    expect(out[0]!.hops).toHaveLength(8);
    // Heartbeats are not batches, and repeat the sequence number: no gap.
    expect([...p.nodes.values()].map((n) => [n.name, n.batches, n.heartbeats, n.gaps])).toEqual([['node1', 1, 2, 0], ['node2', 1, 2, 0]]);
  });

  it('should not run a node\'s reconstruction ahead of what it vouched for, and give a current stream out without delay', () => {
    const p = new ClusterPipeline();
    const out: ClusterPacket[] = [];
    const { node1 } = pieces(T);
    // Without its consume, node1's packet ends only when idle (1 s of node clock past its last hop).
    p.batch('node1', { events: node1.slice(0, 3), seq: 1, lostKernel: 0, clockNs: T + 3000 }, W + 0);
    p.batch('node2', { events: [], seq: 0, lostKernel: 0, clockNs: T + 3000 }, W + 0);
    run(p, W + 0, W + 10_000, out);
    // 10 s of wall clock and no word from node1's clock: still live.
    expect(out).toEqual([]);
    // Heartbeats from both: node1 vouches 1.5 s on, node2 too; the piece comes out at holdMs (2 s).
    p.batch('node1', { events: [], seq: 1, lostKernel: 0, clockNs: T + 1.5e9 }, W + 10_000);
    p.batch('node2', { events: [], seq: 0, lostKernel: 0, clockNs: T + 1.5e9 }, W + 10_000);
    run(p, W + 10_000, W + 11_999, out);
    expect(out).toEqual([]);
    run(p, W + 12_000, W + 12_000, out);
    expect(out.map((x) => x.nodes)).toEqual([['node1']]);
  });

  it('should extrapolate a node that is not live, and not wait for it', () => {
    const p = new ClusterPipeline();
    const out: ClusterPacket[] = [];
    const { node1 } = pieces(T);
    p.batch('node1', { events: node1.slice(0, 3), seq: 1, lostKernel: 0, clockNs: T + 3000 }, W + 0);
    p.batch('node2', { events: [], seq: 0, lostKernel: 0, clockNs: T - 5e9 }, W + 0);
    // node1 killed (the hub marked it lost): its live packet ends on the hub's clock; node2 is current.
    run(p, W + 0, W + 4000, out, (n) => n !== 'node1');
    expect(out).toEqual([]);
    p.batch('node2', { events: [], seq: 0, lostKernel: 0, clockNs: T + 5e9 }, W + 4000);
    run(p, W + 4000, W + 4000, out, (n) => n !== 'node1');
    expect(out.map((x) => x.nodes)).toEqual([['node1']]);
  });

  it('should still extrapolate batches without a clock (older agents) as before', () => {
    const p = new ClusterPipeline();
    const out: ClusterPacket[] = [];
    const { node1 } = pieces(T);
    p.batch('node1', { events: node1.slice(0, 3), seq: 1, lostKernel: 0 }, W + 0);
    run(p, W + 0, W + 1000, out);
    expect(out).toEqual([]);
    // Idle 1 s (node clock, extrapolated with the hub's) + the hold.
    run(p, W + 1000, W + 3500, out);
    expect(out.map((x) => x.nodes)).toEqual([['node1']]);
  });
});
