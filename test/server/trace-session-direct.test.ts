/**
 * TraceSession.reconstructInto on a real lab: with nothing listening for 'hop', hop lines go
 * straight into the engine (no HopEvent); with a listener, events are emitted and pushed into
 * the engine too. Two sessions side by side on the same traffic rebuild the same packets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../../shared/packet.js';
import { Reconstructor } from '../../shared/reconstruct.js';
import { TraceSession } from '../../server/trace-session.js';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startLabServers, trafficRound } from '../../server/lab/rounds.js';
import type { Server } from '../../server/lab/traffic.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { labInodes, randomPrefix } from '../helpers/cli.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)(`trace session straight into an engine (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let servers: Server[] = [];
  let roles: Map<number, string>;

  beforeAll(async () => {
    lab = labFor(randomPrefix('td'));
    await labUp(lab);
    servers = await startLabServers(lab);
    roles = labInodes(lab);
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (lab) await labDown(lab);
  });

  /** A packet as both sessions see it (kernel times differ: each bpftrace reads the clock itself). */
  const shape = (p: Packet): string => JSON.stringify([p.proto, p.src, p.dst, p.sport, p.dport, p.fate, p.drop?.reason ?? null,
    p.hops.map((h) => [roles.get(h.netns), h.ifname, h.event, h.src, h.dst, h.sport, h.dport, h.ipId, h.len, h.nat?.kind ?? null])]);

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
      await trafficRound(lab);
      await trafficRound(lab);
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

    const ours = (list: Packet[]): string[] => list.filter((p) => p.hops.every((h) => roles.has(h.netns))).map(shape).sort();
    const a = ours(directEngine.flush());
    const b = ours(eventsEngine.flush());
    expect(a.length).toBeGreaterThan(5);
    expect(a).toEqual(b);
  });
});
