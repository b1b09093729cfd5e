/**
 * An agent's clock on the bus (issue 17, hub-outage): every hop batch carries the clock the agent
 * vouches for, and a running session that published nothing for a while sends a heartbeat — a
 * hop batch with no events, the sequence number before it and the clock alone — through the
 * outbox, so it stays behind the backlog; while the bus is away one heartbeat waits, not one a
 * beat; the first beat after a batch comes sooner (200 ms), so the hub need not wait a whole beat
 * to finish a burst's last packets. Real nats-server; the agent's probes replaced by a stand-in (no bpftrace needed).
 */
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../helpers/nats.js';
import { until } from '../helpers/hub.js';
import { Agent } from '../../server/hub/agent.js';
import type { TraceSession } from '../../server/trace-session.js';
import { kernelNowNs } from '../../server/clock.js';
import { decodeBatch, type HopBatch } from '../../shared/wire.js';
import { controlSubject, hopsSubject } from '../../shared/cluster/subjects.js';
import type { HopEvent } from '../../shared/hop-event.js';

/** What the agent's TraceSession is to it: hop events and a start and stop. */
class StandIn extends EventEmitter {
  readonly filterText = '';
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

function hop(t: number): HopEvent {
  return {
    kind: 'xmit', t, cpu: 0, skb: 'ff1', netns: 1, ifindex: 2, ifname: 'eth0', family: 4, proto: 17, len: 60, ipId: 9,
    src: '10.168.1.10', dst: '10.168.2.10', sport: 4000, dport: 5000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasNatsServer)(`an agent's heartbeats (${hasNatsServer ? 'nats-server' : NEEDS_NATS})`, () => {
  let nats: NatsServer;
  beforeAll(async () => { nats = await startNatsServer(); });
  afterAll(async () => { await nats?.stop(); });

  it('should stamp batches with its clock, beat while quiet, and keep one beat waiting while the bus is away', async () => {
    const traces: StandIn[] = [];
    const agent = new Agent({
      bus: { url: nats.url }, node: 'n1', namespaces: 'no-such-namespace-here', heartbeatMs: 500, log: () => undefined,
      traceFactory: () => { const t = new StandIn(); traces.push(t); return t as unknown as TraceSession; },
    });
    await agent.start();
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
      const got: Array<{ at: number; batch: HopBatch }> = [];
      nc.subscribe(hopsSubject('n1'), { callback: (err, m) => { if (!err) got.push({ at: Date.now(), batch: decodeBatch(m.data) }); } });
      const r = await nc.request(controlSubject('n1'), new TextEncoder().encode(JSON.stringify({ op: 'start', session: 's1', filter: '', leaseMs: 120_000 })), { timeout: 10_000 });
      expect(JSON.parse(new TextDecoder().decode(r.data))).toMatchObject({ ok: true });
      const t = kernelNowNs() - 1_000_000;
      traces[0]!.emit('hop', hop(t));
      await until('the batch and two heartbeats', async () => (got.length >= 3 ? true : undefined), 10_000);
      const [first, ...beats] = got.map((g) => g.batch);
      // The batch vouches for its newest hop; heartbeats for the agent's clock since (less the
      // reader's lag), each repeating the batch's sequence number and growing.
      expect(first).toMatchObject({ seq: 1, clockNs: t, events: [expect.objectContaining({ t })] });
      for (const b of beats) expect(b).toMatchObject({ seq: 1, events: [], lostKernel: 0 });
      expect(beats[0]!.clockNs!).toBeGreaterThan(t);
      expect(beats[1]!.clockNs!).toBeGreaterThan(beats[0]!.clockNs!);
      expect(beats[1]!.clockNs!).toBeLessThanOrEqual(kernelNowNs());
      // The first beat 200 ms after the batch, the next a whole beat (500 ms) later.
      expect(got[1]!.at - got[0]!.at).toBeLessThan(450);
      expect(got[2]!.at - got[1]!.at).toBeGreaterThanOrEqual(450);
      // Only batches of hops count as published.
      expect(agent.published).toBe(1);

      // The bus away for 2 s (4 beats' time): one heartbeat waits, nothing is dropped.
      const outage = nats.restart(2000);
      let most = 0;
      const until2 = Date.now() + 1800;
      while (Date.now() < until2) {
        most = Math.max(most, agent.outbox.length);
        await sleep(50);
      }
      await outage;
      expect(most).toBeLessThanOrEqual(1);
      const before = got.length;
      await until('heartbeats again', async () => (got.length >= before + 2 ? true : undefined), 20_000);
      expect(agent.outbox.droppedBatches).toBe(0);
      expect(got.slice(before).every((g) => g.batch.events.length === 0 && g.batch.seq === 1)).toBe(true);
    } finally {
      await nc?.close();
      await agent.stop();
    }
  }, 60_000);
});
