/**
 * Replaying a recording of a session with depth in the dashboard: the replay player attaches the
 * recorded notes and netfilter steps exactly as `hoptrace replay` does (same shared engine, same
 * steps queue, same clock points), so the detail view shows what `replay --json` prints.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngestCore } from '../../src/worker/ingest-core.js';
import { ReplayPlayer, type PlayerHost } from '../../src/worker/replay-player.js';
import { readRecording } from '../../src/api/replay-source.js';
import type { Packet } from '../../../shared/packet.js';
import { RecordingEncoder } from '../../../shared/recording/index.js';
import { RecordingFile, replayRecording } from '../../../server/recording/index.js';
import { demoRecording } from '../fixture.js';
import { droppedPacketDepth } from '../depth-fixture.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The demo fixture re-recorded as a depth session would have: note and nft step among the events, clock records every 200 ms. */
function depthRecording(): Uint8Array {
  const demo = demoRecording();
  const fx = droppedPacketDepth();
  const enc = new RecordingEncoder({ ...demo.header, netfilter: true, notes: true });
  enc.topology({ t: demo.header.startMonoNs, snapshot: true, namespaces: [...demo.names].map(([netns, name]) => ({ netns, name })), model: null, removed: [] });
  let nextClock = (demo.fileEvents[0]?.t ?? 0) + 200_000_000;
  const pending = [...fx.steps];
  let noted = false;
  for (const ev of demo.fileEvents) {
    while (ev.t > nextClock) {
      enc.clock(nextClock);
      nextClock += 200_000_000;
    }
    while (pending[0] && pending[0].t <= ev.t) enc.netfilter(pending.shift() as (typeof pending)[number]);
    if (!noted && ev.t >= fx.note.t) {
      enc.note(fx.note);
      noted = true;
    }
    enc.event(ev);
  }
  for (const s of pending) enc.netfilter(s);
  enc.clock(nextClock);
  enc.end({ t: nextClock, wallNs: demo.header.startWallNs + BigInt(nextClock - demo.header.startMonoNs), packets: 0, reason: 'stopped' });
  return enc.take();
}

describe('ReplayPlayer with depth', () => {
  it('should attach the recorded note and netfilter step as hoptrace replay does', async () => {
    const bytes = depthRecording();
    const fx = droppedPacketDepth();
    const dir = await mkdtemp(join(tmpdir(), 'hoptrace-web-depth-'));
    dirs.push(dir);
    const path = join(dir, 'depth.hoptrace');
    await writeFile(path, bytes);
    const cli = new Map<string, Packet>();
    const file = await RecordingFile.open(path);
    try {
      await replayRecording(file, { onPacket: (p) => { cli.set(p.id, p); } });
    } finally {
      await file.close();
    }
    const fromCli = cli.get(fx.packetId);
    expect(fromCli?.netfilter?.map((s) => [s.chain, s.verdict, s.rule])).toEqual([['FORWARD', 'drop', 'udp dport 9999 counter drop']]);
    expect(fromCli?.notes?.map((n) => n.kind)).toEqual(['fib']);

    const rec = readRecording(bytes);
    expect(rec.depth).toHaveLength(2);
    let t = 0;
    const timers: Array<{ at: number; fn: () => void }> = [];
    const host: PlayerHost = {
      now: () => t,
      setTimer: (fn, ms) => { timers.push({ at: t + Math.max(1, ms), fn }); return timers.length; },
      clearTimer: () => undefined,
      rows: () => undefined, position: () => undefined, histogram: () => undefined,
    };
    const core = new IngestCore({ now: () => t });
    core.setTopology([...rec.names], []);
    core.setDropReasons([...rec.header.dropReasons]);
    const player = new ReplayPlayer(rec, core, { speed: Number.POSITIVE_INFINITY, loop: false, loopGapMs: 0, paused: false }, host);
    player.start();
    for (let guard = 0; guard < 100_000 && timers.length > 0; guard++) {
      timers.sort((a, b) => a.at - b.at);
      const next = timers.shift() as { at: number; fn: () => void };
      t = Math.max(t, next.at);
      next.fn();
    }
    player.stop();
    const fromWeb = core.get(fx.packetId)?.packet;
    expect(fromWeb?.netfilter).toEqual(fromCli?.netfilter);
    expect(fromWeb?.notes).toEqual(fromCli?.notes);
    // Every packet carries its steps (empty for the rest), as the CLI's do.
    const rows = core.takeRows()?.rows ?? [];
    expect(rows.length).toBe(cli.size);
    expect(rows.every((r) => Array.isArray(core.get(r.id)?.packet.netfilter))).toBe(true);
  });
});
