/**
 * The combined parse-and-push entries (probes/hop-line.ts pushHopLine, pushHopLines) give the
 * engine exactly what parse-then-push gives it: the same packets, in the same order, the same
 * stats, and every line that is not a well-formed hop (READY, Lost, notes, damaged hop lines)
 * handed on to be read as before — on captures, on the benchmark stream and on generated and
 * damaged lines, in both line forms.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { parseProbeLine, parseHopLineInto, pushHopLine, pushHopLines, toPackedLine, type ProbeLine } from '../../probes/hop-line.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import { HopStore } from '../../shared/hop-store.js';
import type { Packet } from '../../shared/packet.js';
import { hopLineBatches } from '../../bench/hop-lines.js';

const dirs = ['../../probes/fixtures/', '../../probes/notes/fixtures/'].map((d) => new URL(d, import.meta.url));
const captured = dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.txt')).flatMap((f) => readFileSync(new URL(f, d), 'utf8').split('\n')));

interface Outcome {
  readonly packets: Packet[];
  readonly stats: Reconstructor['stats'];
  /** What each non-hop line read as, in order. */
  readonly others: ProbeLine[];
}

/** The engine's output after the lines, drained every `every` lines as a reader would. */
function run(lines: readonly string[], feed: (r: Reconstructor, lines: readonly string[], other: (l: string) => void) => void, every = 7): Outcome {
  const r = new Reconstructor({ reorderWindowNs: 1000, idleNs: 1_000_000, maxGapNs: 1_000_000 });
  const packets: Packet[] = [];
  const others: ProbeLine[] = [];
  for (let i = 0; i < lines.length; i += every) {
    feed(r, lines.slice(i, i + every), (l) => others.push(parseProbeLine(l)));
    packets.push(...r.drain());
  }
  packets.push(...r.flush());
  return { packets, stats: { ...r.stats }, others };
}

/** A port as the probes print it (network order read as a little-endian u16). */
const swapPort = (p: number): number => ((p & 0xff) << 8) | (p >>> 8);

/** As before: a HopEvent per line, then push. */
const viaEvents = (r: Reconstructor, lines: readonly string[], other: (l: string) => void): void => {
  for (const l of lines) {
    if (l === '') continue;
    const p = parseProbeLine(l);
    if (p.type === 'hop') r.push(p.hop);
    else other(l);
  }
};
/** pushHopLine line by line, the rest read as before. */
const lineByLine = (r: Reconstructor, lines: readonly string[], other: (l: string) => void): void => {
  for (const l of lines) if (l !== '' && !pushHopLine(r, l)) other(l);
};
/** pushHopLines over the lines as one chunk of output (each ended by '\n'). */
const asChunk = (r: Reconstructor, lines: readonly string[], other: (l: string) => void): void => {
  const text = lines.map((l) => `${l}\n`).join('');
  pushHopLines(r, text, 0, text.length, other);
};
/** The same chunk with text around it that is not to be read, the last line without its '\n'. */
const asSlice = (r: Reconstructor, lines: readonly string[], other: (l: string) => void): void => {
  const body = lines.join('\n');
  const text = `P 1 2 3\nREADY\n${body}\nH 1 2`;
  const start = 'P 1 2 3\nREADY\n'.length;
  pushHopLines(r, text, start, start + body.length, other);
};

function expectSame(lines: readonly string[], every?: number): Outcome {
  const want = run(lines, viaEvents, every);
  for (const feed of [lineByLine, asChunk, asSlice]) expect(run(lines, feed, every)).toEqual(want);
  return want;
}

// Lines built from fields within what the probes print, in the long form and the packed one.
const int = (max: number): fc.Arbitrary<number> => fc.oneof(fc.integer({ min: 0, max }), fc.constant(max), fc.constant(0));
const hopLine = fc.record({
  bytes: fc.boolean(), packed: fc.boolean(), kind: fc.constantFrom(1, 2, 3, 4, 5), dt: int(3000), cpu: int(3),
  skb: fc.constantFrom('ffff888100000000', 'ffff888100000100', 'ffff8881', 'ffff888100001000'),
  netns: fc.constantFrom(4026531840, 4026532177, 0), ifindex: fc.constantFrom(0, 2, 3), fam: fc.constantFrom(4, 6), l4: fc.constantFrom(6, 17, 1, 58),
  len: int(65535), id: fc.constantFrom(0, 256, 512), v4: fc.constantFrom(184677386, 201454602, 16777226),
  v6: fc.constantFrom('0 1', '18446744073709551615 1', '2306124484190404608 1'), sp: fc.constantFrom(16527, 20480), dp: fc.constantFrom(34835, 20480),
  seq: int(2 ** 32 - 1), reason: fc.constantFrom(0, 2, 12),
  head: fc.integer({ min: 0, max: 3 }).chain((w) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: w * 8, maxLength: w * 8 })),
  ifname: fc.constantFrom('', 'eth0', 'veth-pod1', 'a-long-device-name0'),
});

type Item = { readonly hop: typeof hopLine extends fc.Arbitrary<infer H> ? H : never } | { readonly text: string };
const item: fc.Arbitrary<Item> = fc.oneof(
  { weight: 8, arbitrary: hopLine.map((hop) => ({ hop })) },
  { weight: 1, arbitrary: fc.constantFrom('READY', 'Lost 3 events', 'Attaching 4 probes...', 'N 1 2 3', 'P', 'PB', 'H ', 'HB x', '  ', 'something else').map((text) => ({ text })) },
);
const damage = fc.tuple(fc.nat(), fc.constantFrom('x', ' ', '', '9', 'f', '\\', '"', 'é'));

/** The line of a generated item at time `t`, damaged when `at` says so (a character changed, dropped or doubled). */
function lineOf(it: Item, t: number, [at, c]: [number, string]): string {
  if ('text' in it) return it.text;
  const h = it.hop;
  const addr = h.fam === 6 ? `${h.v6} ${h.v6}` : `${h.v4} 0 ${h.v4 + 1} 0`;
  const f = [h.bytes ? 'HB' : 'H', h.kind, t, h.cpu, h.skb, h.netns, h.ifindex, h.fam, h.l4, h.len, h.id, addr, h.sp, h.dp, 0, 0, 0, h.seq, h.reason];
  if (h.bytes) f.push(Array.from({ length: h.head.length / 8 }, (_, w) => h.head.slice(w * 8, w * 8 + 8).reverse().map((x) => x.toString(16).padStart(2, '0')).join('')).join(''));
  let line = `${f.join(' ')} ${h.ifname}`;
  if (h.packed) line = toPackedLine(line) ?? line;
  // One line in ten damaged.
  if (at % 10 !== 0) return line;
  const i = at % Math.max(1, line.length);
  return line.slice(0, i) + c + line.slice(i + (c === '' ? 1 : 0));
}

/** A stream: times increase (with jitter), so the engine builds real packets out of it. */
const stream = fc.array(fc.tuple(item, damage), { minLength: 1, maxLength: 60 }).map((items) => {
  let t = 1_000_000;
  return items.map(([it, d]) => {
    if ('hop' in it) t += it.hop.dt;
    return lineOf(it, t, d);
  });
});

describe('parse-and-push gives the engine what parse-then-push gives it', () => {
  it('on every captured line (both forms, notes, READY)', () => {
    expect(captured.length).toBeGreaterThan(500);
    const out = expectSame(captured);
    expect(out.packets.length).toBeGreaterThan(50);
    expect(out.others.some((o) => o.type === 'ready')).toBe(true);
    // The long-form captures as the probes print them now.
    expectSame(captured.map((l) => toPackedLine(l) ?? l));
  });

  it('on the benchmark stream (bridged and NATed lab traffic, two CPUs read in turns)', () => {
    const [lines = []] = hopLineBatches({ events: 30_000, gapNs: 6_700, batch: 30_000 });
    const r = run(lines, viaEvents, 512);
    for (const feed of [lineByLine, asChunk]) expect(run(lines, feed, 512)).toEqual(r);
    expect(r.packets.length).toBeGreaterThan(4000);
  });

  it('on generated and damaged lines, malformed ones handed on and counted as before', () => {
    let malformed = 0;
    let events = 0;
    let packets = 0;
    fc.assert(
      fc.property(stream, fc.integer({ min: 1, max: 20 }), (lines, every) => {
        const out = expectSame(lines, every);
        malformed += out.others.filter((o) => o.type === 'other' && /^[PH]B? /.test(o.text)).length;
        events += out.stats.events;
        packets += out.packets.length;
      }),
      { numRuns: 300 },
    );
    expect(malformed).toBeGreaterThan(50);
    expect(events).toBeGreaterThan(1000);
    expect(packets).toBeGreaterThan(100);
  });

  it('follows the same split and fate rules (issue 13, issue 19) on the direct path', () => {
    // 10.89.0.2:80 → 10.89.0.1:43000 (a web container's TCP reply taken in by the host), then the
    // next segment in the same skb from the container, whose free was not seen; then a pure ACK
    // the host took in and TCP freed (NOT_SPECIFIED, no device).
    const web = 4026532300;
    const host = 4026531840;
    const v4 = (a: string): number => a.split('.').reduce((n, b, i) => n + Number(b) * 256 ** i, 0);
    const line = (kind: number, t: number, skb: string, netns: number, ifname: string, reason = 0): string =>
      `H ${kind} ${t} 0 ${skb} ${netns} ${ifname ? 2 : 0} 4 6 52 0 ${v4('10.89.0.2')} 0 ${v4('10.89.0.1')} 0 ${swapPort(80)} ${swapPort(43000)} 0 0 16 1000 ${reason} ${ifname}`;
    const reply = (skb: string, t: number): string[] => [line(1, t, skb, web, 'eth0'), line(2, t + 10_000, skb, host, 'veth0'), line(3, t + 20_000, skb, host, 'podman1')];
    const lines = [...reply('ffff888100000100', 1_000_000), ...reply('ffff888100000100', 1_300_000), ...reply('ffff888100000200', 1_600_000), line(4, 1_650_000, 'ffff888100000200', 0, '', 2)];
    for (const packed of [false, true]) {
      const ls = packed ? lines.map((l) => toPackedLine(l) ?? l) : lines;
      for (const feed of [viaEvents, lineByLine, asChunk, asSlice]) {
        const r = new Reconstructor({ isLocal: (n, a) => n === host && a === '10.89.0.1', dropReason: (c) => (c === 2 ? 'NOT_SPECIFIED' : `reason-${c}`) });
        feed(r, ls, () => undefined);
        const packets = r.flush();
        expect(packets.map((p) => `${p.hops.length} ${p.fate} ${p.discard?.reason ?? '-'}`).sort()).toEqual(['3 delivered -', '3 delivered -', '4 delivered NOT_SPECIFIED']);
        expect(r.stats.splits).toBe(1);
      }
    }
  });

  it('leaves the store as it was when a line is not a hop', () => {
    const store = new HopStore(4);
    const good = toPackedLine('H 1 759150204701 1 ffff88810aec1d00 4026532246 2 4 17 15360 57024 184677386 0 201454602 0 16527 34835 0 0 0 0 0 eth0') ?? '';
    const s = parseHopLineInto(good, store);
    expect(s).toBeGreaterThanOrEqual(0);
    for (const bad of ['P', 'P 1 2', `${good.slice(0, 40)}x${good.slice(41)}`, 'READY']) {
      expect(parseHopLineInto(bad, store)).toBe(-1);
      expect(store.size).toBe(1);
    }
    // The next event takes the slot the failed lines gave back.
    const s2 = parseHopLineInto(good, store);
    expect(s2).toBe(s === 0 ? 1 : 0);
  });
});
