/**
 * The fast hop line parser (probes/hop-line.ts) reads every line exactly as the parser before the
 * speed work did (kept in test/probes/reference/hop-line.ts): real captures, generated lines with
 * any field values, and damaged lines. Its caches must never hand out a stale string.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { parseProbeLine, toPackedLine } from '../../probes/hop-line.js';
import { parseProbeLine as referenceParse } from './reference/hop-line.js';

const dirs = ['../../probes/fixtures/', '../../probes/notes/fixtures/'].map((d) => new URL(d, import.meta.url));
// The reference knows the long form only: packed captures are held to it through toPackedLine below.
const captured = dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.txt')).flatMap((f) => readFileSync(new URL(f, d), 'utf8').split('\n')))
  .filter((l) => !l.startsWith('P '));

const dec = (max: number): fc.Arbitrary<string> => fc.oneof(fc.integer({ min: 0, max }).map(String), fc.constantFrom('0', '65535', '4294967295'));
const u64 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String), fc.constantFrom('0', '18446744073709551615', '18446744073709551616', '1'));
const skb = fc.oneof(
  fc.constantFrom('ffff888100000000', 'ffff888100000100', 'ffff8881', '0', 'ffff888100000000ff', 'ffff888100001000'),
  fc.bigInt({ min: 0n, max: (1n << 72n) - 1n }).map((v) => v.toString(16)),
);
const ifname = fc.constantFrom('', 'eth0', 'veth-pod1', 'br0', 'a-long-device-name0', 'eth1');

const line = fc.record({
  bytes: fc.boolean(),
  kind: fc.constantFrom('1', '2', '3', '4', '5', '0', '7'),
  t: dec(2 ** 53),
  cpu: dec(64),
  skb,
  netns: fc.constantFrom('4026531840', '4026532177', '0', '1'),
  ifindex: fc.constantFrom('0', '2', '3', '4097'),
  fam: fc.constantFrom('4', '6', '0'),
  l4: fc.constantFrom('6', '17', '1', '58', '300'),
  rest: fc.array(dec(2 ** 32), { minLength: 11, maxLength: 11 }),
  v4: fc.array(dec(2 ** 32 + 5), { minLength: 4, maxLength: 4 }),
  v6: fc.array(u64, { minLength: 4, maxLength: 4 }),
  head: fc.integer({ min: 0, max: 7 }).chain((w) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: w * 8, maxLength: w * 8 })),
  ifname,
}).map((r) => {
  const addr = r.fam === '6' ? r.v6 : r.v4;
  const [len = '0', id = '0', ...ports] = r.rest;
  const fields = [r.bytes ? 'HB' : 'H', r.kind, r.t, r.cpu, r.skb, r.netns, r.ifindex, r.fam, r.l4, len, id, ...addr, ...ports.slice(0, 7)];
  // Captured bytes as the probes print them: 64-bit words, each word's first byte last.
  if (r.bytes) fields.push(Array.from({ length: r.head.length / 8 }, (_, w) => r.head.slice(w * 8, w * 8 + 8).reverse().map((b) => b.toString(16).padStart(2, '0')).join('')).join(''));
  return `${fields.join(' ')} ${r.ifname}`;
});

/** A line with one character changed, dropped or doubled. */
const damaged = fc.tuple(line, fc.nat(), fc.constantFrom('x', ' ', '', '9', 'f', '\\')).map(([l, at, c]) => {
  const i = at % Math.max(1, l.length);
  return l.slice(0, i) + c + l.slice(i + (c === '' ? 1 : 0));
});

describe('hop line parser matches the reference parser', () => {
  it('on every captured line', () => {
    expect(captured.length).toBeGreaterThan(100);
    for (const l of captured) expect(parseProbeLine(l)).toEqual(referenceParse(l));
  });

  it('on generated and damaged lines, one after another (the caches see them all)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(line, damaged), { minLength: 1, maxLength: 40 }), (lines) => {
        for (const l of lines) expect(parseProbeLine(l)).toEqual(referenceParse(l));
      }),
      { numRuns: 500 },
    );
  });

  it('reads the packed form of any line as the reference reads its long form', () => {
    // Fields within what the probes print (the long form does not bound every one of them).
    const int = (max: number): fc.Arbitrary<string> => fc.oneof(fc.integer({ min: 0, max }).map(String), fc.constant(String(max)), fc.constant('0'));
    const valid = fc.record({
      bytes: fc.boolean(), kind: fc.constantFrom('1', '2', '3', '4', '5'), t: int(2 ** 53 - 1), cpu: int(65535), skb,
      netns: int(2 ** 32 - 1), ifindex: int(2 ** 32 - 1), fam: fc.constantFrom('4', '6'), l4: int(255), len: int(65535), id: int(65535),
      v4: fc.array(int(2 ** 32 - 1), { minLength: 2, maxLength: 2 }), v6: fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String), { minLength: 4, maxLength: 4 }),
      sp: int(65535), dp: int(65535), it: int(255), iid: int(65535), fl: int(255), seq: int(2 ** 32 - 1),
      // A core reason (below 4096: 130 on Linux 6.18), or a subsystem's (SKB_DROP_REASON_SUBSYS_*: subsystem << 16 | code).
      reason: fc.oneof(int(0xfff), fc.tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 0xfff })).map(([s, c]) => String(s * 65536 + c))),
      head: fc.integer({ min: 0, max: 7 }).chain((w) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: w * 8, maxLength: w * 8 })),
      ifname,
    }).map((r) => {
      const [a = '0', b = '0'] = r.v4;
      const addr = r.fam === '6' ? r.v6 : [a, '0', b, '0'];
      const f = [r.bytes ? 'HB' : 'H', r.kind, r.t, r.cpu, r.skb, r.netns, r.ifindex, r.fam, r.l4, r.len, r.id, ...addr, r.sp, r.dp, r.it, r.iid, r.fl, r.seq, r.reason];
      if (r.bytes) f.push(Array.from({ length: r.head.length / 8 }, (_, w) => r.head.slice(w * 8, w * 8 + 8).reverse().map((x) => x.toString(16).padStart(2, '0')).join('')).join(''));
      return `${f.join(' ')} ${r.ifname}`;
    });
    let hops = 0;
    fc.assert(
      fc.property(fc.array(valid, { minLength: 1, maxLength: 40 }), (lines) => {
        for (const l of lines) {
          const want = referenceParse(l);
          if (want.type === 'hop') hops++;
          expect(parseProbeLine(toPackedLine(l) ?? '')).toEqual(want);
        }
      }),
      { numRuns: 300 },
    );
    // Most generated lines are hops (skb addresses over 16 digits are not).
    expect(hops).toBeGreaterThan(1000);
  });

  it('never mixes up values that share a cache entry (more addresses than the caches hold)', () => {
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) {
      // Same length everywhere; skb addresses longer than 16 digits that agree in their last 16.
      const hi = String(1_000_000_000_000 + i * 7919);
      const lo = String(2_000_000_000_000 + ((i * 104729) % 999_983));
      const skbText = `${(i % 9) + 1}${'0'.repeat(15 - String(i % 4096).length)}${i % 4096}ab`;
      lines.push(`H 1 ${i} 0 ${skbText} 4026532177 ${i % 3000} 6 17 15360 0 ${hi} ${lo} ${lo} ${hi} 16527 34835 0 0 0 0 0 dev${i % 3000}`);
      lines.push(`H 1 ${i} 0 ${skbText.slice(2, -2)}cd 4026532177 2 4 17 15360 ${i % 65536} ${i * 65537} 0 ${i * 31} 0 16527 34835 0 0 0 0 0 eth0`);
    }
    for (const l of [...lines, ...lines.reverse()]) expect(parseProbeLine(l)).toEqual(referenceParse(l));
  });

  it('gives the same string for a recurring address or device, and the right one after a rename', () => {
    const a = 'H 1 100 0 ffff888100000000 4026532177 2 4 17 15360 57024 184677386 0 201454602 0 16527 34835 0 0 0 0 0 eth0';
    const p1 = parseProbeLine(a);
    const p2 = parseProbeLine(a);
    const renamed = parseProbeLine(a.replace(/eth0$/, 'eth9'));
    if (p1.type !== 'hop' || p2.type !== 'hop' || renamed.type !== 'hop') throw new Error('not hop lines');
    expect(p2.hop.skb).toBe(p1.hop.skb);
    expect(p2.hop.ifname).toBe('eth0');
    expect(renamed.hop.ifname).toBe('eth9');
  });
});
