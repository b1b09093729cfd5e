/** The recorded demo-lab fixture (web/fixtures/demo-lab.hoptrace), read once for the tests. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readRecording, type Recording } from '../src/api/replay-source.js';
import { encodeBatch } from '../../shared/wire.js';
import type { HopEvent } from '../../shared/hop-event.js';
import { reconstructAll } from '../../shared/reconstruct.js';
import { PathExpectations, type AnnotatedPacket } from '../../shared/expectation.js';

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

/**
 * The fixture's packets rebuilt with its names, drop reasons and local addresses, each put next
 * to the recorded model in order as the worker does (shared/expectation.ts).
 */
export function demoPackets(): AnnotatedPacket[] {
  const rec = demoRecording();
  const topo = rec.topology;
  if (!topo) throw new Error('the demo fixture has no topology');
  const expectations = new PathExpectations(topo);
  return reconstructAll(rec.events, {
    nsName: (n) => rec.names.get(n) ?? null,
    dropReason: (c) => rec.header.dropReasons.get(c) ?? `reason-${c}`,
    isLocal: expectations.isLocal,
  }).map((p) => expectations.annotate(p));
}
