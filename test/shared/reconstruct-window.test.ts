/**
 * The reorder window when the reader falls behind (issue 15): late events widen it, within its
 * bound, and it narrows again; a periodic tick moves the engine's clock only while nothing arrives.
 */
import { describe, it, expect } from 'vitest';
import { Reconstructor } from '../../shared/reconstruct.js';
import type { HopEvent } from '../../shared/hop-event.js';

const POD1 = 101;
const NODE = 102;
const POD2 = 103;
const MS = 1_000_000;

/**
 * pod1 → pod2 over the bridge, 6 hops in 120 µs: the first three on `cpuA` (the sender's), the
 * last three on `cpuB` (the receiver's), as when the second veth's backlog runs on the other CPU.
 */
function packet(n: number, t0: number, cpuA: number, cpuB: number): HopEvent[] {
  const base = {
    skb: `ffff${n.toString(16)}`, ifindex: 2, family: 4 as const, proto: 17, len: 60, ipId: n & 0xffff,
    src: '10.244.1.11', dst: '10.244.1.12', sport: 40000, dport: 5000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
  const hop = (dt: number, kind: HopEvent['kind'], netns: number, ifname: string, cpu: number): HopEvent => ({ ...base, kind, t: t0 + dt, netns, ifname, cpu });
  return [
    hop(0, 'xmit', POD1, 'eth0', cpuA), hop(30_000, 'rx', NODE, 'veth-pod1', cpuA), hop(45_000, 'recv', NODE, 'veth-pod1', cpuA),
    hop(100_000, 'xmit', NODE, 'veth-pod2', cpuB), hop(110_000, 'rx', POD2, 'eth0', cpuB), hop(120_000, 'recv', POD2, 'eth0', cpuB),
  ];
}

/**
 * `count` packets 1 ms apart from `t0`, delivered the way a perf buffer drained behind the
 * others delivers them: all of CPU 1's events of the stretch, then all of CPU 0's (which holds
 * their first hops), `lagMs` behind.
 */
function backlog(first: number, count: number, t0: number): HopEvent[] {
  const all = Array.from({ length: count }, (_, i) => packet(first + i, t0 + i * MS, 0, 1)).flat();
  return [...all.filter((e) => e.cpu === 1), ...all.filter((e) => e.cpu === 0)];
}

const whole = (hops: number) => hops === 6;

describe('reorder window', () => {
  it('widens after a backlog came late, so the next one keeps its packets whole, and stays within its bound', () => {
    const r = new Reconstructor({ reorderWindowNs: 50 * MS, maxReorderWindowNs: 2000 * MS, idleNs: 100 * MS });
    // 300 ms of CPU 1 before CPU 0's: its first events are 300 ms behind the newest.
    for (const e of backlog(1, 300, 1000 * MS)) r.push(e);
    const late1 = r.stats.late;
    expect(late1).toBeGreaterThan(0);
    expect(r.stats.windowNs).toBeGreaterThanOrEqual(2 * 250 * MS);
    expect(r.stats.windowNs).toBeLessThanOrEqual(2000 * MS);
    // The same lag again: nothing is late now, and every packet is whole.
    for (const e of backlog(1001, 300, 2000 * MS)) r.push(e);
    expect(r.stats.late).toBe(late1);
    const second = r.flush().filter((p) => (p.hops[0]?.t ?? 0) >= 2000 * MS);
    expect(second).toHaveLength(300);
    expect(second.every((p) => whole(p.hops.length))).toBe(true);
    expect(second.every((p) => p.hops.map((h) => h.t).every((t, i, a) => i === 0 || (a[i - 1] as number) <= t))).toBe(true);
  });

  it('without widening (a fixed window) the same backlog splits its packets: what the test above guards', () => {
    const r = new Reconstructor({ reorderWindowNs: 50 * MS, maxReorderWindowNs: 50 * MS, idleNs: 100 * MS });
    for (const e of backlog(1, 300, 1000 * MS)) r.push(e);
    for (const e of backlog(1001, 300, 2000 * MS)) r.push(e);
    const second = r.flush().filter((p) => (p.hops[0]?.t ?? 0) >= 2000 * MS);
    expect(second.length).toBeGreaterThan(300);
    expect(second.filter((p) => whole(p.hops.length)).length).toBeLessThan(300);
    expect(r.stats.windowNs).toBe(50 * MS);
  });

  it('is bounded: a lag beyond maxReorderWindowNs is counted late, the window stops at its bound', () => {
    const r = new Reconstructor({ reorderWindowNs: 10 * MS, maxReorderWindowNs: 100 * MS });
    for (const e of backlog(1, 500, 1000 * MS)) r.push(e);
    expect(r.stats.windowNs).toBe(100 * MS);
    expect(r.stats.widestWindowNs).toBe(100 * MS);
    for (const e of backlog(1001, 500, 2000 * MS)) r.push(e);
    expect(r.stats.late).toBeGreaterThan(0);
    expect(r.stats.windowNs).toBe(100 * MS);
  });

  it('narrows by half after 30 s of event time without a late event, down to reorderWindowNs', () => {
    const r = new Reconstructor({ reorderWindowNs: 50 * MS, maxReorderWindowNs: 2000 * MS, idleNs: 100 * MS });
    for (const e of backlog(1, 400, 1000 * MS)) r.push(e);
    const wide = r.stats.windowNs;
    expect(wide).toBeGreaterThan(50 * MS);
    // In-order traffic for 2 minutes of event time, one packet every 100 ms.
    for (let i = 0; i < 1200; i++) for (const e of packet(5000 + i, 2000 * MS + i * 100 * MS, 0, 0)) r.push(e);
    expect(r.stats.windowNs).toBeLessThan(wide);
    expect(r.stats.windowNs).toBeGreaterThanOrEqual(50 * MS);
    expect(r.stats.widestWindowNs).toBe(wide);
  });
});

describe('idleClock: the engine clock at a periodic tick', () => {
  it('is the newest event time while events arrive, whatever the wall clock says', () => {
    const r = new Reconstructor();
    for (const e of packet(1, 1000 * MS, 0, 0)) r.push(e);
    // The reader is 5 s behind: the wall clock is far ahead of the events.
    expect(r.idleClock(6000 * MS)).toBe(1000 * MS + 120_000);
    for (const e of packet(2, 1001 * MS, 0, 0)) r.push(e);
    expect(r.idleClock(6100 * MS)).toBe(1001 * MS + 120_000);
  });

  it('moves with the wall clock once a tick saw nothing new, not counting the time before that tick', () => {
    const r = new Reconstructor();
    expect(r.idleClock(5 * MS)).toBe(0);
    for (const e of packet(1, 1000 * MS, 0, 0)) r.push(e);
    const newest = 1000 * MS + 120_000;
    expect(r.idleClock(1000 * MS)).toBe(newest);
    // The process was stopped for 2 s: the first quiet tick only marks the start of the quiet.
    expect(r.idleClock(3000 * MS)).toBe(newest);
    expect(r.idleClock(3100 * MS)).toBe(newest + 100 * MS);
    expect(r.idleClock(4300 * MS)).toBe(newest + 1300 * MS);
    // Events again: back on their clock.
    for (const e of packet(2, 2400 * MS, 0, 0)) r.push(e);
    expect(r.idleClock(4400 * MS)).toBe(2400 * MS + 120_000);
    // Events older than where the quiet had taken it (a stalled pipe): the clock never goes back.
    for (const e of packet(3, 2500 * MS, 0, 0)) r.push(e);
    expect(r.idleClock(4500 * MS)).toBe(2500 * MS + 120_000);
    expect(r.idleClock(4600 * MS)).toBe(2500 * MS + 120_000);
    expect(r.idleClock(5000 * MS)).toBe(2500 * MS + 120_000 + 400 * MS);
    for (const e of packet(4, 2600 * MS, 0, 0)) r.push(e);
    expect(r.idleClock(5100 * MS)).toBe(2500 * MS + 120_000 + 400 * MS);
  });

  it('keeps packets whole when the reader was stopped mid-stream and its backlog arrives after a tick', () => {
    const run = (clock: (r: Reconstructor, wall: number) => number): { whole: number; late: number } => {
      const r = new Reconstructor({ idleNs: 1000 * MS });
      let wall = 0;
      const out = [];
      // 3 s of packets 1 ms apart, read as they come for the first second; then the reader
      // stops for 1.5 s, and a tick runs before the backlog (1 s … 3 s) is read.
      for (let i = 0; i < 3000; i++) {
        const t = 1000 * MS + i * MS;
        for (const e of packet(i + 1, t, 0, 0)) r.push(e);
        if (i < 1000) wall = t + 200_000;
        if (i % 100 === 99 || i === 1000) {
          if (i === 1000) wall += 1500 * MS;
          r.advance(clock(r, wall));
          out.push(...r.drain());
        }
      }
      out.push(...r.flush());
      return { whole: out.filter((p) => whole(p.hops.length)).length, late: r.stats.late };
    };
    expect(run((r, wall) => r.idleClock(wall))).toEqual({ whole: 3000, late: 0 });
    // On the wall clock (what trace did), the backlog arrives behind the released time.
    expect(run((_r, wall) => wall).late).toBeGreaterThan(0);
  });
});
