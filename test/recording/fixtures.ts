/** Recordings built from synthetic events and written to a temporary folder, for file-level tests. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HopEvent } from '../../shared/hop-event.js';
import { RecordingEncoder, type EncoderOptions, type RecordingHeader } from '../../shared/recording/index.js';
import { NS_NAMES, START_MONO, START_WALL, syntheticHeader } from './synthetic.js';

export interface BuiltRecording {
  readonly bytes: Uint8Array;
  readonly events: readonly HopEvent[];
  /** Names as the recording states them (start snapshot plus changes). */
  readonly names: ReadonlyMap<number, string>;
}

export interface BuildOptions extends EncoderOptions {
  readonly header?: Partial<RecordingHeader>;
  /** Lost-event reports: after event i, count. */
  readonly lost?: ReadonlyArray<[number, number]>;
  /** Namespace renames/additions after event i. */
  readonly topologyChanges?: ReadonlyArray<[number, number, string]>;
  readonly end?: boolean;
}

export function buildRecording(events: readonly HopEvent[], opts: BuildOptions = {}): BuiltRecording {
  const enc = new RecordingEncoder(syntheticHeader(opts.header), opts);
  const names = new Map<number, string>(NS_NAMES);
  enc.topology({ t: START_MONO, snapshot: true, namespaces: NS_NAMES.map(([netns, name]) => ({ netns, name })), model: null, removed: [] });
  const lost = new Map(opts.lost ?? []);
  const changes = opts.topologyChanges ?? [];
  events.forEach((ev, i) => {
    enc.event(ev);
    const n = lost.get(i);
    if (n !== undefined) enc.lostEvents(ev.t, n);
    for (const [at, netns, name] of changes) {
      if (at === i) {
        enc.topology({ t: ev.t, snapshot: false, namespaces: [{ netns, name }], model: null, removed: [] });
        names.set(netns, name);
      }
    }
  });
  if (opts.end !== false) {
    const last = events.reduce((m, e) => Math.max(m, e.t), START_MONO);
    enc.end({ t: last + 1000, wallNs: START_WALL + BigInt(last + 1000 - START_MONO), packets: 0, reason: 'duration' });
  }
  return { bytes: enc.take(), events, names };
}

export function tempDir(): { dir: string; file(name: string, bytes?: Uint8Array): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hoptrace-rec-'));
  return {
    dir,
    file(name, bytes) {
      const p = join(dir, name);
      if (bytes) writeFileSync(p, bytes);
      return p;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
