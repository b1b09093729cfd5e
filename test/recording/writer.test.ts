import { afterAll, describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { mkdirSync, rmdirSync, unlinkSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Packet } from '../../shared/packet.js';
import { reconstructAll } from '../../shared/reconstruct.js';
import { decodeRecording, RecordingDecoder, RecordingError, type RecordingRecord } from '../../shared/recording/index.js';
import { RecordingFileWriter, RecordingWriteError, startRecording, kernelNowNs } from '../../server/recording/index.js';
import { dropReasonsFrom } from '../../server/drop-reasons.js';
import { tempDir } from './fixtures.js';
import { NS_NAMES, START_MONO, syntheticEvents, syntheticHeader } from './synthetic.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const isRoot = process.getuid?.() === 0;

function decodeFile(path: string): { events: HopEvent[]; summary: ReturnType<RecordingDecoder['finish']> } {
  const dec = new RecordingDecoder();
  const events: HopEvent[] = [];
  const on = (r: RecordingRecord): void => { if (r.kind === 'event') events.push(r.event); };
  dec.push(readFileSync(path), on);
  return { events, summary: dec.finish(on) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('RecordingFileWriter', () => {
  it('should leave a replayable file whenever the recorder is killed', async () => {
    const all = syntheticEvents(20_000, 42);
    for (let round = 0; round < 5; round++) {
      const path = tmp.file(`crash-${round}.hoptrace`);
      const child = execa(process.execPath, ['--import', 'tsx', 'test/recording/crash-writer.ts', path], { reject: false });
      await new Promise<void>((resolve) => child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('started')) resolve(); }));
      await sleep(30 + round * 60);
      child.kill('SIGKILL');
      await child;
      const { events, summary } = decodeFile(path);
      expect(summary.damage.regions).toBe(0);
      expect(summary.ended).toBe(false);
      expect(events.length).toBeGreaterThan(0);
      expect(events).toEqual(all.slice(0, events.length));
    }
  });

  it('should refuse to replace an existing file unless told to', () => {
    const path = tmp.file('exists.hoptrace', new Uint8Array([1, 2, 3]));
    expect(() => new RecordingFileWriter(path, syntheticHeader())).toThrow(RecordingWriteError);
    const w = new RecordingFileWriter(path, syntheticHeader(), { overwrite: true });
    w.close({ t: START_MONO, wallNs: 0n, packets: 0, reason: 'test' });
    expect(decodeRecording(readFileSync(path)).summary.ended).toBe(true);
  });

  it('should stop with an error when its file is deleted, and say so once', async () => {
    const path = tmp.file('deleted.hoptrace');
    const errors: RecordingWriteError[] = [];
    const w = new RecordingFileWriter(path, syntheticHeader(), { onError: (e) => errors.push(e), flushIntervalMs: 50 });
    const events = syntheticEvents(50, 1);
    for (const ev of events.slice(0, 100)) w.event(ev);
    unlinkSync(path);
    for (let i = 0; i < 30 && errors.length === 0; i++) {
      for (const ev of events.slice(100, 110)) w.event(ev);
      await sleep(100);
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe('removed');
    expect(errors[0]?.message).toContain('deleted');
    expect(w.failed).toBe(true);
    expect(w.closed).toBe(true);
    w.event(events[0] as HopEvent); // ignored, no throw
  });

  it.skipIf(!isRoot)('should stop on a full disk and keep what was written readable', async () => {
    const mnt = join(tmp.dir, 'small');
    mkdirSync(mnt);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'hoptrace-test', mnt]);
    try {
      const path = join(mnt, 'full.hoptrace');
      const errors: RecordingWriteError[] = [];
      const w = new RecordingFileWriter(path, syntheticHeader(), { onError: (e) => errors.push(e), flushBytes: 4096 });
      const events = syntheticEvents(5000, 9);
      let given = 0;
      for (const ev of events) {
        if (w.failed) break;
        w.event(ev);
        given++;
      }
      w.close({ t: START_MONO, wallNs: 0n, packets: 0, reason: 'test' });
      expect(errors).toHaveLength(1);
      expect(errors[0]?.code).toBe('no-space');
      expect(errors[0]?.message).toMatch(/no space left/);
      const { events: got, summary } = decodeFile(path);
      expect(summary.damage.regions).toBe(0);
      expect(got.length).toBeGreaterThan(100);
      expect(got.length).toBeLessThanOrEqual(given);
      expect(got).toEqual(events.slice(0, got.length));
    } finally {
      await execa('umount', [mnt], { reject: false });
      if (existsSync(mnt)) rmdirSync(mnt);
    }
  });
});

/** A stand-in for TraceSession: the recorder only listens to it. */
class FakeSession extends EventEmitter {
  filterText = 'udp';
  dropReasons = dropReasonsFrom(new Map([[2, 'NOT_SPECIFIED'], [12, 'NETFILTER_DROP']]));
  accepts = (p: Packet): boolean => p.proto === 'udp';
}

describe('startRecording', () => {
  const names = {
    refresh: async () => undefined,
    name: (n: number) => new Map(NS_NAMES).get(n) ?? null,
    entries: () => NS_NAMES.map(([a, b]) => [a, b] as [number, string]),
  };
  // Shift synthetic times to now, so the recorder's clock-driven ticks see them as current.
  const shift = (evs: HopEvent[]): HopEvent[] => {
    const d = kernelNowNs() - START_MONO;
    return evs.map((e) => ({ ...e, t: e.t + d }));
  };

  it('should record a session with its filter, names and packet count', async () => {
    const session = new FakeSession();
    const path = tmp.file('session.hoptrace');
    const seen: Packet[] = [];
    const rec = await startRecording(session, path, { names, topology: { fake: 'model' }, onPacket: (p) => seen.push(p) });
    const events = shift(syntheticEvents(300, 5));
    for (const ev of events) session.emit('hop', ev);
    session.emit('lost', 3);
    const result = await rec.stop('test');
    expect(session.listenerCount('hop')).toBe(0);
    const expected = reconstructAll(events, { accept: session.accepts });
    expect(result).toMatchObject({ events: events.length, lost: 3, packets: expected.length, reason: 'test', error: null, running: false });
    expect(seen.map((p) => p.id)).toEqual(expected.map((p) => p.id));
    const { header, records, summary } = decodeRecording(readFileSync(path));
    expect(header.filter).toBe('udp');
    expect(header.dropReasons.get(12)).toBe('NETFILTER_DROP');
    expect(summary.ended).toBe(true);
    expect(records.flatMap((r) => (r.kind === 'event' ? [r.event] : []))).toEqual(events);
    const topo = records.find((r) => r.kind === 'topology');
    expect(topo?.kind === 'topology' && topo.topology.model).toEqual({ fake: 'model' });
    expect(topo?.kind === 'topology' && topo.topology.namespaces).toEqual(NS_NAMES.map(([netns, name]) => ({ netns, name })));
    const end = records.at(-1);
    expect(end?.kind === 'end' && end.end).toMatchObject({ packets: expected.length, events: events.length, lost: 3, reason: 'test' });
    expect(result.bytes).toBe(readFileSync(path).length);
  });

  it('should stop recording on a write error while the session goes on', async () => {
    const session = new FakeSession();
    const path = tmp.file('session-deleted.hoptrace');
    const errors: RecordingWriteError[] = [];
    const rec = await startRecording(session, path, { names, topology: false, onError: (e) => errors.push(e), writer: { flushIntervalMs: 50 } });
    const events = shift(syntheticEvents(100, 6));
    for (const ev of events.slice(0, 200)) session.emit('hop', ev);
    unlinkSync(path);
    const result = await Promise.race([rec.done, sleep(5000).then(() => null)]);
    expect(result?.error).toMatch(/deleted/);
    expect(result?.reason).toMatch(/^error: /);
    expect(errors).toHaveLength(1);
    expect(session.listenerCount('hop')).toBe(0);
    for (const ev of events.slice(200)) session.emit('hop', ev); // the session carries on: nothing throws
    expect((await rec.stop()).error).toMatch(/deleted/);
  });

  it('should refuse a path that exists', async () => {
    const path = tmp.file('taken.hoptrace', new Uint8Array([0]));
    const err = await startRecording(new FakeSession(), path, { names, topology: false }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(RecordingWriteError);
    expect((err as RecordingWriteError).code).toBe('exists');
    expect(err).not.toBeInstanceOf(RecordingError);
  });
});
