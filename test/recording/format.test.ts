import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  RecordingEncoder, RecordingDecoder, RecordingError, decodeRecording, preamble, frame, RecordType, PREAMBLE_LENGTH,
  type RecordingRecord,
} from '../../shared/recording/index.js';
import type { HopEvent } from '../../shared/hop-event.js';
import { syntheticEvents, syntheticHeader, NS_NAMES, START_MONO, START_WALL } from './synthetic.js';

function buildRecording(events: readonly HopEvent[], opts: { end?: boolean; indexEveryEvents?: number } = {}): Uint8Array {
  const enc = new RecordingEncoder(syntheticHeader(), { indexEveryEvents: opts.indexEveryEvents ?? 16 });
  enc.topology({ t: START_MONO, snapshot: true, namespaces: NS_NAMES.map(([netns, name]) => ({ netns, name })), model: { nodes: ['x'] }, removed: [] });
  events.forEach((ev, i) => {
    enc.event(ev);
    if (i === 5) enc.lostEvents(ev.t, 3);
    if (i === 7) enc.clock(ev.t + 1);
  });
  if (opts.end !== false) enc.end({ t: START_MONO + 9e9, wallNs: START_WALL + 9_000_000_000n, packets: 7, reason: 'duration' });
  return enc.take();
}

function eventsOf(records: readonly RecordingRecord[]): HopEvent[] {
  return records.flatMap((r) => (r.kind === 'event' ? [r.event] : []));
}

/** Decodes and returns what a reader gets, or the RecordingError. Anything else thrown fails the test. */
function tryDecode(bytes: Uint8Array, chunk = 0): { events: HopEvent[]; summary: ReturnType<RecordingDecoder['finish']> } | RecordingError {
  const dec = new RecordingDecoder();
  const records: RecordingRecord[] = [];
  const on = (r: RecordingRecord): void => { records.push(r); };
  try {
    if (chunk > 0) for (let i = 0; i < bytes.length; i += chunk) dec.push(bytes.subarray(i, i + chunk), on);
    else dec.push(bytes, on);
    return { events: eventsOf(records), summary: dec.finish(on) };
  } catch (err) {
    if (err instanceof RecordingError) return err;
    throw err;
  }
}

describe('recording format', () => {
  const events = syntheticEvents(40, 3);
  const bytes = buildRecording(events);

  it('should give back every record it was given, in order', () => {
    const { header, records, summary } = decodeRecording(bytes);
    expect(header).toEqual(syntheticHeader());
    expect(eventsOf(records)).toEqual(events);
    const topo = records.find((r) => r.kind === 'topology');
    expect(topo?.kind === 'topology' && topo.topology).toMatchObject({ snapshot: true, namespaces: NS_NAMES.map(([netns, name]) => ({ netns, name })), model: { nodes: ['x'] } });
    expect(records.filter((r) => r.kind === 'lost').map((r) => r.kind === 'lost' && r.lost)).toEqual([{ t: events[5]?.t, count: 3 }]);
    expect(records.filter((r) => r.kind === 'clock').map((r) => r.kind === 'clock' && r.clock)).toEqual([{ t: (events[7]?.t ?? 0) + 1 }]);
    const end = records.at(-1);
    expect(end?.kind === 'end' && end.end).toEqual({ t: START_MONO + 9e9, wallNs: START_WALL + 9_000_000_000n, events: events.length, lost: 3, packets: 7, reason: 'duration' });
    expect(summary).toMatchObject({ truncatedAt: null, goodEnd: bytes.length, ended: true, invalid: 0, unknown: 0, damage: { regions: 0, bytes: 0 } });
  });

  it('should place index records whose offsets point at themselves and whose times only grow', () => {
    const { records } = decodeRecording(bytes);
    const indexes = records.flatMap((r) => (r.kind === 'index' ? [r] : []));
    expect(indexes.length).toBeGreaterThanOrEqual(Math.floor(events.length / 16));
    let prevMax = 0;
    for (const r of indexes) {
      expect(r.index.offset).toBe(r.offset);
      expect(r.index.maxTBefore).toBeGreaterThanOrEqual(prevMax);
      prevMax = r.index.maxTBefore;
      const before = eventsOf(records.filter((x) => x.offset < r.offset));
      expect(r.index.eventsBefore).toBe(before.length);
      expect(r.index.maxTBefore).toBe(Math.max(0, ...before.map((e) => e.t)));
    }
  });

  it('should decode the same records whatever the chunk sizes', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 300 }), (chunk) => {
      const r = tryDecode(bytes, chunk);
      expect(r).not.toBeInstanceOf(RecordingError);
      if (!(r instanceof RecordingError)) expect(r.events).toEqual(events);
    }), { numRuns: 60 });
  });

  it('should recover every complete record of a file cut at any byte, more the later the cut', () => {
    const small = buildRecording(syntheticEvents(12, 5), { indexEveryEvents: 4 });
    const all = eventsOf(decodeRecording(small).records);
    const headerEnd = decodeRecording(small).records[1]?.offset ?? 0;
    let prev = 0;
    for (let cut = 0; cut <= small.length; cut++) {
      const r = tryDecode(small.subarray(0, cut));
      if (r instanceof RecordingError) {
        // Only a cut before the header is complete leaves nothing to replay.
        expect(cut).toBeLessThan(headerEnd);
        expect(r.code).toBe('truncated-header');
        continue;
      }
      expect(r.events.length).toBeGreaterThanOrEqual(prev);
      expect(r.events).toEqual(all.slice(0, r.events.length));
      expect(r.summary.damage.regions).toBe(0);
      // A cut inside a record is reported where that record starts; a cut on a boundary is not a truncation.
      if (r.summary.truncatedAt !== null) {
        expect(r.summary.truncatedAt).toBe(r.summary.goodEnd);
        expect(r.summary.truncatedAt).toBeLessThan(cut);
      } else {
        expect(r.summary.goodEnd).toBe(cut);
      }
      prev = r.events.length;
    }
    expect(prev).toBe(all.length);
  });

  it('should refuse a newer major version with a clear message', () => {
    const newer = bytes.slice();
    newer.set(preamble(2, 3), 0);
    const r = tryDecode(newer);
    expect(r).toBeInstanceOf(RecordingError);
    expect((r as RecordingError).code).toBe('newer-version');
    expect((r as RecordingError).message).toMatch(/format 2\.3.*upgrade/);
  });

  it('should read a newer minor version and skip record types it does not know', () => {
    // Put the unknown record on a record boundary, as a newer writer would.
    const boundary = decodeRecording(bytes).records[3]?.offset ?? 0;
    const newer = concat(preamble(1, 9), bytes.subarray(PREAMBLE_LENGTH, boundary), frame(42, Uint8Array.of(1, 2, 3)), bytes.subarray(boundary));
    const r = tryDecode(newer);
    expect(r).not.toBeInstanceOf(RecordingError);
    if (!(r instanceof RecordingError)) {
      expect(r.events).toEqual(events);
      expect(r.summary.unknown).toBe(1);
      expect(r.summary.damage.regions).toBe(0);
      expect(r.summary.preamble).toEqual({ major: 1, minor: 9 });
    }
  });

  it('should say a file is not a recording', () => {
    const r = tryDecode(new TextEncoder().encode('{"hello": "world"}\n'));
    expect(r).toBeInstanceOf(RecordingError);
    expect((r as RecordingError).code).toBe('not-a-recording');
  });

  it('should skip a damaged record in the middle, count it, and keep everything else', () => {
    const { records } = decodeRecording(bytes);
    const victim = records.filter((r) => r.kind === 'event')[10] as RecordingRecord;
    const damaged = bytes.slice();
    damaged[victim.offset + 12] = (damaged[victim.offset + 12] as number) ^ 0x55;
    const r = tryDecode(damaged);
    expect(r).not.toBeInstanceOf(RecordingError);
    if (!(r instanceof RecordingError)) {
      expect(r.events).toEqual(events.filter((_, i) => i !== 10));
      expect(r.summary.damage.regions).toBe(1);
      expect(r.summary.damage.firstOffset).toBe(victim.offset);
      expect(r.summary.truncatedAt).toBeNull();
    }
  });

  it('should resynchronise after garbage inserted between records and after a damaged length', () => {
    const { records } = decodeRecording(bytes);
    const at = records.filter((r) => r.kind === 'event')[20]?.offset ?? 0;
    const garbage = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 0xf7) & 0xff);
    const r = tryDecode(concat(bytes.subarray(0, at), garbage, bytes.subarray(at)));
    expect(r).not.toBeInstanceOf(RecordingError);
    if (!(r instanceof RecordingError)) {
      expect(r.events).toEqual(events);
      expect(r.summary.damage).toMatchObject({ regions: 1, bytes: 100, firstOffset: at });
    }
    // A length byte made huge (but allowed for the type) makes the record run past the end of the file.
    const lenDamaged = bytes.slice();
    const victim = records.filter((r) => r.kind === 'event')[30]?.offset ?? 0;
    lenDamaged[victim + 3] = 0xff;
    lenDamaged[victim + 4] = 0x1f;
    const r2 = tryDecode(lenDamaged, 97);
    expect(r2).not.toBeInstanceOf(RecordingError);
    if (!(r2 instanceof RecordingError)) {
      expect(r2.events).toEqual(events.filter((_, i) => i !== 30));
      expect(r2.summary.damage.regions).toBe(1);
      expect(r2.summary.truncatedAt).toBeNull();
    }
  });

  it('should throw nothing but RecordingError for random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), fc.integer({ min: 1, max: 64 }), (junk, withMagic, chunk) => {
      const input = withMagic ? concat(preamble(), junk) : junk;
      const r = tryDecode(input, chunk);
      if (r instanceof RecordingError) expect(['not-a-recording', 'newer-version', 'truncated-header', 'bad-header']).toContain(r.code);
    }), { numRuns: 400 });
  });

  it('should throw nothing but RecordingError for damaged recordings, and recover only true events', () => {
    const key = (e: HopEvent): string => JSON.stringify(Object.entries(e).sort(([a], [b]) => a.localeCompare(b)));
    const original = new Set(events.map(key));
    const edit = fc.oneof(
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 200 }) }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 200 }) }),
      fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 400 }) }),
    );
    fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 300 }), (edits, chunk) => {
      let b: Uint8Array = bytes;
      for (const e of edits) {
        const at = e.at % (b.length + 1);
        if (e.op === 'flip') { b = b.slice(); if (at < b.length) b[at] = (b[at] as number) ^ e.value; }
        else if (e.op === 'delete') b = concat(b.subarray(0, at), b.subarray(at + e.n));
        else if (e.op === 'insert') b = concat(b.subarray(0, at), e.data, b.subarray(at));
        else b = concat(b.subarray(0, at + e.n), b.subarray(at));
      }
      const r = tryDecode(b, chunk);
      if (r instanceof RecordingError) return;
      // The CRC lets no altered event through: whatever comes out was recorded.
      for (const ev of r.events) expect(original.has(key(ev))).toBe(true);
    }), { numRuns: 400 });
  });

  it('should frame with the documented layout', () => {
    const f = frame(RecordType.lost, Uint8Array.of(8, 1));
    expect([...f.subarray(0, 4)]).toEqual([0xf7, 0xb3, RecordType.lost, 2]);
    expect(f.length).toBe(2 + 1 + 1 + 4 + 2);
    expect([...f.subarray(8)]).toEqual([8, 1]);
  });
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
