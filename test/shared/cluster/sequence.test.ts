/**
 * A node's hop-batch sequence at the hub (issue 17): gaps counted once when batches come late,
 * out of order or twice (JetStream redelivery after a hub restart, an outage), copies skipped,
 * a restarted agent's new sequence told from copies.
 */
import { describe, expect, it } from 'vitest';
import type { HopEvent } from '../../../shared/hop-event.js';
import { BatchSequence } from '../../../shared/cluster/sequence.js';
import { ClusterPipeline } from '../../../shared/cluster/pipeline.js';
import { messageEpoch, batchMessageId } from '../../../shared/cluster/subjects.js';

/** Takes hop batches seq (fingerprint = seq × 1000) in order; returns the verdicts. */
function takeAll(s: BatchSequence, seqs: number[]): string[] {
  return seqs.map((q) => s.take(q, false, q * 1000).verdict);
}

describe('BatchSequence', () => {
  it('should count the batches between two as missing once, and no more when they come late', () => {
    const s = new BatchSequence();
    expect(takeAll(s, [1, 2, 5])).toEqual(['next', 'next', 'next']);
    expect(s.missing).toBe(2);
    // 3 comes late (after 5): it is no longer missing; then 6 follows 5 with nothing between.
    expect(s.take(3, false, 3000)).toEqual({ verdict: 'late', gaps: -1 });
    expect(s.take(6, false, 6000)).toEqual({ verdict: 'next', gaps: 0 });
    expect(s.missing).toBe(1);
    // The old arithmetic (seq − last − 1) counted 4 and 5 again after 3: 2 + 2.
    expect(s.take(4, false, 4000)).toEqual({ verdict: 'late', gaps: -1 });
    expect(s.missing).toBe(0);
  });

  it('should skip a redelivered copy and count nothing for it', () => {
    const s = new BatchSequence();
    takeAll(s, [1, 2, 3]);
    expect(s.take(2, false, 2000)).toEqual({ verdict: 'duplicate', gaps: 0 });
    expect(s.take(3, false, 3000)).toEqual({ verdict: 'duplicate', gaps: 0 });
    expect(s.take(4, false, 4000)).toEqual({ verdict: 'next', gaps: 0 });
    expect(s.missing).toBe(0);
  });

  it('should not count the batches the agent said it dropped, and count the rest', () => {
    const s = new BatchSequence();
    takeAll(s, [1]);
    // 2..9 not here; the agent says it dropped 3 of them (2, 3, 4): 5..9 are gaps.
    expect(s.take(10, false, 10_000, 3)).toEqual({ verdict: 'next', gaps: 5 });
    expect(s.take(7, false, 7000)).toEqual({ verdict: 'late', gaps: -1 });
    expect(s.missing).toBe(4);
  });

  it('should count the batch a heartbeat names as missing until it comes', () => {
    const s = new BatchSequence();
    takeAll(s, [1]);
    // Heartbeat: the last batch made was 3 → 2 and 3 missing.
    expect(s.take(3, true, 99).gaps).toBe(2);
    expect(s.take(3, true, 100).gaps).toBe(0);
    expect(s.take(3, false, 3000)).toEqual({ verdict: 'late', gaps: -1 });
    expect(s.take(4, false, 4000)).toEqual({ verdict: 'next', gaps: 0 });
    expect(s.missing).toBe(1);
  });

  it('should take a late batch from before the first one heard (a hub restarted mid-stream) without a gap', () => {
    const s = new BatchSequence();
    expect(takeAll(s, [10, 8, 9, 11])).toEqual(['next', 'late', 'late', 'next']);
    expect(s.missing).toBe(0);
    expect(s.take(8, false, 8000).verdict).toBe('duplicate');
  });

  it('should start again on a batch numbered as one taken but with other contents (an agent restarted, no epoch)', () => {
    const s = new BatchSequence();
    takeAll(s, [1, 2, 3, 4]);
    expect(s.take(1, false, 777).verdict).toBe('restart');
    expect(s.take(2, false, 778).verdict).toBe('next');
    expect(s.take(4, false, 779).gaps).toBe(1);
  });

  it('should split a missing range when a batch in its middle comes', () => {
    const s = new BatchSequence();
    takeAll(s, [1, 100]);
    expect(s.missing).toBe(98);
    for (const q of [50, 2, 99, 51]) expect(s.take(q, false, q * 1000).gaps).toBe(-1);
    expect(s.missing).toBe(94);
    expect(s.take(50, false, 50_000).verdict).toBe('duplicate');
  });
});

function ev(t: number, skb: string): HopEvent {
  return {
    kind: 'xmit', t, cpu: 0, skb, netns: 11, ifindex: 2, ifname: 'eth0', family: 4, proto: 17, len: 40, ipId: 1,
    src: '10.9.1.10', dst: '10.9.2.10', sport: 5000, dport: 6000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
}

describe('ClusterPipeline.batch and late or repeated batches', () => {
  it('should count gaps once and events once when batches come out of order and again', () => {
    const p = new ClusterPipeline();
    const b = (seq: number): { events: HopEvent[]; seq: number; lostKernel: number; clockNs: number } => ({ events: [ev(seq * 1e6, `s${seq}`)], seq, lostKernel: seq === 3 ? 2 : 0, clockNs: seq * 1e6 });
    for (const seq of [1, 2, 5, 3, 6, 3, 5, 4]) p.batch('node1', b(seq), 1000 + seq);
    const n = p.nodes.get('node1')!;
    expect(n.gaps).toBe(0);
    expect(n.duplicates).toBe(2);
    expect(n.batches).toBe(6);
    expect(n.events).toBe(6);
    // The copy of 3 did not count its lost events again.
    expect(n.lost).toBe(2);
  });

  it('should keep an agent run\'s sequence apart from the next run\'s (epochs), late batches of the old run included', () => {
    const p = new ClusterPipeline();
    const b = (seq: number, t: number): { events: HopEvent[]; seq: number; lostKernel: number; clockNs: number } => ({ events: [ev(t, `k${t}`)], seq, lostKernel: 0, clockNs: t });
    p.batch('node1', b(1, 1e6), 1, 0, 'run1');
    p.batch('node1', b(3, 3e6), 2, 0, 'run1');
    // The agent restarts: its batches are numbered from 1 again.
    expect(p.batch('node1', b(1, 9e6), 3, 0, 'run2').verdict).toBe('next');
    expect(p.batch('node1', b(2, 10e6), 4, 0, 'run2').verdict).toBe('next');
    // The old run's 2 comes late: fills its gap; not a copy of run2's 2.
    expect(p.batch('node1', b(2, 2e6), 5, 0, 'run1')).toMatchObject({ verdict: 'late', gaps: -1 });
    const n = p.nodes.get('node1')!;
    expect([n.gaps, n.duplicates, n.events]).toEqual([0, 0, 5]);
  });
});

describe('ClusterPipeline.depth and redelivered depth batches', () => {
  it('should take a depth batch once: a copy adds no note twice', () => {
    const p = new ClusterPipeline();
    const note = { kind: 'fib' as const, t: 5e6, cpu: 0, skb: 'a', netns: 11, data: { table: 254 } };
    expect(p.depth('node1', { notes: [note], netfilter: [], seq: 1 }, 1, 'run1')).not.toBeNull();
    expect(p.depth('node1', { notes: [note], netfilter: [], seq: 1 }, 2, 'run1')).toBeNull();
    // The next agent run numbers from 1 again: not a copy.
    expect(p.depth('node1', { notes: [{ ...note, t: 9e6 }], netfilter: [], seq: 1 }, 3, 'run2')).not.toBeNull();
    const n = p.nodes.get('node1')!;
    expect([n.notes, n.duplicates]).toEqual([2, 1]);
  });
});

describe('message epochs', () => {
  it('should read the agent run back from a batch message id, and nothing from anything else', () => {
    expect(messageEpoch(batchMessageId('node-1', 'hub', 'lz3k9a1', '42'))).toBe('lz3k9a1');
    expect(messageEpoch(batchMessageId('node-1', 'abc123', 'lz3k9a1', 'h7'))).toBe('lz3k9a1');
    expect(messageEpoch(undefined)).toBe('');
    expect(messageEpoch('foreign')).toBe('');
    expect(messageEpoch('a.b.C D.e')).toBe('');
  });
});
