/**
 * Backpressure on the live stream: a client that stops reading (its TCP socket paused, so the
 * kernel's buffers fill and engine.io stops draining) must not slow a fast client on the same
 * session, must not grow the server's queue past its bound, and must learn how many batches it
 * lost — from `stats.droppedBatches` and from the gaps in `seq`. A synthetic source drives a
 * steady 60k events/s so the stall fills every buffer within seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../server/service/index.js';
import { decodeBatch } from '../../shared/wire.js';
import { batchBytes, type StreamStats } from '../../shared/stream-events.js';
import type { SessionInfo } from '../../shared/api-types.js';
import { connect, postJson, syntheticFactory, waitFor, type TestSocket } from './helpers.js';

interface Watcher {
  readonly socket: TestSocket;
  readonly seqs: number[];
  readonly events: number[];
  stats: StreamStats | undefined;
  maxQueued: number;
}

async function watch(url: string, session: string): Promise<Watcher> {
  const socket = await connect(url);
  const w: Watcher = { socket, seqs: [], events: [], stats: undefined, maxQueued: 0 };
  socket.on('hops', (m) => {
    const b = decodeBatch(batchBytes(m.batch));
    w.seqs.push(b.seq);
    w.events.push(b.events.length);
  });
  socket.on('stats', (s) => {
    w.stats = s;
    w.maxQueued = Math.max(w.maxQueued, s.queuedBatches);
  });
  const ack = await socket.timeout(2000).emitWithAck('subscribe', { session });
  if (!ack.ok) throw new Error(ack.error.message);
  return w;
}

/** Missing seqs between 1 and `last`, given the ones received (in order). */
function missing(seqs: readonly number[], last: number): number {
  return last - new Set(seqs).size;
}

describe('backpressure', () => {
  const src = syntheticFactory();
  let svc: RunningService;
  const MAX_BATCHES = 32;

  beforeAll(async () => {
    svc = await startService({
      port: 0, source: src.factory, namespaceNames: null, webDist: null, log: () => undefined,
      capabilities: {
        detectedAt: '', root: true, kernel: 'test', bpftrace: { version: null }, btf: true, tracefs: null,
        probes: { tracepoint: { available: true, reason: null }, kprobe: { available: false, reason: null }, kfunc: { available: false, reason: null } },
        tracepoints: {}, canTrace: true, problems: [],
      },
      batching: { maxEvents: 256, maxDelayMs: 20 },
      limits: { maxBatches: MAX_BATCHES },
      statsIntervalMs: 200,
    });
  });
  afterAll(async () => {
    await svc.close();
  });

  it('drops the oldest batches for a stalled client only, and tells it how many', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: '' });
    const id = created.body.id;
    const fast = await watch(svc.url, id);
    const slow = await watch(svc.url, id);
    const source = src.made[0];
    if (!source) throw new Error('no source');

    source.run(60_000);
    await waitFor('both clients to receive', () => fast.seqs.length > 5 && slow.seqs.length > 5);
    // Stop reading on the slow client's TCP socket: the kernel buffers fill, then engine.io's.
    const transport = slow.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } };
    transport.ws._socket.pause();
    const slowBefore = slow.seqs.length;
    // Run until far more batches went out than the socket buffers and the queue can hold: by
    // count, not by time, so a loaded machine (slower source) still overflows the stalled client.
    await waitFor('many batches past the stall', () => (fast.seqs.at(-1) ?? 0) - slowBefore > 1500, 40_000);
    source.pause();
    // Everything produced is sealed within maxDelayMs (20 ms); the server's seq is then final.
    await new Promise((r) => setTimeout(r, 200));
    const final = svc.registry.get(id)?.feed.seq ?? 0;
    expect(final).toBeGreaterThan(slowBefore);
    await waitFor('the fast client to have every batch', () => (fast.seqs.at(-1) ?? 0) >= final, 10_000);

    // The fast client lost nothing while the other one stalled.
    expect(fast.seqs).toEqual(Array.from({ length: final }, (_, i) => i + 1));
    await waitFor('fresh stats for the fast client', () => fast.stats?.seq === final);
    expect(fast.stats?.droppedBatches).toBe(0);
    const receivedWhileStalled = slow.seqs.length - slowBefore;

    // The slow client reads again: it gets what was buffered, then the newest batches after a gap.
    transport.ws._socket.resume();
    await waitFor('the slow client to catch up', () => slow.seqs.at(-1) === final, 10_000);
    await waitFor('stats after catching up', () => slow.stats?.seq === final && slow.stats.queuedBatches === 0, 5000);
    const dropped = slow.stats?.droppedBatches ?? -1;
    expect(dropped).toBeGreaterThan(0);
    // Every batch was either delivered or counted as dropped, and the seq gaps say the same.
    expect(missing(slow.seqs, final)).toBe(dropped);
    expect(slow.seqs.length + dropped).toBe(final);
    // Order is kept: seqs only grow.
    expect(slow.seqs.every((s, i) => i === 0 || s > (slow.seqs[i - 1] ?? 0))).toBe(true);
    // The server never queued more than its bound for the slow client.
    expect(slow.maxQueued).toBeLessThanOrEqual(MAX_BATCHES);
    // Sanity: the stall was real (it got far fewer batches than were sent while stalled).
    expect(receivedWhileStalled).toBeLessThan(final - slowBefore);
    fast.socket.close();
    slow.socket.close();
  }, 60_000);

  it('batches by time at low rates and by size at high rates', async () => {
    const created = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp' });
    const w = await watch(svc.url, created.body.id);
    const source = src.made.at(-1);
    if (!source) throw new Error('no source');
    // One packet (3 events): sealed by the 20 ms timer, not held for more.
    const t0 = Date.now();
    source.burst(1);
    await waitFor('a small batch', () => w.events.length === 1);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(w.events[0]).toBe(3);
    // 1000 packets at once: full batches of 256, then the remainder.
    source.burst(1000);
    await waitFor('the burst', () => w.events.reduce((a, b) => a + b, 0) === 3003);
    expect(w.events.slice(1)).toEqual([256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 184]);
    w.socket.close();
  });
});
