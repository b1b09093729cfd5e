/**
 * TraceSession.reconstructInto on a real lab: with nothing listening for 'hop', hop lines go
 * straight into the engine (no HopEvent); with a listener, events are emitted and pushed into
 * the engine too. Two sessions side by side on the same traffic rebuild the same packets.
 */
import { describe, expect, it } from 'vitest';
import type { Packet } from '../../shared/packet.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import { TraceSession } from '../../server/trace-session.js';
import { trafficRound } from '../../server/lab/rounds.js';
import { useLabWithServers } from '../helpers/lab-with-servers.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)(`trace session straight into an engine (${NEEDS_ROOT})`, () => {
  const demo = useLabWithServers('td');

  /**
   * A packet's path as both sessions see it. Kernel times differ (each bpftrace reads the clock
   * itself), and so can the order in which two bpftrace processes drain their per-CPU buffers:
   * a socket's late consume_skb may land on either side of a packet's completion in one of them
   * (seen once in a fresh-clone CI run). So the path is compared up to its final consume, and the
   * fate is left out; that both code paths build identical packets from identical input is held
   * by test/probes/hop-line-direct.test.ts and test/server/bpftrace-reader.test.ts.
   */
  const shape = (p: Packet): string => JSON.stringify([p.proto, p.src, p.dst, p.sport, p.dport, p.drop?.reason ?? null,
    p.hops.filter((h) => h.event !== 'consume').map((h) => [demo.roles.get(h.netns), h.ifname, h.event, h.src, h.dst, h.sport, h.dport, h.ipId, h.len, h.nat?.kind ?? null])]);

  it('rebuilds the same packets with and without HopEvents, and counts every hop', async () => {
    const direct = new TraceSession({ filter: 'udp or tcp or icmp' });
    const viaEvents = new TraceSession({ filter: 'udp or tcp or icmp' });
    const directEngine = new Reconstructor();
    const eventsEngine = new Reconstructor();
    direct.reconstructInto(directEngine);
    viaEvents.reconstructInto(eventsEngine);
    let emitted = 0;
    viaEvents.on('hop', () => emitted++);
    let directEmitted = 0;
    try {
      await direct.start();
      await viaEvents.start();
      await trafficRound(demo.lab);
      await trafficRound(demo.lab);
      await sleep(500);
    } finally {
      await direct.stop();
      await viaEvents.stop();
    }
    // A listener added now (after the run) saw nothing: the direct session emitted no events.
    direct.on('hop', () => directEmitted++);
    expect(directEmitted).toBe(0);
    expect(direct.lostEvents + viaEvents.lostEvents).toBe(0);

    // Every hop reached the engine, counted once.
    expect(directEngine.stats.events).toBeGreaterThan(20);
    expect(direct.hopEvents).toBe(directEngine.stats.events);
    expect(emitted).toBe(viaEvents.hopEvents);
    expect(eventsEngine.stats.events).toBe(emitted);

    const ours = (list: Packet[]): string[] => list
      .filter((p) => p.hops.every((h) => demo.roles.has(h.netns)) && p.hops.some((h) => h.event !== 'consume'))
      .map(shape).sort();
    const directPackets = directEngine.flush();
    const a = ours(directPackets);
    const b = ours(eventsEngine.flush());
    expect(a.length).toBeGreaterThan(5);
    expect(a).toEqual(b);
    // The direct path completes packets too: delivered ones end in the socket's consume.
    const delivered = directPackets.filter((p) => p.fate === 'delivered' && p.hops.every((h) => demo.roles.has(h.netns)));
    expect(delivered.length).toBeGreaterThan(3);
    expect(delivered.every((p) => p.hops.at(-1)?.event === 'consume')).toBe(true);
  });
});
