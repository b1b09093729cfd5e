import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { generateWireCode } from '../../scripts/gen-wire.js';
import { decodeBatch, decodeHop, encodeBatch, encodeHop, WireError, type HopBatch } from '../../shared/wire.js';
import { HOP_KINDS, type HopEvent } from '../../shared/hop-event.js';
import { bytesToAddress } from '../../shared/filter/address.js';

const repo = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));

describe('generated wire code', () => {
  it('should match shared/wire.proto (run `npm run gen:wire` after editing the .proto)', async () => {
    const code = await generateWireCode();
    expect(readFileSync(repo('shared/wire-generated.js'), 'utf8')).toBe(code.js);
    expect(readFileSync(repo('shared/wire-generated.d.ts'), 'utf8')).toBe(code.dts);
  });

  it('should encode and decode without generating code from strings (a CSP without unsafe-eval)', () => {
    // --disallow-code-generation-from-strings makes eval and new Function() throw, as the
    // dashboard's Content-Security-Policy does; protobufjs reflection fails under it.
    const stdout = execFileSync(
      process.execPath,
      ['--disallow-code-generation-from-strings', '--import', 'tsx', repo('test/shared/wire-no-eval.fixture.ts')],
      { cwd: repo('.'), encoding: 'utf8', timeout: 30_000 },
    );
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out.codegen).toBe('blocked');
    expect(out.batch).toMatchObject({ seq: 7, lostKernel: 3, events: [{ kind: 'drop', src: 'fd00:250::1', dst: 'fd00:250::2', t: 5_000_000_123 }] });
    expect(out.hop).toMatchObject({ ifname: 'veth-pod1', icmpType: 128, reason: 2 });
    expect(out.header).toMatchObject({ startWallNs: '1764000000123456789n', dropReasons: [[2, 'NOT_SPECIFIED']], probes: ['skb:kfree_skb'] });
    expect(out.topology).toMatchObject({ snapshot: true, namespaces: [{ netns: 4026532001, name: 'pod1' }], model: { a: 1 }, removed: [4] });
    expect(out.end).toMatchObject({ wallNs: '1764000001000000000n', packets: 12, reason: 'duration' });
    expect(out.index).toEqual({ maxTBefore: 4, eventsBefore: 5, lostBefore: 6, topologyOffset: 7, offset: 8 });
    expect(out.lost).toEqual({ t: 2, count: 3 });
    expect(out.clock).toEqual({ t: 13 });
    expect(out.depth).toMatchObject({ seq: 5, notes: [{ kind: 'fib', t: 1_000_000_000_001, data: { oif: 3, dst: '10.250.0.2' } }] });
  });
});

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => bytesToAddress([...b]));
const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => bytesToAddress([...b]));

/** Hop events as the probes produce them: canonical address text of the event's family. */
const skbArb = fc.stringMatching(/^[0-9a-f]{1,16}$/);
const hopOf = (family: HopEvent['family'], addr: fc.Arbitrary<string>): fc.Arbitrary<HopEvent> => fc.record({
  kind: fc.constantFrom(...HOP_KINDS), t: fc.maxSafeNat(), cpu: fc.nat({ max: 1023 }),
  skb: skbArb, netns: u32, ifindex: u32, ifname: fc.string({ maxLength: 15 }),
  family: fc.constant(family), proto: fc.nat({ max: 255 }), len: u16, ipId: u16,
  src: addr, dst: addr, sport: u16, dport: u16, icmpType: fc.nat({ max: 255 }), icmpId: u16,
  tcpFlags: fc.nat({ max: 255 }), tcpSeq: u32, reason: fc.nat({ max: 200 }),
});
const hopArb = fc.oneof(hopOf(4, v4), hopOf(6, v6), hopOf(0, fc.constant('')));

describe('hop codec', () => {
  it('should round-trip any hop event, alone and in batches', () => {
    fc.assert(fc.property(hopArb, (ev) => {
      expect(decodeHop(encodeHop(ev))).toEqual(ev);
    }), { numRuns: 200 });
    fc.assert(fc.property(fc.array(hopArb, { maxLength: 20 }), fc.maxSafeNat(), u32, (events, seq, lostKernel) => {
      const batch: HopBatch = { events, seq, lostKernel };
      expect(decodeBatch(encodeBatch(batch))).toEqual(batch);
    }), { numRuns: 60 });
  });

  it('should carry captured header bytes when a hop has them, and none otherwise', () => {
    const ev: HopEvent = {
      kind: 'xmit', t: 5, cpu: 1, skb: 'ab', netns: 3, ifindex: 2, ifname: 'eth0', family: 4, proto: 17, len: 28, ipId: 9,
      src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
      head: Uint8Array.from([0x45, 0, 0, 28, 0, 9, 0x40, 0, 64, 17]),
    };
    const back = decodeHop(encodeHop(ev));
    expect(Array.from(back.head ?? [])).toEqual(Array.from(ev.head ?? []));
    const { head: _head, ...bare } = ev;
    expect('head' in decodeHop(encodeHop(bare))).toBe(false);
  });

  it('should decode every address right past the address cache size, whatever the buffer reuse', () => {
    // More distinct addresses than the cache holds (it clears when full), each decoded twice, and
    // each batch decoded from a view into one reused buffer: a cache entry must never keep a view.
    const base: HopEvent = {
      kind: 'xmit', t: 1, cpu: 0, skb: '1', netns: 1, ifindex: 1, ifname: 'eth0', family: 6, proto: 17, len: 60, ipId: 0,
      src: '', dst: '', sport: 1, dport: 2, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
    };
    const events: HopEvent[] = [];
    for (let i = 0; i < 5000; i++) {
      const v6 = i % 2 === 0;
      const src = v6 ? `fd00:${(i + 1).toString(16)}::${(i * 7 + 1).toString(16)}` : `${200 + (i % 50)}.250.${(i >> 8) & 255}.${i & 255}`;
      const dst = v6 ? `fd00::${(i + 2).toString(16)}:1` : `10.250.${i & 255}.${(i >> 8) & 255}`;
      events.push({ ...base, family: v6 ? 6 : 4, src, dst });
    }
    const shared = new Uint8Array(1 << 20);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < events.length; i += 100) {
        const batch = { events: events.slice(i, i + 100), seq: i, lostKernel: 0 };
        const bytes = encodeBatch(batch);
        shared.fill(0xee);
        shared.set(bytes, 7);
        expect(decodeBatch(shared.subarray(7, 7 + bytes.length))).toEqual(batch);
      }
    }
  });

  it('should throw WireError for bytes that are not a hop event or batch', () => {
    expect(() => decodeHop(Uint8Array.of(0x0a, 0xff))).toThrow(WireError); // field 1 as bytes, truncated
    expect(() => decodeBatch(Uint8Array.of(0x0a, 0x05, 0x08))).toThrow(WireError); // event cut short
    expect(() => decodeHop(Uint8Array.of(0x08, 0x09))).toThrow(/unknown hop kind 9/);
    expect(() => decodeHop(Uint8Array.of(0x40, 0x05))).toThrow(/unknown family 5/);
  });
});
