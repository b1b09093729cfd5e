import { afterAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import type { HopEvent } from '../../shared/hop-event.js';
import { decodeRecording, RecordingError } from '../../shared/recording/index.js';
import { RecordingFile } from '../../server/recording/index.js';
import { buildRecording, tempDir } from './fixtures.js';
import { syntheticEvents, NS, START_MONO } from './synthetic.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function eventsFrom(file: RecordingFile, offset: number): Promise<HopEvent[]> {
  const out: HopEvent[] = [];
  for await (const batch of file.stream(offset, 64 * 1024)) for (const r of batch) if (r.kind === 'event') out.push(r.event);
  return out;
}

describe('RecordingFile', () => {
  // ~2.5 MB: large enough that seeking bisects rather than scanning.
  const events = syntheticEvents(4000, 11, 250_000);
  const built = buildRecording(events, {
    indexEveryEvents: 200,
    lost: [[100, 5], [20000, 7]],
    topologyChanges: [[5000, 4026532999, 'late-ns'], [12000, NS.node, 'node-renamed']],
  });
  const path = tmp.file('big.hoptrace', built.bytes);

  it('should read the header and the totals from the tail', async () => {
    const file = await RecordingFile.open(path);
    try {
      expect(file.header.host).toBe('testhost');
      expect(file.size).toBe(built.bytes.length);
      const tail = await file.tail();
      expect(tail.events).toBe(events.length);
      expect(tail.lost).toBe(12);
      expect(tail.maxT).toBe(Math.max(...events.map((e) => e.t)));
      expect(tail.end?.reason).toBe('duration');
      expect(tail.truncatedAt).toBeNull();
    } finally {
      await file.close();
    }
  });

  it('should collect namespace names from every topology record, including those after the last index', async () => {
    const file = await RecordingFile.open(path);
    try {
      const names = await file.namespaceNames();
      expect(Object.fromEntries(names)).toEqual(Object.fromEntries(built.names));
      expect(names.get(NS.node)).toBe('node-renamed');
      expect(names.get(4026532999)).toBe('late-ns');
    } finally {
      await file.close();
    }
    // A recorder that died leaves no closing index: changes after the last index count too.
    const unfinished = buildRecording(events, { indexEveryEvents: 200, end: false, topologyChanges: [[events.length - 3, 4026533000, 'after-last-index']] });
    const file2 = await RecordingFile.open(tmp.file('unfinished.hoptrace', unfinished.bytes));
    try {
      expect((await file2.tail()).end).toBeNull();
      const names = await file2.namespaceNames();
      expect(names.get(4026533000)).toBe('after-last-index');
      expect(Object.fromEntries(names)).toEqual(Object.fromEntries(unfinished.names));
    } finally {
      await file2.close();
    }
  });

  it('should seek to the same place as a linear scan of the index, reading a fraction of the file', async () => {
    const file = await RecordingFile.open(path);
    try {
      const { records } = decodeRecording(built.bytes);
      const eventRecords = records.flatMap((r) => (r.kind === 'event' ? [r] : []));
      const indexes = records.flatMap((r) => (r.kind === 'index' ? [r.index] : []));
      // The answer by linear scan: the last index before which every event is earlier than t.
      const linear = (t: number): number => indexes.filter((i) => i.maxTBefore < t).reduce((best, i) => Math.max(best, i.offset), file.headerEnd);
      const tMin = Math.min(...events.map((e) => e.t));
      const tMax = Math.max(...events.map((e) => e.t));
      const read = vi.spyOn(file, 'readInto');
      const probes = [START_MONO, tMin, tMin + 1, tMax, tMax + 1, (tMin + tMax) / 2, ...events.filter((_, i) => i % 997 === 0).map((e) => e.t)];
      await fc.assert(fc.asyncProperty(fc.oneof(fc.constantFrom(...probes), fc.integer({ min: tMin - 1e6, max: tMax + 1e6 })), async (t) => {
        read.mockClear();
        const offset = await file.seek(t);
        const bytesRead = read.mock.calls.reduce((n, c) => n + Math.min(c[0].length, file.size - c[1]), 0);
        expect(bytesRead).toBeLessThan(file.size / 4);
        expect(offset).toBe(linear(t));
        // Nothing at or after t lies before the offset.
        expect(eventRecords.filter((r) => r.offset < offset && r.event.t >= t)).toEqual([]);
      }), { numRuns: 200 });
      // And reading from there gives exactly the linear scan's events.
      const all = await eventsFrom(file, file.headerEnd);
      expect(all).toEqual(events);
      for (const t of [tMin + (tMax - tMin) / 3, tMax - 1e6]) {
        const fromSeek = (await eventsFrom(file, await file.seek(t))).filter((e) => e.t >= t);
        expect(fromSeek).toEqual(all.filter((e) => e.t >= t));
      }
    } finally {
      await file.close();
    }
  });

  it('should still seek correctly when index records are damaged', async () => {
    const damaged = built.bytes.slice();
    const { records } = decodeRecording(built.bytes);
    const indexes = records.filter((r) => r.kind === 'index');
    indexes.forEach((r, i) => {
      if (i % 3 === 0) damaged[r.offset + 8] = (damaged[r.offset + 8] as number) ^ 0xff;
    });
    const file = await RecordingFile.open(tmp.file('damaged-index.hoptrace', damaged));
    try {
      const tMin = events[0]?.t ?? 0;
      for (const frac of [0.1, 0.33, 0.5, 0.77, 0.99]) {
        const t = tMin + frac * ((events.at(-1)?.t ?? 0) - tMin);
        const got = (await eventsFrom(file, await file.seek(t))).filter((e) => e.t >= t);
        expect(got).toEqual(events.filter((e) => e.t >= t));
      }
    } finally {
      await file.close();
    }
  });

  it('should report a file cut in the middle of a record, with totals up to the cut', async () => {
    const { records } = decodeRecording(built.bytes);
    const victim = records.filter((r) => r.kind === 'event')[events.length - 300];
    if (!victim) throw new Error('fixture too small');
    const cut = victim.offset + 5;
    const file = await RecordingFile.open(tmp.file('cut.hoptrace', built.bytes.subarray(0, cut)));
    try {
      const tail = await file.tail();
      expect(tail.truncatedAt).toBe(victim.offset);
      expect(tail.end).toBeNull();
      expect(tail.events).toBe(events.length - 300);
    } finally {
      await file.close();
    }
  });

  it('should refuse what is not a recording with RecordingError', async () => {
    const cases: Array<[string, Uint8Array | null, string]> = [
      ['text.hoptrace', new TextEncoder().encode('hello\n'), 'not-a-recording'],
      ['empty.hoptrace', new Uint8Array(0), 'truncated-header'],
      ['header-cut.hoptrace', built.bytes.subarray(0, 40), 'truncated-header'],
      ['missing.hoptrace', null, 'io'],
    ];
    for (const [name, bytes, code] of cases) {
      const p = bytes ? tmp.file(name, bytes) : tmp.file(name);
      const err = await RecordingFile.open(p).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(RecordingError);
      expect((err as RecordingError).code).toBe(code);
    }
    const dirErr = await RecordingFile.open(tmp.dir).then(() => null, (e: unknown) => e);
    expect((dirErr as RecordingError).code).toBe('io');
  });
});
