/**
 * Batching by size and time at the two ends the service must handle well, with the default
 * batching (512 events or 50 ms) and a real server and client: at 10 events/s every event leaves
 * within the time limit in a batch of its own (nothing waits for a batch to fill); at 100,000
 * events/s batches are sealed full by size, about 200 a second, and the client gets every event
 * in order. A synthetic source (no root) paces the events by the clock. (On a machine too busy to
 * read 200 batches a second, the default per-client queue would drop the oldest: that is
 * backpressure.test.ts's subject, so this file gives its client a deep queue.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../server/service/index.js';
import { DEFAULT_BATCHING } from '../../server/service/batcher.js';
import { decodeBatch } from '../../shared/wire.js';
import { batchBytes, type StreamStats } from '../../shared/stream-events.js';
import type { SessionInfo } from '../../shared/api-types.js';
import { connect, postJson, syntheticFactory, waitFor, SYNTHETIC_CAPS, type SyntheticSource, type TestSocket } from './helpers.js';

interface Received {
  readonly socket: TestSocket;
  /** Per batch: seq, events, and how long after its first event it arrived (ms). */
  readonly batches: Array<{ seq: number; events: number; delayMs: number }>;
  stats: StreamStats | undefined;
}

async function subscribe(url: string, session: string): Promise<Received> {
  const socket = await connect(url);
  const r: Received = { socket, batches: [], stats: undefined };
  socket.on('hops', (m) => {
    const now = Number(process.hrtime.bigint());
    const b = decodeBatch(batchBytes(m.batch));
    const first = b.events[0]?.t ?? now;
    r.batches.push({ seq: b.seq, events: b.events.length, delayMs: (now - first) / 1e6 });
  });
  socket.on('stats', (s) => { r.stats = s; });
  const ack = await socket.timeout(5000).emitWithAck('subscribe', { session });
  if (!ack.ok) throw new Error(ack.error.message);
  return r;
}

/** Emits hop events at `perSec` by the clock for `ms` (catching up after late timers); resolves with the count. */
function pace(source: SyntheticSource, perSec: number, ms: number): Promise<number> {
  return new Promise((resolve) => {
    const start = Date.now();
    let sent = 0;
    const timer = setInterval(() => {
      const elapsed = Math.min(Date.now() - start, ms);
      const due = Math.floor((elapsed * perSec) / 1000);
      for (; sent < due; sent++) source.emitHop({ skb: (0x200000 + (sent % 100_000)).toString(16), ipId: sent & 0xffff, t: Number(process.hrtime.bigint()) });
      if (elapsed >= ms) {
        clearInterval(timer);
        resolve(sent);
      }
    }, perSec >= 1000 ? 5 : 20);
  });
}

describe('batching by size and time', () => {
  const src = syntheticFactory();
  let svc: RunningService;

  beforeAll(async () => {
    svc = await startService({
      port: 0, source: src.factory, capabilities: SYNTHETIC_CAPS, namespaceNames: null, webDist: null, log: () => undefined, statsIntervalMs: 250,
      // Batching is under test here, not backpressure (backpressure.test.ts): a queue deep enough
      // for the whole run, so a machine too busy to read at once delays batches but drops none.
      limits: { maxBatches: 4096, maxBytes: 512 * 1024 * 1024 },
    });
  });
  afterAll(async () => {
    await svc.close();
  });

  it('should send each event within the time limit at 10 events/s, not wait for a full batch', async () => {
    const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'tcp' });
    const r = await subscribe(svc.url, s.body.id);
    const source = src.made.at(-1) as SyntheticSource;
    const sent = await pace(source, 10, 3000);
    await waitFor('every event', () => r.batches.reduce((a, b) => a + b.events, 0) === sent, 5000);
    expect(sent).toBeGreaterThanOrEqual(25);
    // 100 ms apart, sealed 50 ms after the first: one event a batch.
    expect(r.batches.every((b) => b.events <= 2)).toBe(true);
    const delays = r.batches.map((b) => b.delayMs).sort((a, b) => a - b);
    const median = delays[Math.floor(delays.length / 2)] ?? Infinity;
    // Sealed at 50 ms; the rest is the loopback socket (and a busy machine's timers).
    expect(median).toBeGreaterThanOrEqual(DEFAULT_BATCHING.maxDelayMs - 5);
    expect(median).toBeLessThan(DEFAULT_BATCHING.maxDelayMs + 150);
    r.socket.close();
  }, 30_000);

  it('should seal full batches by size at 100,000 events/s and deliver every one, in order', async () => {
    const s = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'udp' });
    const r = await subscribe(svc.url, s.body.id);
    const source = src.made.at(-1) as SyntheticSource;
    const t0 = Date.now();
    const sent = await pace(source, 100_000, 3000);
    const producedPerSec = (sent * 1000) / (Date.now() - t0);
    await waitFor('every event', () => r.batches.reduce((a, b) => a + b.events, 0) === sent, 20_000);
    const max = DEFAULT_BATCHING.maxEvents;
    // In order, none missing, none dropped.
    expect(r.batches.map((b) => b.seq)).toEqual(r.batches.map((_b, i) => i + 1));
    await waitFor('final stats', () => r.stats?.seq === r.batches.length, 5000);
    expect(r.stats?.droppedBatches).toBe(0);
    // Sealed by size: every batch but the last of a burst is full; about events/512 batches.
    const full = r.batches.filter((b) => b.events === max).length;
    expect(full).toBeGreaterThanOrEqual(Math.floor(sent / max) - 5);
    expect(r.batches.length).toBeLessThanOrEqual(Math.ceil(sent / max) + 60);
    // The rate was really reached (by the clock, whatever the timers did).
    expect(sent).toBe(300_000);
    expect(producedPerSec).toBeGreaterThan(60_000);
    r.socket.close();
  }, 60_000);
});
