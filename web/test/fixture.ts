/** The recorded demo-lab fixture (web/fixtures/demo-lab.hoptrace), read once for the tests. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readRecording, type Recording } from '../src/api/replay-source.js';
import { encodeBatch } from '../../shared/wire.js';
import type { HopEvent } from '../../shared/hop-event.js';

// Relative to the repository root (where vitest runs): under happy-dom, import.meta.url is not a file URL.
export const FIXTURE_PATH = resolve(process.cwd(), 'web/fixtures/demo-lab.hoptrace');

let cached: Recording | undefined;
export function demoRecording(): Recording {
  cached ??= readRecording(new Uint8Array(readFileSync(FIXTURE_PATH)));
  return cached;
}

/** Namespace inode of the fixture's demo-<role> namespace. */
export function demoNetns(role: 'node' | 'pod1' | 'pod2' | 'ext'): number {
  for (const [netns, name] of demoRecording().names) if (name === `demo-${role}`) return netns;
  throw new Error(`no demo-${role} in the fixture`);
}

/** Splits events into encoded HopBatches of `size`, numbered from `firstSeq`. */
export function batches(events: readonly HopEvent[], size: number, firstSeq = 0): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < events.length; i += size) {
    out.push(encodeBatch({ events: events.slice(i, i + size), seq: firstSeq + out.length, lostKernel: 0 }));
  }
  return out;
}
