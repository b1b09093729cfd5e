import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { listRecordings, readRecordingMeta, recordingPath, RecordingNameError, validateRecording } from '../../server/recording/index.js';
import { buildRecording, tempDir } from './fixtures.js';
import { START_MONO, START_WALL, syntheticEvents } from './synthetic.js';
import { FORMAT_MAJOR, FORMAT_MINOR } from '../../shared/recording/index.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('recordingPath', () => {
  it('should keep names inside the data folder', () => {
    expect(recordingPath('/data', 'lab-1')).toBe('/data/lab-1.hoptrace');
    expect(recordingPath('/data/', 'run_2.hoptrace')).toBe('/data/run_2.hoptrace');
    for (const bad of ['', '.', '..', '../x', 'a/b', '/etc/passwd', '.hidden', 'x\0y', 'a..b', 'a b', 'é', 'x'.repeat(101), '..\\x']) {
      expect(() => recordingPath('/data', bad), bad).toThrow(RecordingNameError);
    }
  });

  it('should never return a path outside the folder, whatever the name', () => {
    fc.assert(fc.property(fc.string({ maxLength: 120 }), (name) => {
      try {
        const p = recordingPath('/srv/rec', name);
        expect(p.startsWith('/srv/rec/')).toBe(true);
        expect(p.slice('/srv/rec/'.length)).not.toContain('/');
        expect(resolve(p)).toBe(p);
      } catch (err) {
        expect(err).toBeInstanceOf(RecordingNameError);
      }
    }), { numRuns: 2000 });
  });
});

describe('recordings library', () => {
  const events = syntheticEvents(200, 4);
  const good = buildRecording(events, { header: { filter: 'udp' } });

  it('should read metadata from header and tail', async () => {
    const p = tmp.file('meta.hoptrace', good.bytes);
    const meta = await readRecordingMeta(p);
    const lastT = Math.max(...events.map((e) => e.t));
    expect(meta).toMatchObject({
      name: 'meta.hoptrace', size: good.bytes.length, host: 'testhost', kernel: '6.18.0-test', filter: 'udp',
      start: Number(START_WALL / 1_000_000n), events: events.length, packets: 0, lost: 0, complete: true, endReason: 'duration', format: `${FORMAT_MAJOR}.${FORMAT_MINOR}`,
      durationNs: lastT + 1000 - START_MONO,
    });
    const cut = await readRecordingMeta(tmp.file('meta-cut.hoptrace', good.bytes.subarray(0, good.bytes.length - 200)));
    expect(cut.complete).toBe(false);
    expect(cut.packets).toBeNull();
    expect(cut.events).toBeLessThan(events.length);
  });

  it('should list recordings, flag unreadable ones and ignore everything else', async () => {
    const dir = join(tmp.dir, 'lib');
    mkdirSync(dir);
    const okPath = join(dir, 'ok.hoptrace');
    writeFileSync(okPath, good.bytes);
    writeFileSync(join(dir, 'junk.hoptrace'), 'not a recording');
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    mkdirSync(join(dir, 'folder.hoptrace'));
    symlinkSync(okPath, join(dir, 'link.hoptrace'));
    const list = await listRecordings(dir);
    expect(list.map((e) => e.name)).toEqual(['ok.hoptrace', 'junk.hoptrace']);
    expect(list[0]?.meta?.events).toBe(events.length);
    expect(list[1]?.meta).toBeNull();
    expect(list[1]?.problem).toMatch(/not a hoptrace recording/);
  });

  it('should validate uploads before they are stored', async () => {
    expect(await validateRecording(good.bytes)).toMatchObject({ ok: true, problem: null, events: events.length, complete: true, damagedRegions: 0 });
    const cut = await validateRecording(good.bytes.subarray(0, good.bytes.length - 10));
    expect(cut.ok).toBe(true);
    expect(cut.truncatedAt).not.toBeNull();
    const damaged = good.bytes.slice();
    const mid = Math.floor(damaged.length / 2);
    damaged[mid] = (damaged[mid] as number) ^ 0xff;
    expect(await validateRecording(damaged)).toMatchObject({ ok: false, damagedRegions: 1 });
    const junk = await validateRecording(new TextEncoder().encode('<html>'));
    expect(junk).toMatchObject({ ok: false, header: null });
    expect(junk.problem).toMatch(/not a hoptrace recording/);
    expect(await validateRecording(tmp.file('v.hoptrace', good.bytes))).toMatchObject({ ok: true, events: events.length });
    expect((await validateRecording(join(tmp.dir, 'nope.hoptrace'))).problem).toMatch(/no such file/);
  });
});
