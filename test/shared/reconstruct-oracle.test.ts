/**
 * The fast reconstruction engine (struct of arrays, hashed clone keys) must give exactly what the
 * straightforward one gave: same packets, same order, same drains, same stats. The old engine is
 * kept as an oracle in test/shared/reference/reconstruct.ts; random streams here are built to hit
 * the rules that matter — reused skb addresses, NAT, clones, frees without a device, late and
 * reordered CPUs, idle expiry, notes, captured bytes, filters.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Reconstructor, reconstructAll, packetId } from '../../shared/reconstruct.js';
import { Reconstructor as ReferenceReconstructor, reconstructAll as referenceAll } from './reference/reconstruct.js';
import type { ReconstructOptions } from '../../shared/reconstruct.js';
import type { HopEvent, HopKind, HopNote } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { parseProbeLine } from '../../probes/hop-line.js';
import { hopLineBatches } from '../../bench/hop-lines.js';

const KINDS: HopKind[] = ['xmit', 'rx', 'recv', 'drop', 'consume'];

interface Step {
  readonly dt: number;
  readonly jitter: number;
  readonly skb: number;
  readonly kind: number;
  readonly cpu: number;
  readonly netns: number;
  /** Which of a few flows the packet belongs to: equal headers across skbs (clones) are common. */
  readonly flow: number;
  /** 0 as sent, 1 source rewritten, 2 destination rewritten, 3 both, 4 the reply direction. */
  readonly nat: number;
  /** Now and then a field of the flow differs (another IP id, length, sequence). */
  readonly tweak: number;
  readonly head: boolean;
  /** What the driver does after pushing: 0 nothing, 1 drain, 2 advance, 3 a note for this skb. */
  readonly after: number;
}

const FLOWS = [
  { v6: false, proto: 17, ipId: 1, src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 5000, len: 60, seq: 0 },
  { v6: false, proto: 6, ipId: 2, src: '10.0.0.1', dst: '192.168.1.1', sport: 40001, dport: 80, len: 60, seq: 7 },
  { v6: true, proto: 17, ipId: 0, src: 'fd00::1', dst: 'fd00::2', sport: 40000, dport: 5000, len: 84, seq: 0 },
  { v6: false, proto: 1, ipId: 3, src: '10.0.0.2', dst: '10.99.0.2', sport: 0, dport: 0, len: 84, seq: 0 },
];

const step = fc.record<Step>({
  dt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 }), fc.integer({ min: 1, max: 2_000_000 })),
  jitter: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 100_000 })),
  skb: fc.integer({ min: 0, max: 4 }),
  kind: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 4 })),
  cpu: fc.integer({ min: 0, max: 2 }),
  netns: fc.oneof(fc.constantFrom(101, 102), fc.constantFrom(0, 101, 102, 103)),
  flow: fc.integer({ min: 0, max: FLOWS.length - 1 }),
  nat: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 })),
  tweak: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })),
  head: fc.boolean(),
  after: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })),
});

interface Opts {
  readonly reorderWindowNs: number;
  readonly idleNs: number;
  readonly maxGapNs: number;
  readonly cloneWindowNs: number;
  readonly filter: number;
  readonly local: boolean;
  readonly peers: boolean;
}

const options = fc.record<Opts>({
  reorderWindowNs: fc.constantFrom(0, 2_000, 50_000, 50_000_000),
  idleNs: fc.constantFrom(100_000, 3_000_000, 1_000_000_000),
  maxGapNs: fc.constantFrom(50_000, 1_000_000_000),
  cloneWindowNs: fc.constantFrom(10_000, 1_000_000),
  filter: fc.integer({ min: 0, max: 2 }),
  local: fc.boolean(),
  peers: fc.boolean(),
});

function events(steps: readonly Step[]): Array<{ ev: HopEvent; arrival: number; after: number }> {
  let t = 1_000_000_000;
  return steps.map((s, i) => {
    t += s.dt;
    const f = FLOWS[s.flow] ?? FLOWS[0];
    if (!f) throw new Error('no flows');
    const natSrc = s.nat === 1 || s.nat === 3 ? (f.v6 ? 'fd00::99' : '172.16.0.1') : f.src;
    const natDst = s.nat === 2 || s.nat === 3 ? (f.v6 ? 'fd00::98' : '10.244.0.9') : f.dst;
    const reply = s.nat === 4;
    const ev: HopEvent = {
      kind: KINDS[s.kind] ?? 'xmit', t, cpu: s.cpu, skb: `ffff${s.skb}`, netns: s.netns, ifindex: s.netns === 0 ? 0 : 2 + s.skb,
      ifname: s.netns === 0 ? '' : `veth${s.skb}`, family: f.v6 ? 6 : 4, proto: f.proto, len: f.len + (s.tweak === 1 ? 4 : 0),
      ipId: f.ipId + (s.tweak === 2 ? 1 : 0),
      src: reply ? natDst : natSrc, dst: reply ? natSrc : natDst, sport: reply ? f.dport : f.sport, dport: reply ? f.sport : f.dport,
      icmpType: f.proto === 1 ? 8 : 0, icmpId: f.proto === 1 ? 99 : 0, tcpFlags: f.proto === 6 ? 2 : 0, tcpSeq: f.seq + (s.tweak === 3 ? 1 : 0),
      reason: s.kind === 3 ? 2 + s.skb : 0,
      ...(s.head ? { head: new Uint8Array([0x45, i & 0xff, s.skb]) } : {}),
    };
    // Per-CPU order is kept by the probes; across CPUs, arrival drifts (and sometimes more than the window).
    return { ev, arrival: t + s.cpu * s.jitter + i * 1e-3, after: s.after };
  });
}

type Engine = Pick<Reconstructor, 'push' | 'pushNote' | 'drain' | 'advance' | 'flush' | 'liveCount'> & { readonly stats: object };

/** Drives an engine over the stream and records everything it says, as JSON. */
function drive(make: (o: ReconstructOptions) => Engine, steps: readonly Step[], o: Opts): string {
  const opts: ReconstructOptions = {
    // The reference engine's window is fixed: widening by late events (reconstruct.test.ts) is off.
    reorderWindowNs: o.reorderWindowNs, maxReorderWindowNs: o.reorderWindowNs, idleNs: o.idleNs, maxGapNs: o.maxGapNs, cloneWindowNs: o.cloneWindowNs,
    nsName: (n) => (n === 103 ? null : `ns${n}`),
    // Some reasons read as a socket's discard after delivery (shared/fate.ts), the rest as drops.
    dropReason: (c) => (['NOT_SPECIFIED', 'QUEUE_PURGE', 'TCP_OLD_DATA'][c - 2] ?? `R${c}`),
    ...(o.local ? { isLocal: (n: number, a: string) => n === 102 && a.endsWith('2') } : {}),
    // veth1 in 101 leads to 102 and back; veth2 in 102 to 103; other devices are not veths.
    ...(o.peers ? { peerNetns: (n: number, ifname: string) => (ifname === 'veth1' ? (n === 101 ? 102 : 101) : ifname === 'veth2' && n === 102 ? 103 : null) } : {}),
    ...(o.filter === 1 ? { accept: (p: Packet) => p.hops.length % 3 !== 0 } : o.filter === 2 ? { accept: (p: Packet) => p.src !== '10.0.0.2' } : {}),
  };
  const r = make(opts);
  const said: unknown[] = [];
  const evs = events(steps);
  const ordered = [...evs].sort((a, b) => a.arrival - b.arrival);
  for (const { ev, after } of ordered) {
    r.push(ev);
    if (after === 1) said.push(r.drain());
    else if (after === 2) {
      r.advance(ev.t + 2_000_000);
      said.push(r.liveCount, r.drain());
    } else if (after === 3) {
      const note: HopNote = { kind: 'fib', t: ev.t + 5, cpu: ev.cpu, skb: ev.skb, netns: ev.netns, data: { table: 254, err: 0 } };
      r.pushNote(note);
    }
  }
  const stats: Record<string, unknown> = { ...r.stats };
  delete stats.windowNs;
  delete stats.widestWindowNs;
  said.push(r.flush(), stats, r.liveCount);
  return JSON.stringify(said, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v));
}

describe('reconstruction matches the reference engine', () => {
  it('on random streams: reused addresses, NAT, clones, frees, reordering, expiry, notes, filters', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 120 }), options, (steps, o) => {
        const fast = drive((opts) => new Reconstructor(opts), steps, o);
        const reference = drive((opts) => new ReferenceReconstructor(opts), steps, o);
        expect(fast).toBe(reference);
      }),
      { numRuns: 400 },
    );
  });

  it('on the benchmark stream (bridged and NATed lab traffic, two CPUs read in turns)', () => {
    const hops: HopEvent[] = [];
    for (const batch of hopLineBatches({ events: 60_000, gapNs: 3_000, batch: 20_000 })) {
      for (const line of batch) {
        const p = parseProbeLine(line);
        if (p.type === 'hop') hops.push(p.hop);
      }
    }
    const fast = reconstructAll(hops, { reorderWindowNs: 200_000, maxReorderWindowNs: 200_000 });
    const reference = referenceAll(hops, { reorderWindowNs: 200_000 });
    expect(fast.length).toBeGreaterThan(8_000);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(reference));
  });

  it('spells packet ids as before for any time', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.maxSafeNat(), fc.double({ min: 0, max: 2 ** 60, noNaN: true })), (t) => {
        expect(packetId({ t, skb: 'ab' } as HopEvent)).toBe(`${t.toString(36)}-ab`);
      }),
    );
  });
});
