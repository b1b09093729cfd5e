/**
 * The ingest worker with a session's depth: DepthBatches from the stream attach notes and netfilter
 * steps to the packets rebuilt from HopBatches, as the CLI and the service attach them.
 */
import { describe, expect, it } from 'vitest';
import { IngestCore } from '../../src/worker/ingest-core.js';
import { encodeDepthBatch } from '../../../shared/netfilter/wire.js';
import { batches, demoRecording } from '../fixture.js';
import { droppedPacketDepth } from '../depth-fixture.js';

function core(): IngestCore {
  const c = new IngestCore({ now: () => 0, wallNow: () => 1_700_000_000_000 });
  const rec = demoRecording();
  c.setTopology([...rec.names], []);
  c.setDropReasons([...rec.header.dropReasons]);
  return c;
}

/** Events in the order they arrive, with the depth batches at the moment their items were received. */
function feed(c: IngestCore, fx: ReturnType<typeof droppedPacketDepth>, untilT = Infinity): void {
  const stepT = fx.steps[0]?.t ?? 0;
  const before = fx.events.filter((e) => e.t <= stepT && e.t <= untilT);
  const after = fx.events.filter((e) => e.t > stepT && e.t <= untilT);
  c.ingestDepth(encodeDepthBatch({ notes: [fx.note], netfilter: [], seq: 1 }));
  for (const b of batches(before, 64)) c.ingestBatch(b);
  if (stepT <= untilT) c.ingestDepth(encodeDepthBatch({ notes: [], netfilter: fx.steps, seq: 2 }));
  for (const b of batches(after, 64, 1000)) c.ingestBatch(b);
}

describe('IngestCore with depth', () => {
  it('should attach the streamed note and netfilter step to the dropped packet', () => {
    const fx = droppedPacketDepth();
    const c = core();
    c.setDepth({ netfilter: true });
    feed(c, fx);
    c.flush();
    const p = c.get(fx.packetId)?.packet;
    expect(p?.netfilter).toEqual([expect.objectContaining({ chain: 'FORWARD', verdict: 'drop', rule: 'udp dport 9999 counter drop', ns: 'demo-node' })]);
    expect(p?.notes?.map((n) => n.kind)).toEqual(['fib']);
    // Every other packet of a netfilter session carries its (empty) steps too, as `trace --json` does.
    const rows = c.takeRows()?.rows ?? [];
    expect(rows.length).toBeGreaterThan(1);
    expect(rows.every((r) => Array.isArray(c.get(r.id)?.packet.netfilter))).toBe(true);
    expect(c.stats().decodeErrors).toBe(0);
  });

  it('should hold a finished packet back until the clock is past its steps\' wait', () => {
    const fx = droppedPacketDepth();
    // Without depth: the first event after which the engine has finished the dropped packet.
    const plain = core();
    let listedAt = -1;
    for (const [i, ev] of fx.events.entries()) {
      plain.ingestEvents([ev]);
      if (plain.get(fx.packetId)) {
        listedAt = i;
        break;
      }
    }
    expect(listedAt).toBeGreaterThan(0);
    const listedT = (fx.events[listedAt] as { t: number }).t;
    // With netfilter depth, the same events leave it waiting for its steps...
    const c = core();
    c.setDepth({ netfilter: true });
    feed(c, fx, listedT);
    const dropT = fx.events.find((e) => e.kind === 'drop' && e.dport === 9999)?.t ?? 0;
    expect(listedT).toBeLessThan(dropT + 300_000_000);
    expect(c.get(fx.packetId)).toBeNull();
    // ... until the clock has moved 300 ms past its last hop: then it leaves, with its step.
    for (const b of batches(fx.events.filter((e) => e.t > listedT), 64, 5000)) c.ingestBatch(b);
    c.flush();
    expect(c.get(fx.packetId)?.packet.netfilter?.map((s) => s.verdict)).toEqual(['drop']);
  });

  it('should count an undecodable depth batch instead of throwing', () => {
    const c = core();
    c.ingestDepth(new Uint8Array([0xff, 0xff, 0xff]));
    expect(c.stats().decodeErrors).toBe(1);
  });
});
