import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngestCore } from '../../src/worker/ingest-core.js';
import { ReplayPlayer, shiftId, type PlayerHost, type PlayerOptions } from '../../src/worker/replay-player.js';
import type { PacketRow, ReplayHistogram, ReplayPosition } from '../../src/worker/protocol.js';
import { readRecording, type Recording } from '../../src/api/replay-source.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import type { HopEvent } from '../../../shared/hop-event.js';
import { RecordingEncoder } from '../../../shared/recording/index.js';
import { RecordingFile, replayRecording } from '../../../server/recording/index.js';
import { NS_NAMES, START_MONO, syntheticEvents, syntheticHeader } from '../../../test/recording/synthetic.js';
import { demoRecording } from '../fixture.js';

/** Timers on a clock the test moves: ticks and build slices run exactly when due. */
class FakeTime implements Pick<PlayerHost, 'now' | 'setTimer' | 'clearTimer'> {
  t = 1000;
  private q: { at: number; id: number; fn: () => void }[] = [];
  private n = 0;
  now = (): number => this.t;
  setTimer = (fn: () => void, ms: number): unknown => {
    const id = ++this.n;
    // As browsers clamp nested zero timeouts: time passes between ticks even at max speed.
    this.q.push({ at: this.t + Math.max(1, ms), id, fn });
    return id;
  };
  clearTimer = (h: unknown): void => {
    this.q = this.q.filter((x) => x.id !== h);
  };
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.q.sort((a, b) => a.at - b.at || a.id - b.id);
      const x = this.q[0];
      if (!x || x.at > end) break;
      this.q.shift();
      this.t = Math.max(this.t, x.at);
      x.fn();
    }
    this.t = end;
  }
}

interface Rig {
  player: ReplayPlayer;
  core: IngestCore;
  time: FakeTime;
  pos: () => ReplayPosition;
  hist: () => ReplayHistogram | null;
  /** Rows as the page holds them: appends merged, removals applied, resets replace. */
  rows: () => PacketRow[];
}

function rig(rec: Recording, opts: Partial<PlayerOptions> = {}, historyMax?: number): Rig {
  const time = new FakeTime();
  const core = new IngestCore({ historyMax, now: time.now });
  core.setTopology([...rec.names], []);
  core.setDropReasons([...rec.header.dropReasons]);
  let last: ReplayPosition | null = null;
  let hist: ReplayHistogram | null = null;
  const host: PlayerHost = {
    now: time.now, setTimer: time.setTimer, clearTimer: time.clearTimer,
    rows: () => undefined,
    position: (p) => { last = p; },
    histogram: (h) => { hist = h; },
  };
  const player = new ReplayPlayer(rec, core, { speed: 1, loop: false, loopGapMs: 0, paused: true, ...opts }, host);
  player.start();
  let list: PacketRow[] = [];
  return {
    player, core, time,
    pos: () => last as unknown as ReplayPosition,
    hist: () => hist,
    rows: () => {
      const out = core.takeRows();
      if (out) {
        const gone = new Set(out.removed);
        list = out.reset ? [...out.rows] : [...list.filter((r) => !gone.has(r.id)), ...out.rows];
        list.sort((a, b) => a.t - b.t);
      }
      return list;
    },
  };
}

/** First hop times of every packet of the recording, sorted. */
function starts(rec: Recording): number[] {
  return reconstructAll(rec.fileEvents, { nsName: (n) => rec.names.get(n) ?? null }).map((p) => p.hops[0]?.t ?? 0).sort((a, b) => a - b);
}

describe('ReplayPlayer', () => {
  const demo = demoRecording();
  const demoStarts = starts(demo);

  it('should wait at the recording\'s start when opened paused, with the timeline over the whole recording', () => {
    const r = rig(demo);
    r.time.advance(100);
    const p = r.pos();
    expect(p.playing).toBe(false);
    expect(p.building).toBe(false);
    expect(p.t0).toBe(demo.header.startMonoNs);
    expect(p.t1).toBe(demo.endT);
    expect(p.cursor).toBe(p.t0);
    expect(p.total).toBe(demoStarts.length);
    expect(r.rows()).toEqual([]);
    // The density strip counts every packet start, drops among them.
    const h = r.hist();
    expect(h?.counts.reduce((a, b) => a + b, 0)).toBe(demoStarts.length);
    expect(h?.drops.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('should play the packets the shared engine rebuilds, all of them by the end', () => {
    const r = rig(demo, { speed: Number.POSITIVE_INFINITY, paused: false });
    r.time.advance(1000);
    expect(r.pos().ended).toBe(true);
    expect(r.pos().cursor).toBe(r.pos().t1);
    const expected = reconstructAll(demo.fileEvents, { nsName: (n) => demo.names.get(n) ?? null });
    expect(r.rows().map((x) => x.id).sort()).toEqual(expected.map((p) => p.id).sort());
    expect(r.core.stats().events).toBe(demo.events.length);
  });

  it('should list exactly the packets that started by the playhead after a seek to the middle', () => {
    const r = rig(demo);
    const mid = Math.round((r.pos().t0 + r.pos().t1) / 2);
    r.player.control({ op: 'seek', t: mid });
    const rows = r.rows();
    const before = demoStarts.filter((t) => t <= mid).length;
    expect(rows.length).toBe(before);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((x) => x.t <= mid)).toBe(true);
    expect(r.pos()).toMatchObject({ cursor: mid, index: before, playing: false });
    // Back to the start: everything taken back out.
    r.player.control({ op: 'seek', t: r.pos().t0 });
    expect(r.rows()).toEqual([]);
    expect(r.pos().index).toBe(0);
  });

  it('should step to the next packet start and back, the packet stepped to being the one to show', () => {
    const r = rig(demo);
    const mid = Math.round((r.pos().t0 + r.pos().t1) / 2);
    r.player.control({ op: 'seek', t: mid });
    const n0 = r.rows().length;
    const next = demoStarts.find((t) => t > mid) as number;

    r.player.control({ op: 'step', dir: 1 });
    const after = r.rows();
    expect(after.length).toBe(n0 + 1);
    const newest = after[after.length - 1] as PacketRow;
    expect(newest.t).toBe(next);
    expect(r.pos()).toMatchObject({ cursor: next, current: newest.id, playing: false });

    r.player.control({ op: 'step', dir: 1 });
    const two = r.rows();
    expect(two.length).toBe(n0 + 2);

    r.player.control({ op: 'step', dir: -1 });
    const back = r.rows();
    expect(back.map((x) => x.id)).toEqual(after.map((x) => x.id));
    expect(r.pos()).toMatchObject({ cursor: next, current: newest.id });
  });

  it('should step only onto packets the filter shows', () => {
    const r = rig(demo);
    expect(r.core.setFilter('udp and port 9999', null)).toBeNull();
    r.player.control({ op: 'step', dir: 1 });
    r.player.control({ op: 'step', dir: 1 });
    const rows = r.rows();
    expect(rows.length).toBe(2);
    expect(rows.every((x) => x.dport === 9999)).toBe(true);
    const id = r.pos().current;
    expect(id).toBe(rows[1]?.id);
    // The packets in between are in the history (a wider filter brings them back), not listed.
    expect(r.core.stats().packets).toBeGreaterThan(2);
  });

  it('should move the playhead with the wall clock times the speed, and stop when paused', () => {
    const r = rig(demo, { speed: 2 });
    r.player.control({ op: 'play' });
    r.time.advance(1000);
    const p = r.pos();
    // 1 s of wall clock at 2×: 2 s of the recording (to within a tick).
    expect(p.cursor - p.t0).toBeGreaterThanOrEqual(1.9e9);
    expect(p.cursor - p.t0).toBeLessThanOrEqual(2.1e9);
    expect(r.rows().length).toBe(demoStarts.filter((t) => t <= p.cursor).length);

    r.player.control({ op: 'speed', speed: 10 });
    r.time.advance(500);
    const q = r.pos();
    expect(q.cursor - p.cursor).toBeGreaterThanOrEqual(4.5e9);
    expect(q.cursor - p.cursor).toBeLessThanOrEqual(5.5e9);

    r.player.control({ op: 'pause' });
    const held = r.pos().cursor;
    r.time.advance(2000);
    expect(r.pos().cursor).toBe(held);
    expect(r.pos().playing).toBe(false);
  });

  it('should rebuild a bounded history from the packets before a far-back position', () => {
    const r = rig(demo, {}, 10);
    r.player.control({ op: 'seek', t: r.pos().t1 });
    const end = r.rows();
    expect(end.length).toBe(10);
    expect(end.map((x) => x.t)).toEqual(demoStarts.slice(-10));
    expect(r.pos().loadedFrom).toBe(demoStarts[demoStarts.length - 10]);
    const mid = Math.round((r.pos().t0 + r.pos().t1) / 2);
    r.player.control({ op: 'seek', t: mid });
    const k = demoStarts.filter((t) => t <= mid).length;
    expect(r.rows().map((x) => x.t)).toEqual(demoStarts.slice(Math.max(0, k - 10), k));
  });

  it('should loop with later rounds moved on in time, earlier rounds kept', () => {
    const r = rig(demo, { speed: Number.POSITIVE_INFINITY, paused: false, loop: true, loopGapMs: 0 });
    const n = demoStarts.length;
    for (let i = 0; i < 200 && r.core.stats().packets < n + 5; i++) r.time.advance(10);
    expect(r.pos().round).toBeGreaterThanOrEqual(1);
    const rows = r.rows();
    const ids = new Set(rows.map((x) => x.id));
    expect(ids.size).toBe(rows.length);
    const span = r.pos().t1 - r.pos().t0;
    const second = rows.slice(n);
    expect(second.length).toBeGreaterThan(0);
    // Round two's first packet is round one's, a round later.
    expect((second[0] as PacketRow).t - (rows[0] as PacketRow).t).toBeGreaterThan(span);
    expect(second[0]?.id).toBe(shiftId(rows[0]?.id ?? '', (second[0] as PacketRow).t - (rows[0] as PacketRow).t));
    r.player.stop();
  });
});

/**
 * A recording where the recorder's clock finished a packet before its last event came: traffic
 * goes quiet for 2 s, the recorder's ticks (clock records) keep coming, and the packet's consume
 * event is delivered only after a tick 1.1 s past it (a slow CPU buffer). Live, the packet was
 * finished without it (fate unknown); events alone would let it join (delivered).
 */
function clockedRecording(): Uint8Array {
  const base = syntheticEvents(300, 7, 2_000_000);
  const cut = base.findIndex((e, i) => i > base.length / 2 && e.kind === 'consume');
  const held = base[cut] as HopEvent;
  const events = [...base.slice(0, cut), ...base.slice(cut + 1).map((e) => ({ ...e, t: e.t + 2e9 }))];
  const enc = new RecordingEncoder(syntheticHeader());
  enc.topology({ t: START_MONO, snapshot: true, namespaces: NS_NAMES.map(([netns, name]) => ({ netns, name })), model: null, removed: [] });
  let nextClock = (events[0]?.t ?? 0) + 50e6;
  let heldWritten = false;
  for (const ev of events) {
    for (; ev.t >= nextClock; nextClock += 50e6) {
      enc.clock(nextClock);
      if (!heldWritten && nextClock >= held.t + 1.1e9) {
        enc.event(held);
        heldWritten = true;
      }
    }
    enc.event(ev);
  }
  enc.end({ t: events[events.length - 1]?.t ?? 0, wallNs: 0n, packets: 0, reason: 'count' });
  return enc.take();
}

describe('ReplayPlayer on a recording with clock records', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoptrace-web-player-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should rebuild the same packets as `hoptrace replay`, in slices while the playhead waits for the build', async () => {
    const bytes = clockedRecording();
    const path = join(dir, 'clocked.hoptrace');
    await writeFile(path, bytes);
    const sig = (p: { id: string; fate: string; hops: number }): string => `${p.id} ${p.fate} ${p.hops}`;
    const cli: string[] = [];
    const file = await RecordingFile.open(path);
    try {
      await replayRecording(file, { onPacket: (p) => { cli.push(sig({ ...p, hops: p.hops.length })); } });
    } finally {
      await file.close();
    }
    const rec = readRecording(bytes);
    expect(rec.clocks.length).toBeGreaterThan(10);

    const r = rig(rec, { sliceEvents: 500, speed: Number.POSITIVE_INFINITY, paused: false });
    // After the first slice, the playhead may not pass the build frontier.
    expect(r.pos().building).toBe(true);
    expect(r.pos().builtTo).toBeLessThan(r.pos().t1);
    r.time.advance(1);
    expect(r.pos().cursor).toBeLessThanOrEqual(r.pos().builtTo);
    r.time.advance(5000);
    expect(r.pos()).toMatchObject({ building: false, ended: true });
    expect(r.rows().map(sig).sort()).toEqual([...cli].sort());
    // And the clock mattered: events alone give other packets.
    const plain = reconstructAll(rec.fileEvents).map((p) => sig({ ...p, hops: p.hops.length })).sort();
    expect(plain).not.toEqual([...cli].sort());
  });

  it('should count every event once played through, those at the recording\'s very start too', () => {
    const events = syntheticEvents(40, 3);
    // The recorder read its start clock at the first event's time (and loops replay it again).
    const enc = new RecordingEncoder(syntheticHeader({ startMonoNs: events[0]?.t ?? 0 }));
    for (const ev of events) enc.event(ev);
    const rec = readRecording(enc.take());
    const r = rig(rec, { speed: Number.POSITIVE_INFINITY, paused: false });
    r.time.advance(1000);
    expect(r.pos().ended).toBe(true);
    expect(r.core.stats().events).toBe(events.length);
    const loop = rig(rec, { speed: Number.POSITIVE_INFINITY, paused: false, loop: true, loopGapMs: 0 });
    for (let i = 0; i < 100 && loop.pos().round < 2; i++) loop.time.advance(5);
    loop.player.control({ op: 'pause' });
    const p = loop.pos();
    const played = rec.events.filter((e) => e.t <= p.cursor).length;
    expect(loop.core.stats().events).toBe(p.round * events.length + played);
  });
});

describe('ReplayPlayer on a cluster recording (record --hub)', () => {
  /** One packet pod(node1) → pod(node2) over a routed underlay: each node's piece is its own skb. */
  function clusterRecording(): Recording {
    const t = START_MONO + 1_000_000_000;
    const base = { cpu: 0, family: 4 as const, proto: 17, len: 40, ipId: 77, src: '10.9.1.10', dst: '10.9.2.10', sport: 5000, dport: 6000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0 };
    const ev = (node: string, skb: string, dt: number, kind: HopEvent['kind'], netns: number, ifname: string): HopEvent => ({ ...base, node, skb, t: t + dt, kind, netns, ifindex: ifname ? 2 : 0, ifname });
    const events = [
      ev('node1', 'a1', 0, 'xmit', 11, 'eth0'), ev('node1', 'a1', 1000, 'rx', 12, 'vp0'), ev('node1', 'a1', 2000, 'xmit', 12, 'ul0'), ev('node1', 'a1', 3000, 'consume', 12, ''),
      ev('node2', 'b1', 10_000, 'rx', 22, 'ul0'), ev('node2', 'b1', 11_000, 'xmit', 22, 'vp0'), ev('node2', 'b1', 12_000, 'recv', 21, 'eth0'), ev('node2', 'b1', 13_000, 'consume', 21, ''),
    ];
    const ns = (netns: number, name: string) => ({ netns, name, interfaces: [], routes: [], neighbors: [] });
    const model = (node: string, a: number, b: number) => ({ node, namespaces: [ns(a, `${node}-pod`), ns(b, `${node}-node`)], errors: [], discoveredAt: 0, durationMs: 0 });
    return {
      ...demoRecording(), events, fileEvents: events, clocks: [], depth: [], endT: t + 20_000,
      names: new Map([[11, 'node1-pod'], [12, 'node1-node'], [21, 'node2-pod'], [22, 'node2-node']]),
      models: [model('node1', 11, 12), model('node2', 21, 22)],
    };
  }

  it('should play each packet stitched across the nodes, its hops naming their node', () => {
    const rec = clusterRecording();
    const r = rig(rec, { speed: Number.POSITIVE_INFINITY, paused: false });
    r.time.advance(1000);
    const rows = r.rows();
    expect(rows).toHaveLength(1);
    const p = r.core.get(rows[0]!.id)?.packet as unknown as { nodes: string[]; hops: { node: string; ns: string }[] };
    expect(p.nodes).toEqual(['node1', 'node2']);
    expect(p.hops.map((h) => `${h.node}/${h.ns}`)).toEqual([
      'node1/node1-pod', 'node1/node1-node', 'node1/node1-node', 'node1/node1-node',
      'node2/node2-node', 'node2/node2-node', 'node2/node2-pod', 'node2/node2-pod',
    ]);
  });

  it('should replay the same file one kernel\'s way without the per-node models', () => {
    const r = rig({ ...clusterRecording(), models: [] }, { speed: Number.POSITIVE_INFINITY, paused: false });
    r.time.advance(1000);
    expect(r.rows()).toHaveLength(2);
  });
});
